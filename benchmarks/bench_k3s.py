"""K3s bring-up and rolling upgrade on three lab nodes (molecule k3s-ha with HONEYDUE_K3S_BENCH=1: the
bring-up and the upgrade only). The anchor is the K3s stand-in's own time per server, measured in
the same run: for a join, K3s start to its member a voter (the etcd watcher, 0.5 s polls); for an
upgrade, the restart to every member healthy again. The role's time per server is its gate (the
fresh status read before it to its Node Ready, from the JSON callback's task times). Printed:
slack_s_per_node = gate - stand-in (goal: at most 2 s) and the ratio gate / stand-in."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    env = dict(os.environ, HONEYDUE_K3S_BENCH="1")
    molecule = Path(sys.executable).parent / "molecule"
    proc = subprocess.run([str(molecule), "test", "-s", "k3s-ha"], cwd=ROOT, env=env, capture_output=True, text=True)
    text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    text = re.sub(r"\s*│\s*", " ", text)  # molecule frames pytest's output
    lines = [" ".join(m.split()) for m in re.findall(r"BENCH k3s_\w+ .*?slack_s=\{[^}]*\}", text, re.S)]
    for line in lines:
        fields = dict(kv.split("=", 1) for kv in line.split()[2:] if "=" in kv and not kv.startswith("slack_s={"))
        slack, own = float(fields["slack_s_per_node"]), float(fields["standin_s_per_node"])
        print(f"{line} gate_over_standin={(slack + own) / own:.2f}x goal_slack_s_per_node=2")
    if proc.returncode != 0 or len(lines) != 2:
        print(text[-4000:], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

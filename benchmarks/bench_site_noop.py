"""A no-op site.yml on the lab: this collection's settings against Ansible's defaults, side by side.

Brings the lab up with `make lab` when it is not running (a few minutes), then re-runs site.yml
twice against it, alternating: once as the repository configures Ansible (ansible.cfg: pipelining,
`gathering = smart`, 20 forks, SSH ControlPersist), once with Ansible's defaults for those (no
pipelining, facts gathered by every play, 5 forks). Both must change nothing.

    BENCH site_noop changed=0 collection_s=... defaults_s=... time_ratio=...x

``time_ratio`` is defaults / collection (higher is better; the goal is at least 2x). Run with
``make bench``; it leaves the lab running (``make lab-down`` removes it).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAB = Path(os.environ.get("LAB_DIR") or REPO / ".lab")
RECAP = re.compile(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
DEFAULTS = {"ANSIBLE_PIPELINING": "False", "ANSIBLE_GATHERING": "implicit", "ANSIBLE_FORKS": "5"}


def lab_env() -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "lab.world", "env"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    env = dict(os.environ)
    for line in out.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    return env


def site(env: dict[str, str]) -> tuple[float, int, str]:
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "inventories/lab/hcloud.yml", "site.yml",
           "-e", f"@{env['LAB_DIR']}/secrets.yml", "-e", f"sha={env['LAB_SHA']}"]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    stats = RECAP.findall(proc.stdout)
    if proc.returncode != 0 or not stats:
        sys.exit(f"bench site_noop: site.yml failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    return seconds, sum(int(changed) for _, changed, _, _ in stats), proc.stdout


def main() -> int:
    world = LAB / "world.json"
    running = world.exists() and subprocess.run(
        ["docker", "ps", "-q", "--filter", "name=honeydue-lab-hetzner"], capture_output=True, text=True,
        check=False).stdout.split()
    if not running:
        print("bench site_noop: no lab running; `make lab` first", flush=True)
        subprocess.run(["make", "--no-print-directory", "lab"], cwd=REPO, check=True)
    env = lab_env()
    ours, theirs, changed = [], [], 0
    for _ in range(int(os.environ.get("BENCH_ROUNDS", "1"))):
        seconds, n, _ = site(env)
        ours.append(seconds)
        changed += n
        seconds, n, _ = site({**env, **DEFAULTS})
        theirs.append(seconds)
        changed += n
    ours.sort()
    theirs.sort()
    a, b = ours[len(ours) // 2], theirs[len(theirs) // 2]
    print(f"BENCH site_noop changed={changed} collection_s={a:.1f} defaults_s={b:.1f} time_ratio={b / a:.2f}x "
          f"settings_vs_defaults={json.dumps(DEFAULTS)}")
    return 0 if changed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

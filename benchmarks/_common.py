"""Shared benchmark plumbing: the repo on sys.path, a stand-in in-process, ansible-playbook runs."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
for _p in (REPO, REPO / "collections"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

TOKEN = "bench-token-0123456789abcdef"


def standin():
    from lab.standins.hcloud import HcloudStandIn
    return HcloudStandIn(token=TOKEN).start()


def clean_env(api, tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "HCLOUD_"))}
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_LOCAL_TEMP=str(tmp / "tmp"), HCLOUD_TOKEN=TOKEN,
               HCLOUD_ENDPOINT=api.url + "/v1", PATH=f"{BIN}:{os.environ.get('PATH', '')}", **extra)
    return env


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed


def playbook(path: Path, env: dict[str, str], *args: str) -> float:
    return timed([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                  "-e", f"ansible_python_interpreter={sys.executable}", str(path), *args], env)

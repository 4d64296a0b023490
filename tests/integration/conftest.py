"""Integration-test plumbing: run real ansible-playbook processes against the stand-ins."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    result: dict[str, Any]  # the json callback's document (empty when it did not parse)

    def task_results(self, name: str, host: str = "localhost") -> dict[str, Any]:
        """The result of the task called ``name`` on ``host``."""
        for play in self.result.get("plays", []):
            for task in play.get("tasks", []):
                if task["task"]["name"] == name:
                    return task["hosts"][host]
        raise KeyError(f"no task named {name!r} in the run")

    @property
    def stats(self) -> dict[str, Any]:
        return self.result.get("stats", {})

    def changed(self, host: str = "localhost") -> int:
        return self.stats.get(host, {}).get("changed", 0)


def run_playbook(tmp_path: Path, plays: list[dict[str, Any]] | str, *, env: dict[str, str] | None = None,
                 extra_args: list[str] | None = None, inventory: str | None = None,
                 timeout: int = 600) -> PlaybookRun:
    """Run ``ansible-playbook`` as an operator would, from the repo root, with the json callback."""
    if isinstance(plays, str):
        playbook = plays
    else:
        playbook = str(tmp_path / "playbook.yml")
        Path(playbook).write_text(yaml.safe_dump(plays, sort_keys=False))
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    full_env.update({
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "ANSIBLE_INVENTORY_CACHE": "False",
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
    })
    full_env.update(env or {})
    cmd = [str(BIN / "ansible-playbook"), "-i", inventory or "localhost,", "-c", "local",
           "-e", f"ansible_python_interpreter={sys.executable}", playbook, *(extra_args or [])]
    proc = subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout)
    # With -v.. the json document follows ansible's verbose lines: it starts at a line "{".
    lines = proc.stdout.splitlines()
    start = lines.index("{") if "{" in lines else len(lines)
    try:
        result = json.loads("\n".join(lines[start:]))
    except ValueError:
        result = {}
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, result)


@pytest.fixture
def playbook(tmp_path):
    """``playbook(plays, env=..., extra_args=[...])`` -> :class:`PlaybookRun`."""
    def _run(plays, **kwargs):
        return run_playbook(tmp_path, plays, **kwargs)
    return _run

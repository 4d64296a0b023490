"""Provisioning N servers whose create action takes T=2 s: honeydue.infra.hcloud_fleet (every
create posted, then all actions waited on together) vs hetzner.hcloud.server in a loop (each
server waited for in turn), both with delete/rebuild protection. Goal: time_ratio close to N."""
from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from _common import clean_env, playbook, standin

T = 2.0


def plays(task):
    return [{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]


def ours(n):
    return plays({"name": "fleet", "honeydue.infra.hcloud_fleet": {
        "servers": [{"name": f"hetzner{i}"} for i in range(1, n + 1)], "selector_labels": {"cluster": "bench"},
        "server_type": "cx33", "image": "ubuntu-24.04", "location": "nbg1", "poll_interval": 1.0}})


def anchor(n):
    return plays({"name": "server", "hetzner.hcloud.server": {
        "name": "{{ item }}", "server_type": "cx33", "image": "ubuntu-24.04", "location": "nbg1",
        "labels": {"cluster": "bench"}, "delete_protection": True, "rebuild_protection": True, "state": "present"},
        "loop": [f"hetzner{i}" for i in range(1, n + 1)]})


def run(n, make):
    api = standin()
    try:
        api.action_delay = T
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "pb.yml"
            path.write_text(yaml.safe_dump(make(n), sort_keys=False))
            elapsed = playbook(path, clean_env(api, Path(tmp)))
        assert len(api.servers) == n and all(s["status"] == "running" for s in api.servers.values())
        assert all(s["protection"]["delete"] for s in api.servers.values())
        return elapsed
    finally:
        api.stop()


if __name__ == "__main__":
    for n in (3, 10):
        ours_s = run(n, ours)
        anchor_s = run(n, anchor)
        print(f"BENCH provision n={n} ours_s={ours_s:.2f} anchor_s={anchor_s:.2f} time_ratio={anchor_s / ours_s:.2f}",
              flush=True)

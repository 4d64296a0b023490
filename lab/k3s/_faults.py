"""Fault hooks for tests (not a K3s command): ``k3s standin-fault <fault>`` on a lab node.

  kill-etcd            SIGKILL the etcd child (k3s then exits, as K3s does when its etcd dies)
  freeze-etcd          SIGSTOP etcd: a member that is up but answers nothing
  thaw-etcd            SIGCONT it
  partition IP [IP..]  drop all traffic to and from these peers (iptables chain HONEYDUE-PARTITION)
  heal                 remove the partition
  hold-promotion       this server's promotion loop promotes no learner (slow promotion) ...
  release-promotion    ... until released
The promotion interval itself is a setting: K3S_STANDIN_PROMOTE_INTERVAL in k3s.service.env.
"""
from __future__ import annotations

import subprocess
import sys

CHAIN = "HONEYDUE-PARTITION"


def _run(*cmd: str, check: bool = True) -> int:
    return subprocess.run(list(cmd), check=check).returncode


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    fault, args = argv[0], argv[1:]
    signals = {"kill-etcd": "KILL", "freeze-etcd": "STOP", "thaw-etcd": "CONT"}
    if fault in signals:
        return 0 if _run("pkill", f"-{signals[fault]}", "-x", "etcd", check=False) in (0, 1) else 1
    if fault == "partition" and args:
        _run("iptables", "-w", "-N", CHAIN, check=False)
        for chain in ("INPUT", "OUTPUT"):
            if _run("iptables", "-w", "-C", chain, "-j", CHAIN, check=False) != 0:
                _run("iptables", "-w", "-I", chain, "1", "-j", CHAIN)
        for ip in args:
            _run("iptables", "-w", "-A", CHAIN, "-s", ip, "-j", "DROP")
            _run("iptables", "-w", "-A", CHAIN, "-d", ip, "-j", "DROP")
        return 0
    if fault in ("hold-promotion", "release-promotion"):
        from .server import HOLD_PROMOTION
        if fault == "hold-promotion":
            HOLD_PROMOTION.parent.mkdir(parents=True, exist_ok=True)
            HOLD_PROMOTION.touch()
        else:
            HOLD_PROMOTION.unlink(missing_ok=True)
        return 0
    if fault == "heal":
        _run("iptables", "-w", "-F", CHAIN, check=False)
        return 0
    print(__doc__, file=sys.stderr)
    return 2

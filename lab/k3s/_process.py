"""The etcd child process of the stand-in.

Real K3s runs etcd inside its own process: stopping or killing k3s stops etcd with it. The
stand-in runs Debian's etcd binary as a child that dies with its parent (PR_SET_PDEATHSIG), so
`systemctl stop k3s` (KillMode=process: only the main process is signalled) and a SIGKILL both
take etcd down, as they do with K3s; pods (not simulated as processes here) are what outlive it.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Callable

import yaml

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def write_config(path: Path, config: dict) -> None:
    """etcd's configuration file, 0600 as K3s writes db/etcd/config."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(config, fh, sort_keys=True)
    os.chmod(path, 0o600)


class Etcd:
    """etcd started from a config file; ``on_exit`` is called (from a thread) if it dies."""

    def __init__(self, config_file: Path, log: Callable[[str], None], binary: str = "etcd") -> None:
        self.config_file, self.log, self.binary = config_file, log, binary
        self.proc: subprocess.Popen | None = None
        self.stopping = False

    def start(self, on_exit: Callable[[int], None]) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - fixed binary, our own config file
            [self.binary, "--config-file", str(self.config_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent,
            # Only k3s itself tells systemd it is ready (etcd would notify on its own start).
            env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"})
        threading.Thread(target=self._pump, args=(on_exit,), daemon=True, name="etcd-log").start()

    def _pump(self, on_exit: Callable[[int], None]) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log("etcd: " + line.rstrip())
        rc = self.proc.wait()
        if not self.stopping:
            on_exit(rc)

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping = True
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

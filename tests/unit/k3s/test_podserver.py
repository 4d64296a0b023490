"""The lab container process: behaviour from image labels, identity in every answer."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lab.k3s._podserver import Behaviour

REPO = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(labels: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    env = {"POD_NAME": "api-7d9-x1", "NODE_NAME": "node-2", "POD_IMAGE": "reg/api:abc1234", "PATH": "/usr/bin:/bin"}
    return subprocess.Popen([sys.executable, "-m", "lab.k3s._podserver", "--address", "127.0.0.1",
                             "--port", str(port), "--labels", json.dumps(labels)],
                            cwd=REPO, env=env, stderr=subprocess.PIPE)


def _get(port: int, path: str, host: str = "api.example.test") -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host, "X-Forwarded-For": "1.2.3.4"})
    try:
        with urllib.request.urlopen(req, timeout=2) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the pod server never listened")


def test_labels_parse_and_unknown_ones_are_refused() -> None:
    b = Behaviour.from_labels({"lab.honeydue/ready-after": "2.5", "lab.honeydue/fail-paths": "/api/health/",
                               "org.opencontainers.image.title": "api"})
    assert b.ready_after == 2.5 and b.fail_paths == ("/api/health/",)
    assert b.answer("/api/health/", 10) == 500 and b.answer("/", 1) == 503 and b.answer("/", 3) == 200
    with pytest.raises(ValueError, match="lab.honeydue/redy-after"):
        Behaviour.from_labels({"lab.honeydue/redy-after": "1"})


def test_serves_identity_after_ready_and_stops_on_sigterm() -> None:
    port = _free_port()
    proc = _start({"lab.honeydue/ready-after": "1"}, port)
    try:
        _wait_listening(port, proc)
        code, body = _get(port, "/api/health/")
        assert code == 503 and body["pod"] == "api-7d9-x1"
        time.sleep(1.1)
        code, body = _get(port, "/api/health/")
        assert code == 200
        assert (body["node"], body["image"], body["host"]) == ("node-2", "reg/api:abc1234", "api.example.test")
        assert body["forwarded"] == {"X-Forwarded-For": "1.2.3.4"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    finally:
        proc.kill()


def test_crash_and_exit_after() -> None:
    crash = _start({"lab.honeydue/crash": "3"}, _free_port())
    assert crash.wait(10) == 3
    port = _free_port()
    short = _start({"lab.honeydue/exit-after": "0.5"}, port)
    assert short.wait(10) == 1

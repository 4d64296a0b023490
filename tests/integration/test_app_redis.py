"""The Redis config honeydue_app renders, run by a real Redis 7 (Debian's redis-server): AOF keeps
the data across restarts, and the rotation's two passes - old and new password both accepted while
the clients restart, then only the new one - behave as the runbook says. The password is in the
config file (a Secret volume), never on the server's command line."""
from __future__ import annotations

import base64
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

OLD, NEW = "redis-old-Pw3x9", "redis-new-Qa7m2"
VARS = {"honeydue_domain": "honeydue.example", "honeydue_app_sha": "3f2c1d9",
        "vault_honeydue_registry_username": "deploy", "vault_honeydue_registry_password": "pull-pw",
        **{f"vault_honeydue_{k}": f"value-of-{k}" for k in (
            "database_url", "secret_key", "jwt_secret", "b2_key_id", "b2_application_key", "smtp_username", "smtp_password")}}

pytestmark = pytest.mark.skipif(not Path("/usr/bin/redis-server").exists(),
                                reason="redis-server missing (make registry-tools installs it)")


def _conf(playbook, tmp_path: Path, password: str, previous: str = "") -> str:
    out = tmp_path / f"render-{password}-{previous or 'none'}"
    out.mkdir()
    run = playbook([{"hosts": "localhost", "gather_facts": False,
                     "vars": {**VARS, "vault_honeydue_redis_password": password,
                              "honeydue_app_redis_previous_password": previous},
                     "tasks": [{"ansible.builtin.include_role": {"name": "honeydue.infra.honeydue_app", "tasks_from": "render"},
                                "vars": {"honeydue_app_render_dir": str(out)}}]}])
    assert run.rc == 0, run.stdout[-3000:]
    assert (out / "secrets.yaml").stat().st_mode & 0o777 == 0o600
    secrets = {d["metadata"]["name"]: d for d in yaml.safe_load_all((out / "secrets.yaml").read_text())}
    return base64.b64decode(secrets["honeydue-redis"]["data"]["redis.conf"]).decode()


class Redis:
    """redis-server with the rendered config as the pod runs it (`redis-server /etc/redis/redis.conf`);
    the volume mount /data is a directory of the test's, the port one of loopback's."""

    def __init__(self, tmp: Path, conf: str) -> None:
        self.data = tmp / "data"
        self.data.mkdir(exist_ok=True)
        self.port = _free_port()
        path = tmp / f"redis-{time.monotonic_ns()}.conf"
        path.write_text(conf.replace("dir /data\n", f"dir {self.data}\n")
                        + f"port {self.port}\nbind 127.0.0.1\nsave \"\"\n")
        path.chmod(0o600)
        self.proc = subprocess.Popen(["/usr/bin/redis-server", str(path)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError(f"redis-server refused the config: {self.proc.stdout.read()}") from None
                time.sleep(0.1)
        raise AssertionError("redis-server did not start")

    def ask(self, *commands: list[str]) -> list[Any]:
        """Send RESP commands on one connection; the answers (str, int, None or ('ERR', message))."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            f = s.makefile("rb")
            answers = []
            for cmd in commands:
                s.sendall(b"*%d\r\n" % len(cmd) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in cmd))
                answers.append(_read(f))
            return answers

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)  # what the kubelet sends: Redis flushes the AOF and exits
        self.proc.wait(timeout=20)


def _read(f) -> Any:
    line = f.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:].decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        return ("ERR", rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        if rest == "-1":
            return None
        data = f.read(int(rest) + 2)
        return data[:-2].decode()
    raise AssertionError(f"unexpected answer {line!r}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_aof_keeps_the_data_and_the_rotation_takes_both_passwords_then_only_the_new(playbook, tmp_path) -> None:
    before, during, after = (_conf(playbook, tmp_path, OLD), _conf(playbook, tmp_path, NEW, OLD),
                             _conf(playbook, tmp_path, NEW))
    assert "appendonly yes" in before

    redis = Redis(tmp_path, before)
    try:
        assert redis.ask(["GET", "k"])[0][0] == "ERR", "no password, no access"
        assert redis.ask(["AUTH", NEW])[0][0] == "ERR"
        assert redis.ask(["AUTH", OLD], ["SET", "session:42", "kept"], ["RPUSH", "asynq:queue", "a", "b"]) == ["OK", "OK", 2]
        cmdline = Path(f"/proc/{redis.proc.pid}/cmdline").read_bytes().decode(errors="replace")
        assert OLD not in cmdline and NEW not in cmdline
    finally:
        redis.stop()
    assert any(redis.data.rglob("*.aof")), "AOF files in the volume"

    redis = Redis(tmp_path, during)  # first pass: clients not yet restarted still use the old one
    try:
        assert redis.ask(["AUTH", OLD], ["GET", "session:42"]) == ["OK", "kept"]
        assert redis.ask(["AUTH", NEW], ["LLEN", "asynq:queue"], ["LPOP", "asynq:queue"]) == ["OK", 2, "a"]
    finally:
        redis.stop()

    redis = Redis(tmp_path, after)  # second pass: only the new password
    try:
        wrong = redis.ask(["AUTH", OLD])[0]
        assert wrong[0] == "ERR" and "WRONGPASS" in wrong[1]
        assert redis.ask(["AUTH", NEW], ["GET", "session:42"], ["LLEN", "asynq:queue"]) == ["OK", "kept", 1]
    finally:
        redis.stop()

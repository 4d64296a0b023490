"""A real container registry for the lab and the tests: Debian's distribution/registry 2.8.

``LabRegistry(auth="htpasswd"|"token"|"none", users={...}).start()`` runs
``/usr/bin/docker-registry serve <config>`` on a free loopback port (or ``addr``) with a generated
config: filesystem storage in a temporary directory, and

* ``htpasswd``: ``auth.htpasswd`` with a bcrypt htpasswd file (distribution 2.8 accepts only bcrypt
  entries); the registry answers ``WWW-Authenticate: Basic realm=...``;
* ``token``: ``auth.token`` (realm, service, issuer, rootcertbundle) and a :class:`TokenServer`
  (``_token_server.py``) on another loopback port, Gitea's ``/v2/token`` flow; the registry answers
  ``WWW-Authenticate: Bearer realm=...,service=...,scope=repository:<name>:pull``.

``.url`` (``http://127.0.0.1:<port>``), ``.host`` (``127.0.0.1:<port>``, for image references),
``.users``, ``.token_server`` (token mode) and ``.stop()``. scripts/ensure-registry-tools.sh
installs the binary (``make integration`` runs it).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from ._token_server import ISSUER, SERVICE, TokenServer

REGISTRY_BIN = "/usr/bin/docker-registry"
REALM = "honeydue lab registry"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def htpasswd_line(user: str, password: str) -> str:
    import bcrypt  # requirements-dev.txt

    hashed = bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=5)).decode("ascii")
    return f"{user}:{hashed}\n"


def registry_available() -> str | None:
    """None when the registry binary is installed, else why not."""
    if not os.access(REGISTRY_BIN, os.X_OK):
        return f"{REGISTRY_BIN} is not installed (scripts/ensure-registry-tools.sh installs Debian's docker-registry)"
    return None


class LabRegistry:
    def __init__(self, auth: str = "htpasswd", users: dict[str, str] | None = None, *, readonly=(),
                 key_reference: str = "x5c", addr: str | None = None, binary: str = REGISTRY_BIN):
        if auth not in ("htpasswd", "token", "none"):
            raise ValueError("auth is 'htpasswd', 'token' or 'none'")
        self.auth, self.binary = auth, binary
        self.users = dict(users if users is not None else {"deploy": "lab-registry-password"})
        self.readonly, self.key_reference = tuple(readonly), key_reference
        self.addr = addr or f"127.0.0.1:{free_port()}"
        self.token_server: TokenServer | None = None
        self.workdir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None

    @property
    def host(self) -> str:
        return self.addr if not self.addr.startswith(("0.0.0.0:", ":")) else "127.0.0.1:" + self.addr.rsplit(":", 1)[1]

    @property
    def url(self) -> str:
        return "http://" + self.host

    def config(self) -> dict:
        assert self.workdir is not None
        cfg = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.workdir / "data")}, "delete": {"enabled": True},
                        "maintenance": {"uploadpurging": {"enabled": False}}},
            "http": {"addr": self.addr, "secret": os.urandom(16).hex(), "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }
        if self.auth == "htpasswd":
            cfg["auth"] = {"htpasswd": {"realm": REALM, "path": str(self.workdir / "htpasswd")}}
        elif self.auth == "token":
            assert self.token_server is not None
            cfg["auth"] = {"token": {"realm": self.token_server.realm, "service": SERVICE, "issuer": ISSUER,
                                     "rootcertbundle": str(self.workdir / "token-signer.crt")}}
        return cfg

    def start(self, timeout: float = 20.0) -> LabRegistry:
        reason = registry_available() if self.binary == REGISTRY_BIN else None
        if reason:
            raise RuntimeError(reason)
        self.workdir = Path(tempfile.mkdtemp(prefix="lab-registry-"))
        (self.workdir / "data").mkdir()
        if self.auth == "htpasswd":
            path = self.workdir / "htpasswd"
            path.write_text("".join(htpasswd_line(u, p) for u, p in self.users.items()))
            path.chmod(0o600)
        elif self.auth == "token":
            self.token_server = TokenServer(self.users, readonly=self.readonly, key_reference=self.key_reference,
                                            host=self.host.rsplit(":", 1)[0]).start()
            (self.workdir / "token-signer.crt").write_bytes(self.token_server.cert_pem)
        config_path = self.workdir / "config.yml"
        config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self.log_path = self.workdir / "registry.log"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.workdir)}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([self.binary, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                log_text = self.log()
                self.stop()
                raise RuntimeError(f"docker-registry exited with {self.proc.returncode}:\n{log_text}")
            try:
                urllib.request.urlopen(self.url + "/v2/", timeout=2).close()
                break
            except urllib.error.HTTPError as e:
                if e.code == 401:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                log_text = self.log()
                self.stop()
                raise RuntimeError(f"docker-registry did not answer on {self.url} within {timeout}s:\n{log_text}")
            time.sleep(0.1)
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.token_server is not None:
            self.token_server.stop()
            self.token_server = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> LabRegistry:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

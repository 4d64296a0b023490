"""What a K3s server serves on :6443: the supervisor endpoints and the Kubernetes API, over TLS.

Supervisor (k3s-io/k3s pkg/server/router.go): ``/cacerts`` and ``/ping`` anonymous;
``/v1-k3s/server-bootstrap``, ``/v1-k3s/config`` and ``/db/info`` with the server token (basic auth
``server:<password>``). The Kubernetes API (:mod:`lab.k3s._kubeapi`) needs a client certificate
signed by the cluster's client CA. The serving certificate is signed by the server CA.
"""
from __future__ import annotations

import base64
import hmac
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from ._etcdclient import EtcdError

if TYPE_CHECKING:
    from .server import Server

PORT = 6443


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    address_family = __import__("socket").AF_INET6

    def server_bind(self) -> None:
        import socket
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class Supervisor:
    def __init__(self, server: Server, port: int = PORT) -> None:
        from ._kubeapi import KubeAPI
        self.server, self.port = server, port
        self.kube = KubeAPI(server)
        tls = server.paths.tls
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(tls / "serving-kube-apiserver.crt"), str(tls / "serving-kube-apiserver.key"))
        self.ctx.load_verify_locations(str(tls / "client-ca.crt"))
        self.ctx.verify_mode = ssl.CERT_OPTIONAL
        self.httpd: _TLSServer | None = None

    def start(self) -> None:
        sup = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "k3s"

            def setup(self) -> None:
                self.request = sup.ctx.wrap_socket(self.request, server_side=True)
                super().setup()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                peer = self.connection.getpeercert() or {}
                subject = {k: v for rdn in peer.get("subject", ()) for k, v in rdn}
                answer = sup.route(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                                   dict(self.headers), raw, subject)
                status, body, ctype = answer[:3]
                extra: dict[str, str] = answer[3] if len(answer) > 3 else {}
                if hasattr(body, "__next__"):  # a watch: one JSON event a chunk until it ends or the client leaves
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    try:
                        for event in body:
                            data = event if isinstance(event, bytes) else json.dumps(event).encode() + b"\n"
                            if not data:
                                continue
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                            self.wfile.flush()
                        self.wfile.write(b"0\r\n\r\n")
                    except OSError:
                        pass
                    self.close_connection = True
                    return
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        self.httpd = _TLSServer(("::", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                         name="supervisor").start()
        self.kube.start()

    def stop(self) -> None:
        self.kube.stop()
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()

    # -- routing ------------------------------------------------------------------------------
    def _user(self, headers: dict[str, str]) -> str | None:
        """The passwd user (``server`` or ``node``) whose password the basic auth carries, else None."""
        from . import _passwd
        auth = headers.get("Authorization") or headers.get("authorization") or ""
        if not auth.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return None
        stored = _passwd.read_passwd(self.server.paths.passwd).get(user, ("",))[0]
        return user if user in ("server", "node") and stored and hmac.compare_digest(password, stored) else None

    def route(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], raw: bytes,
              subject: dict[str, str]) -> tuple[int, Any, str] | tuple[int, Any, str, dict[str, str]]:
        tls = self.server.paths.tls
        if path == "/cacerts":
            return 200, (tls / "server-ca.crt").read_bytes(), "text/plain"
        if path == "/ping":
            return 200, b"pong", "text/plain"
        if path == "/v1-k3s/client-kubelet.crt":
            if self._user(headers) is None:
                return 401, b"Unauthorized\n", "text/plain"
            return self._kubelet_cert(headers)
        if path.startswith(("/v1-k3s/", "/db/")):
            if self._user(headers) != "server":
                return 401, b"Unauthorized\n", "text/plain"
            return self._supervisor(method, path, raw)
        if not subject:
            return 401, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                         "message": "Unauthorized", "reason": "Unauthorized", "code": 401}, "application/json"
        return self.kube.handle(method, path, query, headers, raw, subject)

    def _supervisor(self, method: str, path: str, raw: bytes) -> tuple[int, Any, str]:
        if path == "/v1-k3s/server-bootstrap" and method == "GET":
            files = self.server.bootstrap_answer(self.server._current_password())
            if files is None:
                return 500, b"bootstrap data not found\n", "text/plain"
            return 200, files, "application/json"
        if path == "/v1-k3s/config" and method == "GET":
            return 200, self.server.critical_config(), "application/json"
        if path == "/db/info" and method == "GET":
            try:
                members = self.server.gateway.members() if self.server.gateway else []
            except EtcdError as exc:
                return 500, f"{exc.message}\n".encode(), "text/plain"
            return 200, {"members": members}, "application/json"
        if path == "/db/snapshot" and method == "POST":
            return self._snapshot(json.loads(raw or b"{}"))
        if path == "/v1-k3s/token" and method == "PUT":
            try:
                new = json.loads(raw or b"{}").get("token", "")
                self.server.rotate_token(new)
            except (ValueError, KeyError) as exc:
                return 400, f"{exc}\n".encode(), "text/plain"
            return 200, b"", "text/plain"
        return 404, b"404 page not found\n", "text/plain"

    def _snapshot(self, req: dict[str, Any]) -> tuple[int, Any, str]:
        """POST /db/snapshot (k3s etcd-snapshot): {"operation": save|list|delete|prune, "name", "retention"}."""
        from . import _s3, _snapshot
        op = req.get("operation", "save")
        try:
            if op == "save":
                return 200, {"lines": _snapshot.save(self.server, req.get("name") or None)}, "application/json"
            if op == "list":
                return 200, {"snapshots": _snapshot.list_snapshots(self.server)}, "application/json"
            if op == "delete":
                return 200, {"lines": _snapshot.delete(self.server, list(req.get("names") or []))}, "application/json"
            if op == "prune":
                retention = int(req.get("retention") or self.server.cfg.get("etcd-snapshot-retention") or 5)
                return 200, {"lines": _snapshot.prune(self.server, retention, req.get("name") or None)}, "application/json"
        except (RuntimeError, OSError, _s3.S3Error) as exc:
            return 500, f"{exc}\n".encode(), "text/plain"
        return 400, f"unknown snapshot operation {op}\n".encode(), "text/plain"

    def _kubelet_cert(self, headers: dict[str, str]) -> tuple[int, Any, str]:
        """An agent's kubelet client certificate, after K3s's node password check: the first request for a
        node name stores the password's hash (Secret kube-system/<node>.node-password.k3s); a later one
        with another password is refused, as K3s refuses a duplicate hostname."""
        import hashlib

        from . import _pki
        h = {k.lower(): v for k, v in headers.items()}
        name, password = h.get("k3s-node-name", ""), h.get("k3s-node-password", "")
        if not name or not password:
            return 400, b"missing node name or node password\n", "text/plain"
        key = f"/registry/secrets/kube-system/{name}.node-password.k3s"
        digest = hashlib.sha256(password.encode()).hexdigest()
        secret = {"apiVersion": "v1", "kind": "Secret", "type": "k3s.cattle.io/node-password",
                  "metadata": {"name": f"{name}.node-password.k3s", "namespace": "kube-system"}, "data": {"hash": digest}}
        gw = self.server.gateway
        if not gw.create(key, json.dumps(secret)):
            stored = json.loads(gw.get(key)[0]["value"]).get("data", {}).get("hash")
            if stored != digest:
                return 403, ("Node password rejected, duplicate hostname or contents of '/etc/rancher/node/password' "
                             "may not match server node-passwd entry, try enabling a unique node name with the "
                             "--with-node-id flag\n").encode(), "text/plain"
        return 200, _pki.issue_client_cert(self.server.paths.data, f"system:node:{name}", ["system:nodes"]), "text/plain"

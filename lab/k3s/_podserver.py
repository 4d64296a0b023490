"""The process a lab container runs: a small HTTP server whose behaviour comes from its image.

Lab images (built by ``docker import`` or pushed to the lab registry) carry their behaviour in the
image config's labels, so a "bad image" is bad the way a real one is: it fails its probes, crashes
on start, or exits later, and the kubelet's real probe rules decide what happens next.

Labels (all optional):
  ``lab.honeydue/ready-after``   seconds after start before any path answers 2xx (503 before)
  ``lab.honeydue/status``        the status every path answers once ready (default 200; 500 = broken)
  ``lab.honeydue/fail-paths``    comma-separated paths that always answer 500 (a broken health check)
  ``lab.honeydue/crash``         exit at once with this code (a binary that cannot start)
  ``lab.honeydue/exit-after``    seconds after which the process exits with code 1
  ``lab.honeydue/term-delay``    seconds between SIGTERM and exit (default 0; a graceful stop)

Every answer is JSON naming the pod, node, image and what was asked (method, path, Host and
X-Forwarded-* headers, the peer address), so a test sees which pod of which node answered.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "lab.honeydue/"


@dataclass(frozen=True)
class Behaviour:
    ready_after: float = 0.0
    status: int = 200
    fail_paths: tuple[str, ...] = ()
    crash: int | None = None
    exit_after: float | None = None
    term_delay: float = 0.0

    @classmethod
    def from_labels(cls, labels: dict[str, str] | None) -> Behaviour:
        """The behaviour an image's config labels describe (unknown ``lab.honeydue/`` labels are an error)."""
        labels = {k[len(PREFIX):]: v for k, v in (labels or {}).items() if k.startswith(PREFIX)}
        known = {"ready-after", "status", "fail-paths", "crash", "exit-after", "term-delay"}
        unknown = sorted(set(labels) - known)
        if unknown:
            raise ValueError(f"unknown image behaviour label(s): {', '.join(PREFIX + u for u in unknown)}")
        return cls(ready_after=float(labels.get("ready-after", 0)),
                   status=int(labels.get("status", 200)),
                   fail_paths=tuple(p for p in labels.get("fail-paths", "").split(",") if p),
                   crash=int(labels["crash"]) if "crash" in labels else None,
                   exit_after=float(labels["exit-after"]) if "exit-after" in labels else None,
                   term_delay=float(labels.get("term-delay", 0)))

    def answer(self, path: str, uptime: float) -> int:
        """The status code for ``path`` after ``uptime`` seconds."""
        if path.split("?", 1)[0] in self.fail_paths:
            return 500
        if uptime < self.ready_after:
            return 503
        return self.status


def _handler(identity: dict[str, str], behaviour: Behaviour, started: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "lab-pod/1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return

        def _serve(self) -> None:
            code = behaviour.answer(self.path, time.monotonic() - started)
            body = json.dumps({**identity, "method": self.command, "path": self.path,
                               "host": self.headers.get("Host", ""), "peer": self.client_address[0],
                               "forwarded": {k: v for k, v in self.headers.items()
                                             if k.lower().startswith("x-forwarded-") or k.lower() == "x-real-ip"},
                               "status": code}).encode() + b"\n"
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve  # noqa: N815 - stdlib naming

    return Handler


def _tls_context() -> ssl.SSLContext:
    """A self-signed serving certificate made at start (as metrics-server's ``--cert-dir``)."""
    import datetime
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost@lab-pod")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365)).sign(key, hashes.SHA256()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        pem = os.path.join(tmp, "tls.pem")
        with open(os.open(pem, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as fh:
            fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
            fh.write(cert.public_bytes(serialization.Encoding.PEM))
        ctx.load_cert_chain(pem)
    return ctx


def serve(address: str, ports: list[int], identity: dict[str, str], behaviour: Behaviour,
          tls_ports: list[int] | None = None) -> int:
    """Run until SIGTERM (exit 0 after the term delay), or as the behaviour says. ``tls_ports``
    serve the same over HTTPS with a self-signed certificate."""
    if behaviour.crash is not None:
        print(f"lab pod {identity.get('pod')}: crashing on start (exit {behaviour.crash})", file=sys.stderr)
        return behaviour.crash
    started = time.monotonic()
    servers = [ThreadingHTTPServer((address, port), _handler(identity, behaviour, started)) for port in ports]
    if tls_ports:
        ctx = _tls_context()
        for port in tls_ports:
            srv = ThreadingHTTPServer((address, port), _handler(identity, behaviour, started))
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
            servers.append(srv)
    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    done = threading.Event()
    code = [0]

    def on_term(_signum: int, _frame: Any) -> None:
        threading.Timer(behaviour.term_delay, done.set).start()

    signal.signal(signal.SIGTERM, on_term)
    print(f"lab pod {identity.get('pod')}: serving on {address} ports {ports}", file=sys.stderr, flush=True)
    if behaviour.exit_after is not None and not done.wait(behaviour.exit_after):
        code[0] = 1
        print(f"lab pod {identity.get('pod')}: exiting after {behaviour.exit_after}s", file=sys.stderr)
        done.set()
    done.wait()
    for srv in servers:
        srv.shutdown()
    return code[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="0.0.0.0")  # noqa: S104 - the pod's own namespace
    parser.add_argument("--port", type=int, action="append", default=[])
    parser.add_argument("--tls-port", type=int, action="append", default=[], help="serve HTTPS here (self-signed)")
    parser.add_argument("--labels", default="{}", help="the image config's labels, as JSON")
    args = parser.parse_args(argv)
    identity = {"pod": os.environ.get("POD_NAME", ""), "namespace": os.environ.get("POD_NAMESPACE", ""),
                "node": os.environ.get("NODE_NAME", ""), "image": os.environ.get("POD_IMAGE", ""),
                "pod_ip": os.environ.get("POD_IP", "")}
    return serve(args.address, args.port, identity, Behaviour.from_labels(json.loads(args.labels)), args.tls_port)


if __name__ == "__main__":
    sys.exit(main())

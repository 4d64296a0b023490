"""A stand-in for Cloudflare's proxy (the edge) in front of the lab's origins.

Tests poll ``https://api.<zone>/...`` through it as a visitor does while the zone's SSL settings change
underneath. It listens on two loopback ports, one for HTTP and one for HTTPS visitors (a visitor-side
certificate for ``<zone>`` and ``*.<zone>`` from a lab "edge CA" it generates: :attr:`Edge.edge_ca_pem`),
and forwards each request to one of the origins of the visitor's host the way Cloudflare does:

* encryption mode (``settings()["ssl"]``, Cloudflare's docs "SSL/TLS encryption modes"):
  ``off`` redirects HTTPS visitors to plaintext HTTP (301) and talks HTTP to the origin;
  ``flexible`` talks plain HTTP to ``origin:http_port`` whatever the visitor's scheme;
  ``full`` uses the visitor's scheme (HTTP -> ``origin:http_port``, HTTPS -> TLS to ``origin:https_port``)
  and does not validate the origin certificate; ``strict`` (Full (strict)) is ``full`` that also
  validates it: signed by ``origin_ca_pem`` (the lab's Cloudflare Origin CA), not expired, and valid
  for the visitor's host name (also the SNI sent to the origin);
* zone-level Authenticated Origin Pulls: with ``aop_enabled`` and an ``aop_certificate`` the edge
  presents that client certificate on its TLS connections to the origin, otherwise none;
* Always Use HTTPS: an HTTP visitor gets ``301 Location: https://<host><path>`` without the origin
  being contacted (ignored while ``ssl`` is ``off``, which itself redirects the other way: no loop);
* the 5xx answers: 520 unknown error (empty reply, reset, garbage), 521 connection refused, 522
  connection (or TLS handshake) timed out, 523 origin unreachable (no route), 524 no answer within
  ``response_timeout`` (Cloudflare: 100 s), 525 TLS handshake failed (no TLS on the port, the origin
  wants a client certificate and got none or a wrong one), 526 invalid origin certificate in
  ``strict``, 530 with error 1016 when the host has no origin (1001 for a host outside the zone).
  The body is Cloudflare's plain-text form ``error code: NNN``; the header ``CF-Error-Code`` (a lab
  header, Cloudflare puts the code only in the page) carries it too, and ``X-Lab-Edge-Detail`` says
  what went wrong in lab terms.
* origin choice: round robin over ``origins(host)``. The Free plan has no retry: a dead origin fails
  the requests that land on it. ``retry_other_origin=True`` models paid Load Balancing's zero-downtime
  failover: one retry on the next origin when the first attempt ends in 521, 522, 523, 525 or 526
  (the codes Cloudflare's "Adaptive routing" docs list; all happen before the request is sent).

Settings come from ``settings()`` (the shape of ``CloudflareStandIn.zone_settings``), read on each
request (and by a small poller while ``lag`` > 0); a new value takes effect ``lag`` seconds after the
edge first saw it, as Cloudflare settings propagate. If ``settings()`` raises, the edge keeps what it had.

Request forwarding: method, path, query, headers and body go to the origin with hop-by-hop headers
dropped, ``Host`` kept, ``Connection: close``, and Cloudflare's ``CF-Connecting-IP``, ``X-Forwarded-For``
(appended), ``X-Forwarded-Proto``, ``CF-Visitor`` and ``CF-Ray`` set. The answer goes back with
``Server: cloudflare`` and the same ``CF-Ray``.

Helpers mint the lab's certificates: :func:`origin_ca` / :func:`origin_certificate` (a "Cloudflare
Origin CA" and an origin certificate from it) and :func:`client_ca` / :func:`client_certificate` (an
AOP client CA and the client certificate the edge presents).
"""
from __future__ import annotations

import copy
import datetime
import errno
import hashlib
import http.client
import ipaddress
import json
import os
import secrets
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Edge", "EdgeLogEntry", "EdgeResponse", "ERRORS", "origin_ca", "origin_certificate",
           "client_ca", "client_certificate"]

# Cloudflare's names for its own status codes (the titles of its error pages).
ERRORS = {
    520: "Web server is returning an unknown error",
    521: "Web server is down",
    522: "Connection timed out",
    523: "Origin is unreachable",
    524: "A timeout occurred",
    525: "SSL handshake failed",
    526: "Invalid SSL certificate",
    530: "Origin DNS error",
}
# Zero-downtime failover retries once on these (Cloudflare Load Balancing, "Adaptive routing").
FAILOVER_CODES = frozenset({521, 522, 523, 525, 526})
SSL_MODES = ("off", "flexible", "full", "strict")
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
ERROR_HEADER = "CF-Error-Code"
DETAIL_HEADER = "X-Lab-Edge-Detail"
COLO = "LAB"
DEFAULT_SETTINGS = {"ssl": "off", "always_use_https": "off", "aop_enabled": False, "aop_certificate": None}


class EdgeLogEntry(NamedTuple):
    """One visitor request as the edge answered it. ``origin`` is ``"ip:port"`` of the origin that gave
    the answer (the last one tried), or None when no origin was contacted (redirect, no origin)."""

    time: float
    host: str
    scheme: str
    status: int
    origin: str | None


class EdgeResponse(NamedTuple):
    """What :meth:`Edge.request` got: status, headers (names lower-cased; repeated ones joined by
    ``", "``), body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


# --------------------------------------------------------------------------------------------- certificates

def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _pem_cert(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _make_ca(common_name: str, organization: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(days=1))
            .not_valid_after(_now() + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, hashes.SHA256()))
    return _pem_cert(cert), _pem_key(key)


def _san(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def _make_leaf(ca: tuple[str, str], common_name: str, sans: Iterable[str], usage: x509.ObjectIdentifier, *,
               days: int = 365, expired: bool = False, organization: str = "honeydue lab") -> tuple[str, str]:
    ca_cert = x509.load_pem_x509_certificate(ca[0].encode())
    ca_key = serialization.load_pem_private_key(ca[1].encode(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    if expired:
        start, end = _now() - datetime.timedelta(days=days + 2), _now() - datetime.timedelta(days=1)
    else:
        start, end = _now() - datetime.timedelta(hours=1), _now() + datetime.timedelta(days=days)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                                        x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),
                              critical=False))
    sans = list(sans)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(_san(sans)), critical=False)
    return _pem_cert(builder.sign(ca_key, hashes.SHA256())), _pem_key(key)


def origin_ca() -> tuple[str, str]:
    """A lab stand-in for Cloudflare's Origin CA: ``(ca_cert_pem, ca_key_pem)``. Give the certificate to
    :class:`Edge` as ``origin_ca_pem``; ``strict`` accepts origin certificates it signed."""
    return _make_ca("Lab Cloudflare Origin CA", "CloudFlare, Inc. (lab)")


def origin_certificate(ca: tuple[str, str], hostnames: Iterable[str], *, days: int = 5475,
                       expired: bool = False) -> tuple[str, str]:
    """An origin certificate ``(cert_pem, key_pem)`` from ``ca`` (``origin_ca()``) for ``hostnames``
    (DNS names, wildcards, or IP addresses), valid ``days`` (Cloudflare's default is 15 years), or
    already expired with ``expired=True``."""
    hostnames = list(hostnames)
    if not hostnames:
        raise ValueError("an origin certificate needs at least one host name")
    return _make_leaf(ca, "CloudFlare Origin Certificate", hostnames, ExtendedKeyUsageOID.SERVER_AUTH,
                      days=days, expired=expired, organization="CloudFlare, Inc. (lab)")


def client_ca() -> tuple[str, str]:
    """A CA for Authenticated Origin Pulls client certificates: ``(ca_cert_pem, ca_key_pem)``. The origin
    trusts it for client certificates (e.g. Traefik's ``clientAuth.caFiles``)."""
    return _make_ca("Lab AOP client CA", "honeydue lab")


def client_certificate(ca: tuple[str, str], common_name: str = "origin-pull.cloudflare.net", *,
                       days: int = 365, expired: bool = False) -> tuple[str, str]:
    """A client certificate ``(cert_pem, key_pem)`` from ``ca`` (``client_ca()``) to upload as the zone's
    AOP certificate. The common name defaults to that of Cloudflare's own origin-pull certificate."""
    return _make_leaf(ca, common_name, [], ExtendedKeyUsageOID.CLIENT_AUTH, days=days, expired=expired)


# --------------------------------------------------------------------------------------------- the edge

class _Fail(Exception):
    """A Cloudflare error answer: ``code`` (the HTTP status) and a lab detail."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class _Answer(NamedTuple):
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


def _host_of(header: str) -> str:
    host = header.strip().lower()
    if host.startswith("["):  # [v6]:port
        return host[1:host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _connect_failure(exc: OSError) -> _Fail:
    if isinstance(exc, ConnectionRefusedError):
        return _Fail(521, "the origin refused the connection")
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return _Fail(522, "connecting to the origin timed out")
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
        return _Fail(523, f"the origin is unreachable: {exc}")
    return _Fail(520, f"connecting to the origin failed: {exc!r}")


def _tls_failure(exc: BaseException) -> _Fail:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _Fail(526, f"the origin certificate is invalid: {exc.verify_message or exc}")
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return _Fail(522, "the TLS handshake with the origin timed out")
    return _Fail(525, f"the TLS handshake with the origin failed: {exc!r}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr: tuple[str, int], edge: Edge, scheme: str, context: ssl.SSLContext | None) -> None:
        self.edge = edge
        self.scheme = scheme
        self.context = context
        super().__init__(addr, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Runs in the request's thread (ThreadingMixIn): the visitor's TLS handshake happens here.
        if self.context is not None:
            request.settimeout(30)
            try:
                request = self.context.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                request.close()
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:  # a visitor went away: not our problem
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def version_string(self) -> str:
        return "cloudflare"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's signature
        pass

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        self.close_connection = True
        edge, scheme = self.server.edge, self.server.scheme
        body = self._read_body()
        host = _host_of(self.headers.get("Host", ""))
        ray = f"{secrets.token_hex(8)}-{COLO}"
        answer, origin = edge._answer(self.command, self.path, host, scheme, self.client_address[0],
                                      self.headers, body, ray)
        edge._record(host, scheme, answer.status, origin)
        self.send_response(answer.status, answer.reason)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("CF-Ray", ray)
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and answer.body:
            self.wfile.write(answer.body)


class Edge:
    """Cloudflare's proxy for one zone, in front of the lab's origins. See the module docstring.

    ``settings()`` returns ``{"ssl", "always_use_https", "aop_enabled", "aop_certificate"}``;
    ``origins(host)`` the origin IPs of a host name. ``start()`` / ``stop()`` or use it as a context
    manager; visitors use :attr:`http_url` / :attr:`https_url` (ports :attr:`http_port` /
    :attr:`https_port`) with the zone's host name in ``Host`` / SNI, or :meth:`request`.
    """

    def __init__(self, settings: Callable[[], dict[str, Any]], origins: Callable[[str], list[str]], *,
                 zone: str, origin_ca_pem: str | None = None, http_port: int = 80, https_port: int = 443,
                 retry_other_origin: bool = False, bind: str = "127.0.0.1", source_address: str | None = None,
                 lag: float = 0.0, connect_timeout: float = 15.0, response_timeout: float = 100.0,
                 listen_http_port: int = 0, listen_https_port: int = 0, poll_interval: float | None = 0.2) -> None:
        self.zone = zone.lower().rstrip(".")
        self.settings = settings
        self.origins = origins
        self.origin_ca_pem = origin_ca_pem
        self.origin_http_port = http_port
        self.origin_https_port = https_port
        self.retry_other_origin = retry_other_origin
        self.bind = bind
        self.source_address = source_address
        self.lag = lag
        self.connect_timeout = connect_timeout
        self.response_timeout = response_timeout
        self.poll_interval = poll_interval
        self._listen = (listen_http_port, listen_https_port)
        self._log: list[EdgeLogEntry] = []
        self._log_lock = threading.Lock()
        self._rr: dict[str, int] = {}
        self._rr_lock = threading.Lock()
        self._settings_lock = threading.Lock()
        self._seen: dict[str, Any] | None = None
        self._pending: list[tuple[float, dict[str, Any]]] = []
        self._effective: dict[str, Any] = dict(DEFAULT_SETTINGS)
        self._contexts: dict[tuple[str, str], ssl.SSLContext] = {}
        self._contexts_lock = threading.Lock()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.edge_ca_pem, edge_ca_key = _make_ca("Lab Cloudflare edge CA", "honeydue lab")
        names = [self.zone, f"*.{self.zone}"]
        loopback = "127.0.0.1" if bind in ("0.0.0.0", "") else bind
        try:
            ipaddress.ip_address(loopback)
            names.append(loopback)
        except ValueError:
            pass
        self._visitor_cert = _make_leaf((self.edge_ca_pem, edge_ca_key), self.zone, names,
                                        ExtendedKeyUsageOID.SERVER_AUTH, organization="Cloudflare, Inc. (lab)")

    # -- life cycle

    def start(self) -> Edge:
        if self._servers:
            return self
        self._tmp = tempfile.TemporaryDirectory(prefix="lab-edge-")
        cert_file, key_file = self._files(*self._visitor_cert)
        visitor_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        visitor_ctx.load_cert_chain(cert_file, key_file)
        visitor_ctx.set_alpn_protocols(["http/1.1"])
        self._refresh_settings(initial=True)
        self._servers = [_Server((self.bind, self._listen[0]), self, "http", None),
                         _Server((self.bind, self._listen[1]), self, "https", visitor_ctx)]
        self._stopping.clear()
        for server in self._servers:
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                      name=f"edge-{server.scheme}", daemon=True)
            thread.start()
            self._threads.append(thread)
        if self.lag > 0 and self.poll_interval:
            thread = threading.Thread(target=self._poll, name="edge-settings", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        with self._contexts_lock:
            self._contexts.clear()

    def __enter__(self) -> Edge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def http_port(self) -> int:
        return self._servers[0].server_address[1]

    @property
    def https_port(self) -> int:
        return self._servers[1].server_address[1]

    @property
    def _connect_host(self) -> str:
        return "127.0.0.1" if self.bind in ("0.0.0.0", "") else self.bind

    @property
    def http_url(self) -> str:
        return f"http://{self._connect_host}:{self.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://{self._connect_host}:{self.https_port}"

    # -- what tests look at

    @property
    def log(self) -> list[EdgeLogEntry]:
        """A copy of the request log, oldest first."""
        with self._log_lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    @property
    def applied_settings(self) -> dict[str, Any]:
        """The settings the edge acts on now (after ``lag``)."""
        return copy.deepcopy(self._refresh_settings())

    def client_context(self) -> ssl.SSLContext:
        """An SSL context for visitors that trusts :attr:`edge_ca_pem`."""
        return ssl.create_default_context(cadata=self.edge_ca_pem)

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes | None = None,
                timeout: float = 30.0) -> EdgeResponse:
        """Send one visitor request for ``url`` (``http(s)://<host>[/path]``) to this edge, as if DNS pointed
        ``<host>`` at it (``curl --resolve``): SNI and ``Host`` are the URL's host, the certificate is
        checked against :attr:`edge_ca_pem`. Redirects are not followed."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        port = self.https_port if parts.scheme == "https" else self.http_port
        conn = http.client.HTTPConnection(self._connect_host, port, timeout=timeout)
        try:
            sock = socket.create_connection((self._connect_host, port), timeout=timeout)
            if parts.scheme == "https":
                sock = self.client_context().wrap_socket(sock, server_hostname=host)
            conn.sock = sock
            conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
            resp = conn.getresponse()
            data = resp.read()
            merged: dict[str, str] = {}
            for name, value in resp.getheaders():
                key = name.lower()
                merged[key] = f"{merged[key]}, {value}" if key in merged else value
            return EdgeResponse(resp.status, merged, data)
        finally:
            conn.close()

    # -- settings

    def _refresh_settings(self, initial: bool = False) -> dict[str, Any]:
        try:
            seen = dict(DEFAULT_SETTINGS, **self.settings())
        except Exception:  # noqa: BLE001 - the control plane is down: the edge keeps what it had
            seen = None
        now = time.monotonic()
        with self._settings_lock:
            if seen is not None and seen != self._seen:
                self._seen = copy.deepcopy(seen)
                if initial:
                    self._effective, self._pending = self._seen, []
                else:
                    self._pending.append((now, self._seen))
            while self._pending and self._pending[0][0] + self.lag <= now:
                self._effective = self._pending.pop(0)[1]
            return self._effective

    def _poll(self) -> None:
        while not self._stopping.wait(self.poll_interval or 0.2):
            self._refresh_settings()

    # -- TLS to the origin

    def _files(self, cert_pem: str, key_pem: str) -> tuple[str, str]:
        assert self._tmp is not None
        digest = hashlib.sha256((cert_pem + key_pem).encode()).hexdigest()[:24]
        cert_file = os.path.join(self._tmp.name, f"{digest}.crt")
        key_file = os.path.join(self._tmp.name, f"{digest}.key")
        if not os.path.exists(key_file):
            with open(cert_file, "w") as f:
                f.write(cert_pem)
            fd = os.open(key_file + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key_pem)
            os.replace(key_file + ".tmp", key_file)
        return cert_file, key_file

    def _origin_context(self, strict: bool, client: dict[str, str] | None) -> ssl.SSLContext:
        client_id = "" if client is None else hashlib.sha256(
            (client["certificate"] + client["private_key"]).encode()).hexdigest()
        key = ("strict" if strict else "full", client_id)
        with self._contexts_lock:
            ctx = self._contexts.get(key)
            if ctx is not None:
                return ctx
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            if strict:
                if self.origin_ca_pem:
                    ctx.load_verify_locations(cadata=self.origin_ca_pem)
                ctx.check_hostname = True
                ctx.verify_mode = ssl.CERT_REQUIRED
            else:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if client is not None:
                ctx.load_cert_chain(*self._files(client["certificate"], client["private_key"]))
            self._contexts[key] = ctx
            return ctx

    # -- one visitor request

    def _record(self, host: str, scheme: str, status: int, origin: str | None) -> None:
        with self._log_lock:
            self._log.append(EdgeLogEntry(time.time(), host, scheme, status, origin))

    def _in_zone(self, host: str) -> bool:
        return host == self.zone or host.endswith(f".{self.zone}")

    @staticmethod
    def _error(code: int, detail: str, error_code: int | None = None) -> _Answer:
        shown = error_code or code
        body = f"error code: {shown}\n".encode()
        return _Answer(code, ERRORS.get(code, ""), [
            ("Content-Type", "text/plain; charset=UTF-8"), ("Content-Length", str(len(body))),
            (ERROR_HEADER, str(shown)), (DETAIL_HEADER, detail.replace("\r", " ").replace("\n", " ")[:300]),
            ("Cache-Control", "private, max-age=0, no-store, no-cache, must-revalidate")], body)

    @staticmethod
    def _redirect(location: str) -> _Answer:
        return _Answer(301, "Moved Permanently", [("Location", location), ("Content-Length", "0")], b"")

    def _next_index(self, host: str) -> int:
        with self._rr_lock:
            index = self._rr.get(host, 0)
            self._rr[host] = index + 1
            return index

    def _answer(self, method: str, path: str, host: str, scheme: str, visitor_ip: str, headers: Any, body: bytes,
                ray: str) -> tuple[_Answer, str | None]:
        settings = self._refresh_settings()
        mode = settings.get("ssl")
        if not self._in_zone(host):
            return self._error(530, f"{host!r} is not in zone {self.zone}", 1001), None
        if mode not in SSL_MODES:
            return self._error(520, f"unknown ssl mode {mode!r}"), None
        if mode == "off" and scheme == "https":
            return self._redirect(f"http://{host}{path}"), None
        if mode != "off" and scheme == "http" and settings.get("always_use_https") == "on":
            return self._redirect(f"https://{host}{path}"), None
        try:
            ips = list(self.origins(host) or [])
        except Exception as exc:  # noqa: BLE001 - a broken DNS lookup is an origin DNS error
            return self._error(530, f"looking up the origins of {host} failed: {exc!r}", 1016), None
        if not ips:
            return self._error(530, f"{host} has no origin", 1016), None
        tls = mode in ("full", "strict") and scheme == "https"
        port = self.origin_https_port if tls else self.origin_http_port
        client = settings.get("aop_certificate") if settings.get("aop_enabled") else None
        index = self._next_index(host)
        attempts = 2 if self.retry_other_origin and len(ips) > 1 else 1
        answer, origin = None, None
        for attempt in range(attempts):
            ip = ips[(index + attempt) % len(ips)]
            origin = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
            try:
                answer = self._forward(ip, port, tls, mode == "strict", client, method, path, host, scheme,
                                       visitor_ip, headers, body, ray)
                break
            except _Fail as fail:
                answer = self._error(fail.code, f"{origin}: {fail.detail}")
                if fail.code not in FAILOVER_CODES:
                    break
        assert answer is not None
        return answer, origin

    def _origin_request(self, method: str, path: str, host: str, scheme: str, visitor_ip: str, headers: Any,
                        body: bytes, ray: str) -> bytes:
        connection_tokens = {t.strip().lower() for v in headers.get_all("Connection", []) for t in v.split(",")}
        drop = HOP_BY_HOP | connection_tokens | {"content-length", "host", "cf-connecting-ip", "cf-ray",
                                                 "cf-visitor", "x-forwarded-proto"}
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
        forwarded_for = None
        for name, value in headers.items():
            low = name.lower()
            if low in drop:
                continue
            if low == "x-forwarded-for":
                forwarded_for = f"{forwarded_for}, {value}" if forwarded_for else value
                continue
            lines.append(f"{name}: {value}")
        lines += [f"CF-Connecting-IP: {visitor_ip}",
                  f"X-Forwarded-For: {forwarded_for + ', ' if forwarded_for else ''}{visitor_ip}",
                  f"X-Forwarded-Proto: {scheme}",
                  f'CF-Visitor: {{"scheme":"{scheme}"}}',
                  f"CF-Ray: {ray}",
                  "Connection: close"]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def _forward(self, ip: str, port: int, tls: bool, strict: bool, client: dict[str, str] | None, method: str,
                 path: str, host: str, scheme: str, visitor_ip: str, headers: Any, body: bytes, ray: str) -> _Answer:
        source = (self.source_address, 0) if self.source_address else None
        try:
            sock = socket.create_connection((ip, port), timeout=self.connect_timeout, source_address=source)
        except OSError as exc:
            raise _connect_failure(exc) from exc
        try:
            if tls:
                try:
                    ctx = self._origin_context(strict, client)
                except (ssl.SSLError, OSError) as exc:
                    raise _Fail(525, f"the zone's AOP certificate cannot be used: {exc!r}") from exc
                try:
                    sock = ctx.wrap_socket(sock, server_hostname=host)
                except (ssl.SSLError, OSError) as exc:
                    raise _tls_failure(exc) from exc
            sock.settimeout(self.response_timeout)
            return self._exchange(sock, tls, self._origin_request(method, path, host, scheme, visitor_ip, headers,
                                                                  body, ray), method)
        finally:
            try:
                sock.close()
            except OSError:
                pass

    @staticmethod
    def _exchange(sock: socket.socket, tls: bool, request: bytes, method: str) -> _Answer:
        resp = http.client.HTTPResponse(sock, method=method)
        try:
            try:
                sock.sendall(request)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the origin may have answered already (or failed the TLS session): read what it said
            resp.begin()
            data = resp.read()
        except (TimeoutError, socket.timeout) as exc:
            raise _Fail(524, "the origin did not answer in time") from exc
        except ssl.SSLError as exc:
            if tls and not isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
                # TLS 1.3: the origin rejects the client certificate after the client's side of the handshake
                # is done; its alert arrives with the first read. Cloudflare counts it as a failed handshake.
                raise _Fail(525, f"the origin ended the TLS session: {exc!r}") from exc
            raise _Fail(520, f"the TLS session with the origin broke: {exc!r}") from exc
        except (http.client.HTTPException, OSError) as exc:
            raise _Fail(520, f"the origin's answer was empty or broken: {exc!r}") from exc
        finally:
            resp.close()
        out: list[tuple[str, str]] = []
        connection_tokens = {t.strip().lower() for v in resp.headers.get_all("Connection", []) for t in v.split(",")}
        for name, value in resp.getheaders():
            low = name.lower()
            if low in HOP_BY_HOP or low in connection_tokens or low in ("server", "date", "content-length"):
                continue
            out.append((name, value))
        if method == "HEAD":
            if resp.headers.get("Content-Length"):
                out.append(("Content-Length", resp.headers["Content-Length"]))
        else:
            out.append(("Content-Length", str(len(data))))
        return _Answer(resp.status, resp.reason, out, data)

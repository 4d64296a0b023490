"""The lab registry's token server: the distribution token-auth flow as Gitea's ``/v2/token`` runs it.

``GET /v2/token?service=<service>&scope=repository:<name>:<actions>...`` with Basic credentials
(https://distribution.github.io/distribution/spec/auth/token/):

* no credentials: a token with an empty ``access`` claim (Gitea's ghost user: the token is issued,
  the registry then refuses the pull);
* wrong credentials: 401 ``{"errors": [{"code": "UNAUTHORIZED", ...}]}``, as Gitea answers;
* right credentials: a JWT whose ``access`` claim grants the requested actions (only ``pull`` for a
  user in ``readonly``); answered as ``{"token", "access_token", "expires_in", "issued_at"}``.

The JWT (RS256) names its signing key as distribution 2.8's verifier
(registry/auth/token/token.go, ``VerifySigningKey``) can find it, in its order of preference:
``x5c`` -- the signing certificate chain, verified against the registry's ``rootcertbundle``; or
``kid`` -- the key's libtrust fingerprint, looked up among the public keys of the certificates in
``rootcertbundle``. ``key_reference`` chooses (``"x5c"`` or ``"kid"``); the signing certificate is
self-signed and is itself the registry's ``rootcertbundle``. The claims the registry checks:
``iss`` (its ``issuer``), ``aud`` (its ``service``), ``exp``/``nbf`` (60 s leeway) and ``access``.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

ISSUER = "honeydue-lab-token-issuer"
SERVICE = "container_registry"  # what Gitea calls its registry service


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def libtrust_key_id(public_key) -> str:
    """docker/libtrust ``keyIDFromCryptoKey``: SHA-256 of the DER SubjectPublicKeyInfo, first 240
    bits, base32 without padding, in twelve groups of four joined by ``:``."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode("ascii").rstrip("=")
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


def signing_identity(common_name: str = "honeydue lab registry token signer"):
    """A fresh RSA key and a self-signed certificate for it (valid from an hour ago, for a day)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def parse_scope(scope: str):
    """``repository:<name>:<a,b>`` -> ``{"type", "name", "actions"}`` (None when it does not parse)."""
    kind, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not kind or not name:
        return None
    return {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}


class TokenServer:
    """``TokenServer(users, readonly=(), key_reference="x5c").start()``; ``.realm``, ``.cert_pem``,
    ``.requests`` (one dict per token request: user, scopes, status), ``.stop()``."""

    def __init__(self, users: dict[str, str], *, readonly=(), key_reference: str = "x5c",
                 service: str = SERVICE, issuer: str = ISSUER, host: str = "127.0.0.1", ttl: int = 300):
        if key_reference not in ("x5c", "kid"):
            raise ValueError("key_reference is 'x5c' or 'kid'")
        self.users, self.readonly = dict(users), frozenset(readonly)
        self.key_reference, self.service, self.issuer, self.ttl = key_reference, service, issuer, ttl
        self.key, self.cert = signing_identity()
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM)
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def realm(self) -> str:
        return self.url + "/v2/token"

    def start(self) -> TokenServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="lab-registry-token", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- tokens ------------------------------------------------------------------------------

    def issue(self, subject: str, access: list[dict]) -> str:
        header = {"typ": "JWT", "alg": "RS256"}
        if self.key_reference == "x5c":
            header["x5c"] = [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode("ascii")]
        else:
            header["kid"] = libtrust_key_id(self.key.public_key())
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + self.ttl,
                  "nbf": now - 5, "iat": now, "jti": secrets.token_hex(16), "access": access}
        signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
            b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = self.key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(signature)

    def grant(self, user: str | None, scopes: list[str]) -> list[dict]:
        if user is None:
            return []
        access = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None or parsed["type"] != "repository":
                continue
            allowed = {"pull"} if user in self.readonly else {"pull", "push", "delete", "*"}
            parsed["actions"] = [a for a in parsed["actions"] if a in allowed]
            access.append(parsed)
        return access

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status, doc, extra=()):
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in extra:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                parts = urlsplit(self.path)
                if parts.path != "/v2/token":
                    return self._send(404, {"errors": [{"code": "NOT_FOUND", "message": parts.path}]})
                query = parse_qs(parts.query)
                scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
                user = None
                auth = self.headers.get("Authorization", "")
                record = {"scopes": scopes, "service": (query.get("service") or [None])[0], "user": None}
                if auth:
                    try:
                        scheme, _, value = auth.partition(" ")
                        name, _, password = base64.b64decode(value).decode("utf-8").partition(":")
                        if scheme.lower() != "basic":
                            raise ValueError(scheme)
                    except ValueError:
                        name, password = None, None
                    record["user"] = name
                    if name is None or not secrets.compare_digest(server.users.get(name, "\0").encode(),
                                                                  (password or "").encode()):
                        record["status"] = 401
                        with server._lock:
                            server.requests.append(record)
                        return self._send(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]},
                                          [("WWW-Authenticate", 'Basic realm="honeydue lab registry"')])
                    user = name
                token = server.issue(user or "", server.grant(user, scopes))
                record["status"] = 200
                with server._lock:
                    server.requests.append(record)
                now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                self._send(200, {"token": token, "access_token": token, "expires_in": server.ttl, "issued_at": now})

        return Handler

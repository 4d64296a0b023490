"""K3s join tokens and the token-encrypted bootstrap data.

Sources (k3s-io/k3s via the search tool, "K:"):

* K: pkg/clientaccess/token.go: ``K10`` prefix, 64-hex CA hash, ``parseToken`` (a value without the
  prefix is ``K10:::<value>`` unless it is a kubeadm bootstrap token ``[a-z0-9]{6}.[a-z0-9]{16}``),
  ``hashCA`` (SHA-256 of the file bytes for a single certificate; of the root's DER for a bundle),
  ``validateCAHash`` messages, ``FormatTokenBytes``.
* K: pkg/util/token.go: ``Random(n)`` = hex of n random bytes (passwords are ``Random(16)``: 32 hex),
  ``NormalizeToken`` (the password part, with its error text), ``ShortHash``.
* K: pkg/cluster/encrypt.go: ``storageKey`` ``/bootstrap/`` + first 12 hex of sha256(password);
  ``encrypt``: salt = ``Random(8)`` (16 hex characters, used as ASCII bytes), PBKDF2-HMAC-SHA1 4096
  rounds, 32-byte key, AES-256-GCM with a random 12-byte nonce; stored as
  ``<salt>:<base64(nonce || ciphertext || tag)>``; ``decrypt`` errors.
* K: pkg/cluster/storage.go ``getBootstrapKeyFromStorage``: another token's key in ``/bootstrap`` gives
  ``bootstrap data already found and encrypted with different token``.

Not reproduced: the migration of keys encrypted with the empty string or with the un-normalised
token (``migrateOldTokens``); kubeadm-style bootstrap tokens are parsed but not otherwise handled.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets

from cryptography import x509
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding

TOKEN_PREFIX = "K10"
CA_HASH_LENGTH = 64
_BOOTSTRAP_TOKEN = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")

HASH_MISMATCH = "token CA hash does not match the Cluster CA certificate hash: {token} != {server}"
NO_HASH_WARNING = ("Cluster CA certificate is not trusted by the host CA bundle, but the token does not include a "
                   "CA hash. Use the full token from the server's node-token file to enable Cluster CA validation.")
NORMALIZE_ERROR = ("failed to normalize server token; must be in format K10<CA-HASH>::<USERNAME>:<PASSWORD> "
                   "or <PASSWORD>")
DIFFERENT_TOKEN = "bootstrap data already found and encrypted with different token"
AUTH_FAILED = "cipher: message authentication failed"  # Go crypto/cipher gcm.Open


class TokenError(ValueError):
    """A token K3s refuses, with K3s's message."""


class BootstrapError(ValueError):
    """Bootstrap data that cannot be decrypted or selected, with K3s's message."""


def random_hex(nbytes: int) -> str:
    """``util.Random(n)``: ``n`` random bytes, hex-encoded (2n characters)."""
    return secrets.token_hex(nbytes)


def generate_password() -> str:
    """A server/agent password as K3s makes one when none is given: ``Random(16)``, 32 hex characters."""
    return random_hex(16)


def ca_hash(pem_bytes: bytes) -> str:
    """``hashCA``: sha256 hex of the CA file's bytes; for a bundle, of the DER of the first cert's root.

    Raises ``ValueError`` when the bytes hold no certificate (``certutil.ParseCertsPEM`` fails).
    """
    certs = x509.load_pem_x509_certificates(pem_bytes)
    if len(certs) > 1:
        root = _root_of(certs[0], certs[1:])
        if root is not None:
            pem_bytes = root.public_bytes(Encoding.DER)
    return hashlib.sha256(pem_bytes).hexdigest()


def _root_of(cert: x509.Certificate, others: list[x509.Certificate]) -> x509.Certificate | None:
    """Follow issuers among ``others`` up to a self-signed root (Go's ``Verify`` picks the first chain)."""
    seen = 0
    while seen <= len(others):
        seen += 1
        for issuer in others:
            try:
                cert.verify_directly_issued_by(issuer)
            except Exception:  # noqa: BLE001 - any failure means "not this issuer"
                continue
            if issuer.issuer == issuer.subject:
                return issuer
            cert = issuer
            break
        else:
            return None
    return None


def parse_token(token: str) -> dict:
    """``parseToken``: ``{"ca_hash", "username", "password", "bootstrap_token"}`` or ``TokenError``.

    ``K10<hash>::<user>:<password>`` and ``K10::<user>:<password>`` (empty hash) are full tokens; a
    value without ``K10`` is a bare password (username ``""``) unless it has the kubeadm bootstrap
    token form ``abcdef.0123456789abcdef``. A hash that is neither empty nor 64 characters is refused.
    """
    if not token:
        raise TokenError("token must not be empty")
    if not token.startswith(TOKEN_PREFIX):
        token = TOKEN_PREFIX + ("::" if _BOOTSTRAP_TOKEN.match(token) else ":::") + token
    body = token[len(TOKEN_PREFIX):]
    hash_part, sep, creds = body.partition("::")
    info = {"ca_hash": "", "username": None, "password": None, "bootstrap_token": None}
    if sep:
        if hash_part and len(hash_part) != CA_HASH_LENGTH:
            raise TokenError("invalid token CA hash length")
        info["ca_hash"] = hash_part
    else:
        creds = hash_part
    if _BOOTSTRAP_TOKEN.match(creds):
        info["bootstrap_token"] = creds
        return info
    user, colon, password = creds.partition(":")
    if not colon or not password:
        raise TokenError("invalid token format")
    info["username"], info["password"] = user, password
    return info


def normalize_token(token: str) -> str:
    """``util.NormalizeToken``: the password part of a full or bare token (K3s's storage passphrase)."""
    try:
        info = parse_token(token)
    except TokenError:
        raise TokenError(NORMALIZE_ERROR) from None
    if info["bootstrap_token"] is not None:
        raise TokenError(NORMALIZE_ERROR)
    return info["password"]


def format_token(ca_pem: bytes, password: str, username: str = "server") -> str:
    """``FormatTokenBytes``: ``K10<ca_hash>::<username>:<password>`` (``""`` for an empty password)."""
    if not password:
        return ""
    return f"{TOKEN_PREFIX}{ca_hash(ca_pem)}::{username}:{password}"


def validate_ca_hash(token: str, ca_pem: bytes) -> str | None:
    """``validateCAHash`` against the CA a server's ``/cacerts`` returned.

    Raises ``TokenError`` with K3s's "token CA hash does not match ..." text on a mismatch; returns
    K3s's warning when the token carries no hash, else ``None``.
    """
    token_hash = parse_token(token)["ca_hash"]
    if not token_hash:
        return NO_HASH_WARNING
    server_hash = ca_hash(ca_pem)
    if token_hash != server_hash:
        raise TokenError(HASH_MISMATCH.format(token=token_hash, server=server_hash))
    return None


def bootstrap_key(password: str) -> str:
    """``storageKey``: the etcd key of the bootstrap data, ``/bootstrap/<sha256(password)[:12]>``."""
    return "/bootstrap/" + key_hash(password)


def _derive(password: str, salt: bytes) -> AESGCM:
    return AESGCM(hashlib.pbkdf2_hmac("sha1", password.encode(), salt, 4096, 32))


def encrypt_bootstrap(password: str, data: bytes, *, salt: str | None = None, nonce: bytes | None = None) -> bytes:
    """``encrypt``: ``b"<16-hex salt>:<base64(nonce||ciphertext||tag)>"`` (salt and nonce random unless given)."""
    salt = salt if salt is not None else random_hex(8)
    nonce = nonce if nonce is not None else os.urandom(12)
    sealed = nonce + _derive(password, salt.encode()).encrypt(nonce, data, None)
    return (salt + ":" + base64.b64encode(sealed).decode()).encode()


def decrypt_bootstrap(password: str, blob: bytes) -> bytes:
    """``decrypt``: the plaintext, or ``BootstrapError`` (``cipher: message authentication failed`` for a wrong token)."""
    salt, sep, encoded = blob.decode("latin-1").partition(":")
    if not sep:
        raise BootstrapError("invalid cipher text, not : delimited")
    try:
        data = base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise BootstrapError(f"illegal base64 data: {exc}") from None
    if len(data) < 12 + 16:
        raise BootstrapError(AUTH_FAILED)
    try:
        return _derive(password, salt.encode()).decrypt(data[:12], data[12:], None)
    except Exception:  # noqa: BLE001 - cryptography raises InvalidTag
        raise BootstrapError(AUTH_FAILED) from None


def select_bootstrap_key(keys: list[str], token: str) -> str | None:
    """``getBootstrapKeyFromStorage`` without the legacy migrations.

    ``keys`` are the etcd keys under ``/bootstrap``. Returns ``None`` when there are none (the
    caller saves new data), the key of ``token`` when present, else raises ``BootstrapError`` with
    K3s's "bootstrap data already found and encrypted with different token".
    """
    if not keys:
        return None
    mine = bootstrap_key(normalize_token(token))
    if mine in keys:
        return mine
    raise BootstrapError(DIFFERENT_TOKEN)


def key_hash(password: str) -> str:
    """``keyHash``/``util.ShortHash(password, 12)``: the 12 hex characters after ``/bootstrap/``."""
    return hashlib.sha256(password.encode()).hexdigest()[:12]


def password_from(token: str) -> str:
    """The storage password of a ``token`` flag value (``normalize_token``), ``""`` when no token is set."""
    return normalize_token(token) if token else ""


def check_ca_hash(token: str, ca_pem: bytes) -> None:
    """``validate_ca_hash`` for callers that only need the failure (``TokenError`` with K3s's text)."""
    validate_ca_hash(token, ca_pem)

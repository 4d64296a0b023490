"""K3s join tokens and bootstrap encryption (lab/k3s/_token.py)."""
from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding

from lab.k3s import _pki, _token


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    data = tmp_path_factory.mktemp("k3s")
    _pki.ensure_cas(data)
    _pki.ensure_leaf_certs(data, "node-1", ["192.0.2.10"])
    return data


def test_ca_hash_is_sha256sum_of_server_ca_pem(pki):
    path = pki / "server/tls/server-ca.crt"
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    if shutil.which("sha256sum"):
        expected = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]
    assert _token.ca_hash(path.read_bytes()) == expected


def test_ca_hash_of_a_bundle_is_the_hash_of_the_root_der(pki):
    bundle = (pki / "server/tls/serving-kube-apiserver.crt").read_bytes()  # leaf, then server CA
    root = x509.load_pem_x509_certificate((pki / "server/tls/server-ca.crt").read_bytes())
    assert _token.ca_hash(bundle) == hashlib.sha256(root.public_bytes(Encoding.DER)).hexdigest()
    assert _token.ca_hash(bundle) != hashlib.sha256(bundle).hexdigest()


def test_ca_hash_refuses_what_is_not_a_certificate():
    with pytest.raises(ValueError):
        _token.ca_hash(b"not a certificate")


def test_full_token_format_round_trips(pki):
    ca = (pki / "server/tls/server-ca.crt").read_bytes()
    token = _token.format_token(ca, "s3cret")
    assert token == f"K10{hashlib.sha256(ca).hexdigest()}::server:s3cret"
    assert _token.parse_token(token) == {"ca_hash": hashlib.sha256(ca).hexdigest(), "username": "server",
                                         "password": "s3cret", "bootstrap_token": None}
    assert _token.format_token(ca, "p", username="node").endswith("::node:p")
    assert _token.format_token(ca, "") == ""


@pytest.mark.parametrize("token, user, password, ca_hash", [
    ("just-a-password", "", "just-a-password", ""),          # short token: the password alone
    ("pass:with:colons", "", "pass:with:colons", ""),
    ("K10::server:pw", "server", "pw", ""),                  # full form without the CA hash
    ("K10::node:pw", "node", "pw", ""),
    ("K10" + "a" * 64 + "::node:p::w", "node", "p::w", "a" * 64),
])
def test_parse_token_accepts_k3s_forms(token, user, password, ca_hash):
    info = _token.parse_token(token)
    assert (info["username"], info["password"], info["ca_hash"]) == (user, password, ca_hash)


@pytest.mark.parametrize("token, message", [
    ("", "token must not be empty"),
    ("K10abc::server:pw", "invalid token CA hash length"),
    ("K10" + "a" * 64 + "::nopassword", "invalid token format"),
    ("K10" + "a" * 64 + "::server:", "invalid token format"),
    ("K10something", "invalid token format"),              # a bare password starting with K10 is refused, as in K3s
])
def test_parse_token_refusals_carry_k3s_messages(token, message):
    with pytest.raises(_token.TokenError, match=f"^{re.escape(message)}$"):
        _token.parse_token(token)


def test_kubeadm_style_bootstrap_token_is_recognised():
    assert _token.parse_token("abcdef.0123456789abcdef")["bootstrap_token"] == "abcdef.0123456789abcdef"
    with pytest.raises(_token.TokenError, match="failed to normalize server token"):
        _token.normalize_token("abcdef.0123456789abcdef")


def test_normalize_token_gives_the_password():
    assert _token.normalize_token("K10" + "b" * 64 + "::server:pw") == "pw"
    assert _token.normalize_token("pw") == "pw"
    assert _token.password_from("") == ""
    with pytest.raises(_token.TokenError, match=re.escape(
            "failed to normalize server token; must be in format K10<CA-HASH>::<USERNAME>:<PASSWORD> or <PASSWORD>")):
        _token.normalize_token("K10short::server:pw")


def test_ca_hash_check_against_the_servers_ca(pki, tmp_path):
    ca = (pki / "server/tls/server-ca.crt").read_bytes()
    assert _token.validate_ca_hash(_token.format_token(ca, "pw"), ca) is None
    assert "does not include a CA hash" in _token.validate_ca_hash("pw", ca)
    other = tmp_path / "other"
    _pki.ensure_cas(other)
    other_ca = (other / "server/tls/server-ca.crt").read_bytes()
    with pytest.raises(_token.TokenError) as caught:
        _token.check_ca_hash(_token.format_token(ca, "pw"), other_ca)
    assert str(caught.value) == ("token CA hash does not match the Cluster CA certificate hash: "
                                 f"{_token.ca_hash(ca)} != {_token.ca_hash(other_ca)}")


def test_generated_passwords_are_32_hex_like_random_16():
    first, second = _token.generate_password(), _token.generate_password()
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second


def test_bootstrap_key_is_first_12_hex_of_sha256_of_the_password():
    assert _token.bootstrap_key("secret") == "/bootstrap/2bb80d537b1d"  # sha256("secret") = 2bb80d537b1da3e3...
    assert _token.key_hash("secret") == "2bb80d537b1d"


def test_bootstrap_blob_has_k3s_storage_format():
    blob = _token.encrypt_bootstrap("pw", b'{"ServerCA":{}}')
    salt, encoded = blob.decode().split(":")
    assert re.fullmatch(r"[0-9a-f]{16}", salt)
    sealed = base64.b64decode(encoded)
    assert len(sealed) == 12 + len(b'{"ServerCA":{}}') + 16  # nonce, ciphertext, GCM tag
    # decrypt independently: PBKDF2-HMAC-SHA1(password, ascii salt, 4096, 32) -> AES-256-GCM
    key = hashlib.pbkdf2_hmac("sha1", b"pw", salt.encode(), 4096, 32)
    assert AESGCM(key).decrypt(sealed[:12], sealed[12:], None) == b'{"ServerCA":{}}'


def test_bootstrap_encryption_known_answer():
    blob = _token.encrypt_bootstrap("pw", b"data", salt="0011223344556677", nonce=bytes(12))
    key = hashlib.pbkdf2_hmac("sha1", b"pw", b"0011223344556677", 4096, 32)
    expected = b"0011223344556677:" + base64.b64encode(bytes(12) + AESGCM(key).encrypt(bytes(12), b"data", None))
    assert blob == expected
    assert _token.decrypt_bootstrap("pw", blob) == b"data"


def test_wrong_token_cannot_decrypt_with_the_go_gcm_message():
    blob = _token.encrypt_bootstrap("right", b"data")
    with pytest.raises(_token.BootstrapError, match="^cipher: message authentication failed$"):
        _token.decrypt_bootstrap("wrong", blob)
    with pytest.raises(_token.BootstrapError, match="^invalid cipher text, not : delimited$"):
        _token.decrypt_bootstrap("right", b"no-colon-here")


def test_bootstrap_key_selection_like_get_bootstrap_key_from_storage():
    assert _token.select_bootstrap_key([], "pw") is None
    assert _token.select_bootstrap_key([_token.bootstrap_key("pw")], "K10" + "c" * 64 + "::server:pw") == _token.bootstrap_key("pw")
    with pytest.raises(_token.BootstrapError, match="^bootstrap data already found and encrypted with different token$"):
        _token.select_bootstrap_key([_token.bootstrap_key("other")], "pw")

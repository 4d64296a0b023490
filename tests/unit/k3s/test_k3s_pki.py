"""K3s's certificate tree, bootstrap files and k3s.yaml (lab/k3s/_pki.py)."""
from __future__ import annotations

import base64
import json
import re
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lab.k3s import _pki

CA_FILES = ["server/tls/client-ca", "server/tls/server-ca", "server/tls/request-header-ca",
            "server/tls/etcd/server-ca", "server/tls/etcd/peer-ca"]


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def load(path):
    return x509.load_pem_x509_certificates(path.read_bytes())


def snapshot(data):
    return {p.relative_to(data): p.read_bytes() for p in sorted((data / "server/tls").rglob("*")) if p.is_file()}


@pytest.fixture
def data(tmp_path):
    _pki.ensure_cas(tmp_path)
    _pki.ensure_leaf_certs(tmp_path, "node-1", ["192.0.2.10"], ["k3s.example.com", "198.51.100.7"])
    return tmp_path


def test_cas_are_ecdsa_p256_ten_year_self_signed_with_k3s_names(tmp_path):
    made = _pki.ensure_cas(tmp_path)
    assert made == ["client-ca", "server-ca", "request-header-ca", "etcd/server-ca", "etcd/peer-ca", "service.key"]
    for stem, prefix in zip(CA_FILES, ["k3s-client", "k3s-server", "k3s-request-header", "etcd-server", "etcd-peer"], strict=True):
        [cert] = load(tmp_path / f"{stem}.crt")
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert re.fullmatch(rf"{prefix}-ca@\d+", cn)
        assert cert.issuer == cert.subject
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey) and cert.public_key().curve.name == "secp256r1"
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=3650)
        assert mode(tmp_path / f"{stem}.crt") == 0o644 and mode(tmp_path / f"{stem}.key") == 0o600
        assert (tmp_path / f"{stem}.key").read_text().startswith("-----BEGIN EC PRIVATE KEY-----")
    service = (tmp_path / "server/tls/service.key").read_bytes()
    assert isinstance(serialization.load_pem_private_key(service, None), rsa.RSAPrivateKey)


def test_cas_are_kept_across_restarts(tmp_path):
    _pki.ensure_cas(tmp_path)
    before = snapshot(tmp_path)
    assert _pki.ensure_cas(tmp_path) == []
    assert snapshot(tmp_path) == before


def test_a_ca_key_without_its_cert_is_reused(tmp_path):
    _pki.ensure_cas(tmp_path)
    key = (tmp_path / "server/tls/server-ca.key").read_bytes()
    old_cert = (tmp_path / "server/tls/server-ca.crt").read_bytes()
    (tmp_path / "server/tls/server-ca.crt").unlink()
    assert _pki.ensure_cas(tmp_path) == ["server-ca"]
    assert (tmp_path / "server/tls/server-ca.key").read_bytes() == key
    new = load(tmp_path / "server/tls/server-ca.crt")[0]
    assert new.public_key() == load_key(key).public_key()
    assert (tmp_path / "server/tls/server-ca.crt").read_bytes() != old_cert


def load_key(pem):
    return serialization.load_pem_private_key(pem, None)


def test_apiserver_serving_cert_has_k3s_sans(data):
    dns, ips = _pki.cert_sans((data / "server/tls/serving-kube-apiserver.crt").read_bytes())
    assert {"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
            "localhost", "node-1", "k3s.example.com"} <= set(dns)
    assert {"127.0.0.1", "::1", "10.43.0.1", "192.0.2.10", "198.51.100.7"} <= set(ips)
    leaf = load(data / "server/tls/serving-kube-apiserver.crt")[0]
    assert leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH])


def test_etcd_server_cert_has_k3s_sans_and_both_usages(data):
    for stem in ("server/tls/etcd/server-client", "server/tls/etcd/peer-server-client"):
        dns, ips = _pki.cert_sans((data / f"{stem}.crt").read_bytes())
        assert {"localhost", "node-1", "k3s.example.com"} <= set(dns)
        assert {"127.0.0.1", "::1", "192.0.2.10", "198.51.100.7"} <= set(ips)
        usages = load(data / f"{stem}.crt")[0].extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert _pki.cert_sans((data / "server/tls/etcd/client.crt").read_bytes()) == ([], [])


def test_client_admin_is_system_admin_in_system_masters(data):
    leaf, ca = load(data / "server/tls/client-admin.crt")
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:admin"
    assert [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["system:masters"]
    assert ca == load(data / "server/tls/client-ca.crt")[0]  # the file holds leaf then CA
    leaf.verify_directly_issued_by(ca)
    assert leaf.not_valid_after_utc - datetime.now(timezone.utc) > timedelta(days=364)
    assert leaf.not_valid_after_utc - datetime.now(timezone.utc) <= timedelta(days=365)


@pytest.mark.parametrize("stem, ca, cn", [
    ("server/tls/client-kube-apiserver", "server/tls/client-ca", "system:apiserver"),
    ("server/tls/client-auth-proxy", "server/tls/request-header-ca", "system:auth-proxy"),
    ("server/tls/etcd/client", "server/tls/etcd/server-ca", "etcd-client"),
    ("server/tls/etcd/peer-server-client", "server/tls/etcd/peer-ca", "etcd-peer"),
])
def test_leaves_are_signed_by_their_k3s_ca(data, stem, ca, cn):
    leaf = load(data / f"{stem}.crt")[0]
    leaf.verify_directly_issued_by(load(data / f"{ca}.crt")[0])
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == cn


def test_key_and_cert_permissions(data):
    for path in (data / "server/tls").rglob("*"):
        if path.suffix == ".key":
            assert mode(path) == 0o600, path
        elif path.suffix == ".crt":
            assert mode(path) == 0o644, path


def test_unchanged_sans_keep_every_leaf_byte_for_byte(data):
    before = snapshot(data)
    assert _pki.ensure_leaf_certs(data, "node-1", ["192.0.2.10"], ["k3s.example.com", "198.51.100.7"]) == []
    assert snapshot(data) == before


def test_a_new_tls_san_regenerates_the_serving_certs_with_new_keys(data):
    before = snapshot(data)
    written = _pki.ensure_leaf_certs(data, "node-1", ["192.0.2.10"], ["k3s.example.com", "198.51.100.7", "lb.example.com"])
    assert set(written) == {"server/tls/serving-kube-apiserver", "server/tls/etcd/server-client",
                            "server/tls/etcd/peer-server-client"}
    after = snapshot(data)
    for stem in written:
        assert (data / f"{stem}.crt").read_bytes() != before[Path(f"{stem}.crt")]
        assert (data / f"{stem}.key").read_bytes() != before[Path(f"{stem}.key")]
        assert "lb.example.com" in _pki.cert_sans((data / f"{stem}.crt").read_bytes())[0]
    assert after[Path("server/tls/client-admin.crt")] == before[Path("server/tls/client-admin.crt")]


def test_a_new_node_ip_regenerates_and_a_dropped_san_does_not(data):
    assert "server/tls/serving-kube-apiserver" in _pki.ensure_leaf_certs(data, "node-1", ["192.0.2.11"], ["k3s.example.com"])
    before = snapshot(data)
    # fieldsChanged only looks for missing names: a SAN that is no longer wanted stays in the cert
    assert _pki.ensure_leaf_certs(data, "node-1", ["192.0.2.11"], []) == []
    assert snapshot(data) == before


def test_leaves_follow_a_replaced_ca(data):
    for suffix in (".crt", ".key"):
        (data / f"server/tls/server-ca{suffix}").unlink()
    _pki.ensure_cas(data)
    assert _pki.ensure_leaf_certs(data, "node-1", ["192.0.2.10"], ["k3s.example.com", "198.51.100.7"]) == [
        "server/tls/serving-kube-apiserver"]
    load(data / "server/tls/serving-kube-apiserver.crt")[0].verify_directly_issued_by(
        load(data / "server/tls/server-ca.crt")[0])


def test_leaves_are_renewed_within_120_days_of_expiry(data):
    later = datetime.now(timezone.utc) + timedelta(days=250)
    assert len(_pki.ensure_leaf_certs(data, "node-1", ["192.0.2.10"], ["k3s.example.com", "198.51.100.7"], now=later)) == 12
    assert _pki.ensure_leaf_certs(data, "node-1", ["192.0.2.10"], ["k3s.example.com", "198.51.100.7"], now=later) == []


def test_bootstrap_files_are_the_k3s_bootstrap_set(data):
    (data / "server/cred").mkdir(parents=True)
    (data / "server/cred/passwd").write_text("pw,server,server,k3s:server\n")
    files = _pki.bootstrap_files(data)
    assert set(files) == {"ETCDServerCA", "ETCDServerCAKey", "ETCDPeerCA", "ETCDPeerCAKey", "ServerCA", "ServerCAKey",
                          "ClientCA", "ClientCAKey", "ServiceKey", "PasswdFile", "RequestHeaderCA", "RequestHeaderCAKey"}
    assert files["ServerCA"] == (data / "server/tls/server-ca.crt").read_bytes()


def test_joiner_writes_bootstrap_files_0600_and_keeps_those_cas(data, tmp_path_factory):
    joiner = tmp_path_factory.mktemp("joiner")
    files = _pki.bootstrap_files(data)
    _pki.write_bootstrap_files(joiner, dict(files, NotAField=b"x"))
    assert _pki.bootstrap_files(joiner) == files
    assert mode(joiner / "server/tls/server-ca.crt") == 0o600
    assert mode(joiner / "server/tls/etcd") == 0o700
    assert _pki.ensure_cas(joiner) == []  # the cluster's CAs, not new ones
    _pki.ensure_leaf_certs(joiner, "node-2", ["192.0.2.20"])
    load(joiner / "server/tls/etcd/peer-server-client.crt")[0].verify_directly_issued_by(
        load(data / "server/tls/etcd/peer-ca.crt")[0])


def test_bootstrap_json_round_trips_with_go_timestamps(data):
    doc = json.loads(_pki.bootstrap_json(data))
    assert list(doc) == sorted(doc)
    assert set(doc["ServerCA"]) == {"Timestamp", "Content"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z", doc["ServerCA"]["Timestamp"])
    assert _pki.parse_bootstrap_json(_pki.bootstrap_json(data)) == _pki.bootstrap_files(data)
    assert _pki._rfc3339nano(1700000000.5) == "2023-11-14T22:13:20.5Z"
    assert _pki._rfc3339nano(1700000000) == "2023-11-14T22:13:20Z"


def test_kubeconfig_is_k3s_yaml(data):
    ca = (data / "server/tls/server-ca.crt").read_bytes()
    cert = (data / "server/tls/client-admin.crt").read_bytes()
    key = (data / "server/tls/client-admin.key").read_bytes()
    text = _pki.kubeconfig("https://127.0.0.1:6443", ca, cert, key)
    doc = yaml.safe_load(text)
    assert doc["current-context"] == "default" and doc["kind"] == "Config" and doc["apiVersion"] == "v1"
    assert doc["clusters"] == [{"name": "default", "cluster": {"server": "https://127.0.0.1:6443",
                                                               "certificate-authority-data": base64.b64encode(ca).decode()}}]
    assert doc["contexts"] == [{"name": "default", "context": {"cluster": "default", "user": "default"}}]
    assert doc["users"] == [{"name": "default", "user": {"client-certificate-data": base64.b64encode(cert).decode(),
                                                         "client-key-data": base64.b64encode(key).decode()}}]
    assert text.startswith("apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: ")
    assert "\npreferences: {}\n" in text

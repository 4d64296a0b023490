"""K3s's server certificate tree under ``<data-dir>/server/tls``, its bootstrap files and k3s.yaml.

Sources (k3s-io/k3s via the search tool, "K:"; rancher/dynamiclistener "D:"):

* K: pkg/daemons/control/deps/deps.go (the revision with ``genUsers(config)``, ``user.*`` constants and
  ``genEgressSelectorConfig``): file names (``CreateRuntimeCertFiles``), the CA common names
  ``<prefix>-ca@<unix time>`` with prefixes k3s-client, k3s-server, k3s-request-header, etcd-server,
  etcd-peer; ``createSigningCertKey`` only makes a CA when its cert or key is missing (an existing key is
  reused); leaf CNs/Os (client-admin ``system:admin``/``system:masters``, client-kube-apiserver
  ``system:apiserver``/``system:masters``, ...); the kube-apiserver serving cert's DNS names
  (``kubernetes``, ``kubernetes.default``, ``kubernetes.default.svc``, ``kubernetes.default.svc.<domain>``,
  plus ``localhost`` and the service IP in the revisions that add them there) + ``config.SANs``; etcd
  server-client and peer-server-client get ``localhost`` + ``config.SANs``; a leaf file holds the leaf
  then its CA; ``fieldsChanged`` regenerates a leaf (with a new key) when CN or O changed, a wanted DNS
  name or IP is *missing* (extra ones are kept), it no longer verifies against its CA, or it is within
  ``CertificateRenewDays`` (120, K: pkg/daemons/config/types.go) of expiry.
* K: pkg/cli/server/server.go: ``config.SANs`` = tls-san, advertise-address, ``127.0.0.1``, ``::1``,
  ``localhost``, node name, node IPs, then the apiserver service IP (first service CIDR + 1).
* D: cert/cert.go: CA validity ``duration365d * 10``, leaves ``duration365d``; CA key usage
  KeyEncipherment|DigitalSignature|CertSign with IsCA; leaves KeyEncipherment|DigitalSignature + EKU;
  keys from ``LoadOrGenerateKeyFile`` are ECDSA P-256 (``EC PRIVATE KEY``); D: cert/validity.go leaf
  NotBefore = max(now - 1h, CA NotBefore). ``service.key`` comes from ``NewPrivateKey`` (RSA 2048).
  Certificates are written 0644, keys 0600.
* K: pkg/bootstrap/bootstrap.go and ``ControlRuntimeBootstrap`` (types.go): the bootstrap data is a
  JSON map ``{field: {"Timestamp": RFC3339Nano mtime, "Content": base64}}``; a joiner writes each file
  with mode 0600 (certificates included) in directories made 0700.
* K: pkg/clientaccess/kubeconfig.go ``WriteClientKubeConfig``: cluster, user and context all ``default``,
  ``*-data`` fields embedded, written by client-go ``clientcmd.WriteToFile``.

Differences, each deliberate: the CA serial is 1 (Go writes 0; ``cryptography`` refuses a
non-positive serial); duplicate SANs are written once; the supervisor's dynamiclistener certificate
(``dynamic-cert.json`` / secret ``k3s-serving``) and the kubelet keys are not made - the
kube-apiserver serving certificate stands in for the listener on 6443.
"""
from __future__ import annotations

import base64
import ipaddress
import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY = timedelta(days=365)
RENEW_DAYS = 120

# name -> (cert path, key path, CN prefix), relative to the data dir
CAS = {
    "client-ca": ("server/tls/client-ca.crt", "server/tls/client-ca.key", "k3s-client"),
    "server-ca": ("server/tls/server-ca.crt", "server/tls/server-ca.key", "k3s-server"),
    "request-header-ca": ("server/tls/request-header-ca.crt", "server/tls/request-header-ca.key", "k3s-request-header"),
    "etcd/server-ca": ("server/tls/etcd/server-ca.crt", "server/tls/etcd/server-ca.key", "etcd-server"),
    "etcd/peer-ca": ("server/tls/etcd/peer-ca.crt", "server/tls/etcd/peer-ca.key", "etcd-peer"),
}
SERVICE_KEY = "server/tls/service.key"

_CLIENT, _SERVER = [ExtendedKeyUsageOID.CLIENT_AUTH], [ExtendedKeyUsageOID.SERVER_AUTH]
_BOTH = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
# path stem (data-dir relative) -> (CA, CN, O, usages, SAN set)
LEAVES = {
    "server/tls/client-admin": ("client-ca", "system:admin", ["system:masters"], _CLIENT, None),
    "server/tls/client-controller": ("client-ca", "system:kube-controller-manager", [], _CLIENT, None),
    "server/tls/client-scheduler": ("client-ca", "system:kube-scheduler", [], _CLIENT, None),
    "server/tls/client-kube-apiserver": ("client-ca", "system:apiserver", ["system:masters"], _CLIENT, None),
    "server/tls/client-kube-proxy": ("client-ca", "system:kube-proxy", [], _CLIENT, None),
    "server/tls/client-k3s-controller": ("client-ca", "system:k3s-controller", [], _CLIENT, None),
    "server/tls/client-k3s-cloud-controller": ("client-ca", "k3s-cloud-controller-manager", [], _CLIENT, None),
    "server/tls/serving-kube-apiserver": ("server-ca", "kube-apiserver", [], _SERVER, "apiserver"),
    "server/tls/client-auth-proxy": ("request-header-ca", "system:auth-proxy", [], _CLIENT, None),
    "server/tls/etcd/server-client": ("etcd/server-ca", "etcd-server", [], _BOTH, "etcd"),
    "server/tls/etcd/client": ("etcd/server-ca", "etcd-client", [], _CLIENT, None),
    "server/tls/etcd/peer-server-client": ("etcd/peer-ca", "etcd-peer", [], _BOTH, "etcd"),
}

# ControlRuntimeBootstrap field -> file (K: types.go + deps.go CreateRuntimeCertFiles). The encryption
# files only exist with secrets-encryption; missing files are left out, as ReadFromDisk does.
BOOTSTRAP_PATHS = {
    "ETCDServerCA": "server/tls/etcd/server-ca.crt", "ETCDServerCAKey": "server/tls/etcd/server-ca.key",
    "ETCDPeerCA": "server/tls/etcd/peer-ca.crt", "ETCDPeerCAKey": "server/tls/etcd/peer-ca.key",
    "ServerCA": "server/tls/server-ca.crt", "ServerCAKey": "server/tls/server-ca.key",
    "ClientCA": "server/tls/client-ca.crt", "ClientCAKey": "server/tls/client-ca.key",
    "ServiceKey": SERVICE_KEY, "PasswdFile": "server/cred/passwd",
    "RequestHeaderCA": "server/tls/request-header-ca.crt", "RequestHeaderCAKey": "server/tls/request-header-ca.key",
    "IPSECKey": "server/cred/ipsec.psk",
    "EncryptionConfig": "server/cred/encryption-config.json", "EncryptionHash": "server/cred/encryption-state.json",
}


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(timezone.utc)).replace(microsecond=0)


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _new_ec_key() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                         data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=False,
                         encipher_only=False, decipher_only=False)


def _ca_cert(key, common_name: str, now: datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + CA_VALIDITY)
            .add_extension(_key_usage(True), critical=True)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))


def ensure_cas(data_dir: str | Path, now: datetime | None = None) -> list[str]:
    """``createSigningCertKey`` for the five CAs, plus ``genServiceAccount``'s ``service.key``.

    A CA is created only when its certificate or key is missing (an existing key is reused), so
    restarts, and CAs that came in the bootstrap data, are kept as they are. Returns what was made.
    """
    data_dir, now, made = Path(data_dir), _now(now), []
    for name, (cert_rel, key_rel, prefix) in CAS.items():
        cert_path, key_path = data_dir / cert_rel, data_dir / key_rel
        if cert_path.exists() and key_path.exists():
            continue
        if key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        else:
            key, key_pem = _new_ec_key()
            _write(key_path, key_pem, 0o600)
        _write(cert_path, _pem(_ca_cert(key, f"{prefix}-ca@{int(now.timestamp())}", now)), 0o644)
        made.append(name)
    service_key = data_dir / SERVICE_KEY
    if not service_key.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write(service_key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                              serialization.NoEncryption()), 0o600)
        made.append("service.key")
    return made


def server_sans(node_name: str, node_ips: list[str], tls_san: list[str] = (), advertise_address: str | None = None,
                service_cidr: str = "10.43.0.0/16") -> list[str]:
    """``config.SANs`` as server.go builds it (tls-san split on commas; service IP = first service CIDR + 1)."""
    sans = [part for san in tls_san for part in san.split(",") if part]
    if advertise_address:
        sans.append(advertise_address)
    sans += ["127.0.0.1", "::1", "localhost", node_name, *node_ips]
    sans.append(str(ipaddress.ip_network(service_cidr.split(",")[0], strict=False)[1]))
    return sans


def _split_sans(names: list[str]) -> tuple[list[str], list[str]]:
    """``addSANs``: IP literals to IP SANs (normalised), the rest to DNS names; duplicates dropped."""
    dns, ips = [], []
    for name in names:
        try:
            value = str(ipaddress.ip_address(name))
            target = ips
        except ValueError:
            value, target = name, dns
        if value not in target:
            target.append(value)
    return dns, ips


def leaf_sans(kind: str | None, sans: list[str], cluster_domain: str = "cluster.local") -> tuple[list[str], list[str]]:
    """The (DNS names, IPs) a leaf must carry: ``apiserver``, ``etcd`` or ``None`` (client certificates)."""
    if kind == "apiserver":
        base = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                f"kubernetes.default.svc.{cluster_domain}"]
    elif kind == "etcd":
        base = ["localhost"]
    else:
        return [], []
    return _split_sans(base + list(sans))


def cert_sans(cert_pem: bytes) -> tuple[list[str], list[str]]:
    """(DNS names, IP strings) of the first certificate in ``cert_pem``."""
    cert = x509.load_pem_x509_certificates(cert_pem)[0]
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return ext.get_values_for_type(x509.DNSName), [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]


def _needs_regen(cert_path: Path, key_path: Path, cn: str, orgs: list[str], dns: list[str], ips: list[str],
                 ca: x509.Certificate, now: datetime) -> bool:
    """``expired`` + ``fieldsChanged`` (+ a missing file)."""
    if not (cert_path.exists() and key_path.exists()):
        return True
    cert = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
    if cert.not_valid_after_utc - now <= timedelta(days=RENEW_DAYS):
        return True
    subject = cert.subject
    if [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)] != [cn]:
        return True
    if {a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)} != set(orgs):
        return True
    have_dns, have_ips = cert_sans(cert_path.read_bytes())
    if not set(dns) <= set(have_dns) or not set(ips) <= set(have_ips):
        return True
    try:
        cert.verify_directly_issued_by(ca)
    except Exception:  # noqa: BLE001 - signed by another CA
        return True
    return False


def _leaf_cert(key, ca_key, ca: x509.Certificate, cn: str, orgs: list[str], usages, dns: list[str], ips: list[str],
               now: datetime) -> x509.Certificate:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs] + [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    builder = (x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(ca.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(max(now - timedelta(hours=1), ca.not_valid_before_utc))
               .not_valid_after(now + LEAF_VALIDITY)
               .add_extension(_key_usage(False), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if dns or ips:
        names = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def ensure_leaf_certs(data_dir: str | Path, node_name: str, node_ips: list[str], tls_san: list[str] = (), *,
                      advertise_address: str | None = None, cluster_domain: str = "cluster.local",
                      service_cidr: str = "10.43.0.0/16", now: datetime | None = None) -> list[str]:
    """``genClientCerts``/``genServerCerts``/``genRequestHeaderCerts``/``genETCDCerts`` for this node.

    Needs the CAs (``ensure_cas`` or ``write_bootstrap_files`` first). A leaf is (re)made, with a new
    key, when missing or when ``fieldsChanged``/``expired`` say so; otherwise it is left byte-for-byte.
    Returns the data-dir-relative stems of the leaves that were written.
    """
    data_dir, now = Path(data_dir), _now(now)
    sans = server_sans(node_name, node_ips, tls_san, advertise_address, service_cidr)
    written = []
    for stem, (ca_name, cn, orgs, usages, kind) in LEAVES.items():
        ca_cert_rel, ca_key_rel, _ = CAS[ca_name]
        ca_pem = (data_dir / ca_cert_rel).read_bytes()
        ca = x509.load_pem_x509_certificates(ca_pem)[0]
        dns, ips = leaf_sans(kind, sans, cluster_domain)
        cert_path, key_path = data_dir / f"{stem}.crt", data_dir / f"{stem}.key"
        if not _needs_regen(cert_path, key_path, cn, orgs, dns, ips, ca, now):
            continue
        ca_key = serialization.load_pem_private_key((data_dir / ca_key_rel).read_bytes(), None)
        key, key_pem = _new_ec_key()
        cert = _leaf_cert(key, ca_key, ca, cn, orgs, usages, dns, ips, now)
        _write(key_path, key_pem, 0o600)
        _write(cert_path, _pem(cert) + _pem(ca), 0o644)
        written.append(stem)
    return written


def bootstrap_files(data_dir: str | Path) -> dict[str, bytes]:
    """``ReadFromDisk``'s file set: ``{ControlRuntimeBootstrap field: content}`` for the files present."""
    data_dir = Path(data_dir)
    return {field: (data_dir / rel).read_bytes() for field, rel in BOOTSTRAP_PATHS.items() if (data_dir / rel).is_file()}


def write_bootstrap_files(data_dir: str | Path, files: dict[str, bytes], timestamps: dict[str, float] | None = None) -> None:
    """``WriteToDiskFromStorage``: each known field to its path, mode 0600, parents 0700; unknown fields ignored.

    ``timestamps`` (epoch seconds per field) set the files' mtimes, as K3s does with the bootstrap
    ``Timestamp``.
    """
    data_dir = Path(data_dir)
    for field, content in files.items():
        rel = BOOTSTRAP_PATHS.get(field)
        if rel is None:
            continue
        _write(data_dir / rel, content, 0o600)
        if timestamps and field in timestamps:
            os.utime(data_dir / rel, (timestamps[field], timestamps[field]))


def _rfc3339nano(epoch: float) -> str:
    """Go ``time.Time.MarshalJSON`` for a UTC time: RFC 3339 with trailing zeros of the fraction dropped."""
    whole = int(epoch)
    nanos = round((epoch - whole) * 1e9)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


def bootstrap_json(data_dir: str | Path) -> bytes:
    """The bootstrap document K3s serves on ``/v1-k3s/server-bootstrap`` and encrypts into etcd."""
    data_dir = Path(data_dir)
    doc = {field: {"Timestamp": _rfc3339nano((data_dir / BOOTSTRAP_PATHS[field]).stat().st_mtime),
                   "Content": base64.b64encode(content).decode()}
           for field, content in bootstrap_files(data_dir).items()}
    return (json.dumps(dict(sorted(doc.items())), separators=(",", ":")) + "\n").encode()


def parse_bootstrap_json(blob: bytes) -> dict[str, bytes]:
    """``{field: content}`` of a bootstrap document (timestamps dropped)."""
    return {field: base64.b64decode(entry["Content"]) for field, entry in json.loads(blob).items()}


def kubeconfig(server_url: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> str:
    """``/etc/rancher/k3s/k3s.yaml`` as ``WriteClientKubeConfig`` + ``clientcmd.WriteToFile`` write it.

    ``cert_pem`` is client-admin.crt as on disk (leaf then client CA), ``key_pem`` client-admin.key,
    ``ca_pem`` server-ca.crt; the server is ``https://127.0.0.1:<https-listen-port>`` in K3s.
    Keys are sorted as sigs.k8s.io/yaml emits them. ``preferences: {}`` is written as client-go has
    done for years; not re-checked against the 1.34 client-go.
    """
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    return (f"apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {b64(ca_pem)}\n"
            f"    server: {server_url}\n  name: default\ncontexts:\n- context:\n    cluster: default\n"
            f"    user: default\n  name: default\ncurrent-context: default\nkind: Config\npreferences: {{}}\n"
            f"users:\n- name: default\n  user:\n    client-certificate-data: {b64(cert_pem)}\n"
            f"    client-key-data: {b64(key_pem)}\n")


def issue_client_cert(data_dir: str | Path, cn: str, orgs: list[str], now: datetime | None = None) -> bytes:
    """A client certificate from the cluster's client CA, as the supervisor hands agents their kubelet
    client certificate (``/v1-k3s/client-kubelet.crt``: CN ``system:node:<name>``, O ``system:nodes``):
    the certificate, its CA, then the key, in one PEM document."""
    data_dir, now = Path(data_dir), _now(now)
    ca_cert_rel, ca_key_rel, _ = CAS["client-ca"]
    ca = x509.load_pem_x509_certificates((data_dir / ca_cert_rel).read_bytes())[0]
    ca_key = serialization.load_pem_private_key((data_dir / ca_key_rel).read_bytes(), None)
    key, key_pem = _new_ec_key()
    cert = _leaf_cert(key, ca_key, ca, cn, orgs, _CLIENT, [], [], now)
    return _pem(cert) + _pem(ca) + key_pem

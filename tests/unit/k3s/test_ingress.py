"""The lab Traefik: routes from Ingress/Service/EndpointSlice, and the proxy serving them for real."""
from __future__ import annotations

import datetime
import json
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lab.k3s import _ingress_proxy as proxy
from lab.k3s._ingress_routes import pick, ready_backends, routes

REPO = Path(__file__).resolve().parents[3]


def _ingress(name: str, host: str, service: str, path: str = "/", cls: str | None = "traefik",
             path_type: str = "Prefix") -> dict[str, Any]:
    spec: dict[str, Any] = {"rules": [{"host": host, "http": {"paths": [
        {"path": path, "pathType": path_type, "backend": {"service": {"name": service, "port": {"number": 80}}}}]}}]}
    if cls:
        spec["ingressClassName"] = cls
    return {"metadata": {"name": name, "namespace": "app"}, "spec": spec}


def _service(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "app"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def _slice(service: str, endpoints: list[tuple[str, bool]], port: int = 8000) -> dict[str, Any]:
    return {"metadata": {"name": f"{service}-abcde", "namespace": "app",
                         "labels": {"kubernetes.io/service-name": service}},
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [a], "conditions": {"ready": r}} for a, r in endpoints]}


CLASS = [{"metadata": {"name": "traefik", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}}}]


def test_routes_follow_readiness_class_and_priority() -> None:
    table = routes([_ingress("api", "api.example.com", "api"), _ingress("api-v2", "api.example.com", "v2", "/v2"),
                    _ingress("other", "x.example.com", "api", cls="nginx"),
                    _ingress("noclass", "y.example.com", "api", cls=None)],
                   [_service("api"), _service("v2")],
                   [_slice("api", [("10.42.0.5", True), ("10.42.1.5", False)]), _slice("v2", [("10.42.2.9", True)])],
                   CLASS)
    assert pick(table, "api.example.com:443", "/v2/x").service == "app/v2:80"
    assert pick(table, "api.example.com", "/v2x") .service == "app/api:80", "prefix by path element"
    assert pick(table, "api.example.com", "/").backends == (("10.42.0.5", 8000),), "unready endpoint left out"
    assert pick(table, "x.example.com", "/") is None, "another class"
    assert pick(table, "y.example.com", "/") is not None, "no class: traefik is the default class"
    assert routes([_ingress("noclass", "y.example.com", "api", cls=None)], [_service("api")],
                  [_slice("api", [("10.42.0.5", True)])], []) == [], "no default class: not watched"


def test_service_without_ready_endpoints_has_no_router() -> None:
    assert routes([_ingress("api", "api.example.com", "api")], [_service("api")],
                  [_slice("api", [("10.42.0.5", False)])], CLASS) == []
    assert ready_backends([_slice("api", [("10.42.0.5", True)])], "other") == ()


def test_exact_path() -> None:
    table = routes([_ingress("h", "", "api", "/healthz", path_type="Exact")], [_service("api")],
                   [_slice("api", [("10.42.0.5", True)])], CLASS)
    assert pick(table, "anything", "/healthz") and not pick(table, "anything", "/healthz/x")


def test_forwarded_headers_trusted_only_from_ranges() -> None:
    incoming = [("Host", "api.example.com"), ("X-Forwarded-For", "203.0.113.7"), ("X-Real-Ip", "203.0.113.7")]
    kept = dict(proxy.forward_headers(incoming, "173.245.48.10", keep=proxy.trusted(
        "173.245.48.10", ["173.245.48.0/20"], False), proto="http", port=80, server="n1"))
    assert kept["X-Forwarded-For"] == "203.0.113.7, 173.245.48.10" and kept["X-Real-Ip"] == "203.0.113.7"
    dropped = dict(proxy.forward_headers(incoming, "198.51.100.1", keep=proxy.trusted(
        "198.51.100.1", ["173.245.48.0/20"], False), proto="http", port=80, server="n1"))
    assert dropped["X-Forwarded-For"] == "198.51.100.1" and dropped["X-Real-Ip"] == "198.51.100.1"
    assert proxy.trusted("198.51.100.1", [], True)


# -- the proxy, for real, on loopback ---------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def _pod(name: str, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "lab.k3s._podserver", "--address", "127.0.0.1", "--port",
                             str(port)], cwd=REPO, env={"POD_NAME": name, "PATH": "/usr/bin:/bin"},
                            stderr=subprocess.PIPE)
    _wait_port(port, proc)
    return proc


def _cert(tmp: Path, name: str, issuer: tuple[Any, x509.Name] | None = None, ca: bool = False,
          ) -> tuple[Path, Path, Any, x509.Name]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer[1] if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    cert = builder.sign(issuer[0] if issuer else key, hashes.SHA256())
    crt, pem = tmp / f"{name}.crt", tmp / f"{name}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem, key, subject


@pytest.fixture
def lab_traefik(tmp_path: Path):
    pods = {n: _free_port() for n in ("api-a", "api-b")}
    procs = [_pod(n, p) for n, p in pods.items()]
    dead = _free_port()
    ca_crt, _, ca_key, ca_name = _cert(tmp_path, "aop-ca", ca=True)
    client_crt, client_key, _, _ = _cert(tmp_path, "edge", issuer=(ca_key, ca_name))
    origin_crt, origin_key, _, _ = _cert(tmp_path, "api.example.com")
    web, websecure = _free_port(), _free_port()
    config = {"access_log": True,
              "entrypoints": {"web": {"address": "127.0.0.1", "port": web, "trusted_ips": ["127.0.0.0/8"]},
                              "websecure": {"address": "127.0.0.1", "port": websecure, "trusted_ips": [],
                                            "tls": {"cert": str(origin_crt), "key": str(origin_key),
                                                    "client_ca": str(ca_crt),
                                                    "client_auth": "RequireAndVerifyClientCert"}}},
              "routes": [{"host": "api.example.com", "path": "/", "backends": [["127.0.0.1", p] for p in pods.values()],
                          "service": "app/api:80"},
                         {"host": "dead.example.com", "path": "/", "backends": [["127.0.0.1", dead]],
                          "service": "app/dead:80"}]}
    cfg = tmp_path / "traefik.json"
    cfg.write_text(json.dumps(config))
    traefik = subprocess.Popen([sys.executable, "-m", "lab.k3s._ingress_proxy", "--config", str(cfg)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_port(web, traefik)
    _wait_port(websecure, traefik)
    yield {"web": web, "websecure": websecure, "ca": origin_crt, "client": (client_crt, client_key), "cfg": cfg,
           "config": config, "traefik": traefik}
    for p in [*procs, traefik]:
        p.kill()


def _get(url: str, host: str, context: ssl.SSLContext | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Host": host, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=5, context=context) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_proxy_routes_round_robin_and_answers_like_traefik(lab_traefik) -> None:
    base = f"http://127.0.0.1:{lab_traefik['web']}"
    seen = {json.loads(_get(f"{base}/api/health/", "api.example.com")[1])["pod"] for _ in range(4)}
    assert seen == {"api-a", "api-b"}
    code, body = _get(f"{base}/", "nobody.example.com")
    assert (code, body) == (404, "404 page not found\n")
    assert _get(f"{base}/", "dead.example.com")[0] == 502
    answer = json.loads(_get(f"{base}/", "api.example.com", headers={"X-Forwarded-For": "203.0.113.9"})[1])
    assert answer["forwarded"]["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1", "loopback is trusted on web"


def test_proxy_picks_up_new_routes(lab_traefik) -> None:
    config = lab_traefik["config"]
    config["routes"] = config["routes"][1:]
    tmp = lab_traefik["cfg"].with_suffix(".tmp")
    tmp.write_text(json.dumps(config))
    tmp.replace(lab_traefik["cfg"])
    time.sleep(0.05)
    assert _get(f"http://127.0.0.1:{lab_traefik['web']}/", "api.example.com")[0] == 404


def test_websecure_requires_the_aop_client_certificate(lab_traefik) -> None:
    url = f"https://127.0.0.1:{lab_traefik['websecure']}/"
    ctx = ssl.create_default_context(cafile=str(lab_traefik["ca"]))
    ctx.check_hostname = False
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        _get(url, "api.example.com", ctx)
    ctx.load_cert_chain(*map(str, lab_traefik["client"]))
    code, body = _get(url, "api.example.com", ctx, headers={"X-Forwarded-For": "203.0.113.9"})
    answer = json.loads(body)
    assert code == 200 and answer["forwarded"]["X-Forwarded-Proto"] == "https"
    assert answer["forwarded"]["X-Forwarded-For"] == "127.0.0.1", "no trusted ranges on websecure"


def test_client_certificates_switch_on_without_closing_the_port(lab_traefik) -> None:
    config = lab_traefik["config"]
    config["entrypoints"]["websecure"]["tls"]["client_auth"] = "NoClientCert"
    lab_traefik["cfg"].write_text(json.dumps(config))
    url = f"https://127.0.0.1:{lab_traefik['websecure']}/"
    ctx = ssl.create_default_context(cafile=str(lab_traefik["ca"]))
    ctx.check_hostname = False
    time.sleep(0.5)
    assert _get(url, "api.example.com", ctx)[0] == 200, "no client certificate needed any more"
    config["entrypoints"]["websecure"]["tls"]["client_auth"] = "RequireAndVerifyClientCert"
    time.sleep(0.01)
    lab_traefik["cfg"].write_text(json.dumps(config))
    time.sleep(0.5)
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        _get(url, "api.example.com", ctx)


def test_access_log_names_the_router_service_and_the_server_that_failed(lab_traefik) -> None:
    """Traefik's common log format ends with the router, the server URL and the duration: a 502 names the
    backend that did not answer (what a reader of a node's log needs to find the pod)."""
    base = f"http://127.0.0.1:{lab_traefik['web']}"
    assert _get(f"{base}/", "dead.example.com")[0] == 502
    dead = lab_traefik["config"]["routes"][1]["backends"][0][1]
    lab_traefik["traefik"].kill()
    out = lab_traefik["traefik"].communicate(timeout=10)[0].decode()
    line = next(x for x in out.splitlines() if '"GET / HTTP/1.1" 502' in x)
    assert re.search(rf'"app/dead:80" "http://127\.0\.0\.1:{dead}" \d+ms$', line), line

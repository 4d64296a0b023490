"""lab.edge: the Cloudflare edge stand-in in front of real origins on loopback (127.0.0.x), as a visitor
sees it while the zone's SSL settings change: encryption modes, AOP, Always Use HTTPS, 52x answers,
round robin without (Free) and with (Load Balancing) a retry, settings lag, forwarded headers."""
from __future__ import annotations

import contextlib
import json
import socket
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lab.edge import Edge, client_ca, client_certificate, origin_ca, origin_certificate

ZONE = "honeydue.example"
API = f"api.{ZONE}"
A, B, DEAD = "127.0.0.2", "127.0.0.3", "127.0.0.9"


@pytest.fixture(scope="module")
def pki():
    ca = origin_ca()
    other_ca = origin_ca()
    aop_ca = client_ca()
    return {
        "ca": ca,
        "good": origin_certificate(ca, [ZONE, f"*.{ZONE}"]),
        "api_only": origin_certificate(ca, [API]),
        "wrong_ca": origin_certificate(other_ca, [ZONE, f"*.{ZONE}"]),
        "expired": origin_certificate(ca, [ZONE, f"*.{ZONE}"], expired=True),
        "aop_ca": aop_ca,
        "aop": client_certificate(aop_ca),
        "aop_other": client_certificate(client_ca()),
    }


class _OriginHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        self.peer_cn = None
        if isinstance(self.connection, ssl.SSLSocket):
            cert = self.connection.getpeercert()
            if cert:
                self.peer_cn = dict(x[0] for x in cert["subject"]).get("commonName")

    def _any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        seen = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                "header_names": [k.lower() for k in self.headers.keys()], "body": body.decode(),
                "tls": isinstance(self.connection, ssl.SSLSocket), "client_cn": self.peer_cn,
                "origin": self.server.name, "peer": self.client_address[0]}
        self.server.seen.append(seen)
        out = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.send_header("X-Origin", self.server.name)
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_HEAD = do_PUT = _any


class Origin(ThreadingHTTPServer):
    """A real origin on ``ip:port``: plain, TLS with ``cert``, or TLS requiring client certs from ``client_ca``."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, ip, port=0, cert=None, client_ca_pem=None):
        self.name, self.seen, self.ctx = f"{ip}:{port}", [], None
        super().__init__((ip, port), _OriginHandler)
        self.port = self.server_address[1]
        self.name = f"{ip}:{self.port}"
        if cert:
            self._tmp = tempfile.TemporaryDirectory()
            crt, key = Path(self._tmp.name, "o.crt"), Path(self._tmp.name, "o.key")
            crt.write_text(cert[0])
            key.write_text(cert[1])
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(crt, key)
            if client_ca_pem:
                self.ctx.load_verify_locations(cadata=client_ca_pem)
                self.ctx.verify_mode = ssl.CERT_REQUIRED
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def finish_request(self, request, client_address):
        if self.ctx is not None:
            request.settimeout(5)
            try:
                request = self.ctx.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                request.close()
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass

    def stop(self):
        self.shutdown()
        self.server_close()


@contextlib.contextmanager
def origins(*specs):
    """Start origins (``(ip, kwargs)``); origins on different IPs share a port as real ones do on 80/443."""
    started = []
    try:
        for ip, kwargs in specs:
            port = kwargs.pop("port", 0)
            started.append(Origin(ip, port, **kwargs))
        yield started
    finally:
        for origin in started:
            origin.stop()


def free_port_on(*ips):
    for _ in range(50):
        with socket.socket() as s:
            s.bind((ips[0], 0))
            port = s.getsockname()[1]
        try:
            for ip in ips[1:]:
                with socket.socket() as s:
                    s.bind((ip, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no common free port")


class Zone:
    """Mutable zone settings, read by the edge through ``settings``."""

    def __init__(self, **values):
        self.values = {"ssl": "flexible", "always_use_https": "off", "aop_enabled": False, "aop_certificate": None}
        self.values.update(values)

    def __call__(self):
        return dict(self.values)


def edge_for(zone, ips, http_port, https_port=443, **kwargs):
    kwargs.setdefault("connect_timeout", 2)
    kwargs.setdefault("response_timeout", 2)
    return Edge(zone, lambda host: list(ips) if host.endswith(ZONE) else [], zone=ZONE,
                http_port=http_port, https_port=https_port, **kwargs)


# --------------------------------------------------------------------------------------------- encryption modes

def test_flexible_talks_plain_http_to_port_80_whatever_the_visitor_scheme_and_sets_cloudflare_headers():
    zone = Zone(ssl="flexible")
    with origins((A, {})) as (plain,), edge_for(zone, [A], plain.port) as edge:
        secure = edge.request("POST", f"https://{API}/v1/things?x=1", body=b'{"a": 1}',
                              headers={"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.7",
                                       "Connection": "X-Private", "X-Private": "drop me", "X-Keep": "keep me",
                                       "CF-Connecting-IP": "6.6.6.6"})
        plain_visit = edge.request("GET", f"http://{API}/healthz")
    assert secure.status == 200 and plain_visit.status == 200
    first, second = plain.seen
    assert (first["method"], first["path"], first["body"], first["tls"]) == ("POST", "/v1/things?x=1", '{"a": 1}',
                                                                          False)
    h = first["headers"]
    assert h["Host"] == API
    assert h["CF-Connecting-IP"] == "127.0.0.1"  # the visitor's address, not what the visitor claimed
    assert h["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1"
    assert h["X-Forwarded-Proto"] == "https" and h["CF-Visitor"] == '{"scheme":"https"}'
    assert h["X-Keep"] == "keep me" and "x-private" not in first["header_names"]
    assert h["CF-Ray"] == secure.headers["cf-ray"] and h["CF-Ray"].endswith("-LAB")
    assert second["headers"]["X-Forwarded-Proto"] == "http" and second["tls"] is False
    assert secure.headers["server"] == "cloudflare" and secure.headers["x-origin"] == plain.name
    assert [(e.host, e.scheme, e.status, e.origin) for e in edge.log] == [
        (API, "https", 200, f"{A}:{plain.port}"), (API, "http", 200, f"{A}:{plain.port}")]


def test_full_follows_the_visitor_scheme_without_checking_the_origin_certificate(pki):
    port80, port443 = free_port_on(A), free_port_on(A)
    zone = Zone(ssl="full")
    with origins((A, {"port": port80}), (A, {"port": port443, "cert": pki["wrong_ca"]})) as (plain, tls), \
            edge_for(zone, [A], port80, port443, origin_ca_pem=pki["ca"][0]) as edge:
        assert edge.request("GET", f"https://{API}/a").status == 200  # wrong CA: full does not care
        assert edge.request("GET", f"http://{API}/b").status == 200
        zone.values["ssl"] = "strict"
        refused = edge.request("GET", f"https://{API}/c")
        assert edge.request("GET", f"http://{API}/d").status == 200  # strict: HTTP visitors still go to :80
    assert [s["path"] for s in tls.seen] == ["/a"] and tls.seen[0]["tls"]
    assert [s["path"] for s in plain.seen] == ["/b", "/d"]
    assert refused.status == 526 and refused.headers["cf-error-code"] == "526"
    assert refused.body == b"error code: 526\n"


@pytest.mark.parametrize("cert, host, status", [
    ("good", API, 200),
    ("api_only", API, 200),
    ("api_only", f"www.{ZONE}", 526),  # name mismatch (the SNI is the visitor's host)
    ("wrong_ca", API, 526),
    ("expired", API, 526),
])
def test_strict_checks_the_origin_certificate_against_the_origin_ca_and_the_host(pki, cert, host, status):
    zone = Zone(ssl="strict")
    with origins((A, {"cert": pki[cert]})) as (tls,), \
            edge_for(zone, [A], 1, tls.port, origin_ca_pem=pki["ca"][0]) as edge:
        resp = edge.request("GET", f"https://{host}/x")
    assert resp.status == status, resp
    assert len(tls.seen) == (1 if status == 200 else 0)


def test_no_tls_on_the_origin_https_port_is_525():
    zone = Zone(ssl="full")
    with origins((A, {})) as (plain,), edge_for(zone, [A], plain.port, plain.port) as edge:
        resp = edge.request("GET", f"https://{API}/")
    assert resp.status == 525 and resp.headers["cf-error-code"] == "525"


def test_ssl_off_sends_https_visitors_to_http():
    with origins((A, {})) as (plain,), edge_for(Zone(ssl="off", always_use_https="on"), [A], plain.port) as edge:
        redirect = edge.request("GET", f"https://{API}/p?q=1")
        served = edge.request("GET", f"http://{API}/p")  # no Always Use HTTPS loop while SSL is off
    assert (redirect.status, redirect.headers["location"]) == (301, f"http://{API}/p?q=1")
    assert served.status == 200 and [s["path"] for s in plain.seen] == ["/p"]


# --------------------------------------------------------------------------------------------- AOP

def test_zone_level_aop_presents_the_zone_certificate_to_an_origin_that_requires_one(pki):
    zone = Zone(ssl="strict", aop_enabled=False,
                aop_certificate={"certificate": pki["aop"][0], "private_key": pki["aop"][1]})
    with origins((A, {"cert": pki["good"], "client_ca_pem": pki["aop_ca"][0]})) as (mtls,), \
            edge_for(zone, [A], 1, mtls.port, origin_ca_pem=pki["ca"][0]) as edge:
        without = [edge.request("GET", f"https://{API}/no-aop").status for _ in range(5)]
        zone.values["aop_enabled"] = True
        with_aop = edge.request("GET", f"https://{API}/aop")
        zone.values["aop_certificate"] = {"certificate": pki["aop_other"][0], "private_key": pki["aop_other"][1]}
        untrusted = edge.request("GET", f"https://{API}/other")
    assert without == [525] * 5
    assert with_aop.status == 200 and with_aop.json()["client_cn"] == "origin-pull.cloudflare.net"
    assert untrusted.status == 525
    assert [s["path"] for s in mtls.seen] == ["/aop"]


# --------------------------------------------------------------------------------------------- Always Use HTTPS

def test_always_use_https_redirects_http_visitors_without_contacting_the_origin():
    with origins((A, {})) as (plain,), edge_for(Zone(ssl="full", always_use_https="on"), [A], plain.port,
                                                      plain.port) as edge:
        resp = edge.request("GET", f"http://{API}/login?next=/home")
        secure = edge.request("GET", f"https://{API}/login")
    assert resp.status == 301 and resp.headers["location"] == f"https://{API}/login?next=/home"
    assert secure.status == 525  # full + HTTPS visitor goes to :443, where this origin has no TLS
    assert plain.seen == []
    assert edge.log[0][2:] == ("http", 301, None)


# --------------------------------------------------------------------------------------------- origins and errors

def test_a_dead_origin_fails_the_requests_that_land_on_it_unless_load_balancing_retries():
    port = free_port_on(A, DEAD)
    with origins((A, {"port": port})) as (alive,):
        with edge_for(Zone(), [A, DEAD], port) as edge:
            free = [edge.request("GET", f"https://{API}/{i}").status for i in range(10)]
            log = edge.log
        with edge_for(Zone(), [A, DEAD], port, retry_other_origin=True) as edge:
            paid = [edge.request("GET", f"https://{API}/{i}").status for i in range(10)]
    assert sorted(free) == [200] * 5 + [521] * 5 and free[0] != free[1]  # round robin: every other one
    assert {e.origin for e in log if e.status == 521} == {f"{DEAD}:{port}"}
    assert {e.origin for e in log if e.status == 200} == {f"{A}:{port}"}
    assert paid == [200] * 10 and len(alive.seen) == 15


def test_connections_to_origins_come_from_source_address():
    with origins((A, {})) as (plain,), edge_for(Zone(), [A], plain.port, source_address="127.0.0.5") as edge:
        assert edge.request("GET", f"https://{API}/").status == 200
    assert plain.seen[0]["peer"] == "127.0.0.5"


def test_no_origin_is_530_error_1016():
    with edge_for(Zone(), [], 80) as edge:
        resp = edge.request("GET", f"https://{API}/")
    assert (resp.status, resp.body, resp.headers["cf-error-code"]) == (530, b"error code: 1016\n", "1016")


def _raw_server(behaviour):
    srv = socket.socket()
    srv.bind((A, 0))
    srv.listen(8)

    def run():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=behaviour, args=(conn,), daemon=True).start()

    threading.Thread(target=run, daemon=True).start()
    return srv


def _close_at_once(conn):
    conn.recv(65536)
    conn.close()


def _never_answer(conn):
    conn.recv(65536)
    time.sleep(3)
    conn.close()


@pytest.mark.parametrize("behaviour, status", [(_close_at_once, 520), (_never_answer, 524)])
def test_empty_reply_is_520_and_no_answer_in_time_is_524(behaviour, status):
    srv = _raw_server(behaviour)
    try:
        with edge_for(Zone(), [A], srv.getsockname()[1], response_timeout=0.5) as edge:
            resp = edge.request("GET", f"http://{API}/")
    finally:
        srv.close()
    assert resp.status == status and resp.headers["cf-error-code"] == str(status)


def test_a_connect_timeout_is_522():
    # a listener whose accept queue is full drops further SYNs: the connect times out
    srv = socket.socket()
    srv.bind((A, 0))
    srv.listen(0)
    fillers = []
    try:
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(srv.getsockname())
            fillers.append(c)
        time.sleep(0.1)
        with edge_for(Zone(), [A], srv.getsockname()[1], connect_timeout=0.5) as edge:
            resp = edge.request("GET", f"http://{API}/")
    finally:
        for c in fillers:
            c.close()
        srv.close()
    assert resp.status == 522


# --------------------------------------------------------------------------------------------- propagation lag

def test_a_settings_change_applies_only_after_the_lag():
    zone = Zone(ssl="full", always_use_https="off")
    with origins((A, {})) as (plain,), edge_for(zone, [A], plain.port, lag=1.0) as edge:
        assert edge.request("GET", f"http://{API}/").status == 200
        zone.values["always_use_https"] = "on"
        changed = time.monotonic()
        statuses = []
        while time.monotonic() - changed < 2.5:
            status = edge.request("GET", f"http://{API}/").status
            statuses.append((time.monotonic() - changed, status))
            if status == 301:
                break
            time.sleep(0.05)
    before = [t for t, s in statuses if s == 200]
    assert before and max(before) < 1.3, statuses
    first_301 = [t for t, s in statuses if s == 301]
    assert first_301 and 1.0 <= first_301[0] < 1.6, statuses

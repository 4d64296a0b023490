"""honeydue-dns-guard (roles/dns_guard) as the role installs it, run as processes on loopback against
the Cloudflare stand-in, the Kubernetes stand-in (Leases, Nodes, Events; HTTPS with K3s's admin
client certificate, as /etc/rancher/k3s/k3s.yaml gives it) and three fake node Traefiks
(``GET /ping`` on 127.0.0.11-13) that the tests stop, start and make flap.

Shown: two guards -> exactly one leader acts; a dead node's records go within the detection time
(measured and printed) with an Event; it comes back after the rise threshold; all nodes down ->
the records stay; a flapping node changes nothing; drains through the Node annotation, never the
last record; the Lease handed over on SIGTERM at once and taken over after SIGKILL."""
from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from lab.k3s import _pki
from lab.standins.kube import KubeStandIn
from tests.conftest import TOKEN

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "dns_guard"
CODE = [ROLE / "files" / "honeydue_dns_guard.py"] + [
    REPO / "plugins" / "module_utils" / f for f in ("_dns_guard.py", "_cf_plan.py", "_cloudflare.py")]
ZONE = "honeydue.example"
FQDNS = (ZONE, f"api.{ZONE}", f"admin.{ZONE}")
NODES = ["k3s-node-1", "k3s-node-2", "k3s-node-3"]
PUBLIC = {n: f"203.0.113.1{i}" for i, n in enumerate(NODES, 1)}
LEASE = ("", "kube-system", "honeydue-dns-guard")

pytestmark = pytest.mark.slow


class FakeTraefik:
    """A node's Traefik ping endpoint on its own loopback address: ``stop()`` refuses connections
    (the node is gone), ``start()`` answers again, ``pattern`` makes it answer 200/503 in turn."""

    def __init__(self, host):
        self.host, self.port, self.pattern, self.hits, self.server = host, 0, None, 0, None
        self.lock = threading.Lock()
        self.start()

    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                with fake.lock:
                    fake.hits += 1
                    ok = True if not fake.pattern else fake.pattern[(fake.hits - 1) % len(fake.pattern)]
                body = b"OK" if ok else b"Service Unavailable"
                self.send_response(200 if ok and self.path == "/ping" else 503)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self):
        return f"http://{self.host}:{self.port}/ping"


class ClientCertKube(KubeStandIn):
    """The Kubernetes stand-in behind HTTPS that requires a client certificate signed by K3s's
    client CA (kube-apiserver's x509 authentication of the admin kubeconfig): no bearer token."""

    def auth_failure(self, req):
        return None  # the TLS handshake already refused any client without such a certificate


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    data = tmp_path_factory.mktemp("k3s-data")
    _pki.ensure_cas(data)
    _pki.ensure_leaf_certs(data, "k3s-node-1", ["127.0.0.1"])
    return data


@pytest.fixture
def kube(pki):
    api = ClientCertKube(token="unused")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls = pki / "server" / "tls"
    ctx.load_cert_chain(tls / "serving-kube-apiserver.crt", tls / "serving-kube-apiserver.key")
    ctx.load_verify_locations(tls / "client-ca.crt")
    ctx.verify_mode = ssl.CERT_REQUIRED
    api.tls = ctx
    api.start()
    try:
        yield api
    finally:
        api.stop()
    assert not api.contract_violations, api.contract_violations


@pytest.fixture
def kubeconfig(kube, pki, tmp_path):
    """What K3s writes to /etc/rancher/k3s/k3s.yaml (0600): server, CA and admin client certificate."""
    tls = pki / "server" / "tls"
    path = tmp_path / "k3s.yaml"
    path.write_text(_pki.kubeconfig(kube.url, (tls / "server-ca.crt").read_bytes(),
                                    (tls / "client-admin.crt").read_bytes(), (tls / "client-admin.key").read_bytes()))
    path.chmod(0o600)
    return path


def kube_call(kube, pki, method, path, body=None, content_type="application/json"):
    tls = pki / "server" / "tls"
    ctx = ssl.create_default_context(cafile=str(tls / "server-ca.crt"))
    ctx.load_cert_chain(tls / "client-admin.crt", tls / "client-admin.key")
    req = urllib.request.Request(kube.url + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture
def traefiks():
    fakes = {n: FakeTraefik(f"127.0.0.1{i}") for i, n in enumerate(NODES, 1)}
    yield fakes
    for fake in fakes.values():
        fake.stop()


@pytest.fixture
def zone(cloudflare_api):
    """The zone as playbooks/dns.yml leaves it: the apex, api. and admin. on every node."""
    zone_id = cloudflare_api.zone_by_name(ZONE)["id"]
    posts = [{"name": name, "type": "A", "content": ip, "proxied": True, "ttl": 1, "comment": "managed by honeydue.infra"}
             for name in FQDNS for ip in PUBLIC.values()]
    req = urllib.request.Request(f"{cloudflare_api.url}/client/v4/zones/{zone_id}/dns_records/batch", method="POST",
                                 data=json.dumps({"posts": posts}).encode(),
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5):
        pass
    return zone_id


def dns(cloudflare_api, zone_id):
    """``{fqdn: sorted node names}`` of the zone's A records now."""
    by_ip = {ip: n for n, ip in PUBLIC.items()}
    with cloudflare_api._lock:
        rows = list(cloudflare_api.records[zone_id].values())
    return {name: sorted(by_ip.get(r["content"], r["content"]) for r in rows if r["name"] == name and r["type"] == "A")
            for name in FQDNS}


def everywhere(*nodes):
    return {name: sorted(nodes) for name in FQDNS}


def writes(cloudflare_api):
    return len(cloudflare_api.calls("POST", r"/dns_records/batch$"))


def wait_for(what, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(step)
    return what()


class Guards:
    """Guard processes, each with the layout the role installs (code in lib/, configuration and
    token 0600), started with ``python3 -I``."""

    def __init__(self, tmp_path, cloudflare_api, kubeconfig, traefiks):
        self.tmp, self.cf, self.kubeconfig, self.traefiks = tmp_path, cloudflare_api, kubeconfig, traefiks
        self.lib = tmp_path / "lib"
        self.lib.mkdir()
        for path in CODE:
            shutil.copy(path, self.lib / path.name)
        self.token = tmp_path / "dns-guard.token"
        self.token.write_text(TOKEN + "\n")
        self.token.chmod(0o600)
        self.procs = {}

    def config(self, identity, **health):
        doc = {"node_name": identity, "identity": identity, "zone": ZONE,
               "nodes": [{"name": n, "ipv4": PUBLIC[n], "health_url": self.traefiks[n].url} for n in NODES],
               "health": health,
               "cloudflare": {"api_base_url": f"{self.cf.url}/client/v4", "token_file": str(self.token)},
               "kubernetes": {"kubeconfig": str(self.kubeconfig)}}
        lease = health.pop("lease", None)
        if lease:
            doc["kubernetes"].update(lease_duration=lease[0], renew_deadline=lease[1])
        path = self.tmp / f"{identity}.yml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        path.chmod(0o600)
        return path

    def start(self, identity, **health):
        path = self.config(identity, **health)
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        log = open(self.tmp / f"{identity}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([sys.executable, "-I", str(self.lib / "honeydue_dns_guard.py"), "--config", str(path)],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs[identity] = (proc, log)
        return proc

    def log(self, identity):
        return (self.tmp / f"{identity}.log").read_text()

    def signal(self, identity, sig):
        proc, log = self.procs[identity]
        proc.send_signal(sig)
        proc.wait(timeout=20)
        log.close()

    def stop_all(self):
        for proc, log in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
            log.close()


@pytest.fixture
def guards(tmp_path, cloudflare_api, kubeconfig, traefiks):
    g = Guards(tmp_path, cloudflare_api, kubeconfig, traefiks)
    yield g
    g.stop_all()
    for identity in g.procs:
        print(f"----- {identity} -----\n{g.log(identity)}")


def lease(kube):
    return kube.get_object("coordination.k8s.io", "leases", LEASE[1], LEASE[2])


def holder(kube):
    found = lease(kube)
    return (found or {}).get("spec", {}).get("holderIdentity")


def events(kube, reason=None):
    with kube._lock:
        found = [e for e in kube.items(kube._rt("", "events"), "default") if e.get("source", {}).get("component")
                 == "honeydue-dns-guard"]
    return [e for e in found if reason is None or e["reason"] == reason]


def test_one_leader_removes_a_dead_node_within_the_detection_time_and_restores_it(
        guards, kube, cloudflare_api, zone, traefiks):
    """Defaults: checks every 2 s, out after 3 failures, back after 3 good checks, Lease 15/10 s."""
    guards.start("guard-a")
    guards.start("guard-b")
    leader = wait_for(lambda: holder(kube), 10)
    assert leader in ("guard-a", "guard-b")
    follower = "guard-b" if leader == "guard-a" else "guard-a"
    assert wait_for(lambda: "DNS holds" in guards.log(leader), 10)
    time.sleep(2.1)  # a round as leader: taking over changes nothing
    assert dns(cloudflare_api, zone) == everywhere(*NODES) and writes(cloudflare_api) == 1  # the fixture's

    traefiks["k3s-node-2"].stop()
    stopped = time.monotonic()
    assert wait_for(lambda: dns(cloudflare_api, zone) == everywhere("k3s-node-1", "k3s-node-3"), 15)
    detection = time.monotonic() - stopped
    print(f"\ndetection: node stopped -> its records removed in {detection:.2f} s "
          "(interval 2 s x fail_threshold 3; bound 7.5 s + the write)")
    assert 3.9 < detection < 9.0
    removed = wait_for(lambda: events(kube, "DNSRecordRemoved"), 3)
    assert [e["involvedObject"]["name"] for e in removed] == ["k3s-node-2"]
    assert removed[0]["type"] == "Warning" and "3 consecutive failed health checks" in removed[0]["message"]

    traefiks["k3s-node-2"].start()
    started = time.monotonic()
    assert wait_for(lambda: dns(cloudflare_api, zone) == everywhere(*NODES), 15)
    restore = time.monotonic() - started
    print(f"restore: node answering -> its records back in {restore:.2f} s (rise_threshold 3; bound 6 s + the write)")
    assert 3.9 < restore < 9.0
    restored = wait_for(lambda: events(kube, "DNSRecordRestored"), 3)
    assert [e["involvedObject"]["name"] for e in restored] == ["k3s-node-2"]

    # Exactly one acted: every Event and every write is the leader's; the follower never led.
    assert {e["reportingInstance"] for e in events(kube)} == {leader}
    assert writes(cloudflare_api) == 3  # the fixture's, the removal, the restore
    assert "DNS changed" in guards.log(leader) and "leader:" not in guards.log(follower)
    assert "DNS changed" not in guards.log(follower)
    assert TOKEN not in guards.log(leader) + guards.log(follower)

    # SIGTERM: the leader gives the Lease up and the other takes it within a round, changing nothing.
    transitions = lease(kube)["spec"]["leaseTransitions"]
    guards.signal(leader, signal.SIGTERM)
    handed = time.monotonic()
    assert wait_for(lambda: holder(kube) == follower, 5)
    print(f"handover on SIGTERM: {time.monotonic() - handed:.2f} s")
    assert lease(kube)["spec"]["leaseTransitions"] == transitions + 1
    assert wait_for(lambda: "DNS holds" in guards.log(follower), 5)
    time.sleep(2.1)
    assert dns(cloudflare_api, zone) == everywhere(*NODES) and writes(cloudflare_api) == 3


FAST = {"interval": 0.5, "timeout": 0.4, "fail_threshold": 3, "rise_threshold": 3, "lease": (4, 3)}


def test_flapping_all_down_drains_and_takeover_after_a_crash(guards, kube, pki, cloudflare_api, zone, traefiks):
    """Shorter timings (0.5 s rounds, Lease 4/3 s) for the rules that need many rounds."""
    guards.start("guard-a", **FAST)
    assert wait_for(lambda: "DNS holds" in guards.log("guard-a"), 10)
    before = writes(cloudflare_api)

    # A flapping node (its checks fail, fail, pass, ...) never reaches 3 failures in a row.
    traefiks["k3s-node-3"].pattern = [False, False, True]
    time.sleep(3)
    traefiks["k3s-node-3"].pattern = None
    assert traefiks["k3s-node-3"].hits >= 6
    hits = traefiks["k3s-node-3"].hits
    assert wait_for(lambda: traefiks["k3s-node-3"].hits > hits, 2)  # a good check: the next test starts even
    assert dns(cloudflare_api, zone) == everywhere(*NODES) and writes(cloudflare_api) == before

    # Every node fails at once (503 from each): the records stay (never fewer than one), with one Warning.
    for fake in traefiks.values():
        fake.pattern = [False]
    assert wait_for(lambda: events(kube, "DNSRecordsKept"), 5)
    time.sleep(1)
    assert dns(cloudflare_api, zone) == everywhere(*NODES) and writes(cloudflare_api) == before
    assert len(events(kube, "DNSRecordsKept")) == 1
    for fake in traefiks.values():
        fake.pattern = None
    assert wait_for(lambda: "k3s-node-1 passed 3 checks" in guards.log("guard-a"), 5)

    # Drains through the Node annotation: out at once, acknowledged on the Node; never the last one.
    def drain(node, value):
        kube_call(kube, pki, "PATCH", f"/api/v1/nodes/{node}",
                  {"metadata": {"annotations": {"honeydue.io/dns-drain": value}}}, "application/merge-patch+json")

    def annotations(node):
        return kube.get_object("", "nodes", "", node)["metadata"].get("annotations") or {}

    drain("k3s-node-1", "true")
    assert wait_for(lambda: dns(cloudflare_api, zone) == everywhere("k3s-node-2", "k3s-node-3"), 5)
    assert wait_for(lambda: "honeydue.io/dns-drained" in annotations("k3s-node-1"), 3)
    assert [e["involvedObject"]["name"] for e in wait_for(lambda: events(kube, "DNSRecordDrained"), 3)] == ["k3s-node-1"]
    drain("k3s-node-2", "true")
    assert wait_for(lambda: dns(cloudflare_api, zone) == everywhere("k3s-node-3"), 5)
    drain("k3s-node-3", "true")
    assert wait_for(lambda: events(kube, "DNSDrainHeld"), 5)
    time.sleep(1)
    assert dns(cloudflare_api, zone) == everywhere("k3s-node-3")  # the last record stays
    assert "honeydue.io/dns-drained" not in annotations("k3s-node-3")
    for node in NODES:
        drain(node, None)
    assert wait_for(lambda: dns(cloudflare_api, zone) == everywhere(*NODES), 5)
    assert wait_for(lambda: not any("honeydue.io/dns-drained" in annotations(n) for n in NODES), 3)

    # The leader crashes (SIGKILL: no release): the other waits out the Lease, then acts.
    guards.start("guard-b", **FAST)
    time.sleep(1.5)
    assert holder(kube) == "guard-a"
    guards.signal("guard-a", signal.SIGKILL)
    killed = time.monotonic()
    assert wait_for(lambda: holder(kube) == "guard-b", 10)
    takeover = time.monotonic() - killed
    print(f"\ntakeover after SIGKILL: {takeover:.2f} s (lease_duration 4 s)")
    assert takeover > 2.0
    traefiks["k3s-node-1"].stop()
    assert wait_for(lambda: dns(cloudflare_api, zone) == everywhere("k3s-node-2", "k3s-node-3"), 10)
    removed = wait_for(lambda: events(kube, "DNSRecordRemoved"), 3)
    assert [(e["involvedObject"]["name"], e["reportingInstance"]) for e in removed] == [("k3s-node-1", "guard-b")]


def test_the_guard_needs_no_ansible_and_no_site_packages(tmp_path):
    """On the node there is no ansible: the Cloudflare client runs on the guard's urllib transport,
    and --check-config works with the standard library alone (a JSON configuration)."""
    for path in CODE:
        shutil.copy(path, tmp_path / path.name)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import honeydue_dns_guard as d; d.install_ansible_shim(); "
            "import _cloudflare, _cf_plan; assert 'ansible' not in sys.modules['ansible'].__dict__.get('__file__', '');"
            "print(_cloudflare.open_url.__module__, _cloudflare.HTTPError.__module__)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["honeydue_dns_guard", "urllib.error"]
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"node_name": "n1", "zone": ZONE, "cloudflare": {"token_file": "/t"},
                               "nodes": [{"name": "n1", "ipv4": "203.0.113.11", "health_url": "http://10.0.1.11:8080/ping"}]}))
    out = subprocess.run([sys.executable, "-I", "-S", str(tmp_path / "honeydue_dns_guard.py"), "--check-config", str(cfg)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "detection within 7.5 s" in out.stdout
    cfg.write_text(json.dumps({"node_name": "n1", "zone": ZONE, "nodes": []}))
    out = subprocess.run([sys.executable, "-I", "-S", str(tmp_path / "honeydue_dns_guard.py"), "--check-config", str(cfg)],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "token_file is required" in out.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the role writes root-owned files")
def test_the_role_installs_what_the_guard_runs(tmp_path, playbook):
    """The role's install, token and configuration tasks on a K3s server of an inventory (its
    systemd part aside: no systemd here): 0600 files, the nodes from the group, a configuration the
    guard validates, nothing changed on a second run, the token never printed."""
    inventory = tmp_path / "hosts.yml"
    hosts = {f"node{i}": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                          "honeydue_public_ipv4": f"203.0.113.1{i}", "honeydue_node_ip": f"10.0.1.1{i}"}
             for i in (1, 2, 3)}
    inventory.write_text(yaml.safe_dump({"all": {"children": {"k3s_servers": {"hosts": hosts}}}}))
    lib, etc = tmp_path / "lib", tmp_path / "etc"
    tasks = [{"name": f"dns_guard {part}", "ansible.builtin.include_role": {"name": "honeydue.infra.dns_guard",
                                                                             "tasks_from": part}}
             for part in ("validate", "install", "credentials", "config")]
    play = [{"name": "dns guard", "hosts": "node1", "gather_facts": False, "tasks": tasks,
             "vars": {"dns_guard_zone": ZONE, "dns_guard_lib_dir": str(lib), "dns_guard_config_dir": str(etc),
                      "dns_guard_python": sys.executable, "dns_guard_service_state": "stopped"}}]
    secret = "cf-token-never-printed-0123456789"
    first = playbook(play, inventory=str(inventory), env={"CLOUDFLARE_API_TOKEN": secret}, extra_args=["--diff"])
    assert first.rc == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert secret not in first.stdout + first.stderr
    assert sorted(p.name for p in lib.iterdir()) == ["_cf_plan.py", "_cloudflare.py", "_dns_guard.py",
                                                      "honeydue_dns_guard.py"]
    assert (etc.stat().st_mode & 0o777) == 0o700
    for name in ("dns-guard.yml", "dns-guard.token"):
        assert ((etc / name).stat().st_mode & 0o777) == 0o600
    assert (etc / "dns-guard.token").read_text() == secret + "\n"
    cfg = yaml.safe_load((etc / "dns-guard.yml").read_text())
    assert secret not in (etc / "dns-guard.yml").read_text()
    assert cfg["node_name"] == "node1" and cfg["names"] == ["@", "api", "admin"]
    assert cfg["nodes"] == [{"name": f"node{i}", "ipv4": f"203.0.113.1{i}", "ipv6": None,
                             "health_url": f"http://10.0.1.1{i}:8080/ping"} for i in (1, 2, 3)]
    assert cfg["cloudflare"]["token_file"] == str(etc / "dns-guard.token")
    assert cfg["health"] == {"interval": 2.0, "timeout": 1.5, "fail_threshold": 3, "rise_threshold": 3,
                             "expect_status": 200, "host_header": ""}
    second = playbook(play, inventory=str(inventory), env={"CLOUDFLARE_API_TOKEN": secret})
    assert second.rc == 0 and second.changed("node1") == 0

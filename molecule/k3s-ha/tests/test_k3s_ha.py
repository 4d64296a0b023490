"""The k3s_server role and its playbooks on three hardened lab nodes, driven as an operator runs
them, while a watcher on the mirror host polls etcd's membership and health every 0.5 s over the
private network (etcdctl with K3s's client certificate). The tests run in file order, each on the
cluster the previous one left; the last one fails the run if quorum was ever lost.

Quorum lost: a sample where fewer endpoints are healthy than a majority of the voters listed, for
more than 2 s (one 0.5 s sample can miss a 1 s command timeout on this 2-core machine; a real
loss, two servers down, lasts for their whole restart).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from etcd_watcher import WATCHER  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", ".."))
from lab.standins.cloudflare import CloudflareStandIn  # noqa: E402

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = os.path.dirname(os.path.dirname(SCENARIO))
SERVERS = {"srv1": "10.79.0.11", "srv2": "10.79.0.12", "srv3": "10.79.0.13"}
AGENT = "wrk1"
DATA = "/var/lib/rancher/k3s"
ETCD_TLS = f"{DATA}/server/tls/etcd"
TOKEN = "lab-ha-token-7f3c9a21d4e8"
REGISTRY_PASSWORD = "lab-registry-pass-5b1e77"
OLD, NEW = "v1.34.6+k3s1", "v1.34.9+k3s1"
SECRETS = {"token": TOKEN, "registry": REGISTRY_PASSWORD}  # test_token_rotation adds the new token


BENCH_ONLY = os.environ.get("HONEYDUE_K3S_BENCH") == "1"  # benchmarks/bench_k3s.py: bring-up and upgrade only


@pytest.fixture(autouse=True)
def _bench_only(request):
    if BENCH_ONLY and not any(k in request.node.name for k in ("bring_up", "rolling_upgrade")):
        pytest.skip("HONEYDUE_K3S_BENCH=1: the benchmark runs the bring-up and the rolling upgrade only")


def host(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def playbook(path: str, *args: str, verbose: bool = False, timeout: int = 900,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """ansible-playbook as the operator runs it, against the scenario's inventory (default callback)."""
    cmd = ["ansible-playbook", "-i", INVENTORY, os.path.join(PROJECT, path) if not os.path.isabs(path) else path, *args]
    if verbose:
        cmd.append("-vvv")
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", **(env or {}))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    with open(os.path.join(EPHEMERAL, "playbook.log"), "a") as log:
        log.write(f"\n### {' '.join(cmd)} rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}\n")
    return proc


# The K3s stage of site.yml alone: prepare.yml hardened the nodes (base_hardening, as site.yml runs it
# before), and its second run is the hardening scenario's business, not this one's.
K3S = "playbooks/k3s.yml"


def recap(out: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters by host."""
    stats = {}
    for line in out.splitlines():
        m = re.match(r"^(\S+)\s+:\s+(.*)$", line)
        if m and "ok=" in m.group(2):
            stats[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return stats


def etcdctl(name: str, *args: str) -> str:
    return host(name).check_output(
        f"etcdctl --endpoints https://127.0.0.1:2379 --cacert {ETCD_TLS}/server-ca.crt --cert {ETCD_TLS}/client.crt "
        f"--key {ETCD_TLS}/client.key -w json " + " ".join(args))


def members(name: str = "srv1") -> list[tuple[str, bool]]:
    return sorted((m.get("name", ""), bool(m.get("isLearner"))) for m in json.loads(etcdctl(name, "member list"))["members"])


def main_pid(name: str) -> str:
    return host(name).check_output("systemctl show -p MainPID --value k3s")


def nodes(name: str = "srv1") -> dict[str, dict]:
    out = host(name).check_output("k3s kubectl get nodes -o json")
    return {n["metadata"]["name"]: n for n in json.loads(out)["items"]}


def ready(node: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


def wipe(name: str) -> None:
    """The server destroyed and rebuilt on its kept (Primary) address: K3s and its data gone."""
    host(name).check_output("systemctl stop k3s; systemctl disable k3s; systemctl reset-failed k3s; "
                            f"rm -rf {DATA} /var/lib/rancher/k3s-releases /etc/rancher /usr/local/bin/k3s "
                            "/etc/systemd/system/k3s.service; systemctl daemon-reload")


def journals(lines: int = 40) -> str:
    """The end of every server's K3s journal (for a failure message)."""
    return "".join(f"\n--- journal k3s {name}\n" + host(name).run(f"journalctl -u k3s -n {lines} --no-pager").stdout
                   for name in SERVERS)


@pytest.fixture(scope="module")
def watcher():
    """The etcd watcher on the mirror host (started once srv1 has K3s's etcd certificates)."""
    mirror = host("ha-mirror")
    box = {"started": False}

    def begin():
        src = host("srv1")
        mirror.check_output("mkdir -p /run/watch")
        for name, dst in (("server-ca.crt", "ca.crt"), ("client.crt", "client.crt"), ("client.key", "client.key")):
            content = src.check_output(f"cat {ETCD_TLS}/{name}")
            mirror.check_output("cat > /run/watch/%s <<'EOF'\n%s\nEOF" % (dst, content))
        mirror.check_output("cat > /run/watch/watch.py <<'PY'\n%s\nPY" % WATCHER)
        endpoints = ",".join(f"https://{ip}:2379" for ip in SERVERS.values())
        mirror.run("systemctl stop etcd-watch; systemctl reset-failed etcd-watch; rm -f /run/watch/stop /run/watch/log")
        mirror.check_output(f"systemd-run --unit=etcd-watch /usr/bin/python3 /run/watch/watch.py {endpoints} "
                            "/run/watch/stop /run/watch/log")
        box["started"] = True

    def records():
        raw = mirror.run("cat /run/watch/log").stdout
        return [json.loads(line) for line in raw.splitlines() if line.strip()]

    records.begin = begin
    records.box = box
    yield records
    mirror.run("touch /run/watch/stop; sleep 1; systemctl stop etcd-watch")


def quorum_dips(records: list[dict], since: float = 0.0) -> list[tuple[float, float, int, int]]:
    """(start, seconds, healthy, voters) of every period with fewer healthy endpoints than a majority of the
    voters listed at the time (from the first member list on: before it there is no cluster to lose)."""
    voters, dips, start, worst = None, [], None, None
    for r in records:
        if r.get("members"):
            voters = sum(1 for _name, learner in r["members"] if not learner)
        if "health" not in r or r["t"] < since or voters is None:
            continue
        healthy = sum(1 for _ep, ok in (r["health"] or []) if ok)
        if healthy < voters // 2 + 1:
            if start is None:
                start, worst = r["t"], (healthy, voters)
        elif start is not None:
            dips.append((start, r["t"] - start, *worst))
            start = None
    if start is not None:
        dips.append((start, time.time() - start, *worst))
    return dips


def lost(records, since=0.0):
    return [d for d in quorum_dips(records, since) if d[1] > 2.0]


def max_unhealthy_at_once(records, since: float) -> int:
    """The most endpoints unhealthy in one sample since ``since`` (a rolling change takes one at a time)."""
    return max((sum(1 for _ep, ok in (r["health"] or []) if not ok) for r in records
                if "health" in r and r["t"] >= since and r["health"]), default=0)


def promoted_at(records, prefix: str, since: float) -> float | None:
    """When the watcher first saw a voter member named ``prefix-*`` (after ``since``)."""
    for r in records:
        if r["t"] >= since and r.get("members") and any(n.startswith(prefix + "-") and not lrn for n, lrn in r["members"]):
            return r["t"]
    return None


def iso(ts: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def gate_windows(doc: dict) -> dict[str, tuple[float, float]]:
    """From an ansible.posix.json run: per server, when its gate began (the fresh status read before it)
    and ended (its wait: a started voter, etcd healthy, its Node Ready), for the servers the gate changed."""
    out: dict[str, list[float]] = {}
    for play in doc.get("plays", []):
        for task in play.get("tasks", []):
            name, dur = task["task"]["name"], task["task"].get("duration", {})
            if not dur.get("end"):
                continue
            m = re.search(r"Every server's etcd status, fresh, before (\S+)$", name)
            if m:
                out.setdefault(m.group(1), [0.0, 0.0])[0] = iso(dur["start"])
            m = re.search(r"Wait for a started voter.*: (\S+)$", name)
            if m and not all(r.get("skipped") for r in task["hosts"].values()):
                out.setdefault(m.group(1), [0.0, 0.0])[1] = iso(dur["end"])
    return {h: (a, b) for h, (a, b) in out.items() if a and b}


def playbook_json(path: str, *args: str) -> tuple[int, dict, str]:
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(["ansible-playbook", "-i", INVENTORY, os.path.join(PROJECT, path), *args],
                          capture_output=True, text=True, env=env, timeout=900)
    with open(os.path.join(EPHEMERAL, "playbook.log"), "a") as log:
        log.write(f"\n### {path} {args} rc={proc.returncode}\n{proc.stdout[-20000:]}\n{proc.stderr}\n")
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        doc = {}
    return proc.returncode, doc, proc.stdout + proc.stderr


def unit_stopping(name: str, unit: str = "k3s") -> float:
    """When systemd last began stopping the unit (ActiveExitTimestamp): a restart's start."""
    raw = host(name).check_output(f"systemctl show -p ActiveExitTimestamp --value {unit}")
    return float(host(name).check_output(f"date -d '{raw}' +%s.%N"))


def unit_started(name: str, unit: str = "k3s") -> float:
    """The monotonic-free wall time systemd last started the unit (ExecMainStartTimestamp, epoch µs)."""
    raw = host(name).check_output(f"systemctl show -p ExecMainStartTimestamp --value {unit}")
    return float(host(name).check_output(f"date -d '{raw}' +%s.%N"))


# -- bring-up -------------------------------------------------------------------------------------
def test_fresh_ha_bring_up_one_server_at_a_time(watcher):
    """playbooks/k3s.yml on three hardened, empty servers: srv1 initialises
    (the first by name, because no server has data), srv2 and srv3 join one at a time as learners and
    are promoted; the watcher starts as soon as srv1 has etcd's certificates."""
    t0 = time.time()
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1")
    out_path = os.path.join(EPHEMERAL, "bring-up.json")
    out_file = open(out_path, "w")  # a file, not a pipe: the JSON comes at the end and may outgrow a pipe
    proc = subprocess.Popen(["ansible-playbook", "-i", INVENTORY, os.path.join(PROJECT, K3S)], stdout=out_file,
                            stderr=subprocess.STDOUT, text=True, env=env)
    end = time.time() + 600
    while not watcher.box["started"] and time.time() < end and proc.poll() is None:
        if host("srv1").run(f"test -s {ETCD_TLS}/client.key").rc == 0:
            watcher.begin()
        time.sleep(0.5)
    proc.wait(timeout=900)
    t1 = time.time()
    out_file.close()
    out = open(out_path).read()
    with open(os.path.join(EPHEMERAL, "playbook.log"), "a") as log:
        log.write(f"\n### bring-up rc={proc.returncode}\n{out}\n")
    assert proc.returncode == 0, out[-6000:]
    assert watcher.box["started"]
    assert [(n.rsplit("-", 1)[0], lrn) for n, lrn in members()] == [("srv1", False), ("srv2", False), ("srv3", False)]
    found = nodes()
    assert sorted(found) == ["srv1", "srv2", "srv3", AGENT] and all(ready(n) for n in found.values())
    assert {n["status"]["nodeInfo"]["kubeletVersion"] for n in found.values()} == {OLD}
    assert not any(n.startswith(AGENT) for n, _ in members())  # the agent has no etcd member
    # cluster-init on srv1 only; the others joined through a server
    assert "cluster-init: true" in host("srv1").check_output("cat /etc/rancher/k3s/config.yaml.d/10-cluster.yaml")
    for name in ("srv2", "srv3"):
        assert host(name).check_output("cat /etc/rancher/k3s/config.yaml.d/10-cluster.yaml").startswith("server: https://10.79.0.1")
    # one server joined at a time: srv3's K3s started after srv2 was a voter
    recs = watcher()
    assert not lost(recs), quorum_dips(recs)
    srv2_voter = promoted_at(recs, "srv2", 0)
    assert srv2_voter and unit_started("srv3") >= srv2_voter - 0.5
    # BENCH: the gate's time per joining server beyond the stand-in's own (K3s start to voter)
    windows = gate_windows(json.loads(out[out.index("{"):]))
    slack, own = {}, {}
    for name in ("srv2", "srv3"):
        began, ended = windows[name]
        own[name] = promoted_at(recs, name, 0) - unit_started(name)
        slack[name] = (ended - began) - own[name]
    print(f"\nBENCH k3s_bringup nodes=3 joins=2 total_s={t1 - t0:.1f} "
          f"slack_s_per_node={sum(slack.values()) / len(slack):.2f} standin_s_per_node={sum(own.values()) / len(own):.2f} "
          f"slack_s={ {k: round(v, 2) for k, v in slack.items()} }")


def test_a_second_run_changes_nothing_restarts_nothing_and_never_shows_a_secret(watcher):
    pids = {name: main_pid(name) for name in SERVERS}
    proc = playbook(K3S, verbose=True)
    assert proc.returncode == 0, proc.stdout[-6000:]
    stats = recap(proc.stdout)
    assert stats and all(s["changed"] == 0 for s in stats.values()), stats
    assert {name: main_pid(name) for name in SERVERS} == pids
    for secret in SECRETS.values():
        assert secret not in proc.stdout and secret not in proc.stderr


def test_secrets_only_in_files_of_mode_0600_and_never_on_a_command_line():
    for name in SERVERS:
        h = host(name)
        for path in ("/etc/rancher/k3s/token", "/etc/rancher/k3s/config.yaml", "/etc/rancher/k3s/registries.yaml",
                     "/etc/rancher/k3s/config.yaml.d/10-cluster.yaml"):
            f = h.file(path)
            assert f.exists and f.mode == 0o600 and f.user == "root", path
        assert TOKEN in h.check_output("cat /etc/rancher/k3s/token")
        assert REGISTRY_PASSWORD in h.check_output("cat /etc/rancher/k3s/registries.yaml")
        # nowhere else under /etc (unit files, env files) and not in any process's arguments
        leaked = h.run(f"grep -rl -e {TOKEN} -e {REGISTRY_PASSWORD} /etc --exclude-dir=rancher").stdout
        assert leaked == ""
        assert TOKEN not in h.check_output("ps -eo args") and REGISTRY_PASSWORD not in h.check_output("ps -eo args")
        assert "token" not in h.check_output("systemctl cat k3s").lower().replace("token-file", "")
    kubeconfig = os.path.join(EPHEMERAL, "kubeconfig")
    assert oct(os.stat(kubeconfig).st_mode & 0o777) == "0o600"
    assert "server: https://10.79.0.11:6443" in open(kubeconfig).read()


def test_the_operators_kubeconfig_reaches_the_api_from_the_controller_side():
    """Debian's kubectl on the mirror host (a machine outside the cluster) with the fetched kubeconfig."""
    mirror = host("ha-mirror")
    mirror.check_output("mkdir -p /root/.kube && cat > /root/.kube/config <<'EOF'\n%s\nEOF\nchmod 600 /root/.kube/config"
                        % open(os.path.join(EPHEMERAL, "kubeconfig")).read())
    out = mirror.run("kubectl get nodes -o name")
    assert out.rc == 0, out.stderr
    assert sorted(out.stdout.split()) == ["node/srv1", "node/srv2", "node/srv3", f"node/{AGENT}"]


# -- the app's path: outside -> ufw -> Traefik (hostNetwork) -> pods on any node ----------------------
DOMAIN = "lab.test"
HCC = {"apiVersion": "helm.cattle.io/v1", "kind": "HelmChartConfig", "metadata": {"name": "traefik", "namespace": "kube-system"},
       "spec": {"valuesContent": "deployment:\n  kind: DaemonSet\nhostNetwork: true\n"
                                 "ports:\n  web:\n    port: 80\n    hostPort: 80\n  websecure:\n    port: 443\n    hostPort: 443\n"
                                 "updateStrategy:\n  type: RollingUpdate\n  rollingUpdate:\n    maxUnavailable: 1\n    maxSurge: 0\n"
                                 "service:\n  enabled: false\n"
                                 "providers:\n  kubernetesIngress:\n    publishedService:\n      enabled: false\n"}}


def public_ip(name: str) -> str:
    doc = json.loads(subprocess.check_output(["docker", "inspect", name]))[0]
    return doc["NetworkSettings"]["Networks"]["honeydue-ha"]["IPAddress"]


def _app(image: str) -> list[dict]:
    labels = {"app.kubernetes.io/name": "api"}
    probe = {"httpGet": {"path": "/api/health/", "port": 8000}, "periodSeconds": 1, "failureThreshold": 3}
    return [HCC, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "honeydue"}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "honeydue"},
             "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                      "template": {"metadata": {"labels": labels}, "spec": {
                          "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                         "whenUnsatisfiable": "DoNotSchedule",
                                                         "labelSelector": {"matchLabels": labels}}],
                          "containers": [{"name": "api", "image": image, "ports": [{"containerPort": 8000}],
                                          "startupProbe": probe, "readinessProbe": probe}]}}}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "honeydue"},
             "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": 8000}]}},
            {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "api", "namespace": "honeydue"},
             "spec": {"ingressClassName": "traefik", "rules": [{"host": f"api.{DOMAIN}", "http": {"paths": [
                 {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 80}}}}]}}]}}]


def _k8s_play(tasks: list[dict]) -> str:
    path = os.path.join(EPHEMERAL, "app.yml")
    with open(path, "w") as fh:
        json.dump([{"hosts": "localhost", "gather_facts": False,
                    "module_defaults": {"group/kubernetes.core.k8s": {"kubeconfig": os.path.join(EPHEMERAL, "kubeconfig")}},
                    "tasks": tasks}], fh)
    return path


def test_the_app_answers_through_traefik_on_every_node_and_outside_only_as_an_origin(tmp_path):
    """A Deployment pulled from the private registry (registries.yaml from the role, a mirror endpoint),
    run by each node's kubelet, served by the Traefik DaemonSet on :80 of every node; from `outside`
    ufw drops it until outside's address is one of the origin (Cloudflare) ranges."""
    from lab.registry.images import LABEL_READY_AFTER, build_image, push
    from lab.registry.server import LabRegistry

    registry = LabRegistry("token", {"lab": REGISTRY_PASSWORD}, addr="10.79.0.1:5055").start()
    outside, outside_ip = host("ha-outside"), public_ip("ha-outside")
    try:
        push(build_image(tmp_path / "good", "good", {LABEL_READY_AFTER: "2"}), registry.host, "honeydue/api", "lab",
             REGISTRY_PASSWORD, tag="good")
        apply = [{"name": f"apply {d['kind']}", "kubernetes.core.k8s": {"state": "present", "definition": d,
                                                                           "apply": True, "server_side_apply": {
                                                                               "field_manager": "honeydue"}}}
                 for d in _app("registry.lab.invalid:5000/honeydue/api:good")]
        wait = {"name": "Available", "kubernetes.core.k8s_info": {
            "kind": "Deployment", "namespace": "honeydue", "name": "api", "wait": True, "wait_timeout": 180,
            "wait_condition": {"type": "Available", "status": "True"}}}
        proc = playbook(_k8s_play([*apply, wait]))
        assert proc.returncode == 0, proc.stdout[-3000:]
        ips = {n: public_ip(n) for n in SERVERS}

        def curl(ip: str) -> tuple[int, dict | None]:
            out = outside.run(f"curl -s -m 3 -H 'Host: api.{DOMAIN}' http://{ip}/api/health/")
            return out.rc, (json.loads(out.stdout) if out.rc == 0 and out.stdout.startswith("{") else None)

        assert all(curl(ip)[0] == 28 for ip in ips.values()), "ufw drops :80 from an address that is not an origin"
        proc = playbook(os.path.join(SCENARIO, "harden.yml"), "--tags", "firewall",
                        "-e", json.dumps({"lab_extra_origins": [f"{outside_ip}/32"]}))
        assert proc.returncode == 0, proc.stdout[-3000:]
        served: dict[str, set[str]] = {n: set() for n in ips}
        deadline = time.time() + 60
        while time.time() < deadline and not all(len(v) >= 2 for v in served.values()):
            for n, ip in ips.items():
                rc, body = curl(ip)
                if body:
                    served[n].add(body["node"])
        assert all(any(node != n for node in nodes) for n, nodes in served.items()), \
            f"each node's Traefik reaches api pods on other nodes: {served}"
    finally:
        playbook(os.path.join(SCENARIO, "harden.yml"), "--tags", "firewall")  # outside is no origin again
        playbook(_k8s_play([{"name": "app gone", "kubernetes.core.k8s": {
            "state": "absent", "kind": "Namespace", "name": "honeydue", "wait": True, "wait_timeout": 120}}]))
        registry.stop()


# -- replacement ----------------------------------------------------------------------------------
# extra playbook arguments every later run needs (the release after the upgrade, the vault file after the
# rotation); HONEYDUE_K3S_EXTRA (JSON) seeds it when a few tests are re-run by hand on a lab left running
EXTRA: list[str] = json.loads(os.environ.get("HONEYDUE_K3S_EXTRA", "[]"))


@pytest.mark.parametrize("name", ["srv2", "srv1"])
def test_a_replaced_server_rejoins_its_cluster_and_its_old_member_is_removed(watcher, name):
    """The server rebuilt on its kept address with no data (K3s gone too): playbooks/k3s.yml removes its old
    member while the other two keep quorum, and it joins the existing cluster - also srv1, the first
    server, which must never initialise a second cluster (k3s-ansible#269)."""
    ca = host("srv3").check_output(f"sha256sum {DATA}/server/tls/server-ca.crt").split()[0]
    old = [n for n, _ in members("srv3") if n.startswith(name + "-")]
    wipe(name)
    since = time.time()
    proc = playbook(K3S, *EXTRA)
    assert proc.returncode == 0, proc.stdout[-6000:]
    now = members("srv3")
    assert len(now) == 3 and not any(lrn for _, lrn in now)
    new = [n for n, _ in now if n.startswith(name + "-")]
    assert new and new != old  # a new member under the node's name, the old one gone
    assert host(name).check_output(f"sha256sum {DATA}/server/tls/server-ca.crt").split()[0] == ca  # same cluster
    assert ready(nodes("srv3")[name])
    recs = watcher()
    assert not lost(recs, since), quorum_dips(recs, since)
    # the old member went before the new one was added (the watcher saw 2 members in between)
    seen = [sorted(n for n, _ in r["members"]) for r in recs if r.get("members") and r["t"] >= since]
    assert any(len(m) == 2 and old[0] not in m for m in seen), seen


# -- the gate refuses -----------------------------------------------------------------------------
def test_an_upgrade_into_a_degraded_cluster_is_refused_with_the_member_table_and_changes_nothing():
    """etcd on srv3 frozen (up, answering nothing): upgrade.yml stops before any server is touched."""
    pids = {name: main_pid(name) for name in SERVERS}
    host("srv3").check_output("k3s standin-fault freeze-etcd")
    try:
        proc = playbook("playbooks/upgrade.yml", "-e", f"k3s_version={NEW}", *EXTRA)
    finally:
        host("srv3").check_output("k3s standin-fault thaw-etcd")
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "refusing to change srv1" in text and "srv3" in text and "not answering" in text, text[-4000:]
    table = text[text.index("members_before"):]
    for name, healthy in (("srv1", "true"), ("srv2", "true"), ("srv3", "false")):  # the member table
        row = table[:table.index(f"name: {name}-")].rsplit("healthy:", 1)[1]
        assert row.split()[0] == healthy, table[:1500]
    assert {name: main_pid(name) for name in SERVERS} == pids
    for name in SERVERS:
        assert host(name).check_output("k3s --version").startswith(f"k3s version {OLD}")
    wait = time.time() + 60
    while time.time() < wait and host("srv3").run(
            f"etcdctl --endpoints https://127.0.0.1:2379 --cacert {ETCD_TLS}/server-ca.crt --cert {ETCD_TLS}/client.crt "
            f"--key {ETCD_TLS}/client.key endpoint health").rc != 0:
        time.sleep(1)


# -- rolling upgrade ------------------------------------------------------------------------------
def test_a_rolling_upgrade_goes_one_server_at_a_time(watcher):
    since = time.time()
    rc, doc, text = playbook_json("playbooks/upgrade.yml", "-e", f"k3s_version={NEW}", *EXTRA)
    t1 = time.time()
    assert rc == 0, text[-6000:]
    found = nodes()
    assert {n["status"]["nodeInfo"]["kubeletVersion"] for name, n in found.items() if name in SERVERS} == {NEW}
    assert found[AGENT]["status"]["nodeInfo"]["kubeletVersion"] == NEW  # agents follow
    recs = watcher()
    assert not lost(recs, since), quorum_dips(recs, since)
    assert max_unhealthy_at_once(recs, since) <= 1
    starts = sorted((unit_started(name), name) for name in SERVERS)
    assert [name for _, name in starts] == sorted(SERVERS)  # in name order, one after another
    windows = gate_windows(doc)
    assert sorted(windows) == sorted(SERVERS)
    for (_t, name), (_t2, nxt) in zip(starts, starts[1:], strict=False):
        assert windows[name][1] <= unit_started(nxt)  # the next began only after this one was back
    # BENCH: the gate's time per server beyond the stand-in's own (the restart - old process stopping,
    # new one starting - to every member healthy again)
    slack, own = {}, {}
    for t, name in starts:
        healthy_again = next((r["t"] for r in recs if r["t"] > t and "health" in r and r["health"]
                              and all(ok for _ep, ok in r["health"])), None)
        if healthy_again:
            began, ended = windows[name]
            own[name] = healthy_again - unit_stopping(name)
            slack[name] = (ended - began) - own[name]
    # the inventory still names the old release: a normal run refuses to downgrade; then it names the new one
    proc = playbook(K3S, *EXTRA)
    assert proc.returncode != 0 and "newer than" in proc.stdout + proc.stderr, proc.stdout[-3000:]
    assert all(host(n).check_output("k3s --version").startswith(f"k3s version {NEW}") for n in SERVERS)
    EXTRA[:] = [*EXTRA, "-e", f"k3s_server_version={NEW}"]
    print(f"\nBENCH k3s_upgrade nodes=3 total_s={t1 - since:.1f} "
          f"slack_s_per_node={sum(slack.values()) / max(len(slack), 1):.2f} "
          f"standin_s_per_node={sum(own.values()) / max(len(own), 1):.2f} slack_s={ {k: round(v, 2) for k, v in slack.items()} }")


# -- certificates ---------------------------------------------------------------------------------
SHORTEN = r"""
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
tls = "/var/lib/rancher/k3s/server/tls"
ca = x509.load_pem_x509_certificate(open(f"{tls}/server-ca.crt", "rb").read())
ca_key = serialization.load_pem_private_key(open(f"{tls}/server-ca.key", "rb").read(), None)
old = x509.load_pem_x509_certificate(open(f"{tls}/serving-kube-apiserver.crt", "rb").read())
now = datetime.datetime.now(datetime.timezone.utc)
b = (x509.CertificateBuilder().subject_name(old.subject).issuer_name(ca.subject).public_key(old.public_key())
     .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=335))
     .not_valid_after(now + datetime.timedelta(days=int(sys.argv[1]))))
for ext in old.extensions:
    b = b.add_extension(ext.value, ext.critical)
open(f"{tls}/serving-kube-apiserver.crt", "wb").write(b.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
"""


def test_a_certificate_near_expiry_is_renewed_by_a_gated_restart_of_that_server_only():
    """srv3's API serving certificate made to expire in 30 days (as after 335 days of uptime): the run
    reports it and restarts srv3 alone through the gate; K3s renews it on start (within 120 days)."""
    h = host("srv3")
    h.check_output("cat > /tmp/shorten.py <<'PY'\n%s\nPY\npython3 /tmp/shorten.py 30" % SHORTEN)
    pids = {name: main_pid(name) for name in SERVERS}
    proc = playbook(K3S, *EXTRA)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert re.search(r"srv3: etcd voter, healthy \| v1\.34\.\d\+k3s1 Ready \| certificates: 29 days left", proc.stdout) \
        or re.search(r"srv3: .*certificates: (29|30) days left", proc.stdout), proc.stdout[-3000:]
    after = {name: main_pid(name) for name in SERVERS}
    assert after["srv3"] != pids["srv3"] and after["srv1"] == pids["srv1"] and after["srv2"] == pids["srv2"]
    end = h.check_output("openssl x509 -enddate -noout -in /var/lib/rancher/k3s/server/tls/serving-kube-apiserver.crt")
    days = (time.mktime(time.strptime(end.split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")) - time.time()) / 86400
    assert days > 360, end
    proc = playbook(K3S, *EXTRA)
    assert proc.returncode == 0 and all(s["changed"] == 0 for s in recap(proc.stdout).values())
    assert {name: main_pid(name) for name in SERVERS} == after


# -- Cloudflare (DNS drain) -------------------------------------------------------------------------
CF_TOKEN = "lab-cloudflare-token-2d9e41"
PUBLIC = {"srv1": "203.0.113.11", "srv2": "203.0.113.12", "srv3": "203.0.113.13"}  # the inventory's, never contacted


def CLOUDFLARE(cf) -> list[str]:  # noqa: N802 - reads as a constant at the call site
    return ["-e", "cloudflare_dns_zone=honeydue.example", "-e", f"cloudflare_dns_api_base_url={cf.url}/client/v4"]


class cloudflare_records:  # noqa: N801 - a context manager used as `with cloudflare_records() as (cf, changes)`
    """The Cloudflare stand-in with the records playbooks/dns.yml makes, and every change of them seen by
    polling every 50 ms: a list of (time, {record name: frozenset of A contents})."""

    def __enter__(self):
        self.cf = CloudflareStandIn(token=CF_TOKEN).start()
        proc = playbook("playbooks/dns.yml", *CLOUDFLARE(self.cf), env={"CLOUDFLARE_API_TOKEN": CF_TOKEN})
        assert proc.returncode == 0, proc.stdout[-3000:]
        self.changes, self.stop = [], threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self._poll_once()
        self.thread.start()
        return self.cf, self.changes

    def _poll_once(self):
        with self.cf._lock:
            records = [r for zone in self.cf.records.values() for r in zone.values() if r["type"] == "A"]
        state = {}
        for r in records:
            state.setdefault(r["name"], set()).add(r["content"])
        state = {k: frozenset(v) for k, v in state.items()}
        if not self.changes or self.changes[-1][1] != state:
            self.changes.append((time.time(), state))

    def _poll(self):
        while not self.stop.wait(0.05):
            self._poll_once()

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self._poll_once()
        self.cf.stop()
        assert not self.cf.contract_violations, self.cf.contract_violations
        return False


# -- reboots --------------------------------------------------------------------------------------
# A lab node is a container: a real reboot would stop it. The reboot is simulated by ansible.builtin.reboot's
# own hooks (its command restarts K3s; a new boot is a new K3s main PID); the gate around it is the real one.
REBOOT = ["-e", "k3s_server_reboot_command='systemctl restart k3s*.service'",
          "-e", "k3s_server_boot_time_command='systemctl show -p MainPID --value k3s.service k3s-agent.service'"]


def test_reboot_yml_reboots_only_the_servers_that_need_it_one_at_a_time(watcher):
    pids = {name: main_pid(name) for name in SERVERS}
    host("srv2").check_output("touch /var/run/reboot-required")
    since = time.time()
    proc = playbook("playbooks/reboot.yml", *REBOOT, *EXTRA)
    assert proc.returncode == 0, proc.stdout[-6000:]
    after = {name: main_pid(name) for name in SERVERS}
    assert after["srv2"] != pids["srv2"] and after["srv1"] == pids["srv1"] and after["srv3"] == pids["srv3"]
    host("srv2").check_output("rm -f /var/run/reboot-required")
    # All three, with k3s_server_dns_drain: Cloudflare (the stand-in, on the controller's loopback)
    # stops sending users to each server while it reboots.
    with cloudflare_records() as (cf, changes):
        proc = playbook("playbooks/reboot.yml", "-e", "k3s_reboot_all=true", "-e", "k3s_server_dns_drain=true",
                        *CLOUDFLARE(cf), *REBOOT, *EXTRA, env={"CLOUDFLARE_API_TOKEN": CF_TOKEN})
        assert proc.returncode == 0, proc.stdout[-6000:]
    starts = sorted((unit_started(name), name) for name in SERVERS)
    assert [name for _, name in starts] == sorted(SERVERS) and all(t > since for t, _ in starts)
    recs = watcher()
    assert not lost(recs, since), quorum_dips(recs, since)
    assert max_unhealthy_at_once(recs, since) <= 1
    # Each server left every name before its reboot and came back after it, one at a time; the names
    # never pointed at fewer than two servers, nor at a server that was rebooting.
    public = {name: PUBLIC[name] for name in SERVERS}
    assert all(len(set(state.values())) == 1 for _, state in changes), changes  # one batch: every name alike
    sets = [(t, next(iter(state.values()))) for t, state in changes]
    assert sets[0][1] == sets[-1][1] == frozenset(public.values()), sets
    assert all(len(ips) >= 2 for _, ips in sets), sets
    for name, start in ((n, t) for t, n in starts):
        out = [t for t, ips in sets if public[name] not in ips]
        back = [t for t, ips in sets if public[name] in ips and out and t > out[0]]
        assert len(out) == 1 and back and out[0] < start < back[0], (name, start, sets)
    assert CF_TOKEN not in proc.stdout + proc.stderr


# -- cold start -----------------------------------------------------------------------------------
def test_a_cold_start_of_all_three_comes_back():
    """A power cycle: every server down at once. Serial starts behind a health gate would wait forever;
    the role starts them all without waiting, then gates on health."""
    procs = [subprocess.Popen(["docker", "exec", name, "systemctl", "stop", "k3s"]) for name in SERVERS]
    assert all(p.wait(60) == 0 for p in procs)
    proc = playbook(K3S, *EXTRA)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert "Every server with data starts at once" in proc.stdout
    assert len(members()) == 3 and all(ready(n) for name, n in nodes().items() if name in SERVERS)


# -- agents ---------------------------------------------------------------------------------------
def test_an_agent_leaves_and_joins_again():
    """wrk1 joined as an agent in the bring-up; k3s_server_agent_state=absent takes it out (cordoned, Node
    deleted, K3s removed) and the next run brings it back."""
    proc = playbook(K3S, "-e", "k3s_server_agent_state=absent", *EXTRA)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert AGENT not in nodes()
    assert not host(AGENT).file("/usr/local/bin/k3s").exists and not host(AGENT).service("k3s-agent").is_running
    proc = playbook(K3S, *EXTRA)
    assert proc.returncode == 0, proc.stdout[-6000:]
    agent = nodes()[AGENT]
    assert ready(agent) and "node-role.kubernetes.io/control-plane" not in agent["metadata"]["labels"]
    f = host(AGENT).file("/etc/rancher/k3s/agent-token")
    assert f.mode == 0o600 and f.user == "root" and TOKEN not in host(AGENT).check_output("ps -eo args")


# -- token rotation -------------------------------------------------------------------------------
def test_token_rotation_restarts_one_at_a_time_and_the_old_token_no_longer_joins(watcher):
    vault_pass = os.path.join(EPHEMERAL, "vault-pass")
    vault_file = os.path.join(EPHEMERAL, "vault_k3s.yml")
    with open(vault_pass, "w") as fh:
        fh.write("lab-vault-password\n")
    os.chmod(vault_pass, 0o600)
    since = time.time()
    proc = playbook("rotate-secrets.yml", "-e", f"k3s_server_vault_file={vault_file}",
                    "-e", f"k3s_server_vault_password_file={vault_pass}", "-e", '{"rotate_secrets": ["k3s_token"]}',
                    *EXTRA, verbose=True)
    assert proc.returncode == 0, proc.stdout[-6000:]
    new = host("srv1").check_output("cat /etc/rancher/k3s/token").strip()
    assert new and new != TOKEN and new.startswith("K10")
    SECRETS["rotated"] = new
    for secret in SECRETS.values():
        assert secret not in proc.stdout and secret not in proc.stderr
    for name in SERVERS:
        assert host(name).check_output("cat /etc/rancher/k3s/token").strip() == new
    # the vault file: encrypted, 0600, the new token current and the old one kept
    assert oct(os.stat(vault_file).st_mode & 0o777) == "0o600"
    text = open(vault_file).read()
    assert new not in text and TOKEN not in text and "$ANSIBLE_VAULT" in text
    shown = subprocess.run(["ansible", "localhost", "-m", "ansible.builtin.debug", "-a",
                            "msg={{ [vault_k3s_token, vault_k3s_token_previous] | to_json }}",
                            "-e", f"@{vault_file}", "--vault-password-file", vault_pass],
                           capture_output=True, text=True, env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    assert new in shown.stdout and TOKEN in shown.stdout, shown.stdout + shown.stderr
    EXTRA[:] = [*EXTRA, "-e", f"@{vault_file}", "--vault-password-file", vault_pass]
    recs = watcher()
    assert not lost(recs, since), quorum_dips(recs, since)
    assert max_unhealthy_at_once(recs, since) <= 1
    # the old token no longer opens the cluster's bootstrap data; the new one does
    old_pw, new_pw = TOKEN.split("::")[-1], new.split("::server:")[-1]
    probe = "curl -sk -o /dev/null -w '%{http_code}' -u server:{} https://10.79.0.11:6443/v1-k3s/server-bootstrap"
    assert host("ha-mirror").check_output(probe.replace("{}", old_pw)) == "401"
    assert host("ha-mirror").check_output(probe.replace("{}", new_pw)) == "200"
    proc = playbook(K3S, *EXTRA)  # a normal run with the vault file: nothing to do
    assert proc.returncode == 0 and all(s["changed"] == 0 for s in recap(proc.stdout).values()), proc.stdout[-4000:]


# -- removing a server on purpose ------------------------------------------------------------------
def test_a_server_removed_on_purpose_leaves_under_quorum_and_can_come_back(watcher):
    """k3s-remove-server.yml: 3 -> 2 is refused without the explicit even-count allowance; with it, srv3's
    member is removed from a healthy cluster, K3s stopped there, its data kept aside and its Node deleted.
    The next k3s.yml run brings it back as a new member."""
    proc = playbook("playbooks/k3s-remove-server.yml", "-e", "k3s_remove=srv3", *EXTRA)
    assert proc.returncode != 0 and "an even number adds no tolerated failure" in proc.stdout + proc.stderr
    assert len(members()) == 3
    since = time.time()
    proc = playbook("playbooks/k3s-remove-server.yml", "-e", "k3s_remove=srv3", "-e", "k3s_remove_allow_even=true", *EXTRA)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert [n.rsplit("-", 1)[0] for n, _ in members()] == ["srv1", "srv2"]
    assert not host("srv3").service("k3s").is_running and not host("srv3").service("k3s").is_enabled
    assert "srv3" not in nodes()
    assert host("srv3").run(f"ls -d {DATA}/server/db.removed-*").rc == 0  # kept, not deleted
    proc = playbook(K3S, *EXTRA)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert sorted(n.rsplit("-", 1)[0] for n, _ in members()) == ["srv1", "srv2", "srv3"]
    assert ready(nodes()["srv3"])
    recs = watcher()
    assert not lost(recs, since), quorum_dips(recs, since)


# -- quorum lost for good -------------------------------------------------------------------------
def test_the_lost_quorum_playbook_restores_from_the_survivor():
    """srv2 and srv3 gone for good (K3s stopped, data wiped): srv1 alone has no quorum. k3s-restore.yml
    resets srv1 to a one-member cluster from its own data and the others rejoin; what was stored before
    the loss is still there."""
    etcdctl("srv1", "put /honeydue/before-the-loss kept")
    for name in ("srv2", "srv3"):
        wipe(name)
    assert host("srv1").run("k3s kubectl get nodes --request-timeout=5s").rc != 0  # no quorum
    proc = playbook("playbooks/k3s-restore.yml", "-e", "k3s_restore_host=srv1", "-e", "k3s_restore_confirm=false", *EXTRA)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:] + journals()
    now = members()
    assert sorted(n.rsplit("-", 1)[0] for n, _ in now) == ["srv1", "srv2", "srv3"] and not any(lrn for _, lrn in now)
    assert '"count":1' in etcdctl("srv1", "get /honeydue/before-the-loss").replace(" ", "")
    assert all(ready(n) for name, n in nodes().items() if name in SERVERS)
    # one data set: every member at the same revision once a write has gone through them all (a reset
    # from a member's own data can leave rejoined members with other data: etcd-io/etcd#14009)
    etcdctl("srv1", "put /honeydue/after-the-restore done")
    revisions = {name: json.loads(etcdctl(name, "get /honeydue/after-the-restore"))["kvs"][0]["mod_revision"]
                 for name in SERVERS}  # linearizable reads: each member has applied the write
    assert len(set(revisions.values())) == 1, f"the members hold different data: {revisions}"

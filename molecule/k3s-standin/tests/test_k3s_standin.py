"""The K3s stand-in on three lab nodes, driven as an operator drives K3s, with a watcher that polls
etcd's membership and health every 0.5 s (from the mirror host, over the private network) and
records every change. The tests run in file order: each builds on the cluster the previous left.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest
import testinfra
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from etcd_watcher import WATCHER  # noqa: E402

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
IP = {"k3s1": "10.78.0.11", "k3s2": "10.78.0.12", "k3s3": "10.78.0.13"}  # the servers
AGENT_IP = "10.78.0.14"
NODE = {"k3s1": "node1", "k3s2": "node2", "k3s3": "node3"}
TOKEN = "lab-cluster-secret"
ROTATED = "lab-rotated-secret"
STATE = {"token": TOKEN}  # the cluster's token; test_token_rotation changes it
SERVER = f"https://{IP['k3s1']}:6443"
DATA = "/var/lib/rancher/k3s"
ETCD_TLS = f"{DATA}/server/tls/etcd"



S3 = {"etcd-s3": True, "etcd-s3-endpoint": "10.78.0.1:9000", "etcd-s3-bucket": "honeydue-etcd",
      "etcd-s3-folder": "k3s", "etcd-s3-access-key": "lab-access", "etcd-s3-secret-key": "lab-secret",
      "etcd-s3-insecure": True}
SCHEDULE = {"etcd-snapshot-schedule-cron": "* * * * *", "etcd-snapshot-retention": 2}


@pytest.fixture(scope="module")
def s3():
    """The lab's S3 server (moto, as the Backblaze B2 stand-in) on the private network's gateway: the
    controller's address on that Docker network, reachable from the nodes only."""
    import boto3
    gateway = json.loads(subprocess.check_output(["docker", "network", "inspect", "honeydue-k3s-private"]))[0]
    address = gateway["IPAM"]["Config"][0].get("Gateway", "10.78.0.1")
    assert address == S3["etcd-s3-endpoint"].split(":")[0], address
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", address, "-p", "9000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = boto3.client("s3", endpoint_url=f"http://{address}:9000", aws_access_key_id="lab-access",
                          aws_secret_access_key="lab-secret", region_name="us-east-1")
    for _ in range(50):
        try:
            client.create_bucket(Bucket="honeydue-etcd")
            break
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(0.2)
    yield client
    proc.terminate()
    proc.wait(10)


def s3_names(client) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket="honeydue-etcd").get("Contents", []))


def host(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def k3s_config(name: str, **extra) -> str:
    cfg = {"node-ip": IP[name], "token": STATE["token"], "write-kubeconfig-mode": "0600", **extra}
    return yaml.safe_dump(cfg, sort_keys=False)


def start(name: str, config: str, timeout: int = 120):
    """Write the config and start k3s as systemd does (blocks until READY=1, like `systemctl start k3s`)."""
    h = host(name)
    h.check_output("mkdir -p /etc/rancher/k3s && cat > /etc/rancher/k3s/config.yaml <<'EOF'\n%s\nEOF" % config)
    return h.run(f"timeout {timeout} systemctl start k3s")


def stop(name: str) -> None:
    host(name).check_output("systemctl stop k3s")


def wipe(name: str) -> None:
    host(name).check_output(f"systemctl stop k3s; systemctl reset-failed k3s; rm -rf {DATA} /etc/rancher/k3s")


def k3s_log(name: str, lines: int = 20) -> str:
    """The k3s unit's own log lines (time=... level=... msg=...), without etcd's."""
    return host(name).run(f"journalctl -u k3s --no-pager -o cat | grep -a '^time=' | tail -n {lines}").stdout


def kubectl(name: str, *args: str, timeout: int = 30):
    return host(name).run(f"timeout {timeout} k3s kubectl " + " ".join(args))


def members(name: str) -> list[tuple[str, bool]]:
    """(name, is_learner) of every etcd member, as seen from ``name``'s own etcd."""
    out = host(name).check_output(
        f"etcdctl --endpoints https://127.0.0.1:2379 --cacert {ETCD_TLS}/server-ca.crt --cert {ETCD_TLS}/client.crt "
        f"--key {ETCD_TLS}/client.key -w json member list")
    return sorted((m.get("name", ""), bool(m.get("isLearner"))) for m in json.loads(out).get("members", []))


@pytest.fixture(scope="module")
def watcher():
    """The etcd watcher on the mirror host; yields a function returning the records so far."""
    mirror = host("k3s-mirror")
    box = {"started": False}

    def begin():
        node1 = host("k3s1")
        mirror.check_output("mkdir -p /run/watch")
        for src, dst in (("server-ca.crt", "ca.crt"), ("client.crt", "client.crt"), ("client.key", "client.key")):
            content = node1.check_output(f"cat {ETCD_TLS}/{src}")
            mirror.check_output("cat > /run/watch/%s <<'EOF'\n%s\nEOF" % (dst, content))
        mirror.check_output("cat > /run/watch/watch.py <<'PY'\n%s\nPY" % WATCHER)
        endpoints = ",".join(f"https://{ip}:2379" for ip in IP.values())
        mirror.run("systemctl stop etcd-watch; systemctl reset-failed etcd-watch; rm -f /run/watch/stop /run/watch/log")
        mirror.check_output(f"systemd-run --unit=etcd-watch /usr/bin/python3 /run/watch/watch.py {endpoints} "
                            "/run/watch/stop /run/watch/log")
        box["started"] = True

    def records():
        if not box["started"]:
            begin()
            time.sleep(1)
        raw = mirror.run("cat /run/watch/log").stdout
        return [json.loads(line) for line in raw.splitlines() if line.strip()]

    records.begin = begin
    yield records
    mirror.run("touch /run/watch/stop; sleep 1; systemctl stop etcd-watch")


def wait_for(predicate, timeout: float = 60, interval: float = 0.5, what: str = "condition"):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


# -- install and version ------------------------------------------------------------------------
def test_installed_binary_matches_the_release_checksum_and_answers_as_the_release():
    h = host("k3s1")
    digest = h.check_output("sha256sum /usr/local/bin/k3s").split()[0]
    listed = host("k3s-mirror").check_output(
        "cat '/srv/k3s/k3s-io/k3s/releases/download/v1.34.6+k3s1/sha256sum-amd64.txt'")
    assert f"{digest}  k3s" in listed
    assert h.check_output("k3s --version").splitlines()[0].startswith("k3s version v1.34.6+k3s1 (")
    assert "2379" not in h.check_output("ss -ltn") and not h.service("k3s").is_running


# -- cluster-init ---------------------------------------------------------------------------------
def test_cluster_init_on_node1(watcher, s3):
    result = start("k3s1", k3s_config("k3s1", **{"cluster-init": True, "not-a-k3s-key": "x", **S3, **SCHEDULE}))
    assert result.rc == 0, result.stderr
    h = host("k3s1")
    assert h.service("k3s").is_running
    ca = h.file(f"{DATA}/server/tls/server-ca.crt").content
    token = h.file(f"{DATA}/server/token")
    assert token.mode == 0o600
    assert token.content_string.strip() == f"K10{hashlib.sha256(ca).hexdigest()}::server:{TOKEN}"
    assert h.file(f"{DATA}/server/node-token").is_symlink
    assert h.file("/etc/rancher/k3s/k3s.yaml").mode == 0o600
    for f in ("server-ca", "peer-ca", "server-client", "peer-server-client", "client"):
        assert h.file(f"{ETCD_TLS}/{f}.crt").exists and h.file(f"{ETCD_TLS}/{f}.key").mode == 0o600
    (name, learner), = members("k3s1")
    assert name.startswith("node1-") and len(name) == len("node1-") + 8 and not learner
    assert h.file(f"{DATA}/server/db/etcd/name").content_string.strip() == name
    # Unknown keys: warned about and skipped, as K3s does.
    journal = k3s_log("k3s1", 200)
    assert "Unknown flag --not-a-k3s-key found in config.yaml, skipping" in journal
    # etcd's client port is gRPC only; its HTTP gateway and /health are on loopback :2382.
    listening = h.check_output("ss -ltnH | awk '{print $4}'").split()
    assert {"127.0.0.1:2379", "10.78.0.11:2379", "127.0.0.1:2380", "10.78.0.11:2380", "127.0.0.1:2381",
            "127.0.0.1:2382"} <= set(listening)
    watcher.begin()


def test_cacerts_serves_the_server_ca_and_the_api_needs_a_client_certificate():
    mirror, node1 = host("k3s-mirror"), host("k3s1")
    assert mirror.check_output(f"curl -sk {SERVER}/cacerts") == node1.check_output(f"cat {DATA}/server/tls/server-ca.crt")
    assert mirror.run(f"curl -sk -o /dev/null -w '%{{http_code}}' {SERVER}/api/v1/nodes").stdout == "401"
    version = json.loads(kubectl("k3s1", "get --raw /version").stdout)
    assert version["gitVersion"] == "v1.34.6+k3s1"


# -- joins ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["k3s2", "k3s3"])
def test_a_server_joins_as_learner_then_voter(watcher, name):
    """The servers hold promotion (the "slow promotion" fault) while the joiner starts, so the learner
    stage lasts until released: `systemctl start` has not returned by then (READY=1 comes only once
    the member is a voter), and the watcher saw the learner before the voter."""
    before = len(watcher())
    servers = [n for n in IP if n != name and host(n).service("k3s").is_running]
    for n in servers:
        host(n).check_output("k3s standin-fault hold-promotion")
    try:
        host(name).check_output("mkdir -p /etc/rancher/k3s && cat > /etc/rancher/k3s/config.yaml <<'EOF'\n%s\nEOF"
                                % k3s_config(name, server=SERVER))
        host(name).check_output("systemctl start --no-block k3s")
        wait_for(lambda: any(n.startswith(NODE[name] + "-") and learner for n, learner in members(servers[0])),
                 what=f"{name} listed as a learner")
        time.sleep(2 * 5)  # two promotion rounds (K3S_STANDIN_PROMOTE_INTERVAL=5) pass while held
        assert host(name).run("systemctl show -p ActiveState --value k3s").stdout.strip() == "activating"
    finally:
        for n in servers:
            host(n).check_output("k3s standin-fault release-promotion")
    wait_for(lambda: host(name).run("systemctl show -p ActiveState --value k3s").stdout.strip() == "active",
             timeout=60, what=f"{name} started (promoted)")
    mine = [m for m in members(name) if m[0].startswith(NODE[name] + "-")]
    assert mine and not mine[0][1], members(name)
    time.sleep(1.5)
    seen = [r["members"] for r in watcher()[before:] if r.get("members")]
    as_learner = [s for s in seen if any(n.startswith(NODE[name] + "-") and learner for n, learner in s)]
    as_voter = [s for s in seen if any(n.startswith(NODE[name] + "-") and not learner for n, learner in s)]
    assert as_learner and as_voter, seen
    assert seen.index(as_learner[0]) < seen.index(as_voter[0])
    assert max(sum(learner for _, learner in s) for s in seen) <= 1  # one learner at a time


def test_every_server_answers_alike():
    wait_for(lambda: all(kubectl(n, "get nodes").stdout.count(" Ready ") == 3 for n in IP), what="3 Ready nodes")
    answers = {n: json.loads(kubectl(n, "get nodes -o json").stdout) for n in IP}
    views = {n: [(i["metadata"]["name"], i["metadata"]["resourceVersion"]) for i in a["items"]] for n, a in answers.items()}
    assert views["k3s1"] == views["k3s2"] == views["k3s3"] and len(views["k3s1"]) == 3
    node = answers["k3s1"]["items"][0]
    labels = node["metadata"]["labels"]
    assert labels["node-role.kubernetes.io/control-plane"] == "true" and labels["node-role.kubernetes.io/etcd"] == "true"
    assert node["metadata"]["annotations"]["etcd.k3s.cattle.io/node-name"].startswith(node["metadata"]["name"] + "-")
    conds = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conds["Ready"] == "True" and conds["EtcdIsVoter"] == "True"


# -- workloads on the lab nodes -------------------------------------------------------------------
DOMAIN = "lab.test"
PULL_USER, PULL_PASSWORD = "deploy", "lab-pull-password"
HCC = {"apiVersion": "helm.cattle.io/v1", "kind": "HelmChartConfig", "metadata": {"name": "traefik", "namespace": "kube-system"},
       "spec": {"valuesContent": yaml.safe_dump({
           "deployment": {"kind": "DaemonSet"}, "hostNetwork": True,
           "ports": {"web": {"port": 80, "hostPort": 80}, "websecure": {"port": 443, "hostPort": 443}},
           "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
           "service": {"enabled": False},
           "providers": {"kubernetesIngress": {"publishedService": {"enabled": False}}}})}}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """The lab registry (Debian's distribution with Gitea-style token auth) on the private network's
    gateway, holding the app image; the nodes pull with their registries.yaml credentials."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", ".."))
    from lab.registry.images import LABEL_READY_AFTER, build_image, push
    from lab.registry.server import LabRegistry
    net = json.loads(subprocess.check_output(["docker", "network", "inspect", "honeydue-k3s-private"]))[0]
    gateway = net["IPAM"]["Config"][0].get("Gateway", "10.78.0.1")
    reg = LabRegistry("token", {PULL_USER: PULL_PASSWORD}, addr=f"{gateway}:5055").start()
    tmp = tmp_path_factory.mktemp("images")
    push(build_image(tmp / "good", "good", {LABEL_READY_AFTER: "2"}), reg.host, "honeydue/api", PULL_USER,
         PULL_PASSWORD, tag="good")
    yield reg
    reg.stop()


def _apply(name: str, docs: list[dict]) -> None:
    text = "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)
    out = host(name).run("cat > /run/apply.yaml <<'EOF'\n%s\nEOF\ntimeout 60 k3s kubectl apply -f /run/apply.yaml" % text)
    assert out.rc == 0, out.stderr + out.stdout


def _through_traefik(ip: str) -> tuple[int, dict | str]:
    import urllib.error
    import urllib.request
    req = urllib.request.Request(f"http://{ip}/api/health/", headers={"Host": f"api.{DOMAIN}"})
    try:
        with urllib.request.urlopen(req, timeout=3) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    except OSError as err:
        return 0, str(err)


def test_a_deployment_runs_as_processes_on_the_lab_nodes_and_traefik_serves_it_on_every_node(registry):
    """Workloads over the cluster's etcd: applied on one server, scheduled by the controller Lease
    holder, pulled from the registry with registries.yaml credentials, run and probed by each node's
    kubelet, and served by the Traefik DaemonSet the HelmChartConfig renders (hostNetwork :80)."""
    regs = yaml.safe_dump({"configs": {registry.host: {"auth": {"username": PULL_USER, "password": PULL_PASSWORD}}},
                           "mirrors": {registry.host: {"endpoint": [f"http://{registry.host}"]}}})
    for n in IP:
        host(n).check_output("install -d -m 0755 /etc/rancher/k3s && umask 077 && "
                             "cat > /etc/rancher/k3s/registries.yaml <<'EOF'\n%s\nEOF" % regs)
    image = f"{registry.host}/honeydue/api:good"
    labels = {"app.kubernetes.io/name": "api"}
    probe = {"httpGet": {"path": "/api/health/", "port": 8000}, "periodSeconds": 1, "failureThreshold": 3}
    _apply("k3s2", [HCC, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "honeydue"}},
                    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "honeydue"},
                     "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                              "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
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
                         {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 80}}}}]}}]}}])

    def available():
        out = kubectl("k3s3", "-n honeydue get deployment api -o json")
        return out.rc == 0 and (json.loads(out.stdout).get("status") or {}).get("availableReplicas") == 3
    wait_for(available, timeout=120, what="Deployment api Available with 3 replicas")
    pods = json.loads(kubectl("k3s1", "-n honeydue get pods -o json").stdout)["items"]
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["node1", "node2", "node3"]
    assert all(p["status"]["podIP"].startswith("10.42.") for p in pods), [p["status"].get("podIP") for p in pods]
    served: dict[str, set[str]] = {n: set() for n in IP}

    def every_node_serves():
        for n, ip in IP.items():
            code, body = _through_traefik(ip)
            if code == 200 and isinstance(body, dict):
                served[n].add(body["node"])
        return all(len(v) >= 2 for v in served.values())
    wait_for(every_node_serves, timeout=90, interval=0.2,
             what="Traefik on :80 of every node reaching api pods on other nodes")
    assert all(any(node != NODE[n] for node in nodes) for n, nodes in served.items()), served


# -- losing nodes ---------------------------------------------------------------------------------
def test_one_server_down_the_api_stays_up_and_the_node_goes_not_ready():
    stop("k3s3")
    out = kubectl("k3s1", "get nodes")
    assert out.rc == 0, out.stderr
    wait_for(lambda: "node3   NotReady" in kubectl("k3s1", "get nodes").stdout, timeout=40, what="node3 NotReady")


def test_two_servers_down_the_api_errors_and_comes_back():
    stop("k3s2")
    out = kubectl("k3s1", "get nodes", "--request-timeout=30s", timeout=45)
    assert out.rc != 0
    assert "etcdserver: request timed out" in out.stderr or "Timeout" in out.stderr, out.stderr
    assert host("k3s2").run("timeout 120 systemctl start k3s").rc == 0
    assert kubectl("k3s1", "get nodes").rc == 0
    assert host("k3s3").run("timeout 120 systemctl start k3s").rc == 0
    wait_for(lambda: kubectl("k3s1", "get nodes").stdout.count(" Ready ") == 3, what="3 Ready nodes again")


def test_a_restarted_server_comes_back_as_the_same_member():
    before = members("k3s1")
    host("k3s2").check_output("timeout 120 systemctl restart k3s")
    assert members("k3s1") == before


def test_a_partitioned_server_loses_its_api_and_catches_up_when_healed():
    node3 = host("k3s3")
    node3.check_output(f"k3s standin-fault partition {IP['k3s1']} {IP['k3s2']}")
    try:
        assert kubectl("k3s1", "annotate node node1 lab/partition=during --overwrite").rc == 0
        out = kubectl("k3s3", "get nodes", "--request-timeout=30s", timeout=45)
        assert out.rc != 0 and "etcdserver: request timed out" in out.stderr, out.stderr
    finally:
        node3.check_output("k3s standin-fault heal")
    seen = wait_for(lambda: kubectl("k3s3", "get node node1 -o jsonpath='{.metadata.annotations.lab/partition}'").stdout,
                    timeout=60, what="node3 serving again")
    assert seen == "during"


def _bootstrap_status(password: str) -> str:
    return host("k3s-mirror").run(f"curl -sk -o /dev/null -w '%{{http_code}}' -u server:{password} "
                                  f"{SERVER}/v1-k3s/server-bootstrap").stdout


def test_token_rotation_refuses_the_old_token():
    assert _bootstrap_status(TOKEN) == "200"
    out = host("k3s1").run(f"k3s token rotate --new-token {ROTATED}")
    assert out.rc == 0 and "Token rotated" in out.stdout, out.stderr
    assert _bootstrap_status(TOKEN) == "401" and _bootstrap_status(ROTATED) == "200"
    ca = host("k3s1").file(f"{DATA}/server/tls/server-ca.crt").content
    assert host("k3s1").file(f"{DATA}/server/token").content_string.strip() == \
        f"K10{hashlib.sha256(ca).hexdigest()}::server:{ROTATED}"
    # A server restarted with the old token finds the bootstrap data under the new one only.
    stop("k3s2")
    result = start("k3s2", k3s_config("k3s2", server=SERVER), timeout=30)
    assert result.rc != 0
    assert "bootstrap data already found and encrypted with different token" in \
        k3s_log("k3s2")
    host("k3s2").run("systemctl stop k3s; systemctl reset-failed k3s")
    STATE["token"] = ROTATED
    for name in ("k3s2", "k3s3", "k3s1"):
        stop(name)
        extra = {"cluster-init": True, **S3, **SCHEDULE} if name == "k3s1" else {"server": SERVER}
        result = start(name, k3s_config(name, **extra))
        assert result.rc == 0, result.stderr
    wait_for(lambda: kubectl("k3s1", "get nodes").stdout.count(" Ready ") == 3, what="3 Ready nodes after the rotation")


# -- snapshots ---------------------------------------------------------------------------------------
def test_scheduled_snapshots_keep_the_retention_locally_and_in_s3(s3):
    """node1 snapshots every minute (lab schedule) and keeps 2, on disk and in the bucket."""
    def scheduled():
        out = host("k3s1").check_output("k3s etcd-snapshot ls")
        return [line.split()[0] for line in out.splitlines()[1:] if line.startswith("etcd-snapshot-node1-")]
    wait_for(lambda: len(set(scheduled())) >= 2, timeout=150, interval=5, what="two scheduled snapshots")
    first = set(scheduled())
    wait_for(lambda: set(scheduled()) != first, timeout=90, interval=5, what="a third scheduled snapshot")
    local = host("k3s1").check_output("ls /var/lib/rancher/k3s/server/db/snapshots").split()
    assert len([n for n in local if n.startswith("etcd-snapshot-node1-")]) == 2
    assert len([n for n in s3_names(s3) if n.startswith("k3s/etcd-snapshot-node1-")]) == 2


def test_a_snapshot_in_s3_restores_the_cluster_with_cluster_reset(s3):
    node1 = host("k3s1")
    assert kubectl("k3s1", "annotate node node1 lab/marker=before --overwrite").rc == 0
    saved = node1.run("k3s etcd-snapshot save --name lab")
    assert saved.rc == 0, saved.stderr
    assert "saved." not in saved.stdout  # K3s logs it through logrus, on stderr
    name = saved.stderr.split('msg="Snapshot ', 1)[1].split()[0]
    assert f'level=info msg="Snapshot {name} saved."' in saved.stderr and name.startswith("lab-node1-")
    assert f"k3s/{name}" in s3_names(s3)
    assert kubectl("k3s1", "annotate node node1 lab/marker=after --overwrite").rc == 0
    for n in ("k3s3", "k3s2", "k3s1"):
        stop(n)
    node1.check_output(f"rm -f /var/lib/rancher/k3s/server/db/snapshots/{name}")  # restored from S3, not from disk
    reset = node1.run(f"timeout 120 k3s server --cluster-reset --cluster-reset-restore-path={name}")
    assert reset.rc == 0, reset.stderr[-2000:]
    assert "Managed etcd cluster membership has been reset" in reset.stderr
    assert node1.run("timeout 120 systemctl start k3s").rc == 0
    assert len(members("k3s1")) == 1
    for n in ("k3s2", "k3s3"):  # the others rejoin with their db removed
        host(n).check_output(f"rm -rf {DATA}/server/db")
        assert host(n).run("timeout 120 systemctl start k3s").rc == 0
    marker = kubectl("k3s1", "get node node1 -o jsonpath='{.metadata.annotations.lab/marker}'").stdout
    assert marker == "before"
    assert len([m for m in members("k3s1") if not m[1]]) == 3
    wait_for(lambda: kubectl("k3s1", "get nodes").stdout.count(" Ready ") == 3, what="3 Ready nodes after the restore")


# -- hazards --------------------------------------------------------------------------------------
def test_a_wrong_token_is_refused_by_the_ca_hash():
    wipe("k3s3")
    try:
        bad = "K10" + "0" * 64 + "::server:" + STATE["token"]
        result = start("k3s3", k3s_config("k3s3", server=SERVER, token=bad), timeout=30)
        assert result.rc != 0
        journal = k3s_log("k3s3")
        assert "token CA hash does not match the Cluster CA certificate hash" in journal
    finally:
        host("k3s3").run("systemctl stop k3s; systemctl reset-failed k3s")


def test_a_rebuilt_node_whose_old_member_is_listed_cannot_join_until_it_is_removed():
    """k3s3's data was wiped above while its member stays listed: the rebuilt node fails with
    "duplicate node name found" until the member is removed through its Node (K3s's remove annotation)."""
    wipe("k3s3")
    result = start("k3s3", k3s_config("k3s3", server=SERVER), timeout=30)
    assert result.rc != 0
    journal = k3s_log("k3s3")
    assert "duplicate node name found" in journal
    host("k3s3").run("systemctl stop k3s; systemctl reset-failed k3s")
    assert kubectl("k3s1", "annotate node node3 etcd.k3s.cattle.io/remove=true").rc == 0
    wait_for(lambda: not any(n.startswith("node3-") for n, _ in members("k3s1")), timeout=60, what="node3's member removed")
    assert kubectl("k3s1", "delete node node3", timeout=60).rc == 0
    wipe("k3s3")
    result = start("k3s3", k3s_config("k3s3", server=SERVER))
    assert result.rc == 0, result.stderr
    assert len([m for m in members("k3s1") if not m[1]]) == 3


def test_deleting_a_node_removes_its_member_behind_the_finalizer():
    """`kubectl delete node` of a server runs K3s's etcd member removal (finalizer
    wrangler.cattle.io/managed-etcd-controller): the Node is gone only once its member is."""
    node = json.loads(kubectl("k3s1", "get node node3 -o json").stdout)
    assert "wrangler.cattle.io/managed-etcd-controller" in node["metadata"]["finalizers"]
    stop("k3s3")
    assert kubectl("k3s1", "delete node node3", timeout=90).rc == 0
    assert not any(n.startswith("node3-") for n, _ in members("k3s1"))
    assert kubectl("k3s1", "get node node3").rc != 0
    wipe("k3s3")
    result = start("k3s3", k3s_config("k3s3", server=SERVER))
    assert result.rc == 0, result.stderr
    assert len([m for m in members("k3s1") if not m[1]]) == 3


def test_removing_a_member_that_would_lose_quorum_is_refused():
    stop("k3s3")
    try:
        assert kubectl("k3s1", "annotate node node2 etcd.k3s.cattle.io/remove=true").rc == 0
        time.sleep(6)
        assert any(n.startswith("node2-") for n, _ in members("k3s1"))
    finally:
        kubectl("k3s1", "annotate node node2 etcd.k3s.cattle.io/remove-")
        host("k3s3").run("timeout 120 systemctl start k3s")


def test_a_rebuilt_first_server_with_cluster_init_forms_a_second_cluster():
    """k3s-ansible#269: the first server rebuilt with an empty data dir and cluster-init (no server)
    starts a new cluster with new CAs; the old cluster goes on without it."""
    old_ca = host("k3s2").check_output(f"cat {DATA}/server/tls/server-ca.crt")
    wipe("k3s1")
    result = start("k3s1", k3s_config("k3s1", **{"cluster-init": True}))
    assert result.rc == 0, result.stderr
    assert len(members("k3s1")) == 1
    assert len(members("k3s2")) == 3  # node1's old member is still listed there, down
    assert host("k3s1").check_output(f"cat {DATA}/server/tls/server-ca.crt") != old_ca


# -- clients ------------------------------------------------------------------------------------------
def test_debian_kubectl_and_kubernetes_core_work_with_the_fetched_kubeconfig(tmp_path):
    kubeconfig = host("k3s2").check_output("cat /etc/rancher/k3s/k3s.yaml").replace(
        "https://127.0.0.1:6443", f"https://{IP['k3s2']}:6443")
    mirror = host("k3s-mirror")
    mirror.check_output("cat > /run/kubeconfig <<'EOF'\n%s\nEOF" % kubeconfig)
    out = mirror.check_output("kubectl --kubeconfig /run/kubeconfig get nodes -o name")
    assert "node/node2" in out.split()
    path = tmp_path / "kubeconfig"
    path.write_text(kubeconfig)
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Nodes", "kubernetes.core.k8s_info": {"kind": "Node", "kubeconfig": str(path)}, "register": "nodes"},
        {"name": "Node2 is there", "ansible.builtin.assert": {"that": [
            "nodes.resources | map(attribute='metadata.name') | select('equalto', 'node2') | list | length == 1"]}}]}]))
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", "-e",
                           f"ansible_python_interpreter={sys.executable}", str(play)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_an_agent_joins_as_a_worker_without_an_etcd_member():
    """k3s4 joins the cluster node2 and node3 still form (after the hazard above) as an agent: a Node
    without node-role labels, Ready by its Lease, and no etcd member; its node password is bound to
    its name, so a rebuilt agent with a new password is refused as K3s refuses a duplicate hostname."""
    server = f"https://{IP['k3s2']}:6443"
    token = host("k3s2").check_output(f"cat {DATA}/server/token")
    agent = host("k3s4")
    agent.check_output("mkdir -p /etc/rancher/k3s && cat > /etc/rancher/k3s/config.yaml <<'EOF'\n%s\nEOF" % yaml.safe_dump(
        {"server": server, "token": token, "node-ip": AGENT_IP}))
    agent.check_output("sed -i 's#^ExecStart=.*#ExecStart=/usr/local/bin/k3s agent#' /etc/systemd/system/k3s.service && "
                       "systemctl daemon-reload")
    assert agent.run("timeout 60 systemctl start k3s").rc == 0, k3s_log("k3s4")
    def ready_agent_node():
        out = kubectl("k3s2", "get node agent1 -o json")
        node = json.loads(out.stdout) if out.rc == 0 else None
        ready = node and {c["type"]: c["status"] for c in node["status"]["conditions"]}.get("Ready") == "True"
        return node if ready else None
    node = wait_for(ready_agent_node, what="agent1 Ready")
    assert not [k for k in node["metadata"]["labels"] if k.startswith("node-role.kubernetes.io/")]
    assert not any(n.startswith("agent1") for n, _ in members("k3s2"))
    assert agent.file("/etc/rancher/node/password").mode == 0o600
    agent.check_output("systemctl stop k3s && rm /etc/rancher/node/password")
    assert agent.run("timeout 30 systemctl start k3s").rc != 0
    assert "Node password rejected, duplicate hostname" in k3s_log("k3s4")
    agent.run("systemctl stop k3s; systemctl reset-failed k3s")

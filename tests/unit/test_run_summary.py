"""The run summary (plugins/module_utils/_run_summary.py, filter honeydue.infra.run_summary) and the
callback that says what changed (honeydue.infra.run_changes): what an operator reads."""
from __future__ import annotations

import pytest

from ansible_collections.honeydue.infra.plugins.callback import run_changes
from ansible_collections.honeydue.infra.plugins.filter.summary import FilterModule
from ansible_collections.honeydue.infra.plugins.module_utils._run_summary import (
    app_lines,
    dns_lines,
    etcd_lines,
    nodes_lines,
    summary_lines,
    traefik_lines,
)

NEW, OLD = "a1b2c3d", "0ffee12"


# -- builders (objects as the Kubernetes API and the modules return them) ------------------------

def node(name, ready="True", ip="10.0.1.11", external=None, version="v1.34.6+k3s1", reason="KubeletReady",
         cordoned=False):
    addresses = [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]
    if external:
        addresses.append({"type": "ExternalIP", "address": external})
    return {"kind": "Node", "metadata": {"name": name}, "spec": {"unschedulable": True} if cordoned else {},
            "status": {"addresses": addresses, "nodeInfo": {"kubeletVersion": version},
                       "conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": ready, "reason": reason}]}}


def info(*objects):
    """A kubernetes.core.k8s_info result."""
    return {"changed": False, "api_found": True, "resources": list(objects)}


NODES = info(node("hetzner1", ip="10.0.1.11", external="203.0.113.10"),
             node("hetzner2", ip="10.0.1.12", external="203.0.113.11"),
             node("hetzner3", ip="10.0.1.13", external="203.0.113.12"))


def pod(name, node_name, ready=True, image="traefik:v3.5", labels=None, waiting=None, deleting=False, owner=None):
    meta = {"name": name, "labels": labels or {"app.kubernetes.io/name": "traefik"}}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-28T10:00:00Z"
    if owner:
        meta["ownerReferences"] = [owner]
    status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if waiting:
        status["containerStatuses"] = [{"name": "c", "state": {"waiting": {"reason": waiting}}}]
    return {"kind": "Pod", "metadata": meta, "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": image}]},
            "status": status}


def member(name, mid, learner=False):
    return {"id": mid, "name": name, "peer_urls": [f"https://10.0.1.1{mid[-1]}:2380"],
            "client_urls": [f"https://10.0.1.1{mid[-1]}:2379"], "is_learner": learner}


MEMBERS = [member("hetzner1-aaaa1111", "101"), member("hetzner2-bbbb2222", "102"), member("hetzner3-cccc3333", "103")]


def status(name, mid, leader="101", members=MEMBERS, alarms=()):
    return {"changed": False, "members": members,
            "status": {"answered": True, "member_id": mid, "leader": leader, "raft_index": 1000,
                       "alarms": list(alarms), "member_name": name}}


def silent(name, error="connection refused"):
    return {"changed": False, "status": {"answered": False, "member_name": name, "error": error}}


SERVERS = ["hetzner1", "hetzner2", "hetzner3"]


def all_answer(members=MEMBERS, **overrides):
    reads = {"hetzner1": status("hetzner1-aaaa1111", "101", members=members),
             "hetzner2": status("hetzner2-bbbb2222", "102", members=members),
             "hetzner3": status("hetzner3-cccc3333", "103", members=members)}
    reads.update(overrides)
    return reads


def workload(kind, name, tag, replicas=1, ready=None, updated=None, repo=None, generation=2):
    ready = replicas if ready is None else ready
    image = f"git.honeydue.example/{repo or 'honeydue/' + name}:{tag}"
    st = {"observedGeneration": generation, "replicas": replicas, "readyReplicas": ready,
          "updatedReplicas": replicas if updated is None else updated, "availableReplicas": ready}
    if kind == "StatefulSet":
        st.update(currentRevision="r1", updateRevision="r1", currentReplicas=replicas)
    return {"kind": kind, "metadata": {"name": name, "namespace": "honeydue", "generation": generation},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": name, "image": image}]}}},
            "status": st}


def app_pod(component, tag, n, deleting=False):
    return pod(f"{component}-{n}", "hetzner1", image=f"git.honeydue.example/honeydue/{component}:{tag}", deleting=deleting,
               labels={"app.kubernetes.io/name": "honeydue", "app.kubernetes.io/component": component})


RELEASE = info({"kind": "ConfigMap", "metadata": {"name": "honeydue-release"}, "data": {"sha": NEW, "previous": OLD}})


def app_at(api=NEW, admin=NEW, worker=NEW):
    return (info(workload("Deployment", "api", api, replicas=3), workload("Deployment", "admin", admin)),
            info(workload("StatefulSet", "worker", worker),
                 workload("StatefulSet", "redis", "7-alpine", repo="library/redis")))


# -- Nodes -------------------------------------------------------------------------------------

def test_every_node_ready_reads_as_one_headline_with_a_row_per_node():
    lines = nodes_lines(NODES)
    assert lines[0] == "Nodes: 3, all Ready, K3s v1.34.6+k3s1"
    assert lines[1].split() == ["hetzner1", "10.0.1.11", "/", "203.0.113.10", "v1.34.6+k3s1", "Ready"]
    assert len(lines) == 4


def test_a_node_not_ready_is_shown_as_such_with_its_reason():
    lines = nodes_lines(info(node("hetzner1"), node("hetzner2", ready="Unknown", reason="NodeStatusUnknown"),
                             node("hetzner3", ready="False", reason="KubeletNotReady")))
    assert lines[0].startswith("Nodes: 3, 2 NOT Ready (hetzner2, hetzner3)")
    assert "NOT Ready (Unknown, NodeStatusUnknown)" in lines[2]
    assert "NOT Ready (False, KubeletNotReady)" in lines[3]
    assert lines[1].endswith(" Ready") and "NOT" not in lines[1]


def test_a_node_without_a_ready_condition_is_not_ready_and_a_cordoned_one_says_so():
    bare = node("hetzner2")
    bare["status"]["conditions"] = []
    lines = nodes_lines(info(node("hetzner1", cordoned=True), bare))
    assert "Ready, cordoned" in lines[1]
    assert "NOT Ready (Unknown)" in lines[2]


def test_nodes_at_different_k3s_versions_are_mixed():
    lines = nodes_lines(info(node("hetzner1", version="v1.34.9+k3s1"), node("hetzner2")))
    assert lines[0] == "Nodes: 2, all Ready, K3s MIXED versions v1.34.6+k3s1 / v1.34.9+k3s1"


def test_a_node_without_an_external_ip_shows_the_inventorys_public_address():
    lines = nodes_lines(info(node("hetzner1", ip="10.0.1.11"), node("hetzner2", ip="10.0.1.12", external="198.51.100.2")),
                        {"hetzner1": "203.0.113.10", "hetzner2": "203.0.113.11"})
    assert lines[1].split()[:4] == ["hetzner1", "10.0.1.11", "/", "203.0.113.10"]
    assert lines[2].split()[:4] == ["hetzner2", "10.0.1.12", "/", "198.51.100.2"], "the Node's own ExternalIP wins"

def test_nodes_not_read_say_why_in_one_line():
    failed = {"failed": False, "failed_when_result": False,
              "msg": "Could not create API client: Invalid kube-config file. No configuration found.\nmore"}
    assert nodes_lines(failed) == ["Nodes: not read (Could not create API client: Invalid kube-config file. No configuration found.)"]


# -- etcd --------------------------------------------------------------------------------------

def test_a_healthy_cluster_names_every_voter_and_the_leader():
    lines = etcd_lines(all_answer(), SERVERS)
    assert lines[0] == "etcd: 3 members, 3 voters (quorum 2); healthy"
    assert lines[1].split() == ["hetzner1-aaaa1111", "voter", "healthy", "(leader)"]
    assert lines[2].split() == ["hetzner2-bbbb2222", "voter", "healthy"]


def test_a_learner_is_flagged():
    members = MEMBERS[:2] + [member("hetzner3-cccc3333", "103", learner=True)]
    lines = etcd_lines(all_answer(members), SERVERS)
    assert lines[0] == "etcd: 3 members, 2 voters (quorum 2), 1 LEARNER; healthy"
    assert lines[3].split()[:3] == ["hetzner3-cccc3333", "LEARNER", "healthy"]


def test_a_member_that_does_not_answer_makes_the_cluster_not_healthy():
    lines = etcd_lines(all_answer(hetzner3=silent("hetzner3-cccc3333", "context deadline exceeded")), SERVERS)
    assert lines[0].startswith("etcd: 3 members, 3 voters (quorum 2); NOT healthy: hetzner3-cccc3333: not answering")
    assert "NOT answering (context deadline exceeded)" in lines[3]


def test_an_unreachable_server_leaves_its_members_health_unread_not_unhealthy():
    unreachable = {"unreachable": True, "changed": False,
                   "msg": "Task failed: Data could not be sent to remote host \"203.0.113.12\". Make sure this host can be "
                          "reached over ssh: ssh: connect to host 203.0.113.12 port 22: Connection timed out"}
    lines = etcd_lines(all_answer(hetzner3=unreachable), SERVERS)
    assert lines[0] == "etcd: 3 members, 3 voters (quorum 2); health of hetzner3-cccc3333 not read"
    assert "health not read (unreachable: ssh: connect to host 203.0.113.12 port 22: Connection timed out)" in lines[3]


def test_a_server_left_out_of_the_play_is_named_not_read():
    reads = all_answer()
    del reads["hetzner2"]
    lines = etcd_lines(reads, SERVERS)
    assert "health of hetzner2-bbbb2222 not read" in lines[0]
    assert "failed or unreachable earlier, or outside --limit" in lines[2]


def test_an_alarm_and_a_server_without_a_member_are_shown():
    members = MEMBERS[:2]
    reads = all_answer(members, hetzner2=status("hetzner2-bbbb2222", "102", members=members, alarms=["NOSPACE"]),
                       hetzner3=silent("", "no etcd data"))
    lines = etcd_lines(reads, SERVERS)
    assert "NOT healthy: hetzner2-bbbb2222: alarm NOSPACE" in lines[0]
    assert "ALARM NOSPACE" in lines[2]
    assert lines[-1] == "  hetzner3: NO etcd member (no etcd data)"


def test_no_server_answering_is_one_line():
    reads = {h: silent(f"{h}-x", "connection refused") for h in SERVERS}
    assert etcd_lines(reads, SERVERS) == [
        "etcd: not read (no server answered: hetzner1: connection refused; hetzner2: connection refused; "
        "hetzner3: connection refused)"]
    assert etcd_lines({h: silent("", "no etcd data") for h in SERVERS}, SERVERS) == [
        "etcd: not read (no server has etcd data yet)"]
    assert etcd_lines({}, []) == ["etcd: not read (no hosts in k3s_servers)"]


# -- Traefik -----------------------------------------------------------------------------------

def test_a_ready_traefik_pod_on_every_node():
    pods = info(pod("traefik-a", "hetzner1"), pod("traefik-b", "hetzner2"), pod("traefik-c", "hetzner3"))
    assert traefik_lines(pods, NODES) == ["Traefik: a ready pod on 3 of 3 nodes",
                                          "  hetzner1 ready, hetzner2 ready, hetzner3 ready"]


def test_a_node_without_a_traefik_pod_is_shown_missing():
    pods = info(pod("traefik-a", "hetzner1"), pod("traefik-b", "hetzner2"), pod("traefik-c", "hetzner3", deleting=True))
    lines = traefik_lines(pods, NODES)
    assert lines[0] == "Traefik: a ready pod on 2 of 3 nodes; MISSING on hetzner3"
    assert lines[1] == "  hetzner1 ready, hetzner2 ready, hetzner3 MISSING"


def test_a_traefik_pod_not_ready_says_why():
    pods = info(pod("traefik-a", "hetzner1"), pod("traefik-b", "hetzner2", ready=False, waiting="CrashLoopBackOff"),
                pod("traefik-c", "hetzner3"))
    lines = traefik_lines(pods, NODES)
    assert lines[0] == "Traefik: a ready pod on 2 of 3 nodes; NOT ready on hetzner2"
    assert "hetzner2 NOT ready (CrashLoopBackOff)" in lines[1]


def test_traefik_from_a_lookup_list_and_no_pods_at_all():
    assert traefik_lines([pod("traefik-a", "hetzner1")], [node("hetzner1")])[0] == "Traefik: a ready pod on 1 of 1 node"
    assert traefik_lines([], [])[0].startswith("Traefik: NO pods")


# -- DNS ---------------------------------------------------------------------------------------

EXPECTED = {"hetzner1": "203.0.113.10", "hetzner2": "203.0.113.11", "hetzner3": "203.0.113.12"}


def dns(before):
    """cf_dns_roundrobin in check mode with diff: diff.before is what Cloudflare holds."""
    return {"changed": False, "changed_when_result": False, "records": {}, "api_calls": 2,
            "diff": {"before": before, "after": {}}}


def test_every_name_at_every_node():
    every = list(EXPECTED.values())
    lines = dns_lines(dns({"honeydue.example": every, "api.honeydue.example": every, "admin.honeydue.example": every}),
                      EXPECTED, "honeydue.example")
    assert lines[0] == "DNS (honeydue.example): 3 names, each at all 3 nodes"
    assert lines[1].split() == ["honeydue.example", "hetzner1,", "hetzner2,", "hetzner3"]


def test_a_record_set_short_of_a_node_is_shown():
    every, short = list(EXPECTED.values()), ["203.0.113.10", "203.0.113.11"]
    lines = dns_lines(dns({"honeydue.example": every, "api.honeydue.example": short, "admin.honeydue.example": every}),
                      EXPECTED, "honeydue.example")
    assert lines[0] == "DNS (honeydue.example): 1 of 3 names NOT at all 3 nodes"
    api = next(line for line in lines if "api.honeydue.example" in line)
    assert api.endswith("hetzner1, hetzner2; SHORT of hetzner3 (203.0.113.12)")


def test_an_address_of_no_node_and_a_name_without_records_are_shown():
    lines = dns_lines(dns({"api.honeydue.example": list(EXPECTED.values()) + ["198.51.100.7"], "honeydue.example": []}),
                      EXPECTED)
    assert lines[0] == "DNS: 2 of 2 names NOT at all 3 nodes"
    assert "NO records" in lines[1] and "NOT a node: 198.51.100.7" in lines[2]


def test_dns_not_read_says_why():
    failed = {"failed": False, "failed_when_result": False,
              "msg": "Cloudflare API GET /zones failed (HTTP 403): 9109: Invalid access token"}
    assert dns_lines(failed, EXPECTED) == ["DNS: not read (Cloudflare API GET /zones failed (HTTP 403): 9109: Invalid access token)"]
    assert dns_lines({"skipped": True, "skip_reason": "Conditional result was False"}, EXPECTED)[0].startswith("DNS: not read")


# -- the app -----------------------------------------------------------------------------------

def test_the_app_at_one_tag():
    deployments, statefulsets = app_at()
    pods = info(*(app_pod("api", NEW, i) for i in range(3)), app_pod("admin", NEW, 0), app_pod("worker", NEW, 0))
    lines = app_lines(deployments, statefulsets, pods, RELEASE)
    assert lines[0] == f"App (namespace honeydue): api, admin, worker at {NEW}; release {NEW} (previous {OLD})"
    assert [line.split() for line in lines[1:]] == [
        ["Deployment/api", NEW, "3/3", "ready"], ["Deployment/admin", NEW, "1/1", "ready"],
        ["StatefulSet/worker", NEW, "1/1", "ready"], ["StatefulSet/redis", "7-alpine", "1/1", "ready"]]


def test_an_app_at_mixed_tags_is_shown():
    deployments, statefulsets = app_at(admin=OLD)
    lines = app_lines(deployments, statefulsets, None, RELEASE)
    assert lines[0].startswith(f"App (namespace honeydue): MIXED tags: api {NEW}, admin {OLD}, worker {NEW}; release {NEW}")
    assert "NOT what runs" in lines[0]


def test_pods_of_one_workload_at_two_tags_are_mixed_and_not_all_ready():
    deployments = info(workload("Deployment", "api", "badbad1", replicas=3, ready=3, updated=1),
                       workload("Deployment", "admin", NEW))
    _, statefulsets = app_at()
    pods = info(*(app_pod("api", NEW, i) for i in range(3)), app_pod("api", "badbad1", 3), app_pod("api", OLD, 4, deleting=True))
    lines = app_lines(deployments, statefulsets, pods, RELEASE)
    assert "MIXED tags: api badbad1, admin a1b2c3d" in lines[0] and "api pods at 2 tags" in lines[0]
    api = lines[1]
    assert api.split()[:2] == ["Deployment/api", "badbad1"]
    assert "1 out of 3 new replicas have been updated" in api
    assert api.endswith(f"pods MIXED: {NEW} x3, badbad1 x1"), "a terminating pod does not count"


def test_a_workload_short_of_ready_replicas_is_flagged():
    deployments = info(workload("Deployment", "api", NEW, replicas=3, ready=2), workload("Deployment", "admin", NEW))
    _, statefulsets = app_at()
    lines = app_lines(deployments, statefulsets, None, None)
    assert lines[0].endswith("; api 2/3")
    assert "2/3 ready, NOT all ready" in lines[1]


def test_pods_are_matched_to_their_workload_by_owner_without_the_component_label():
    deployments, statefulsets = app_at()
    stray = pod("api-7d9f-xyz", "hetzner2", image=f"git.honeydue.example/honeydue/api:{OLD}", labels={"app": "x"},
                owner={"kind": "ReplicaSet", "name": "api-7d9f"})
    lines = app_lines(deployments, statefulsets, info(app_pod("api", NEW, 0), stray), RELEASE)
    assert f"pods MIXED: {OLD} x1, {NEW} x1" in lines[1]


def test_nothing_deployed_and_a_failed_read():
    assert app_lines(info(), info(), info(), info()) == ["App (namespace honeydue): nothing deployed"]
    assert app_lines({"failed": True, "msg": "Forbidden"}, info()) == ["App: not read (Forbidden)"]


# -- the whole summary -------------------------------------------------------------------------

def test_the_summary_in_order_with_parts_not_read_saying_why():
    deployments, statefulsets = app_at()
    reads = {"nodes": NODES, "traefik": info(pod("t1", "hetzner1")), "deployments": deployments,
             "statefulsets": statefulsets, "release": RELEASE, "servers": SERVERS,
             "why_not": {"etcd": "deploy.yml runs without SSH", "dns": "no Cloudflare token"}}
    lines = FilterModule().filters()["run_summary"](reads)
    heads = [line for line in lines if not line.startswith("  ")]
    assert [h.split(":")[0].split(" (")[0] for h in heads] == ["Nodes", "etcd", "Traefik", "DNS", "App"]
    assert "etcd: not read (deploy.yml runs without SSH)" in heads
    assert "DNS: not read (no Cloudflare token)" in heads
    assert heads[2] == "Traefik: a ready pod on 1 of 3 nodes; MISSING on hetzner2, hetzner3"


def test_an_api_that_does_not_answer_is_one_line_for_its_three_parts():
    reads = {"nodes": {"failed": False, "msg": "Could not create API client: Invalid kube-config file."},
             "traefik": [], "deployments": [], "servers": [], "why_not": {"dns": "cloudflare_dns_zone is not set"}}
    assert summary_lines(reads) == [
        "Nodes, Traefik, App (Kubernetes API): not read (Could not create API client: Invalid kube-config file.)",
        "etcd: not read (no hosts in k3s_servers)",
        "DNS: not read (cloudflare_dns_zone is not set)"]


@pytest.mark.parametrize("garbage", [None, "text", 42, {"nodes": "x", "etcd": [1], "dns": {"diff": {"before": 3}},
                                                         "deployments": {"resources": [{"kind": "Pod"}]}}])
def test_the_summary_never_raises(garbage):
    lines = summary_lines(garbage)
    assert len(lines) >= 3 and all(isinstance(line, str) for line in lines)


def test_a_part_that_breaks_says_so_and_the_others_still_print(monkeypatch):
    from ansible_collections.honeydue.infra.plugins.module_utils import _run_summary

    def broken(*_args):
        raise KeyError("address")

    monkeypatch.setattr(_run_summary, "traefik_lines", broken)
    lines = summary_lines({"nodes": NODES, "traefik": [], "why_not": {"etcd": "x", "dns": "y"}})
    assert "Traefik: not read (summary error: KeyError('address'))" in lines
    assert lines[0].startswith("Nodes: 3, all Ready") and lines[-1] == "App: not read"


# -- what changed in this run (callback honeydue.infra.run_changes) ------------------------------

class FakeTask:
    def __init__(self, name, role=None, delegate_to=None, no_log=False, action="ansible.builtin.copy"):
        self.name, self.role, self.delegate_to, self.no_log, self.action = name, role, delegate_to, no_log, action

    def get_name(self, include_role_fqcn=True):
        role = (f"honeydue.infra.{self.role}" if include_role_fqcn else self.role) if self.role else None
        return f"{role} : {self.name}" if role else self.name


class FakeHost:
    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


class FakeResult:
    def __init__(self, host, task, changed, result=None):
        self.host, self.task, self._changed = FakeHost(host), task, changed
        self.result = result or {}

    def is_changed(self):
        return self._changed


@pytest.fixture
def changes():
    """The callback with its documented options registered, as ansible-playbook's loader does (the
    loader itself cannot resolve it here: the tests import ansible_collections from sys.path)."""
    import yaml
    from ansible import constants as C

    name = "ansible_collections.honeydue.infra.plugins.callback.run_changes"
    C.config.initialize_plugin_configuration_definitions("callback", name, yaml.safe_load(run_changes.DOCUMENTATION)["options"])
    cb = run_changes.CallbackModule()
    cb._load_name = name
    cb.set_options()
    assert cb.get_option("max_tasks") == 12
    return cb


SECRET = "redis-pw-Zr2-do-not-print"


def test_changed_tasks_per_host_with_role_names_and_counts(changes):
    config = FakeTask("K3s config", role="k3s_server")
    for host in ("hetzner1", "hetzner2"):
        changes.v2_runner_on_ok(FakeResult(host, config, True))
        changes.v2_runner_on_ok(FakeResult(host, FakeTask("Unchanged"), False))
    restart = FakeTask("K3s started or restarted until K3s is ready: hetzner2", role="k3s_server", delegate_to="hetzner2")
    changes.v2_runner_on_ok(FakeResult("hetzner1", restart, True))  # run_once, delegated: counted where it ran
    changes.v2_runner_on_ok(FakeResult("localhost", FakeTask("Apply", role="honeydue_app"), True))
    changes.v2_runner_on_ok(FakeResult("localhost", FakeTask("Apply", role="honeydue_app"), True))
    assert changes.lines() == [
        "CHANGED IN THIS RUN: 5 tasks on 3 hosts",
        "  hetzner1 (1): k3s_server : K3s config",
        "  hetzner2 (2): k3s_server : K3s config; k3s_server : K3s started or restarted until K3s is ready: hetzner2",
        "  localhost (2): honeydue_app : Apply (x2)"]


def test_nothing_changed_check_mode_and_failures(changes, monkeypatch):
    from ansible import context

    assert changes.lines() == ["CHANGED IN THIS RUN: nothing"]
    monkeypatch.setattr(context, "CLIARGS", {"check": True})
    changes.v2_runner_on_ok(FakeResult("localhost", FakeTask("Round-robin records"), True))
    changes.v2_runner_on_failed(FakeResult("localhost", FakeTask("Batch"), True), ignore_errors=False)
    changes.v2_runner_on_failed(FakeResult("localhost", FakeTask("Probe"), False), ignore_errors=True)
    assert changes.lines() == ["WOULD CHANGE IN THIS RUN (check mode): 2 tasks on 1 host",
                               "  localhost (2): Round-robin records; Batch",
                               "  FAILED on localhost: Batch"]


def test_a_long_list_is_cut_unless_verbose(changes):
    changes.set_option("max_tasks", 2)
    for i in range(5):
        changes.v2_runner_on_ok(FakeResult("hetzner1", FakeTask(f"Task {i}"), True))
    assert changes.lines()[1] == "  hetzner1 (5): Task 0; Task 1; ... and 3 more (-v lists all)"
    assert changes.lines(verbosity=1)[1] == "  hetzner1 (5): Task 0; Task 1; Task 2; Task 3; Task 4"


def test_never_a_result_only_task_and_host_names(changes, capsys, monkeypatch):
    from ansible import constants as C

    task = FakeTask("New values for the generated secrets", no_log=True)
    changes.v2_runner_on_ok(FakeResult("localhost", task, True, {"ansible_facts": {"vault_honeydue_redis_password": SECRET},
                                                                "diff": {"after": SECRET}, "item": SECRET}))
    monkeypatch.setattr(C, "DEFAULT_STDOUT_CALLBACK", "default", raising=False)
    changes.v2_playbook_on_stats(None)
    out = capsys.readouterr()
    assert "localhost (1): New values for the generated secrets" in out.out and SECRET not in out.out + out.err
    monkeypatch.setattr(C, "DEFAULT_STDOUT_CALLBACK", "ansible.posix.json", raising=False)
    changes.v2_playbook_on_stats(None)
    out = capsys.readouterr()
    assert out.out == "" and "CHANGED IN THIS RUN: 1 task on 1 host" in out.err, "json on stdout stays parseable"

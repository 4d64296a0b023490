"""The lab K3s's workload API over etcd: two servers, one state, one controller holder.

etcd here is a model of its KV API (range with ``count_only``, txn with MOD/VERSION compares, one
revision per transaction) so that the commit and retry logic can be driven step by step; the
lab scenario (molecule ``k3s-standin``) runs the same code on Debian's real etcd 3.5."""
from __future__ import annotations

import base64
import json
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("jsonschema")

from lab.k3s._etcdclient import Gateway  # noqa: E402
from lab.k3s._kubeapi import KubeAPI  # noqa: E402
from lab.k3s._kubeetcd import EtcdKube  # noqa: E402


class KV:
    """etcd's v3 JSON gateway, as far as EtcdKube uses it."""

    def __init__(self) -> None:
        self.rev = 1
        self.data: dict[str, tuple[str, int, int]] = {}  # key -> (value, mod_revision, version)
        self.lock = threading.Lock()
        self.txns = 0
        self.ranges: list[dict[str, Any]] = []  # the options of each range asked

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if path == "/v3/kv/range":
                start = base64.b64decode(body["key"]).decode()
                end = base64.b64decode(body.get("range_end", "")).decode()
                keys = sorted(k for k in self.data if (start <= k < end if end else k == start)
                              and self.data[k][1] >= int(body.get("min_mod_revision", 0)))
                self.ranges.append({o: body[o] for o in ("keys_only", "min_mod_revision") if o in body})
                out: dict[str, Any] = {"header": {"revision": str(self.rev)}, "count": str(len(keys))}
                if not body.get("count_only"):
                    out["kvs"] = [{"key": base64.b64encode(k.encode()).decode(),
                                   "mod_revision": str(self.data[k][1]), "version": str(self.data[k][2]),
                                   **({} if body.get("keys_only") else
                                      {"value": base64.b64encode(self.data[k][0].encode()).decode()})}
                                  for k in keys]
                return out
            assert path == "/v3/kv/txn"
            self.txns += 1
            for c in body.get("compare", []):
                k = base64.b64decode(c["key"]).decode()
                value, mod, version = self.data.get(k, ("", 0, 0))
                if c["target"] == "MOD" and mod != int(c["mod_revision"]):
                    return {"header": {"revision": str(self.rev)}, "succeeded": False}
                if c["target"] == "VERSION" and version != int(c["version"]):
                    return {"header": {"revision": str(self.rev)}, "succeeded": False}
                if c["target"] == "CREATE" and int(c["create_revision"]) == 0 and k in self.data:
                    return {"header": {"revision": str(self.rev)}, "succeeded": False}
            ops = body.get("success", [])
            if ops:
                self.rev += 1
            for op in ops:
                if "request_put" in op:
                    k = base64.b64decode(op["request_put"]["key"]).decode()
                    version = self.data.get(k, ("", 0, 0))[2]
                    self.data[k] = (base64.b64decode(op["request_put"]["value"]).decode(), self.rev, version + 1)
                else:
                    self.data.pop(base64.b64decode(op["request_delete_range"]["key"]).decode(), None)
            return {"header": {"revision": str(self.rev)}, "succeeded": True}

    def put_json(self, k: str, obj: dict[str, Any]) -> None:
        self.call("/v3/kv/txn", {"compare": [], "success": [{"request_put": {
            "key": base64.b64encode(k.encode()).decode(),
            "value": base64.b64encode(json.dumps(obj).encode()).decode()}}]})

    def get_json(self, k: str) -> dict[str, Any] | None:
        found = self.data.get(k)
        return json.loads(found[0]) if found else None


def _node(name: str, i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": "2026-11-28T00:00:00Z",
                         "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
                         "annotations": {"lab.honeydue/kubelet": "process"}},
            "spec": {"podCIDR": f"10.42.{i}.0/24"},
            "status": {"addresses": [{"type": "InternalIP", "address": f"10.78.0.{11 + i}"}],
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "lastHeartbeatTime": "2026-11-28T00:00:00Z",
                                       "lastTransitionTime": "2026-11-28T00:00:00Z"}]}}


@pytest.fixture
def cluster() -> tuple[KV, EtcdKube, EtcdKube]:
    kv = KV()
    for i in range(3):
        kv.put_json(f"/registry/minions/node{i + 1}", _node(f"node{i + 1}", i))
    leader = EtcdKube(kv, release="v1.34.6+k3s1", is_leader=lambda: True)
    other = EtcdKube(kv, release="v1.34.6+k3s1", is_leader=lambda: False)
    leader.seed()
    other.seed()  # the second server's seeds find everything there: nothing overwritten
    return kv, leader, other


def _call(api: EtcdKube, method: str, path: str, body: Any = None, ctype: str = "application/json") -> tuple[int, Any]:
    raw = json.dumps(body).encode() if body is not None else b""
    resp = api.serve(method, path, {}, {"Content-Type": ctype}, raw)
    return resp.status, resp.body


def _reconcile(api: EtcdKube, rounds: int = 3) -> None:
    for _ in range(rounds):
        api.control_round()


DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "default"},
          "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "api"}},
                   "template": {"metadata": {"labels": {"app": "api"}},
                                "spec": {"containers": [{"name": "api", "image": "registry.lab/honeydue/api:1"}]}}}}


def test_seeds_are_created_once_and_served_from_every_server(cluster) -> None:
    kv, leader, other = cluster
    ns = kv.get_json("/registry/namespaces/kube-system")
    assert ns is not None and "resourceVersion" not in ns["metadata"], "etcd's mod revision is the resourceVersion"
    code, body = _call(other, "GET", "/api/v1/namespaces/kube-system")
    assert code == 200 and body["metadata"]["uid"] == ns["metadata"]["uid"]
    assert int(body["metadata"]["resourceVersion"]) == kv.data["/registry/namespaces/kube-system"][1]
    code, chart = _call(leader, "GET", "/apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts/traefik")
    assert code == 200 and chart["spec"]["chart"].startswith("https://%{KUBERNETES_API}%/static/charts/traefik")


def test_a_write_on_one_server_is_scheduled_by_the_controller_holder_and_seen_everywhere(cluster) -> None:
    kv, leader, other = cluster
    code, created = _call(other, "POST", "/apis/apps/v1/namespaces/default/deployments", DEPLOY)
    assert code == 201
    assert created["metadata"]["resourceVersion"] == str(kv.rev), "the answer carries the commit's revision"
    assert not [k for k in kv.data if k.startswith("/registry/pods/")], "no controller ran on the non-holder"
    _reconcile(other)
    assert not [k for k in kv.data if k.startswith("/registry/pods/")], "reads do not run controllers"
    _reconcile(leader)
    pods = [kv.get_json(k) for k in kv.data if k.startswith("/registry/pods/default/")]
    assert len(pods) == 3 and all(p["spec"].get("nodeName") for p in pods)
    assert {p["spec"]["nodeName"] for p in pods} == {"node1", "node2", "node3"}, "spread over the nodes"
    assert all("phase" not in (p.get("status") or {}) or p["status"]["phase"] == "Pending" for p in pods), \
        "the node's kubelet process owns pod status, not the stand-in"
    code, listed = _call(other, "GET", "/api/v1/namespaces/default/pods")
    assert code == 200 and len(listed["items"]) == 3


def test_concurrent_writers_never_lose_an_update(cluster) -> None:
    kv, leader, other = cluster
    _call(leader, "POST", "/api/v1/namespaces/default/configmaps",
          {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}})
    errors: list[Any] = []

    def writer(api: EtcdKube, prefix: str) -> None:
        for i in range(15):
            code, body = _call(api, "PATCH", "/api/v1/namespaces/default/configmaps/c",
                               {"data": {f"{prefix}{i}": "x"}}, "application/merge-patch+json")
            if code != 200:
                errors.append((code, body))

    threads = [threading.Thread(target=writer, args=(api, p)) for api, p in ((leader, "a"), (other, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    data = kv.get_json("/registry/configmaps/default/c")["data"]
    assert len(data) == 30, "each server's patch was applied on top of the other's (compare, reload, redo)"


def test_a_stale_update_gets_the_apiservers_conflict(cluster) -> None:
    kv, leader, other = cluster
    code, cm = _call(leader, "POST", "/api/v1/namespaces/default/configmaps",
                     {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}})
    _call(other, "PATCH", "/api/v1/namespaces/default/configmaps/c", {"data": {"a": "2"}}, "application/merge-patch+json")
    code, body = _call(leader, "PUT", "/api/v1/namespaces/default/configmaps/c", {**cm, "data": {"a": "3"}})
    assert code == 409 and body["reason"] == "Conflict"
    assert kv.get_json("/registry/configmaps/default/c")["data"] == {"a": "2"}


def test_service_cluster_ips_never_collide_across_servers(cluster) -> None:
    kv, leader, other = cluster
    ips = set()
    for i, api in enumerate((leader, other, leader, other)):
        code, svc = _call(api, "POST", "/api/v1/namespaces/default/services",
                          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{i}"},
                           "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}})
        assert code == 201
        ips.add(svc["spec"]["clusterIP"])
    assert len(ips) == 4


def test_reads_decode_only_what_changed_and_lease_renewals_cost_nothing(cluster) -> None:
    kv, leader, other = cluster
    _call(other, "GET", "/api/v1/namespaces")
    kv.put_json("/registry/leases/kube-node-lease/node1", {"kind": "Lease", "metadata": {"name": "node1"}})
    kv.ranges.clear()
    code, body = _call(other, "GET", "/api/v1/namespaces")
    assert code == 200 and kv.ranges == [{"keys_only": True}], "a lease moved the revision: the listing only"
    code, cm = _call(leader, "POST", "/api/v1/namespaces/default/configmaps",
                     {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}})
    kv.ranges.clear()
    code, seen = _call(other, "GET", "/api/v1/namespaces/default/configmaps/c")
    assert code == 200 and seen["data"] == {"a": "1"} and seen["metadata"]["resourceVersion"] == cm["metadata"]["resourceVersion"]
    assert kv.ranges == [{"keys_only": True}, {"min_mod_revision": cm["metadata"]["resourceVersion"]}]
    kv.call("/v3/kv/txn", {"compare": [], "success": [{"request_delete_range": {
        "key": base64.b64encode(b"/registry/configmaps/default/c").decode()}}]})
    assert _call(other, "GET", "/api/v1/namespaces/default/configmaps/c")[0] == 404, "a deletion is seen"


def _server_api(kv: KV, name: str) -> KubeAPI:
    gateway = Gateway.__new__(Gateway)  # the JSON gateway's kv calls, over the model
    gateway.call = kv.call
    server = SimpleNamespace(node_name=name, member=f"{name}-0a1b2c3d", node_ip="10.79.0.13", release="v1.34.6+k3s1",
                             gateway=gateway, cfg={})
    api = KubeAPI(server)
    api.grace = 10.0
    return api


def _ready(kv: KV, name: str) -> str:
    node = kv.get_json(f"/registry/minions/{name}") or {}
    return next((c["status"] for c in node.get("status", {}).get("conditions", []) if c["type"] == "Ready"), "")


def test_the_lifecycle_controller_only_sets_unknown_and_the_nodes_kubelet_sets_ready_back() -> None:
    """Kubernetes' split: the node lifecycle controller marks a node whose Lease went stale Unknown and
    never sets True; the node's own kubelet posts Ready=True again. (The lab's restore left a rejoined
    server Unknown for good when the controller holder was the only one that could set it back.)"""
    kv = KV()
    srv3, holder = _server_api(kv, "srv3"), _server_api(kv, "srv1")
    assert srv3._register() and _ready(kv, "srv3") == "True"
    stale = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(time.time() - 60))
    kv.put_json("/registry/leases/kube-node-lease/srv3", {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "srv3", "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": "srv3", "renewTime": stale}})
    holder._node_lifecycle()
    assert _ready(kv, "srv3") == "Unknown"
    srv3._renew_lease()
    holder._node_lifecycle()
    assert _ready(kv, "srv3") == "Unknown", "the controller does not set Ready=True"
    srv3._post_status()
    assert _ready(kv, "srv3") == "True"
    rev = kv.data["/registry/minions/srv3"][1]
    srv3._post_status()
    holder._node_lifecycle()
    assert kv.data["/registry/minions/srv3"][1] == rev, "a Ready node is not rewritten every round"


def test_registration_reports_a_lost_race_so_the_kubelet_tries_again() -> None:
    kv = KV()
    srv3 = _server_api(kv, "srv3")
    real = srv3.etcd.update
    srv3.etcd.update = lambda *a, **k: False  # another writer got there first
    kv.put_json("/registry/minions/srv3", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "srv3"},
                                           "status": {"conditions": []}})
    assert srv3._register() is False
    srv3.etcd.update = real
    assert srv3._register() is True and _ready(kv, "srv3") == "True"

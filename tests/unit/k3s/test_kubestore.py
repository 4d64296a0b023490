"""The lab K3s's etcd layout for Kubernetes objects, and the single-transaction commit of a request."""
from __future__ import annotations

from lab.k3s._kubestore import Snapshot, encode, key, plan_commit


def test_keys_follow_kube_apiserver_layout() -> None:
    assert key("", "nodes", "", "k3s-node-1") == "/registry/minions/k3s-node-1"
    assert key("", "services", "app", "api") == "/registry/services/specs/app/api"
    assert key("networking.k8s.io", "ingresses", "app", "api") == "/registry/ingress/app/api"
    assert key("apps", "deployments", "app", "api") == "/registry/deployments/app/api"
    assert key("coordination.k8s.io", "leases", "kube-node-lease", "n1") == "/registry/leases/kube-node-lease/n1"
    assert key("helm.cattle.io", "helmchartconfigs", "kube-system", "traefik") == \
        "/registry/helm.cattle.io/helmchartconfigs/kube-system/traefik"


def test_commit_writes_only_what_changed_and_compares_what_it_read() -> None:
    a = {"metadata": {"name": "a", "resourceVersion": "7"}, "data": {"k": "1"}}
    b = {"metadata": {"name": "b", "resourceVersion": "8"}, "data": {"k": "1"}}
    before = Snapshot({"/registry/configmaps/x/a": (7, encode(a)), "/registry/configmaps/x/b": (8, encode(b))})
    changed_b = {**b, "data": {"k": "2"}}
    new_c = {"metadata": {"name": "c"}, "data": {}}
    after = {"/registry/configmaps/x/a": {**a, "metadata": {"name": "a", "resourceVersion": "999"}},
             "/registry/configmaps/x/b": changed_b, "/registry/configmaps/x/c": new_c}
    commit = plan_commit(before, after)
    assert [k for k, _ in commit.puts] == ["/registry/configmaps/x/b", "/registry/configmaps/x/c"], \
        "a resourceVersion alone is not a change (etcd's revision is the resourceVersion)"
    assert commit.compares == [("/registry/configmaps/x/b", 8), ("/registry/configmaps/x/c", 0)]
    gone = plan_commit(before, {"/registry/configmaps/x/a": a})
    assert gone.deletes == ["/registry/configmaps/x/b"] and ("/registry/configmaps/x/b", 8) in gone.compares
    assert plan_commit(before, {"/registry/configmaps/x/a": a, "/registry/configmaps/x/b": b}).empty


def test_txn_body_compares_revisions_and_creates_by_version() -> None:
    import base64

    from lab.k3s._kubestore import Commit, txn_body

    body = txn_body(Commit(compares=[("/registry/pods/x/a", 12), ("/registry/pods/x/b", 0)],
                           puts=[("/registry/pods/x/b", "{}")], deletes=["/registry/pods/x/a"]))
    assert body["compare"][0] == {"key": base64.b64encode(b"/registry/pods/x/a").decode(), "target": "MOD",
                                  "result": "EQUAL", "mod_revision": "12"}
    assert body["compare"][1]["target"] == "VERSION" and body["compare"][1]["version"] == "0"
    assert [list(op) for op in body["success"]] == [["request_put"], ["request_delete_range"]]


def test_stored_keys_map_back_to_their_resource() -> None:
    from lab.k3s._kubestore import parse_key

    served = [("", "services", True), ("", "endpoints", True), ("", "nodes", False),
              ("networking.k8s.io", "ingresses", True), ("networking.k8s.io", "ingressclasses", False),
              ("helm.cattle.io", "helmcharts", True)]
    assert parse_key(served, "/registry/services/specs/app/api") == ("", "services", "app", "api")
    assert parse_key(served, "/registry/services/endpoints/app/api") == ("", "endpoints", "app", "api")
    assert parse_key(served, "/registry/minions/n1") == ("", "nodes", "", "n1")
    assert parse_key(served, "/registry/ingress/app/api") == ("networking.k8s.io", "ingresses", "app", "api")
    assert parse_key(served, "/registry/ingressclasses/traefik") == ("networking.k8s.io", "ingressclasses", "", "traefik")
    assert parse_key(served, "/registry/helm.cattle.io/helmcharts/kube-system/traefik") == \
        ("helm.cattle.io", "helmcharts", "kube-system", "traefik")
    assert parse_key(served, "/registry/leases/kube-system/kube-controller-manager") is None, "not served here"
    assert parse_key(served, "/registry/minions/n1/extra") is None

"""Unit tests of the pure kube-scheduler model behind the Kubernetes stand-in (each filter, scoring, message)."""
from __future__ import annotations

from typing import Any

import pytest

from lab.standins._kube_scheduler import Unschedulable, host_ports, node_taints, schedule, tolerates


def node(name: str, ready: str = "True", labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": spec, "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def pod(name: str = "p", labels: dict[str, str] | None = None, node_name: str = "", owner: str = "",
        **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True}]
    body = {"containers": [{"name": "c", "image": "nginx"}], **spec}
    if node_name:
        body["nodeName"] = node_name
    return {"metadata": meta, "spec": body}


def web(host_port: int | None = None, host_network: bool = False) -> dict[str, Any]:
    port: dict[str, Any] = {"containerPort": 80}
    if host_port:
        port["hostPort"] = host_port
    return pod(containers=[{"name": "c", "image": "nginx", "ports": [port]}], hostNetwork=host_network)


NODES = [node("n1"), node("n2"), node("n3")]


def test_least_pods_then_name() -> None:
    assert schedule(pod(), NODES, {}) == "n1"
    assert schedule(pod(), NODES, {"n1": [pod("a", node_name="n1")]}) == "n2"


def test_default_spread_of_one_controller_over_hostnames() -> None:
    placed = {"n1": [pod("a", owner="rs", node_name="n1")], "n2": [pod("x", node_name="n2"),
                                                                    pod("y", node_name="n2")]}
    # n3 has no pod of the controller and the fewest pods; n2 beats n1 on spread despite more pods
    assert schedule(pod(owner="rs"), NODES, placed) == "n3"
    assert schedule(pod(owner="rs"), NODES[:2], placed) == "n2"


def test_not_ready_and_unschedulable_nodes() -> None:
    nodes = [node("n1", ready="False"), node("n2", ready="Unknown"), node("n3", unschedulable=True)]
    result = schedule(pod(), nodes, {})
    assert result == Unschedulable(
        "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, "
        "1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 1 node(s) were unschedulable. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")
    tolerant = pod(tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}])
    assert schedule(tolerant, nodes, {}) == "n3"


def test_node_selector_and_required_affinity() -> None:
    nodes = [node("n1", labels={"role": "edge"}), node("n2"), node("n3", labels={"zone": "b"})]
    assert schedule(pod(nodeSelector={"role": "edge"}), nodes, {}) == "n1"
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}}
    assert schedule(pod(affinity=affinity), nodes, {}) == "n3"
    result = schedule(pod(nodeSelector={"role": "db"}), nodes, {})
    assert isinstance(result, Unschedulable)
    assert result.message.startswith("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.")


def test_taints_and_tolerations() -> None:
    nodes = [node("n1", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
             node("n2", taints=[{"key": "x", "effect": "PreferNoSchedule"}])]
    assert schedule(pod(), nodes, {}) == "n2"
    assert schedule(pod(), nodes[:1], {}) == Unschedulable(
        "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: db}. "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.")
    equal = [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]
    assert schedule(pod(tolerations=equal), nodes[:1], {}) == "n1"
    assert tolerates([{"operator": "Exists"}], {"key": "anything", "effect": "NoExecute"})
    assert not tolerates([{"key": "dedicated", "value": "web"}], {"key": "dedicated", "value": "db",
                                                                  "effect": "NoSchedule"})


def test_node_taints_follow_the_ready_condition() -> None:
    assert node_taints(node("n")) == []
    assert {(t["key"], t["effect"]) for t in node_taints(node("n", ready="Unknown"))} == {
        ("node.kubernetes.io/unreachable", "NoSchedule"), ("node.kubernetes.io/unreachable", "NoExecute")}


def test_host_ports_and_host_network() -> None:
    assert host_ports(web(host_network=True)) == [("0.0.0.0", "TCP", 80)]
    assert host_ports(web()) == []
    placed = {"n1": [dict(web(host_network=True), spec={**web(host_network=True)["spec"], "nodeName": "n1"})]}
    assert schedule(web(host_port=80), NODES, placed) == "n2"
    assert schedule(web(), NODES[:1], placed) == "n1"  # no hostPort: no conflict
    udp = pod(containers=[{"name": "c", "ports": [{"containerPort": 80, "hostPort": 80, "protocol": "UDP"}]}])
    assert schedule(udp, NODES[:1], placed) == "n1"


def test_message_format_mixes_reasons_and_preemption() -> None:
    """The shape of a real event (traefik/traefik-helm-chart#732), plus DefaultPreemption's part."""
    nodes = [node("n1", labels={"role": "edge"}), node("n2"), node("n3")]
    placed = {"n1": [pod("old", node_name="n1", containers=[{"name": "c", "ports": [
        {"containerPort": 80, "hostPort": 80}]}])]}
    result = schedule(dict(web(host_port=80), spec={**web(host_port=80)["spec"], "nodeSelector": {"role": "edge"}}),
                      nodes, placed)
    assert result == Unschedulable(
        "0/3 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, "
        "2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: "
        "1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.")


def test_required_pod_anti_affinity() -> None:
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    placed = {"n1": [pod("db-0", {"app": "db"}, "n1")], "n2": [pod("db-1", {"app": "db"}, "n2")]}
    assert schedule(pod("db-2", {"app": "db"}, affinity=anti), NODES, placed) == "n3"
    result = schedule(pod("db-2", {"app": "db"}, affinity=anti), NODES[:2], placed)
    assert isinstance(result, Unschedulable)
    assert "2 node(s) didn't match pod anti-affinity rules" in result.message
    # the symmetric rule: an existing pod's anti-affinity keeps a matching newcomer away
    existing = {"n1": [pod("db-0", {"app": "db"}, "n1", affinity=anti)]}
    assert schedule(pod("x", {"app": "db"}), NODES[:2], existing) == "n2"


@pytest.mark.parametrize("when", ["DoNotSchedule", "ScheduleAnyway"])
def test_topology_spread_prefers_the_emptier_domain(when: str) -> None:
    nodes = [node("n1", labels={"zone": "a"}), node("n2", labels={"zone": "b"})]
    constraint = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": when,
                   "labelSelector": {"matchLabels": {"app": "w"}}}]
    # zone a: 1 matching pod plus 3 others; zone b: 2 matching pods. Spread wins over "fewest pods".
    placed = {"n1": [pod("w1", {"app": "w"}, "n1")] + [pod(f"o{i}", node_name="n1") for i in range(3)],
              "n2": [pod("w2", {"app": "w"}, "n2"), pod("w3", {"app": "w"}, "n2")]}
    assert schedule(pod("w4", {"app": "w"}, topologySpreadConstraints=constraint), nodes, placed) == "n1"


def test_do_not_schedule_refuses_when_skew_is_exceeded() -> None:
    nodes = [node("n1", labels={"zone": "a"}),
             node("n2", labels={"zone": "b"}, taints=[{"key": "full", "effect": "NoSchedule"}])]
    constraint = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                   "labelSelector": {"matchLabels": {"app": "w"}}}]
    placed = {"n1": [pod("w1", {"app": "w"}, "n1")]}
    result = schedule(pod("w2", {"app": "w"}, topologySpreadConstraints=constraint), nodes, placed)
    assert result == Unschedulable(
        "0/2 nodes are available: 1 node(s) didn't match pod topology spread constraints, "
        "1 node(s) had untolerated taint {full: }. preemption: 0/2 nodes are available: "
        "1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling.")
    loose = [dict(constraint[0], whenUnsatisfiable="ScheduleAnyway")]
    assert schedule(pod("w2", {"app": "w"}, topologySpreadConstraints=loose), nodes, placed) == "n1"
    unlabeled = [node("n3")]
    result = schedule(pod("w2", {"app": "w"}, topologySpreadConstraints=constraint), unlabeled, {})
    assert isinstance(result, Unschedulable) and "(missing required label)" in result.message


def test_bound_volume_node_affinity() -> None:
    required = {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n2"]}]}]}
    assert schedule(pod(), NODES, {}, [required]) == "n2"
    result = schedule(pod(), [NODES[0], NODES[2]], {}, [required])
    assert result == Unschedulable(
        "0/2 nodes are available: 2 node(s) had volume node affinity conflict. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")


# -- pod helpers of the stand-in (lab/standins/_kube_pods.py) ------------------------------------
def test_default_toleration_seconds_admission_and_host_network_ports() -> None:
    from lab.standins._kube_pods import pod_defaults

    spec: dict[str, Any] = {"hostNetwork": True, "containers": [{"name": "c", "ports": [{"containerPort": 443}]}],
                            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                             "effect": "NoExecute", "tolerationSeconds": 10}]}
    pod_defaults(spec)
    assert spec["containers"][0]["ports"] == [{"containerPort": 443, "protocol": "TCP", "hostPort": 443}]
    assert spec["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300}]
    everything: dict[str, Any] = {"containers": [], "tolerations": [{"operator": "Exists"}]}
    pod_defaults(everything)
    assert everything["tolerations"] == [{"operator": "Exists"}]


@pytest.mark.parametrize("tolerations, expected", [
    ([], 0),
    ([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
       "tolerationSeconds": 300}], 300),
    ([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}], None),
    ([{"operator": "Exists"}, {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                               "tolerationSeconds": 30}], 30),
    ([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
       "tolerationSeconds": 300}], 0),
])
def test_toleration_seconds_before_eviction(tolerations: list[dict[str, Any]], expected: int | None) -> None:
    from lab.standins._kube_pods import toleration_seconds

    assert toleration_seconds(pod(tolerations=tolerations), "node.kubernetes.io/unreachable") == expected


def test_full_image_reference_in_pull_errors() -> None:
    from lab.standins._kube_pods import _full_reference

    assert _full_reference("nginx:1") == "docker.io/library/nginx:1"
    assert _full_reference("rancher/klipper-helm:v1") == "docker.io/rancher/klipper-helm:v1"
    assert _full_reference("registry.local:5000/app:1") == "registry.local:5000/app:1"

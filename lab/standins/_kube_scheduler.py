"""A pure model of kube-scheduler's default profile (v1.34) for the Kubernetes stand-in.

:func:`schedule` runs the filter plugins in the default profile's order (NodeUnschedulable,
TaintToleration, NodeAffinity, NodePorts, VolumeBinding, PodTopologySpread, InterPodAffinity), stops
at a node's first failing filter like ``RunFilterPlugins`` does, and scores the feasible nodes by
topology spread (the pod's constraints, or the system default "spread the pods of one controller
over hostnames") and then by the fewest pods (a stand-in for NodeResourcesFit's LeastAllocated).
Ties go to the first node by name (the real scheduler picks at random).

When no node fits, the message is ``FitError.Error()``'s format (pkg/scheduler/framework/types.go):
``0/N nodes are available: <count> <reason>, ... preemption: 0/N nodes are available: <count>
<reason>.`` with the "<count> <reason>" strings sorted as strings. The preemption part mirrors
DefaultPreemption with every pod at priority 0: nodes that failed with UnschedulableAndUnresolvable
are "Preemption is not helpful for scheduling", the others "No preemption victims found for
incoming pod". Reason strings are those of the plugins in kubernetes/pkg/scheduler/framework/plugins
(seen in real FailedScheduling events, e.g. traefik/traefik-helm-chart#732, bitnami/charts#16266).

Inputs are plain API dicts; nothing here touches the store.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from ._kube_select import match_label_selector_object

HOSTNAME = "kubernetes.io/hostname"
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"

R_UNSCHEDULABLE = "node(s) were unschedulable"
R_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
R_PORTS = "node(s) didn't have free ports for the requested pod ports"
R_VOLUME = "node(s) had volume node affinity conflict"
R_SPREAD = "node(s) didn't match pod topology spread constraints"
R_SPREAD_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
R_ANTI = "node(s) didn't match pod anti-affinity rules"
R_EXISTING_ANTI = "node(s) didn't satisfy existing pods anti-affinity rules"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"


@dataclass(frozen=True)
class Unschedulable:
    """No node fits: ``message`` is the FailedScheduling event / PodScheduled condition message."""

    message: str


@dataclass(frozen=True)
class _Fail:
    reason: str
    resolvable: bool  # False = UnschedulableAndUnresolvable (preemption cannot help)


# -- node state ----------------------------------------------------------------------------------
def node_ready(node: dict[str, Any]) -> str:
    """The node's Ready condition status: "True", "False" or "Unknown" (absent = "Unknown")."""
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status", "Unknown"))
    return "Unknown"


def node_taints(node: dict[str, Any]) -> list[dict[str, Any]]:
    """``spec.taints`` plus the taints the node lifecycle controller derives from the Ready condition
    (TaintNodesByCondition / taint-based eviction: not-ready for False, unreachable for Unknown)."""
    taints = list((node.get("spec") or {}).get("taints") or [])
    ready = node_ready(node)
    key = None if ready == "True" else NOT_READY if ready == "False" else UNREACHABLE
    for effect in ("NoSchedule", "NoExecute") if key else ():
        if not any(t.get("key") == key and t.get("effect") == effect for t in taints):
            taints.append({"key": key, "effect": effect})
    return taints


def tolerates(tolerations: Iterable[dict[str, Any]], taint: dict[str, Any]) -> bool:
    """``Toleration.ToleratesTaint`` (k8s.io/api/core/v1/toleration.go): empty effect matches any
    effect, empty key with Exists matches any key, Exists ignores the value, Equal compares it."""
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        if tol.get("key") and tol.get("key") != taint.get("key"):
            continue
        if not tol.get("key") and tol.get("operator") != "Exists":
            continue
        if tol.get("operator") == "Exists" or tol.get("value", "") == taint.get("value", ""):
            return True
    return False


# -- filters ---------------------------------------------------------------------------------------
def _f_unschedulable(pod: dict[str, Any], node: dict[str, Any]) -> _Fail | None:
    """NodeUnschedulable: ``spec.unschedulable`` unless the pod tolerates the unschedulable taint."""
    if not (node.get("spec") or {}).get("unschedulable"):
        return None
    taint = {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
    return None if tolerates(_tolerations(pod), taint) else _Fail(R_UNSCHEDULABLE, False)


def _f_taints(pod: dict[str, Any], node: dict[str, Any]) -> _Fail | None:
    """TaintToleration: the first NoSchedule/NoExecute taint the pod does not tolerate."""
    for taint in node_taints(node):
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(_tolerations(pod), taint):
            return _Fail(f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}",
                         False)
    return None


def _f_node_affinity(pod: dict[str, Any], node: dict[str, Any]) -> _Fail | None:
    """NodeAffinity: ``nodeSelector`` and required node affinity."""
    return None if matches_node(pod, node) else _Fail(R_AFFINITY, False)


def _f_ports(pod: dict[str, Any], node: dict[str, Any], others: list[dict[str, Any]]) -> _Fail | None:
    """NodePorts: a wanted (hostIP, protocol, hostPort) already used by a pod on the node."""
    wanted = host_ports(pod)
    used = [p for other in others for p in host_ports(other)]
    for ip, proto, port in wanted:
        if any(proto == p2 and port == port2 and (ip == ip2 or "0.0.0.0" in (ip, ip2)) for ip2, p2, port2 in used):
            return _Fail(R_PORTS, True)
    return None


def _f_volumes(node: dict[str, Any], volume_affinity: list[dict[str, Any]]) -> _Fail | None:
    """VolumeBinding: a bound PV's ``spec.nodeAffinity.required`` must match the node."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    name = node["metadata"]["name"]
    for required in volume_affinity:
        if not _node_selector_matches(required, labels, name):
            return _Fail(R_VOLUME, False)
    return None


def _f_spread(pod: dict[str, Any], node: dict[str, Any], ctx: _Context) -> _Fail | None:
    """PodTopologySpread filter: DoNotSchedule constraints by ``maxSkew``."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    for c in _constraints(pod):
        if c.get("whenUnsatisfiable", "DoNotSchedule") != "DoNotSchedule":
            continue
        key = c["topologyKey"]
        if key not in labels:
            return _Fail(R_SPREAD_LABEL, False)
        counts = ctx.domain_counts(pod, c)
        self_match = 1 if match_label_selector_object(c.get("labelSelector"), _labels(pod)) else 0
        if counts.get(labels[key], 0) + self_match - min(counts.values(), default=0) > int(c.get("maxSkew", 1)):
            return _Fail(R_SPREAD, True)
    return None


def _f_anti_affinity(pod: dict[str, Any], node: dict[str, Any], ctx: _Context) -> _Fail | None:
    """InterPodAffinity: the pod's required anti-affinity, then existing pods' anti-affinity to it."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    for term in _anti_terms(pod):
        key = term.get("topologyKey", "")
        if key in labels and any(_term_matches(term, pod, other) and ctx.domain_of(other, key) == labels[key]
                                 for other in ctx.all_pods):
            return _Fail(R_ANTI, True)
    for other in ctx.all_pods:
        for term in _anti_terms(other):
            key = term.get("topologyKey", "")
            if key in labels and _term_matches(term, other, pod) and ctx.domain_of(other, key) == labels[key]:
                return _Fail(R_EXISTING_ANTI, True)
    return None


# -- helpers ---------------------------------------------------------------------------------------
def _labels(pod: dict[str, Any]) -> dict[str, str]:
    return (pod.get("metadata") or {}).get("labels") or {}


def _tolerations(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list((pod.get("spec") or {}).get("tolerations") or [])


def _constraints(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list((pod.get("spec") or {}).get("topologySpreadConstraints") or [])


def _anti_terms(pod: dict[str, Any]) -> list[dict[str, Any]]:
    anti = (((pod.get("spec") or {}).get("affinity") or {}).get("podAntiAffinity") or {})
    return list(anti.get("requiredDuringSchedulingIgnoredDuringExecution") or [])


def _term_matches(term: dict[str, Any], owner: dict[str, Any], other: dict[str, Any]) -> bool:
    """A PodAffinityTerm of ``owner`` selects ``other`` (namespaces default to the owner's)."""
    if owner is other:
        return False
    namespaces = term.get("namespaces") or [owner["metadata"].get("namespace", "default")]
    if other["metadata"].get("namespace", "default") not in namespaces and term.get("namespaceSelector") is None:
        return False
    return match_label_selector_object(term.get("labelSelector") or {"matchLabels": {"\0": "\0"}}, _labels(other))


def host_ports(pod: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(hostIP, protocol, hostPort) the pod binds on its node; for hostNetwork pods the API server
    defaults ``hostPort`` to ``containerPort`` (SetDefaults_Pod), so every container port counts."""
    spec = pod.get("spec") or {}
    found = []
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            host_port = port.get("hostPort") or (port.get("containerPort") if spec.get("hostNetwork") else 0)
            if host_port:
                found.append((port.get("hostIP") or "0.0.0.0", port.get("protocol", "TCP"), int(host_port)))
    return found


def _expression_matches(expr: dict[str, Any], value: str | None) -> bool:
    op, values = expr.get("operator"), [str(v) for v in expr.get("values") or []]
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and value.lstrip("-").isdigit() and values:
        return int(value) > int(values[0]) if op == "Gt" else int(value) < int(values[0])
    return False


def _node_selector_matches(selector: dict[str, Any], labels: dict[str, str], name: str) -> bool:
    """A NodeSelector: terms are ORed, a term's expressions and fields ANDed; an empty term matches nothing."""
    for term in selector.get("nodeSelectorTerms") or []:
        exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
        if not exprs and not fields:
            continue
        if all(_expression_matches(e, labels.get(e.get("key", ""))) for e in exprs) and all(
                _expression_matches(f, name if f.get("key") == "metadata.name" else None) for f in fields):
            return True
    return False


def matches_node(pod: dict[str, Any], node: dict[str, Any]) -> bool:
    """``nodeSelector`` and ``requiredDuringSchedulingIgnoredDuringExecution`` node affinity
    (component-helpers/scheduling/corev1/nodeaffinity)."""
    spec = pod.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    return required is None or _node_selector_matches(required, labels, node["metadata"]["name"])


def _controller_uid(pod: dict[str, Any]) -> str | None:
    return next((r.get("uid") for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


class _Context:
    """The cluster view one scheduling cycle works on."""

    def __init__(self, nodes: list[dict[str, Any]], pods_on_nodes: dict[str, list[dict[str, Any]]]) -> None:
        self.nodes = {n["metadata"]["name"]: n for n in nodes}
        self.pods_on_nodes = pods_on_nodes
        self.all_pods = [p for pods in pods_on_nodes.values() for p in pods]

    def domain_of(self, pod: dict[str, Any], key: str) -> str | None:
        node = self.nodes.get((pod.get("spec") or {}).get("nodeName", ""))
        return None if node is None else ((node["metadata"].get("labels") or {}).get(key))

    def domain_counts(self, pod: dict[str, Any], c: dict[str, Any]) -> dict[str, int]:
        """Matching pods per domain over the nodes passing the pod's node affinity (nodeAffinityPolicy
        Honor, nodeTaintsPolicy Ignore: the defaults)."""
        key, counts = c["topologyKey"], {}
        for name, node in self.nodes.items():
            value = (node["metadata"].get("labels") or {}).get(key)
            if value is None or not matches_node(pod, node):
                continue
            counts.setdefault(value, 0)
            counts[value] += sum(1 for p in self.pods_on_nodes.get(name, [])
                                 if p["metadata"].get("namespace") == pod["metadata"].get("namespace")
                                 and match_label_selector_object(c.get("labelSelector"), _labels(p)))
        return counts


def _filter(pod: dict[str, Any], node: dict[str, Any], ctx: _Context,
            volume_affinity: list[dict[str, Any]]) -> _Fail | None:
    others = ctx.pods_on_nodes.get(node["metadata"]["name"], [])
    return (_f_unschedulable(pod, node) or _f_taints(pod, node) or _f_node_affinity(pod, node)
            or _f_ports(pod, node, others) or _f_volumes(node, volume_affinity)
            or _f_spread(pod, node, ctx) or _f_anti_affinity(pod, node, ctx))


def _spread_score(pod: dict[str, Any], node: dict[str, Any], ctx: _Context) -> int:
    """PodTopologySpread score (lower is better): matching pods in the node's domain per constraint;
    without constraints the system default spreads a controller's pods over hostnames."""
    labels = node["metadata"].get("labels") or {}
    constraints = _constraints(pod)
    if constraints:
        return sum(ctx.domain_counts(pod, c).get(labels.get(c["topologyKey"], ""), 0) for c in constraints)
    owner = _controller_uid(pod)
    if owner is None:
        return 0
    return sum(1 for p in ctx.pods_on_nodes.get(node["metadata"]["name"], []) if _controller_uid(p) == owner)


def _message(total: int, fails: list[_Fail]) -> str:
    def histogram(reasons: list[str]) -> str:
        counts: dict[str, int] = {}
        for reason in reasons:
            counts[reason] = counts.get(reason, 0) + 1
        return ", ".join(sorted(f"{n} {r}" for r, n in counts.items()))
    filters = histogram([f.reason for f in fails])
    preemption = histogram([NO_VICTIMS if f.resolvable else NOT_HELPFUL for f in fails])
    head = f"0/{total} nodes are available"
    return f"{head}: {filters}. preemption: {head}: {preemption}." if fails else f"{head}."


def schedule(pod: dict[str, Any], nodes: list[dict[str, Any]], pods_on_nodes: dict[str, list[dict[str, Any]]],
             volume_affinity: list[dict[str, Any]] | None = None) -> str | Unschedulable:
    """The node kube-scheduler would bind ``pod`` to, or :class:`Unschedulable` with its message.

    ``pods_on_nodes`` maps a node name to the (non-terminated) pods bound to it; ``volume_affinity``
    holds ``spec.nodeAffinity.required`` of the PVs bound to the pod's claims.
    """
    ctx = _Context(nodes, pods_on_nodes)
    fails: list[_Fail] = []
    feasible: list[dict[str, Any]] = []
    for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        fail = _filter(pod, node, ctx, volume_affinity or [])
        if fail is None:
            feasible.append(node)
        else:
            fails.append(fail)
    if not feasible:
        return Unschedulable(_message(len(nodes), fails))
    best = min(feasible, key=lambda n: (_spread_score(pod, n, ctx), len(pods_on_nodes.get(n["metadata"]["name"], [])),
                                        n["metadata"]["name"]))
    return str(best["metadata"]["name"])

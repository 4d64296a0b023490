"""Simulated controllers of the Kubernetes stand-in, evaluated lazily before every request.

* Deployment: one ReplicaSet per pod template (``<name>-<hash>``), revisions in the
  ``deployment.kubernetes.io/revision`` annotation, old ReplicaSets scaled to 0 once the new one
  is available and pruned beyond ``revisionHistoryLimit``; status counters and the Available /
  Progressing conditions (``ProgressDeadlineExceeded`` after ``progressDeadlineSeconds`` times
  the stand-in's ``deadline_factor``).
* ReplicaSet: Pods ``<rs>-<suffix>`` with the ``pod-template-hash`` label (terminating pods do not
  count, so a partitioned node's pods are replaced while they still show Terminating).
* DaemonSet: one Pod per eligible Node (nodeSelector, node affinity, taints against the template's
  tolerations plus the DaemonSet controller's), pinned with ``matchFields metadata.name``.
* StatefulSet: Pods ``<sts>-<ordinal>`` created in order (OrderedReady waits for Running and Ready),
  never two per ordinal; volumeClaimTemplates claims ``<tpl>-<sts>-<ordinal>`` created with the pod.
* Job (Complete after a delay, no pods) and PersistentVolumeClaim (local-path: WaitForFirstConsumer).

Pods are scheduled, run and evicted by :mod:`._kube_pods` (scheduler in :mod:`._kube_scheduler`):
a pod is Running and Ready ``rollout_seconds`` after binding if every image exists
(:meth:`KubeStandIn.image_exists`). Jobs still use the per-template clock.
"""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from . import _kube_endpoints
from . import _kube_resources as kres
from ._kube_objects import clone, now_rfc3339, template_hash
from ._kube_pods import (DAEMONSET_TOLERATIONS, HOSTNETWORK_TOLERATION, PodLoop, is_ready, is_terminating,
                         new_pod)
from ._kube_scheduler import matches_node, node_taints, tolerates

if TYPE_CHECKING:  # pragma: no cover
    from .kube import KubeStandIn

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"


class Controllers:
    """The reconcile loop, run by the stand-in under its lock."""

    def __init__(self, api: "KubeStandIn") -> None:
        self.api = api
        self.since: dict[str, float] = {}  # rollout start per (object uid, template hash)
        self.progress: dict[str, tuple[int, int, int]] = {}  # last seen rollout state per new ReplicaSet
        self.slices: dict[str, dict[str, dict[str, Any]]] = {}      # published endpoints per slice
        self.slice_seen: dict[str, dict[str, tuple[float, Any]]] = {}
        self.slice_names: dict[str, str] = {}
        self.pod_loop = PodLoop(api)

    def reconcile(self, passes: int = 12) -> None:
        """Run the controllers, scheduler and kubelet until nothing changes (at most ``passes`` rounds),
        so a chain such as "StatefulSet pod 0 Ready, then pod 1" settles within one request."""
        self.pod_loop.seed_storage_class()
        for _ in range(passes):
            before = self.api.revision
            self._pass()
            if self.api.revision == before:
                return

    def _pass(self) -> None:
        api = self.api
        if getattr(api, "helm", None) is not None:
            api.helm.reconcile()  # K3s helm-controller (lab/standins/_helmcontroller.py)
        self.pod_loop.evict()
        self.pod_loop.schedule()
        self.pod_loop.kubelet()
        for deployment in api.items(api._rt("apps", "deployments")):
            self._deployment(deployment)
        for rs in api.items(api._rt("apps", "replicasets")):
            self._replicaset(rs)
        for ds in api.items(api._rt("apps", "daemonsets")):
            self._daemonset(ds)
        for sts in api.items(api._rt("apps", "statefulsets")):
            self._statefulset(sts)
        for job in api.items(api._rt("batch", "jobs")):
            self._job(job)
        for pvc in api.items(api._rt("", "persistentvolumeclaims")):
            self._pvc(pvc)
        self._endpoint_slices()
        for ns in api.items(api._rt("", "namespaces")):
            if ns["metadata"].get("deletionTimestamp"):
                self._namespace_deletion(ns)

    # -- namespaces ------------------------------------------------------------------------------
    def _namespace_deletion(self, ns: dict[str, Any]) -> None:
        """The namespace controller: delete everything in a Terminating namespace (controllers
        first, orphaning their pods; pods gracefully, so their kubelets stop them), report what
        remains in ``NamespaceContentRemaining``, and remove the namespace once it is empty."""
        api = self.api
        name = ns["metadata"]["name"]
        pod_type = api._rt("", "pods")
        for rt in kres.RESOURCES:
            if not rt.namespaced or rt is pod_type:
                continue
            for obj in list(api.items(rt, name)):
                api.remove(rt, obj, orphan=True)
        remaining = [p for p in api.items(pod_type, name) if self.pod_loop.delete(p) is not None]
        if not remaining:
            api.remove(api._rt("", "namespaces"), ns)
            return
        message = f"Some resources are remaining: pods. has {len(remaining)} resource instances"
        conditions = [c for c in (ns.get("status") or {}).get("conditions") or []
                      if c.get("type") != "NamespaceContentRemaining"]
        old = next((c for c in (ns.get("status") or {}).get("conditions") or []
                    if c.get("type") == "NamespaceContentRemaining"), None)
        if old is None or old.get("message") != message:
            conditions.append({"type": "NamespaceContentRemaining", "status": "True", "reason": "SomeResourcesRemain",
                               "message": message, "lastTransitionTime": now_rfc3339()})
            ns.setdefault("status", {})["conditions"] = conditions
            ns["metadata"]["resourceVersion"] = api.next_rv()
            api.store(api._rt("", "namespaces"), ns)

    # -- EndpointSlices --------------------------------------------------------------------------
    def _endpoint_slices(self) -> None:
        """The endpointslice controller (``_kube_endpoints``): a slice per Service with a selector and
        port mapping, following its pods' readiness ``api.endpoint_delay`` seconds late."""
        api = self.api
        slice_type = api._rt("discovery.k8s.io", "endpointslices")
        now = time.monotonic()
        wanted_names: set[tuple[str, str]] = set()
        for svc in api.items(api._rt("", "services")):
            if not (svc.get("spec") or {}).get("selector"):
                continue
            ns, uid = svc["metadata"]["namespace"], svc["metadata"]["uid"]
            pods = self.pod_loop.pods(ns)
            for mapping, wanted in (_kube_endpoints.desired(svc, pods) or {(): {}}).items():
                key = f"{uid}/{mapping}"
                if key not in self.slices:
                    # A controller that starts (a new leader, a restarted server) begins from the slice as
                    # published, as the real one's informer cache does: never from nothing, which would
                    # empty a Service's endpoints for endpoint_delay.
                    name = self.slice_names.setdefault(key, f"{svc['metadata']['name']}-{template_hash({'k': key})[:5]}")
                    stored = api.lookup(slice_type, ns, name) or {}
                    self.slices[key] = {ep.get("targetRef", {}).get("uid") or ep.get("targetRef", {}).get("name", ""): ep
                                        for ep in stored.get("endpoints") or []}
                published, seen = _kube_endpoints.propagate(self.slices.get(key, {}), wanted,
                                                            self.slice_seen.get(key, {}), now, api.endpoint_delay)
                self.slices[key], self.slice_seen[key] = published, seen
                name = self.slice_names.setdefault(key, f"{svc['metadata']['name']}-{template_hash({'k': key})[:5]}")
                wanted_names.add((ns, name))
                obj = _kube_endpoints.slice_object(svc, name, mapping, list(published.values()))
                self._put_slice(slice_type, ns, name, obj)
        for obj in api.items(slice_type):
            meta = obj["metadata"]
            managed = (meta.get("labels") or {}).get("endpointslice.kubernetes.io/managed-by")
            if managed == _kube_endpoints.MANAGED_BY and (meta["namespace"], meta["name"]) not in wanted_names:
                api.remove(slice_type, obj)

    def _put_slice(self, slice_type: Any, ns: str, name: str, obj: dict[str, Any]) -> None:
        api = self.api
        old = api.lookup(slice_type, ns, name)
        if old is None:
            api.store(slice_type, api._prepare_create(slice_type, obj, ns))
            return
        if {k: old.get(k) for k in ("endpoints", "ports")} != {k: obj.get(k) for k in ("endpoints", "ports")}:
            new = clone(old)
            new["endpoints"], new["ports"] = obj["endpoints"], obj["ports"]
            new["metadata"]["resourceVersion"] = api.next_rv()
            api.store(slice_type, new)

    # -- helpers ---------------------------------------------------------------------------------
    def _started(self, key: str) -> float:
        return self.since.setdefault(key, time.monotonic())

    def _images_ok(self, template: dict[str, Any]) -> bool:
        spec = template.get("spec") or {}
        containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
        return all(self.api.image_exists(str(c.get("image", ""))) for c in containers)

    def _ready(self, key: str, template: dict[str, Any]) -> bool:
        started = self._started(key)
        return self._images_ok(template) and time.monotonic() - started >= self.api.rollout_seconds

    def _set_status(self, obj: dict[str, Any], new_status: dict[str, Any]) -> None:
        if obj.get("status") != new_status:
            obj["status"] = new_status
            obj["metadata"]["resourceVersion"] = self.api.next_rv()

    @staticmethod
    def _owned_by(obj: dict[str, Any], uid: str) -> bool:
        return any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or [])

    @staticmethod
    def _owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}

    @staticmethod
    def _condition(old: list[dict[str, Any]], kind: str, state: str, reason: str, message: str,
                   with_update: bool = True) -> dict[str, Any]:
        now = now_rfc3339()
        previous = next((c for c in old if c.get("type") == kind), None)
        changed = previous is None or previous.get("status") != state
        cond = {"type": kind, "status": state}
        if with_update:
            same = previous is not None and not changed and previous.get("reason") == reason
            cond["lastUpdateTime"] = previous["lastUpdateTime"] if same else now
        cond["lastTransitionTime"] = now if changed else previous["lastTransitionTime"]
        cond["reason"] = reason
        cond["message"] = message
        return cond

    # -- Deployment ------------------------------------------------------------------------------
    def _deployment(self, d: dict[str, Any]) -> None:
        api = self.api
        rs_type = api._rt("apps", "replicasets")
        ns, uid = d["metadata"]["namespace"], d["metadata"]["uid"]
        spec = d["spec"]
        owned = [rs for rs in api.items(rs_type, ns) if self._owned_by(rs, uid)]
        current = next((rs for rs in owned if self._template_of(rs) == spec["template"]), None)
        top = max((int(rs["metadata"].get("annotations", {}).get(REVISION, 0)) for rs in owned), default=0)
        if current is None:
            current = self._new_replicaset(d, top + 1)
            owned.append(current)
        elif int(current["metadata"].get("annotations", {}).get(REVISION, 0)) < top:
            self._promote(current, top + 1)
            self.since.pop(self._rs_key(current), None)
        self._set_revision(d, current["metadata"]["annotations"][REVISION])
        key = self._rs_key(current)
        self._started(key)
        old = sorted((rs for rs in owned if rs is not current), key=lambda rs: rs["metadata"]["creationTimestamp"])
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            self._recreate(d, current, old)
        else:
            self._roll(d, current, old)
        want = spec.get("replicas", 1)
        progress = (current["spec"].get("replicas"), self._available(current),
                    sum(rs["spec"].get("replicas", 0) for rs in old))
        if self.progress.get(key) != progress:  # deploymentutil: any scaling or new availability is progress
            self.progress[key] = progress
            self.since[key] = time.monotonic()
        ready = (current["spec"].get("replicas") == want and self._ready_pods(current) >= want
                 and not any(rs["spec"].get("replicas") or self._active_pods(rs) for rs in old))
        self._prune_history(d, old)
        self._deployment_status(d, current, [rs for rs in old if api.lookup(rs_type, ns, rs["metadata"]["name"])],
                                ready, key)

    def _scale(self, rs: dict[str, Any], replicas: int) -> None:
        if rs["spec"].get("replicas") != replicas:
            rs["spec"]["replicas"] = replicas
            rs["metadata"]["resourceVersion"] = self.api.next_rv()

    def _active_pods(self, rs: dict[str, Any]) -> int:
        return sum(1 for p in self._pods_of(rs) if not is_terminating(p))

    def _available(self, rs: dict[str, Any]) -> int:
        return min(self._ready_pods(rs), rs["spec"].get("replicas", 0))

    @staticmethod
    def _surge_unavailable(spec: dict[str, Any], want: int) -> tuple[int, int]:
        """deploymentutil.ResolveFenceposts: maxSurge rounds up, maxUnavailable down (defaults 25%);
        both zero means maxUnavailable 1."""
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}

        def resolve(value: Any, round_up: bool) -> int:
            if isinstance(value, str) and value.endswith("%"):
                exact = want * int(value[:-1]) / 100
                return math.ceil(exact) if round_up else math.floor(exact)
            return int(value)

        surge = resolve(rolling.get("maxSurge", "25%"), True)
        unavailable = resolve(rolling.get("maxUnavailable", "25%"), False)
        return surge, (1 if surge == 0 and unavailable == 0 else unavailable)

    def _roll(self, d: dict[str, Any], new: dict[str, Any], old: list[dict[str, Any]]) -> None:
        """The deployment controller's rolling update (``rolling.go``): scale the new ReplicaSet up
        to ``replicas + maxSurge`` pods in all, and old ones down while at least
        ``replicas - maxUnavailable`` stay available (unhealthy old pods go first)."""
        want = d["spec"].get("replicas", 1)
        surge, unavailable = self._surge_unavailable(d["spec"], want)
        every = [new, *old]
        total = sum(rs["spec"].get("replicas", 0) for rs in every)
        current = new["spec"].get("replicas", 0)
        if current > want:
            self._scale(new, want)
        elif current < want:
            self._scale(new, current + max(0, min(want + surge - total, want - current)))
        if not any(rs["spec"].get("replicas") for rs in old):
            return
        min_available = want - unavailable
        total = sum(rs["spec"].get("replicas", 0) for rs in every)
        new_unavailable = new["spec"].get("replicas", 0) - self._available(new)
        budget = total - min_available - new_unavailable
        if budget <= 0:
            return
        for rs in old:  # cleanupUnhealthyReplicas
            unhealthy = rs["spec"].get("replicas", 0) - self._available(rs)
            cut = min(unhealthy, budget)
            if cut > 0:
                self._scale(rs, rs["spec"]["replicas"] - cut)
                budget -= cut
        available = sum(self._available(rs) for rs in every)
        down = available - min_available
        for rs in old:  # scaleDownOldReplicaSetsForRollingUpdate
            if down <= 0:
                break
            cut = min(rs["spec"].get("replicas", 0), down)
            if cut > 0:
                self._scale(rs, rs["spec"]["replicas"] - cut)
                down -= cut

    def _recreate(self, d: dict[str, Any], new: dict[str, Any], old: list[dict[str, Any]]) -> None:
        """Recreate: every old pod gone (terminating ones included) before the new ReplicaSet scales up."""
        for rs in old:
            self._scale(rs, 0)
        if any(self._pods_of(rs) for rs in old):
            self._scale(new, 0)
            return
        self._scale(new, d["spec"].get("replicas", 1))

    @staticmethod
    def _template_of(rs: dict[str, Any]) -> dict[str, Any]:
        template = clone(rs["spec"]["template"])
        labels = template.get("metadata", {}).get("labels", {})
        labels.pop(HASH_LABEL, None)
        return template

    def _new_replicaset(self, d: dict[str, Any], revision: int) -> dict[str, Any]:
        api = self.api
        rs_type = api._rt("apps", "replicasets")
        spec = d["spec"]
        digest = template_hash(spec["template"])
        template = clone(spec["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = digest
        selector = clone(spec["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = digest
        replicas = spec.get("replicas", 1)
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{d['metadata']['name']}-{digest}",
                           "labels": dict(template["metadata"]["labels"]),
                           "annotations": {REVISION: str(revision),
                                           "deployment.kubernetes.io/desired-replicas": str(replicas),
                                           "deployment.kubernetes.io/max-replicas": str(replicas + 1)},
                           "ownerReferences": [self._owner_ref(d)]},
              "spec": {"replicas": 0, "selector": selector, "template": template}}
        rs = api._prepare_create(rs_type, rs, d["metadata"]["namespace"])
        api.store(rs_type, rs)
        return rs

    def _promote(self, rs: dict[str, Any], revision: int) -> None:
        """A rollback: an old ReplicaSet's template is current again and gets the next revision."""
        annotations = rs["metadata"].setdefault("annotations", {})
        history = [h for h in annotations.get("deployment.kubernetes.io/revision-history", "").split(",") if h]
        annotations["deployment.kubernetes.io/revision-history"] = ",".join(history + [annotations[REVISION]])
        annotations[REVISION] = str(revision)
        rs["metadata"]["resourceVersion"] = self.api.next_rv()

    def _set_revision(self, d: dict[str, Any], revision: str) -> None:
        annotations = d["metadata"].setdefault("annotations", {})
        if annotations.get(REVISION) != revision:
            annotations[REVISION] = revision
            d["metadata"]["resourceVersion"] = self.api.next_rv()

    def _prune_history(self, d: dict[str, Any], old: list[dict[str, Any]]) -> None:
        limit = d["spec"].get("revisionHistoryLimit", 10)
        idle = sorted((rs for rs in old if not rs["spec"].get("replicas")),
                      key=lambda rs: int(rs["metadata"]["annotations"].get(REVISION, 0)))
        for rs in idle[:max(len(idle) - limit, 0)]:
            self.api.remove(self.api._rt("apps", "replicasets"), rs)

    def _deployment_status(self, d: dict[str, Any], current: dict[str, Any], old: list[dict[str, Any]],
                           ready: bool, key: str) -> None:
        spec = d["spec"]
        want = spec.get("replicas", 1)
        every = [current, *old]
        total = sum(self._active_pods(rs) for rs in every)
        available = sum(self._available(rs) for rs in every)
        previous = (d.get("status") or {}).get("conditions") or []
        max_unavailable = self._max_unavailable(spec, want)
        conditions = [self._available_condition(previous, available >= want - max_unavailable),
                      self._progressing_condition(previous, d, current, ready, key)]
        new_status: dict[str, Any] = {"observedGeneration": d["metadata"].get("generation", 1), "replicas": total,
                                      "updatedReplicas": self._active_pods(current),
                                      "readyReplicas": sum(self._ready_pods(rs) for rs in every),
                                      "availableReplicas": available,
                                      "unavailableReplicas": max(want - available, 0),
                                      "conditions": conditions}
        new_status = {k: v for k, v in new_status.items() if v != 0}
        self._set_status(d, new_status)

    @staticmethod
    def _max_unavailable(spec: dict[str, Any], want: int) -> int:
        value = ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable", "25%")
        if isinstance(value, str) and value.endswith("%"):
            return math.floor(want * int(value[:-1]) / 100)
        return int(value)

    def _available_condition(self, previous: list[dict[str, Any]], ok: bool) -> dict[str, Any]:
        if ok:
            return self._condition(previous, "Available", "True", "MinimumReplicasAvailable",
                                   "Deployment has minimum availability.")
        return self._condition(previous, "Available", "False", "MinimumReplicasUnavailable",
                               "Deployment does not have minimum availability.")

    def _progressing_condition(self, previous: list[dict[str, Any]], d: dict[str, Any], current: dict[str, Any],
                               ready: bool, key: str) -> dict[str, Any]:
        name = current["metadata"]["name"]
        if ready:
            return self._condition(previous, "Progressing", "True", "NewReplicaSetAvailable",
                                   f'ReplicaSet "{name}" has successfully progressed.')
        deadline = d["spec"].get("progressDeadlineSeconds", 600) * self.api.deadline_factor
        if time.monotonic() - self._started(key) > deadline:
            return self._condition(previous, "Progressing", "False", "ProgressDeadlineExceeded",
                                   f'ReplicaSet "{name}" has timed out progressing.')
        reason = "NewReplicaSetCreated" if not previous else "ReplicaSetUpdated"
        return self._condition(previous, "Progressing", "True", reason,
                               f'Created new replica set "{name}"' if reason == "NewReplicaSetCreated"
                               else f'ReplicaSet "{name}" is progressing.')

    # -- ReplicaSet ------------------------------------------------------------------------------
    @staticmethod
    def _rs_key(rs: dict[str, Any]) -> str:
        return f"{rs['metadata']['uid']}:{rs['metadata']['name']}"

    def _pods_of(self, owner: dict[str, Any]) -> list[dict[str, Any]]:
        """The pods ``owner`` controls (ownerReferences), Terminating ones included."""
        uid = owner["metadata"]["uid"]
        return [p for p in self.pod_loop.pods(owner["metadata"]["namespace"]) if self._owned_by(p, uid)]

    def _ready_pods(self, owner: dict[str, Any]) -> int:
        return sum(1 for p in self._pods_of(owner) if not is_terminating(p) and is_ready(p))

    def _rs_ready(self, rs: dict[str, Any]) -> bool:
        return self._ready_pods(rs) >= rs["spec"].get("replicas", 1)

    def _replicaset(self, rs: dict[str, Any]) -> None:
        """ReplicaSetController.manageReplicas: terminating pods are not counted; surplus pods go
        unscheduled first, then not-ready, then the newest (controller.ActivePods ordering)."""
        want = rs["spec"].get("replicas", 1)
        active = [p for p in self._pods_of(rs) if not is_terminating(p)]
        for _ in range(want - len(active)):
            pod = new_pod(rs, rs["spec"]["template"])
            active.append(self.pod_loop.create(pod, rs["metadata"]["namespace"]))
        if len(active) > want:
            ranked = sorted(active, key=lambda p: (bool(p["spec"].get("nodeName")), is_ready(p),
                                                   -int(p["metadata"]["resourceVersion"])))
            for pod in ranked[:len(active) - want]:
                self.pod_loop.delete(pod)
            active = ranked[len(active) - want:]
        ready = sum(1 for p in active if is_ready(p))
        new_status = {"replicas": len(active), "fullyLabeledReplicas": len(active), "readyReplicas": ready,
                      "availableReplicas": ready, "observedGeneration": rs["metadata"].get("generation", 1)}
        self._set_status(rs, {k: v for k, v in new_status.items() if v != 0 or k == "replicas"})

    # -- DaemonSet ------------------------------------------------------------------------------
    @staticmethod
    def _ds_template(ds: dict[str, Any]) -> dict[str, Any]:
        """The template plus the tolerations the DaemonSet controller adds to every daemon pod."""
        template = clone(ds["spec"]["template"])
        spec = template.setdefault("spec", {})
        tolerations = spec.setdefault("tolerations", [])
        extra = list(DAEMONSET_TOLERATIONS) + ([HOSTNETWORK_TOLERATION] if spec.get("hostNetwork") else [])
        for tol in extra:
            if not any(t.get("key") == tol["key"] and t.get("effect") == tol["effect"] for t in tolerations):
                tolerations.append(dict(tol))
        return template

    def _ds_eligible(self, template: dict[str, Any], node: dict[str, Any]) -> bool:
        """nodeShouldRunDaemonPod: node affinity/selector and NoSchedule/NoExecute taints."""
        pod = {"metadata": {}, "spec": template.get("spec") or {}}
        tolerations = (template.get("spec") or {}).get("tolerations") or []
        return matches_node(pod, node) and all(
            tolerates(tolerations, t) for t in node_taints(node) if t.get("effect") in ("NoSchedule", "NoExecute"))

    def _daemonset(self, ds: dict[str, Any]) -> None:
        template = self._ds_template(ds)
        digest = template_hash(ds["spec"]["template"])
        nodes = [n for n in self.pod_loop.nodes() if self._ds_eligible(template, n)]
        names = {n["metadata"]["name"] for n in nodes}
        pods = [p for p in self._pods_of(ds) if not is_terminating(p)]
        for pod in [p for p in pods if self._ds_node(p) not in names]:
            self.api.remove(self.api._rt("", "pods"), pod)
        pods = [p for p in pods if self._ds_node(p) in names]
        self._ds_roll(ds, template, pods, digest)
        pods = [p for p in self._pods_of(ds) if not is_terminating(p) and self._ds_node(p) in names]
        have = {self._ds_node(p) for p in pods}
        for name in sorted(names - have):
            pods.append(self._ds_pod(ds, template, name, digest))
        self._ds_status(ds, pods, len(nodes), digest)

    @staticmethod
    def _ds_node(pod: dict[str, Any]) -> str:
        terms = ((((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {})
                  .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or [])
        for term in terms:
            for field in term.get("matchFields") or []:
                if field.get("key") == "metadata.name" and field.get("values"):
                    return str(field["values"][0])
        return str(pod["spec"].get("nodeName", ""))

    def _ds_pod(self, ds: dict[str, Any], template: dict[str, Any], node: str, digest: str) -> dict[str, Any]:
        """A daemon pod pinned by ``matchFields metadata.name`` (ReplaceDaemonSetPodNodeNameNodeAffinity)."""
        template = clone(template)
        affinity = template["spec"].setdefault("affinity", {}).setdefault("nodeAffinity", {})
        affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}
        pod = new_pod(ds, template, labels={"controller-revision-hash": digest,
                                            "pod-template-generation": str(ds["metadata"].get("generation", 1))})
        return self.pod_loop.create(pod, ds["metadata"]["namespace"])

    @staticmethod
    def _scaled(value: Any, total: int) -> int:
        """intstr.GetScaledValueFromIntOrPercent with roundUp, as the DaemonSet controller uses it."""
        if isinstance(value, str) and value.endswith("%"):
            return math.ceil(total * int(value[:-1]) / 100)
        return int(value or 0)

    def _ds_roll(self, ds: dict[str, Any], template: dict[str, Any], pods: list[dict[str, Any]],
                 digest: str) -> None:
        """DaemonSet RollingUpdate (pkg/controller/daemon/update.go rollingUpdate): with maxSurge 0,
        delete outdated pods while fewer than maxUnavailable (default 1) are unavailable; with maxSurge,
        start the new pod next to the old one (so hostPort pods cannot surge) and delete the old pod
        once the new one is Ready; an unavailable old pod is replaced at once."""
        strategy = ds["spec"].get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        rolling = strategy.get("rollingUpdate") or {}
        nodes = {self._ds_node(p) for p in pods}
        surge = self._scaled(rolling.get("maxSurge", 0), len(nodes))
        if surge == 0:
            pods = self._ds_one_per_node(pods)
            self._ds_roll_unavailable(pods, digest, self._scaled(rolling.get("maxUnavailable", 1), len(nodes)) or 1)
            return
        surging = 0
        for node in sorted(nodes):
            here = [p for p in pods if self._ds_node(p) == node]
            old = [p for p in here if p["metadata"].get("labels", {}).get("controller-revision-hash") != digest]
            new = [p for p in here if p not in old]
            if old and new and is_ready(new[0]) or old and not any(is_ready(p) for p in old):
                for pod in old:
                    self.pod_loop.delete(pod)
            elif old and new:
                surging += 1
            elif old and surging < surge:
                self._ds_pod(ds, template, node, digest)
                surging += 1

    def _ds_one_per_node(self, pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """podsShouldBeOnNode without surge: of several pods on a node keep the scheduled, oldest one
        (podByCreationTimestampAndPhase) and delete the others."""
        kept = []
        for node in sorted({self._ds_node(p) for p in pods}):
            here = sorted((p for p in pods if self._ds_node(p) == node),
                          key=lambda p: (not p["spec"].get("nodeName"), p["metadata"].get("creationTimestamp", ""),
                                         p["metadata"]["name"]))
            kept.append(here[0])
            for extra in here[1:]:
                self.pod_loop.delete(extra)
        return kept

    def _ds_roll_unavailable(self, pods: list[dict[str, Any]], digest: str, budget: int) -> None:
        unavailable = sum(1 for p in pods if not is_ready(p))
        for pod in pods:
            if pod["metadata"].get("labels", {}).get("controller-revision-hash") != digest and unavailable < budget:
                self.pod_loop.delete(pod)
                unavailable += 1

    def _ds_status(self, ds: dict[str, Any], pods: list[dict[str, Any]], desired: int, digest: str) -> None:
        """updateDaemonSetStatus, per node: scheduled, ready (any pod Ready) and updated (a current pod)."""
        nodes = {self._ds_node(p) for p in pods}
        ready = sum(1 for n in nodes if any(is_ready(p) for p in pods if self._ds_node(p) == n))
        updated = sum(1 for n in nodes if any(self._ds_node(p) == n and p["metadata"].get("labels", {}).get(
            "controller-revision-hash") == digest for p in pods))
        new_status = {"currentNumberScheduled": len(nodes), "desiredNumberScheduled": desired,
                      "numberMisscheduled": 0, "numberReady": ready, "updatedNumberScheduled": updated,
                      "numberAvailable": ready, "numberUnavailable": max(desired - ready, 0),
                      "observedGeneration": ds["metadata"].get("generation", 1)}
        drop = ("numberAvailable", "numberUnavailable", "updatedNumberScheduled")
        self._set_status(ds, {k: v for k, v in new_status.items() if v != 0 or k not in drop})

    # -- StatefulSet -----------------------------------------------------------------------------
    def _statefulset(self, sts: dict[str, Any]) -> None:
        """StatefulSet controller: ordinals 0..replicas-1, one pod per ordinal (a Terminating pod
        blocks its ordinal), OrderedReady creation, RollingUpdate from the highest ordinal."""
        spec, meta = sts["spec"], sts["metadata"]
        want = spec.get("replicas", 1)
        revision = f"{meta['name']}-{template_hash(spec['template'])}"
        pods = {p["metadata"]["name"]: p for p in self._pods_of(sts)}
        for name, pod in list(pods.items()):
            if self._ordinal(sts, name) >= want and not is_terminating(pod):
                self.pod_loop.delete(pod)
                del pods[name]
        ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        for i in range(want):
            name = f"{meta['name']}-{i}"
            if name not in pods:
                pods[name] = self._sts_pod(sts, i, revision)
                if ordered:
                    break
            elif ordered and not (is_ready(pods[name]) and not is_terminating(pods[name])):
                break
        self._sts_roll(sts, pods, revision)
        self._sts_status(sts, list(pods.values()), revision)

    @staticmethod
    def _ordinal(sts: dict[str, Any], name: str) -> int:
        suffix = name[len(sts["metadata"]["name"]) + 1:]
        return int(suffix) if suffix.isdigit() else -1

    def _sts_pod(self, sts: dict[str, Any], ordinal: int, revision: str) -> dict[str, Any]:
        meta = sts["metadata"]
        name = f"{meta['name']}-{ordinal}"
        template = clone(sts["spec"]["template"])
        pod_spec = template.setdefault("spec", {})
        pod_spec.setdefault("hostname", name)
        if sts["spec"].get("serviceName"):
            pod_spec.setdefault("subdomain", sts["spec"]["serviceName"])
        volumes = pod_spec.setdefault("volumes", [])
        for claim in self._claims(sts, ordinal):
            tpl = claim["metadata"]["name"][:-len(f"-{name}")]
            volumes[:] = [v for v in volumes if v.get("name") != tpl]
            volumes.append({"name": tpl, "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}})
        pod = new_pod(sts, template, name, {"controller-revision-hash": revision,
                                            "statefulset.kubernetes.io/pod-name": name,
                                            "apps.kubernetes.io/pod-index": str(ordinal)})
        return self.pod_loop.create(pod, meta["namespace"])

    def _sts_roll(self, sts: dict[str, Any], pods: dict[str, dict[str, Any]], revision: str) -> None:
        if (sts["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate") != "RollingUpdate":
            return
        if not pods or not all(is_ready(p) and not is_terminating(p) for p in pods.values()):
            return
        outdated = [p for p in pods.values() if p["metadata"]["labels"].get("controller-revision-hash") != revision]
        if outdated:
            last = max(outdated, key=lambda p: self._ordinal(sts, p["metadata"]["name"]))
            self.pod_loop.delete(last)
            del pods[last["metadata"]["name"]]

    def _sts_status(self, sts: dict[str, Any], pods: list[dict[str, Any]], revision: str) -> None:
        meta, want = sts["metadata"], sts["spec"].get("replicas", 1)
        previous = (sts.get("status") or {}).get("currentRevision") or revision
        ready = sum(1 for p in pods if is_ready(p) and not is_terminating(p))
        updated = [p for p in pods if p["metadata"]["labels"].get("controller-revision-hash") == revision]
        done = len(updated) == want and ready == want
        current = revision if done else previous
        new_status = {"observedGeneration": meta.get("generation", 1), "replicas": len(pods),
                      "readyReplicas": ready,
                      "currentReplicas": sum(1 for p in pods
                                             if p["metadata"]["labels"].get("controller-revision-hash") == current),
                      "updatedReplicas": len(updated), "availableReplicas": ready,
                      "currentRevision": current, "updateRevision": revision, "collisionCount": 0}
        keep = ("replicas", "collisionCount", "observedGeneration")
        self._set_status(sts, {k: v for k, v in new_status.items() if v != 0 or k in keep})

    def _claims(self, sts: dict[str, Any], ordinal: int) -> list[dict[str, Any]]:
        """The ordinal's claims ``<template>-<sts>-<ordinal>``, created when missing (kept on scale-down)."""
        api = self.api
        pvc_type = api._rt("", "persistentvolumeclaims")
        ns = sts["metadata"]["namespace"]
        claims = []
        for template in sts["spec"].get("volumeClaimTemplates") or []:
            name = f"{template['metadata']['name']}-{sts['metadata']['name']}-{ordinal}"
            claim = api.lookup(pvc_type, ns, name)
            if claim is None:
                labels = dict(sts["spec"].get("selector", {}).get("matchLabels", {}))
                claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "metadata": {"name": name, "labels": labels},
                         "spec": clone(template.get("spec") or {})}
                claim = api._prepare_create(pvc_type, claim, ns)
                claim["spec"].setdefault("volumeMode", "Filesystem")
                claim["spec"].setdefault("storageClassName", "local-path")
                claim["status"] = {"phase": "Pending"}
                api.store(pvc_type, claim)
            claims.append(claim)
        return claims

    # -- Job -------------------------------------------------------------------------------------
    def _job(self, job: dict[str, Any]) -> None:
        if getattr(self.api, "helm", None) is not None and self.api.helm.owns_job(job):
            return  # run by the helm-controller stand-in
        spec, meta = job["spec"], job["metadata"]
        key = f"{meta['uid']}:job"
        previous = job.get("status") or {}
        start = previous.get("startTime") or now_rfc3339()
        if previous.get("completionTime"):
            return
        if self._ready(key, spec.get("template") or {}) and not spec.get("suspend"):
            done = now_rfc3339()
            conditions = [self._condition([], "SuccessCriteriaMet", "True", "CompletionsReached",
                                          "Reached expected number of succeeded pods", False),
                          self._condition([], "Complete", "True", "CompletionsReached",
                                          "Reached expected number of succeeded pods", False)]
            for c in conditions:
                c["lastProbeTime"] = done
            new_status = {"startTime": start, "completionTime": done, "succeeded": spec.get("completions", 1),
                          "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}, "conditions": conditions}
        else:
            new_status = {"startTime": start, "active": spec.get("parallelism", 1), "ready": 0, "terminating": 0,
                          "uncountedTerminatedPods": {}}
        self._set_status(job, new_status)

    # -- PersistentVolumeClaim -------------------------------------------------------------------
    def _pvc(self, pvc: dict[str, Any]) -> None:
        """local-path (WaitForFirstConsumer) claims wait for a pod; other classes bind at once."""
        if (pvc.get("status") or {}).get("phase") == "Bound" or self.pod_loop.provision(pvc):
            return
        spec = pvc["spec"]
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        annotations = pvc["metadata"].setdefault("annotations", {})
        annotations.setdefault("pv.kubernetes.io/bind-completed", "yes")
        annotations.setdefault("pv.kubernetes.io/bound-by-controller", "yes")
        annotations.setdefault("volume.kubernetes.io/storage-provisioner", "rancher.io/local-path")
        spec.setdefault("volumeName", f"pvc-{pvc['metadata']['uid']}")
        self._set_status(pvc, {"phase": "Bound", "accessModes": list(spec.get("accessModes") or []),
                               "capacity": {"storage": storage}})

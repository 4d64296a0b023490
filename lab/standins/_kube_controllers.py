"""Simulated controllers of the Kubernetes stand-in, evaluated lazily before every request.

* Deployment: one ReplicaSet per pod template (``<name>-<hash>``), revisions in the
  ``deployment.kubernetes.io/revision`` annotation, old ReplicaSets scaled to 0 once the new one
  is available and pruned beyond ``revisionHistoryLimit``; status counters and the Available /
  Progressing conditions (``ProgressDeadlineExceeded`` after ``progressDeadlineSeconds`` times
  the stand-in's ``deadline_factor``).
* ReplicaSet, DaemonSet (one pod per registered node), StatefulSet (+ volumeClaimTemplates),
  Job (Complete) and PersistentVolumeClaim (Bound).

A workload becomes ready ``rollout_seconds`` after its current template appeared, and only if
every container image exists (:meth:`KubeStandIn.image_exists`).
"""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from ._kube_objects import clone, now_rfc3339, template_hash

if TYPE_CHECKING:  # pragma: no cover
    from .kube import KubeStandIn

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"


class Controllers:
    """The reconcile loop, run by the stand-in under its lock."""

    def __init__(self, api: "KubeStandIn") -> None:
        self.api = api
        self.since: dict[str, float] = {}  # rollout start per (object uid, template hash)

    def reconcile(self) -> None:
        """Bring every controlled object's status (and children) up to date."""
        api = self.api
        if getattr(api, "helm", None) is not None:
            api.helm.reconcile()  # K3s helm-controller (lab/standins/_helmcontroller.py)
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
        ready = self._ready(key, spec["template"])
        if current["spec"].get("replicas") != spec.get("replicas", 1):
            current["spec"]["replicas"] = spec.get("replicas", 1)
            current["metadata"]["resourceVersion"] = api.next_rv()
        old = [rs for rs in owned if rs is not current]
        if ready:
            for rs in old:
                if rs["spec"].get("replicas"):
                    rs["spec"]["replicas"] = 0
                    rs["metadata"]["resourceVersion"] = api.next_rv()
        self._prune_history(d, old)
        self._deployment_status(d, current, [rs for rs in old if api.lookup(rs_type, ns, rs["metadata"]["name"])],
                                ready, key)

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
              "spec": {"replicas": replicas, "selector": selector, "template": template}}
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
        old_ready = sum(rs["spec"].get("replicas", 0) for rs in old if self._rs_ready(rs))
        total = want + sum(rs["spec"].get("replicas", 0) for rs in old)
        available = (want if ready else 0) + old_ready
        previous = (d.get("status") or {}).get("conditions") or []
        max_unavailable = self._max_unavailable(spec, want)
        conditions = [self._available_condition(previous, available >= want - max_unavailable),
                      self._progressing_condition(previous, d, current, ready, key)]
        new_status: dict[str, Any] = {"observedGeneration": d["metadata"].get("generation", 1), "replicas": total,
                                      "updatedReplicas": want, "readyReplicas": available,
                                      "availableReplicas": available,
                                      "unavailableReplicas": max(total - available, 0),
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

    def _rs_ready(self, rs: dict[str, Any]) -> bool:
        return self._ready(self._rs_key(rs), rs["spec"]["template"])

    def _replicaset(self, rs: dict[str, Any]) -> None:
        key = self._rs_key(rs)
        want = rs["spec"].get("replicas", 1)
        ready = want if self._ready(key, rs["spec"]["template"]) else 0
        new_status = {"replicas": want, "fullyLabeledReplicas": want, "readyReplicas": ready,
                      "availableReplicas": ready, "observedGeneration": rs["metadata"].get("generation", 1)}
        self._set_status(rs, {k: v for k, v in new_status.items() if v != 0 or k == "replicas"})

    # -- DaemonSet ------------------------------------------------------------------------------
    def _daemonset(self, ds: dict[str, Any]) -> None:
        api = self.api
        selector = ((ds["spec"].get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
        nodes = [n for n in api.items(api._rt("", "nodes"))
                 if all(n["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]
        desired = len(nodes)
        key = f"{ds['metadata']['uid']}:{template_hash(ds['spec']['template'])}"
        ready = desired if self._ready(key, ds["spec"]["template"]) else 0
        new_status = {"currentNumberScheduled": desired, "desiredNumberScheduled": desired,
                      "numberMisscheduled": 0, "numberReady": ready, "updatedNumberScheduled": desired,
                      "numberAvailable": ready, "numberUnavailable": desired - ready,
                      "observedGeneration": ds["metadata"].get("generation", 1)}
        drop = ("numberAvailable", "numberUnavailable", "updatedNumberScheduled")
        self._set_status(ds, {k: v for k, v in new_status.items() if v != 0 or k not in drop})

    # -- StatefulSet -----------------------------------------------------------------------------
    def _statefulset(self, sts: dict[str, Any]) -> None:
        spec, meta = sts["spec"], sts["metadata"]
        want = spec.get("replicas", 1)
        revision = f"{meta['name']}-{template_hash(spec['template'])}"
        key = f"{meta['uid']}:{revision}"
        ready = self._ready(key, spec["template"])
        previous = (sts.get("status") or {}).get("currentRevision") or revision
        self._claims(sts, want)
        new_status = {"observedGeneration": meta.get("generation", 1), "replicas": want,
                      "readyReplicas": want if ready else 0, "currentReplicas": want if ready else 0,
                      "updatedReplicas": want if ready else 0, "availableReplicas": want if ready else 0,
                      "currentRevision": revision if ready else previous, "updateRevision": revision,
                      "collisionCount": 0}
        keep = ("replicas", "collisionCount", "observedGeneration")
        self._set_status(sts, {k: v for k, v in new_status.items() if v != 0 or k in keep})

    def _claims(self, sts: dict[str, Any], replicas: int) -> None:
        api = self.api
        pvc_type = api._rt("", "persistentvolumeclaims")
        ns = sts["metadata"]["namespace"]
        for template in sts["spec"].get("volumeClaimTemplates") or []:
            for i in range(replicas):
                name = f"{template['metadata']['name']}-{sts['metadata']['name']}-{i}"
                if api.lookup(pvc_type, ns, name) is None:
                    labels = dict(sts["spec"].get("selector", {}).get("matchLabels", {}))
                    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                             "metadata": {"name": name, "labels": labels},
                             "spec": clone(template.get("spec") or {})}
                    claim = api._prepare_create(pvc_type, claim, ns)
                    claim["spec"].setdefault("volumeMode", "Filesystem")
                    claim["spec"].setdefault("storageClassName", "local-path")
                    claim["status"] = {"phase": "Pending"}
                    api.store(pvc_type, claim)

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
        if (pvc.get("status") or {}).get("phase") == "Bound":
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

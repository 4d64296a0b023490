"""Pods in the Kubernetes stand-in: creation by controllers, the scheduler loop, a kubelet, taint-based
eviction of a NotReady node's pods, Events, and the local-path provisioner (WaitForFirstConsumer).

What each part mirrors:

* :func:`new_pod` — the pod a controller creates from its template (``controller.GetPodFromTemplate``),
  with the API server's defaults and the DefaultTolerationSeconds admission plugin's tolerations
  (``node.kubernetes.io/not-ready`` and ``unreachable``, NoExecute, 300 s).
* :meth:`PodLoop.schedule` — kube-scheduler (:mod:`._kube_scheduler`) plus VolumeBinding's
  WaitForFirstConsumer handling: an unbound local-path claim gets ``volume.kubernetes.io/selected-node``
  and the pod is bound once the claim is Bound (PreBind waits for provisioning).
* :meth:`PodLoop.kubelet` — the kubelet's status: Running/Ready ``rollout_seconds`` after binding if
  every image exists, else ``ErrImagePull`` then ``ImagePullBackOff``.
* :meth:`PodLoop.evict` — the node lifecycle controller's taint-based eviction: a pod on a NotReady
  (Ready False/Unknown) node is deleted once its NoExecute toleration runs out (``tolerationSeconds``
  times the stand-in's ``eviction_factor``, default its ``deadline_factor``). The kubelet of an
  unreachable node (Unknown) cannot confirm, so such a pod stays Terminating until the node returns
  or the Node object is deleted (pod GC); on a NotReady-but-reporting node (False) it goes at once.
* :meth:`PodLoop.provision` — rancher/local-path-provisioner: PV ``pvc-<uid>`` with hostPath and
  ``nodeAffinity`` ``kubernetes.io/hostname In [<node>]``; ReadWriteOnce(Pod) only.
"""
from __future__ import annotations

import datetime
import random
import time
from typing import TYPE_CHECKING, Any

from ._kube_objects import clone, now_rfc3339
from ._kube_scheduler import HOSTNAME, NOT_READY, UNREACHABLE, Unschedulable, node_ready, schedule, tolerates

if TYPE_CHECKING:  # pragma: no cover
    from .kube import KubeStandIn

SELECTED_NODE = "volume.kubernetes.io/selected-node"
LOCAL_PATH = "local-path"
PROVISIONER = "rancher.io/local-path"
DEFAULT_TOLERATION_SECONDS = 300
_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand alphanums

# The DaemonSet controller's tolerations (pkg/controller/daemon/util.AddOrUpdateDaemonPodTolerations).
DAEMONSET_TOLERATIONS = (
    {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute"},
    {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
HOSTNETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                          "effect": "NoSchedule"}


def set_ready_condition(api: "KubeStandIn", name: str, state: str) -> None:
    """Flip a Node's Ready condition (what its kubelet, or the node lifecycle controller for a silent
    kubelet, writes: reason KubeletNotReady / NodeStatusUnknown)."""
    node = api.lookup(api._rt("", "nodes"), "", name)
    if node is None:
        raise KeyError(name)
    reason, message = {"True": ("KubeletReady", "kubelet is posting ready status"),
                       "False": ("KubeletNotReady", "container runtime network not ready"),
                       "Unknown": ("NodeStatusUnknown", "Kubelet stopped posting node status.")}[state]
    now = now_rfc3339()
    node["status"]["conditions"] = [c for c in node["status"].get("conditions") or [] if c.get("type") != "Ready"] + [
        {"type": "Ready", "status": state, "reason": reason, "message": message, "lastHeartbeatTime": now,
         "lastTransitionTime": now}]
    taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("key") not in (NOT_READY, UNREACHABLE)]
    if state != "True":
        key = NOT_READY if state == "False" else UNREACHABLE
        taints += [{"key": key, "effect": "NoSchedule"}, {"key": key, "effect": "NoExecute", "timeAdded": now}]
    node.setdefault("spec", {})["taints"] = taints
    loop = api.controllers.pod_loop
    if state == "True":
        loop.not_ready_since.pop(name, None)
    else:
        loop.not_ready_since.setdefault(name, time.monotonic())  # the eviction clock starts with the taint
    if not taints:
        node["spec"].pop("taints")
    node["metadata"]["resourceVersion"] = api.next_rv()


def local_path_class() -> dict[str, Any]:
    """The StorageClass K3s deploys from manifests/local-storage.yaml."""
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": LOCAL_PATH,
                         "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": PROVISIONER, "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Delete"}


def add_default_tolerations(spec: dict[str, Any]) -> None:
    """DefaultTolerationSeconds admission: NoExecute not-ready/unreachable for 300 s unless present."""
    tolerations = spec.setdefault("tolerations", [])
    for key in (NOT_READY, UNREACHABLE):
        if not any(t.get("key") == key and t.get("effect") in ("NoExecute", None, "") for t in tolerations) and \
                not any(not t.get("key") and t.get("operator") == "Exists" for t in tolerations):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS})


def pod_defaults(spec: dict[str, Any]) -> None:
    """SetDefaults_PodSpec/SetDefaults_Pod for the fields the stand-in reports, plus admission."""
    for key, value in (("restartPolicy", "Always"), ("dnsPolicy", "ClusterFirst"),
                       ("schedulerName", "default-scheduler"), ("terminationGracePeriodSeconds", 30),
                       ("serviceAccountName", "default"), ("enableServiceLinks", True), ("priority", 0),
                       ("preemptionPolicy", "PreemptLowerPriority"), ("securityContext", {})):
        spec.setdefault(key, value)
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")
            if spec.get("hostNetwork") and not port.get("hostPort"):
                port["hostPort"] = port.get("containerPort")
    add_default_tolerations(spec)


def new_pod(owner: dict[str, Any], template: dict[str, Any], name: str | None = None,
            labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A pod from a controller's template, owned by ``owner`` (``generateName`` ``<owner>-``)."""
    meta = clone(template.get("metadata") or {})
    spec = clone(template.get("spec") or {})
    owner_name = owner["metadata"]["name"]
    metadata: dict[str, Any] = {"name": name or f"{owner_name}-{''.join(random.choices(_SUFFIX, k=5))}",
                                "labels": {**(meta.get("labels") or {}), **(labels or {})},
                                "ownerReferences": [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                                     "name": owner_name, "uid": owner["metadata"]["uid"],
                                                     "controller": True, "blockOwnerDeletion": True}]}
    if name is None:
        metadata["generateName"] = f"{owner_name}-"
    if meta.get("annotations"):
        metadata["annotations"] = dict(meta["annotations"])
    pod_defaults(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec,
            "status": {"phase": "Pending", "qosClass": "BestEffort"}}


def toleration_seconds(pod: dict[str, Any], taint_key: str) -> int | None:
    """How long a pod stays on a node with the NoExecute taint ``taint_key`` (None: forever), like the
    taint eviction controller's getMinTolerationTime: no matching toleration = 0, else the smallest
    ``tolerationSeconds`` among the matching ones, forever when none of them sets it."""
    taint = {"key": taint_key, "effect": "NoExecute"}
    matching = [t for t in (pod.get("spec") or {}).get("tolerations") or [] if tolerates([t], taint)]
    if not matching:
        return 0
    timed = [int(t["tolerationSeconds"]) for t in matching if t.get("tolerationSeconds") is not None]
    return max(min(timed), 0) if timed else None


KUBELET_ANNOTATION = "lab.honeydue/kubelet"  # "process": a real lab kubelet (lab/k3s/_kubelet.py) runs the node
HELM_CHART_LABEL = "helmcharts.helm.cattle.io/chart"


def status_owned_elsewhere(pod: dict[str, Any], node: dict[str, Any]) -> bool:
    """Whether another component writes this pod's container states: the node's real kubelet
    process, or the helm controller (the helm-install pod's container is the helm run it models)."""
    if (node["metadata"].get("annotations") or {}).get(KUBELET_ANNOTATION) == "process":
        return True
    return HELM_CHART_LABEL in (pod["metadata"].get("labels") or {})


def stopped(pod: dict[str, Any], now: float) -> bool:
    """Whether a simulated kubelet has stopped a Terminating pod's containers by ``now``: its
    ``preStop`` sleep runs first (at most the grace period); the processes then exit on SIGTERM."""
    meta = pod["metadata"]
    grace = int(meta.get("deletionGracePeriodSeconds") or 0)
    sleeps = [int((((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds") or 0)
              for c in (pod.get("spec") or {}).get("containers") or []]
    wait = min(max(sleeps, default=0), grace)
    if not wait:
        return True
    deadline = datetime.datetime.fromisoformat(meta["deletionTimestamp"].replace("Z", "+00:00")).timestamp()
    return now >= deadline - grace + wait


def is_terminating(pod: dict[str, Any]) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def claim_names(pod: dict[str, Any]) -> list[str]:
    return [v["persistentVolumeClaim"]["claimName"] for v in (pod.get("spec") or {}).get("volumes") or []
            if isinstance(v.get("persistentVolumeClaim"), dict)]


def _condition(kind: str, state: str, reason: str | None = None, message: str | None = None) -> dict[str, Any]:
    cond: dict[str, Any] = {"type": kind, "status": state, "lastProbeTime": None,
                            "lastTransitionTime": now_rfc3339()}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


class PodLoop:
    """Scheduler, kubelet, eviction and local-path provisioning over the stand-in's store."""

    def __init__(self, api: "KubeStandIn") -> None:
        self.api = api
        self.bound_at: dict[str, float] = {}  # pod uid -> when it was bound to its node
        self.not_ready_since: dict[str, float] = {}  # node name -> when Ready stopped being True
        self.seeded = False

    # -- store helpers ---------------------------------------------------------------------------
    def _rt(self, group: str, plural: str) -> Any:
        return self.api._rt(group, plural)

    def pods(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.api.items(self._rt("", "pods"), namespace)

    def nodes(self) -> list[dict[str, Any]]:
        return self.api.items(self._rt("", "nodes"))

    def create(self, pod: dict[str, Any], namespace: str) -> dict[str, Any]:
        rt = self._rt("", "pods")
        status = pod.pop("status")
        prepared = self.api._prepare_create(rt, pod, namespace)
        prepared["status"] = status
        self.api.store(rt, prepared)
        return prepared

    def touch(self, obj: dict[str, Any]) -> None:
        obj["metadata"]["resourceVersion"] = self.api.next_rv()

    def delete(self, pod: dict[str, Any], grace: int | None = None) -> dict[str, Any] | None:
        """Graceful deletion, as the apiserver does it for a pod bound to a node: ``deletionTimestamp``
        (now + grace) and ``deletionGracePeriodSeconds`` (default ``terminationGracePeriodSeconds``,
        30); the node's kubelet stops the containers and then deletes it for good. An unbound pod, or
        grace 0, goes at once. Returns the pod while it terminates, None once gone."""
        meta = pod["metadata"]
        if grace is None:
            grace = int((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        if not (pod.get("spec") or {}).get("nodeName") or grace <= 0:
            self.api.remove(self._rt("", "pods"), pod)
            return None
        if not meta.get("deletionTimestamp") or grace < int(meta.get("deletionGracePeriodSeconds", grace + 1)):
            meta["deletionTimestamp"] = now_rfc3339(time.time() + grace)
            meta["deletionGracePeriodSeconds"] = grace
            self.touch(pod)
            self.api.store(self._rt("", "pods"), pod)
        return pod

    def event(self, obj: dict[str, Any], reason: str, message: str, kind: str = "Normal",
              component: str = "default-scheduler") -> None:
        """A core/v1 Event about ``obj`` (repeats bump ``count`` like the event recorder's correlator)."""
        rt = self._rt("", "events")
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        for ev in self.api.items(rt, namespace):
            if ev["involvedObject"].get("uid") == meta["uid"] and ev["reason"] == reason and ev["message"] == message:
                return
        now = now_rfc3339()
        ev = {"apiVersion": "v1", "kind": "Event",
              "metadata": {"name": f"{meta['name']}.{random.getrandbits(64):x}"},
              "involvedObject": {"apiVersion": obj.get("apiVersion", "v1"), "kind": obj.get("kind", ""),
                                 "name": meta["name"], "namespace": meta.get("namespace", ""), "uid": meta["uid"],
                                 "resourceVersion": meta.get("resourceVersion", "")},
              "reason": reason, "message": message, "type": kind, "count": 1, "firstTimestamp": now,
              "lastTimestamp": now, "source": {"component": component}, "reportingComponent": component,
              "reportingInstance": ""}
        self.api.store(rt, self.api._prepare_create(rt, ev, namespace))

    # -- StorageClass ------------------------------------------------------------------------------
    def seed_storage_class(self) -> None:
        """K3s's local-storage manifest: the ``local-path`` class exists from the start."""
        if self.seeded:
            return
        self.seeded = True
        rt = self._rt("storage.k8s.io", "storageclasses")
        if self.api.lookup(rt, "", LOCAL_PATH) is None:
            self.api.store(rt, self.api._prepare_create(rt, local_path_class(), ""))

    def storage_class(self, name: str | None) -> dict[str, Any] | None:
        return self.api.lookup(self._rt("storage.k8s.io", "storageclasses"), "", name or "")

    # -- scheduler ---------------------------------------------------------------------------------
    def placement(self) -> dict[str, list[dict[str, Any]]]:
        """Bound, not finished pods per node (what the scheduler's cache holds)."""
        placed: dict[str, list[dict[str, Any]]] = {}
        for pod in self.pods():
            node = (pod.get("spec") or {}).get("nodeName")
            if node and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                placed.setdefault(node, []).append(pod)
        return placed

    def schedule(self) -> None:
        """Bind every pending pod whose scheduler is the default one."""
        for pod in self.pods():
            spec = pod.get("spec") or {}
            if spec.get("nodeName") or is_terminating(pod) or spec.get("schedulerName", "default-scheduler") \
                    != "default-scheduler":
                continue
            self._schedule_one(pod)

    def _claims_state(self, pod: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
        """(PV node affinities of bound claims, unbound WaitForFirstConsumer claims, a PreFilter error)."""
        pvc_rt, pv_rt = self._rt("", "persistentvolumeclaims"), self._rt("", "persistentvolumes")
        affinity, unbound = [], []
        for name in claim_names(pod):
            claim = self.api.lookup(pvc_rt, pod["metadata"]["namespace"], name)
            if claim is None:
                return [], [], f'persistentvolumeclaim "{name}" not found'
            volume = self.api.lookup(pv_rt, "", claim["spec"].get("volumeName") or "")
            if (claim.get("status") or {}).get("phase") == "Bound" and volume is not None:
                required = ((volume["spec"].get("nodeAffinity") or {}).get("required"))
                if required:
                    affinity.append(required)
            else:
                unbound.append(claim)
        return affinity, unbound, None

    def _schedule_one(self, pod: dict[str, Any]) -> None:
        affinity, unbound, error = self._claims_state(pod)
        nodes = self.nodes()
        if error is not None:
            self._unschedulable(pod, f"0/{len(nodes)} nodes are available: {error}. preemption: 0/{len(nodes)} "
                                     f"nodes are available: {len(nodes)} Preemption is not helpful for scheduling.")
            return
        if any((c["metadata"].get("annotations") or {}).get(SELECTED_NODE) for c in unbound):
            return  # PreBind: waiting for the provisioner to bind the claim on the selected node
        chosen = schedule(pod, nodes, self.placement(), affinity)
        if isinstance(chosen, Unschedulable):
            self._unschedulable(pod, chosen.message)
        elif unbound:
            for claim in unbound:
                claim["metadata"].setdefault("annotations", {})[SELECTED_NODE] = chosen
                self.touch(claim)
        else:
            self._bind(pod, chosen)

    def _unschedulable(self, pod: dict[str, Any], message: str) -> None:
        status = pod.setdefault("status", {})
        old = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        if old is not None and old.get("message") == message:
            return
        status["phase"] = "Pending"
        status["conditions"] = [_condition("PodScheduled", "False", "Unschedulable", message)]
        self.touch(pod)
        self.event(pod, "FailedScheduling", message, "Warning")

    def _bind(self, pod: dict[str, Any], node: str) -> None:
        pod["spec"]["nodeName"] = node
        pod["status"] = {"phase": "Pending", "qosClass": "BestEffort",
                         "conditions": [_condition("PodScheduled", "True")]}
        self.bound_at[pod["metadata"]["uid"]] = time.monotonic()
        self.touch(pod)
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        self.event(pod, "Scheduled", f"Successfully assigned {ns}/{name} to {node}")

    # -- kubelet -----------------------------------------------------------------------------------
    def kubelet(self) -> None:
        """Container states of bound pods on Ready nodes; pods on NotReady nodes turn not Ready."""
        nodes = {n["metadata"]["name"]: n for n in self.nodes()}
        for pod in self.pods():
            node = nodes.get((pod.get("spec") or {}).get("nodeName") or "")
            if node is None or is_terminating(pod):
                continue
            if node_ready(node) != "True":
                self._mark_not_ready(pod)
            elif not status_owned_elsewhere(pod, node):
                self._run(pod, node)

    def _mark_not_ready(self, pod: dict[str, Any]) -> None:
        """NodeLifecycleController.MarkPodsNotReady: Ready turns False once the node stops reporting."""
        conditions = (pod.get("status") or {}).get("conditions") or []
        for cond in conditions:
            if cond.get("type") == "Ready" and cond.get("status") == "True":
                cond["status"] = "False"
                cond["lastTransitionTime"] = now_rfc3339()
                self.touch(pod)

    def _run(self, pod: dict[str, Any], node: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        started = self.bound_at.setdefault(uid, time.monotonic())
        elapsed = time.monotonic() - started
        containers = pod["spec"].get("containers") or []
        missing = [c for c in containers if not self.api.image_exists(str(c.get("image", "")))]
        if not missing and elapsed < self.api.rollout_seconds:
            return
        status = self._running(pod, node) if not missing else self._pulling(pod, node, missing,
                                                                           elapsed >= self.api.rollout_seconds)
        if _comparable(pod.get("status")) != _comparable(status):
            pod["status"] = status
            self.touch(pod)

    def _base_status(self, pod: dict[str, Any], node: dict[str, Any], phase: str) -> dict[str, Any]:
        old = pod.get("status") or {}
        ip = next((a["address"] for a in node["status"].get("addresses") or [] if a.get("type") == "InternalIP"), "")
        pod_ip = old.get("podIP") or (ip if pod["spec"].get("hostNetwork") else
                                      f"10.42.{abs(hash(node['metadata']['name'])) % 250}.{random.randint(2, 250)}")
        return {"phase": phase, "qosClass": "BestEffort", "hostIP": ip, "hostIPs": [{"ip": ip}] if ip else [],
                "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "startTime": old.get("startTime") or now_rfc3339()}

    def _running(self, pod: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
        status = self._base_status(pod, node, "Running")
        now = now_rfc3339()
        status["conditions"] = [_condition(t, "True") for t in
                                ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                                 "PodScheduled")]
        status["containerStatuses"] = [
            {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True, "started": True,
             "restartCount": 0, "containerID": f"containerd://{random.getrandbits(128):032x}",
             "state": {"running": {"startedAt": now}}} for c in pod["spec"].get("containers") or []]
        return status

    def _pulling(self, pod: dict[str, Any], node: dict[str, Any], missing: list[dict[str, Any]],
                 backoff: bool) -> dict[str, Any]:
        """ErrImagePull on the first failed pull, ImagePullBackOff afterwards (kubelet image manager)."""
        status = self._base_status(pod, node, "Pending")
        names = [c["name"] for c in pod["spec"].get("containers") or []]
        waiting = ", ".join(names)
        status["conditions"] = [_condition("PodReadyToStartContainers", "True"), _condition("Initialized", "True"),
                                _condition("Ready", "False", "ContainersNotReady",
                                           f"containers with unready status: [{waiting}]"),
                                _condition("ContainersReady", "False", "ContainersNotReady",
                                           f"containers with unready status: [{waiting}]"),
                                _condition("PodScheduled", "True")]
        status["containerStatuses"] = [self._container_waiting(c, c in missing, backoff)
                                       for c in pod["spec"].get("containers") or []]
        return status

    @staticmethod
    def _container_waiting(container: dict[str, Any], missing: bool, backoff: bool) -> dict[str, Any]:
        image = str(container.get("image", ""))
        full = _full_reference(image)
        pull_error = (f'failed to pull and unpack image "{full}": failed to resolve reference "{full}": '
                      f"{full}: not found")
        if not missing:
            state = {"waiting": {"reason": "PodInitializing"}}
        elif backoff:
            state = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}": '
                                                                          f"ErrImagePull: {pull_error}"}}
        else:
            state = {"waiting": {"reason": "ErrImagePull",
                                 "message": f"rpc error: code = NotFound desc = {pull_error}"}}
        return {"name": container["name"], "image": image, "imageID": "", "ready": False, "started": False,
                "restartCount": 0, "state": state}

    # -- node lifecycle ----------------------------------------------------------------------------
    def evict(self) -> None:
        """Taint-based eviction of pods on NotReady nodes, and completion of Terminating pods."""
        nodes = {n["metadata"]["name"]: n for n in self.nodes()}
        for name, node in nodes.items():
            if node_ready(node) == "True":
                self.not_ready_since.pop(name, None)
            else:
                self.not_ready_since.setdefault(name, time.monotonic())
        factor = float(getattr(self.api, "eviction_factor", None) or self.api.deadline_factor)
        for pod in list(self.pods()):
            node_name = (pod.get("spec") or {}).get("nodeName") or ""
            node = nodes.get(node_name)
            if node_name and node is None:
                self.api.remove(self._rt("", "pods"), pod)  # PodGC: the node is gone
            elif node is not None and is_terminating(pod) and node_ready(node) != "Unknown" and \
                    (node["metadata"].get("annotations") or {}).get(KUBELET_ANNOTATION) != "process":
                if stopped(pod, time.time()):
                    self.api.remove(self._rt("", "pods"), pod)  # the (simulated) kubelet confirms the deletion
            elif node is not None and not is_terminating(pod) and node_name in self.not_ready_since:
                self._maybe_evict(pod, node, time.monotonic() - self.not_ready_since[node_name], factor)

    def _maybe_evict(self, pod: dict[str, Any], node: dict[str, Any], down_for: float, factor: float) -> None:
        """Evict once the pod's NoExecute toleration of the node's taint runs out."""
        seconds = toleration_seconds(pod, NOT_READY if node_ready(node) == "False" else UNREACHABLE)
        if seconds is None or down_for < seconds * factor:
            return
        self.event(pod, "TaintManagerEviction", f"Marking for deletion Pod {pod['metadata']['namespace']}/"
                                                f"{pod['metadata']['name']}", component="taint-eviction-controller")
        if node_ready(node) == "False":
            self.api.remove(self._rt("", "pods"), pod)
            return
        pod["metadata"]["deletionTimestamp"] = now_rfc3339()
        pod["metadata"]["deletionGracePeriodSeconds"] = pod["spec"].get("terminationGracePeriodSeconds", 30)
        self.touch(pod)

    # -- local-path provisioner ----------------------------------------------------------------
    def provision(self, pvc: dict[str, Any]) -> bool:
        """Bind a WaitForFirstConsumer claim once a node is selected. True when this handled the claim
        (including a missing class: the PV controller's ProvisioningFailed); False leaves an Immediate
        class's claim to the stand-in's simplified bind-at-once."""
        class_name = pvc["spec"].get("storageClassName")
        sc = self.storage_class(class_name)
        if sc is None and class_name:
            self.event(pvc, "ProvisioningFailed", f'storageclass.storage.k8s.io "{class_name}" not found',
                       "Warning", "persistentvolume-controller")
            return True
        if sc is None or sc.get("volumeBindingMode") != "WaitForFirstConsumer":
            return False
        node = (pvc["metadata"].get("annotations") or {}).get(SELECTED_NODE)
        if not node:
            self.event(pvc, "WaitForFirstConsumer", "waiting for first consumer to be created before binding",
                       component="persistentvolume-controller")
            return True
        modes = pvc["spec"].get("accessModes") or []
        if any(m not in ("ReadWriteOnce", "ReadWriteOncePod") for m in modes):
            self.event(pvc, "ProvisioningFailed",
                       f'failed to provision volume with StorageClass "{sc["metadata"]["name"]}": '
                       "NodePath only supports ReadWriteOnce and ReadWriteOncePod (1.22+) access modes",
                       "Warning", f"{PROVISIONER}_local-path-provisioner")
            return True
        self._create_volume(pvc, sc, node)
        return True

    def _create_volume(self, pvc: dict[str, Any], sc: dict[str, Any], node: str) -> None:
        pv_rt = self._rt("", "persistentvolumes")
        meta, spec = pvc["metadata"], pvc["spec"]
        name = f"pvc-{meta['uid']}"
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        pv = {"apiVersion": "v1", "kind": "PersistentVolume",
              "metadata": {"name": name, "annotations": {"local.path.provisioner/selected-node": node,
                                                         "pv.kubernetes.io/provisioned-by": PROVISIONER},
                           "finalizers": ["kubernetes.io/pv-protection"]},
              "spec": {"accessModes": list(spec.get("accessModes") or []), "capacity": {"storage": storage},
                       "hostPath": {"path": f"/var/lib/rancher/k3s/storage/{name}_{meta['namespace']}_{meta['name']}",
                                    "type": "DirectoryOrCreate"},
                       "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                           {"key": HOSTNAME, "operator": "In", "values": [node]}]}]}},
                       "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
                       "storageClassName": sc["metadata"]["name"], "volumeMode": spec.get("volumeMode", "Filesystem"),
                       "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": meta["name"],
                                    "namespace": meta["namespace"], "uid": meta["uid"]}},
              "status": {"phase": "Bound"}}
        if self.api.lookup(pv_rt, "", name) is None:
            status = pv.pop("status")
            prepared = self.api._prepare_create(pv_rt, pv, "")
            prepared["status"] = status
            self.api.store(pv_rt, prepared)
        annotations = meta.setdefault("annotations", {})
        annotations.update({"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes",
                            "volume.beta.kubernetes.io/storage-provisioner": PROVISIONER,
                            "volume.kubernetes.io/storage-provisioner": PROVISIONER})
        spec["volumeName"] = name
        pvc["status"] = {"phase": "Bound", "accessModes": list(spec.get("accessModes") or []),
                         "capacity": {"storage": storage}}
        self.touch(pvc)
        self.event(pvc, "ProvisioningSucceeded", f"Successfully provisioned volume {name}",
                   component=f"{PROVISIONER}_local-path-provisioner")


def _full_reference(image: str) -> str:
    """containerd's fully qualified reference: ``nginx:1`` -> ``docker.io/library/nginx:1``."""
    from ._kube_objects import normalize_image

    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{normalize_image(image)}"


def _comparable(status: Any) -> Any:
    """A pod status without the fields that change on every evaluation (times, ids, IPs)."""
    if not isinstance(status, dict):
        return status
    conditions = [(c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
                  for c in status.get("conditions") or []]
    containers = [(c.get("name"), c.get("ready"), sorted((c.get("state") or {}).keys()),
                   [(v or {}).get("reason") for v in (c.get("state") or {}).values()])
                  for c in status.get("containerStatuses") or []]
    return status.get("phase"), conditions, containers

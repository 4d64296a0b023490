"""Kubernetes API stand-in: Kubernetes 1.34 as a K3s v1.34 server serves it, in memory.

Serves legacy discovery (``/version``, ``/api``, ``/apis`` ...), CRUD at the real REST paths for
the kinds the collection touches (see :mod:`._kube_resources`), merge / strategic-merge / JSON
patch, server-side apply with field ownership (``metadata.managedFields``: :mod:`._kube_ssa`),
label and field selectors, metadata bookkeeping (uid, resourceVersion, generation), validation
against the 1.34 schemas and the HelmChartConfig CRD, and simulated controllers (Deployments ->
ReplicaSets with revisions and rollout conditions, DaemonSets, StatefulSets, Jobs, PVC binding)
evaluated lazily before every request.

Run stand-alone: ``python -m lab.standins.kube --port 6443 --token T``.
"""
from __future__ import annotations

import base64
from collections import deque
import ipaddress
import json
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from collections.abc import Iterator
from typing import Any, Callable

import yaml

from . import _k3s_addons
from . import _kube_resources as kres
from ._helmcontroller import HelmController
from ._kube_controllers import Controllers
from ._kube_objects import clone, not_found, now_rfc3339, pod_template_defaults, status
from ._kube_patch import PatchError, SchemaNode, json_patch, merge_patch, strategic_merge_patch
from ._kube_resources import ResourceType
from ._kube_select import SelectorError, field_matcher, label_matcher
from ._kube_ssa import Conflict, Manager, Path as FieldPath, apply as ssa_apply, read_managers, typed_error
from ._kube_ssa import update as ssa_update, write_managers
from ._kube_validate import (Problem, builtin_defs, builtin_schema, crd_document, validate_builtin,
                             validate_custom, validate_metadata, validate_semantics)
from ._server import Request, Response, StandIn

GIT_VERSION = "v1.34.1+k3s1"
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
CONTROLLER_TICK = 0.05  # seconds between two background passes of the controllers
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml")
_FIELD_SELECTABLE = {"pods": {"spec.nodeName", "status.phase", "spec.restartPolicy", "spec.schedulerName",
                              "spec.serviceAccountName", "status.podIP", "status.nominatedNodeName"},
                     "events": {"involvedObject.kind", "involvedObject.name", "involvedObject.namespace",
                                "involvedObject.uid", "involvedObject.apiVersion", "reason", "type",
                                "source", "reportingComponent"},
                     "secrets": {"type"}, "nodes": {"spec.unschedulable"},
                     "namespaces": {"status.phase"}, "jobs": {"status.successful"},
                     "replicasets": {"status.replicas"}}


class KubeError(Exception):
    """Raised inside the REST layer to answer with a Status document."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.body)
        self.response = response


class KubeStandIn(StandIn):
    """Kubernetes API stand-in (K3s v1.34): discovery, CRUD, patches, validation, controllers."""

    name = "kube"
    self_check = True  # check every object answer against the schema (tests assert no contract violation)

    def __init__(self, token: str = "test-token", port: int = 0, *, images: set[str] | None = None,
                 registry_url: str | None = None, rollout_seconds: float = 0.2,
                 deadline_factor: float = 0.01, nodes: int = 3, release: str | None = None,
                 disable: list[str] | tuple[str, ...] = ()) -> None:
        from lab.k3s._releases import PRODUCTION

        self.release = release or PRODUCTION  # the K3s release served (bundled CRDs, helm-controller, chart)
        self.disable = tuple(disable)  # K3s --disable components (``traefik``: no HelmChart seeded)
        self.configured_images = None if images is None else set(images)
        self.registry_url = registry_url
        self.rollout_seconds = rollout_seconds
        self.endpoint_delay = 1.0  # seconds from a pod's readiness change to its EndpointSlice
        self.deadline_factor = deadline_factor
        self.initial_nodes = nodes
        super().__init__(token=token, port=port)

    # -- state -------------------------------------------------------------------------------
    def _initial_state(self) -> None:
        self.objects: dict[ResourceType, dict[tuple[str, str], dict[str, Any]]] = {
            rt: {} for rt in kres.RESOURCES}
        self.revision = 100
        self.compacted = 100  # watches from an older resourceVersion get 410 Expired (etcd compaction)
        self.history: deque[tuple[int, ResourceType, str, dict[str, Any]]] = deque(maxlen=20000)
        self.images: set[str] | None = None if self.configured_images is None else set(self.configured_images)
        self.controllers = Controllers(self)
        self.helm = HelmController(self, self.release, self.disable)
        self._registry_answers: dict[str, tuple[bool, float]] = {}  # image -> (exists, when asked)
        self._next_ip = 10
        for ns in INITIAL_NAMESPACES:
            self._seed(self._rt("", "namespaces"), {"metadata": {"name": ns}})
        for i in range(1, self.initial_nodes + 1):
            self.register_node(f"k3s-node-{i}", [f"10.0.0.{10 + i}"])
        for group, kind in (("helm.cattle.io", "HelmChartConfig"),):
            crd = crd_document(group, kind, self.release)
            if crd:
                self._seed(self._rt("apiextensions.k8s.io", "customresourcedefinitions"), clone(crd))
        self.helm.seed()
        from lab.k3s._releases import release as release_entry

        for group, plural, obj in _k3s_addons.manifests(release_entry(self.release), self.disable):
            self._seed(self._rt(group, plural), obj, "kube-system")

    def start(self) -> "KubeStandIn":
        """Serve, and run the controllers every 50 ms as well (they progress without requests,
        as kube-controller-manager does: a rollout moves on while nobody asks)."""
        super().start()
        self._ticking = threading.Event()
        threading.Thread(target=self._tick, args=(self._ticking,), name="kube-controllers", daemon=True).start()
        return self

    def stop(self) -> None:
        ticking = getattr(self, "_ticking", None)
        if ticking is not None:
            ticking.set()
        super().stop()

    def _tick(self, stopped: threading.Event) -> None:
        while not stopped.wait(CONTROLLER_TICK):
            with self._lock:
                try:
                    self.controllers.reconcile()
                except Exception as exc:  # noqa: BLE001 - a controller bug must show, not stop the loop
                    self.contract_violations.append(f"controllers: {exc!r}")

    @staticmethod
    def _rt(group: str, plural: str) -> ResourceType:
        for rt in kres.RESOURCES:
            if rt.group == group and rt.plural == plural:
                return rt
        raise KeyError(plural)

    def compact(self) -> None:
        """Forget the history up to now, as an etcd compaction does (older watches get 410)."""
        with self._lock:
            self.compacted = self.revision

    def next_rv(self) -> str:
        """The next value of the global resourceVersion counter."""
        self.revision += 1
        return str(self.revision)

    def _seed(self, rt: ResourceType, obj: dict[str, Any], namespace: str = "") -> dict[str, Any]:
        obj.setdefault("apiVersion", rt.api_version)
        obj.setdefault("kind", rt.kind)
        if namespace:
            obj["metadata"]["namespace"] = namespace
        prepared = self._prepare_create(rt, obj, namespace)
        self._apply_defaults(rt, prepared, None)
        self.store(rt, prepared)
        if rt.plural == "namespaces":
            self._namespace_created(prepared["metadata"]["name"])
        return prepared

    def store(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Put an object in the store under (namespace, name)."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        self.history.append((self.revision, rt, "MODIFIED" if key in self.objects[rt] else "ADDED", clone(obj)))
        self.objects[rt][key] = obj

    def items(self, rt: ResourceType, namespace: str | None = None) -> list[dict[str, Any]]:
        """The stored objects of a type (optionally of one namespace), sorted like etcd keys."""
        return [o for (ns, _), o in sorted(self.objects[rt].items()) if namespace is None or ns == namespace]

    def lookup(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects[rt].get((namespace if rt.namespaced else "", name))

    def get_object(self, group: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A copy of a stored object after the controllers caught up (for tests and benchmarks)."""
        with self._lock:
            self.controllers.reconcile()
            found = self.lookup(self._rt(group, plural), namespace, name)
            return clone(found) if found is not None else None

    def register_node(self, name: str, addresses: list[str] | None = None,
                      labels: dict[str, str] | None = None, kubelet: str = "simulated") -> dict[str, Any]:
        """Register a Ready node (K3s agent) with internal IPs ``addresses``. ``kubelet="process"``:
        a real lab kubelet (lab/k3s/_kubelet.py) runs its pods, so the stand-in leaves their status alone."""
        node_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
                       "node.kubernetes.io/instance-type": "k3s", **(labels or {})}
        now = now_rfc3339()
        annotations = {"lab.honeydue/kubelet": kubelet} if kubelet != "simulated" else {}
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": node_labels,
                                                               **({"annotations": annotations} if annotations else {})},
                "spec": {"podCIDR": f"10.42.{len(self.objects[self._rt('', 'nodes')])}.0/24"},
                "status": {"addresses": [{"type": "InternalIP", "address": a} for a in addresses or []]
                           + [{"type": "Hostname", "address": name}],
                           "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                           "message": "kubelet is posting ready status",
                                           "lastHeartbeatTime": now, "lastTransitionTime": now}],
                           "nodeInfo": {"kubeletVersion": GIT_VERSION, "kubeProxyVersion": GIT_VERSION,
                                        "containerRuntimeVersion": "containerd://2.1.4-k3s1",
                                        "operatingSystem": "linux", "architecture": "amd64",
                                        "osImage": "Debian GNU/Linux 13 (trixie)", "kernelVersion": "6.12.0",
                                        "machineID": uuid.uuid4().hex, "systemUUID": str(uuid.uuid4()),
                                        "bootID": str(uuid.uuid4())},
                           "capacity": {"cpu": "2", "memory": "4012Mi", "pods": "110"},
                           "allocatable": {"cpu": "2", "memory": "4012Mi", "pods": "110"}}}
        rt = self._rt("", "nodes")
        node_status = node["status"]
        prepared = self._prepare_create(rt, node, "")
        prepared["status"] = node_status
        self.store(rt, prepared)
        return clone(prepared)

    def set_node_ready(self, name: str, state: str = "True") -> None:
        """Set a Node's Ready condition ("False": kubelet reports NotReady, "Unknown": it stopped
        posting, as the node lifecycle controller marks an unreachable node)."""
        from ._kube_pods import set_ready_condition

        with self._lock:
            set_ready_condition(self, name, state)

    def declare_images(self, images: list[str] | None) -> None:
        """Declare images as existing (``None``: every image exists)."""
        with self._lock:
            if images is None:
                self.images = None
            else:
                self.images = (self.images or set()) | set(images)

    def kubeconfig(self, path: str | Path) -> Path:
        """Write an ordinary kubeconfig for this stand-in and return its path."""
        path = Path(path)
        config = {"apiVersion": "v1", "kind": "Config", "current-context": "standin",
                  "clusters": [{"name": "standin", "cluster": {"server": self.url,
                                                               "insecure-skip-tls-verify": True}}],
                  "users": [{"name": "standin", "user": {"token": self.token}}],
                  "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "standin",
                                                               "namespace": "default"}}]}
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    # -- vendor answers ------------------------------------------------------------------------
    def auth_failure(self, req: Request) -> Response | None:
        if req.headers.get("authorization", "") == f"Bearer {self.token}":
            return None
        return status(401, "Unauthorized", "Unauthorized")

    def fault_response(self, kind: str) -> Response:
        if kind == "rate_limit":
            return status(429, "TooManyRequests", "Too many requests, please try again later.",
                          {"retryAfterSeconds": 1}, {"Retry-After": "1"})
        if kind == "server_error":
            return status(500, "InternalError", "Internal error occurred: etcdserver: request timed out",
                          {"causes": [{"message": "etcdserver: request timed out"}]})
        if kind in ("conflict", "locked"):
            return status(409, "Conflict", "Operation cannot be fulfilled: the object has been modified; "
                                           "please apply your changes to the latest version and try again",
                          {})
        raise ValueError(f"unknown fault kind {kind!r}")

    def control(self, req: Request, what: str) -> Response:
        body = req.body if isinstance(req.body, dict) else {}
        if req.method == "POST" and what == "images":
            self.declare_images(body.get("images"))
            return Response(204)
        if req.method == "GET" and what == "images":
            return Response(200, {"images": None if self.images is None else sorted(self.images)})
        if req.method == "POST" and what == "nodes":
            with self._lock:
                node = self.register_node(body["name"], body.get("addresses"), body.get("labels"))
            return Response(201, node)
        return super().control(req, what)

    def image_exists(self, image: str) -> bool:
        """Whether an image can be pulled: the declared set, or the configured registry."""
        from ._kube_objects import normalize_image

        if self.registry_url:
            known = self._registry_answers.get(image)
            if known is not None and (known[0] or time.monotonic() - known[1] < 1.0):
                return known[0]
            found = self._ask_registry(image)
            self._registry_answers[image] = (found, time.monotonic())
            return found
        if self.images is None:
            return True
        return normalize_image(image) in {normalize_image(i) for i in self.images}

    def _ask_registry(self, image: str) -> bool:
        """HEAD /v2/<name>/manifests/<reference> on the configured registry."""
        from ._kube_objects import split_image

        assert self.registry_url is not None
        repo, ref = split_image(image)
        accept = ", ".join(("application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
                            "application/vnd.docker.distribution.manifest.v2+json",
                            "application/vnd.docker.distribution.manifest.list.v2+json"))
        request = urllib.request.Request(f"{self.registry_url.rstrip('/')}/v2/{repo}/manifests/{ref}",
                                         method="HEAD", headers={"Accept": accept})
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:  # noqa: S310 - the lab registry
                return answer.status == 200
        except OSError:
            return False

    # -- dispatch ------------------------------------------------------------------------------
    def dispatch(self, req: Request) -> Response:
        self.controllers.reconcile()
        try:
            return self._route(req)
        except KubeError as err:
            return err.response
        finally:
            if req.method != "GET":
                self.controllers.reconcile()  # controllers notice writes at once (rollout clocks start)

    def _route(self, req: Request) -> Response:
        segs = [s for s in req.path.split("/") if s]
        if req.method == "GET" and segs == ["version"]:
            return Response(200, self._version())
        if segs[:2] == ["openapi", "v3"] and req.method == "GET":
            return self._openapi(segs[2:])
        if segs[:1] == ["api"] and len(segs) <= 2 and req.method == "GET":
            return self._core_discovery(segs)
        if segs[:1] == ["apis"] and len(segs) <= 3 and req.method == "GET":
            return self._group_discovery(segs)
        target = self._parse_target(segs)
        if target is None:
            return status(404, "NotFound", "the server could not find the requested resource", {})
        return self._rest(req, *target)

    def _openapi(self, rest: list[str]) -> Response:
        """``/openapi/v3`` and its per group-version documents (``_kube_openapi``)."""
        from . import _kube_openapi

        if not rest:
            return Response(200, _kube_openapi.root(kres.RESOURCES, self.release))
        doc = _kube_openapi.document(kres.RESOURCES, "/".join(rest), self.release)
        if doc is None:
            return status(404, "NotFound", "the server could not find the requested resource", {})
        return Response(200, doc)

    @staticmethod
    def _version() -> dict[str, str]:
        return {"major": "1", "minor": "34", "emulationMajor": "1", "emulationMinor": "34",
                "minCompatibilityMajor": "1", "minCompatibilityMinor": "33", "gitVersion": GIT_VERSION,
                "gitCommit": "3a1b7f8e0c5d4a6b9e2f1c0d8a7b6c5d4e3f2a1b", "gitTreeState": "clean",
                "buildDate": "2025-09-10T00:00:00Z", "goVersion": "go1.24.6", "compiler": "gc",
                "platform": "linux/amd64"}

    def _core_discovery(self, segs: list[str]) -> Response:
        if len(segs) == 1:
            return Response(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.11:6443"}]})
        doc = kres.resource_list("", segs[1])
        return Response(200, doc) if doc else status(404, "NotFound", "the server could not find the "
                                                                      "requested resource", {})

    def _group_discovery(self, segs: list[str]) -> Response:
        if len(segs) == 1:
            return Response(200, kres.api_group_list())
        if len(segs) == 2:
            if any(g == segs[1] for g, _ in kres.group_versions()):
                return Response(200, kres.api_group(segs[1]))
        else:
            doc = kres.resource_list(segs[1], segs[2])
            if doc:
                return Response(200, doc)
        return status(404, "NotFound", "the server could not find the requested resource", {})

    @staticmethod
    def _parse_target(segs: list[str]) -> tuple[ResourceType, str | None, str | None, str | None] | None:
        """(resource type, namespace, name, subresource) of a REST path, or None."""
        if segs[:1] == ["api"] and len(segs) >= 3:
            group, version, rest = "", segs[1], segs[2:]
        elif segs[:1] == ["apis"] and len(segs) >= 4:
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            return None
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            inner = kres.find(group, version, rest[2])
            if inner is not None and inner.namespaced:
                namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            return None
        rt = kres.find(group, version, rest[0])
        if rt is None:
            return None
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in rt.subresources:
            return None
        if namespace is not None and not rt.namespaced:
            return None
        return rt, namespace, name, sub

    def _rest(self, req: Request, rt: ResourceType, namespace: str | None, name: str | None,
              sub: str | None) -> Response:
        if rt.namespaced and name is not None and namespace is None:
            return status(404, "NotFound", "the server could not find the requested resource", {})
        if name is None:
            return self._collection(req, rt, namespace or "")
        handlers: dict[str, Callable[[], Response]] = {
            "GET": lambda: self._get(rt, namespace or "", name, sub),
            "PUT": lambda: self._replace(req, rt, namespace or "", name, sub),
            "PATCH": lambda: self._patch(req, rt, namespace or "", name, sub),
            "DELETE": lambda: self._delete(req, rt, namespace or "", name),
        }
        if rt.plural == "pods" and sub == "eviction" and req.method == "POST":
            return self._evict(req, namespace or "", name)
        if req.method not in handlers or (sub and req.method == "DELETE"):
            return self._method_not_allowed(req)
        return handlers[req.method]()

    def _collection(self, req: Request, rt: ResourceType, namespace: str) -> Response:
        if req.method == "GET":
            return self._list(req, rt, namespace)
        if req.method == "POST":
            return self._create(req, rt, namespace)
        if req.method == "DELETE":
            return self._delete_collection(req, rt, namespace)
        return self._method_not_allowed(req)

    @staticmethod
    def _method_not_allowed(req: Request) -> Response:
        return status(405, "MethodNotAllowed", f"the server does not allow this method ({req.method}) on the "
                                               f"requested resource", {})

    # -- reads -----------------------------------------------------------------------------------
    def _get(self, rt: ResourceType, namespace: str, name: str, sub: str | None) -> Response:
        obj = self.lookup(rt, namespace, name)
        if obj is None:
            return not_found(rt, name)
        if sub == "scale":
            return Response(200, self._scale_of(rt, obj))
        if sub == "log" and self.helm.pod_log(namespace, name) is not None:
            return Response(200, self.helm.pod_log(namespace, name), {"Content-Type": "text/plain"})
        if sub not in (None, "status"):
            return status(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                                                   "resource", {})
        return self._answer(200, obj)

    def _list(self, req: Request, rt: ResourceType, namespace: str) -> Response:
        try:
            by_label = label_matcher(req.q("labelSelector"))
            by_field = field_matcher(req.q("fieldSelector"),
                                     {"metadata.name", "metadata.namespace"} | _FIELD_SELECTABLE.get(rt.plural,
                                                                                                     set()))
        except SelectorError as err:
            return status(400, "BadRequest", str(err), {})
        found = [o for o in self.items(rt, namespace or None) if by_label(o) and by_field(o)]
        if req.q("watch") in ("1", "true"):
            return self._watch(req, rt, namespace, lambda o: by_label(o) and by_field(o))
        items, cont = self._page(req, found)
        meta: dict[str, Any] = {"resourceVersion": str(self.revision)}
        if cont:
            meta["continue"] = cont
            meta["remainingItemCount"] = len(found) - len(items) - int(
                base64.b64decode(req.q("continue") or "MA==").decode() or 0)
        keep_type = rt.custom
        out = [clone(o) if keep_type else {k: v for k, v in clone(o).items() if k not in ("kind", "apiVersion")}
               for o in items]
        return Response(200, {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta,
                              "items": out})

    def _watch(self, req: Request, rt: ResourceType, namespace: str,
               keep: Callable[[dict[str, Any]], bool]) -> Response:
        """A watch as kube-apiserver serves it (docs "Efficient detection of changes", "Resource
        versions"): ``resourceVersion`` unset or "0" starts with an ADDED event per object; a given
        one sends only what changed after it, or one ERROR event (410 Expired, ``too old resource
        version: <rv> (<oldest>)``) when it is older than the compacted history; the stream ends
        after ``timeoutSeconds``. Changes are found by resourceVersion, polled every 50 ms."""
        rv = req.q("resourceVersion") or ""
        timeout = float(req.q("timeoutSeconds") or 1800)
        if rv not in ("", "0") and (not rv.isdigit() or int(rv) < self.compacted):
            err = {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                               "status": "Failure", "reason": "Expired", "code": 410,
                                               "message": f"too old resource version: {rv} ({self.compacted + 1})"}}
            return Response(200, stream=lambda: iter([json.dumps(err).encode() + b"\n"]))
        since = int(rv) if rv.isdigit() and rv != "0" else None

        def view() -> dict[tuple[str, str], dict[str, Any]]:
            self.controllers.reconcile()
            return {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
                    for o in self.items(rt, namespace or None) if keep(o)}

        def events() -> Iterator[bytes]:
            with self._lock:
                cursor = self.revision
                now = view()
                known = {} if since is None else {
                    k: (o["metadata"]["resourceVersion"], clone(o)) for k, o in now.items()
                    if int(o["metadata"]["resourceVersion"]) <= since}
            deadline = time.monotonic() + timeout
            while True:
                out = []
                with self._lock:
                    now = view()
                    for at, hrt, kind, obj in list(self.history):
                        if at < cursor or hrt != rt or (namespace and obj["metadata"].get("namespace") != namespace):
                            continue
                        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                        if kind == "DELETED":
                            if key in known:
                                known.pop(key)
                                out.append({"type": "DELETED", "object": clone(obj)})
                        elif keep(obj) and known.get(key, ("",))[0] != obj["metadata"]["resourceVersion"]:
                            out.append({"type": "MODIFIED" if key in known else "ADDED", "object": clone(obj)})
                            known[key] = (obj["metadata"]["resourceVersion"], clone(obj))
                    cursor = self.revision + 1
                    for key, obj in now.items():
                        if known.get(key, ("",))[0] != obj["metadata"]["resourceVersion"]:
                            kind = "MODIFIED" if key in known or since is not None else "ADDED"
                            out.append({"type": kind, "object": clone(obj)})
                            known[key] = (obj["metadata"]["resourceVersion"], clone(obj))
                    for key in [k for k in known if k not in now]:
                        gone = known.pop(key)[1]
                        gone["metadata"]["resourceVersion"] = str(self.revision)
                        out.append({"type": "DELETED", "object": gone})
                if out:
                    yield b"".join(json.dumps(e).encode() + b"\n" for e in out)
                if time.monotonic() >= deadline:
                    return
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

        return Response(200, stream=events)

    @staticmethod
    def _page(req: Request, found: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
        start = int(base64.b64decode(req.q("continue") or "MA==").decode() or 0)
        limit = int(req.q("limit") or 0)
        if limit <= 0:
            return found[start:], None
        page = found[start:start + limit]
        more = start + limit < len(found)
        return page, base64.b64encode(str(start + limit).encode()).decode() if more else None

    def _answer(self, code: int, obj: dict[str, Any], warnings: list[str] | None = None) -> Response:
        """An object answer; built-in objects are checked against the schema (contract self-check)."""
        rt = kres.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        if self.self_check and rt is not None and not rt.custom:
            for problem in validate_builtin(obj):
                self.contract_violations.append(f"{obj['kind']} {obj['metadata'].get('name')}: "
                                                f"{problem.field}: {problem.message}")
        headers = {}
        if warnings:
            headers["Warning"] = ", ".join(f'299 - {json.dumps(w)}' for w in warnings)
        return Response(code, clone(obj), headers)

    def _scale_of(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        selector = (obj.get("spec") or {}).get("selector") or {}
        text = ",".join(f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items())
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                  "creationTimestamp") if k in meta},
                "spec": {"replicas": obj.get("spec", {}).get("replicas", 0)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": text}}

    # -- writes ----------------------------------------------------------------------------------
    def _body(self, req: Request) -> dict[str, Any]:
        if not isinstance(req.body, dict):
            raise KubeError(status(400, "BadRequest", "the object provided is unrecognized (must be of type "
                                                      "object)", {}))
        return clone(req.body)

    def _check_type(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        obj.setdefault("apiVersion", rt.api_version)
        obj.setdefault("kind", rt.kind)
        if (obj["apiVersion"], obj["kind"]) != (rt.api_version, rt.kind):
            raise KubeError(status(400, "BadRequest", f"the API version in the data ({obj['apiVersion']}) does "
                                                      f"not match the expected API version ({rt.api_version})"
                                   if obj["apiVersion"] != rt.api_version else
                                   f"{obj['kind']} in version \"{rt.version}\" cannot be handled as a "
                                   f"{rt.kind}: no kind \"{obj['kind']}\" is registered for version "
                                   f"\"{rt.api_version}\"", {}))
        if not isinstance(obj.get("metadata", {}), dict):
            raise KubeError(status(400, "BadRequest", f"{rt.kind} in version \"{rt.version}\" cannot be handled "
                                                      f"as a {rt.kind}: json: cannot unmarshal into Go struct "
                                                      f"field {rt.kind}.metadata of type v1.ObjectMeta", {}))
        obj.setdefault("metadata", {})

    def _require_namespace(self, rt: ResourceType, namespace: str, name: str = "") -> None:
        ns = self.lookup(self._rt("", "namespaces"), "", namespace) if rt.namespaced else None
        if rt.namespaced and ns is None:
            raise KubeError(status(404, "NotFound", f'namespaces "{namespace}" not found',
                                   {"name": namespace, "kind": "namespaces"}))
        if ns is not None and ns["metadata"].get("deletionTimestamp"):
            # kube-apiserver's NamespaceLifecycle admission
            raise KubeError(status(403, "Forbidden", f'{rt.qualified} "{name}" is forbidden: unable to create new '
                                                     f'content in namespace {namespace} because it is being terminated',
                                   {"name": name, "kind": rt.plural, "causes": [{
                                       "reason": "NamespaceTerminating", "field": "metadata.namespace",
                                       "message": f"namespace {namespace} is being terminated"}]}))

    def _prepare_create(self, rt: ResourceType, obj: dict[str, Any], namespace: str) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "deletionTimestamp",
                    "managedFields", "selfLink"):
            meta.pop(key, None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if rt.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        meta["uid"] = str(uuid.uuid4())
        meta["resourceVersion"] = self.next_rv()
        meta["creationTimestamp"] = now_rfc3339()
        if rt.has_generation:
            meta["generation"] = 1
        if "status" in rt.subresources or rt.custom:
            obj.pop("status", None)
        return obj

    def _create(self, req: Request, rt: ResourceType, namespace: str) -> Response:
        obj = self._body(req)
        self._check_type(rt, obj)
        body_ns = obj["metadata"].get("namespace")
        if rt.namespaced and body_ns and body_ns != namespace:
            return status(400, "BadRequest", "the namespace of the provided object does not match the "
                                             "namespace sent on the request", {})
        self._require_namespace(rt, namespace, obj["metadata"].get("name") or "")
        name = obj["metadata"].get("name")
        if name and self.lookup(rt, namespace, name) is not None:
            return status(409, "AlreadyExists", f'{rt.qualified} "{name}" already exists',
                          self._details(rt, name))
        sent = read_managers(obj["metadata"].get("managedFields"))
        obj = self._prepare_create(rt, obj, namespace)
        self._apply_defaults(rt, obj, None)
        warnings = self._admit(req, rt, obj)
        self._set_managers(obj, ssa_update(None, obj, self._ssa_node(rt), sent, self._field_manager(req),
                                           rt.api_version, now_rfc3339(), ignored=self._reset_fields(rt, obj, None)))
        return self._store_created(req, rt, obj, warnings)

    def _store_created(self, req: Request, rt: ResourceType, obj: dict[str, Any], warnings: list[str]) -> Response:
        """The end of every create (POST or an apply that creates): stored unless a dry run, 201."""
        if req.q("dryRun") != "All":
            self.store(rt, obj)
            if rt.plural == "namespaces":
                self._namespace_created(obj["metadata"]["name"])
        return self._answer(201, obj, warnings)

    @staticmethod
    def _details(rt: ResourceType, name: str) -> dict[str, Any]:
        details: dict[str, Any] = {"name": name, "kind": rt.plural}
        if rt.group:
            details["group"] = rt.group
        return details

    def _replace(self, req: Request, rt: ResourceType, namespace: str, name: str, sub: str | None) -> Response:
        old = self.lookup(rt, namespace, name)
        if old is None:
            return not_found(rt, name)
        obj = self._body(req)
        if sub == "scale":
            return self._write_scale(req, rt, old, obj)
        self._check_type(rt, obj)
        meta = obj["metadata"]
        if meta.get("name") != name:
            return status(400, "BadRequest", f"the name of the object ({meta.get('name')}) does not match the "
                                             f"name on the URL ({name})", {})
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            return self._conflict(rt, name)
        return self._update(req, rt, old, obj, sub)

    def _conflict(self, rt: ResourceType, name: str) -> Response:
        return status(409, "Conflict", f'Operation cannot be fulfilled on {rt.qualified} "{name}": the object '
                                       f'has been modified; please apply your changes to the latest version and '
                                       f'try again', self._details(rt, name))

    def _patch(self, req: Request, rt: ResourceType, namespace: str, name: str, sub: str | None) -> Response:
        kind = req.content_type
        if kind not in PATCH_TYPES or (kind == "application/strategic-merge-patch+json" and rt.custom):
            accepted = [t for t in PATCH_TYPES if not (rt.custom and "strategic" in t)]
            return status(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                                                       f"accepted media types include: {', '.join(accepted)}", {})
        if kind != "application/apply-patch+yaml" and req.q("force") is not None:
            return status(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be '
                                          'specified for non-apply patch', {})
        old = self.lookup(rt, namespace, name)
        if kind == "application/apply-patch+yaml":
            return self._apply(req, rt, namespace, name, old, sub)
        if old is None:
            return not_found(rt, name)
        base = self._scale_of(rt, old) if sub == "scale" else clone(old)
        patched = self._patched(req, rt, base, kind)
        if sub == "scale":
            return self._write_scale(req, rt, old, patched)
        rv = (patched.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            return self._conflict(rt, name)
        self._check_type(rt, patched)
        return self._update(req, rt, old, patched, sub)

    def _patched(self, req: Request, rt: ResourceType, base: dict[str, Any], kind: str) -> dict[str, Any]:
        try:
            patch = json.loads(req.raw_body or b"null")
        except ValueError as err:
            raise KubeError(status(400, "BadRequest", f"error decoding patch: {err}", {})) from err
        try:
            if kind == "application/json-patch+json":
                result = json_patch(base, patch)
            elif kind == "application/merge-patch+json":
                result = merge_patch(base, patch)
            else:
                result = strategic_merge_patch(base, patch, self._schema_node(rt, base))
        except PatchError as err:
            raise KubeError(status(422, "Invalid", f"the server rejected our request due to an error in our "
                                                   f"request: {err}", {})) from err
        if not isinstance(result, dict):
            raise KubeError(status(400, "BadRequest", "the patch must produce an object", {}))
        return result

    @staticmethod
    def _schema_node(rt: ResourceType, base: dict[str, Any]) -> SchemaNode:
        if base.get("kind") == "Scale":
            return SchemaNode(None)
        return SchemaNode(builtin_schema(rt.kind, rt.api_version), builtin_defs())

    def _apply(self, req: Request, rt: ResourceType, namespace: str, name: str,
               old: dict[str, Any] | None, sub: str | None = None) -> Response:
        """Server-side apply (``application/apply-patch+yaml``) with field ownership, as
        ``applyPatcher`` + the field manager do it: create or merge, prune what this manager no
        longer applies, 409 on fields other managers own with another value unless ``force``."""
        if not req.q("fieldManager"):
            return status(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                          'is required for apply patch', {})
        applied = self._applied_configuration(req, rt)
        node = self._ssa_node(rt)
        problem = self._typed_patch_error(rt, applied, node, namespace, name)
        if problem is not None:
            return problem
        if sub is not None and old is None:
            return not_found(rt, name)
        live = old if old is not None else {}
        try:
            result = ssa_apply(live, applied, node, read_managers(live.get("metadata", {}).get("managedFields")),
                               req.q("fieldManager") or "", rt.api_version, self._flag(req.q("force")),
                               self._reset_fields(rt, {**live, **applied}, sub), sub or "")
        except Conflict as conflict:
            return status(409, "Conflict", conflict.message(), {"causes": conflict.causes()})
        if old is not None:
            return self._update(req, rt, old, result.obj, sub, result.mine, result.managers)
        self._require_namespace(rt, namespace, name)
        obj = result.obj
        obj["metadata"]["name"] = name
        obj = self._prepare_create(rt, obj, namespace)
        self._apply_defaults(rt, obj, None)
        warnings = self._admit(req, rt, obj)
        result.mine.time = now_rfc3339()
        self._set_managers(obj, result.managers)
        return self._store_created(req, rt, obj, warnings)

    @staticmethod
    def _flag(text: str | None) -> bool:
        """A boolean query parameter as Go's ``strconv.ParseBool`` reads it (``True`` from Python)."""
        return (text or "") in ("1", "t", "T", "true", "TRUE", "True")

    def _applied_configuration(self, req: Request, rt: ResourceType) -> dict[str, Any]:
        """The decoded apply patch; the apiVersion must be the endpoint's, then ``metadata.managedFields``
        must be nil (structuredmerge.go ``Apply``: both BadRequest, in that order)."""
        try:
            applied = yaml.safe_load(req.raw_body or b"") or {}
        except yaml.YAMLError as err:
            raise KubeError(status(400, "BadRequest", f"error decoding YAML: {err}", {})) from err
        if not isinstance(applied, dict):
            raise KubeError(status(400, "BadRequest", "the applied configuration must be an object", {}))
        version = applied.get("apiVersion")
        if isinstance(version, str) and version != rt.api_version:
            raise KubeError(status(400, "BadRequest", f"Incorrect version specified in apply patch. Specified "
                                                      f"patch version: {version}, expected: {rt.api_version}", {}))
        if isinstance(applied.get("metadata"), dict) and applied["metadata"].get("managedFields") is not None:
            raise KubeError(status(400, "BadRequest", "metadata.managedFields must be nil", {}))
        self._check_type(rt, applied)
        return applied

    @staticmethod
    def _typed_patch_error(rt: ResourceType, applied: dict[str, Any], node: SchemaNode, namespace: str,
                           name: str) -> Response | None:
        """An undeclared field (or a list element without its key) makes the typed conversion of the
        apply patch fail. kube-apiserver 1.34
        answers 500 with no reason (a plain error, kubernetes/kubernetes#122480, #139253):
        ``failed to create typed patch object (ns/name; apps/v1, Kind=Deployment): .spec.foo: field
        not declared in schema``."""
        if rt.custom:
            return None
        found = typed_error(applied, node)
        if found is None:
            return None
        meta = applied.get("metadata") or {}
        gvk = f"{rt.group}/{rt.version}, Kind={rt.kind}"
        where = f"{meta.get('namespace', namespace)}/{meta.get('name', name)}; {gvk}"
        answer = status(500, "", f"failed to create typed patch object ({where}): {found}")
        answer.body.pop("reason", None)
        return answer

    def _write_scale(self, req: Request, rt: ResourceType, old: dict[str, Any], scale: dict[str, Any]) -> Response:
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            return status(422, "Invalid", f'Scale.autoscaling "{old["metadata"]["name"]}" is invalid: '
                                          f'spec.replicas: Invalid value: {json.dumps(replicas)}: must be greater '
                                          f'than or equal to 0', {})
        obj = clone(old)
        obj["spec"]["replicas"] = replicas
        response = self._update(req, rt, old, obj, "scale")
        if response.status != 200:
            return response
        return Response(200, self._scale_of(rt, self.lookup(rt, old["metadata"].get("namespace", ""),
                                                            old["metadata"]["name"]) or obj))

    def _update(self, req: Request, rt: ResourceType, old: dict[str, Any], new: dict[str, Any],
                sub: str | None, applied: Manager | None = None,
                managers: list[Manager] | None = None) -> Response:
        """Common path of PUT, PATCH and apply: carry immutable metadata, split status, record field
        ownership (an ``Update`` entry, or the apply's managers), bump counters."""
        if sub == "status":
            obj = clone(old)
            obj["status"] = new.get("status")
            if obj["status"] is None:
                obj.pop("status")
        else:
            obj = new
            if "status" in rt.subresources:
                if "status" in old:
                    obj["status"] = clone(old["status"])
                else:
                    obj.pop("status", None)
        meta = obj.setdefault("metadata", {})
        for key in ("uid", "creationTimestamp", "name", "namespace", "generation", "resourceVersion"):
            if key in old["metadata"]:
                meta[key] = old["metadata"][key]
            else:
                meta.pop(key, None)
        self._apply_defaults(rt, obj, old)
        if self._spec_changed(rt, old, obj):
            meta["generation"] = int(old["metadata"].get("generation", 0)) + 1
        warnings = self._admit(req, rt, obj)  # unknown fields go before the field manager sees them
        self._own(req, rt, old, obj, new, sub, applied, managers)
        if obj == old:
            return self._answer(200, old, warnings)
        meta["resourceVersion"] = self.next_rv()
        if req.q("dryRun") != "All":
            self.store(rt, obj)
        return self._answer(200, obj, warnings)

    def _own(self, req: Request, rt: ResourceType, old: dict[str, Any], obj: dict[str, Any],
             sent: dict[str, Any], sub: str | None, applied: Manager | None,
             managers: list[Manager] | None) -> None:
        """Set ``metadata.managedFields`` of an object about to replace ``old``.

        An apply brings its managers; its entry's time moves only when the object changed (the
        apiserver leaves a no-op apply alone: same resourceVersion, same time). Any other write is
        an ``Update`` by ``fieldManager`` (default: the user-agent prefix); managedFields the client
        sent replace the live ones when non-empty (fieldmanager.go ``Update``; ``[{}]`` clears
        them), else the live ones are kept (clients unaware of them cannot drop them)."""
        if managers is None:
            given = (sent.get("metadata") or {}).get("managedFields") if sub is None else None
            base = read_managers(given if isinstance(given, list) and given
                                 else old["metadata"].get("managedFields"))
            managers = ssa_update(old, obj, self._ssa_node(rt), base, self._field_manager(req), rt.api_version,
                                  now_rfc3339(), sub if sub in ("status", "scale") else "",
                                  self._reset_fields(rt, obj, sub))
        elif applied is not None and self._differs(old, obj):
            applied.time = now_rfc3339()
        self._set_managers(obj, managers)

    @staticmethod
    def _differs(old: dict[str, Any], new: dict[str, Any]) -> bool:
        """Whether a write changes anything but the bookkeeping metadata."""
        skip = ("managedFields", "resourceVersion", "generation")
        return ({**old, "metadata": {k: v for k, v in old["metadata"].items() if k not in skip}}
                != {**new, "metadata": {k: v for k, v in new["metadata"].items() if k not in skip}})

    @staticmethod
    def _set_managers(obj: dict[str, Any], managers: list[Manager]) -> None:
        entries = write_managers(managers)
        if entries:
            obj["metadata"]["managedFields"] = entries
        else:
            obj["metadata"].pop("managedFields", None)

    @staticmethod
    def _field_manager(req: Request) -> str:
        """``fieldManager``, else the user-agent up to its first ``/`` (printable characters, at most
        128: ``prefixFromUserAgent``), e.g. ``OpenAPI-Generator`` for the Python client."""
        manager = req.q("fieldManager")
        if manager:
            return manager
        agent = req.headers.get("user-agent", "").split("/")[0]
        return "".join(c for c in agent if c.isprintable())[:128]

    def _ssa_node(self, rt: ResourceType) -> SchemaNode:
        return SchemaNode(None) if rt.custom else self._schema_node(rt, {})

    @staticmethod
    def _reset_fields(rt: ResourceType, obj: dict[str, Any], sub: str | None) -> tuple[FieldPath, ...]:
        """Fields a write cannot own (``ResetFieldsFor``): ``status`` through the main resource of a
        kind with a status subresource, everything but ``status`` through ``/status``."""
        if sub == "status":
            return tuple(("f:" + k,) for k in obj if k != "status")
        return (("f:status",),) if "status" in rt.subresources else ()

    @staticmethod
    def _spec_changed(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> bool:
        if not rt.has_generation:
            return False
        if rt.custom:
            strip = ("metadata", "status")
            return {k: v for k, v in old.items() if k not in strip} != {k: v for k, v in new.items()
                                                                        if k not in strip}
        return old.get("spec") != new.get("spec")

    def _admit(self, req: Request, rt: ResourceType, obj: dict[str, Any]) -> list[str]:
        """Validate an object about to be stored; raise KubeError with the server's answer if it is not."""
        problems = validate_metadata(obj, rt)
        if not problems:
            problems = validate_custom(obj, rt, self.release) if rt.custom else validate_builtin(obj)
        decode = [p for p in problems if p.category == "decode"]
        if decode:
            raise KubeError(status(400, "BadRequest", f'{rt.kind} in version "{rt.version}" cannot be handled as '
                                                      f'a {rt.kind}: {decode[0].message}', {}))
        unknown = [p for p in problems if p.category == "unknown"]
        strict = (req.q("fieldValidation") or "").lower() == "strict"
        if unknown and strict:
            listing = ", ".join(f'unknown field "{p.field}"' for p in unknown)
            raise KubeError(status(400, "BadRequest", f'{rt.kind} in version "{rt.version}" cannot be handled as '
                                                      f'a {rt.kind}: strict decoding error: {listing}', {}))
        for problem in unknown:
            self._prune(obj, problem.path)
        invalid = [p for p in problems if p.category == "invalid"] or validate_semantics(obj, rt)
        if invalid:
            raise KubeError(self._invalid(rt, obj, invalid))
        if (req.q("fieldValidation") or "").lower() == "ignore":
            return []
        return [f'unknown field "{p.field}"' for p in unknown]

    @staticmethod
    def _prune(obj: Any, path: tuple[Any, ...]) -> None:
        for part in path[:-1]:
            obj = obj[part]
        if isinstance(obj, dict):
            obj.pop(path[-1], None)

    @staticmethod
    def _invalid(rt: ResourceType, obj: dict[str, Any], problems: list[Problem]) -> Response:
        name = (obj.get("metadata") or {}).get("name", "")
        qualified = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
        parts = [f"{p.field}: {p.message}" for p in problems]
        message = f'{qualified} "{name}" is invalid: ' + (parts[0] if len(parts) == 1 else f"[{', '.join(parts)}]")
        causes = [{"reason": p.reason, "message": p.message, "field": p.field} for p in problems]
        details: dict[str, Any] = {"name": name, "kind": rt.kind, "causes": causes}
        if rt.group:
            details["group"] = rt.group
        return status(422, "Invalid", message, details)

    # -- delete ----------------------------------------------------------------------------------
    def _delete(self, req: Request, rt: ResourceType, namespace: str, name: str) -> Response:
        obj = self.lookup(rt, namespace, name)
        if obj is None:
            return not_found(rt, name)
        options = req.body if isinstance(req.body, dict) else {}
        policy = req.q("propagationPolicy") or options.get("propagationPolicy") or "Background"
        precondition = (options.get("preconditions") or {}).get("resourceVersion")
        if precondition and precondition != obj["metadata"]["resourceVersion"]:
            return self._conflict(rt, name)
        uid = (options.get("preconditions") or {}).get("uid")
        if uid and uid != obj["metadata"].get("uid"):
            return status(409, "Conflict", f'Operation cannot be fulfilled on {rt.qualified} "{name}": Precondition '
                                           f'failed: UID in precondition: {uid}, UID in object meta: '
                                           f'{obj["metadata"].get("uid")}', self._details(rt, name))
        if req.q("dryRun") == "All":
            return self._answer(200, obj)
        if rt.plural == "namespaces":
            return self._terminate_namespace(rt, obj)
        if rt.plural == "pods":
            grace = req.q("gracePeriodSeconds")
            grace = options.get("gracePeriodSeconds") if grace is None else int(grace)
            kept = self.controllers.pod_loop.delete(obj, grace)
            if kept is not None:
                return self._answer(200, kept)
        else:
            self.remove(rt, obj, orphan=policy == "Orphan")
        if rt.plural == "pods":
            gone = clone(obj)
            gone["metadata"]["deletionTimestamp"] = now_rfc3339()
            return self._answer(200, gone)
        return status(200, "Success", "", {**self._details(rt, name), "uid": obj["metadata"]["uid"]})

    def _evict(self, req: Request, namespace: str, name: str) -> Response:
        """The Eviction API (``POST pods/<name>/eviction``, policy/v1), as ``kubectl drain`` uses it.

        kube-apiserver's rules (pkg/registry/core/pod/storage/eviction.go, "API-initiated eviction"
        docs): a pod covered by more than one PodDisruptionBudget is refused (500); one whose budget
        allows no disruption is refused with 429 TooManyRequests and the cause ``DisruptionBudget``
        (kubectl drain retries every 5 s); a pod that is not Ready may go while the budget is met
        (unhealthyPodEvictionPolicy IfHealthyBudget); otherwise the pod is deleted gracefully, as a
        DELETE with the Eviction's deleteOptions. disruptionsAllowed is computed at the request
        (the disruption controller's formula: currentHealthy - desiredHealthy; minAvailable or
        maxUnavailable, integers or percentages of the pods the selector covers)."""
        from ._kube_select import match_label_selector_object

        pods_rt = self._rt("", "pods")
        pod = self.lookup(pods_rt, namespace, name)
        if pod is None:
            return not_found(pods_rt, name)
        body = req.body if isinstance(req.body, dict) else {}
        if body.get("kind") not in (None, "Eviction"):
            return status(400, "BadRequest", f"expected Eviction, got {body.get('kind')}", {})
        labels = pod["metadata"].get("labels") or {}
        budgets = [b for b in self.items(self._rt("policy", "poddisruptionbudgets"), namespace)
                   if match_label_selector_object(b["spec"].get("selector") or {}, labels)]
        if len(budgets) > 1:
            return status(500, "InternalError", "This pod has more than one PodDisruptionBudget, which the "
                                                "eviction subresource does not support.", {})
        terminating = bool(pod["metadata"].get("deletionTimestamp"))

        def ready(p: dict[str, Any]) -> bool:
            conds = (p.get("status") or {}).get("conditions") or []
            return not p["metadata"].get("deletionTimestamp") and any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
        if budgets and not terminating:
            spec = budgets[0]["spec"]
            covered = [p for p in self.items(pods_rt, namespace)
                       if match_label_selector_object(spec.get("selector") or {}, p["metadata"].get("labels") or {})
                       and not p["metadata"].get("deletionTimestamp")]
            expected, healthy = len(covered), sum(1 for p in covered if ready(p))

            def amount(value: Any) -> int:
                if isinstance(value, str) and value.endswith("%"):
                    return -(-int(value[:-1]) * expected // 100)  # rounded up, as intstr.GetScaledValueFromIntOrPercent
                return int(value)
            if spec.get("minAvailable") is not None:
                desired = amount(spec["minAvailable"])
            elif spec.get("maxUnavailable") is not None:
                desired = max(0, expected - amount(spec["maxUnavailable"]))
            else:
                desired = expected
            allowed = healthy - desired
            if ready(pod) and allowed <= 0:
                return Response(429, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                      "message": "Cannot evict pod as it would violate the pod's disruption budget.",
                                      "reason": "TooManyRequests", "code": 429,
                                      "details": {"causes": [{"reason": "DisruptionBudget", "message":
                                                              f"The disruption budget {budgets[0]['metadata']['name']} "
                                                              f"needs {desired} healthy pods and has {healthy} currently"}]}})
            if not ready(pod) and healthy < desired:
                return Response(429, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                      "message": "Cannot evict pod as it would violate the pod's disruption budget.",
                                      "reason": "TooManyRequests", "code": 429, "details": {"causes": [
                                          {"reason": "DisruptionBudget", "message": "the budget is not met"}]}})
        if req.q("dryRun") == "All":
            return Response(201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
        options = body.get("deleteOptions") or {}
        self.controllers.pod_loop.delete(pod, options.get("gracePeriodSeconds"))  # graceful, or gone at once
        return Response(201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})

    def _terminate_namespace(self, rt: ResourceType, ns: dict[str, Any]) -> Response:
        """A namespace is not removed at once: it turns Terminating (deletionTimestamp, phase) and the
        namespace controller deletes its content (pods gracefully), then drops the ``kubernetes``
        finalizer and the namespace goes. The four system namespaces may not be deleted."""
        name = ns["metadata"]["name"]
        if name in INITIAL_NAMESPACES:
            return status(403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                          self._details(rt, name))
        if not ns["metadata"].get("deletionTimestamp"):
            ns["metadata"]["deletionTimestamp"] = now_rfc3339()
            ns.setdefault("status", {})["phase"] = "Terminating"
            ns["metadata"]["resourceVersion"] = self.next_rv()
            self.store(rt, ns)
        return self._answer(200, ns)

    def _delete_collection(self, req: Request, rt: ResourceType, namespace: str) -> Response:
        listing = self._list(req, rt, namespace)
        if listing.status != 200:
            return listing
        for item in listing.body["items"]:
            obj = self.lookup(rt, namespace, item["metadata"]["name"])
            if obj is not None:
                self.remove(rt, obj)
        return Response(200, listing.body)

    def remove(self, rt: ResourceType, obj: dict[str, Any], orphan: bool = False) -> None:
        """Delete an object; its dependents (ownerReferences) and a namespace's contents go with it."""
        meta = obj["metadata"]
        self.objects[rt].pop((meta.get("namespace", ""), meta["name"]), None)
        self.revision += 1
        self.history.append((self.revision, rt, "DELETED", clone(obj)))
        if rt.plural == "namespaces":
            for other in kres.RESOURCES:
                if other.namespaced:
                    for key in [k for k in self.objects[other] if k[0] == meta["name"]]:
                        del self.objects[other][key]
            return
        if orphan:
            return
        uid = meta["uid"]
        for other in kres.RESOURCES:
            for dependent in list(self.objects[other].values()):
                refs = dependent["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs):
                    self.remove(other, dependent)

    # -- defaults --------------------------------------------------------------------------------
    def _apply_defaults(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else None
        kind = rt.kind
        if kind == "Namespace":
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"].get("name")
            obj["status"] = (old or {}).get("status") or {"phase": "Active"}
        elif kind == "Secret":
            self._secret_defaults(obj)
        elif kind == "Service" and spec is not None:
            self._service_defaults(obj, old)
        elif kind == "PersistentVolumeClaim" and spec is not None:
            spec.setdefault("volumeMode", "Filesystem")
            spec.setdefault("storageClassName", "local-path")
            if old is None:
                obj["status"] = {"phase": "Pending"}
        elif spec is not None and rt.group in ("apps", "batch"):
            self._workload_defaults(kind, obj, spec)
        elif kind == "Pod" and spec is not None and old is None:
            from ._kube_pods import pod_defaults
            pod_defaults(spec)

    @staticmethod
    def _secret_defaults(obj: dict[str, Any]) -> None:
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()

    def _service_defaults(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        spec = obj["spec"]
        kind = spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        old_spec = (old or {}).get("spec") or {}
        if kind != "ExternalName":
            ip = spec.get("clusterIP") or old_spec.get("clusterIP") or self._allocate_ip()
            spec["clusterIP"] = ip
            spec.setdefault("clusterIPs", [ip] if ip != "None" else ["None"])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        old_ports = {p.get("port"): p for p in old_spec.get("ports") or []}
        for port in spec.get("ports") or []:
            if not isinstance(port, dict):
                continue
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
            if kind in ("NodePort", "LoadBalancer") and "nodePort" not in port:
                port["nodePort"] = old_ports.get(port.get("port"), {}).get("nodePort") or 30000 + (
                    int(uuid.uuid4().int % 2767))
        if kind in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if kind == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        if old is None:
            obj["status"] = {"loadBalancer": {}}

    def _allocate_ip(self) -> str:
        self._next_ip += 1
        return str(ipaddress.ip_address("10.43.0.0") + self._next_ip)

    @staticmethod
    def _workload_defaults(kind: str, obj: dict[str, Any], spec: dict[str, Any]) -> None:
        if kind in ("Deployment", "ReplicaSet", "StatefulSet"):
            spec.setdefault("replicas", 1)
        if kind in ("Deployment", "DaemonSet", "StatefulSet"):
            spec.setdefault("revisionHistoryLimit", 10)
        if kind == "Deployment":
            spec.setdefault("progressDeadlineSeconds", 600)
            strategy = spec.setdefault("strategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                strategy.setdefault("rollingUpdate", {}).setdefault("maxUnavailable", "25%")
                strategy["rollingUpdate"].setdefault("maxSurge", "25%")
        elif kind == "DaemonSet":
            strategy = spec.setdefault("updateStrategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                strategy.setdefault("rollingUpdate", {}).setdefault("maxUnavailable", 1)
                strategy["rollingUpdate"].setdefault("maxSurge", 0)
        elif kind == "StatefulSet":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            strategy = spec.setdefault("updateStrategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
            spec.setdefault("persistentVolumeClaimRetentionPolicy",
                            {"whenDeleted": "Retain", "whenScaled": "Retain"})
        elif kind == "Job":
            KubeStandIn._job_defaults(obj, spec)
        if isinstance(spec.get("template"), dict):
            pod_template_defaults(spec["template"], "Never" if kind == "Job" else "Always")

    @staticmethod
    def _job_defaults(obj: dict[str, Any], spec: dict[str, Any]) -> None:
        for key, value in (("completions", 1), ("parallelism", 1), ("backoffLimit", 6),
                           ("completionMode", "NonIndexed"), ("suspend", False),
                           ("podReplacementPolicy", "TerminatingOrFailed"), ("manualSelector", None)):
            if value is not None:
                spec.setdefault(key, value)
        uid = obj["metadata"]["uid"]
        if not spec.get("manualSelector"):
            spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
            labels = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {})
            labels.setdefault("batch.kubernetes.io/controller-uid", uid)
            labels.setdefault("batch.kubernetes.io/job-name", obj["metadata"]["name"])
            labels.setdefault("controller-uid", uid)
            labels.setdefault("job-name", obj["metadata"]["name"])

    def _namespace_created(self, namespace: str) -> None:
        """What a real cluster adds to a new namespace: the default ServiceAccount and the root CA."""
        for plural, obj in (("serviceaccounts", {"metadata": {"name": "default"}}),
                            ("configmaps", {"metadata": {"name": "kube-root-ca.crt", "annotations": {
                                "kubernetes.io/description": "Contains a CA bundle that can be used to verify "
                                                             "the kube-apiserver when using internal endpoints "
                                                             "such as the internal service IP or "
                                                             "kubernetes.default.svc. No other usage is "
                                                             "guaranteed across distributions of Kubernetes "
                                                             "clusters."}},
                                            "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n"
                                                               "-----END CERTIFICATE-----\n"}})):
            rt = self._rt("", plural)
            obj = {"apiVersion": "v1", "kind": rt.kind, **obj}
            self.store(rt, self._prepare_create(rt, obj, namespace))


def main() -> None:
    """Command line entry point."""
    KubeStandIn.main()


if __name__ == "__main__":
    main()

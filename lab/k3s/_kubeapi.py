"""The Kubernetes API of a K3s server, served from the cluster's etcd (so every server answers alike).

Objects are kept where kube-apiserver keeps them (``/registry/minions/<node>``,
``/registry/leases/<ns>/<name>``; JSON here, protobuf in Kubernetes); ``resourceVersion`` is the
etcd mod revision. Without quorum a request waits for etcd and fails as kube-apiserver does:
``etcdserver: request timed out`` (500 for writes, 504 for reads).

Per server: the Node object with K3s's labels and annotations (registered at start), its Lease
renewed every ``K3S_STANDIN_LEASE_INTERVAL`` s (kubelet: 10 s). Once per cluster, on the holder of
the ``kube-system/kube-controller-manager`` Lease: the node lifecycle controller (Ready becomes
Unknown when a node's Lease is older than ``K3S_STANDIN_NODE_MONITOR_GRACE`` s; Kubernetes: 50 s;
each node's kubelet sets Ready back to True)
and K3s's etcd member controller (``etcd.k3s.cattle.io/remove=true`` or a Node deletion removes the
etcd member, refused when it would lose quorum).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ._etcdclient import EtcdError

if TYPE_CHECKING:
    from .server import Server

FINALIZER = "wrangler.cattle.io/managed-etcd-controller"
REMOVE = "etcd.k3s.cattle.io/remove"
REMOVED_NAME = "etcd.k3s.cattle.io/removed-node-name"
NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
JSON = "application/json"


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> float:
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    return 0.0


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
           "reason": reason, "code": code}
    if details:
        out["details"] = details
    return out


def merge_patch(base: Any, patch: Any) -> Any:
    """RFC 7386 (what kubectl annotate/label send as a merge or strategic-merge patch on metadata)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(base) if isinstance(base, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def age(ts: str) -> str:
    secs = int(time.time() - parse_time(ts)) if ts else 0
    if secs < 120:
        return f"{secs}s"
    if secs < 3600 * 3:
        return f"{secs // 60}m"
    return f"{secs // 3600}h" if secs < 86400 * 2 else f"{secs // 86400}d"


def node_table(doc: dict[str, Any]) -> dict[str, Any]:
    """The Table kube-apiserver answers kubectl's ``as=Table`` requests for nodes with (its printer columns)."""
    items = doc["items"] if doc.get("kind") == "NodeList" else [doc]
    rows = []
    for node in items:
        meta, st = node["metadata"], node.get("status", {})
        ready = KubeAPI._condition(node, "Ready")
        state = {"True": "Ready", "": "Unknown"}.get(ready, "NotReady")
        if node.get("spec", {}).get("unschedulable"):
            state += ",SchedulingDisabled"
        roles = sorted(k.split("/", 1)[1] for k in meta.get("labels", {}) if k.startswith("node-role.kubernetes.io/"))
        internal = next((a["address"] for a in st.get("addresses", []) if a["type"] == "InternalIP"), "<none>")
        info = st.get("nodeInfo", {})
        rows.append({"cells": [meta["name"], state, ",".join(roles) or "<none>", age(meta.get("creationTimestamp", "")),
                               info.get("kubeletVersion", ""), internal, "<none>", info.get("osImage", "<unknown>"),
                               info.get("kernelVersion", "<unknown>"), info.get("containerRuntimeVersion", "")],
                     "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}})
    cols = [("Name", 0), ("Status", 0), ("Roles", 0), ("Age", 0), ("Version", 0), ("Internal-IP", 1),
            ("External-IP", 1), ("OS-Image", 1), ("Kernel-Version", 1), ("Container-Runtime", 1)]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": doc.get("metadata", {}).get("resourceVersion", "")},
            "columnDefinitions": [{"name": n, "type": "date" if n == "Age" else "string", "format": "name" if n == "Name" else "",
                                   "description": n, "priority": p} for n, p in cols],
            "rows": rows}


class _GatewayOf:
    """The server's etcd gateway as it is now (the server replaces it when etcd restarts)."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.server.gateway.call(path, body)


class KubeAPI:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.lease_interval = float(os.environ.get("K3S_STANDIN_LEASE_INTERVAL", "10"))
        self.grace = float(os.environ.get("K3S_STANDIN_NODE_MONITOR_GRACE", "50"))
        self.stop_event = threading.Event()
        self.identity = f"{server.node_name}_{uuid.uuid4()}"
        self.leading = False  # this server holds kube-system/kube-controller-manager
        self.workloads = None  # _kubeetcd.EtcdKube: every kind but Nodes and Leases (started by start())
        self.kubelet = os.environ.get("K3S_STANDIN_KUBELET", "process")  # "process": the lab kubelet runs pods
        self.lost_writes = ""  # the node loop's writes whose compare failed last round (logged on change)

    @property
    def etcd(self):  # noqa: ANN201 - the server's Gateway
        return self.server.gateway

    # -- storage -----------------------------------------------------------------------------
    def _get(self, key: str) -> tuple[dict[str, Any] | None, int]:
        found = self.etcd.get(key)
        if not found:
            return None, 0
        obj = json.loads(found[0]["value"])
        obj.setdefault("metadata", {})["resourceVersion"] = str(found[0]["mod_revision"])
        return obj, found[0]["mod_revision"]

    def _list(self, prefix: str) -> list[dict[str, Any]]:
        out = []
        for kv in self.etcd.get(prefix, prefix=True):
            obj = json.loads(kv["value"])
            obj.setdefault("metadata", {})["resourceVersion"] = str(kv["mod_revision"])
            out.append(obj)
        return out

    def _put(self, key: str, obj: dict[str, Any], rev: int | None) -> bool:
        body = dict(obj)
        body["metadata"] = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
        data = json.dumps(body, sort_keys=True)
        if rev is None:
            self.etcd.put(key, data)
            return True
        return self.etcd.create(key, data) if rev == 0 else self.etcd.update(key, data, rev)

    # -- the API ------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], raw: bytes,
               subject: dict[str, str]) -> tuple[int, Any, str] | tuple[int, Any, str, dict[str, str]]:
        if self.workloads is not None and path not in ("/version", "/livez", "/readyz", "/healthz") \
                and self.workloads.serves(path):
            return self._workloads(method, path, query, headers, raw)
        try:
            code, body, ctype = self._route(method, path, raw, query)
        except EtcdError as exc:
            code, reason = (500, "InternalError") if method != "GET" else (504, "Timeout")
            return code, status(code, reason, exc.message), JSON
        accept = headers.get("Accept") or headers.get("accept") or ""
        if code == 200 and "as=Table" in accept and isinstance(body, dict) and body.get("kind") in ("Node", "NodeList"):
            return 200, node_table(body), JSON
        return code, body, ctype

    def _workloads(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
                   raw: bytes) -> tuple[int, Any, str, dict[str, str]]:
        resp = self.workloads.serve(method, path, query, headers, raw)
        extra = {k: v for k, v in resp.headers.items() if k.lower() != "content-type"}
        ctype = resp.headers.get("Content-Type", JSON)
        if resp.stream is not None:
            return resp.status, resp.stream(), ctype, extra
        body = resp.body
        if (path == "/apis" and resp.status == 200 and isinstance(body, dict)
                and not any(g.get("name") == "coordination.k8s.io" for g in body.get("groups") or [])):
            coordination = {"groupVersion": "coordination.k8s.io/v1", "version": "v1"}
            body.setdefault("groups", []).append({"name": "coordination.k8s.io", "versions": [coordination],
                                                  "preferredVersion": coordination})
        if isinstance(body, str):
            body = body.encode()
        return resp.status, body if body is not None else b"", ctype, extra

    def _route(self, method: str, path: str, raw: bytes, query: dict[str, list[str]]) -> tuple[int, Any, str]:
        from . import _releases
        segs = [s for s in path.split("/") if s]
        if path == "/version":
            return 200, _releases.version_info(self.server.release), JSON
        if path in ("/livez", "/readyz", "/healthz"):
            ok, reason = self.etcd.health()
            return (200, b"ok", "text/plain") if ok else (500, f"[-]etcd failed: {reason}\n".encode(), "text/plain")
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.server.node_ip}:6443"}]}, JSON
        if path == "/apis":
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
                "name": "coordination.k8s.io", "versions": [{"groupVersion": "coordination.k8s.io/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "coordination.k8s.io/v1", "version": "v1"}}]}, JSON
        if path == "/api/v1":
            return 200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "nodes", "singularName": "node", "namespaced": False, "kind": "Node",
                 "verbs": ["delete", "get", "list", "patch", "update"], "shortNames": ["no"]},
                {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
                 "verbs": ["get", "list"], "shortNames": ["ns"]},
                {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret",
                 "verbs": ["delete", "get", "list"]}]}, JSON
        if path == "/apis/coordination.k8s.io/v1":
            return 200, {"kind": "APIResourceList", "groupVersion": "coordination.k8s.io/v1", "resources": [
                {"name": "leases", "singularName": "lease", "namespaced": True, "kind": "Lease",
                 "verbs": ["create", "delete", "get", "list", "patch", "update"]}]}, JSON
        if segs[:3] == ["api", "v1", "namespaces"] and len(segs) <= 4 and method == "GET":
            items = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}, "status": {"phase": "Active"}}
                     for n in NAMESPACES]
            if len(segs) == 4:
                match = [i for i in items if i["metadata"]["name"] == segs[3]]
                return (200, match[0], JSON) if match else (404, status(404, "NotFound", f'namespaces "{segs[3]}" not found'), JSON)
            return 200, {"apiVersion": "v1", "kind": "NamespaceList", "metadata": {}, "items": items}, JSON
        if segs[:3] == ["api", "v1", "namespaces"] and len(segs) in (5, 6) and segs[4] == "secrets":
            return self._secrets(method, segs[3], segs[5] if len(segs) == 6 else None)
        if segs[:3] == ["api", "v1", "nodes"]:
            return self._nodes(method, segs[3] if len(segs) > 3 else None, raw, query)
        if segs[:4] == ["apis", "coordination.k8s.io", "v1", "namespaces"] and len(segs) >= 6 and segs[5] == "leases":
            return self._leases(method, segs[4], segs[6] if len(segs) > 6 else None, raw)
        return 404, status(404, "NotFound", "the server could not find the requested resource"), JSON

    def _secrets(self, method: str, namespace: str, name: str | None) -> tuple[int, Any, str]:
        """Secrets as K3s's supervisor stores them (the node-password secrets): get, list, delete."""
        if name is None:
            if method != "GET":
                return 405, status(405, "MethodNotAllowed", "method not allowed"), JSON
            items = self._list(f"/registry/secrets/{namespace}/")
            return 200, {"apiVersion": "v1", "kind": "SecretList", "metadata": {}, "items": items}, JSON
        key = f"/registry/secrets/{namespace}/{name}"
        secret, _rev = self._get(key)
        if secret is None:
            return 404, status(404, "NotFound", f'secrets "{name}" not found', {"name": name, "kind": "secrets"}), JSON
        if method == "GET":
            return 200, secret, JSON
        if method == "DELETE":
            self.etcd.delete(key)
            return 200, secret, JSON
        return 405, status(405, "MethodNotAllowed", "method not allowed"), JSON

    def _nodes(self, method: str, name: str | None, raw: bytes, query: dict[str, list[str]]) -> tuple[int, Any, str]:
        if name is None and method == "POST":
            node = json.loads(raw or b"{}")
            node_name = node.get("metadata", {}).get("name", "")
            node["metadata"].setdefault("uid", str(uuid.uuid4()))
            node["metadata"].setdefault("creationTimestamp", now())
            if not self._put(f"/registry/minions/{node_name}", node, 0):
                return 409, status(409, "AlreadyExists", f'nodes "{node_name}" already exists'), JSON
            return 201, self._get(f"/registry/minions/{node_name}")[0], JSON
        if name is None:
            if method != "GET":
                return 405, status(405, "MethodNotAllowed", "method not allowed"), JSON
            wanted = None
            for sel in query.get("fieldSelector", []):
                for part in sel.split(","):
                    key, _, value = part.partition("=")
                    if key == "metadata.name":
                        wanted = value.lstrip("=")
            if query.get("watch", ["false"])[0] in ("true", "1"):
                timeout = float(query.get("timeoutSeconds", ["300"])[0])
                return 200, self._watch("/registry/minions/", wanted, timeout), JSON
            items = [i for i in self._list("/registry/minions/") if wanted is None or i["metadata"]["name"] == wanted]
            rev = str(max([int(i["metadata"]["resourceVersion"]) for i in items] or [0]))
            return 200, {"apiVersion": "v1", "kind": "NodeList", "metadata": {"resourceVersion": rev}, "items": items}, JSON
        key = f"/registry/minions/{name}"
        for _ in range(5):
            node, rev = self._get(key)
            if node is None:
                return 404, status(404, "NotFound", f'nodes "{name}" not found', {"name": name, "kind": "nodes"}), JSON
            if method == "GET":
                return 200, node, JSON
            if method == "PATCH":
                new = merge_patch(node, json.loads(raw or b"{}"))
            elif method == "PUT":
                new = json.loads(raw or b"{}")
            elif method == "DELETE":
                if FINALIZER in node["metadata"].get("finalizers", []):
                    new = merge_patch(node, {"metadata": {"deletionTimestamp": node["metadata"].get("deletionTimestamp") or now()}})
                else:
                    self.etcd.delete(key)
                    return 200, node, JSON
            else:
                return 405, status(405, "MethodNotAllowed", "method not allowed"), JSON
            if self._put(key, new, rev):
                out, _ = self._get(key)
                return 200, out, JSON
        return 409, status(409, "Conflict", f'Operation cannot be fulfilled on nodes "{name}": the object has been modified'), JSON

    def _watch(self, prefix: str, wanted: str | None, timeout: float):
        """A watch answered by polling etcd every 0.5 s: ADDED/MODIFIED/DELETED events after the
        objects the client already has (the list it started from)."""
        def keep(obj):
            return wanted is None or obj["metadata"]["name"] == wanted
        seen = {o["metadata"]["name"]: o for o in self._list(prefix) if keep(o)}
        end = time.time() + timeout
        while time.time() < end and not self.stop_event.is_set():
            time.sleep(0.5)
            try:
                now_objs = {o["metadata"]["name"]: o for o in self._list(prefix) if keep(o)}
            except EtcdError:
                return
            for n, o in now_objs.items():
                if n not in seen:
                    yield {"type": "ADDED", "object": o}
                elif o["metadata"]["resourceVersion"] != seen[n]["metadata"]["resourceVersion"]:
                    yield {"type": "MODIFIED", "object": o}
            for n, o in seen.items():
                if n not in now_objs:
                    yield {"type": "DELETED", "object": o}
            seen = now_objs

    def _leases(self, method: str, ns: str, name: str | None, raw: bytes) -> tuple[int, Any, str]:
        prefix = f"/registry/leases/{ns}/"
        if name is None and method == "GET":
            return 200, {"apiVersion": "coordination.k8s.io/v1", "kind": "LeaseList", "metadata": {},
                         "items": self._list(prefix)}, JSON
        if name is None:
            name = json.loads(raw or b"{}").get("metadata", {}).get("name", "")
        lease, rev = self._get(prefix + name)
        if method == "GET":
            return (200, lease, JSON) if lease else (404, status(404, "NotFound", f'leases.coordination.k8s.io "{name}" not found'), JSON)
        if method == "DELETE":
            self.etcd.delete(prefix + name)
            return 200, lease or {}, JSON
        new = json.loads(raw or b"{}") if method in ("PUT", "POST") else merge_patch(lease or {}, json.loads(raw or b"{}"))
        sent = str((new.get("metadata") or {}).get("resourceVersion") or "")
        if method == "PUT" and lease and sent and sent != str(lease.get("metadata", {}).get("resourceVersion", rev)):
            # optimistic concurrency as kube-apiserver does it: the update names the version it read
            return 409, status(409, "Conflict", f'Operation cannot be fulfilled on leases.coordination.k8s.io "{name}": '
                               "the object has been modified; please apply your changes to the latest version "
                               "and try again"), JSON
        if not self._put(prefix + name, new, rev if method != "POST" else 0):
            return 409, status(409, "Conflict" if method != "POST" else "AlreadyExists", f'leases "{name}" changed'), JSON
        out, _ = self._get(prefix + name)
        return (201 if method == "POST" else 200), out, JSON

    # -- this server's node, heartbeats, and the cluster's controllers -------------------------
    def start(self) -> None:
        self.workloads = self._start_workloads()
        threading.Thread(target=self._loop, daemon=True, name="kubelet+controllers").start()

    def _start_workloads(self):  # noqa: ANN202 - EtcdKube, imported late (jsonschema, the 1.34 schemas)
        try:
            from ._kubeetcd import EtcdKube
        except ImportError as exc:
            print(f"kube-apiserver: workloads not served ({exc})", file=sys.stderr, flush=True)
            return None
        disable = self.server.cfg.get("disable") or []
        return EtcdKube(_GatewayOf(self.server), release=self.server.release,
                        disable=[disable] if isinstance(disable, str) else list(disable),
                        is_leader=lambda: self.leading).start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.workloads is not None:
            self.workloads.stop()

    def node_object(self) -> dict[str, Any]:
        from . import _releases
        s = self.server
        info = _releases.version_info(s.release)
        return {"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": s.node_name, "uid": str(uuid.uuid4()), "creationTimestamp": now(),
            "finalizers": [FINALIZER],
            "labels": {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                       "beta.kubernetes.io/instance-type": "k3s", "kubernetes.io/arch": "amd64",
                       "kubernetes.io/hostname": s.node_name, "kubernetes.io/os": "linux",
                       "node.kubernetes.io/instance-type": "k3s",
                       "node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/etcd": "true",
                       "node-role.kubernetes.io/master": "true"},
            "annotations": {"etcd.k3s.cattle.io/node-name": s.member, "etcd.k3s.cattle.io/node-address": s.node_ip,
                            "k3s.io/internal-ip": s.node_ip, "k3s.io/hostname": s.node_name,
                            "flannel.alpha.coreos.com/public-ip": s.node_ip,
                            **({"lab.honeydue/kubelet": "process"} if self.kubelet == "process" else {})}},
            "spec": {"podCIDR": "", "providerID": f"k3s://{s.node_name}"},
            "status": {"addresses": [{"type": "InternalIP", "address": s.node_ip}, {"type": "Hostname", "address": s.node_name}],
                       "nodeInfo": {"kubeletVersion": info["gitVersion"], "kubeProxyVersion": info["gitVersion"],
                                    "operatingSystem": "linux", "architecture": "amd64",
                                    "containerRuntimeVersion": "containerd://stand-in"},
                       "conditions": []}}

    def _register(self) -> bool:
        """The kubelet's registration: the Node created, or updated if it exists (True once written)."""
        key = f"/registry/minions/{self.server.node_name}"
        node, rev = self._get(key)
        fresh = self.node_object()
        if node is None:
            node, rev = fresh, 0
        else:
            node["metadata"]["labels"] = {**node["metadata"].get("labels", {}), **fresh["metadata"]["labels"]}
            node["metadata"]["annotations"] = {**node["metadata"].get("annotations", {}), **fresh["metadata"]["annotations"]}
            node["metadata"].pop("deletionTimestamp", None)
            node["status"]["addresses"] = fresh["status"]["addresses"]
            node["status"]["nodeInfo"] = fresh["status"]["nodeInfo"]
        self._set_condition(node, "Ready", "True", "KubeletReady", "kubelet is posting ready status")
        self._set_condition(node, "EtcdIsVoter", "True", "MemberNotLearner", "Node is a voting member of the etcd cluster")
        return self._put(key, node, rev)

    def _post_status(self) -> None:
        """The kubelet's node status update: Ready=True whenever the Node shows anything else. The node
        lifecycle controller only ever sets Unknown (a stale Lease); it is the kubelet that sets it back."""
        key = f"/registry/minions/{self.server.node_name}"
        node, rev = self._get(key)
        if node is not None and self._condition(node, "Ready") != "True":
            self._set_condition(node, "Ready", "True", "KubeletReady", "kubelet is posting ready status")
            self._put(key, node, rev)

    @staticmethod
    def _set_condition(node: dict[str, Any], ctype: str, value: str, reason: str, message: str) -> bool:
        conds = node["status"].setdefault("conditions", [])
        cur = next((c for c in conds if c["type"] == ctype), None)
        t = now()
        if cur is None:
            conds.append({"type": ctype, "status": value, "reason": reason, "message": message,
                          "lastHeartbeatTime": t, "lastTransitionTime": t})
            return True
        changed = cur["status"] != value
        cur.update({"status": value, "reason": reason, "message": message, "lastHeartbeatTime": t})
        if changed:
            cur["lastTransitionTime"] = t
        return changed

    def _renew_lease(self) -> bool:
        key = f"/registry/leases/kube-node-lease/{self.server.node_name}"
        lease, rev = self._get(key)
        lease = lease or {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                          "metadata": {"name": self.server.node_name, "namespace": "kube-node-lease"},
                          "spec": {"holderIdentity": self.server.node_name, "leaseDurationSeconds": 40}}
        lease["spec"]["renewTime"] = micro_now()
        return self._put(key, lease, rev)

    def _lead(self) -> bool:
        """Leader election on kube-system/kube-controller-manager (15 s lease, as the controller manager)."""
        key = "/registry/leases/kube-system/kube-controller-manager"
        lease, rev = self._get(key)
        t = time.time()
        if lease is not None:
            spec = lease["spec"]
            held = spec.get("holderIdentity") != self.identity and \
                t - parse_time(spec.get("renewTime", "")) < spec.get("leaseDurationSeconds", 15)
            if held:
                return False
        else:
            lease, rev = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                          "metadata": {"name": "kube-controller-manager", "namespace": "kube-system"}, "spec": {}}, 0
        if lease["spec"].get("holderIdentity") != self.identity:
            lease["spec"]["acquireTime"] = micro_now()
            lease["spec"]["leaseTransitions"] = lease["spec"].get("leaseTransitions", 0) + 1
        lease["spec"].update({"holderIdentity": self.identity, "leaseDurationSeconds": 15, "renewTime": micro_now()})
        return self._put(key, lease, rev)

    def _loop(self) -> None:
        registered = False
        failing = ""  # the etcd error of the last round ("" when it went through): logged when it changes
        while not self.stop_event.is_set():
            try:
                if not registered:
                    registered = self._register()
                renewed = self._renew_lease()
                if registered:
                    self._post_status()
                lost = ", ".join(w for w, ok in (("registration", registered), ("lease renewal", renewed)) if not ok)
                if lost != self.lost_writes:
                    print(f"kubelet+controllers: {lost} write lost its compare (mod revision changed), retrying"
                          if lost else "kubelet+controllers: writes go through again", file=sys.stderr, flush=True)
                    self.lost_writes = lost
                self.leading = self._lead()
                if self.leading:
                    self._node_ipam()
                    self._node_lifecycle()
                    self._etcd_members()
                if failing:
                    print("kubelet+controllers: etcd answers again", file=sys.stderr, flush=True)
                failing = ""
            except EtcdError as exc:
                if exc.message != failing:
                    print(f"kubelet+controllers: {exc.message} (retrying)", file=sys.stderr, flush=True)
                failing = exc.message
            except Exception as exc:  # noqa: BLE001 - a kubelet keeps posting whatever one round hit
                import traceback
                print(f"kubelet+controllers: {exc!r} (retrying)\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            self.stop_event.wait(min(self.lease_interval, 2.0))

    def _node_ipam(self) -> None:
        """kube-controller-manager's node IPAM: each Node gets the lowest free /24 of 10.42.0.0/16."""
        nodes = self._list("/registry/minions/")
        used = {(n.get("spec") or {}).get("podCIDR") for n in nodes}
        for node in sorted(nodes, key=lambda n: n["metadata"].get("creationTimestamp", "")):
            if (node.get("spec") or {}).get("podCIDR"):
                continue
            cidr = next(f"10.42.{i}.0/24" for i in range(256) if f"10.42.{i}.0/24" not in used)
            used.add(cidr)
            node.setdefault("spec", {}).update({"podCIDR": cidr, "podCIDRs": [cidr]})
            self._put(f"/registry/minions/{node['metadata']['name']}", node, int(node["metadata"]["resourceVersion"]))

    def _node_lifecycle(self) -> None:
        leases = {item["metadata"]["name"]: item for item in self._list("/registry/leases/kube-node-lease/")}
        t = time.time()
        for node in self._list("/registry/minions/"):
            name = node["metadata"]["name"]
            renew = parse_time(leases.get(name, {}).get("spec", {}).get("renewTime", ""))
            alive = t - renew < self.grace
            key, rev = f"/registry/minions/{name}", int(node["metadata"]["resourceVersion"])
            if not alive and self._condition(node, "Ready") == "True":
                self._set_condition(node, "Ready", "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
                if self._put(key, node, rev):  # kube-controller-manager logs the same transition
                    print(f"node lifecycle: node {name} hasn't been updated for {t - renew:.1f}s "
                          f"(Lease renewTime {leases.get(name, {}).get('spec', {}).get('renewTime', 'none')}): "
                          "Ready=Unknown", file=sys.stderr, flush=True)

    @staticmethod
    def _condition(node: dict[str, Any], ctype: str) -> str:
        return next((c["status"] for c in node.get("status", {}).get("conditions", []) if c["type"] == ctype), "")

    def _etcd_members(self) -> None:
        """K3s's etcd member controller: remove=true annotation or a deleted Node removes the member."""
        for node in self._list("/registry/minions/"):
            meta = node["metadata"]
            ann = meta.get("annotations", {})
            deleting = bool(meta.get("deletionTimestamp"))
            if not (deleting or ann.get(REMOVE) == "true") or ann.get(REMOVED_NAME):
                if deleting and ann.get(REMOVED_NAME):
                    self._finalize(node)
                continue
            member_name = ann.get("etcd.k3s.cattle.io/node-name", "")
            try:
                self.server.remove_member(member_name)
            except EtcdError as exc:
                if "not enough started members" in exc.message or "quorum" in exc.message:
                    if not deleting:
                        patch = {"metadata": {"annotations": {REMOVE: None}}}
                        self._put(f"/registry/minions/{meta['name']}", merge_patch(node, patch), int(meta["resourceVersion"]))
                continue
            new = merge_patch(node, {"metadata": {"annotations": {REMOVED_NAME: member_name}}})
            self._put(f"/registry/minions/{meta['name']}", new, int(meta["resourceVersion"]))
            if deleting:
                self._finalize(self._get(f"/registry/minions/{meta['name']}")[0] or new)

    def _finalize(self, node: dict[str, Any]) -> None:
        key = f"/registry/minions/{node['metadata']['name']}"
        finalizers = [f for f in node["metadata"].get("finalizers", []) if f != FINALIZER]
        if finalizers:
            self._put(key, merge_patch(node, {"metadata": {"finalizers": finalizers}}), int(node["metadata"]["resourceVersion"]))
        else:
            self.etcd.delete(key)

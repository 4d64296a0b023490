"""The lab K3s's Kubernetes API for workloads: the in-memory stand-in's logic over the cluster's etcd.

``lab/standins/kube.py`` (``KubeStandIn``) holds the apiserver's behaviour (validation, defaults,
server-side apply, watches), the controllers (deployment, replicaset, daemonset, statefulset, job,
endpointslice, namespace, garbage collector), the scheduler and K3s's helm-controller. Here that
logic runs on every lab server against **one** shared state, the cluster's etcd, as kube-apiserver
does:

- each request loads the objects under ``/registry/`` (only when etcd's revision moved since the
  last load), runs on them, and commits what it changed in **one** transaction that compares every
  written key's mod revision (``_kubestore.plan_commit``); when another server wrote first the
  compare fails and the request runs again on the new state. ``resourceVersion`` is etcd's mod
  revision, as on a real cluster.
- the controllers run only on the server holding the ``kube-system/kube-controller-manager`` Lease
  (elected by ``_kubeapi``), every ``tick`` seconds, and commit the same way.
- Nodes and Leases stay with ``_kubeapi`` (registration, heartbeats, node lifecycle, K3s's etcd
  member controller); their keys are shared, so a node written there is the node scheduled here.

What a second server cannot see: the helm-install pod log lives in the controller holder's memory.
"""
from __future__ import annotations

import base64
import ipaddress
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from lab.standins import _kube_resources as kres
from lab.standins._kube_objects import status
from lab.standins._server import Request, Response
from lab.standins.kube import KubeError, KubeStandIn

from . import _kubestore as store
from ._etcdclient import EtcdError, prefix_end

# Leases are _kubeapi's (OWN_ROUTES): their keys are not loaded here, so heartbeats cost nothing.
SERVED = [(rt.group, rt.plural, rt.namespaced) for rt in kres.RESOURCES if rt.group != "coordination.k8s.io"]
PREFIX = b"/registry/"
RETRIES = 10  # a request that keeps losing the race to other writers gives up like an apiserver would
# Served by _kubeapi (K3s's own node registration, heartbeats and leases), not here.
OWN_ROUTES = (("api", "v1", "nodes"), ("apis", "coordination.k8s.io"))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class _Reads:
    """What request handlers see as ``controllers``: outside the controller loop, "let the
    controllers catch up" means "read the state again" (another server's controllers write it)."""

    def __init__(self, api: "EtcdKube", real: Any) -> None:
        self._api = api
        self._real = real

    def reconcile(self, passes: int = 12) -> None:  # noqa: ARG002 - the in-memory signature
        self._api.load()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class EtcdKube(KubeStandIn):
    name = "kube-etcd"
    self_check = False  # nobody reads contract_violations on a lab node: no schema check of each answer

    def __init__(self, gateway: Any, *, release: str, disable: list[str] | tuple[str, ...] = (),
                 tick: float = 0.5, is_leader: Callable[[], bool] = lambda: True) -> None:
        self.gateway = gateway
        self.is_leader = is_leader
        self.tick = tick
        self.loaded = -1  # the etcd revision the objects were read at (-1: read the listing again)
        self.dirty = True  # the objects may differ from etcd's in unknown ways: read everything again
        self.snapshot = store.Snapshot()
        self.stopping = threading.Event()
        # Deployments' progress deadlines as kube-controller-manager counts them (the in-memory
        # stand-in compresses them for tests; K3S_STANDIN_DEADLINE_FACTOR does so on a lab node).
        super().__init__(token="", nodes=0, release=release, disable=disable,
                         deadline_factor=float(os.environ.get("K3S_STANDIN_DEADLINE_FACTOR", "1")))
        # What a fresh K3s cluster has (namespaces, the HelmChartConfig CRD, the traefik HelmChart):
        # created on first start by whichever server gets there first.
        self.seeds = self._keyed()
        self.running = self.controllers
        self.controllers = _Reads(self, self.running)

    # -- storage -------------------------------------------------------------------------------
    def _keyed(self) -> dict[str, dict[str, Any]]:
        return {store.key(rt.group, rt.plural, ns, name): obj
                for rt, objs in self.objects.items() for (ns, name), obj in objs.items()}

    def _range(self, **options: Any) -> dict[str, Any]:
        return self.gateway.call("/v3/kv/range", {"key": _b64(PREFIX), "range_end": _b64(prefix_end(PREFIX)), **options})

    def load(self) -> None:
        """The objects as etcd has them now. One ``keys_only`` range gives every key's mod revision;
        only keys added or changed since the last load are read and decoded (lease renewals, the
        most frequent writes, are not served here and cost nothing), deleted ones are dropped."""
        listing = self._range(keys_only=True)
        revision = int(listing["header"]["revision"])
        if revision == self.loaded and not self.dirty:
            return
        now: dict[str, tuple[int, tuple[str, str, str, str]]] = {}
        for kv in listing.get("kvs", []):
            k = base64.b64decode(kv["key"]).decode()
            parsed = store.parse_key(SERVED, k)
            if parsed is not None:
                now[k] = (int(kv["mod_revision"]), parsed)
        known = {} if self.dirty else self.snapshot.entries
        changed = [k for k, (mod, _) in now.items() if k not in known or known[k][0] != mod]
        if self.dirty:
            self.objects = {rt: {} for rt in kres.RESOURCES}
            self.dirty = False
        entries = {k: v for k, v in known.items() if k in now}
        for k in set(known) - set(now):
            group, plural, ns, name = store.parse_key(SERVED, k) or ("", "", "", "")
            self.objects[self._rt(group, plural)].pop((ns, name), None)
        if changed:
            low = min(now[k][0] for k in changed)
            fresh = {base64.b64decode(kv["key"]).decode(): kv for kv in self._range(min_mod_revision=str(low)).get("kvs", [])}
            for k in changed:
                kv = fresh.get(k)
                if kv is None:  # changed again and deleted meanwhile: the next load sees it
                    continue
                try:
                    obj = json.loads(base64.b64decode(kv.get("value", "")))
                except ValueError:
                    continue
                mod = int(kv["mod_revision"])
                obj.setdefault("metadata", {})["resourceVersion"] = str(mod)
                group, plural, ns, name = now[k][1]
                self.objects[self._rt(group, plural)][(ns, name)] = obj
                entries[k] = (mod, store.encode(obj))
        self.snapshot = store.Snapshot(entries)
        self.revision = self.compacted = self.loaded = revision
        self.history.clear()

    def commit(self) -> int | None:
        """Write what changed since the load in one transaction: its revision, 0 when nothing
        changed, None when another writer got there first (nothing was written)."""
        plan = store.plan_commit(self.snapshot, self._keyed())
        if plan.empty:
            return 0
        self.dirty = True  # until the answer says otherwise
        answer = self.gateway.call("/v3/kv/txn", store.txn_body(plan))
        if not answer.get("succeeded"):
            return None
        # What was written is what memory holds, but for its resourceVersion: read those keys again.
        entries = dict(self.snapshot.entries)
        for k, _ in plan.puts:
            entries[k] = (-1, "")
        for k in plan.deletes:
            entries.pop(k, None)
        self.snapshot = store.Snapshot(entries)
        self.loaded, self.dirty = -1, False
        return int(answer["header"]["revision"])

    def seed(self) -> None:
        """Create what a new cluster starts with, where it is missing (never overwrite)."""
        for k, obj in self.seeds.items():
            plan = store.Commit(compares=[(k, 0)], puts=[(k, store.encode(obj))], deletes=[])
            self.gateway.call("/v3/kv/txn", store.txn_body(plan))

    # -- requests --------------------------------------------------------------------------------
    @staticmethod
    def serves(path: str) -> bool:
        segs = tuple(s for s in path.split("/") if s)
        return not any(segs[:len(own)] == own for own in OWN_ROUTES)

    def serve(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
              raw: bytes) -> Response:
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        req = Request(method, path, query, {k.lower(): v for k, v in headers.items()}, raw, body)
        for _ in range(RETRIES):
            with self._lock:
                try:
                    self.load()
                    base = self.loaded
                    try:
                        resp = self._route(req)
                    except KubeError as err:
                        resp = err.response
                    if method in ("GET", "HEAD"):
                        return resp
                    if resp.status >= 400:
                        self.dirty = True  # a refused write may have changed objects in memory
                        return resp
                    written = self.commit()
                except EtcdError as exc:
                    self.dirty = True
                    code = 504 if method == "GET" else 500
                    return status(code, "Timeout" if code == 504 else "InternalError",
                                  f"Internal error occurred: {exc.message}", {})
                if written is None:
                    continue
                if written:
                    self._stamp(resp, written, base)
                return resp
        return status(409, "Conflict", "Operation cannot be fulfilled: the object has been modified; please apply "
                                       "your changes to the latest version and try again", {})

    @staticmethod
    def _stamp(resp: Response, revision: int, base: int) -> None:
        """The answer's resourceVersion is the transaction's revision (etcd's, as kube-apiserver):
        the in-memory logic numbered this request's writes after ``base``, the revision it read."""
        meta = resp.body.get("metadata") if isinstance(resp.body, dict) else None
        if isinstance(meta, dict) and str(meta.get("resourceVersion", "")).isdigit() \
                and int(meta["resourceVersion"]) > base:
            meta["resourceVersion"] = str(revision)

    def dispatch(self, req: Request) -> Response:  # the in-memory entry point: not used over etcd
        raise NotImplementedError("EtcdKube.serve")

    def _allocate_ip(self) -> str:
        """The lowest free ClusterIP of 10.43.0.0/16 (from the stored Services, shared by all servers)."""
        used = {svc.get("spec", {}).get("clusterIP") for svc in self.items(self._rt("", "services"))}
        base = ipaddress.ip_address("10.43.0.0")
        for i in range(10, 65534):
            candidate = str(base + i)
            if candidate not in used:
                return candidate
        raise KubeError(status(500, "InternalError", "Internal error occurred: range is full", {}))

    # -- the controller loop ---------------------------------------------------------------------
    def start(self) -> "EtcdKube":
        threading.Thread(target=self._controllers, name="kube-controller-manager", daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()

    def control_round(self) -> bool:
        """One pass of kube-controller-manager (and the scheduler, K3s's helm-controller) when this
        server holds the controller Lease; committed like a request (a lost race waits a tick)."""
        if not self.is_leader():
            return False
        with self._lock:
            self.load()
            self.running.reconcile()
            return self.commit() is not None

    def _controllers(self) -> None:
        seeded = False
        while not self.stopping.wait(self.tick):
            try:
                if not seeded:
                    self.seed()
                    seeded = True
                self.control_round()
            except EtcdError:
                self.dirty = True
            except Exception as exc:  # noqa: BLE001 - a controller bug must show, not stop the loop
                self.dirty = True
                print(f"kube-controller-manager: {exc!r}\n{traceback.format_exc()}", file=sys.stderr, flush=True)

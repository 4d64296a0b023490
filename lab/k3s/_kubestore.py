"""Where the lab K3s keeps Kubernetes objects in etcd, and how one API request's changes commit (pure).

Keys follow kube-apiserver's storage layout (``/registry/<resource>/<namespace>/<name>``, with its
historical names: Nodes under ``minions``, Services under ``services/specs``, Ingresses under
``ingress``; custom resources under ``/registry/<group>/<plural>/...``), so what ``etcdctl get
--prefix /registry`` shows on a lab node looks like a K3s server's (values are JSON here,
protobuf there).

The plan for serving the in-memory API's logic (``lab/standins/kube.py``) from etcd: load every
object of the request's scope with its mod revision, run the request on those, then commit what
changed in **one** transaction that compares each touched key's mod revision (a create compares
``version == 0``), so two servers' concurrent writes never interleave; a failed compare means
another server wrote first: reload and run the request again.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SPECIAL = {("", "nodes"): "minions", ("", "services"): "services/specs", ("", "endpoints"): "services/endpoints",
           ("networking.k8s.io", "ingresses"): "ingress"}
BUILTIN_GROUPS = {"", "apps", "batch", "policy", "networking.k8s.io", "storage.k8s.io", "discovery.k8s.io",
                  "coordination.k8s.io", "rbac.authorization.k8s.io", "events.k8s.io"}


def resource_prefix(group: str, plural: str) -> str:
    """``/registry/<resource>/`` as kube-apiserver names it (custom resources: ``<group>/<plural>``)."""
    if (group, plural) in SPECIAL:
        return f"/registry/{SPECIAL[(group, plural)]}/"
    if group in BUILTIN_GROUPS:
        return f"/registry/{plural}/"
    return f"/registry/{group}/{plural}/"


def key(group: str, plural: str, namespace: str, name: str) -> str:
    base = resource_prefix(group, plural)
    return f"{base}{namespace}/{name}" if namespace else f"{base}{name}"


def encode(obj: dict[str, Any]) -> str:
    """The stored value: the object without ``resourceVersion`` (etcd's mod revision is the source)."""
    body = dict(obj)
    body["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "resourceVersion"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


@dataclass
class Snapshot:
    """What a request started from: key -> (mod revision, stored value)."""

    entries: dict[str, tuple[int, str]] = field(default_factory=dict)


@dataclass
class Commit:
    compares: list[tuple[str, int]]            # (key, mod revision it must still have; 0 = must not exist)
    puts: list[tuple[str, str]]
    deletes: list[str]

    @property
    def empty(self) -> bool:
        return not self.puts and not self.deletes


def plan_commit(before: Snapshot, after: dict[str, dict[str, Any]]) -> Commit:
    """The one transaction that turns ``before`` into ``after`` (key -> object): only keys whose
    stored value changed are written, and each of them is compared with the revision it was read at."""
    compares, puts, deletes = [], [], []
    for k, obj in sorted(after.items()):
        value = encode(obj)
        old = before.entries.get(k)
        if old is not None and old[1] == value:
            continue
        compares.append((k, old[0] if old else 0))
        puts.append((k, value))
    for k in sorted(set(before.entries) - set(after)):
        compares.append((k, before.entries[k][0]))
        deletes.append(k)
    return Commit(compares, puts, deletes)


def _b64(text: str) -> str:
    import base64
    return base64.b64encode(text.encode()).decode()


def txn_body(commit: Commit) -> dict[str, Any]:
    """The ``/v3/kv/txn`` body (etcd's JSON gateway) for a commit: every compare must hold (a key
    read at revision R still has ``mod_revision`` R; a created key still has ``version`` 0), then every
    put and delete applies at one new revision, or nothing does."""
    compare = []
    for k, rev in commit.compares:
        if rev:
            compare.append({"key": _b64(k), "target": "MOD", "result": "EQUAL", "mod_revision": str(rev)})
        else:
            compare.append({"key": _b64(k), "target": "VERSION", "result": "EQUAL", "version": "0"})
    success = [{"request_put": {"key": _b64(k), "value": _b64(v)}} for k, v in commit.puts]
    success += [{"request_delete_range": {"key": _b64(k)}} for k in commit.deletes]
    return {"compare": compare, "success": success}


def parse_key(resources: list[tuple[str, str, bool]], k: str) -> tuple[str, str, str, str] | None:
    """``(group, plural, namespace, name)`` of a stored key, for the resources served (``(group,
    plural, namespaced)``); None for keys of anything else (leases, K3s's own keys)."""
    best: tuple[str, str, bool] | None = None
    for group, plural, namespaced in resources:
        prefix = resource_prefix(group, plural)
        if k.startswith(prefix) and (best is None or len(prefix) > len(resource_prefix(best[0], best[1]))):
            best = (group, plural, namespaced)
    if best is None:
        return None
    rest = k[len(resource_prefix(best[0], best[1])):].split("/")
    if best[2] and len(rest) == 2 and all(rest):
        return best[0], best[1], rest[0], rest[1]
    if not best[2] and len(rest) == 1 and rest[0]:
        return best[0], best[1], "", rest[0]
    return None

"""EndpointSlices of a Service, as the endpointslice controller writes them (pure).

Mirrors ``pkg/controller/endpointslice`` (Kubernetes docs "EndpointSlices"): one slice per Service
and port mapping, named ``<service>-<5 random>``, labelled ``kubernetes.io/service-name`` and
``endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io``, owned by the Service;
an endpoint per selected Pod that has an IP: ``conditions.ready`` (Pod Ready and not terminating,
or the Service's ``publishNotReadyAddresses``), ``serving`` (Ready, terminating or not),
``terminating`` (``deletionTimestamp`` set); ``nodeName`` and ``targetRef``. A named
``targetPort`` resolves per Pod through its containers' ports.

A change a Pod goes through reaches the slice only after ``delay`` seconds (``propagate``): the
kubelet's status write, the controller's sync and a proxy's watch add up to about a second in a
real cluster, and a test of "no failed request during a rollout" must be able to fail on it.
"""
from __future__ import annotations

from typing import Any

MANAGED_BY = "endpointslice-controller.k8s.io"


def _ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _selected(service: dict[str, Any], pod: dict[str, Any]) -> bool:
    selector = (service.get("spec") or {}).get("selector") or {}
    labels = pod["metadata"].get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _target_port(svc_port: dict[str, Any], pod: dict[str, Any]) -> int | None:
    target = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target:
                return p["containerPort"]
    return None


def endpoint(service: dict[str, Any], pod: dict[str, Any]) -> dict[str, Any]:
    meta = pod["metadata"]
    terminating = bool(meta.get("deletionTimestamp"))
    ready = _ready(pod)
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    out: dict[str, Any] = {"addresses": [pod["status"]["podIP"]],
                           "conditions": {"ready": publish or (ready and not terminating), "serving": ready,
                                          "terminating": terminating},
                           "targetRef": {"kind": "Pod", "namespace": meta.get("namespace", ""),
                                         "name": meta["name"], "uid": meta.get("uid", "")}}
    if (pod.get("spec") or {}).get("nodeName"):
        out["nodeName"] = pod["spec"]["nodeName"]
    return out


def desired(service: dict[str, Any], pods: list[dict[str, Any]]) -> dict[tuple[tuple[str, int, str], ...],
                                                                     dict[str, dict[str, Any]]]:
    """Port mapping -> {pod uid: endpoint} for every selected Pod with an IP."""
    out: dict[tuple[tuple[str, int, str], ...], dict[str, dict[str, Any]]] = {}
    ports = (service.get("spec") or {}).get("ports") or []
    for pod in pods:
        if not _selected(service, pod) or not (pod.get("status") or {}).get("podIP"):
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        mapping = []
        for p in ports:
            target = _target_port(p, pod)
            if target is not None:
                mapping.append((p.get("name") or "", target, p.get("protocol", "TCP")))
        out.setdefault(tuple(mapping), {})[pod["metadata"].get("uid", pod["metadata"]["name"])] = endpoint(service, pod)
    return out


def propagate(published: dict[str, dict[str, Any]], wanted: dict[str, dict[str, Any]],
              seen: dict[str, tuple[float, Any]], now: float, delay: float,
              ) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[float, Any]]]:
    """What the slice shows at ``now``: each endpoint's change (added, changed, gone) becomes
    visible ``delay`` seconds after it was first observed. ``seen``: uid -> (since, observed value)."""
    out = dict(published)
    next_seen: dict[str, tuple[float, Any]] = {}
    for uid in set(published) | set(wanted):
        value = wanted.get(uid)
        if published.get(uid) == value:
            continue
        since, observed = seen.get(uid, (now, value))
        if observed != value:
            since = now
        if now - since >= delay:
            if value is None:
                out.pop(uid, None)
            else:
                out[uid] = value
        else:
            next_seen[uid] = (since, value)
    return out, next_seen


def slice_object(service: dict[str, Any], name: str, mapping: tuple[tuple[str, int, str], ...],
                 endpoints: list[dict[str, Any]]) -> dict[str, Any]:
    meta = service["metadata"]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": meta.get("namespace", ""), "generateName": f"{meta['name']}-",
                         "labels": {"kubernetes.io/service-name": meta["name"],
                                    "endpointslice.kubernetes.io/managed-by": MANAGED_BY},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": meta["name"],
                                              "uid": meta.get("uid", ""), "controller": True,
                                              "blockOwnerDeletion": True}]},
            "addressType": "IPv4",
            "endpoints": sorted(endpoints, key=lambda e: e["targetRef"]["name"]) or None,
            "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in mapping]}

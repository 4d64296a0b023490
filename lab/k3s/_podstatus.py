"""A Pod's ``status`` as the kubelet reports it, from what the node knows (pure).

Field shapes and messages follow kubelet ``pkg/kubelet/status`` and ``kuberuntime`` as seen in
``kubectl get pod -o yaml`` on K3s v1.34 (containerd): conditions PodReadyToStartContainers,
Initialized, Ready, ContainersReady, PodScheduled; ``Ready`` False has reason
``ContainersNotReady`` and message ``containers with unready status: [a b]``; waiting reasons
``ContainerCreating``, ``ErrImagePull``, ``ImagePullBackOff`` (``Back-off pulling image "<image>"``),
``CrashLoopBackOff`` (``back-off <d> restarting failed container=<c> pod=<pod>_<ns>(<uid>)``).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from ._kubeprobes import Container, backoff_delay


def rfc3339(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


@dataclass
class Pulled:
    """The image side of one container: pulled (with its config labels) or failing to pull."""

    image: str
    ok: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    digest: str = ""
    error: str = ""          # ErrImagePull's message
    failures: int = 0
    retry_at: float = 0.0    # image pull back-off: 10 s doubling to 300 s, as for crashes


def pull_failed(p: Pulled, message: str, now: float) -> Pulled:
    failures = p.failures + 1
    return Pulled(image=p.image, ok=False, error=message, failures=failures,
                  retry_at=now + max(10.0, backoff_delay(failures + 1)))


def _condition(ctype: str, ok: bool, at: float, reason: str = "", message: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": ctype, "status": "True" if ok else "False", "lastProbeTime": None,
                           "lastTransitionTime": rfc3339(at)}
    if not ok and reason:
        out["reason"] = reason
    if not ok and message:
        out["message"] = message
    return out


def container_status(name: str, c: Container | None, pulled: Pulled, pod: dict[str, Any], now: float,
                     exit_code: int | None = None) -> dict[str, Any]:
    meta = pod["metadata"]
    out: dict[str, Any] = {"name": name, "image": pulled.image, "imageID": pulled.digest and
                           f"{pulled.image.rsplit(':', 1)[0]}@{pulled.digest}" or "",
                           "ready": bool(c and c.ready), "started": bool(c and c.running and c.started),
                           "restartCount": c.restarts if c else 0}
    if c is not None and c.running:
        out["state"] = {"running": {"startedAt": rfc3339(c.started_at)}}
        out["containerID"] = "containerd://" + hashlib.sha256(f"{meta.get('uid')}/{name}/{c.restarts}".encode()
                                                              ).hexdigest()
        if c.restarts and c.last_exit:
            out["lastState"] = {"terminated": {"exitCode": 1 if exit_code is None else exit_code,
                                               "reason": "Completed" if c.last_exit == "Completed" else "Error",
                                               "finishedAt": rfc3339(c.started_at)}}
    elif not pulled.ok and pulled.error:
        backing_off = pulled.failures > 1 and now < pulled.retry_at
        out["state"] = {"waiting": {"reason": "ImagePullBackOff" if backing_off else "ErrImagePull",
                                    "message": f'Back-off pulling image "{pulled.image}"' if backing_off
                                    else pulled.error}}
    elif c is not None and c.last_exit:
        delay = int(backoff_delay(c.crashes))
        out["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                    "message": f"back-off {delay}s restarting failed container={name} "
                                               f"pod={meta['name']}_{meta.get('namespace')}({meta.get('uid')})"}}
        out["lastState"] = {"terminated": {"exitCode": 1 if exit_code is None else exit_code,
                                           "reason": "Error" if c.last_exit != "Completed" else "Completed",
                                           "finishedAt": rfc3339(c.backoff_until - backoff_delay(c.crashes))}}
    else:
        out["state"] = {"waiting": {"reason": "ContainerCreating"}}
    return out


def pod_status(pod: dict[str, Any], statuses: list[dict[str, Any]], *, pod_ip: str, host_ip: str,
               started: float, previous: dict[str, Any] | None) -> dict[str, Any]:
    """The whole ``status`` (transition times kept from ``previous`` when a condition did not change)."""
    unready = [s["name"] for s in statuses if not s["ready"]]
    all_running = all("running" in s["state"] for s in statuses)
    now = time.time()
    conditions = [
        _condition("PodReadyToStartContainers", bool(pod_ip), now),
        _condition("Initialized", True, started),
        _condition("Ready", not unready, now, "ContainersNotReady",
                   f"containers with unready status: [{' '.join(unready)}]"),
        _condition("ContainersReady", not unready, now, "ContainersNotReady",
                   f"containers with unready status: [{' '.join(unready)}]"),
        _condition("PodScheduled", True, started),
    ]
    before = {c["type"]: c for c in (previous or {}).get("conditions") or []}
    for cond in conditions:
        old = before.get(cond["type"])
        if old and old.get("status") == cond["status"]:
            cond["lastTransitionTime"] = old.get("lastTransitionTime", cond["lastTransitionTime"])
    out: dict[str, Any] = {"phase": "Running" if all_running or any("running" in s["state"] or "lastState" in s
                                                                     for s in statuses) else "Pending",
                           "conditions": conditions, "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
                           "startTime": rfc3339(started), "containerStatuses": statuses,
                           "qosClass": qos_class(pod)}
    if pod_ip:
        out["podIP"], out["podIPs"] = pod_ip, [{"ip": pod_ip}]
    return out


def qos_class(pod: dict[str, Any]) -> str:
    """Guaranteed (every container: limits == requests for cpu and memory), BestEffort (none), else Burstable."""
    containers = (pod.get("spec") or {}).get("containers") or []
    res = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in res):
        return "BestEffort"
    for r in res:
        limits = r.get("limits") or {}
        requests = {**limits, **(r.get("requests") or {})}  # the apiserver defaults requests to limits
        if any(limits.get(k) is None or requests.get(k) != limits.get(k) for k in ("cpu", "memory")):
            return "Burstable"
    return "Guaranteed"

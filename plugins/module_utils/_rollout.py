# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rollout status with ``kubectl rollout status`` semantics: pure functions over objects as
``kubernetes.core.k8s_info`` returns them.

kubernetes.core's ``k8s`` ``wait`` only compares replica counts and conditions; a Deployment whose
old pods are all available looks done before a single new pod exists. kubectl's status viewers
(k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go) also require the controller to have
observed the current generation and every replica to be on the new pod template. The decisions
and the messages here follow those viewers, with two differences:

* where kubectl returns an error (Deployment past its progress deadline; StatefulSet or DaemonSet
  whose update strategy is not RollingUpdate) the status has ``failed: true``, ``done: false``,
  the reason (``ProgressDeadlineExceeded``, or the strategy type such as ``OnDelete``) and
  kubectl's error text as the message;
* a missing object (``None``, an empty ``resources`` list, or a ``k8s_info`` result with none) is not an error but
  ``done: false``, ``failed: false``, message ``not found``: a workload that does not exist yet has
  not rolled out.

Fields the API server defaults are defaulted the same way when absent (``spec.replicas`` 1, the
update strategy RollingUpdate), so hand-written objects read like served ones. A StatefulSet's
``rollingUpdate.partition`` is the exception: the server always sets it (0) and kubectl then takes
its partitioned branch, which needs ``updatedReplicas`` to reach ``replicas - partition``; when
the partition is absent the revision branch (``updateRevision`` equal to ``currentRevision``)
decides instead.
"""
from __future__ import annotations

import copy
from typing import Any

KINDS = ("Deployment", "StatefulSet", "DaemonSet")
PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"  # kubectl's deploymentutil.TimedOutReason
NOT_FOUND = "NotFound"
ROLLING_UPDATE = "RollingUpdate"


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _int(value: Any, default: int = 0) -> int:
    if value is None or isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None


def _q(name: str) -> str:
    """Go's %q for a Kubernetes name (DNS characters only, so plain double quotes)."""
    return '"' + str(name).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _is_info_result(value: Any) -> bool:
    """A registered ``k8s_info`` result rather than a Kubernetes object."""
    return isinstance(value, dict) and "resources" in value and "kind" not in value and "metadata" not in value


def _unwrap(value: Any) -> tuple[dict | None, dict]:
    """``(object or None, what is known of a missing one)`` for an object, ``None``, ``{}``, a list
    of at most one object (``k8s_info``'s ``resources``) or a ``k8s_info`` result with at most one."""
    if value is None or (isinstance(value, (dict, list, tuple)) and not value):
        return None, {}
    if isinstance(value, (list, tuple)):
        if len(value) > 1:
            raise ValueError(f"a list of {len(value)} objects where one was expected (use rollout_pending for several)")
        return _unwrap(value[0])
    if _is_info_result(value):
        resources = value.get("resources") or []
        if not isinstance(resources, list):
            raise ValueError("the k8s_info result's resources is not a list")
        if len(resources) > 1:
            raise ValueError(f"the k8s_info result holds {len(resources)} objects where one was expected (use rollout_pending for several)")
        if resources:
            return _unwrap(resources[0])
        args = _get(value, "invocation", "module_args") or {}
        known = {k: args.get(k) for k in ("kind", "name", "namespace") if isinstance(args.get(k), str)}
        return None, known
    if not isinstance(value, dict):
        raise ValueError(f"expected a Kubernetes object (a dict), got {type(value).__name__}")
    return value, {}


def _images(obj: dict) -> list[str]:
    containers = _get(obj, "spec", "template", "spec", "containers") or []
    return [c.get("image") for c in containers if isinstance(c, dict)]


def _strategy(obj: dict, kind: str) -> dict:
    field = "strategy" if kind == "Deployment" else "updateStrategy"
    return _get(obj, "spec", field) or {}


def _deployment(obj: dict, name: str) -> tuple[bool, bool, str, str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if _int(_get(obj, "metadata", "generation")) > _int(status.get("observedGeneration")):
        return False, False, "", "Waiting for deployment spec update to be observed..."
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Progressing" and cond.get("reason") == PROGRESS_DEADLINE_EXCEEDED:
            return False, True, PROGRESS_DEADLINE_EXCEEDED, f"deployment {_q(name)} exceeded its progress deadline"
    replicas = _int(spec.get("replicas"), 1)
    total, updated, available = (_int(status.get(k)) for k in ("replicas", "updatedReplicas", "availableReplicas"))
    waiting = f"Waiting for deployment {_q(name)} rollout to finish: "
    if updated < replicas:
        return False, False, "", waiting + f"{updated} out of {replicas} new replicas have been updated..."
    if total > updated:
        return False, False, "", waiting + f"{total - updated} old replicas are pending termination..."
    if available < updated:
        return False, False, "", waiting + f"{available} of {updated} updated replicas are available..."
    return True, False, "", f"deployment {_q(name)} successfully rolled out"


def _not_rolling(strategy: dict) -> tuple[bool, bool, str, str] | None:
    kind = strategy.get("type") or ROLLING_UPDATE
    if kind != ROLLING_UPDATE:
        return False, True, str(kind), f"rollout status is only available for {ROLLING_UPDATE} strategy type"
    return None


def _statefulset(obj: dict, name: str) -> tuple[bool, bool, str, str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    strategy = _strategy(obj, "StatefulSet")
    refused = _not_rolling(strategy)
    if refused:
        return refused
    observed = _int(status.get("observedGeneration"))
    if observed == 0 or _int(_get(obj, "metadata", "generation")) > observed:
        return False, False, "", "Waiting for statefulset spec update to be observed..."
    replicas = _int(spec.get("replicas"), 1)
    ready, updated = _int(status.get("readyReplicas")), _int(status.get("updatedReplicas"))
    if ready < replicas:
        return False, False, "", f"Waiting for {replicas - ready} pods to be ready..."
    partition = _get(strategy, "rollingUpdate", "partition")
    if partition is not None:
        wanted = replicas - _int(partition)
        if updated < wanted:
            return False, False, "", f"Waiting for partitioned roll out to finish: {updated} out of {wanted} new pods have been updated..."
        return True, False, "", f"partitioned roll out complete: {updated} new pods have been updated..."
    update_rev, current_rev = status.get("updateRevision") or "", status.get("currentRevision") or ""
    if update_rev != current_rev:
        return False, False, "", f"waiting for statefulset rolling update to complete {updated} pods at revision {update_rev}..."
    current = _int(status.get("currentReplicas"))
    return True, False, "", f"statefulset rolling update complete {current} pods at revision {current_rev}..."


def _daemonset(obj: dict, name: str) -> tuple[bool, bool, str, str]:
    status = obj.get("status") or {}
    refused = _not_rolling(_strategy(obj, "DaemonSet"))
    if refused:
        return refused
    if _int(_get(obj, "metadata", "generation")) > _int(status.get("observedGeneration")):
        return False, False, "", "Waiting for daemon set spec update to be observed..."
    desired, updated, available = (_int(status.get(k)) for k in ("desiredNumberScheduled", "updatedNumberScheduled", "numberAvailable"))
    waiting = f"Waiting for daemon set {_q(name)} rollout to finish: "
    if updated < desired:
        return False, False, "", waiting + f"{updated} out of {desired} new pods have been updated..."
    if available < desired:
        return False, False, "", waiting + f"{available} of {desired} updated pods are available..."
    return True, False, "", f"daemon set {_q(name)} successfully rolled out"


_VIEWERS = {"Deployment": _deployment, "StatefulSet": _statefulset, "DaemonSet": _daemonset}


def _counts(obj: dict, kind: str) -> dict[str, int]:
    status = obj.get("status") or {}
    if kind == "DaemonSet":
        keys = ("desiredNumberScheduled", "updatedNumberScheduled", "numberReady", "numberAvailable")
        desired, updated, ready, available = (_int(status.get(k)) for k in keys)
    else:
        desired = _int(_get(obj, "spec", "replicas"), 1)
        updated, ready, available = (_int(status.get(k)) for k in ("updatedReplicas", "readyReplicas", "availableReplicas"))
    return {"desired": desired, "updated": updated, "ready": ready, "available": available}


def _line(kind: str, name: str, message: str) -> str:
    return f"{kind}/{name}: {message}" if name else message


def rollout_status(obj: Any) -> dict:
    """The rollout status of one Deployment, StatefulSet or DaemonSet.

    ``obj`` is the object as read, ``k8s_info``'s ``resources`` (a list of at most one object), a
    ``k8s_info`` result with at most one resource, or ``None`` when the object is missing. Returns
    ``kind``, ``name``, ``namespace``, ``done``, ``failed``, ``reason``, ``message`` (kubectl's
    wording, without its trailing newline), ``line`` (``Kind/name: message``, for a report), the
    counts ``desired``, ``updated``, ``ready``, ``available``, the pod template's container
    ``images`` (init containers excluded), ``generation`` and ``observed_generation``. Raises
    ValueError for any other kind.
    """
    found, known = _unwrap(obj)
    if found is None:
        kind, name = known.get("kind", ""), known.get("name", "")
        return {"kind": kind, "name": name, "namespace": known.get("namespace", ""),
                "done": False, "failed": False, "reason": NOT_FOUND, "message": "not found",
                "line": _line(kind, name, "not found"),
                "desired": 0, "updated": 0, "ready": 0, "available": 0, "images": [],
                "generation": 0, "observed_generation": 0}
    kind = found.get("kind")
    viewer = _VIEWERS.get(kind)
    if viewer is None:
        raise ValueError(f"no status viewer has been implemented for {kind!r} (only {', '.join(KINDS)})")
    name = _get(found, "metadata", "name") or ""
    done, failed, reason, message = viewer(found, name)
    return {"kind": kind, "name": name, "namespace": _get(found, "metadata", "namespace") or "",
            "done": done, "failed": failed, "reason": reason, "message": message, "line": _line(kind, name, message),
            **_counts(found, kind), "images": _images(found),
            "generation": _int(_get(found, "metadata", "generation")),
            "observed_generation": _int(_get(found, "status", "observedGeneration"))}


def _items(objs: Any, what: str = "") -> list:
    """A list, or a registered loop's ``results``."""
    if isinstance(objs, dict) and isinstance(objs.get("results"), list):
        return objs["results"]
    if objs is None:
        return []
    if not isinstance(objs, (list, tuple)):
        raise ValueError(f"expected a list of Kubernetes objects{what}, got {type(objs).__name__}")
    return list(objs)


def pending(objs: Any) -> list[dict]:
    """The statuses of the workloads that have not rolled out (failed and missing ones included).

    ``objs`` is a list of objects, ``None`` or single-object ``k8s_info`` results, or a registered
    loop of ``k8s_info`` results. Empty when every workload is done."""
    return [s for s in (rollout_status(o) for o in _items(objs)) if not s["done"]]


def template_revert_patch(before: Any) -> list[dict]:
    """A JSON patch (RFC 6902) that puts a workload's pod template back to ``before``'s.

    ``before`` is the workload as read before the change. The template is taken whole (a null
    ``metadata.creationTimestamp``, which the API server adds to every template it serves, is
    dropped). Raises ValueError when there is no ``before`` object or it has no template: a
    workload the change created is reverted by deleting it, not by a patch."""
    found, _known = _unwrap(before)
    if found is None:
        raise ValueError("no pre-change object to revert to (the workload did not exist before)")
    template = _get(found, "spec", "template")
    if not isinstance(template, dict):
        raise ValueError(f"{found.get('kind')} {_get(found, 'metadata', 'name')!r} has no spec.template")
    template = copy.deepcopy(template)
    meta = template.get("metadata")
    if isinstance(meta, dict) and "creationTimestamp" in meta and meta["creationTimestamp"] is None:
        del meta["creationTimestamp"]
    return [{"op": "replace", "path": "/spec/template", "value": template}]


def _key(obj: dict) -> tuple[str, str, str]:
    return obj.get("kind") or "", _get(obj, "metadata", "namespace") or "", _get(obj, "metadata", "name") or ""


def summary_rows(before: Any, after: Any) -> list[dict]:
    """One row per workload in ``after``: ``kind``, ``name``, ``old_image`` (the first container's
    image in the matching ``before`` object, matched by kind, namespace and name; ``None`` when it
    did not exist), ``new_image``, ``ready``, ``desired`` and ``line`` (``Deployment/api: 3f2c1d9 ->
    4a5b6c7, 3/3 ready``). Missing ``after`` objects are skipped."""
    old = {}
    for item in _items(before, " (before)"):
        found, _known = _unwrap(item)
        if found is not None:
            old[_key(found)] = found
    rows = []
    for item in _items(after, " (after)"):
        found, _known = _unwrap(item)
        if found is None:
            continue
        status = rollout_status(found)
        prior = old.get(_key(found))
        old_images = _images(prior) if prior is not None else []
        row = {"kind": status["kind"], "name": status["name"],
               "old_image": old_images[0] if old_images else None,
               "new_image": status["images"][0] if status["images"] else None,
               "ready": status["ready"], "desired": status["desired"]}
        row["line"] = "%s/%s: %s -> %s, %d/%d ready" % (
            row["kind"], row["name"], _tag(row["old_image"]), _tag(row["new_image"]), row["ready"], row["desired"])
        rows.append(row)
    return rows


def _tag(image: Any) -> str:
    """The tag of an image reference (``-`` for none): what a deploy summary shows."""
    if not image:
        return "-"
    if "@" in str(image):
        return str(image).split("@", 1)[1][:19]  # a pinned digest, shortened
    name = str(image)
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else "latest"

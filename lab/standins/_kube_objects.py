"""Helpers shared by the Kubernetes stand-in's REST layer and controllers: Status documents,
time stamps, server-side defaults, template hashes and image references."""
from __future__ import annotations

import copy
import hashlib
import json
import time
from typing import Any

from ._kube_resources import ResourceType
from ._server import Response

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339(at: float | None = None) -> str:
    """A Kubernetes time stamp (RFC 3339, seconds, UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if at is None else at))


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None,
           headers: dict[str, str] | None = None) -> Response:
    """A ``Status`` answer (``kind: Status``, ``status: Failure`` unless the code is 2xx)."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Success" if code < 300 else "Failure", "message": message,
                            "reason": reason, "code": code}
    if details is not None:
        body["details"] = details
    if code < 300:
        body.pop("message")
        body.pop("reason")
    return Response(code, body, dict(headers or {}))


def not_found(rt: ResourceType, name: str) -> Response:
    return status(404, "NotFound", f'{rt.qualified} "{name}" not found',
                  {"name": name, "group": rt.group, "kind": rt.plural} if rt.group else
                  {"name": name, "kind": rt.plural})


def safe_encode(digest: bytes, length: int = 10) -> str:
    """Encode bytes with the alphabet Kubernetes uses for generated names (no vowels, no 0/1/3)."""
    number = int.from_bytes(digest, "big")
    out = ""
    while number and len(out) < length:
        number, rem = divmod(number, len(_SAFE_ALPHABET))
        out += _SAFE_ALPHABET[rem]
    return out


def template_hash(template: dict[str, Any], collisions: int = 0) -> str:
    """A stable ``pod-template-hash`` for a pod template."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":")) + str(collisions)
    return safe_encode(hashlib.sha256(canonical.encode()).digest()[:8], 10)


def normalize_image(image: str) -> str:
    """``nginx`` -> ``library/nginx:latest`` style key so references compare equal."""
    name = image
    for prefix in ("docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if "/" not in name:
        name = f"library/{name}"
    last = name.rsplit("/", 1)[-1]
    if "@" not in last and ":" not in last:
        name += ":latest"
    return name


def split_image(image: str) -> tuple[str, str]:
    """(repository path without registry host, tag or digest) for a registry v2 lookup."""
    first, _, rest = image.partition("/")
    path = rest if rest and ("." in first or ":" in first or first == "localhost") else image
    if "@" in path:
        repo, ref = path.split("@", 1)
    else:
        repo, _, ref = path.rpartition(":") if ":" in path.rsplit("/", 1)[-1] else (path, "", "latest")
    if "/" not in repo:  # Docker Hub official images live under library/
        repo = f"library/{repo}"
    return repo, ref or "latest"


def pod_template_defaults(template: dict[str, Any], restart_policy: str = "Always") -> None:
    """The API server's defaults for a pod template, in place."""
    template.setdefault("metadata", {})
    spec = template.setdefault("spec", {})
    spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if not isinstance(container, dict):
            continue
        image = str(container.get("image", ""))
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")


def deep_equal_ignoring(a: dict[str, Any], b: dict[str, Any], *keys: str) -> bool:
    """Compare two objects, leaving out top-level ``keys`` and ``metadata.resourceVersion``."""
    def strip(obj: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in obj.items() if k not in keys}
        meta = dict(out.get("metadata") or {})
        meta.pop("resourceVersion", None)
        out["metadata"] = meta
        return out
    return strip(a) == strip(b)


def clone(obj: Any) -> Any:
    """A deep copy (objects leave the store only as copies)."""
    return copy.deepcopy(obj)

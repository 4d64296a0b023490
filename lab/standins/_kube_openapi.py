"""The apiserver's OpenAPI v3 discovery (``/openapi/v3`` and one document per group-version), as
far as clients read it (pure).

kubectl (``--validate=strict``, its default) asks it whether a kind's PATCH operation takes the
``fieldValidation`` query parameter (cli-runtime ``queryParamVerifierV3``: a path whose ``patch``
carries ``x-kubernetes-group-version-kind`` and a ``fieldValidation`` parameter ``in: query``); when
it does, kubectl leaves validation to the server (strict field validation) instead of downloading
schemas. The documents here carry the paths and operations of every served resource with the
apiserver's query parameters and ``x-kubernetes-*`` extensions; ``components.schemas`` is left out
(``kubectl explain`` and client-side validation would need it).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from ._kube_resources import ResourceType

WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")


def gv_path(rt: ResourceType) -> str:
    """``api/v1`` or ``apis/<group>/<version>`` (the keys of ``/openapi/v3``'s ``paths``)."""
    return f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}"


def _param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}


def _op(rt: ResourceType, action: str, params: tuple[str, ...]) -> dict[str, Any]:
    return {"operationId": f"{action}{rt.kind}", "tags": [gv_path(rt).replace("/", "_")],
            "parameters": [_param(p) for p in params],
            "responses": {"200": {"description": "OK"}, "401": {"description": "Unauthorized"}},
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind}}


def _paths(rt: ResourceType) -> dict[str, Any]:
    base = f"/{gv_path(rt)}/" + ("namespaces/{namespace}/" if rt.namespaced else "") + rt.plural
    collection: dict[str, Any] = {"get": _op(rt, "list", ("labelSelector", "fieldSelector", "limit", "continue",
                                                          "resourceVersion", "timeoutSeconds", "watch"))}
    item: dict[str, Any] = {"get": _op(rt, "get", ())}
    if "create" in rt.verbs:
        collection["post"] = _op(rt, "post", WRITE_PARAMS)
    if "deletecollection" in rt.verbs:
        collection["delete"] = _op(rt, "deletecollection", ("dryRun", "labelSelector", "fieldSelector"))
    if "update" in rt.verbs:
        item["put"] = _op(rt, "put", WRITE_PARAMS)
    if "patch" in rt.verbs:
        item["patch"] = _op(rt, "patch", (*WRITE_PARAMS, "force"))
    if "delete" in rt.verbs:
        item["delete"] = _op(rt, "delete", ("dryRun", "gracePeriodSeconds", "propagationPolicy"))
    out = {base: collection, base + "/{name}": item}
    for sub in rt.subresources:
        if sub in ("status", "scale"):
            out[f"{base}/{{name}}/{sub}"] = {"get": _op(rt, "get", ()), "put": _op(rt, "put", WRITE_PARAMS),
                                             "patch": _op(rt, "patch", (*WRITE_PARAMS, "force"))}
    return out


def document(resources: tuple[ResourceType, ...], gv: str, title_version: str) -> dict[str, Any] | None:
    """The OpenAPI v3 document of one group-version (None when nothing is served there)."""
    served = [rt for rt in resources if gv_path(rt) == gv]
    if not served:
        return None
    paths: dict[str, Any] = {}
    for rt in served:
        paths.update(_paths(rt))
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": title_version},
            "paths": paths, "components": {"schemas": {}}}


def root(resources: tuple[ResourceType, ...], title_version: str) -> dict[str, Any]:
    """``/openapi/v3``: each group-version's document URL, with the content hash clients cache by."""
    out = {}
    for gv in sorted({gv_path(rt) for rt in resources}):
        doc = document(resources, gv, title_version)
        digest = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest().upper()[:128]
        out[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest}"}
    return {"paths": out}

"""The stand-in's OpenAPI v3 discovery, read the way kubectl's field-validation check reads it."""
from __future__ import annotations

from lab.standins import _kube_openapi as oa
from lab.standins import _kube_resources as kres


def supports_field_validation(doc: dict, group: str, version: str, kind: str) -> bool:
    """cli-runtime queryParamVerifierV3: the PATCH operation of the kind takes ``fieldValidation`` in the query."""
    for item in doc["paths"].values():
        op = item.get("patch")
        if op and op.get("x-kubernetes-group-version-kind") == {"group": group, "version": version, "kind": kind}:
            return any(p["name"] == "fieldValidation" and p["in"] == "query" for p in op.get("parameters", []))
    return False


def test_every_served_group_version_is_listed_with_a_cache_hash() -> None:
    root = oa.root(kres.RESOURCES, "v1.34.6+k3s1")
    assert {"api/v1", "apis/apps/v1", "apis/networking.k8s.io/v1", "apis/helm.cattle.io/v1"} <= set(root["paths"])
    url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=") and len(url.split("hash=")[1]) == 128


def test_kubectl_finds_server_side_field_validation_for_each_kind() -> None:
    apps = oa.document(kres.RESOURCES, "apis/apps/v1", "v1.34.6+k3s1")
    assert supports_field_validation(apps, "apps", "v1", "Deployment")
    assert not supports_field_validation(apps, "", "v1", "Pod"), "another group-version's kind"
    core = oa.document(kres.RESOURCES, "api/v1", "v1.34.6+k3s1")
    assert supports_field_validation(core, "", "v1", "Namespace"), "kubectl's stand-in check for CRDs"
    assert "/api/v1/namespaces/{namespace}/pods/{name}/status" in core["paths"]
    assert "/api/v1/nodes/{name}" in core["paths"] and "/api/v1/namespaces/{namespace}/nodes" not in core["paths"]
    assert oa.document(kres.RESOURCES, "apis/nothing.example/v1", "v") is None

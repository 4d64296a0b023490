"""Server-side apply through kubernetes.core.k8s (``apply: true`` + ``server_side_apply``) against the
Kubernetes stand-in: conflicts, force, unknown fields, field removal and idempotence as kube-apiserver
1.34 answers them (see lab/standins/_kube_ssa.py for the sources)."""
from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def kubeconfig(kube_api, tmp_path: Path) -> Path:
    return kube_api.kubeconfig(tmp_path / "kubeconfig")


def _deployment(replicas: int = 2, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": labels or {"app": "web"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}, **spec}}


def _apply(name: str, definition: dict[str, Any], manager: str, *, force: bool = False) -> dict[str, Any]:
    ssa: dict[str, Any] = {"field_manager": manager}
    if force:
        ssa["force_conflicts"] = True
    return {"name": name, "ignore_errors": True,
            "kubernetes.core.k8s": {"state": "present", "apply": True, "server_side_apply": ssa,
                                    "definition": definition}}


def _run(playbook, kubeconfig: Path, tasks: list[dict[str, Any]]):
    namespace = {"name": "namespace", "kubernetes.core.k8s": {
        "state": "present", "definition": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}}}
    run = playbook([{"hosts": "localhost", "gather_facts": False,
                     "module_defaults": {"group/kubernetes.core.k8s": {"kubeconfig": str(kubeconfig)}},
                     "tasks": [namespace, *tasks]}])
    assert run.rc == 0, run.stdout + run.stderr
    return run


def _status(result: dict[str, Any]) -> dict[str, Any]:
    """The apiserver's Status document inside kubernetes.core's ``Failed to apply object: b'...'``."""
    prefix = "Failed to apply object: "
    assert result.get("failed") is True and result["msg"].startswith(prefix), result
    return json.loads(ast.literal_eval(result["msg"][len(prefix):]))


def _owners(obj: dict[str, Any], *path: str) -> set[str]:
    """Managers whose fieldsV1 hold ``path`` (e.g. ``"f:spec", "f:replicas"``)."""
    out = set()
    for entry in obj["metadata"].get("managedFields") or []:
        node = entry["fieldsV1"]
        for element in path:
            node = node.get(element) if isinstance(node, dict) else None
        if node is not None:
            out.add(entry["manager"])
    return out


def test_apply_conflicts_with_another_manager_until_forced(kube_api, kubeconfig, playbook) -> None:
    run = _run(playbook, kubeconfig, [_apply("team a", _deployment(replicas=2), "team-a"),
                                      _apply("team b", _deployment(replicas=3), "team-b"),
                                      _apply("team b forced", _deployment(replicas=3), "team-b", force=True)])
    refused = _status(run.task_results("team b"))
    assert refused["code"] == 409 and refused["reason"] == "Conflict"
    assert refused["message"] == 'Apply failed with 1 conflict: conflict with "team-a": .spec.replicas'
    assert refused["details"] == {"causes": [{"reason": "FieldManagerConflict", "message": 'conflict with "team-a"',
                                              "field": ".spec.replicas"}]}
    forced = run.task_results("team b forced")
    assert forced.get("failed") is not True and forced["changed"] is True
    final = kube_api.get_object("apps", "deployments", "shop", "web")
    assert final["spec"]["replicas"] == 3
    assert _owners(final, "f:spec", "f:replicas") == {"team-b"}
    assert _owners(final, "f:spec", "f:selector") == {"team-a", "team-b"}  # same value: shared, no conflict
    assert [(e["manager"], e["operation"]) for e in final["metadata"]["managedFields"]] == [
        ("team-a", "Apply"), ("team-b", "Apply")]


def test_apply_conflicts_with_the_manager_that_created_the_object(kube_api, kubeconfig, playbook) -> None:
    created = {"name": "create", "kubernetes.core.k8s": {"state": "present", "definition": _deployment(replicas=2)}}
    run = _run(playbook, kubeconfig, [created, _apply("apply", _deployment(replicas=4), "ansible")])
    refused = _status(run.task_results("apply"))
    assert refused["message"] == ('Apply failed with 1 conflict: conflict with "OpenAPI-Generator" using apps/v1: '
                                  '.spec.replicas')
    obj = kube_api.get_object("apps", "deployments", "shop", "web")
    assert [(e["manager"], e["operation"]) for e in obj["metadata"]["managedFields"]] == [
        ("OpenAPI-Generator", "Update")]


def test_apply_with_an_unknown_field_fails_with_the_typed_conversion_error(kube_api, kubeconfig, playbook) -> None:
    run = _run(playbook, kubeconfig, [_apply("apply", _deployment(foo=1), "ansible")])
    refused = _status(run.task_results("apply"))
    assert refused == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 500,
                       "message": "failed to create typed patch object (shop/web; apps/v1, Kind=Deployment): "
                                  ".spec.foo: field not declared in schema"}
    assert kube_api.get_object("apps", "deployments", "shop", "web") is None


def test_a_label_dropped_from_the_applied_configuration_is_removed(kube_api, kubeconfig, playbook) -> None:
    run = _run(playbook, kubeconfig, [_apply("with", _deployment(labels={"app": "web", "extra": "x"}), "ansible"),
                                      _apply("without", _deployment(labels={"app": "web"}), "ansible")])
    assert run.task_results("without")["changed"] is True
    final = kube_api.get_object("apps", "deployments", "shop", "web")
    assert final["metadata"]["labels"] == {"app": "web"}
    assert _owners(final, "f:metadata", "f:labels", "f:extra") == set()


def test_a_second_identical_apply_changes_nothing(kube_api, kubeconfig, playbook) -> None:
    run = _run(playbook, kubeconfig, [_apply("first", _deployment(), "ansible")])
    import time
    for _ in range(100):  # the rollout settles first: its status writes move resourceVersion, as on a cluster
        before = kube_api.get_object("apps", "deployments", "shop", "web")
        if (before.get("status") or {}).get("availableReplicas") == 2:
            break
        time.sleep(0.1)
    time.sleep(0.3)
    before = kube_api.get_object("apps", "deployments", "shop", "web")
    run = _run(playbook, kubeconfig, [_apply("again", _deployment(), "ansible")])
    assert run.task_results("again")["changed"] is False
    after = kube_api.get_object("apps", "deployments", "shop", "web")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["metadata"]["managedFields"] == before["metadata"]["managedFields"]
    assert [e["manager"] for e in after["metadata"]["managedFields"]] == ["ansible"]


# -- bare HTTP: the bookkeeping around apply ---------------------------------------------------------
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def _yaml(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()  # JSON is YAML


def _entries(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(e["manager"], e["operation"], e.get("subresource", "")) for e in obj["metadata"]["managedFields"]]


def test_writes_record_update_entries_by_field_manager_or_user_agent(kube_api) -> None:
    from tests.integration.standins.test_kube_conformance import Client, deployment

    k = Client(kube_api.url)
    code, created, _ = k("POST", DEPLOYMENTS, deployment())
    assert code == 201 and _entries(created) == [("Python-urllib", "Update", "")]  # urllib's user-agent prefix
    fields = created["metadata"]["managedFields"][0]["fieldsV1"]
    assert fields["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    assert "f:replicas" in fields["f:spec"] and "f:progressDeadlineSeconds" in fields["f:spec"]  # defaults too
    code, scaled, _ = k("PATCH", f"{DEPLOYMENTS}/web/scale?fieldManager=hpa", {"spec": {"replicas": 4}},
                        "application/merge-patch+json")
    assert code == 200
    obj = kube_api.get_object("apps", "deployments", "default", "web")
    assert sorted(_entries(obj)) == [("Python-urllib", "Update", ""), ("hpa", "Update", "scale")]
    hpa = next(e for e in obj["metadata"]["managedFields"] if e["manager"] == "hpa")
    assert hpa["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    code, body, _ = k("PATCH", f"{DEPLOYMENTS}/web?fieldManager=ci", _yaml(deployment() | {"spec": {
        **deployment()["spec"], "replicas": 2}}), "application/apply-patch+yaml")
    assert code == 409 and body["message"] == ('Apply failed with 1 conflict: conflict with "hpa" with subresource '
                                               '"scale" using apps/v1: .spec.replicas')
    code, body, _ = k("PATCH", f"{DEPLOYMENTS}/web?fieldManager=x&force=true", {"spec": {"replicas": 1}},
                      "application/merge-patch+json")
    assert code == 422 and body["message"] == ('PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not '
                                               'be specified for non-apply patch')


def test_apply_patch_checks_before_merging(kube_api) -> None:
    from tests.integration.standins.test_kube_conformance import Client, deployment

    k = Client(kube_api.url)
    carried = deployment()
    carried["metadata"]["managedFields"] = [{"manager": "x", "operation": "Apply", "apiVersion": "apps/v1"}]
    code, body, _ = k("PATCH", f"{DEPLOYMENTS}/web?fieldManager=ci", _yaml(carried), "application/apply-patch+yaml")
    assert (code, body["reason"], body["message"]) == (400, "BadRequest", "metadata.managedFields must be nil")
    code, body, _ = k("PATCH", f"{DEPLOYMENTS}/web?fieldManager=ci", _yaml({**deployment(), "apiVersion": "apps/v1beta1"}),
                      "application/apply-patch+yaml")
    assert (code, body["message"]) == (400, "Incorrect version specified in apply patch. Specified patch version: "
                                            "apps/v1beta1, expected: apps/v1")
    code, created, _ = k("PATCH", f"{DEPLOYMENTS}/web?fieldManager=ci", _yaml(deployment()),
                         "application/apply-patch+yaml")
    assert code == 201 and _entries(created) == [("ci", "Apply", "")]
    assert "f:progressDeadlineSeconds" not in created["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]


def test_managed_fields_sent_on_update_replace_the_live_ones(kube_api) -> None:
    from tests.integration.standins.test_kube_conformance import Client, deployment

    k = Client(kube_api.url)
    created = k("POST", f"{DEPLOYMENTS}?fieldManager=maker", deployment())[1]
    meta = {key: v for key, v in created["metadata"].items() if key not in ("managedFields", "resourceVersion")}
    kept = k("PUT", f"{DEPLOYMENTS}/web?fieldManager=editor",
             {**created, "metadata": {**meta, "labels": {"app": "web", "x": "1"}}})[1]
    assert sorted(_entries(kept)) == [("editor", "Update", ""), ("maker", "Update", "")]  # none sent: the live ones
    editor = next(e for e in kept["metadata"]["managedFields"] if e["manager"] == "editor")
    assert editor["fieldsV1"] == {"f:metadata": {"f:labels": {"f:x": {}}}}
    meta = {key: v for key, v in kept["metadata"].items() if key != "resourceVersion"}
    cleared = k("PUT", f"{DEPLOYMENTS}/web", {**kept, "metadata": {**meta, "managedFields": [{}]}})[1]
    assert "managedFields" not in cleared["metadata"]  # [{}] clears them; the PUT itself changed nothing

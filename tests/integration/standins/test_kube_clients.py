"""kubernetes.core modules and the kubernetes python client against the Kubernetes stand-in."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


def _deployment(image: str, name: str = "web", namespace: str = "shop") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name, "tier": "front"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": image,
                                                           "ports": [{"containerPort": 8080}]}]}}}}


def _namespace(name: str = "shop") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _play(kubeconfig: Path, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"hosts": "localhost", "gather_facts": False,
             "module_defaults": {"group/kubernetes.core.k8s": {"kubeconfig": str(kubeconfig)}},
             "tasks": tasks}]


def _apply_tasks(image: str, *, apply: bool = False, timeout: int = 20) -> list[dict[str, Any]]:
    return [
        {"name": "namespace", "kubernetes.core.k8s": {"state": "present", "definition": _namespace()}},
        {"name": "deployment", "kubernetes.core.k8s": {
            "state": "present", "definition": _deployment(image), "apply": apply, "wait": True,
            "wait_sleep": 1, "wait_timeout": timeout}},
    ]


@pytest.fixture
def kubeconfig(kube_api, tmp_path: Path) -> Path:
    kube_api.rollout_seconds = 0.2
    return kube_api.kubeconfig(tmp_path / "kubeconfig")


def _deploy_task(name: str, image: str, *, apply: bool = False) -> dict[str, Any]:
    return {"name": name, "kubernetes.core.k8s": {"state": "present", "definition": _deployment(image),
                                                  "apply": apply, "wait": True, "wait_sleep": 1,
                                                  "wait_timeout": 20}}


def test_k8s_deploys_waits_and_is_idempotent(kube_api, kubeconfig, playbook) -> None:
    tasks = [*_apply_tasks("nginx:1.27")[:1],
             _deploy_task("create", "nginx:1.27"),
             _deploy_task("again", "nginx:1.27"),
             _deploy_task("apply", "nginx:1.27", apply=True),
             _deploy_task("apply again", "nginx:1.27", apply=True)]
    run = playbook(_play(kubeconfig, tasks))
    assert run.rc == 0, run.stdout + run.stderr
    created = run.task_results("create")
    assert created["changed"] is True
    assert created["result"]["status"]["availableReplicas"] == 2
    assert created["result"]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert run.task_results("again")["changed"] is False
    # the first apply adds the last-applied-configuration annotation: a change, but not to the spec
    applied = run.task_results("apply")
    assert applied["changed"] is True
    assert "kubectl.kubernetes.io/last-applied-configuration" in applied["result"]["metadata"]["annotations"]
    assert applied["result"]["metadata"]["generation"] == 1
    assert run.task_results("apply again")["changed"] is False
    assert run.task_results("namespace")["changed"] is True

    patches = kube_api.calls("PATCH", r"/deployments/web$")
    # strategic merge for `k8s`, merge patch for client-side apply; kubernetes.core's apply re-sends
    # lists with a merge key even when unchanged, which the server must treat as a no-op
    assert [c.status for c in patches] == [200, 200, 200]
    final = kube_api.get_object("apps", "deployments", "shop", "web")
    assert final["metadata"]["resourceVersion"] == run.task_results("apply again")["result"]["metadata"][
        "resourceVersion"] == applied["result"]["metadata"]["resourceVersion"]


def test_image_update_then_rollback(kube_api, kubeconfig, playbook) -> None:
    tasks = [
        *_apply_tasks("nginx:1.27")[:1],
        _deploy_task("v1", "nginx:1.27"),
        _deploy_task("v2", "nginx:1.28"),
        {"name": "replicasets", "kubernetes.core.k8s_info": {
            "kind": "ReplicaSet", "namespace": "shop", "label_selectors": ["app=web"]}},
        {"name": "rollback", "kubernetes.core.k8s_rollback": {
            "api_version": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "shop",
            "kubeconfig": str(kubeconfig)}},
        {"name": "after", "kubernetes.core.k8s_info": {
            "kind": "Deployment", "namespace": "shop", "name": "web", "wait": True, "wait_sleep": 1,
            "wait_timeout": 20}},
    ]
    run = playbook(_play(kubeconfig, tasks))
    assert run.rc == 0, run.stdout
    assert run.task_results("v2")["changed"] is True
    result = run.task_results("v2")["result"]
    assert result["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert result["metadata"]["generation"] == 2
    replicasets = run.task_results("replicasets")["resources"]
    revisions = sorted(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for rs in replicasets)
    assert revisions == ["1", "2"]
    assert sorted(rs["spec"]["replicas"] for rs in replicasets) == [0, 2]  # old one scaled down, kept
    assert run.task_results("rollback")["changed"] is True
    after = run.task_results("after")["resources"][0]
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    # the old ReplicaSet is the current one again, with the next revision (as kubectl rollout undo does)
    assert after["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert after["status"]["availableReplicas"] == 2
    patch = kube_api.calls("PATCH", r"/deployments/web$")[-1]
    assert [op["op"] for op in patch.body] == ["replace", "replace"]


def test_missing_image_never_becomes_ready(kube_api, kubeconfig, playbook) -> None:
    kube_api.declare_images(["nginx:1.27"])
    kube_api.deadline_factor = 1 / 600  # progressDeadlineSeconds 600 -> 1 s
    run = playbook(_play(kubeconfig, _apply_tasks("nginx:does-not-exist", timeout=3)))
    assert run.rc != 0
    failed = run.task_results("deployment")
    assert failed.get("failed") is True
    assert "wait" in failed["msg"].lower() or "timed out" in failed["msg"].lower(), failed["msg"]
    status = kube_api.get_object("apps", "deployments", "shop", "web")["status"]
    assert status.get("availableReplicas") is None and status["unavailableReplicas"] == 2
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")


def test_k8s_info_label_selectors(kube_api, kubeconfig, playbook) -> None:
    tasks = [*_apply_tasks("nginx:1.27")[:1],
             {"name": "configmaps", "kubernetes.core.k8s": {"definition": [
                 {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": n, "namespace": "shop", "labels": labels}, "data": {"k": n}}
                 for n, labels in (("a", {"tier": "front"}), ("b", {"tier": "back"}), ("c", {}))]}},
             {"name": "front", "kubernetes.core.k8s_info": {"kind": "ConfigMap", "namespace": "shop",
                                                           "label_selectors": ["tier in (front)"]}},
             {"name": "not back", "kubernetes.core.k8s_info": {"kind": "ConfigMap", "namespace": "shop",
                                                              "label_selectors": ["tier!=back",
                                                                                  "!controller"]}}]
    # kubernetes.core goes through the same client: a 429 on its first list is retried, not fatal
    kube_api.inject("rate_limit", method="GET", path=r"/namespaces/shop/configmaps$", times=1)
    run = playbook(_play(kubeconfig, tasks))
    assert run.rc == 0, run.stdout
    names = lambda task: sorted(r["metadata"]["name"] for r in run.task_results(task)["resources"])  # noqa: E731
    assert names("front") == ["a"]
    assert names("not back") == ["a", "c", "kube-root-ca.crt"]
    lists = kube_api.calls("GET", r"/namespaces/shop/configmaps$")
    assert [c.status for c in lists] == [429, 200, 200]
    assert lists[-1].query["labelSelector"] == ["tier!=back,!controller"]


def test_rate_limited_get_is_retried_by_the_client(kube_api, tmp_path: Path) -> None:
    """The kubernetes python client: a 429 with Retry-After on a GET is retried (by urllib3's default
    Retry, which honours Retry-After for 429 on idempotent methods); on a PATCH it surfaces."""
    import time

    from kubernetes import client, config

    api_client = config.new_client_from_config(str(kube_api.kubeconfig(tmp_path / "kubeconfig")))
    apps = client.AppsV1Api(api_client)
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": "shop"}})
    apps.create_namespaced_deployment("shop", _deployment("nginx:1.27"))
    kube_api.inject("rate_limit", method="GET", path=r"/deployments/web$", times=1)

    started = time.monotonic()
    deployment = apps.read_namespaced_deployment("web", "shop")
    assert deployment.metadata.name == "web"
    assert time.monotonic() - started >= 1.0  # waited for Retry-After: 1
    calls = kube_api.calls("GET", r"/deployments/web$")
    assert [(c.status, c.fault) for c in calls] == [(429, True), (200, False)]

    kube_api.inject("rate_limit", method="PATCH", path=r"/deployments/web$", times=1)
    with pytest.raises(client.ApiException) as caught:
        apps.patch_namespaced_deployment("web", "shop", {"metadata": {"labels": {"x": "y"}}})
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "1"
    assert json.loads(caught.value.body)["reason"] == "TooManyRequests"

"""The worker runs the Asynq scheduler: never two at once. honeydue_app makes it a one-replica
StatefulSet; here a node is partitioned (its kubelet silent: the Node turns Unknown, the taint
eviction controller marks its pods for deletion, and no kubelet confirms) against the Kubernetes
stand-in, next to the anchor the issue names: a Deployment with Recreate, which starts a second
pod while the first may still run."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TOKEN = "partition-token"
VARS = {"honeydue_domain": "honeydue.example", "honeydue_app_check_images": False,
        "honeydue_app_probe_period": 1, "honeydue_app_api_startup_failure_threshold": 5,
        "honeydue_app_admin_startup_failure_threshold": 5, "honeydue_app_progress_deadline": 60,
        "honeydue_app_rollout_timeout": 60, "honeydue_app_rollout_poll": 1,
        "vault_honeydue_registry_username": "deploy", "vault_honeydue_registry_password": "pull-pw",
        **{f"vault_honeydue_{k}": f"value-of-{k}" for k in (
            "database_url", "redis_password", "secret_key", "jwt_secret", "b2_key_id", "b2_application_key",
            "smtp_username", "smtp_password")}}
ANCHOR = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "worker-recreate", "namespace": "honeydue"},
          "spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": {"anchor": "recreate"}},
                   "template": {"metadata": {"labels": {"anchor": "recreate"}},
                                "spec": {"containers": [{"name": "worker", "image": "git.honeydue.example/honeydue/worker:1a2b3c4"}]}}}}


@pytest.fixture
def api() -> Iterator[Any]:
    from lab.standins.kube import KubeStandIn

    standin = KubeStandIn(token=TOKEN, rollout_seconds=0.2)
    standin.deadline_factor = 1.0  # progress deadlines in real seconds
    standin.eviction_factor = 0.01  # the taint eviction's 300 s toleration takes 3 s here
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()
        assert not standin.contract_violations, standin.contract_violations


def _pods(api, selector: dict[str, str]) -> list[dict[str, Any]]:
    return [p for p in api.items(api._rt("", "pods"), "honeydue")
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]


def _watch(api, selector: dict[str, str], seconds: float) -> tuple[int, list[dict[str, Any]]]:
    """The most pods of ``selector`` that existed at once (Terminating ones count: a partitioned
    node's process may still run) over ``seconds``, and the last list."""
    most, pods = 0, []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with api._lock:
            pods = _pods(api, selector)
        most = max(most, len(pods))
        time.sleep(0.05)
    return most, pods


def test_a_partitioned_node_never_gives_two_workers_where_recreate_does(api, playbook, tmp_path: Path) -> None:
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
    run = playbook([{"hosts": "localhost", "gather_facts": False,
                     "tasks": [{"ansible.builtin.include_role": {"name": "honeydue.infra.honeydue_app"},
                                "vars": {**VARS, "honeydue_kubeconfig": str(kubeconfig), "honeydue_app_sha": "1a2b3c4"}},
                               {"kubernetes.core.k8s": {"kubeconfig": str(kubeconfig), "definition": ANCHOR,
                                                        "wait": True, "wait_timeout": 30}}]}])
    assert run.rc == 0, json.dumps(run.result)[-3000:]
    worker_sel = {"app.kubernetes.io/component": "worker"}
    (worker,) = _pods(api, worker_sel)
    (anchor,) = _pods(api, {"anchor": "recreate"})
    partitioned = {worker["spec"]["nodeName"], anchor["spec"]["nodeName"]}
    assert len(partitioned) < 3, "one node keeps serving"
    for node in partitioned:
        api.set_node_ready(node, "Unknown")

    most_workers, workers = _watch(api, worker_sel, 8)
    _, anchors = _watch(api, {"anchor": "recreate"}, 0.5)
    assert [p["metadata"]["name"] for p in workers] == ["worker-0"]
    assert workers[0]["metadata"].get("deletionTimestamp"), "evicted: Terminating, never confirmed by its kubelet"
    assert most_workers == 1, "never two workers, even while the old pod may still run"
    terminating = [p for p in anchors if p["metadata"].get("deletionTimestamp")]
    running = [p for p in anchors if not p["metadata"].get("deletionTimestamp")]
    assert len(terminating) == 1 and len(running) == 1, "the Recreate anchor: a second pod beside the evicted one"

    for node in partitioned:
        api.set_node_ready(node, "True")
    (back,) = _watch(api, worker_sel, 15)[1] or [None]
    assert back is not None and not back["metadata"].get("deletionTimestamp") and back["metadata"]["uid"] != worker["metadata"]["uid"]

"""Pods, the scheduler, local-path WaitForFirstConsumer and NotReady eviction in the Kubernetes stand-in,
driven through kubernetes.core.k8s / k8s_info in real ansible-playbook runs."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

NS = "shop"
FREE_PORTS = ("0/3 nodes are available: 3 node(s) didn't have free ports for the requested pod ports. "
              "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.")


@pytest.fixture
def kubeconfig(kube_api, tmp_path: Path) -> Path:
    kube_api.rollout_seconds = 0.2
    return kube_api.kubeconfig(tmp_path / "kubeconfig")


def _play(kubeconfig: Path, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"hosts": "localhost", "gather_facts": False,
             "module_defaults": {"group/kubernetes.core.k8s": {"kubeconfig": str(kubeconfig)}},
             "tasks": [{"name": "namespace", "kubernetes.core.k8s": {"definition": {
                 "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}}}, *tasks]}]


def _container(image: str = "nginx:1.27", port: dict[str, Any] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image}
    if port:
        container["ports"] = [port]
    return container


def _template(app: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [_container()], **spec}}


def _workload(kind: str, name: str, replicas: int | None = 1, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"selector": {"matchLabels": {"app": name}}, "template": _template(name), **spec}
    if replicas is not None:
        body["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": NS}, "spec": body}


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
            "spec": {"containers": [_container()], **spec}}


def _apply(name: str, definition: dict[str, Any], wait: bool = False, timeout: int = 20) -> dict[str, Any]:
    args: dict[str, Any] = {"definition": definition}
    if wait:
        args.update(wait=True, wait_sleep=1, wait_timeout=timeout)
    return {"name": name, "kubernetes.core.k8s": args}


def _info(task: str, kind: str, **args: Any) -> dict[str, Any]:
    return {"name": task, "kubernetes.core.k8s_info": {"kind": kind, "namespace": NS, **args}}


def _pods(run: Any, task: str) -> list[dict[str, Any]]:
    return run.task_results(task)["resources"]


def _scheduled(pod: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")


def test_deployment_pods_spread_over_the_nodes(kube_api, kubeconfig, playbook) -> None:
    deployment = _workload("Deployment", "web", 3)
    run = playbook(_play(kubeconfig, [_apply("deploy", deployment, wait=True),
                                      _info("pods", "Pod", label_selectors=["app=web"])]))
    assert run.rc == 0, run.stdout
    pods = _pods(run, "pods")
    assert len(pods) == 3
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["k3s-node-1", "k3s-node-2", "k3s-node-3"]
    rs_hash = pods[0]["metadata"]["labels"]["pod-template-hash"]
    for pod in pods:
        assert pod["status"]["phase"] == "Running" and pod["metadata"]["name"].startswith(f"web-{rs_hash}-")
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
        assert _scheduled(pod)["status"] == "True"
        # the DefaultTolerationSeconds admission plugin's tolerations
        assert {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": 300} in pod["spec"]["tolerations"]


def test_host_network_port_80_once_per_node(kube_api, kubeconfig, playbook) -> None:
    """A hostNetwork DaemonSet on :80 runs everywhere; a second hostNetwork pod on :80 fits nowhere."""
    agent = _workload("DaemonSet", "edge", None)
    agent["spec"]["template"]["spec"].update(hostNetwork=True, containers=[_container(port={"containerPort": 80})])
    intruder = _pod("intruder", hostNetwork=True, containers=[_container(port={"containerPort": 80})])
    run = playbook(_play(kubeconfig, [_apply("daemonset", agent, wait=True), _apply("intruder", intruder),
                                      _info("ds pods", "Pod", label_selectors=["app=edge"]),
                                      _info("intruder pod", "Pod", name="intruder"),
                                      _info("events", "Event", field_selectors=["involvedObject.name=intruder",
                                                                                "reason=FailedScheduling"])]))
    assert run.rc == 0, run.stdout
    ds_pods = _pods(run, "ds pods")
    assert sorted(p["spec"]["nodeName"] for p in ds_pods) == ["k3s-node-1", "k3s-node-2", "k3s-node-3"]
    assert all(p["status"]["phase"] == "Running" for p in ds_pods)
    tolerations = ds_pods[0]["spec"]["tolerations"]
    assert {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"} in tolerations
    pod = _pods(run, "intruder pod")[0]
    assert pod["status"]["phase"] == "Pending" and "nodeName" not in pod["spec"]
    assert (_scheduled(pod)["status"], _scheduled(pod)["reason"], _scheduled(pod)["message"]) == (
        "False", "Unschedulable", FREE_PORTS)
    event = _pods(run, "events")[0]
    assert (event["type"], event["message"], event["source"]["component"]) == (
        "Warning", FREE_PORTS, "default-scheduler")


def test_four_host_port_replicas_on_three_nodes(kube_api, kubeconfig, playbook) -> None:
    deployment = _workload("Deployment", "lb", 4)
    deployment["spec"]["template"]["spec"]["containers"] = [_container(port={"containerPort": 80, "hostPort": 80})]
    run = playbook(_play(kubeconfig, [_apply("deploy", deployment, wait=True, timeout=4),
                                      _info("pending", "Pod", label_selectors=["app=lb"],
                                            field_selectors=["status.phase=Pending"]),
                                      _info("running", "Pod", label_selectors=["app=lb"],
                                            field_selectors=["status.phase=Running"])]))
    assert run.rc != 0  # the Deployment never becomes fully available
    assert run.task_results("deploy").get("failed") is True
    status = kube_api.get_object("apps", "deployments", NS, "lb")["status"]
    assert status["availableReplicas"] == 3 and status["unavailableReplicas"] == 1
    pods = [p for p in kube_api.items(kube_api._rt("", "pods"), NS)]
    pending = [p for p in pods if p["status"]["phase"] == "Pending"]
    assert len(pods) == 4 and len(pending) == 1
    assert _scheduled(pending[0])["message"] == FREE_PORTS
    assert len({p["spec"]["nodeName"] for p in pods if p["status"]["phase"] == "Running"}) == 3


def test_local_path_claim_waits_for_its_first_consumer(kube_api, kubeconfig, playbook) -> None:
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data-db-0", "namespace": NS},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    db = _workload("StatefulSet", "db", 1, serviceName="db", volumeClaimTemplates=[
        {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                 "resources": {"requests": {"storage": "1Gi"}}}}])
    first = playbook(_play(kubeconfig, [
        _apply("claim", claim), _info("claim alone", "PersistentVolumeClaim", name="data-db-0"),
        {"name": "class", "kubernetes.core.k8s_info": {"kind": "StorageClass", "name": "local-path"}},
        _info("waiting", "Event", field_selectors=["involvedObject.name=data-db-0"]),
        _apply("statefulset", db, wait=True), _info("claim after", "PersistentVolumeClaim", name="data-db-0"),
        _info("db pod", "Pod", name="db-0")]))
    assert first.rc == 0, first.stdout
    alone = _pods(first, "claim alone")[0]
    assert alone["status"]["phase"] == "Pending" and "volumeName" not in alone["spec"]
    sc = _pods(first, "class")[0]
    assert (sc["provisioner"], sc["volumeBindingMode"], sc["reclaimPolicy"]) == (
        "rancher.io/local-path", "WaitForFirstConsumer", "Delete")
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    waiting = _pods(first, "waiting")[0]
    assert (waiting["reason"], waiting["message"]) == ("WaitForFirstConsumer",
                                                       "waiting for first consumer to be created before binding")
    bound, pod = _pods(first, "claim after")[0], _pods(first, "db pod")[0]
    node = pod["spec"]["nodeName"]
    assert bound["status"]["phase"] == "Bound"
    assert bound["spec"]["volumeName"] == f"pvc-{alone['metadata']['uid']}"
    assert bound["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node
    assert pod["spec"]["volumes"][-1] == {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}
    pv = kube_api.get_object("", "persistentvolumes", "", bound["spec"]["volumeName"])
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]

    # crowd the claim's node so that, without the volume, the scheduler would prefer another one
    fillers = [dict(_pod(f"filler-{i}"), spec={"nodeName": node, "containers": [_container()]}) for i in range(3)]
    second = playbook(_play(kubeconfig, [
        *[_apply(f"filler {i}", f) for i, f in enumerate(fillers)],
        {"name": "delete db-0", "kubernetes.core.k8s": {"state": "absent", "kind": "Pod", "namespace": NS,
                                                        "name": "db-0"}},
        _apply("statefulset ready", db, wait=True), _info("db pod again", "Pod", name="db-0")]))
    assert second.rc == 0, second.stdout
    again = _pods(second, "db pod again")[0]
    assert again["metadata"]["uid"] != pod["metadata"]["uid"] and again["spec"]["nodeName"] == node


def test_read_write_many_local_path_claim_fails_to_provision(kube_api, kubeconfig, playbook) -> None:
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "shared", "namespace": NS},
             "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}}
    user = _pod("user", volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "shared"}}])
    run = playbook(_play(kubeconfig, [_apply("claim", claim), _apply("user", user),
                                      _info("claim state", "PersistentVolumeClaim", name="shared"),
                                      _info("events", "Event", field_selectors=["reason=ProvisioningFailed"]),
                                      _info("user pod", "Pod", name="user")]))
    assert run.rc == 0, run.stdout
    assert _pods(run, "claim state")[0]["status"]["phase"] == "Pending"
    assert _pods(run, "events")[0]["message"].endswith("supports ReadWriteOnce and ReadWriteOncePod (1.22+) "
                                                       "access modes")
    assert "nodeName" not in _pods(run, "user pod")[0]["spec"]


def test_missing_image_err_image_pull_then_back_off(kube_api, kubeconfig, playbook) -> None:
    kube_api.declare_images(["nginx:1.27"])
    kube_api.rollout_seconds = 4  # ErrImagePull for the first pull, ImagePullBackOff after it
    broken = _pod("broken", containers=[_container("nginx:does-not-exist")])
    run = playbook(_play(kubeconfig, [_apply("pod", broken), _info("first", "Pod", name="broken"),
                                      {"name": "later", "ansible.builtin.pause": {"seconds": 4}},
                                      _info("second", "Pod", name="broken")]))
    assert run.rc == 0, run.stdout
    first, second = _pods(run, "first")[0], _pods(run, "second")[0]
    for pod, reason in ((first, "ErrImagePull"), (second, "ImagePullBackOff")):
        assert pod["status"]["phase"] == "Pending" and pod["spec"]["nodeName"]
        waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
        assert waiting["reason"] == reason and "docker.io/library/nginx:does-not-exist" in waiting["message"]
        ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "ContainersNotReady")


def test_unreachable_node_pods_are_evicted_and_replaced(kube_api, kubeconfig, playbook) -> None:
    kube_api.eviction_factor = 1 / 300  # tolerationSeconds 300 -> 1 s
    setup = playbook(_play(kubeconfig, [_apply("web", _workload("Deployment", "web", 3), wait=True),
                                        _apply("db", _workload("StatefulSet", "db", 1, serviceName="db"), wait=True),
                                        _info("db pod", "Pod", name="db-0")]))
    assert setup.rc == 0, setup.stdout
    lost = _pods(setup, "db pod")[0]["spec"]["nodeName"]
    kube_api.set_node_ready(lost, "Unknown")
    early = kube_api.get_object("", "pods", NS, "db-0")
    assert "deletionTimestamp" not in early["metadata"]  # the 300 s toleration (scaled) has not run out
    time.sleep(1.5)
    after = playbook(_play(kubeconfig, [_apply("web again", _workload("Deployment", "web", 3), wait=True),
                                        _info("web pods", "Pod", label_selectors=["app=web"]),
                                        _info("db pods", "Pod", label_selectors=["app=db"])]))
    assert after.rc == 0, after.stdout
    web = _pods(after, "web pods")
    terminating = [p for p in web if p["metadata"].get("deletionTimestamp")]
    alive = [p for p in web if not p["metadata"].get("deletionTimestamp")]
    assert [p["spec"]["nodeName"] for p in terminating] == [lost]  # still shown: its kubelet cannot confirm
    assert len(alive) == 3 and lost not in {p["spec"]["nodeName"] for p in alive}
    assert all(p["status"]["phase"] == "Running" for p in alive)
    db = _pods(after, "db pods")
    assert [p["metadata"]["name"] for p in db] == ["db-0"]  # never a second db-0 while the old one lingers
    assert db[0]["metadata"].get("deletionTimestamp") and db[0]["spec"]["nodeName"] == lost
    assert kube_api.get_object("apps", "statefulsets", NS, "db")["status"].get("readyReplicas") is None

    kube_api.set_node_ready(lost, "True")  # the kubelet returns and confirms the deletions
    back = playbook(_play(kubeconfig, [_apply("db back", _workload("StatefulSet", "db", 1, serviceName="db"),
                                              wait=True), _info("db pods", "Pod", label_selectors=["app=db"])]))
    assert back.rc == 0, back.stdout
    db = _pods(back, "db pods")
    assert len(db) == 1 and not db[0]["metadata"].get("deletionTimestamp")
    assert db[0]["metadata"]["uid"] != _pods(setup, "db pod")[0]["metadata"]["uid"]


def test_host_network_daemonset_cannot_surge_but_rolls_by_max_unavailable(kube_api, kubeconfig, playbook) -> None:
    """maxSurge 1 on a hostNetwork :80 DaemonSet: the surge pod finds its node's port taken (the
    message of traefik/traefik-helm-chart#732); maxUnavailable 1, maxSurge 0 rolls through."""
    def edge(image: str, surge: int, unavailable: int) -> dict[str, Any]:
        ds = _workload("DaemonSet", "edge", None, updateStrategy={
            "type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
        ds["spec"]["template"]["spec"].update(hostNetwork=True, containers=[
            _container(image, port={"containerPort": 80})])
        return ds
    run = playbook(_play(kubeconfig, [
        _apply("v1", edge("nginx:1.27", 1, 0), wait=True), _apply("v2 surge", edge("nginx:1.28", 1, 0)),
        _info("pending", "Pod", label_selectors=["app=edge"], field_selectors=["status.phase=Pending"]),
        _apply("v2 unavailable", edge("nginx:1.28", 0, 1), wait=True),
        _info("after", "Pod", label_selectors=["app=edge"])]))
    assert run.rc == 0, run.stdout
    pending = _pods(run, "pending")
    assert len(pending) == 1 and pending[0]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert _scheduled(pending[0])["message"] == (
        "0/3 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, "
        "2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: "
        "1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.")
    after = _pods(run, "after")
    assert sorted(p["spec"]["nodeName"] for p in after) == ["k3s-node-1", "k3s-node-2", "k3s-node-3"]
    assert {p["spec"]["containers"][0]["image"] for p in after} == {"nginx:1.28"}
    assert all(p["status"]["phase"] == "Running" for p in after)


def test_the_eviction_api_keeps_the_disruption_budget_as_kubectl_drain_relies_on(kube_api, kubeconfig, playbook):
    """POST pods/<name>/eviction: allowed while the PodDisruptionBudget has room (the pod then terminates
    gracefully), 429 TooManyRequests with the DisruptionBudget cause when it has none; 404 for no pod."""
    import json as _json
    import urllib.error
    import urllib.request

    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web", "namespace": NS},
           "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}
    run = playbook(_play(kubeconfig, [_apply("web", _workload("Deployment", "web", 3)), _apply("pdb", pdb),
                                          {"name": "ready", "kubernetes.core.k8s_info": {
                                              "kind": "Deployment", "namespace": NS, "name": "web", "wait": True,
                                              "wait_timeout": 30, "wait_condition": {"type": "Available"}}}]))
    assert run.rc == 0, run.stdout[-2000:]
    pods = sorted(p["metadata"]["name"] for p in kube_api.items(kube_api._rt("", "pods"), NS))
    assert len(pods) == 3

    def evict(name: str) -> tuple[int, dict]:
        body = _json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                            "metadata": {"name": name, "namespace": NS}}).encode()
        req = urllib.request.Request(f"{kube_api.url}/api/v1/namespaces/{NS}/pods/{name}/eviction", data=body,
                                     method="POST", headers={"Authorization": f"Bearer {kube_api.token}",
                                                             "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, _json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _json.loads(exc.read())

    code, answer = evict(pods[0])
    assert code == 201 and answer["status"] == "Success"
    gone = kube_api.lookup(kube_api._rt("", "pods"), NS, pods[0])
    assert gone is None or gone["metadata"].get("deletionTimestamp"), "the evicted pod terminates"
    code, answer = evict(pods[1])  # 2 healthy left, the budget needs 2
    assert code == 429 and answer["reason"] == "TooManyRequests", answer
    assert answer["details"]["causes"][0]["reason"] == "DisruptionBudget"
    assert kube_api.lookup(kube_api._rt("", "pods"), NS, pods[1])["metadata"].get("deletionTimestamp") is None
    assert evict("nobody")[0] == 404

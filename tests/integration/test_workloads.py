"""Workloads for real: Deployments whose pods are processes in their own network namespaces on
three netns-nodes (lab/minilab.py), pulled from a real registry, probed for real, reached through
the lab Traefik that K3s's HelmChart + the operator's HelmChartConfig render as a hostNetwork
DaemonSet. The Kubernetes API is the in-memory stand-in; kubernetes.core drives it as an operator would.
"""
from __future__ import annotations

import base64
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from _minilab_world import HCC, PULL_PASSWORD, PULL_USER, missing_root_tools, through_traefik, wait_for, world
from lab.registry.images import LABEL_CRASH, LABEL_FAIL_PATHS, LABEL_READY_AFTER
from lab.standins.kube import KubeStandIn

TOKEN = "workloads-token"
DOMAIN = "example.test"
IMAGES = {"good": {LABEL_READY_AFTER: "2"}, "next": {LABEL_READY_AFTER: "2"}, "slow": {LABEL_READY_AFTER: "6"},
          "broken": {LABEL_FAIL_PATHS: "/api/health/"}, "crash": {LABEL_CRASH: "1"}}
@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[dict[str, Any]]:
    reason = missing_root_tools()
    if reason:
        pytest.fail(reason)  # CI installs everything: a missing tool is a defect, not a skip
    images = {("honeydue/api", name): labels for name, labels in IMAGES.items()}
    with world(tmp_path_factory.mktemp("workloads"), "hdwl", images, TOKEN) as cluster:
        yield cluster


# -- helpers ------------------------------------------------------------------------------------
def _play(cluster: dict[str, Any], tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"hosts": "localhost", "gather_facts": False,
             "module_defaults": {"group/kubernetes.core.k8s": {"kubeconfig": str(cluster["kubeconfig"])}},
             "tasks": tasks}]


def _get(cluster: dict[str, Any], path: str) -> dict[str, Any]:
    req = urllib.request.Request(cluster["api"].url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as answer:
        return json.loads(answer.read())


def _through_traefik(node_ip: str, path: str = "/api/health/", host: str = f"api.{DOMAIN}",
                     timeout: float = 3) -> tuple[int, dict[str, Any] | str]:
    return through_traefik(node_ip, path, host, timeout)


def _pod_of(answer: tuple[int, dict[str, Any] | str]) -> str | None:
    return answer[1].get("pod") if answer[0] == 200 and isinstance(answer[1], dict) else None


_wait = wait_for


def _pods(cluster: dict[str, Any], selector: str, namespace: str = "app") -> list[dict[str, Any]]:
    return _get(cluster, f"/api/v1/namespaces/{namespace}/pods?labelSelector={urllib.request.quote(selector)}")["items"]


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions", []))


def _app_objects(cluster: dict[str, Any], name: str, tag: str, replicas: int, *, pull_secret: bool = True,
                 deadline: int = 600) -> list[dict[str, Any]]:
    image = f"{cluster['registry'].host}/honeydue/api:{tag}"
    probe = {"httpGet": {"path": "/api/health/", "port": "http"}, "periodSeconds": 1, "failureThreshold": 2}
    pod_spec: dict[str, Any] = {
        "containers": [{"name": "api", "image": image, "ports": [{"name": "http", "containerPort": 8000}],
                        "startupProbe": {**probe, "failureThreshold": 30}, "readinessProbe": probe,
                        "lifecycle": {"preStop": {"sleep": {"seconds": 2}}}}],
        "terminationGracePeriodSeconds": 10}
    if pull_secret:
        pod_spec["imagePullSecrets"] = [{"name": "registry"}]
    labels = {"app": name}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "app"},
         "spec": {"replicas": replicas, "progressDeadlineSeconds": deadline, "selector": {"matchLabels": labels},
                  "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                  "template": {"metadata": {"labels": labels}, "spec": pod_spec}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "app"},
         "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name, "namespace": "app"},
         "spec": {"ingressClassName": "traefik", "rules": [{"host": f"{name}.{DOMAIN}", "http": {"paths": [
             {"path": "/", "pathType": "Prefix",
              "backend": {"service": {"name": name, "port": {"name": "http"}}}}]}}]}},
    ]


def _apply(cluster: dict[str, Any], playbook, objects: list[dict[str, Any]], *, wait: bool = False,
           wait_timeout: int = 90):
    tasks = [{"name": f"{o['kind']} {o['metadata']['name']}",
              "kubernetes.core.k8s": {"state": "present", "definition": o, "apply": True,
                                      "server_side_apply": {"field_manager": "honeydue"},
                                      **({"wait": True, "wait_sleep": 1, "wait_timeout": wait_timeout}
                                         if wait and o["kind"] == "Deployment" else {})}}
             for o in objects]
    return playbook(_play(cluster, tasks))


@pytest.fixture(scope="module")
def app(cluster) -> dict[str, Any]:
    """Namespace, the registry pull secret and Traefik's HelmChartConfig, applied as an operator would."""
    api: KubeStandIn = cluster["api"]
    api.deadline_factor = 1.0  # real progress deadlines: the kubelet is real
    auth = base64.b64encode(f"{PULL_USER}:{PULL_PASSWORD}".encode()).decode()
    docker = {"auths": {cluster["registry"].host: {"auth": auth}}}
    objects = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}},
               {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                "metadata": {"name": "registry", "namespace": "app"},
                "data": {".dockerconfigjson": base64.b64encode(json.dumps(docker).encode()).decode()}},
               HCC]
    with api._lock:
        for obj in objects:
            from lab.standins._server import Request
            rt_path = {"Namespace": "/api/v1/namespaces", "Secret": "/api/v1/namespaces/app/secrets",
                       "HelmChartConfig": "/apis/helm.cattle.io/v1/namespaces/kube-system/helmchartconfigs"}
            raw = json.dumps(obj).encode()
            answer = api.handle(Request("POST", rt_path[obj["kind"]], {}, {"authorization": f"Bearer {TOKEN}",
                                                                             "content-type": "application/json"},
                                        raw, obj))
            assert answer.status == 201, answer.body
    return cluster


# -- the tests ----------------------------------------------------------------------------------
def test_traefik_daemonset_binds_port_80_on_every_node(app) -> None:
    ds = _wait("the Traefik DaemonSet on 3 nodes", lambda: (
        (d := _get(app, "/apis/apps/v1/namespaces/kube-system/daemonsets/traefik"))
        and d.get("status", {}).get("numberReady") == 3 and d))
    assert ds["spec"]["template"]["spec"]["hostNetwork"] is True
    for i in (1, 2, 3):
        code, body = _wait(f"Traefik on node {i}", lambda i=i: (r := _through_traefik(app["lab"].node_ip(i), "/",
                                                                                       "nobody.example.test"))[0] and r)
        assert (code, body) == (404, "404 page not found\n"), "a real proxy, with no route for that host"


def test_good_image_becomes_available_with_real_probes_and_serves_from_every_node(app, playbook) -> None:
    run = _apply(app, playbook, _app_objects(app, "api", "good", 3), wait=True)
    assert run.rc == 0, run.stdout[-3000:]
    pods = _pods(app, "app=api")
    assert len(pods) == 3 and all(_ready(p) for p in pods)
    assert len({p["spec"]["nodeName"] for p in pods}) == 3, "spread over the nodes"
    assert all(p["status"]["podIP"].startswith("10.42.") for p in pods)
    started = {p["metadata"]["name"]: p["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
               for p in pods}
    assert started, "running containers"
    _wait("the api endpoints in every node's Traefik",
          lambda: all(_through_traefik(app["lab"].node_ip(i))[0] == 200 for i in (1, 2, 3)), timeout=20)
    crossed = set()
    for i in (1, 2, 3):
        entry = app["lab"].node_ip(i)
        for _ in range(6):
            code, body = _through_traefik(entry)
            assert code == 200, body
            assert body["image"].endswith("/honeydue/api:good") and body["pod"] in started
            assert body["forwarded"]["X-Forwarded-Host"] == f"api.{DOMAIN}"
            if body["node"] != app["names"][i - 1]:
                crossed.add((app["names"][i - 1], body["node"]))
    assert len({a for a, _ in crossed}) == 3, f"each node's Traefik reached pods on other nodes: {crossed}"


def test_killing_a_pod_process_makes_it_not_ready_and_traefik_stops_sending_to_it(app, playbook) -> None:
    objects = _app_objects(app, "slow", "slow", 2)
    run = _apply(app, playbook, objects, wait=True)
    assert run.rc == 0, run.stdout[-3000:]
    victim = _pods(app, "app=slow")[0]
    name, uid = victim["metadata"]["name"], victim["metadata"]["uid"]
    entry = app["lab"].node_ip(1)
    _wait("both slow pods behind Traefik", lambda: len({_pod_of(_through_traefik(entry, host=f"slow.{DOMAIN}"))
                                                          for _ in range(6)} - {None}) == 2, timeout=20)
    pid = app["lab"].pod_pid(victim["spec"]["nodeName"], uid, "api")
    own = os.readlink(f"/proc/{pid}/ns/net")
    assert own != os.readlink(f"/proc/{app['lab'].kubelets[0].pid}/ns/net"), "the pod has its own network namespace"
    os.kill(pid, 9)
    pod = _wait("the killed pod NotReady", lambda: (p := _get(app, f"/api/v1/namespaces/app/pods/{name}"))
                and not _ready(p) and p, timeout=15, every=0.2)
    time.sleep(1.5)  # the EndpointSlice follows about a second late
    answers = [_through_traefik(entry, host=f"slow.{DOMAIN}") for _ in range(10)]
    assert all(code == 200 for code, _ in answers), answers
    assert {body["pod"] for _, body in answers} == {p["metadata"]["name"] for p in _pods(app, "app=slow")} - {name}
    restarted = _wait("the kubelet restarting it", lambda: (p := _get(app, f"/api/v1/namespaces/app/pods/{name}"))
                      and p["status"]["containerStatuses"][0]["restartCount"] >= 1 and p, timeout=15)
    assert restarted["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 137
    assert pod["metadata"]["uid"] == uid


def test_broken_image_stalls_with_progress_deadline_exceeded_while_the_old_pods_serve(app, playbook) -> None:
    run = _apply(app, playbook, _app_objects(app, "stall", "good", 2, deadline=12), wait=True)
    assert run.rc == 0, run.stdout[-3000:]
    entry = app["lab"].node_ip(2)
    _wait("stall behind Traefik", lambda: _pod_of(_through_traefik(entry, host=f"stall.{DOMAIN}")), timeout=20)
    failures, served = [], set()
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            code, body = _through_traefik(entry, host=f"stall.{DOMAIN}")
            if code != 200:
                failures.append((code, body))
            else:
                served.add(body["image"].rsplit(":", 1)[1])
            time.sleep(0.05)

    polling = threading.Thread(target=client)
    polling.start()
    try:
        broken = _app_objects(app, "stall", "broken", 2, deadline=12)[:1]
        run = _apply(app, playbook, broken)
        assert run.rc == 0, run.stdout[-3000:]
        stalled = _wait("ProgressDeadlineExceeded", lambda: (d := _get(app, "/apis/apps/v1/namespaces/app/deployments/stall"))
                        and any(c["type"] == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
                                for c in d["status"].get("conditions", [])) and d, timeout=40, every=1)
    finally:
        stop.set()
        polling.join()
    status = stalled["status"]
    assert status["updatedReplicas"] == 1 and status["availableReplicas"] == 2, status
    new = [p for p in _pods(app, "app=stall") if p["spec"]["containers"][0]["image"].endswith(":broken")]
    assert len(new) == 1 and not _ready(new[0]), "maxSurge 1: one new pod, never Ready (its health check fails)"
    assert failures == [] and served == {"good"}, (failures, served)


def test_pull_without_credentials_shows_image_pull_back_off(app, playbook) -> None:
    run = _apply(app, playbook, _app_objects(app, "nocreds", "good", 1, pull_secret=False))
    assert run.rc == 0, run.stdout[-3000:]

    def waiting() -> dict[str, Any] | None:
        pods = _pods(app, "app=nocreds")
        states = [s.get("state", {}).get("waiting") for p in pods for s in p.get("status", {}).get("containerStatuses", [])]
        return next((s for s in states if s and s["reason"] == "ImagePullBackOff"), None)

    first = _wait("ErrImagePull", lambda: next(
        (s["state"]["waiting"] for p in _pods(app, "app=nocreds") for s in p.get("status", {}).get("containerStatuses", [])
         if s.get("state", {}).get("waiting", {}).get("reason") == "ErrImagePull"), None), timeout=20, every=0.2)
    assert first["message"].startswith(f'failed to pull and unpack image "{app["registry"].host}/honeydue/api:good"')
    assert "authorization failed" in first["message"] or "401" in first["message"], first
    backoff = _wait("ImagePullBackOff", waiting, timeout=40, every=0.5)
    assert backoff["message"] == f'Back-off pulling image "{app["registry"].host}/honeydue/api:good"'


def test_rolling_update_with_prestop_loses_no_request_on_any_node(app, playbook) -> None:
    """maxSurge 1 / maxUnavailable 0, graceful deletion (deletionTimestamp, then the kubelet's preStop
    sleep before SIGTERM) and EndpointSlices a second late: a client on every node sees no failure."""
    run = _apply(app, playbook, _app_objects(app, "roll", "good", 2), wait=True)
    assert run.rc == 0, run.stdout[-3000:]
    _wait("roll behind every Traefik", lambda: all(_pod_of(_through_traefik(app["lab"].node_ip(i), host=f"roll.{DOMAIN}"))
                                                    for i in (1, 2, 3)), timeout=20)
    failures, images = [], set()
    stop = threading.Event()

    def client(i: int) -> None:
        while not stop.is_set():
            code, body = _through_traefik(app["lab"].node_ip(i), host=f"roll.{DOMAIN}")
            if code != 200:
                failures.append((i, code, body))
            else:
                images.add(body["image"].rsplit(":", 1)[1])
            time.sleep(0.05)

    clients = [threading.Thread(target=client, args=(i,)) for i in (1, 2, 3)]
    for c in clients:
        c.start()
    try:
        run = _apply(app, playbook, _app_objects(app, "roll", "next", 2)[:1], wait=True)
        assert run.rc == 0, run.stdout[-3000:]
        _wait("the old pods gone", lambda: all(p["spec"]["containers"][0]["image"].endswith(":next")
                                               for p in _pods(app, "app=roll")), timeout=40)
        time.sleep(1.5)
    finally:
        stop.set()
        for c in clients:
            c.join()
    assert failures == [], failures[:5]
    assert images == {"good", "next"}
    answers = {_pod_of(_through_traefik(app["lab"].node_ip(1), host=f"roll.{DOMAIN}")) for _ in range(6)}
    assert answers <= {p["metadata"]["name"] for p in _pods(app, "app=roll")}

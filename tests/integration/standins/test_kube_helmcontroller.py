"""The K3s helm-controller stand-in through kubernetes.core: HelmChartConfig -> helm-install-traefik Job."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import TOKEN

NEWEST = "v1.34.9+k3s1"  # helm-controller v0.17.1, Traefik chart 40.0.0 (lab/k3s/_releases.py)


@pytest.fixture
def newest_api():
    """The Kubernetes stand-in serving K3s v1.34.9 (HelmChartConfig CRD of helm-controller v0.17.1)."""
    from lab.standins.kube import KubeStandIn

    standin = KubeStandIn(token=TOKEN, release=NEWEST).start()
    try:
        yield standin
    finally:
        standin.stop()
        assert not standin.contract_violations, standin.contract_violations


def _issue14_values(maxsurge: int | None = 0) -> dict[str, Any]:
    rolling: dict[str, Any] = {"maxUnavailable": 1}
    if maxsurge is not None:
        rolling["maxSurge"] = maxsurge
    return {"deployment": {"kind": "DaemonSet"}, "hostNetwork": True,
            "ports": {"web": {"port": 80, "hostPort": 80, "forwardedHeaders": {"trustedIPs": ["10.0.0.0/8"]}},
                      "websecure": {"port": 443, "hostPort": 443}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": rolling},
            "service": {"enabled": False},
            "providers": {"kubernetesIngress": {"publishedService": {"enabled": False}}},
            "logs": {"access": {"enabled": True}}}


def _hcc(values: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "helm.cattle.io/v1", "kind": "HelmChartConfig",
            "metadata": {"name": "traefik", "namespace": "kube-system"},
            "spec": {"valuesContent": yaml.safe_dump(values), **spec}}


def _play(kubeconfig: Path, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"hosts": "localhost", "gather_facts": False,
             "module_defaults": {"group/kubernetes.core.k8s": {"kubeconfig": str(kubeconfig)}},
             "tasks": tasks}]


def _info(name: str, kind: str, obj: str, api_version: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kubernetes.core.k8s_info": {"kind": kind, "api_version": api_version, "name": obj,
                                                       "namespace": "kube-system", **extra}}


def _job_complete(name: str) -> dict[str, Any]:
    return _info(name, "Job", "helm-install-traefik", "batch/v1", wait=True, wait_timeout=20, wait_sleep=1,
                 wait_condition={"type": "Complete", "status": "True"})


LOG_TASK = {"name": "log", "kubernetes.core.k8s_log": {
    "namespace": "kube-system", "label_selectors": ["job-name=helm-install-traefik"]}}


@pytest.mark.parametrize("release", ["production", "newest"])
def test_hcc_renders_the_hostnetwork_daemonset(release, kube_api, newest_api, tmp_path, playbook) -> None:
    api = kube_api if release == "production" else newest_api
    values = _issue14_values()
    tls_path = ("tls",) if api.helm.entry["traefik_chart"] == "37.1.0" else ("http", "tls")
    node = values["ports"]["websecure"]
    for part in tls_path:
        node = node.setdefault(part, {})
    node["enabled"] = True
    tasks = [{"name": "hcc", "kubernetes.core.k8s": {"state": "present", "definition": _hcc(values)}},
             _job_complete("job"),
             _info("ds", "DaemonSet", "traefik", "apps/v1"),
             _info("svc", "Service", "traefik", "v1"),
             _info("deploy", "Deployment", "traefik", "apps/v1")]
    run = playbook(_play(api.kubeconfig(tmp_path / "kubeconfig"), tasks))
    assert run.rc == 0, run.stdout + run.stderr
    job = run.task_results("job")["resources"][0]
    assert job["metadata"]["labels"]["helmcharts.helm.cattle.io/chart"] == "traefik"
    assert job["spec"]["template"]["metadata"]["annotations"]["helmcharts.helm.cattle.io/configHash"].startswith(
        "SHA256=")
    assert job["spec"]["backoffLimit"] == 1000
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    ds = run.task_results("ds")["resources"][0]
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    ports = {p["name"]: (p["containerPort"], p.get("hostPort")) for p in pod["containers"][0]["ports"]}
    assert ports["web"] == (80, 80) and ports["websecure"] == (443, 443)
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    args = pod["containers"][0]["args"]
    assert "--entryPoints.web.forwardedHeaders.trustedIPs=10.0.0.0/8" in args and "--accesslog=true" in args
    assert not any("publishedservice" in a for a in args)
    # helm removes what the new revision no longer renders: K3s's Deployment and LoadBalancer Service
    assert run.task_results("svc")["resources"] == [] and run.task_results("deploy")["resources"] == []
    secret = api.get_object("", "secrets", "kube-system", "chart-values-traefik")
    assert secret["type"] == "helmcharts.helm.cattle.io/values"
    assert set(secret["data"]) == {"HelmChartValuesContent", "HelmChartConfigValuesContent"}


def test_values_typo_leaves_the_job_incomplete_with_helms_message(newest_api, tmp_path, playbook) -> None:
    values = {**_issue14_values(), "hostNetwrok": True}
    tasks = [{"name": "hcc", "kubernetes.core.k8s": {"state": "present", "definition": _hcc(values)}},
             _info("job", "Job", "helm-install-traefik", "batch/v1"), LOG_TASK]
    run = playbook(_play(newest_api.kubeconfig(tmp_path / "kubeconfig"), tasks))
    assert run.rc == 0, run.stdout + run.stderr
    status = run.task_results("job")["resources"][0]["status"]
    assert status.get("active") == 1 and not status.get("succeeded") and "conditions" not in status
    log = run.task_results("log")["log"]
    assert ("Error: UPGRADE FAILED: values don't meet the specifications of the schema(s) in the following "
            "chart(s):\ntraefik:\n- at '': additional properties 'hostNetwrok' not allowed") in log
    assert newest_api.get_object("apps", "daemonsets", "kube-system", "traefik") is None


def test_failure_policy_retry_is_refused_by_the_v0_17_1_crd(newest_api, tmp_path, playbook) -> None:
    tasks = [{"name": "hcc", "ignore_errors": True, "kubernetes.core.k8s": {
        "state": "present", "definition": _hcc(_issue14_values(), failurePolicy="retry")}}]
    run = playbook(_play(newest_api.kubeconfig(tmp_path / "kubeconfig"), tasks))
    result = run.task_results("hcc")
    assert result.get("failed") is True, result
    assert result["reason"] == "Unprocessable Content"
    msg = result["msg"].replace('\\\\"', '"')  # the module shows the Status body as a bytes repr
    assert '"code": 422' in msg
    assert ('HelmChartConfig.helm.cattle.io "traefik" is invalid: spec.failurePolicy: Unsupported value: "retry": '
            'supported values: "abort", "reinstall"') in msg
    # the refused object was not stored
    assert newest_api.get_object("helm.cattle.io", "helmchartconfigs", "kube-system", "traefik") is None


def test_apiserver_refusal_of_the_rendered_daemonset_surfaces_in_the_job_log(newest_api, tmp_path,
                                                                             playbook) -> None:
    tasks = [{"name": "hcc", "kubernetes.core.k8s": {"state": "present",
                                                     "definition": _hcc(_issue14_values(maxsurge=None))}},
             _info("job", "Job", "helm-install-traefik", "batch/v1"), LOG_TASK]
    run = playbook(_play(newest_api.kubeconfig(tmp_path / "kubeconfig"), tasks))
    assert run.rc == 0, run.stdout + run.stderr
    assert not run.task_results("job")["resources"][0]["status"].get("succeeded")
    assert ('DaemonSet.apps "traefik" is invalid: spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: '
            'intstr.IntOrString{Type:0, IntVal:1, StrVal:""}: may not be set when maxUnavailable is non-zero'
            in run.task_results("log")["log"])


def test_disable_traefik_seeds_no_helmchart() -> None:
    from lab.standins.kube import KubeStandIn

    api = KubeStandIn(token=TOKEN, disable=["traefik"])
    assert api.get_object("helm.cattle.io", "helmcharts", "kube-system", "traefik") is None
    assert api.get_object("batch", "jobs", "kube-system", "helm-install-traefik") is None
    seeded = KubeStandIn(token=TOKEN)
    chart = seeded.get_object("helm.cattle.io", "helmcharts", "kube-system", "traefik")
    assert chart["spec"]["chart"].endswith("traefik-37.1.0.tgz")
    events = [e for e in seeded.items(seeded._rt("", "events"), "kube-system") if e["reason"] == "ApplyJob"]
    assert events and events[0]["involvedObject"]["kind"] == "HelmChart"


def _call(api, method: str, path: str, body: Any = None, query: str = "") -> tuple[int, Any, dict[str, str]]:
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{api.url}{path}{query}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - loopback stand-in
            raw = answer.read()
            return answer.status, (json.loads(raw) if raw[:1] == b"{" else raw.decode()), dict(answer.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers)


HCC_PATH = "/apis/helm.cattle.io/v1/namespaces/kube-system/helmchartconfigs"


def test_fields_newer_than_the_bundled_crd_are_pruned_or_refused(newest_api) -> None:
    """v0.17.7's ``forceConflicts`` on a v0.17.1 release: dropped with a warning under the default
    fieldValidation (kubernetes.core sends none), a 400 under Strict."""
    hcc = _hcc(_issue14_values(), forceConflicts=True)
    code, body, _ = _call(newest_api, "POST", HCC_PATH, hcc, "?fieldValidation=Strict")
    assert code == 400 and 'unknown field "spec.forceConflicts"' in body["message"]
    code, body, headers = _call(newest_api, "POST", HCC_PATH, hcc)
    assert code == 201 and "forceConflicts" not in body["spec"]
    assert 'unknown field \\"spec.forceConflicts\\"' in headers["Warning"]


def test_values_secrets_and_set_reach_helm(newest_api) -> None:
    import base64

    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "traefik-extra"},
              "data": {"values.yaml": base64.b64encode(b"logs:\n  access:\n    enabled: true\n").decode()}}
    assert _call(newest_api, "POST", "/api/v1/namespaces/kube-system/secrets", secret)[0] == 201
    hcc = _hcc(_issue14_values(), valuesSecrets=[{"name": "traefik-extra", "keys": ["values.yaml"]}])
    hcc["spec"]["valuesContent"] = yaml.safe_dump({**_issue14_values(), "logs": {"access": {"enabled": False}}})
    assert _call(newest_api, "POST", HCC_PATH, hcc)[0] == 201
    ds = newest_api.get_object("apps", "daemonsets", "kube-system", "traefik")
    assert "--accesslog=true" in ds["spec"]["template"]["spec"]["containers"][0]["args"]
    job = newest_api.get_object("batch", "jobs", "kube-system", "helm-install-traefik")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "install", "--set-string", "global.systemDefaultRegistry="]
    code, log, _ = _call(newest_api, "GET", "/api/v1/namespaces/kube-system/pods/"
                         + next(n for (_, n) in newest_api.objects[newest_api._rt("", "pods")]
                                if n.startswith("helm-install-traefik")) + "/log")
    assert code == 200 and 'Already installed traefik, upgrading\nRelease "traefik" has been upgraded.' in log


def test_failing_job_keeps_restarting_its_pod(newest_api) -> None:
    """restartPolicy OnFailure: the same pod's container restarts (CrashLoopBackOff); the Job stays active and,
    as in Kubernetes, ``status.failed`` stays unset (restarts count toward backoffLimit 1000)."""
    import time

    newest_api.rollout_seconds = 0.01
    assert _call(newest_api, "POST", HCC_PATH, _hcc({"hostNetwrok": True}))[0] == 201
    time.sleep(0.5)
    code, pods, _ = _call(newest_api, "GET", "/api/v1/namespaces/kube-system/pods",
                          query="?labelSelector=job-name%3Dhelm-install-traefik")
    assert code == 200 and len(pods["items"]) == 1
    status = pods["items"][0]["status"]["containerStatuses"][0]
    assert status["restartCount"] >= 2 and status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    job = newest_api.get_object("batch", "jobs", "kube-system", "helm-install-traefik")
    assert job["status"]["active"] == 1 and "failed" not in job["status"] and "succeeded" not in job["status"]


def test_packaged_components_run_as_kube_system_deployments_and_disable_leaves_them_out(newest_api) -> None:
    """K3s's coredns.yaml, local-storage.yaml and metrics-server manifests: three kube-system
    Deployments that become Available, and the kube-dns Service on the cluster DNS address."""
    import time

    deadline = time.time() + 20
    ready: dict[str, int] = {}
    while time.time() < deadline:
        listed = _call(newest_api, "GET", "/apis/apps/v1/namespaces/kube-system/deployments")[1]["items"]
        ready = {d["metadata"]["name"]: (d.get("status") or {}).get("availableReplicas", 0) for d in listed}
        if all(ready.get(n) == 1 for n in ("coredns", "local-path-provisioner", "metrics-server")):
            break
        time.sleep(0.2)
    assert {n: ready.get(n) for n in ("coredns", "local-path-provisioner", "metrics-server")} == \
        {"coredns": 1, "local-path-provisioner": 1, "metrics-server": 1}
    code, dns, _ = _call(newest_api, "GET", "/api/v1/namespaces/kube-system/services/kube-dns")
    assert code == 200 and dns["spec"]["clusterIP"] == "10.43.0.10"
    assert [p["port"] for p in dns["spec"]["ports"]] == [53, 53, 9153]
    coredns = _call(newest_api, "GET", "/apis/apps/v1/namespaces/kube-system/deployments/coredns")[1]
    assert coredns["spec"]["template"]["spec"]["containers"][0]["image"] == "rancher/mirrored-coredns-coredns:1.14.4"

    from lab.standins.kube import KubeStandIn

    lean = KubeStandIn(token=TOKEN, release=NEWEST, disable=["coredns", "metrics-server"]).start()
    try:
        names = {d["metadata"]["name"] for d in
                 _call(lean, "GET", "/apis/apps/v1/namespaces/kube-system/deployments")[1]["items"]}
        assert "local-path-provisioner" in names and not names & {"coredns", "metrics-server"}, names
        assert _call(lean, "GET", "/api/v1/namespaces/kube-system/services/kube-dns")[0] == 404
    finally:
        lean.stop()

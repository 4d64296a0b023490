"""honeydue.infra.traefik_hostnet (playbooks/ingress.yml) against the Kubernetes stand-in and its K3s
helm-controller: the HelmChartConfig is applied, the helm-install Job for that config succeeds, the
DaemonSet is on the host network on 80/443 and rolled; refused values fail the role naming the Job;
bad input fails before anything is written."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.honeydue.infra.plugins.lookup.cloudflare_ip_ranges import CLOUDFLARE_IPV4, CLOUDFLARE_IPV6
from tests.conftest import TOKEN

PLAYBOOK = "playbooks/ingress.yml"
NEWEST = "v1.34.9+k3s1"  # helm-controller v0.17.1, Traefik chart 40.0.0 (lab/k3s/_releases.py)
HASH = "helmcharts.helm.cattle.io/configHash"
BASE_VARS: dict[str, Any] = {"traefik_hostnet_wait_delay": 1,
                             "traefik_hostnet_wait_timeout": 30}


@pytest.fixture(params=["production", "newest"])
def api(request) -> Iterator[Any]:
    """The stand-in serving K3s production (chart 37.1.0) or the newest v1.34 (chart 40.0.0)."""
    from lab.standins.kube import KubeStandIn

    standin = KubeStandIn(token=TOKEN, release=None if request.param == "production" else NEWEST).start()
    try:
        yield standin
    finally:
        standin.stop()
        assert not standin.contract_violations, standin.contract_violations


@pytest.fixture
def production_api() -> Iterator[Any]:
    from lab.standins.kube import KubeStandIn

    standin = KubeStandIn(token=TOKEN).start()
    try:
        yield standin
    finally:
        standin.stop()
        assert not standin.contract_violations, standin.contract_violations


def _run(playbook, api, tmp_path: Path, *args: str, **extra_vars: Any):
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
    variables = {**BASE_VARS, "honeydue_kubeconfig": str(kubeconfig), **extra_vars}
    return playbook(PLAYBOOK, extra_args=["-e", json.dumps(variables), *args])


def _job(api) -> dict[str, Any] | None:
    return api.get_object("batch", "jobs", "kube-system", "helm-install-traefik")


def _hcc(api) -> dict[str, Any] | None:
    return api.get_object("helm.cattle.io", "helmchartconfigs", "kube-system", "traefik")


def _config_hash(api) -> str:
    """chart.go hashObjects over the values Secret (sorted data keys, each key then its base64 value)."""
    secret = api.get_object("", "secrets", "kube-system", "chart-values-traefik")
    digest = hashlib.sha256()
    for key in sorted(secret["data"]):
        digest.update(key.encode() + secret["data"][key].encode())
    return f"SHA256={digest.hexdigest().upper()}"


def _task(run, name: str) -> dict[str, Any]:
    """The result of the role's task ``name`` (the json callback names it ``<role> : <name>``)."""
    for play in run.result.get("plays", []):
        for task in play.get("tasks", []):
            if task["task"]["name"].split(" : ")[-1] == name:
                return task["hosts"]["localhost"]
    raise KeyError(name)


def _task_names(run) -> list[str]:
    return [t["task"]["name"].split(" : ")[-1] for p in run.result.get("plays", []) for t in p["tasks"]]


def _failed_messages(run) -> str:
    out = []
    for play in run.result.get("plays", []):
        for task in play.get("tasks", []):
            result = task["hosts"].get("localhost", {})
            if result.get("failed"):
                out.append(f"{task['task']['name']}: {result.get('msg', '')}")
    return "\n".join(out)


def test_applies_waits_for_this_configs_job_and_the_rollout_then_changes_nothing(api, tmp_path, playbook) -> None:
    seeded_hash = _job(api)["spec"]["template"]["metadata"]["annotations"][HASH]

    check = _run(playbook, api, tmp_path, "--check", "--diff")
    assert check.rc == 0, check.stdout[-4000:] + check.stderr[-2000:]
    assert check.changed() == 1, "check mode reports the HelmChartConfig it would create"
    assert "valuesContent" in check.stdout, "--diff shows the object"
    assert _hcc(api) is None, "check mode wrote nothing"

    run = _run(playbook, api, tmp_path)
    assert run.rc == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert run.changed() == 1, run.stats

    hcc = _hcc(api)
    assert [m["manager"] for m in hcc["metadata"]["managedFields"] if m["operation"] == "Apply"] == ["honeydue.infra"]
    values = yaml.safe_load(hcc["spec"]["valuesContent"])
    assert values["deployment"] == {"kind": "DaemonSet"} and values["hostNetwork"] is True
    assert values["service"] == {"enabled": False}
    assert values["providers"]["kubernetesIngress"]["publishedService"] == {"enabled": False}
    assert values["resources"]["requests"]["memory"] == "64Mi", "the role's requests and limits"

    job = _job(api)
    job_hash = job["spec"]["template"]["metadata"]["annotations"][HASH]
    assert job_hash != seeded_hash and job_hash == _config_hash(api), "the Job of this config"
    assert {c["type"] for c in job["status"]["conditions"] if c["status"] == "True"} >= {"Complete"}
    assert _task(run, "Record the Job of this config")["ansible_facts"]["traefik_hostnet_config_hash"] == job_hash

    ds = api.get_object("apps", "daemonsets", "kube-system", "traefik")
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["containers"][0]["resources"]["requests"] == {"cpu": "50m", "memory": "64Mi"}
    ports = {p["name"]: (p["containerPort"], p.get("hostPort")) for p in pod["containers"][0]["ports"]}
    assert ports["web"] == (80, 80) and ports["websecure"] == (443, 443)
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    caps = pod["containers"][0]["securityContext"]["capabilities"]
    assert caps["add"] == ["NET_BIND_SERVICE"] and pod["securityContext"]["runAsUser"] == 0
    args = pod["containers"][0]["args"]
    cloudflare = ",".join(CLOUDFLARE_IPV4 + CLOUDFLARE_IPV6)
    for entrypoint in ("web", "websecure"):
        assert f"--entryPoints.{entrypoint}.forwardedHeaders.trustedIPs={cloudflare}" in args
    assert "--accesslog=true" in args and not any("publishedservice" in a for a in args)
    status = ds["status"]
    assert ds["metadata"]["generation"] == status["observedGeneration"]
    assert status["desiredNumberScheduled"] == status["updatedNumberScheduled"] == status["numberAvailable"] == 3
    rollout = _task(run, "DaemonSet kube-system/traefik rolled out")
    assert rollout["resources"][0]["metadata"]["generation"] == ds["metadata"]["generation"]
    assert api.get_object("", "services", "kube-system", "traefik") is None, "the chart's Service is gone"

    again = _run(playbook, api, tmp_path)
    assert again.rc == 0, again.stdout[-4000:]
    assert again.changed() == 0, again.stats
    assert _job(api)["metadata"]["uid"] == job["metadata"]["uid"], "no new Job for the same config"
    check_again = _run(playbook, api, tmp_path, "--check", "--diff")
    assert check_again.rc == 0 and check_again.changed() == 0, check_again.stats


def test_a_refused_extra_value_fails_the_job_and_the_role_names_it(production_api, tmp_path, playbook) -> None:
    run = _run(playbook, production_api, tmp_path, traefik_hostnet_extra_values={"logs": {"access": {"enabled": "yes"}}})
    assert run.rc != 0
    failed = _failed_messages(run)
    assert "The helm-install Job failed" in failed, failed or run.stdout[-4000:]
    job = _job(production_api)
    job_hash = job["spec"]["template"]["metadata"]["annotations"][HASH]
    assert f"Job kube-system/helm-install-traefik ({job_hash}) failed" in failed
    assert ("values don't meet the specifications of the schema(s)" in failed
            and "at '/logs/access/enabled': got string, want boolean" in failed), "helm's own message from the pod log"
    assert "succeeded" not in (job.get("status") or {})
    assert production_api.get_object("apps", "daemonsets", "kube-system", "traefik") is None


@pytest.mark.parametrize(("extra", "why"), [
    ({"traefik_hostnet_access_logs": "sometimes"}, "traefik_hostnet_access_logs"),
    ({"traefik_hostnet_wait_timeout": "soon"}, "traefik_hostnet_wait_timeout"),
    ({"traefik_hostnet_extra_values": ["hostNetwork"]}, "traefik_hostnet_extra_values"),
    ({"traefik_hostnet_trusted_ips": ["10.0.0.1/8"]}, "10.0.0.1/8"),
])
def test_bad_input_fails_before_anything_is_written(production_api, tmp_path, playbook, extra, why) -> None:
    before = _job(production_api)
    revision = production_api.revision
    run = _run(playbook, production_api, tmp_path, **extra)
    assert run.rc != 0
    failed = _failed_messages(run) or run.stdout[-3000:]
    assert why in failed, failed
    assert "HelmChartConfig kube-system/traefik" not in _task_names(run), "stopped before the apply"
    assert _hcc(production_api) is None
    assert _job(production_api)["metadata"]["uid"] == before["metadata"]["uid"]
    assert production_api.revision == revision or _hcc(production_api) is None


def _pem_pair(name: str) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def test_origin_tls_material_and_client_auth_that_a_later_run_keeps(production_api, tmp_path, playbook) -> None:
    import base64

    api = production_api
    cert, key = _pem_pair("honeydue.example")
    ca, _ = _pem_pair("honeydue AOP client CA")
    tls = {"traefik_hostnet_origin_cert": cert, "traefik_hostnet_origin_key": key, "traefik_hostnet_client_ca": ca}

    run = _run(playbook, api, tmp_path, **tls)  # the switch's first step: the certificate, no client auth yet
    assert run.rc == 0, _failed_messages(run) or run.stdout[-4000:]
    values = yaml.safe_load(_hcc(api)["spec"]["valuesContent"])
    assert values["tlsStore"] == {"default": {"defaultCertificate": {"secretName": "honeydue-origin"}}}
    assert "tlsOptions" not in values
    secret = api.get_object("", "secrets", "kube-system", "honeydue-origin")
    assert secret["type"] == "kubernetes.io/tls" and base64.b64decode(secret["data"]["tls.crt"]).decode() == cert
    assert key not in run.stdout + run.stderr, "the key never printed"
    assert api.get_object("traefik.io", "tlsstores", "kube-system", "default")["spec"]["defaultCertificate"]

    run = _run(playbook, api, tmp_path, **tls, traefik_hostnet_require_client_cert=True)
    assert run.rc == 0, _failed_messages(run) or run.stdout[-4000:]
    option = api.get_object("traefik.io", "tlsoptions", "kube-system", "default")
    assert option["spec"]["clientAuth"] == {"secretNames": ["honeydue-aop-ca"], "clientAuthType": "RequireAndVerifyClientCert"}
    assert base64.b64decode(api.get_object("", "secrets", "kube-system", "honeydue-aop-ca")["data"]["ca.crt"]).decode() == ca

    again = _run(playbook, api, tmp_path, **tls)  # null: keep what the cluster has (site.yml re-run)
    assert again.rc == 0 and again.changed() == 0, (again.stats, _failed_messages(again))
    assert "tlsOptions" in yaml.safe_load(_hcc(api)["spec"]["valuesContent"])

    off = _run(playbook, api, tmp_path, **tls, traefik_hostnet_require_client_cert=False)
    assert off.rc == 0, _failed_messages(off)
    assert "tlsOptions" not in yaml.safe_load(_hcc(api)["spec"]["valuesContent"])

    no_ca = _run(playbook, api, tmp_path, traefik_hostnet_require_client_cert=True)
    assert no_ca.rc != 0 and "traefik_hostnet_client_ca is empty" in _failed_messages(no_ca)

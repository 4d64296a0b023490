"""Every manifest honeydue_app renders, checked against the Kubernetes 1.34 strict schemas (unknown
fields refused), and the properties an operator relies on read off the rendered objects."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.standins._kube_validate import validate_builtin

SECRET = "neon-pw-Qx81"
VARS = {"honeydue_domain": "honeydue.example", "honeydue_app_sha": "3f2c1d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e",
        "vault_honeydue_database_url": f"postgres://app:{SECRET}@ep.neon.tech/db",
        "vault_honeydue_redis_password": "redis-pw-Zr2", "vault_honeydue_secret_key": "sk-Lp3",
        "vault_honeydue_jwt_secret": "jwt-Mn4", "vault_honeydue_b2_key_id": "b2id", "vault_honeydue_b2_application_key": "b2key-Tt5",
        "vault_honeydue_smtp_username": "u@x", "vault_honeydue_smtp_password": "smtp-Vv6",
        "vault_honeydue_registry_username": "deploy", "vault_honeydue_registry_password": "reg-Ww7"}


def _render(playbook, tmp_path: Path, **extra: Any) -> dict[tuple[str, str], dict[str, Any]]:
    out = tmp_path / "manifests"
    out.mkdir()
    run = playbook([{"hosts": "localhost", "gather_facts": False, "vars": {**VARS, **extra},
                     "tasks": [{"ansible.builtin.include_role": {"name": "honeydue.infra.honeydue_app", "tasks_from": "render"},
                                "vars": {"honeydue_app_render_dir": str(out)}}]}])
    assert run.rc == 0, run.stdout[-3000:]
    objects = {}
    for f in sorted(out.glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[tuple[str, str], dict[str, Any]]:
    from conftest import run_playbook
    tmp = tmp_path_factory.mktemp("manifests")
    return _render(lambda plays: run_playbook(tmp, plays), tmp)


def test_every_manifest_is_valid_against_the_1_34_strict_schemas(rendered) -> None:
    assert len(rendered) >= 20
    for key, obj in rendered.items():
        assert validate_builtin(obj) == [], key


def test_the_workloads_as_the_issue_fixes_them(rendered) -> None:
    api = rendered[("Deployment", "api")]["spec"]
    assert api["replicas"] == 3
    assert api["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    pod = api["template"]["spec"]
    assert pod["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"
    assert "affinity" not in pod, "a required anti-affinity would stall a maxSurge 1 rollout on three nodes"
    c = pod["containers"][0]
    assert c["image"] == "git.honeydue.example/honeydue/api:3f2c1d9", "the git short sha"
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] == 240
    assert api["progressDeadlineSeconds"] >= 250
    assert {"readinessProbe", "livenessProbe"} <= set(c)
    admin = rendered[("Deployment", "admin")]["spec"]
    ac = admin["template"]["spec"]["containers"][0]
    assert admin["replicas"] == 1 and ac["startupProbe"]["failureThreshold"] == 24
    assert {ac[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe", "livenessProbe")} == {"/"}
    worker = rendered[("StatefulSet", "worker")]["spec"]
    assert worker["replicas"] == 1, "a StatefulSet: never two workers, even with a partitioned node"
    assert ("Deployment", "worker") not in rendered
    pdbs = {name: obj["spec"] for (kind, name), obj in rendered.items() if kind == "PodDisruptionBudget"}
    assert pdbs["api"]["minAvailable"] == 2 and pdbs["worker"]["minAvailable"] == 0
    redis = rendered[("StatefulSet", "redis")]["spec"]["template"]["spec"]
    assert redis["containers"][0]["image"] == "docker.io/library/redis:7-alpine"
    assert redis["volumes"][0]["persistentVolumeClaim"]["claimName"] == "redis-data"
    assert rendered[("PersistentVolumeClaim", "redis-data")]["spec"]["storageClassName"] == "local-path"
    assert "redis-pw" not in yaml.safe_dump(redis), "the password never on redis's command line"
    hosts = {r["host"]: r["http"]["paths"][0]["backend"]["service"]["name"]
             for r in rendered[("Ingress", "honeydue")]["spec"]["rules"]}
    assert hosts == {"api.honeydue.example": "api", "admin.honeydue.example": "admin", "honeydue.example": "admin"}
    assert rendered[("Ingress", "honeydue")]["spec"]["ingressClassName"] == "traefik"


def test_push_is_off_and_secrets_stay_in_secrets(rendered) -> None:
    config = rendered[("ConfigMap", "honeydue-config")]["data"]
    assert config["FEATURE_PUSH_ENABLED"] == "false"
    import base64
    app = {k: base64.b64decode(v).decode() for k, v in rendered[("Secret", "honeydue-app")]["data"].items()}
    assert app["APNS_KEY_ID"] == "push-disabled" and app["FCM_SERVER_KEY"] == "push-disabled"
    assert app["DATABASE_URL"].endswith(f"{SECRET}@ep.neon.tech/db")
    plain = yaml.safe_dump([o for (kind, _), o in rendered.items() if kind != "Secret"])
    for value in VARS.values():
        if value.startswith(("3f2c", "honeydue.")) or value in ("deploy", "u@x", "b2id"):
            continue
        assert value not in plain


def _mebibytes(q: str) -> float:
    return float(q[:-2]) * (1024 if q.endswith("Gi") else 1)


def test_the_stack_requests_fit_in_about_one_gigabyte(rendered) -> None:
    total = 0.0
    for (kind, _), obj in rendered.items():
        if kind in ("Deployment", "StatefulSet"):
            for c in obj["spec"]["template"]["spec"]["containers"]:
                total += _mebibytes(c["resources"]["requests"]["memory"]) * obj["spec"]["replicas"]
                assert c["resources"]["limits"]["memory"]
    assert total <= 1024, total


def test_a_bad_progress_deadline_or_domain_fails_before_anything(playbook, tmp_path) -> None:
    out = tmp_path / "m"
    run = playbook([{"hosts": "localhost", "gather_facts": False,
                     "vars": {**VARS, "honeydue_app_progress_deadline": 100},
                     "tasks": [{"ansible.builtin.include_role": {"name": "honeydue.infra.honeydue_app", "tasks_from": "render"},
                                "vars": {"honeydue_app_render_dir": str(out)}}]}])
    assert run.rc != 0 and "startup budget" in run.stdout
    assert not out.exists()

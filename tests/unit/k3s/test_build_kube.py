"""The K3s stand-in's executable carries the Kubernetes API logic of lab/standins and the data it reads.

A lab node (Debian 13) has python3, python3-yaml, python3-jsonschema, python3-referencing, but neither
the repository nor ansible, kubernetes-validate or openapi-schema-validator. The zipapp built by
lab/k3s/build.py must answer as the Kubernetes stand-in does there: its data extracted by
lab/k3s/_data.py, the schemas and CRDs read from that copy.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from lab.k3s import _data, _releases, build
from lab.standins import _kube_validate

# Run as ``python3 -c CHECK <executable> <data dir>``: the zipapp on sys.path, what a node lacks blocked,
# its data extracted, then a KubeStandIn of the built release asked what an operator asks it.
# Prints one JSON document (see assert_answers).
CHECK = r'''
import json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

for name in ("ansible", "kubernetes_validate", "openapi_schema_validator"):  # absent on a lab node
    sys.modules[name] = None
sys.path.insert(0, sys.argv[1])
from lab.k3s import _data

out = {"env": _data.ensure_data(Path(sys.argv[2]), set_environ=True)}
out["env_again"] = _data.ensure_data(Path(sys.argv[2]))
from lab.k3s.__main__ import release
from lab.standins import kube
from lab.standins._server import Request

out["kube_file"] = kube.__file__
api = kube.KubeStandIn(token="t", nodes=3, release=release())
api.rollout_seconds = 0.01


def call(method, path, body=None, query=""):
    raw = b"" if body is None else json.dumps(body).encode()
    headers = {"authorization": "Bearer t", "content-type": "application/json"}
    resp = api.handle(Request(method, path, parse_qs(query), headers, raw, body))
    return [resp.status, resp.body]


def deployment(obj_name, **container):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": obj_name},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}}}


deployments = "/apis/apps/v1/namespaces/default/deployments"
extra = deployment("extra", name="app", image="nginx:1.27")
extra["spec"]["replica"] = 2
out["strict"] = call("POST", deployments, extra, "fieldValidation=Strict")
out["warn"] = call("POST", deployments, extra)
out["unnamed"] = call("POST", deployments, deployment("unnamed", image="nginx:1.27"))
out["crd"] = call("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/helmchartconfigs.helm.cattle.io")
chart = api.get_object("helm.cattle.io", "helmcharts", "kube-system", "traefik")
out["helmchart"] = chart and chart["spec"]
out["traefik"] = api.get_object("apps", "deployments", "kube-system", "traefik") is not None
hcc = {"apiVersion": "helm.cattle.io/v1", "kind": "HelmChartConfig", "metadata": {"name": "traefik"},
       "spec": {"valuesContent": "hostNetwork: \"yes\"\n"}}
out["hcc"] = call("POST", "/apis/helm.cattle.io/v1/namespaces/kube-system/helmchartconfigs", hcc)[0]
out["helm_log"] = ""
for _ in range(100):
    api.get_object("batch", "jobs", "kube-system", "helm-install-traefik")
    pods = call("GET", "/api/v1/namespaces/kube-system/pods", query="labelSelector=job-name%3Dhelm-install-traefik")
    logs = [call("GET", "/api/v1/namespaces/kube-system/pods/%s/log" % p["metadata"]["name"])[1]
            for p in pods[1]["items"]]
    out["helm_log"] = "".join(log for log in logs if isinstance(log, str))
    if "schema" in out["helm_log"]:
        break
    time.sleep(0.05)


class Registry(BaseHTTPRequestHandler):  # a registry without the image
    def do_HEAD(self):
        self.send_response(404)
        self.end_headers()

    def do_GET(self):
        body = b'{"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
threading.Thread(target=server.serve_forever, daemon=True).start()
from lab.registry import _pull

try:
    _pull.pull_config("127.0.0.1:%d/honeydue/api:gone" % server.server_port)
    out["pull"] = "pulled"
except _pull.RegistryError as err:
    out["pull"] = str(err)
server.shutdown()
out["oci_file"] = _pull.oci.__file__
out["violations"] = api.contract_violations
print(json.dumps(out))
'''


def assert_answers(out: dict[str, Any], archive: str, data_dir: str, digest: str,
                   release: str = _releases.PRODUCTION) -> None:
    """What the CHECK run must have seen: the data extracted under ``<data_dir>/data/<digest[:16]>`` and
    used, the kube path loaded from the executable, the API server's validation answers, the release's
    seeded Traefik HelmChart rendered against the chart's values schema, the kubelet's pull answer."""
    where = f"{data_dir}/data/{digest[:16]}"
    assert out["env"] == {"HONEYDUE_SPECS": f"{where}/specs", "HONEYDUE_KUBE_SCHEMAS": f"{where}/kube-schemas"}
    assert out["env_again"] == out["env"]
    assert out["kube_file"] == f"{archive}/lab/standins/kube.py"
    assert out["oci_file"] == f"{archive}/ansible_collections/honeydue/infra/plugins/module_utils/_oci_registry.py"

    code, body = out["strict"]  # fieldValidation=Strict: the strict schema's unknown field is a 400
    assert code == 400 and body["reason"] == "BadRequest", body
    assert 'strict decoding error: unknown field "spec.replica"' in body["message"]
    code, body = out["warn"]  # the default (Warn): dropped
    assert code == 201 and "replica" not in body["spec"]
    code, body = out["unnamed"]  # a container without a name: 422 with the cause
    assert code == 422 and body["reason"] == "Invalid", body
    assert {"reason": "FieldValueRequired", "message": "Required value",
            "field": "spec.template.spec.containers[0].name"} in body["details"]["causes"]

    code, crd = out["crd"]  # the release's helm-controller CRD, read from the extracted data
    assert code == 200 and crd["spec"]["names"]["kind"] == "HelmChartConfig"
    chart = _releases.release(release)["traefik_chart"]
    assert out["helmchart"]["chart"].endswith(f"/traefik-{chart}.tgz")
    assert out["traefik"], "the seeded HelmChart's install job rendered no traefik Deployment"
    assert out["hcc"] == 201
    assert "values don't meet the specifications of the schema(s)" in out["helm_log"], out["helm_log"]
    assert "at '/hostNetwork': got string, want boolean" in out["helm_log"], out["helm_log"]

    assert out["pull"].endswith("missing (404 MANIFEST_UNKNOWN)"), out["pull"]
    assert out["violations"] == []


def run_check(python: str, exe: Path, data_dir: Path, cwd: Path) -> dict[str, Any]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "PYTHONNOUSERSITE": "1",
           "HONEYDUE_SPECS": str(cwd / "no-such-specs")}  # the repository's specs must not be needed
    proc = subprocess.run([python, "-c", CHECK, str(exe), str(data_dir)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _zip(exe: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(exe))


def test_the_zip_carries_the_kube_path_and_the_release_data_reproducibly():
    exe = build.build_executable(_releases.PRODUCTION)
    assert exe == build.build_executable(_releases.PRODUCTION)
    names = set(_zip(exe).namelist())
    oci = "ansible_collections/honeydue/infra/plugins/module_utils/"
    assert {"lab/standins/__init__.py", "lab/standins/kube.py", "lab/standins/_kube_validate.py",
            "lab/standins/_specs.py", "lab/standins/_traefik_chart.py", "lab/standins/_helmcontroller.py",
            "lab/registry/__init__.py", "lab/registry/_pull.py", "lab/k3s/_data.py", oci + "_oci_registry.py",
            oci + "__init__.py", "ansible_collections/__init__.py"} <= names
    # nothing that needs openapi_schema_validator (absent on the nodes), nor the build itself
    assert not names & {"lab/standins/_openapi.py", "lab/standins/hcloud.py", "lab/standins/cloudflare.py",
                        "lab/k3s/build.py"}
    schemas = {n.rsplit("/", 1)[1] for n in names if n.startswith("data/kube-schemas/")}
    assert {"_definitions.json", "deployment-apps-v1.json", "pod-v1.json", "job-batch-v1.json"} <= schemas
    crd = _kube_validate.crd_files(_releases.PRODUCTION)[("helm.cattle.io", "HelmChartConfig")]
    chart = _releases.release(_releases.PRODUCTION)["traefik_chart"]
    assert {f"data/specs/k3s/{crd}", f"data/specs/traefik/values.schema.{chart}.json"} <= names
    newest_crd = _kube_validate.crd_files(_releases.NEWEST)[("helm.cattle.io", "HelmChartConfig")]
    assert f"data/specs/k3s/{newest_crd}" in set(_zip(build.build_executable(_releases.NEWEST)).namelist())
    assert {i.date_time for i in _zip(exe).infolist()} == {build.FIXED_TIME}


def test_ensure_data_extracts_once_into_the_executables_hash(tmp_path, monkeypatch):
    exe = build.build(tmp_path / "out", [_releases.PRODUCTION])[0]
    digest = hashlib.sha256(exe.read_bytes()).hexdigest()
    for name in ("HONEYDUE_SPECS", "HONEYDUE_KUBE_SCHEMAS"):  # set_environ's values must not outlive the test
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    source = _kube_validate._schema_dir() / "_definitions.json"

    env = _data.ensure_data(tmp_path / "k3s", archive=exe, set_environ=True)
    where = tmp_path / "k3s" / "data" / digest[:16]
    assert env == {"HONEYDUE_SPECS": str(where / "specs"), "HONEYDUE_KUBE_SCHEMAS": str(where / "kube-schemas")}
    assert {k: os.environ[k] for k in env} == env
    assert os.listdir(where.parent) == [where.name]  # the temporary directory was renamed into place
    definitions = where / "kube-schemas" / "_definitions.json"
    assert definitions.read_bytes() == source.read_bytes()
    for path in [where, *where.rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o755 if path.is_dir() else 0o644), path

    definitions.write_text("{}")  # extracted once: an existing directory is kept as it is
    assert _data.ensure_data(tmp_path / "k3s", archive=exe) == env
    assert definitions.read_text() == "{}"


def test_ensure_data_outside_a_zipapp_leaves_the_repository_lookups(tmp_path):
    assert _data.ensure_data(tmp_path) == {}
    assert not (tmp_path / "data").exists()


def test_the_built_executable_runs_the_kube_standin_without_the_repository(tmp_path):
    """The same interpreter, but from the zip alone: ansible, kubernetes-validate and openapi-schema-validator
    blocked, HONEYDUE_SPECS pointing nowhere until ensure_data points it at the extracted copy."""
    exe = build.build(tmp_path / "out", [_releases.PRODUCTION])[0]
    out = run_check(sys.executable, exe, tmp_path / "var", tmp_path)
    assert_answers(out, str(exe), str(tmp_path / "var"), hashlib.sha256(exe.read_bytes()).hexdigest())

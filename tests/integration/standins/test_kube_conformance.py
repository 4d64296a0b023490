"""The Kubernetes stand-in answers like a K3s v1.34 API server: discovery, CRUD, patches, validation."""
from __future__ import annotations

import copy
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.conftest import TOKEN

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
HCC = "/apis/helm.cattle.io/v1/namespaces/kube-system/helmchartconfigs"


class Client:
    """A bare HTTP client: exact requests, parsed answers."""

    def __init__(self, url: str, token: str = TOKEN) -> None:
        self.url, self.token = url, token

    def __call__(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                 headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": content_type,
            "Accept": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req) as answer:
                raw, code, hdrs = answer.read(), answer.status, dict(answer.headers)
        except urllib.error.HTTPError as err:
            raw, code, hdrs = err.read(), err.code, dict(err.headers)
        return code, json.loads(raw) if raw else None, hdrs


@pytest.fixture
def k(kube_api) -> Client:
    return Client(kube_api.url)


def deployment(name: str = "web", image: str = "nginx:1.27", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": image,
                                                           "env": [{"name": "A", "value": "1"}],
                                                           "ports": [{"containerPort": 80}]}]}}, **spec}}


def assert_status(body: dict[str, Any], code: int, reason: str) -> None:
    """A well-formed failure ``Status``."""
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["metadata"] == {}
    assert (body["status"], body["code"], body["reason"]) == ("Failure", code, reason), body
    assert isinstance(body["message"], str) and body["message"]


# -- discovery -----------------------------------------------------------------------------------
def test_version_and_core_discovery(k: Client) -> None:
    code, version, _ = k("GET", "/version")
    assert code == 200 and version["gitVersion"].startswith("v1.34.") and version["gitVersion"].endswith("+k3s1")
    assert (version["major"], version["minor"]) == ("1", "34")
    assert k("GET", "/api")[1]["versions"] == ["v1"]
    resources = {r["name"]: r for r in k("GET", "/api/v1")[1]["resources"]}
    assert resources["namespaces"]["namespaced"] is False and resources["namespaces"]["shortNames"] == ["ns"]
    assert resources["pods"]["namespaced"] is True and resources["pods"]["kind"] == "Pod"
    assert resources["persistentvolumeclaims"]["shortNames"] == ["pvc"]
    assert resources["nodes"]["namespaced"] is False
    assert "deletecollection" in resources["configmaps"]["verbs"]
    assert {"services", "secrets", "serviceaccounts", "events", "pods/status"} <= set(resources)


def test_group_discovery(k: Client) -> None:
    groups = {g["name"]: g for g in k("GET", "/apis")[1]["groups"]}
    for name, version in (("apps", "v1"), ("policy", "v1"), ("networking.k8s.io", "v1"), ("batch", "v1"),
                          ("helm.cattle.io", "v1"), ("apiextensions.k8s.io", "v1"), ("traefik.io", "v1alpha1")):
        assert groups[name]["preferredVersion"]["groupVersion"] == f"{name}/{version}"
    apps = {r["name"]: r for r in k("GET", "/apis/apps/v1")[1]["resources"]}
    assert apps["deployments"]["shortNames"] == ["deploy"] and apps["deployments"]["kind"] == "Deployment"
    assert apps["deployments/scale"]["group"] == "autoscaling" and apps["deployments/scale"]["kind"] == "Scale"
    assert apps["deployments/status"]["verbs"] == ["get", "patch", "update"]
    assert {"replicasets", "daemonsets", "statefulsets"} <= set(apps)
    helm = {r["name"]: r for r in k("GET", "/apis/helm.cattle.io/v1")[1]["resources"]}
    assert helm["helmchartconfigs"]["namespaced"] is True
    crds = {r["name"]: r for r in k("GET", "/apis/apiextensions.k8s.io/v1")[1]["resources"]}
    assert crds["customresourcedefinitions"]["namespaced"] is False
    # aggregated discovery is not offered: a v2 Accept still gets the legacy document
    code, body, headers = k("GET", "/apis", headers={
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"})
    assert code == 200 and body["kind"] == "APIGroupList" and headers["Content-Type"] == "application/json"
    assert_status(k("GET", "/apis/nope.example.com/v1")[1], 404, "NotFound")


def test_wrong_token_is_unauthorized(kube_api) -> None:
    code, body, _ = Client(kube_api.url, token="wrong")("GET", "/api/v1/namespaces")
    assert code == 401
    assert_status(body, 401, "Unauthorized")


# -- CRUD --------------------------------------------------------------------------------------
def test_create_get_conflicts_and_delete(k: Client) -> None:
    code, created, _ = k("POST", DEPLOYMENTS, deployment())
    assert code == 201
    meta = created["metadata"]
    assert meta["namespace"] == "default" and meta["generation"] == 1 and meta["uid"]
    assert int(meta["resourceVersion"]) > 0 and meta["creationTimestamp"].endswith("Z")
    assert created["spec"]["strategy"]["type"] == "RollingUpdate"  # server-side defaults
    assert "status" not in created or created["status"] == {}

    code, body, _ = k("POST", DEPLOYMENTS, deployment())
    assert code == 409
    assert_status(body, 409, "AlreadyExists")
    assert body["message"] == 'deployments.apps "web" already exists'
    assert body["details"] == {"name": "web", "group": "apps", "kind": "deployments"}

    stale = copy.deepcopy(created)
    k("PATCH", f"{DEPLOYMENTS}/web", {"metadata": {"labels": {"x": "y"}}}, "application/merge-patch+json")
    stale["spec"]["replicas"] = 3
    code, body, _ = k("PUT", f"{DEPLOYMENTS}/web", stale)
    assert code == 409
    assert_status(body, 409, "Conflict")
    assert "the object has been modified" in body["message"]

    code, body, _ = k("DELETE", f"{DEPLOYMENTS}/web")
    assert code == 200 and body["kind"] == "Status" and body["status"] == "Success"
    code, body, _ = k("GET", f"{DEPLOYMENTS}/web")
    assert code == 404
    assert_status(body, 404, "NotFound")
    assert body["message"] == 'deployments.apps "web" not found'


def test_namespace_must_exist_and_initial_namespaces(k: Client) -> None:
    names = {n["metadata"]["name"] for n in k("GET", "/api/v1/namespaces")[1]["items"]}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    code, body, _ = k("POST", "/apis/apps/v1/namespaces/nope/deployments", deployment())
    assert code == 404
    assert_status(body, 404, "NotFound")
    assert body["message"] == 'namespaces "nope" not found'
    code, ns, _ = k("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                  "metadata": {"name": "shop"}})
    assert code == 201 and ns["status"]["phase"] == "Active"
    assert k("GET", "/api/v1/namespaces/shop/serviceaccounts/default")[0] == 200
    assert k("POST", "/apis/apps/v1/namespaces/shop/deployments", deployment())[0] == 201
    assert k("DELETE", "/api/v1/namespaces/shop")[1]["status"]["phase"] == "Terminating"
    assert k("GET", "/apis/apps/v1/namespaces/shop/deployments/web")[0] == 404


def test_a_deleted_namespace_passes_through_terminating_and_refuses_new_content(k: Client) -> None:
    k("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gone"}})
    web = deployment(replicas=2)
    web["spec"]["template"]["spec"]["containers"][0]["lifecycle"] = {"preStop": {"sleep": {"seconds": 3}}}
    assert k("POST", "/apis/apps/v1/namespaces/gone/deployments", web)[0] == 201
    deadline = time.time() + 10
    while time.time() < deadline and len(k("GET", "/api/v1/namespaces/gone/pods")[1]["items"]) < 2:
        time.sleep(0.1)
    code, ns, _ = k("DELETE", "/api/v1/namespaces/gone")
    assert code == 200 and ns["status"]["phase"] == "Terminating" and ns["metadata"]["deletionTimestamp"]
    code, body, _ = k("POST", "/api/v1/namespaces/gone/configmaps",
                      {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}})
    assert code == 403
    assert_status(body, 403, "Forbidden")
    assert body["message"] == ('configmaps "late" is forbidden: unable to create new content in namespace gone '
                               'because it is being terminated')
    assert body["details"]["causes"] == [{"reason": "NamespaceTerminating", "field": "metadata.namespace",
                                          "message": "namespace gone is being terminated"}]
    code, ns, _ = k("GET", "/api/v1/namespaces/gone")
    assert code == 200 and ns["status"]["phase"] == "Terminating", "its pods are still stopping (preStop sleep)"
    remaining = {c["type"]: c for c in ns["status"].get("conditions", [])}["NamespaceContentRemaining"]
    assert remaining["status"] == "True" and "pods. has 2 resource instances" in remaining["message"]
    assert k("GET", "/apis/apps/v1/namespaces/gone/deployments/web")[0] == 404, "controllers go first"
    deadline = time.time() + 40
    while time.time() < deadline and k("GET", "/api/v1/namespaces/gone")[0] == 200:
        time.sleep(0.2)
    assert k("GET", "/api/v1/namespaces/gone")[0] == 404, "removed once its pods are gone"
    code, body, _ = k("DELETE", "/api/v1/namespaces/default")
    assert code == 403 and body["message"] == 'namespaces "default" is forbidden: this namespace may not be deleted'


def test_cluster_scoped_objects(kube_api, k: Client) -> None:
    kube_api.register_node("extra", ["10.0.0.99"], {"role": "edge"})
    nodes = k("GET", "/api/v1/nodes?labelSelector=role%3Dedge")[1]
    assert [n["metadata"]["name"] for n in nodes["items"]] == ["extra"]
    assert "namespace" not in nodes["items"][0]["metadata"]
    code, crd, _ = k("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                            "helmchartconfigs.helm.cattle.io")
    assert code == 200 and crd["spec"]["names"]["kind"] == "HelmChartConfig"


# -- validation ----------------------------------------------------------------------------------
def test_invalid_deployments(k: Client) -> None:
    missing = deployment()
    del missing["spec"]["template"]["spec"]["containers"][0]["image"]
    missing["spec"]["template"]["spec"]["containers"][0].pop("name")
    code, body, _ = k("POST", DEPLOYMENTS, missing)
    assert code == 422
    assert_status(body, 422, "Invalid")
    assert body["message"].startswith('Deployment.apps "web" is invalid: ')
    assert {"reason": "FieldValueRequired", "message": "Required value",
            "field": "spec.template.spec.containers[0].name"} in body["details"]["causes"]

    imageless = deployment()
    del imageless["spec"]["template"]["spec"]["containers"][0]["image"]
    code, body, _ = k("POST", DEPLOYMENTS, imageless)
    assert code == 422
    assert body["message"] == 'Deployment.apps "web" is invalid: spec.template.spec.containers[0].image: Required value'
    code, body, _ = k("POST", "/api/v1/namespaces/default/pods",
                      {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                       "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}, {"name": "side"}]}})
    assert code == 422 and body["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers[1].image"}]

    mismatch = deployment()
    mismatch["spec"]["selector"]["matchLabels"] = {"app": "other"}
    code, body, _ = k("POST", DEPLOYMENTS, mismatch)
    assert code == 422 and "`selector` does not match template `labels`" in body["message"]

    bad_name = deployment(name="Web_1")
    code, body, _ = k("POST", DEPLOYMENTS, bad_name)
    assert code == 422 and body["details"]["causes"][0]["field"] == "metadata.name"


def test_wrong_types_and_unknown_fields(k: Client) -> None:
    """Like the real server: a type error fails decoding (400); unknown fields depend on fieldValidation."""
    typed = deployment()
    typed["spec"]["replicas"] = "three"
    code, body, _ = k("POST", DEPLOYMENTS, typed)
    assert code == 400
    assert_status(body, 400, "BadRequest")
    assert "cannot unmarshal string into Go struct field" in body["message"] and "spec.replicas" in body["message"]

    extra = deployment()
    extra["spec"]["replica"] = 2
    code, body, _ = k("POST", DEPLOYMENTS + "?fieldValidation=Strict", extra)
    assert code == 400
    assert 'strict decoding error: unknown field "spec.replica"' in body["message"]
    code, body, headers = k("POST", DEPLOYMENTS, extra)  # default Warn: dropped, with a warning
    assert code == 201 and "replica" not in body["spec"]
    assert 'unknown field \\"spec.replica\\"' in headers["Warning"]


def test_helmchartconfig_against_crd_schema(k: Client) -> None:
    hcc = {"apiVersion": "helm.cattle.io/v1", "kind": "HelmChartConfig",
           "metadata": {"name": "traefik"}, "spec": {"valuesContent": 42}}
    code, body, _ = k("POST", HCC, hcc)
    assert code == 422
    assert_status(body, 422, "Invalid")
    assert body["message"] == ('HelmChartConfig.helm.cattle.io "traefik" is invalid: spec.valuesContent: '
                               'Invalid value: "integer": spec.valuesContent in body must be of type string: '
                               '"integer"')
    hcc["spec"]["valuesContent"] = "ports:\n  web:\n    redirectTo: websecure\n"
    code, created, _ = k("POST", HCC, hcc)
    assert code == 201 and created["kind"] == "HelmChartConfig" and created["metadata"]["generation"] == 1

    code, body, _ = k("PATCH", f"{HCC}/traefik", {"spec": {"valuesContent": "x: 1\n"}},
                      "application/strategic-merge-patch+json")
    assert code == 415
    assert_status(body, 415, "UnsupportedMediaType")
    code, patched, _ = k("PATCH", f"{HCC}/traefik", {"spec": {"valuesContent": "x: 1\n"}},
                         "application/merge-patch+json")
    assert code == 200 and patched["spec"]["valuesContent"] == "x: 1\n" and patched["metadata"]["generation"] == 2
    items = k("GET", HCC)[1]["items"]
    assert items[0]["kind"] == "HelmChartConfig"  # custom resources keep kind in lists


# -- patches and generation ------------------------------------------------------------------------
def test_patch_types(k: Client) -> None:
    k("POST", DEPLOYMENTS, deployment())
    code, body, _ = k("PATCH", f"{DEPLOYMENTS}/web", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "one"}]}]}}}},
        "application/strategic-merge-patch+json")
    assert code == 200
    container = body["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.27"  # kept: containers merged by name
    assert container["env"] == [{"name": "A", "value": "one"}, {"name": "B", "value": "2"}]

    code, body, _ = k("PATCH", f"{DEPLOYMENTS}/web", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "C", "value": "3"}]}]}}}}, "application/merge-patch+json")
    assert code == 422 and body["message"] == ('Deployment.apps "web" is invalid: '
                                               'spec.template.spec.containers[0].image: Required value'), \
        "a merge patch replaces the whole list: the container lost its image"
    code, body, _ = k("PATCH", f"{DEPLOYMENTS}/web", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "nginx:1.27", "env": [{"name": "C", "value": "3"}]}]}}}},
        "application/merge-patch+json")
    container = body["spec"]["template"]["spec"]["containers"][0]
    assert code == 200 and container["env"] == [{"name": "C", "value": "3"}] and "ports" not in container

    code, body, _ = k("PATCH", f"{DEPLOYMENTS}/web", [
        {"op": "test", "path": "/spec/replicas", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 2},
        {"op": "add", "path": "/metadata/labels/tier", "value": "front"}], "application/json-patch+json")
    assert code == 200 and body["spec"]["replicas"] == 2 and body["metadata"]["labels"]["tier"] == "front"
    code, body, _ = k("PATCH", f"{DEPLOYMENTS}/web", [{"op": "test", "path": "/spec/replicas", "value": 9}],
                      "application/json-patch+json")
    assert code == 422 and body["reason"] == "Invalid"
    code, body, _ = k("PATCH", f"{DEPLOYMENTS}/web", b"{}", "text/plain")
    assert code == 415


def test_generation_rules_and_status_subresource(k: Client) -> None:
    created = k("POST", DEPLOYMENTS, deployment())[1]
    rv = created["metadata"]["resourceVersion"]
    labelled = k("PATCH", f"{DEPLOYMENTS}/web", {"metadata": {"labels": {"x": "1"}}},
                 "application/merge-patch+json")[1]
    assert labelled["metadata"]["generation"] == 1 and labelled["metadata"]["resourceVersion"] != rv
    noop = k("PATCH", f"{DEPLOYMENTS}/web", {"metadata": {"labels": {"x": "1"}}}, "application/merge-patch+json")[1]
    assert noop["metadata"]["resourceVersion"] == labelled["metadata"]["resourceVersion"]
    scaled = k("PATCH", f"{DEPLOYMENTS}/web", {"spec": {"replicas": 3}}, "application/merge-patch+json")[1]
    assert scaled["metadata"]["generation"] == 2
    # status written through the main resource is ignored; through /status it is taken, no generation bump
    ignored = k("PATCH", f"{DEPLOYMENTS}/web", {"status": {"replicas": 42}}, "application/merge-patch+json")[1]
    assert ignored["status"].get("replicas") != 42
    code, body, _ = k("PATCH", f"{DEPLOYMENTS}/web/status", {"status": {"observedGeneration": 7}},
                      "application/merge-patch+json")
    assert code == 200 and body["status"]["observedGeneration"] == 7 and body["metadata"]["generation"] == 2
    code, scale, _ = k("GET", f"{DEPLOYMENTS}/web/scale")
    assert code == 200 and scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3
    code, scale, _ = k("PATCH", f"{DEPLOYMENTS}/web/scale", {"spec": {"replicas": 1}}, "application/merge-patch+json")
    assert code == 200 and scale["spec"]["replicas"] == 1


def test_server_side_apply_minimal(k: Client) -> None:
    cm = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: conf\ndata:\n  a: '1'\n"
    code, body, _ = k("PATCH", "/api/v1/namespaces/default/configmaps/conf?fieldManager=test", cm,
                      "application/apply-patch+yaml")
    assert code == 201 and body["data"] == {"a": "1"}
    code, body, _ = k("PATCH", "/api/v1/namespaces/default/configmaps/conf", cm, "application/apply-patch+yaml")
    assert code == 422  # fieldManager is required for apply


# -- selectors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("selector, expected", [
    ("tier=front", ["a"]), ("tier==front", ["a"]), ("tier!=front", ["b", "c"]),
    ("tier in (front,back)", ["a", "b"]), ("tier notin (front)", ["b", "c"]),
    ("tier", ["a", "b"]), ("!tier", ["c"]), ("tier,env=prod", ["b"]),
])
def test_label_selectors(k: Client, selector: str, expected: list[str]) -> None:
    for name, labels in (("a", {"tier": "front"}), ("b", {"tier": "back", "env": "prod"}), ("c", {})):
        k("POST", "/api/v1/namespaces/default/configmaps",
          {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}})
    query = urllib.request.quote(selector)
    code, body, _ = k("GET", f"/api/v1/namespaces/default/configmaps?labelSelector={query}")
    assert code == 200 and body["kind"] == "ConfigMapList" and body["metadata"]["resourceVersion"]
    assert [i["metadata"]["name"] for i in body["items"] if i["metadata"]["name"] != "kube-root-ca.crt"] == expected
    assert all("kind" not in i for i in body["items"])  # built-in lists carry no per-item kind


def test_field_selectors(k: Client) -> None:
    k("POST", "/api/v1/namespaces", {"metadata": {"name": "shop"}})
    for ns in ("default", "shop"):
        k("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "x"}})
    body = k("GET", "/api/v1/configmaps?fieldSelector=metadata.name%3Dx,metadata.namespace!%3Ddefault")[1]
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in body["items"]] == [("shop", "x")]
    code, body, _ = k("GET", "/api/v1/configmaps?fieldSelector=data.a%3D1")
    assert code == 400 and body["message"] == "field label not supported: data.a"


# -- controllers ---------------------------------------------------------------------------------
def test_deployment_rollout_and_revisions(kube_api, k: Client) -> None:
    kube_api.rollout_seconds = 0.05
    k("POST", DEPLOYMENTS, deployment(replicas=2))
    time.sleep(0.1)
    ready = k("GET", f"{DEPLOYMENTS}/web")[1]
    assert ready["status"]["availableReplicas"] == 2 and ready["status"]["observedGeneration"] == 1
    reasons = {c["type"]: (c["status"], c["reason"]) for c in ready["status"]["conditions"]}
    assert reasons == {"Available": ("True", "MinimumReplicasAvailable"),
                       "Progressing": ("True", "NewReplicaSetAvailable")}
    k("PATCH", f"{DEPLOYMENTS}/web", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "nginx:1.28"}]}}}}, "application/strategic-merge-patch+json")
    rollout = k("GET", f"{DEPLOYMENTS}/web")[1]
    assert rollout["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    # a rolling update with the defaults (maxSurge 25% rounds up to 1, maxUnavailable 25% down to 0):
    # one new pod at a time beside the two old ones
    assert rollout["status"]["replicas"] == 3 and rollout["status"]["updatedReplicas"] == 1
    assert rollout["status"]["availableReplicas"] == 2
    time.sleep(0.3)
    replicasets = k("GET", "/apis/apps/v1/namespaces/default/replicasets?labelSelector=app%3Dweb")[1]["items"]
    by_revision = {rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs for rs in replicasets}
    assert by_revision["1"]["spec"]["replicas"] == 0 and by_revision["2"]["spec"]["replicas"] == 2
    assert by_revision["2"]["metadata"]["name"].startswith("web-")
    assert by_revision["2"]["metadata"]["ownerReferences"][0]["kind"] == "Deployment"


def test_daemonset_statefulset_pvc_job(kube_api, k: Client) -> None:
    kube_api.rollout_seconds = 0.0
    pod = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}
    k("POST", "/apis/apps/v1/namespaces/default/daemonsets", {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": pod}})
    k("POST", "/apis/apps/v1/namespaces/default/statefulsets", {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "x"}}, "template": pod,
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})
    job_pod = copy.deepcopy(pod)
    job_pod["spec"]["restartPolicy"] = "Never"
    k("POST", "/apis/batch/v1/namespaces/default/jobs", {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"}, "spec": {"template": job_pod}})
    ds = k("GET", "/apis/apps/v1/namespaces/default/daemonsets/agent")[1]["status"]
    assert ds["desiredNumberScheduled"] == 3 and ds["numberReady"] == 3
    sts = k("GET", "/apis/apps/v1/namespaces/default/statefulsets/db")[1]["status"]
    assert sts["readyReplicas"] == 2 and sts["currentRevision"] == sts["updateRevision"]
    claim = k("GET", "/api/v1/namespaces/default/persistentvolumeclaims/data-db-1")[1]
    assert claim["status"]["phase"] == "Bound" and claim["status"]["capacity"] == {"storage": "1Gi"}
    job = k("GET", "/apis/batch/v1/namespaces/default/jobs/migrate")[1]["status"]
    assert job["succeeded"] == 1 and {c["type"] for c in job["conditions"]} == {"Complete", "SuccessCriteriaMet"}


def test_fault_injection_answers_like_the_server(kube_api, k: Client) -> None:
    kube_api.inject("rate_limit", method="GET", path=r"/api/v1/namespaces$")
    code, body, headers = k("GET", "/api/v1/namespaces")
    assert code == 429 and headers["Retry-After"] == "1"
    assert_status(body, 429, "TooManyRequests")
    assert k("GET", "/api/v1/namespaces")[0] == 200
    assert [c.status for c in kube_api.calls("GET", r"/api/v1/namespaces$")] == [429, 200]


def test_images_from_a_registry_and_the_control_api(tmp_path) -> None:
    """With ``registry_url`` the stand-in asks the registry (HEAD manifests); else the declared set."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from lab.standins.kube import KubeStandIn

    asked: list[str] = []

    class Registry(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:  # noqa: N802 - stdlib name
            asked.append(self.path)
            self.send_response(200 if self.path == "/v2/library/nginx/manifests/1.27" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    registry = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=registry.serve_forever, daemon=True).start()
    api = KubeStandIn(token=TOKEN, registry_url=f"http://127.0.0.1:{registry.server_address[1]}",
                      rollout_seconds=0.0).start()
    try:
        k = Client(api.url)
        k("POST", DEPLOYMENTS, deployment("good", image="library/nginx:1.27"))
        k("POST", DEPLOYMENTS, deployment("bad", image="nginx:9.99"))
        assert k("GET", f"{DEPLOYMENTS}/good")[1]["status"]["availableReplicas"] == 1
        assert "availableReplicas" not in k("GET", f"{DEPLOYMENTS}/bad")[1]["status"]
        assert "/v2/library/nginx/manifests/9.99" in asked
        assert not api.contract_violations
    finally:
        api.stop()
        registry.shutdown()

    local = KubeStandIn(token=TOKEN, images={"nginx:1.27"}, rollout_seconds=0.0).start()
    try:
        k = Client(local.url)
        k("POST", DEPLOYMENTS, deployment("late", image="ghcr.io/acme/app:2"))
        assert "availableReplicas" not in k("GET", f"{DEPLOYMENTS}/late")[1]["status"]
        assert k("POST", "/_standin/images", {"images": ["ghcr.io/acme/app:2"]})[0] == 204
        assert k("GET", f"{DEPLOYMENTS}/late")[1]["status"]["availableReplicas"] == 1
        code, node, _ = k("POST", "/_standin/nodes", {"name": "edge-1", "addresses": ["10.0.0.50"]})
        assert code == 201 and node["kind"] == "Node"
        assert len(k("GET", "/api/v1/nodes")[1]["items"]) == 4
        assert not local.contract_violations
    finally:
        local.stop()


def _watch(url: str, seconds: float) -> tuple[list[dict[str, Any]], float]:
    req = urllib.request.Request(url + f"&timeoutSeconds={seconds:g}", headers={"Authorization": f"Bearer {TOKEN}"})
    started = time.monotonic()
    with urllib.request.urlopen(req) as answer:
        events = [json.loads(line) for line in answer.read().splitlines() if line]
    return events, time.monotonic() - started


def test_watch_starts_with_added_events_and_ends_after_timeout_seconds(kube_api) -> None:
    url = kube_api.url + "/api/v1/namespaces?watch=1&labelSelector=" + urllib.request.quote(
        "kubernetes.io/metadata.name=default")
    events, took = _watch(url, 1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "default")]
    assert 0.9 <= took < 3, "the stream stays open until timeoutSeconds, then ends"


def test_watch_from_a_resource_version_sends_what_changed_after_it(kube_api, k) -> None:
    import threading

    k("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "w"}})
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "w"}, "data": {"k": "1"}}
    code, created, _ = k("POST", "/api/v1/namespaces/w/configmaps", cm)
    assert code == 201
    rv = created["metadata"]["resourceVersion"]

    def later() -> None:
        time.sleep(0.3)
        k("PATCH", "/api/v1/namespaces/w/configmaps/a", {"data": {"k": "2"}}, "application/merge-patch+json")
        k("DELETE", "/api/v1/namespaces/w/configmaps/a")

    threading.Thread(target=later).start()
    events, _ = _watch(kube_api.url + f"/api/v1/namespaces/w/configmaps?watch=1&resourceVersion={rv}", 1.5)
    assert [(e["type"], e["object"].get("data")) for e in events] == [("MODIFIED", {"k": "2"}),
                                                                      ("DELETED", {"k": "2"})]
    kube_api.compact()
    events, _ = _watch(kube_api.url + f"/api/v1/namespaces/w/configmaps?watch=1&resourceVersion={rv}", 1)
    assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in events] == [("ERROR", 410, "Expired")]
    assert events[0]["object"]["message"].startswith(f"too old resource version: {rv} (")


def test_endpoint_slices_follow_ready_pods_a_second_late(kube_api, k: Client) -> None:
    kube_api.rollout_seconds = 0.0
    k("POST", DEPLOYMENTS, deployment(replicas=2))
    k("POST", "/api/v1/namespaces/default/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    slices_url = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=" + \
        urllib.request.quote("kubernetes.io/service-name=web")
    early = k("GET", slices_url)[1]["items"]
    assert len(early) == 1 and not early[0]["endpoints"], "no endpoint before the propagation delay"
    time.sleep(1.3)
    ready = k("GET", slices_url)[1]["items"][0]
    assert len(ready["endpoints"]) == 2 and all(e["conditions"]["ready"] for e in ready["endpoints"])
    assert ready["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert ready["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    pods = {p["metadata"]["name"] for p in k("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb")[1]["items"]}
    assert {e["targetRef"]["name"] for e in ready["endpoints"]} == pods

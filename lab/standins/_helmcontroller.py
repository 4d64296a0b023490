"""K3s's helm-controller for the packaged Traefik, inside the Kubernetes stand-in.

Modelled on k3s-io/helm-controller ``pkg/controllers/chart/chart.go`` (tags v0.16.17 / v0.17.1 /
v0.17.7, mirror) and the Traefik chart (:mod:`._traefik_chart`):

* K3s seeds the kube-system HelmChart ``traefik`` (unless ``--disable=traefik``) with its own
  ``valuesContent`` (``lab/k3s/_releases.py`` ``k3s_traefik_values``, unconfirmed);
* on a HelmChart / same-named HelmChartConfig change: Secret ``chart-values-<name>`` (type
  ``helmcharts.helm.cattle.io/values``; keys ``HelmChartValuesContent``, ``HelmChartValues``,
  ``HelmChartConfigValuesContent``, ``HelmChartConfigValues``: ``valuesSecret`` /
  ``valuesSecretAddConfig``), and the Job ``helm-install-<name>`` (``job()``: label
  ``helmcharts.helm.cattle.io/chart``, ``restartPolicy: OnFailure``, ``backoffLimit: 1000``, pod
  annotation ``helmcharts.helm.cattle.io/configHash: SHA256=<HEX>`` from ``hashObjects``); a changed
  hash deletes and recreates the Job;
* the Job "runs" klipper-helm: merge (:mod:`._helmvalues`) -> schema -> render -> write every object
  through the stand-in's own REST path (so the apiserver's validation applies). Success: Job Complete.
  Failure: the Job stays active (``OnFailure`` restarts the container: the pod's ``restartCount`` grows,
  ``status.failed`` stays 0 as in Kubernetes) and the pod log holds helm's ``Error: ...`` text.
* Events: ``ApplyJob`` (Normal) on each Job; ``JobFailed`` only from v0.17.7 (after backoffLimit retries,
  which the stand-in never reaches in a test's lifetime).
"""
from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import yaml

from . import _helmvalues, _traefik_chart
from ._kube_objects import now_rfc3339, safe_encode
from ._server import Request

if TYPE_CHECKING:  # pragma: no cover
    from .kube import KubeStandIn

CHART_LABEL = "helmcharts.helm.cattle.io/chart"
HASH_ANNOTATION = "helmcharts.helm.cattle.io/configHash"
SECRET_TYPE = "helmcharts.helm.cattle.io/values"
BACKOFF_LIMIT = 1000  # chart.go DefaultBackoffLimit (v0.17.1 l.77)
JOB_IMAGE = "rancher/klipper-helm:v0.9.10-build20251111"  # K3s passes its own tag: UNVERIFIED for v1.34


class HelmController:
    """Reconciles kube-system HelmCharts of the packaged Traefik chart (one chart: ``traefik``)."""

    def __init__(self, api: "KubeStandIn", release: str, disable: tuple[str, ...] = ()) -> None:
        from lab.k3s._releases import release as release_entry

        self.api = api
        self.release = release
        self.entry = release_entry(release)
        self.disable = tuple(disable)
        self.logs: dict[str, str] = {}  # pod name -> log text
        self.runs: dict[str, dict[str, Any]] = {}  # job uid -> run record
        self.installed: set[str] = set()  # charts with a deployed release (later runs are upgrades)
        self.rendered: dict[str, set[tuple[str, str, str, str]]] = {}  # chart -> objects of the last release

    # -- seeding ------------------------------------------------------------------------------------
    def seed(self) -> None:
        """K3s writes ``/var/lib/rancher/k3s/server/manifests/traefik.yaml`` and its deploy controller
        creates the HelmChart (unless the component is disabled)."""
        if "traefik" in self.disable or not self.entry.get("traefik_chart"):
            return
        chart = self.entry["traefik_chart"]
        obj = {"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
               "metadata": {"name": "traefik", "annotations": {
                   "helmcharts.cattle.io/managed-by": "helm-controller"}},
               "spec": {"chart": f"https://%{{KUBERNETES_API}}%/static/charts/traefik-{chart}.tgz",
                        "set": {"global.systemDefaultRegistry": ""},
                        "valuesContent": self.entry.get("k3s_traefik_values") or ""}}
        self.api._seed(self.api._rt("helm.cattle.io", "helmcharts"), obj, "kube-system")

    # -- helpers ------------------------------------------------------------------------------------
    def _rt(self, group: str, plural: str) -> Any:
        return self.api._rt(group, plural)

    def _chart_version(self, chart: dict[str, Any]) -> str | None:
        """The chart version of a HelmChart: only K3s's bundled Traefik chart is known to the stand-in."""
        spec_chart = str((chart.get("spec") or {}).get("chart") or "")
        for version in _traefik_chart.CHARTS:
            if spec_chart.endswith(f"traefik-{version}.tgz") or (chart.get("spec") or {}).get("version") == version:
                return version
        return None

    def owns_job(self, job: dict[str, Any]) -> bool:
        """Whether a Job is a helm-controller Job (the generic Job controller leaves it alone)."""
        return CHART_LABEL in (job["metadata"].get("labels") or {})

    # -- reconcile ----------------------------------------------------------------------------------
    def reconcile(self) -> None:
        """Per HelmChart: values Secret, Job (recreated on a new hash), and a run of the Job."""
        for chart in self.api.items(self._rt("helm.cattle.io", "helmcharts")):
            if self._chart_version(chart) is None:
                continue
            ns, name = chart["metadata"]["namespace"], chart["metadata"]["name"]
            config = self.api.lookup(self._rt("helm.cattle.io", "helmchartconfigs"), ns, name)
            secret = self._values_secret(chart, config)
            job = self._job(chart, config, [secret, *self._referenced_secrets(chart, config)])
            self._run(chart, config, job)

    def _referenced_secrets(self, chart: dict[str, Any], config: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The Secrets named in ``spec.valuesSecrets`` that are watched (not ``ignoreUpdates``): they take part
        in the config hash (chart.go ``hashObjects`` over the values Secret and the referenced Secrets)."""
        ns = chart["metadata"]["namespace"]
        out = []
        for obj in (chart, config or {}):
            for ref in (obj.get("spec") or {}).get("valuesSecrets") or []:
                found = self.api.lookup(self._rt("", "secrets"), ns, str(ref.get("name")))
                if found is not None and not ref.get("ignoreUpdates"):
                    out.append(found)
        return out

    def _secret_layers(self, chart: dict[str, Any], config: dict[str, Any] | None) -> list[dict[str, Any]]:
        """``valuesSecrets`` of the HelmChart then the HelmChartConfig: each listed key's YAML, in order.

        A missing Secret that is not ``ignoreUpdates`` (optional) fails the run (approximation: the real
        controller retries before creating the Job)."""
        ns = chart["metadata"]["namespace"]
        out = []
        for owner, obj in (("HelmChart", chart), ("HelmChartConfig", config or {})):
            for ref in (obj.get("spec") or {}).get("valuesSecrets") or []:
                found = self.api.lookup(self._rt("", "secrets"), ns, str(ref.get("name")))
                if found is None:
                    if ref.get("ignoreUpdates"):
                        continue
                    raise ValueError(f'secrets "{ref.get("name")}" not found')
                for key in ref.get("keys") or []:
                    text = base64.b64decode((found.get("data") or {}).get(key, "")).decode()
                    out.append({"owner": owner, "values": _helmvalues.parse_yaml_layer(text)})
        return out

    def _secret_data(self, chart: dict[str, Any], config: dict[str, Any] | None) -> dict[str, str]:
        """``valuesSecret`` + ``valuesSecretAddConfig``: base64 of each values source (v0.17.1+: ``values``)."""
        def enc(text: str) -> str:
            return base64.b64encode(text.encode()).decode()

        spec = chart.get("spec") or {}
        data = {"HelmChartValuesContent": enc(spec.get("valuesContent") or "")}
        if spec.get("values"):
            data["HelmChartValues"] = enc(yaml.safe_dump(spec["values"]))
        if config is not None:
            cspec = config.get("spec") or {}
            data["HelmChartConfigValuesContent"] = enc(cspec.get("valuesContent") or "")
            if cspec.get("values"):
                data["HelmChartConfigValues"] = enc(yaml.safe_dump(cspec["values"]))
        return data

    def _values_secret(self, chart: dict[str, Any], config: dict[str, Any] | None) -> dict[str, Any]:
        ns, name = chart["metadata"]["namespace"], chart["metadata"]["name"]
        rt = self._rt("", "secrets")
        data = self._secret_data(chart, config)
        secret = self.api.lookup(rt, ns, f"chart-values-{name}")
        if secret is not None and secret.get("data") == data:
            return secret
        if secret is not None:
            secret["data"] = data
            secret["metadata"]["resourceVersion"] = self.api.next_rv()
            return secret
        obj = {"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE, "data": data,
               "metadata": {"name": f"chart-values-{name}", "ownerReferences": [self._owner(chart)]}}
        prepared = self.api._prepare_create(rt, obj, ns)
        self.api.store(rt, prepared)
        return prepared

    @staticmethod
    def _owner(chart: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart", "name": chart["metadata"]["name"],
                "uid": chart["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}

    @staticmethod
    def config_hash(*secrets: dict[str, Any]) -> str:
        """``hashObjects`` (chart.go): sha256 over each object's sorted ``data`` keys and values, ``SHA256=<HEX>``."""
        digest = hashlib.sha256()
        for secret in secrets:
            for key in sorted(secret.get("data") or {}):
                digest.update(key.encode())
                digest.update(str(secret["data"][key]).encode())
        return f"SHA256={digest.hexdigest().upper()}"

    @staticmethod
    def args(chart: dict[str, Any]) -> list[str]:
        """``args()`` (chart.go l.1012-1019): ``install`` then ``spec.set`` as ``--set`` (ints, true/false/null)
        or ``--set-string``, sorted keys (``--set-string`` comma escaping left out)."""
        out = ["install"]
        spec_set = (chart.get("spec") or {}).get("set") or {}
        for key in sorted(spec_set):
            value = spec_set[key]
            typed = (isinstance(value, int) and not isinstance(value, bool)) or \
                str(value).lower() in ("true", "false", "null")
            text = str(value).lower() if isinstance(value, bool) else str(value)
            out += ["--set" if typed else "--set-string", f"{key}={text}"]
        return out

    def _failure_policy(self, chart: dict[str, Any], config: dict[str, Any] | None) -> str:
        """HelmChartConfig ``failurePolicy`` overrides the HelmChart's (chart.go l.529-532); default reinstall."""
        return ((config or {}).get("spec") or {}).get("failurePolicy") or \
            (chart.get("spec") or {}).get("failurePolicy") or "reinstall"

    def _job(self, chart: dict[str, Any], config: dict[str, Any] | None,
             secrets: list[dict[str, Any]]) -> dict[str, Any]:
        ns, name = chart["metadata"]["namespace"], chart["metadata"]["name"]
        rt = self._rt("batch", "jobs")
        digest = self.config_hash(*secrets)
        job = self.api.lookup(rt, ns, f"helm-install-{name}")
        if job is not None:
            annotations = job["spec"]["template"]["metadata"].get("annotations") or {}
            same_args = job["spec"]["template"]["spec"]["containers"][0].get("args") == self.args(chart)
            if annotations.get(HASH_ANNOTATION) == digest and same_args:
                return job
            self.api.remove(rt, job)
        job = self._new_job(chart, config, digest)
        self._chart_status(chart, job)
        self._event(chart, "Normal", "ApplyJob", self._apply_message(chart, job))
        return job

    def _new_job(self, chart: dict[str, Any], config: dict[str, Any] | None, digest: str) -> dict[str, Any]:
        ns, name = chart["metadata"]["namespace"], chart["metadata"]["name"]
        rt = self._rt("batch", "jobs")
        env = [{"name": k, "value": v} for k, v in (
            ("NAME", name), ("VERSION", ""), ("REPO", ""), ("HELM_DRIVER", "secret"), ("CHART_NAMESPACE", ns),
            ("CHART", chart["spec"].get("chart", "")), ("HELM_VERSION", ""), ("TARGET_NAMESPACE", ns),
            ("FAILURE_POLICY", self._failure_policy(chart, config)))]
        obj = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": f"helm-install-{name}", "labels": {CHART_LABEL: name},
                            "ownerReferences": [self._owner(chart)]},
               "spec": {"backoffLimit": BACKOFF_LIMIT, "template": {
                   "metadata": {"labels": {CHART_LABEL: name}, "annotations": {HASH_ANNOTATION: digest}},
                   "spec": {"restartPolicy": "OnFailure", "serviceAccountName": f"helm-{name}",
                            "containers": [{"name": "helm", "image": JOB_IMAGE, "imagePullPolicy": "IfNotPresent",
                                            "args": self.args(chart), "env": env}]}}}}
        job = self.api._prepare_create(rt, obj, ns)
        self.api._apply_defaults(rt, job, None)
        self.api.store(rt, job)
        return job

    def _apply_message(self, chart: dict[str, Any], job: dict[str, Any]) -> str:
        where = f"{job['metadata']['namespace']}/{job['metadata']['name']}"
        if self.entry.get("helm_controller", "").startswith("v0.16"):
            return f"Applying HelmChart using Job {where}"
        return f"Applying HelmChart from {chart['spec'].get('chart', '')} using Job {where} "

    def _chart_status(self, chart: dict[str, Any], job: dict[str, Any]) -> None:
        """HelmChart status at v0.17.1: JobCreated True and Failed False (no Job failure reflected)."""
        where = f"{job['metadata']['namespace']}/{job['metadata']['name']}"
        chart["status"] = {"jobName": job["metadata"]["name"], "conditions": [
            {"type": "JobCreated", "status": "True", "reason": "Job created",
             "message": f"Applying HelmChart using Job {where}"},
            {"type": "Failed", "status": "False"}]}
        chart["metadata"]["resourceVersion"] = self.api.next_rv()

    def _event(self, chart: dict[str, Any], kind: str, reason: str, message: str) -> None:
        rt = self._rt("", "events")
        meta = chart["metadata"]
        now = now_rfc3339()
        obj = {"apiVersion": "v1", "kind": "Event",
               "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}"},
               "involvedObject": {"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart", "name": meta["name"],
                                  "namespace": meta["namespace"], "uid": meta["uid"],
                                  "resourceVersion": meta["resourceVersion"]},
               "reason": reason, "message": message, "type": kind, "count": 1,
               "source": {"component": "helm-controller"}, "firstTimestamp": now, "lastTimestamp": now,
               "reportingComponent": "helm-controller", "reportingInstance": ""}
        self.api.store(rt, self.api._prepare_create(rt, obj, meta["namespace"]))

    # -- the Job's run ------------------------------------------------------------------------------
    def _run(self, chart: dict[str, Any], config: dict[str, Any] | None, job: dict[str, Any]) -> None:
        """Run the install Job's helm invocation, and re-run it after each restart back-off (kubelet's
        CrashLoopBackOff doubling, in units of the stand-in's ``rollout_seconds``) that has elapsed."""
        uid = job["metadata"]["uid"]
        record = self.runs.get(uid)
        now = time.monotonic()
        if record is not None and (record["ok"] or now < record["next"]):
            return
        if record is None:
            record = self.runs[uid] = {"ok": False, "restarts": 0, "next": now, "pod": self._pod(job)}
        else:
            while record["next"] <= now and record["restarts"] < BACKOFF_LIMIT:  # restarts missed between requests
                record["restarts"] += 1
                record["next"] += self._backoff(record["restarts"])
        upgrade = chart["metadata"]["name"] in self.installed
        error = self.helm(chart, config)
        record["ok"] = error is None
        record["next"] = max(record["next"], now + self._backoff(record["restarts"]))
        self.logs[record["pod"]["metadata"]["name"]] = self._log_text(chart, error, upgrade)
        self._job_status(job, record)

    def _backoff(self, restarts: int) -> float:
        return max(self.api.rollout_seconds, 0.01) * min(2 ** restarts, 32)

    def helm(self, chart: dict[str, Any], config: dict[str, Any] | None) -> str | None:
        """klipper-helm's ``helm install|upgrade``: None on success, helm's ``Error: ...`` text otherwise."""
        version = self._chart_version(chart) or ""
        upgrade = chart["metadata"]["name"] in self.installed
        verb = "UPGRADE" if upgrade else "INSTALLATION"
        try:
            secrets = self._secret_layers(chart, config)
            layers = [values for _, values in _helmvalues.layers_for(chart, config, secrets)]
        except (ValueError, yaml.YAMLError) as err:
            return f"Error: failed to parse values: {err}"
        values = _helmvalues.merge_values(_traefik_chart.DEFAULTS[version], layers)
        problem = _traefik_chart.validate(values, version, upgrade=upgrade)
        if problem:
            return problem
        try:
            objects = _traefik_chart.render(values, version, chart["metadata"]["namespace"])
        except _traefik_chart.ChartFail as err:
            return f"Error: {verb} FAILED: {err.message}"
        except ValueError as err:
            return f"Error: {verb} FAILED: {err}"
        for obj in objects:
            refused = self._write(obj, upgrade)
            if refused:
                return f"Error: {verb} FAILED: {refused}"
        self._prune_release(chart["metadata"]["name"], objects)
        self.installed.add(chart["metadata"]["name"])
        return None

    def _prune_release(self, name: str, objects: list[dict[str, Any]]) -> None:
        """helm deletes what the previous revision rendered and this one does not (a Deployment that became
        a DaemonSet, a Service that was disabled)."""
        from . import _kube_resources as kres

        keep = {(o["apiVersion"], o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objects}
        for api_version, kind, ns, obj_name in self.rendered.get(name, set()) - keep:
            rt = kres.by_kind(api_version, kind)
            found = self.api.lookup(rt, ns, obj_name) if rt is not None else None
            if found is not None:
                self.api.remove(rt, found)
        self.rendered[name] = keep

    def _write(self, obj: dict[str, Any], upgrade: bool) -> str | None:
        """Create or replace one rendered object through the stand-in's REST layer (its validation
        applies). helm's wording: ``failed to create resource: <status message>`` (create, UNVERIFIED)
        / ``cannot patch "<name>" with kind <Kind>: <status message>`` (upgrade)."""
        from . import _kube_resources as kres
        from .kube import KubeError

        rt = kres.by_kind(obj["apiVersion"], obj["kind"])
        if rt is None:
            return f'resource mapping not found for name: "{obj["metadata"]["name"]}" kind: "{obj["kind"]}"'
        ns, name = obj["metadata"].get("namespace", "") if rt.namespaced else "", obj["metadata"]["name"]
        prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
        collection = f"{prefix}/namespaces/{ns}/{rt.plural}" if rt.namespaced else f"{prefix}/{rt.plural}"
        current = self.api.lookup(rt, ns, name)
        if current is None:
            req = self._request("POST", collection, obj)
        else:
            body = json.loads(json.dumps(obj))
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            req = self._request("PUT", f"{collection}/{name}", body)
        try:
            answer = self.api._route(req)
        except KubeError as err:
            answer = err.response
        if answer.status < 300:
            return None
        message = (answer.body or {}).get("message", "") if isinstance(answer.body, dict) else str(answer.body)
        if current is None:
            return f"failed to create resource: {message}"
        return f'cannot patch "{name}" with kind {obj["kind"]}: {message}'

    @staticmethod
    def _request(method: str, path: str, body: dict[str, Any]) -> Request:
        raw = json.dumps(body).encode()
        return Request(method=method, path=path, query={}, headers={"content-type": "application/json"},
                       raw_body=raw, body=json.loads(raw))

    @staticmethod
    def _log_text(chart: dict[str, Any], error: str | None, upgrade: bool) -> str:
        """The helm container's log: klipper-helm ``entry`` echoes ``Already installed <name>, upgrading``
        before an upgrade; helm's own output follows (other preamble lines are left out)."""
        name = chart["metadata"]["name"]
        head = f"Already installed {name}, upgrading\n" if upgrade else ""
        done = f'Release "{name}" has been upgraded. Happy Helming!' if head else f"NAME: {name}\nSTATUS: deployed"
        return head + (error if error else done) + "\n"

    def _pod(self, job: dict[str, Any]) -> dict[str, Any]:
        """The Job's pod ``<job>-<5 chars>`` with the template's labels (``job-name`` ...)."""
        rt = self._rt("", "pods")
        template = json.loads(json.dumps(job["spec"]["template"]))
        suffix = safe_encode(hashlib.sha256(job["metadata"]["uid"].encode()).digest(), 5)
        owner = {"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"],
                 "uid": job["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
        meta = {**template["metadata"], "name": f"{job['metadata']['name']}-{suffix}", "ownerReferences": [owner]}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]}
        node = next(iter(self.api.items(self._rt("", "nodes"))), None)
        if node is not None:
            pod["spec"]["nodeName"] = node["metadata"]["name"]
        pod = self.api._prepare_create(rt, pod, job["metadata"]["namespace"])
        self.api.store(rt, pod)
        return pod

    def _job_status(self, job: dict[str, Any], record: dict[str, Any]) -> None:
        now = now_rfc3339()
        start = (job.get("status") or {}).get("startTime") or now
        pod = record["pod"]
        if record["ok"]:
            cond = {"type": "Complete", "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
                    "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"}
            job["status"] = {"startTime": start, "completionTime": now, "succeeded": 1, "ready": 0,
                             "terminating": 0, "uncountedTerminatedPods": {},
                             "conditions": [{**cond, "type": "SuccessCriteriaMet"}, cond]}
            pod["status"] = {"phase": "Succeeded", "containerStatuses": [self._container(record, "terminated")]}
        else:
            job["status"] = {"startTime": start, "active": 1, "ready": 0, "terminating": 0,
                             "uncountedTerminatedPods": {}}
            pod["status"] = {"phase": "Running", "containerStatuses": [self._container(record, "waiting")]}
        job["metadata"]["resourceVersion"] = self.api.next_rv()
        pod["metadata"]["resourceVersion"] = self.api.next_rv()

    @staticmethod
    def _container(record: dict[str, Any], state: str) -> dict[str, Any]:
        detail = {"terminated": {"exitCode": 0, "reason": "Completed"},
                  "waiting": {"reason": "CrashLoopBackOff"}}[state]
        return {"name": "helm", "image": JOB_IMAGE, "imageID": "", "ready": False, "started": False,
                "restartCount": max(record["restarts"], 0), "state": {state: detail}}

    def pod_log(self, namespace: str, name: str) -> str | None:
        """The log of a helm Job pod (None for other pods)."""
        return self.logs.get(name)

"""The Traefik Helm chart as K3s's helm-controller installs it, for the Kubernetes stand-in (pure).

Per chart version (37.1.0, 39.0.5, 40.0.0; traefik/traefik-helm-chart tags ``v<version>``):

* ``DEFAULTS``: the chart's ``values.yaml`` defaults of the keys this module renders (and no others);
* :func:`validate`: the chart's ``values.schema.json`` (``shared/specs/traefik``), with helm's message;
* :func:`render`: the objects the chart's templates produce for those keys, or :class:`ChartFail`
  carrying the template's own ``fail`` text in helm's ``execution error at (<file>:<line>:<col>)`` form.

A value that differs from the chart default and that this renderer cannot honour gives
``stand-in cannot render <key>`` instead of being silently ignored.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jsonschema

from ._specs import specs_dir

CHARTS = ("37.1.0", "39.0.5", "40.0.0")
# Chart.yaml appVersion at each tag (traefik/traefik-helm-chart mirror).
APP_VERSION = {"37.1.0": "v3.5.1", "39.0.5": "v3.6.10", "40.0.0": "v3.7.0"}
# helm's schema-error line: "v6" = helm >= 3.18 (santhosh-tekuri/jsonschema v6), "gojsonschema" = older helm.
# k3s-io/klipper-helm's Dockerfile (stored version at commit 00d0a6f) downloads helm v3.18.6, so v6 is the
# default; which klipper-helm tag K3s v1.34.x bundles, and helm's ordering of several errors, are UNVERIFIED.
DEFAULT_STYLE = "v6"


class ChartFail(Exception):
    """helm's failure for this chart: ``message`` is the text after ``Error: INSTALLATION FAILED: ``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class _FailSite:
    template: str
    line: int
    col: int
    text: str


def _port(port: int, exposed: int, expose: bool, chart: str, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"port": port, "exposedPort": exposed, "expose": {"default": expose},
                             "protocol": "TCP", **extra}
    return entry


def _ep_defaults(chart: str) -> dict[str, Any]:
    fwd: dict[str, Any] = {"trustedIPs": [], "insecure": False}
    if chart == "40.0.0":
        fwd["notAppendXForwardedFor"] = False
    return {"forwardedHeaders": fwd}


def _defaults(chart: str) -> dict[str, Any]:
    """values.yaml of ``v<chart>`` (only rendered keys). Sources: traefik/values.yaml at each tag."""
    tls = {"enabled": True, "options": "", "certResolver": "", "domains": []}
    websecure = _port(8443, 443, True, chart, hostPort=None, **_ep_defaults(chart))
    if chart == "37.1.0":
        websecure["tls"] = tls
    else:
        websecure["http"] = {"tls": tls}
    glob: dict[str, Any] = {"checkNewVersion": True, "sendAnonymousUsage": False}
    if chart == "40.0.0":
        glob["notAppendXForwardedFor"] = False
    pod_sc: dict[str, Any] = {"runAsGroup": 65532, "runAsNonRoot": True, "runAsUser": 65532}
    if chart != "37.1.0":
        pod_sc["seccompProfile"] = {"type": "RuntimeDefault"}
    service: dict[str, Any] = {"enabled": True, "single": True}
    service.update({"spec": {"type": "LoadBalancer"}} if chart == "40.0.0" else {"type": "LoadBalancer"})
    return {
        "deployment": {"enabled": True, "kind": "Deployment", "replicas": 1, "podAnnotations": {}},
        "hostNetwork": False,
        "image": {"registry": "docker.io", "repository": "traefik", "tag": None, "pullPolicy": "IfNotPresent"},
        "ports": {"traefik": _port(8080, 8080, False, chart, hostPort=None),
                  "web": _port(8000, 80, True, chart, **_ep_defaults(chart)),
                  "websecure": websecure,
                  "metrics": _port(9100, 9100, False, chart)},
        "service": service,
        "providers": {"kubernetesIngress": {"enabled": True, "publishedService": {"enabled": True,
                                                                                  "pathOverride": ""}},
                      "kubernetesCRD": {"enabled": True}},
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "logs": {"access": {"enabled": False, "format": None}},
        "tlsOptions": {}, "tlsStore": {}, "additionalArguments": [], "global": glob,
        "ingressClass": {"enabled": True, "isDefaultClass": True, "name": ""},
        "priorityClassName": "", "tolerations": [], "resources": {},
        "podSecurityContext": pod_sc,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True},
    }


DEFAULTS: dict[str, dict[str, Any]] = {chart: _defaults(chart) for chart in CHARTS}

# Where each template ``fail`` sits at each tag (line 1-based, column = 0-based offset of ``fail``,
# as Go's text/template ErrorContext reports it; read from the templates in the chart mirror).
_HOSTPORT = "ERROR: All hostPort must match their respective containerPort when `hostNetwork` is enabled"
_FAILS: dict[str, dict[str, _FailSite]] = {
    chart: {
        "acme": _FailSite("daemonset.yaml", 5, 12, "ACME functionality is not supported when running Traefik "
                                                   "as a DaemonSet"),
        "latest": _FailSite("daemonset.yaml", 10, 8, "\n\n ERROR: latest tag should not be used"),
        "maxunavailable": _FailSite("daemonset.yaml", 16, 14, "maxUnavailable should be greater than "
                                    f"{'1' if chart == '37.1.0' else '0'} when using hostNetwork."),
        "hostport": _FailSite("_podtemplate.tpl", 118 if chart == "40.0.0" else 115, 18, _HOSTPORT),
        "global_xff": _FailSite("requirements.yaml", 88, 6, "ERROR: global.notAppendXForwardedFor is only "
                                                            "available for traefik >= v3.7.0."),
        "port_xff": _FailSite("requirements.yaml", 93, 6, "ERROR: forwardedHeaders.notAppendXForwardedFor is "
                                                          "only available for traefik >= v3.7.0."),
    } for chart in CHARTS}


def _fail(chart: str, key: str) -> ChartFail:
    site = _FAILS[chart][key]
    return ChartFail(f"execution error at (traefik/templates/{site.template}:{site.line}:{site.col}): {site.text}")


# -- schema ----------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def schema(chart: str) -> dict[str, Any]:
    """``values.schema.json`` of a chart version (``shared/specs/traefik/values.schema.<chart>.json``)."""
    with (specs_dir() / "traefik" / f"values.schema.{chart}.json").open(encoding="utf-8") as fh:
        return json.load(fh)


def _pointer(path: tuple[Any, ...]) -> str:
    return "".join(f"/{p}" for p in path)


def _v6_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}.get(type(value), "object")


def _v6_quote(text: str) -> str:
    """santhosh-tekuri/jsonschema v6 ``kind.quote``: Go ``%q`` with single quotes outside."""
    inner = json.dumps(text)[1:-1].replace('\\"', '"').replace("'", "\\'")
    return f"'{inner}'"


def _v6_display(value: Any) -> str:
    """v6 ``kind.display`` (primitives): strings quoted, others Go ``%v``."""
    if isinstance(value, str):
        return _v6_quote(value)
    if value is None:
        return "<nil>"
    return str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)


def _v6_line(err: jsonschema.ValidationError) -> str:
    """One error as helm >= 3.18 prints it: ``at '<instance pointer>': <message>``, messages of
    santhosh-tekuri/jsonschema v6 ``kind/kind.go`` (``LocalizedString`` of each kind)."""
    where = f"at {_v6_quote(_pointer(tuple(err.absolute_path)))}"
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        return f"{where}: additional properties {', '.join(_v6_quote(e) for e in extra)} not allowed"
    if err.validator == "type":
        want = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        return f"{where}: got {_v6_type(err.instance)}, want {' or '.join(want)}"
    if err.validator == "enum":
        want = [_v6_display(v) for v in err.validator_value]
        return f"{where}: value must be {want[0]}" if len(want) == 1 else \
            f"{where}: value must be one of {', '.join(want)}"
    if err.validator in ("minimum", "maximum"):
        return f"{where}: {err.validator}: got {float(err.instance):g}, want {float(err.validator_value):g}"
    if err.validator == "required":
        missing = [m for m in err.validator_value if m not in err.instance]
        return f"{where}: missing property {_v6_quote(missing[0])}" if len(missing) == 1 else \
            f"{where}: missing properties {', '.join(_v6_quote(m) for m in missing)}"
    return f"{where}: {err.message}"


def _gojsonschema_line(err: jsonschema.ValidationError) -> str:
    """One error as helm < 3.18 prints it (xeipuuv/gojsonschema ``field: description``)."""
    field = ".".join(str(p) for p in err.absolute_path) or "(root)"
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        return f"{field}: Additional property {extra[0]} is not allowed"
    if err.validator == "type":
        want = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        return f"{field}: Invalid type. Expected: {', '.join(want)}, given: {_v6_type(err.instance)}"
    if err.validator == "enum":
        return f"{field}: {field} must be one of the following: " + ", ".join(
            json.dumps(v) for v in err.validator_value)
    return f"{field}: {err.message}"


def schema_errors(values: dict[str, Any], chart: str, style: str = DEFAULT_STYLE) -> list[str]:
    """The per-error lines helm prints for ``values`` against the chart's schema (sorted by location)."""
    validator = jsonschema.Draft202012Validator(schema(chart))
    errors = sorted(validator.iter_errors(values), key=lambda e: [str(p) for p in e.absolute_path])
    line = _v6_line if style == "v6" else _gojsonschema_line
    return [line(e) for e in errors]


def validate(values: dict[str, Any], chart: str, *, upgrade: bool = False,
             style: str = DEFAULT_STYLE) -> str | None:
    """helm's whole error text when ``values`` break the schema (None when they meet it).

    helm ``pkg/chartutil/jsonschema.go`` ``ValidateAgainstSchema``: ``values don't meet the
    specifications of the schema(s) in the following chart(s):\\n<chart>:\\n- <error>``.
    """
    lines = schema_errors(values, chart, style)
    if not lines:
        return None
    verb = "UPGRADE" if upgrade else "INSTALLATION"
    body = "\n".join(f"- {entry}" for entry in lines)
    return (f"Error: {verb} FAILED: values don't meet the specifications of the schema(s) in the following "
            f"chart(s):\ntraefik:\n{body}")


# -- what the renderer honours ---------------------------------------------------------------------
_PORT_KEYS = {"port", "hostPort", "exposedPort", "expose", "protocol", "forwardedHeaders", "tls", "http"}
_SUPPORTED = (
    "deployment.enabled", "deployment.kind", "deployment.replicas", "deployment.podAnnotations", "hostNetwork",
    "image", "service.enabled", "service.type", "service.spec", "service.single", "service.ipFamilyPolicy",
    "providers.kubernetesIngress.enabled", "providers.kubernetesIngress.publishedService",
    "providers.kubernetesCRD.enabled", "updateStrategy", "logs.access.enabled", "logs.access.format",
    "tlsOptions", "tlsStore", "additionalArguments", "global.checkNewVersion", "global.sendAnonymousUsage",
    "global.notAppendXForwardedFor", "global.systemDefaultRegistry", "priorityClassName", "tolerations",
    "podSecurityContext", "securityContext", "ingressClass", "resources",
)


def _supported(path: tuple[str, ...], chart: str) -> bool:
    dotted = ".".join(path)
    if any(dotted == s or dotted.startswith(s + ".") for s in _SUPPORTED):
        return True
    if len(path) >= 3 and path[0] == "ports" and path[2] in _PORT_KEYS:
        if path[2] == "forwardedHeaders":
            return len(path) == 3 or path[3] in ("trustedIPs", "insecure", "notAppendXForwardedFor")
        if path[2] == "tls":
            return chart == "37.1.0"
        if path[2] == "http":
            return chart != "37.1.0" and len(path) >= 4 and path[3] == "tls"
        return True
    return False


def _lookup(tree: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def unrenderable(values: dict[str, Any], chart: str, path: tuple[str, ...] = ()) -> list[str]:
    """Dotted keys whose value differs from the chart default and that :func:`render` cannot honour."""
    out: list[str] = []
    for key, value in values.items():
        here = (*path, str(key))
        if isinstance(value, dict) and value and not _supported(here, chart):
            out += unrenderable(value, chart, here)
        elif not _supported(here, chart) and value not in (None, {}, [], "") \
                and value != _lookup(DEFAULTS[chart], here):
            out.append(".".join(here))
    return out


# -- rendering ---------------------------------------------------------------------------------------
def _version_tuple(tag: str) -> tuple[int, ...]:
    nums = re.findall(r"\d+", tag.split("-")[0].split("@")[0])
    return tuple(int(n) for n in nums[:3]) or (0,)


def _chart_checks(values: dict[str, Any], chart: str) -> None:
    """The template ``fail`` calls this renderer models, in template order."""
    tag = (values.get("image") or {}).get("tag") or APP_VERSION[chart]
    if chart == "40.0.0" and _version_tuple(str(tag)) < (3, 7, 0):
        if (values.get("global") or {}).get("notAppendXForwardedFor"):
            raise _fail(chart, "global_xff")
        for config in (values.get("ports") or {}).values():
            if config and ((config.get("forwardedHeaders") or {}).get("notAppendXForwardedFor")):
                raise _fail(chart, "port_xff")
    if (values.get("deployment") or {}).get("kind") == "DaemonSet":
        _daemonset_checks(values, chart, str(tag))
    if values.get("hostNetwork"):
        for name in sorted(values.get("ports") or {}):
            config = values["ports"][name] or {}
            if config.get("hostPort") and config.get("port") and int(config["hostPort"]) != int(config["port"]):
                raise _fail(chart, "hostport")


def _daemonset_checks(values: dict[str, Any], chart: str, tag: str) -> None:
    """``templates/daemonset.yaml`` lines 2-20 at each tag."""
    if any(".acme." in str(arg) for arg in values.get("additionalArguments") or []):
        raise _fail(chart, "acme")
    if tag == "latest":
        raise _fail(chart, "latest")
    strategy = values.get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate")
    if strategy.get("type") == "RollingUpdate" and rolling:
        unavailable = rolling.get("maxUnavailable")
        if "%" not in str(unavailable) and values.get("hostNetwork") and float(unavailable or 0) < 1.0:
            raise _fail(chart, "maxunavailable")


def _labels(chart: str, namespace: str) -> tuple[dict[str, str], dict[str, str]]:
    """``traefik.labelselector`` / ``traefik.labels`` (templates/_helpers.tpl)."""
    selector = {"app.kubernetes.io/name": "traefik", "app.kubernetes.io/instance": f"traefik-{namespace}"}
    return selector, {**selector, "helm.sh/chart": f"traefik-{chart}", "app.kubernetes.io/managed-by": "Helm"}


def _active_ports(values: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``range $name, $config := .Values.ports`` with ``if $config``: sorted names, null ports skipped."""
    ports = values.get("ports") or {}
    return [(name, ports[name]) for name in sorted(ports) if ports[name]]


def _container_ports(values: dict[str, Any]) -> list[dict[str, Any]]:
    """``_podtemplate.tpl`` ``ports:`` block (name, containerPort, hostPort if set, protocol)."""
    out = []
    for name, config in _active_ports(values):
        entry: dict[str, Any] = {"name": name[:15], "containerPort": config.get("port")}
        if config.get("hostPort"):
            entry["hostPort"] = config["hostPort"]
        entry["protocol"] = config.get("protocol") or "TCP"
        out.append(entry)
    return out


def _tls_of(values: dict[str, Any], config: dict[str, Any], chart: str) -> dict[str, Any]:
    return (config.get("tls") if chart == "37.1.0" else (config.get("http") or {}).get("tls")) or {}


def _entrypoint_args(values: dict[str, Any], chart: str) -> list[str]:
    """``--entryPoints.<name>.address=<hostIP>:<port>/<protocol>`` then per-entrypoint options."""
    ports = _active_ports(values)
    args = [f"--entryPoints.{n}.address=:{c.get('port')}/{(c.get('protocol') or 'tcp').lower()}" for n, c in ports]
    for name, config in ports:
        fwd = config.get("forwardedHeaders") or {}
        if fwd.get("trustedIPs"):
            args.append(f"--entryPoints.{name}.forwardedHeaders.trustedIPs={','.join(fwd['trustedIPs'])}")
        if fwd.get("insecure"):
            args.append(f"--entryPoints.{name}.forwardedHeaders.insecure")
        if fwd.get("notAppendXForwardedFor"):
            args.append(f"--entryPoints.{name}.forwardedHeaders.notAppendXForwardedFor=true")
        tls = _tls_of(values, config, chart)
        if tls.get("enabled"):
            args.append(f"--entryPoints.{name}.http.tls=true")
            if tls.get("options"):
                args.append(f"--entryPoints.{name}.http.tls.options={tls['options']}")
            if tls.get("certResolver"):
                args.append(f"--entryPoints.{name}.http.tls.certResolver={tls['certResolver']}")
            for i, domain in enumerate(tls.get("domains") or []):
                args.append(f"--entryPoints.{name}.http.tls.domains[{i}].main={domain.get('main')}")
    return args


def _args(values: dict[str, Any], chart: str, namespace: str) -> list[str]:
    """The container args this renderer models, in ``_podtemplate.tpl`` order."""
    glob = values.get("global") or {}
    args = [] if glob.get("checkNewVersion") else ["--global.checkNewVersion=false"]
    if glob.get("sendAnonymousUsage"):
        args.append("--global.sendAnonymousUsage")
    if glob.get("notAppendXForwardedFor"):
        args.append("--global.notAppendXForwardedFor=true")
    args += [a for a in _entrypoint_args(values, chart) if ".address=" in a]
    args += ["--api.dashboard=true", "--ping=true"]
    providers = values.get("providers") or {}
    if (providers.get("kubernetesCRD") or {}).get("enabled"):
        args.append("--providers.kubernetescrd")
    ingress = providers.get("kubernetesIngress") or {}
    if ingress.get("enabled"):
        args.append("--providers.kubernetesingress")
        published = ingress.get("publishedService") or {}
        service_on = (values.get("service") or {}).get("enabled")
        if published.get("enabled") and (service_on or published.get("pathOverride")):
            path = published.get("pathOverride") or f"{namespace}/traefik"
            args.append(f"--providers.kubernetesingress.ingressendpoint.publishedservice={path}")
    args += [a for a in _entrypoint_args(values, chart) if ".address=" not in a]
    access = (values.get("logs") or {}).get("access") or {}
    if access.get("enabled"):
        args.append("--accesslog=true")
        if access.get("format"):
            args.append(f"--accesslog.format={access['format']}")
    return args + [str(a) for a in values.get("additionalArguments") or []]


def _image(values: dict[str, Any], chart: str) -> str:
    image = values.get("image") or {}
    tag = image.get("tag") or APP_VERSION[chart]
    registry = image.get("registry")
    repo = image.get("repository") or "traefik"
    return f"{registry}/{repo}:{tag}" if registry else f"{repo}:{tag}"


def _pod_template(values: dict[str, Any], chart: str, namespace: str) -> dict[str, Any]:
    selector, labels = _labels(chart, namespace)
    container: dict[str, Any] = {
        "name": "traefik", "image": _image(values, chart),
        "imagePullPolicy": (values.get("image") or {}).get("pullPolicy") or "IfNotPresent",
        "ports": _container_ports(values), "args": _args(values, chart, namespace),
        "securityContext": copy.deepcopy(values.get("securityContext") or {})}
    if values.get("resources"):  # the chart: {{- with .Values.resources }} resources: ...
        container["resources"] = copy.deepcopy(values["resources"])
    spec: dict[str, Any] = {"serviceAccountName": "traefik", "hostNetwork": bool(values.get("hostNetwork")),
                            "containers": [container],
                            "securityContext": copy.deepcopy(values.get("podSecurityContext") or {})}
    if values.get("priorityClassName"):
        spec["priorityClassName"] = values["priorityClassName"]
    if values.get("tolerations"):
        spec["tolerations"] = copy.deepcopy(values["tolerations"])
    meta: dict[str, Any] = {"labels": labels}
    annotations = (values.get("deployment") or {}).get("podAnnotations")
    if annotations:
        meta["annotations"] = copy.deepcopy(annotations)
    return {"metadata": meta, "spec": spec}


def _workload(values: dict[str, Any], chart: str, namespace: str) -> dict[str, Any]:
    """``templates/daemonset.yaml`` / ``deployment.yaml``; updateStrategy copied verbatim (daemonset l.44-52)."""
    kind = (values.get("deployment") or {}).get("kind") or "Deployment"
    selector, labels = _labels(chart, namespace)
    spec: dict[str, Any] = {"selector": {"matchLabels": selector}, "minReadySeconds": 0,
                            "template": _pod_template(values, chart, namespace)}
    strategy = values.get("updateStrategy") or {}
    if kind == "DaemonSet":
        if strategy:
            rendered: dict[str, Any] = {"type": strategy.get("type")}
            if strategy.get("type") == "RollingUpdate":
                rolling = strategy.get("rollingUpdate") or {}
                rendered["rollingUpdate"] = {"maxUnavailable": rolling.get("maxUnavailable"),
                                             "maxSurge": rolling.get("maxSurge")}
            spec["updateStrategy"] = rendered
    else:
        spec["replicas"] = (values.get("deployment") or {}).get("replicas", 1)
        if strategy:
            spec["strategy"] = copy.deepcopy(strategy)
    return {"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": "traefik", "namespace": namespace, "labels": labels}, "spec": spec}


def _service(values: dict[str, Any], chart: str, namespace: str) -> dict[str, Any] | None:
    """``templates/service.yaml``: only with ``service.enabled``; exposed ports (``expose.default``)."""
    service = values.get("service") or {}
    if not service.get("enabled"):
        return None
    selector, labels = _labels(chart, namespace)
    ports = [{"name": n, "port": c.get("exposedPort"), "targetPort": n, "protocol": c.get("protocol") or "TCP"}
             for n, c in _active_ports(values) if (c.get("expose") or {}).get("default")]
    spec: dict[str, Any] = copy.deepcopy(service.get("spec") or {})
    spec.setdefault("type", service.get("type") or "LoadBalancer")
    if service.get("ipFamilyPolicy"):
        spec["ipFamilyPolicy"] = service["ipFamilyPolicy"]
    spec.update({"selector": selector, "ports": ports})
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "traefik", "namespace": namespace, "labels": labels}, "spec": spec}


def _tls_objects(values: dict[str, Any], chart: str, namespace: str) -> list[dict[str, Any]]:
    """``templates/tlsoption.yaml`` / ``tlsstore.yaml``: one object per key, spec copied."""
    _, labels = _labels(chart, namespace)
    out = []
    for kind, key in (("TLSOption", "tlsOptions"), ("TLSStore", "tlsStore")):
        for name, spec in sorted((values.get(key) or {}).items()):
            body = {k: v for k, v in (spec or {}).items() if k != "labels"}
            out.append({"apiVersion": "traefik.io/v1alpha1", "kind": kind,
                        "metadata": {"name": name, "namespace": namespace, "labels": labels},
                        "spec": copy.deepcopy(body)})
    return out


def render(values: dict[str, Any], chart: str, namespace: str = "kube-system") -> list[dict[str, Any]]:
    """The chart's objects for merged ``values``; raises :class:`ChartFail` (template ``fail``) or
    ``ValueError("stand-in cannot render <key>")`` for values this renderer does not model."""
    _chart_checks(values, chart)
    missing = unrenderable(values, chart)
    if missing:
        raise ValueError("stand-in cannot render " + ", ".join(missing))
    if not (values.get("deployment") or {}).get("enabled", True):
        raise ValueError("stand-in cannot render deployment.enabled")
    objects = [_workload(values, chart, namespace)]
    service = _service(values, chart, namespace)
    if service is not None:
        objects.append(service)
    return objects + _ingress_class(values, chart, namespace) + _tls_objects(values, chart, namespace)


def _ingress_class(values: dict[str, Any], chart: str, namespace: str) -> list[dict[str, Any]]:
    """``templates/ingressclass.yaml`` (same at 37.1.0 and 40.0.0): the default IngressClass."""
    config = values.get("ingressClass") or {}
    if not config.get("enabled"):
        return []
    return [{"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
             "metadata": {"name": config.get("name") or "traefik", "labels": _labels(chart, namespace)[1],
                          "annotations": {"ingressclass.kubernetes.io/is-default-class":
                                          str(bool(config.get("isDefaultClass"))).lower()}},
             "spec": {"controller": "traefik.io/ingress-controller"}}]

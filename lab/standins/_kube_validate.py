"""Validation of objects written to the Kubernetes stand-in.

Built-in kinds are checked against the Kubernetes 1.34 strict JSON schemas shipped with
``kubernetes-validate``, or the copy ``$HONEYDUE_KUBE_SCHEMAS`` names (validators are built once per
kind and cached). Custom resources are checked against their CRD's ``openAPIV3Schema``
(HelmChartConfig from ``shared/specs/k3s``).

Problems come back as :class:`Problem` records sorted into the answer the real API server gives:

* ``decode`` — a value of the wrong JSON type in a built-in kind: 400 BadRequest
  (``... cannot be handled as a Deployment: json: cannot unmarshal ...``);
* ``unknown`` — an unknown field: dropped with a warning, or 400 under ``fieldValidation=Strict``;
* ``invalid`` — everything else (required, enum, bad names ...): 422 Invalid with causes.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import yaml
from referencing import Registry, Resource

from ._kube_resources import ResourceType
from ._specs import specs_dir

K8S_VERSION = "1.34.0"
CRD_FILE_PATTERN = {("helm.cattle.io", "HelmChartConfig"): "helm.cattle.io_helmchartconfigs.{helm_controller}.yaml"}


def crd_files(release: str | None = None) -> dict[tuple[str, str], str]:
    """The CRD spec files a K3s release serves: the HelmChartConfig CRD of the helm-controller it bundles
    (``lab/k3s/_releases.py`` ``helm_controller``; v1.34.9 -> v0.17.1, production -> v0.16.17 unconfirmed)."""
    from lab.k3s._releases import PRODUCTION
    from lab.k3s._releases import release as release_entry

    version = release_entry(release or PRODUCTION).get("helm_controller") or "v0.17.7"
    return {key: pattern.format(helm_controller=version) for key, pattern in CRD_FILE_PATTERN.items()}


CRD_FILES = crd_files()  # the production release's (kept for callers that want the default)

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass
class Problem:
    """One thing wrong with an object."""

    category: str  # "decode", "unknown" or "invalid"
    field: str  # dotted path, e.g. spec.template.spec.containers[0].image
    reason: str  # FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, FieldValueTypeInvalid ...
    message: str
    path: tuple[Any, ...] = ()  # JSON path of the offending value (for pruning unknown fields)


def _schema_dir() -> Path:
    """``$HONEYDUE_KUBE_SCHEMAS`` (the K3s stand-in's zipapp extracts its copy: lab/k3s/_data.py), else
    the ``v<K8S_VERSION>-local-strict`` directory of the installed kubernetes-validate."""
    env = os.environ.get("HONEYDUE_KUBE_SCHEMAS")
    if env:
        return Path(env)
    import kubernetes_validate  # local import: heavy package data

    return Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{K8S_VERSION}-local-strict"


@lru_cache(maxsize=1)
def _definitions() -> dict[str, Any]:
    with (_schema_dir() / "_definitions.json").open(encoding="utf-8") as fh:
        return json.load(fh)


@lru_cache(maxsize=1)
def _registry() -> Registry:
    return Resource.from_contents(_definitions()) @ Registry()


@lru_cache(maxsize=None)
def _builtin_schema(kind: str, api_version: str) -> dict[str, Any] | None:
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = _schema_dir() / f"{kind.lower()}-{group_version}.json"
    if not path.exists():
        return None
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


@lru_cache(maxsize=None)
def _builtin_validator(kind: str, api_version: str) -> jsonschema.protocols.Validator | None:
    schema = _builtin_schema(kind, api_version)
    if schema is None:
        return None
    return jsonschema.Draft202012Validator(schema, registry=_registry())


def builtin_defs() -> dict[str, Any]:
    """The ``$defs`` of the Kubernetes schemas (for the strategic merge's schema walk)."""
    return _definitions()["$defs"]


def builtin_schema(kind: str, api_version: str) -> dict[str, Any] | None:
    """The top-level schema of a built-in kind."""
    return _builtin_schema(kind, api_version)


@lru_cache(maxsize=None)
def crd_document(group: str, kind: str, release: str | None = None) -> dict[str, Any] | None:
    """The CustomResourceDefinition a release serves for a custom kind (None when the stand-in has none)."""
    name = crd_files(release).get((group, kind))
    if name is None:
        return None
    path = specs_dir() / "k3s" / name
    if not path.exists():
        return None
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _crd_schema(group: str, kind: str, version: str, release: str | None = None) -> dict[str, Any] | None:
    crd = crd_document(group, kind, release)
    for entry in (crd or {}).get("spec", {}).get("versions", []):
        if entry.get("name") == version:
            return entry.get("schema", {}).get("openAPIV3Schema")
    return None


def _dotted(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _go_type(schema: dict[str, Any]) -> str:
    types = schema.get("type")
    types = [t for t in (types if isinstance(types, list) else [types]) if t and t != "null"]
    name = types[0] if types else "object"
    return {"integer": "int32" if schema.get("format") == "int32" else "int64", "boolean": "bool",
            "array": "[]", "object": "map"}.get(name, name)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def _problem_from_error(err: jsonschema.ValidationError) -> Problem:
    path = tuple(err.absolute_path)
    field = _dotted(path)
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        name = _dotted((*path, extra[0])) if extra else field
        return Problem("unknown", name, "FieldValueUnknown", f'unknown field "{name}"', (*path, *extra[:1]))
    if err.validator in ("type", "oneOf", "anyOf"):
        msg = f"json: cannot unmarshal {_json_type(err.instance)} into Go struct field {field} of type " \
              f"{_go_type(err.schema)}"
        return Problem("decode", field, "FieldValueTypeInvalid", msg, path)
    if err.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", err.message)
        name = _dotted((*path, missing[0])) if missing else field
        return Problem("invalid", name, "FieldValueRequired", "Required value", (*path, *missing[:1]))
    if err.validator == "enum":
        supported = ", ".join(json.dumps(v) for v in err.validator_value if v is not None)
        return Problem("invalid", field, "FieldValueNotSupported",
                       f"Unsupported value: {json.dumps(err.instance)}: supported values: {supported}", path)
    return Problem("invalid", field, "FieldValueInvalid",
                   f"Invalid value: {json.dumps(err.instance)}: {err.message}", path)


def validate_builtin(obj: dict[str, Any]) -> list[Problem]:
    """Problems of a built-in object against the strict 1.34 schema."""
    validator = _builtin_validator(obj.get("kind", ""), obj.get("apiVersion", ""))
    if validator is None:
        return []
    return [_problem_from_error(e) for e in validator.iter_errors(obj)]


def _crd_walk(value: Any, schema: dict[str, Any], path: tuple[Any, ...], out: list[Problem]) -> None:
    """Structural-schema checks: types, required, enum and unknown (prunable) fields."""
    if value is None:
        if not schema.get("nullable"):
            out.append(Problem("invalid", _dotted(path), "FieldValueTypeInvalid",
                               f'Invalid value: "null": {_dotted(path)} in body must be of type '
                               f'{schema.get("type", "object")}: "null"', path))
        return
    expected = schema.get("type")
    actual = {"bool": "boolean", "number": "integer" if isinstance(value, int) else "number",
              "string": "string", "array": "array", "object": "object"}[_json_type(value)]
    if expected and actual != expected and not (expected == "number" and actual == "integer"):
        field = _dotted(path)
        out.append(Problem("invalid", field, "FieldValueTypeInvalid",
                           f'Invalid value: "{actual}": {field} in body must be of type {expected}: "{actual}"',
                           path))
        return
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(json.dumps(v) for v in schema["enum"])
        out.append(Problem("invalid", _dotted(path), "FieldValueNotSupported",
                           f"Unsupported value: {json.dumps(value)}: supported values: {supported}", path))
    if isinstance(value, dict):
        _crd_walk_object(value, schema, path, out)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _crd_walk(item, schema["items"], (*path, i), out)


def _crd_walk_object(value: dict[str, Any], schema: dict[str, Any], path: tuple[Any, ...],
                     out: list[Problem]) -> None:
    props = schema.get("properties") or {}
    for name in schema.get("required") or []:
        if name not in value:
            out.append(Problem("invalid", _dotted((*path, name)), "FieldValueRequired", "Required value",
                               (*path, name)))
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        if key in props:
            _crd_walk(item, props[key], (*path, key), out)
        elif isinstance(extra, dict):
            _crd_walk(item, extra, (*path, key), out)
        elif props and not schema.get("x-kubernetes-preserve-unknown-fields") and extra is not True:
            name = _dotted((*path, key))
            out.append(Problem("unknown", name, "FieldValueUnknown", f'unknown field "{name}"', (*path, key)))


def validate_custom(obj: dict[str, Any], rt: ResourceType, release: str | None = None) -> list[Problem]:
    """Problems of a custom resource against its CRD schema (none when no CRD schema is known)."""
    schema = _crd_schema(rt.group, rt.kind, rt.version, release)
    if schema is None:
        return []
    out: list[Problem] = []
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    _crd_walk_object(body, {**schema, "properties": {k: v for k, v in schema.get("properties", {}).items()
                                                     if k not in ("apiVersion", "kind", "metadata")}},
                     (), out)
    return out


def validate_metadata(obj: dict[str, Any], rt: ResourceType) -> list[Problem]:
    """Name checks the API server makes before the schema matters."""
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        return [Problem("invalid", "metadata.name", "FieldValueRequired",
                        "Required value: name or generateName is required")]
    pattern = _DNS1123_LABEL if rt.plural in ("namespaces", "services") else _DNS1123_SUBDOMAIN
    if not isinstance(name, str) or len(name) > 253 or not pattern.match(name):
        what = "RFC 1123 label" if pattern is _DNS1123_LABEL else "RFC 1123 subdomain"
        return [Problem("invalid", "metadata.name", "FieldValueInvalid",
                        f"Invalid value: {json.dumps(name)}: a lowercase {what} must consist of lower case "
                        f"alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                        f"character")]
    return []


def _pod_spec_paths(obj: dict[str, Any], rt: ResourceType) -> list[tuple[str, dict[str, Any]]]:
    spec = obj.get("spec") or {}
    if rt.group == "" and rt.kind == "Pod":
        return [("spec", spec)]
    if rt.kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        return [("spec.jobTemplate.spec.template.spec", (job.get("template") or {}).get("spec") or {})]
    if rt.kind in ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Job"):
        return [("spec.template.spec", (spec.get("template") or {}).get("spec") or {})]
    return []


def _container_images(obj: dict[str, Any], rt: ResourceType) -> list[Problem]:
    """ValidatePodSpec's ``image: Required value`` for every container (pods and pod templates)."""
    out = []
    for base, pod_spec in _pod_spec_paths(obj, rt):
        for kind in ("initContainers", "containers"):
            for i, c in enumerate(pod_spec.get(kind) or []):
                if isinstance(c, dict) and not c.get("image"):
                    out.append(Problem("invalid", f"{base}.{kind}[{i}].image", "FieldValueRequired", "Required value"))
    return out


def validate_semantics(obj: dict[str, Any], rt: ResourceType) -> list[Problem]:
    """A few of the API server's semantic checks (container images, selector vs template labels)."""
    images = _container_images(obj, rt)
    if images:
        return images
    if rt.group == "coordination.k8s.io" and rt.kind == "Lease":
        return _lease_spec(obj.get("spec") or {})
    if rt.group != "apps" or rt.kind not in ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"):
        return []
    spec = obj.get("spec") or {}
    selector = spec.get("selector") or {}
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    from ._kube_select import match_label_selector_object

    if not selector:
        return [Problem("invalid", "spec.selector", "FieldValueRequired", "Required value")]
    if not match_label_selector_object(selector, labels):
        return [Problem("invalid", "spec.template.metadata.labels", "FieldValueInvalid",
                        f"Invalid value: {json.dumps(labels)}: `selector` does not match template `labels`")]
    if rt.kind == "DaemonSet":
        return _daemonset_rolling_update(spec)
    return []


def _int_or_percent_zero(value: Any) -> bool:
    if isinstance(value, str):
        return value.rstrip("%").strip() in ("0", "")
    return not value


def _go_int_or_string(value: Any) -> str:
    """How apimachinery ``field.Invalid`` prints an ``intstr.IntOrString`` value (``%#v``: the value type
    has only a pointer-receiver ``String``), e.g. ``intstr.IntOrString{Type:0, IntVal:1, StrVal:""}``."""
    if isinstance(value, str):
        return f'intstr.IntOrString{{Type:1, IntVal:0, StrVal:{json.dumps(value)}}}'
    return f'intstr.IntOrString{{Type:0, IntVal:{int(value or 0)}, StrVal:""}}'


def _daemonset_rolling_update(spec: dict[str, Any]) -> list[Problem]:
    """kubernetes pkg/apis/apps/validation/validation.go ``ValidateRollingUpdateDaemonSet`` (1.34):
    both non-zero -> maxSurge ``may not be set when maxUnavailable is non-zero``; both zero ->
    maxUnavailable ``Required value: cannot be 0 when maxSurge is 0``."""
    strategy = spec.get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate")
    if strategy.get("type") != "RollingUpdate" or not isinstance(rolling, dict):
        return []
    surge, unavailable = rolling.get("maxSurge", 0), rolling.get("maxUnavailable", 1)
    base = "spec.updateStrategy.rollingUpdate"
    if not _int_or_percent_zero(surge) and not _int_or_percent_zero(unavailable):
        return [Problem("invalid", f"{base}.maxSurge", "FieldValueInvalid",
                        f"Invalid value: {_go_int_or_string(surge)}: may not be set when maxUnavailable is "
                        f"non-zero")]
    if _int_or_percent_zero(surge) and _int_or_percent_zero(unavailable):
        return [Problem("invalid", f"{base}.maxUnavailable", "FieldValueRequired",
                        "Required value: cannot be 0 when maxSurge is 0")]
    return []


def _lease_spec(spec: dict[str, Any]) -> list[Problem]:
    """kubernetes pkg/apis/coordination/validation/validation.go ``ValidateLeaseSpec`` (1.34): a
    duration must be positive, the transition count not negative, and ``preferredHolder`` needs a
    ``strategy`` (coordinated leader election)."""
    out = []
    duration, transitions = spec.get("leaseDurationSeconds"), spec.get("leaseTransitions")
    if isinstance(duration, int) and duration <= 0:
        out.append(Problem("invalid", "spec.leaseDurationSeconds", "FieldValueInvalid",
                           f"Invalid value: {duration}: must be greater than 0"))
    if isinstance(transitions, int) and transitions < 0:
        out.append(Problem("invalid", "spec.leaseTransitions", "FieldValueInvalid",
                           f"Invalid value: {transitions}: must be greater than or equal to 0"))
    if spec.get("preferredHolder") and not spec.get("strategy"):
        out.append(Problem("invalid", "spec.preferredHolder", "FieldValueForbidden",
                           "Forbidden: may only be specified if `strategy` is defined"))
    return out

"""Checks requests and answers against a vendor's OpenAPI 3.0 contract (``shared/specs``).

Used by the Hetzner and Cloudflare stand-ins: every incoming request is checked (path, method,
query parameters, JSON body) so that a client sending something the vendor would refuse gets the
vendor's 4xx answer here too; every answer the stand-in gives is checked against the documented
response schema, and a mismatch is recorded as a contract violation (tests assert there are none).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import yaml
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator

from ._specs import specs_dir  # re-exported: the vendor contracts' directory lives in the light _specs module


@lru_cache(maxsize=None)
def load_spec(relative: str) -> dict[str, Any]:
    path = specs_dir() / relative
    with path.open(encoding="utf-8") as fh:
        return json.load(fh) if path.suffix == ".json" else yaml.safe_load(fh)


@dataclass
class Operation:
    method: str
    template: str
    spec: dict[str, Any]
    params: dict[str, str] = field(default_factory=dict)

    @property
    def operation_id(self) -> str:
        return self.spec.get("operationId", f"{self.method} {self.template}")


def nullable_allof(node: Any) -> Any:
    """Rewrite ``{"allOf": [X], "nullable": true}`` so that null is accepted, as the vendor means it.

    Vendor contracts mark nullable object fields this way (Hetzner: ``action.error``,
    ``server.iso``, ``image.created_from`` ...; their descriptions say "otherwise null", and the
    API does send null). OpenAPI 3.0.3 only honours ``nullable`` next to a ``type``, so a strict
    validator would refuse null there. The rewrite is ``anyOf: [the original, exactly null]``;
    nothing else is relaxed.
    """
    if isinstance(node, list):
        return [nullable_allof(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: nullable_allof(v) for k, v in node.items()}
    if out.get("nullable") is True and "type" not in out and "allOf" in out:
        del out["nullable"]
        return {"anyOf": [out, {"type": "object", "nullable": True, "enum": [None]}]}
    return out


class Contract:
    """One OpenAPI document, served under ``base_path`` (``/v1``, ``/client/v4``)."""

    def __init__(self, spec: dict[str, Any], base_path: str = "") -> None:
        spec = nullable_allof(spec)  # a rewritten copy; the cached document stays as loaded
        self.spec = spec
        self.base_path = base_path.rstrip("/")
        self._components = spec.get("components", {})
        self._routes: list[tuple[re.Pattern[str], str, dict[str, Any]]] = []
        # Literal paths before templated ones: /servers/actions must not match /servers/{id}.
        for template in sorted(spec.get("paths", {}), key=lambda t: (t.count("{"), -len(t))):
            pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
            self._routes.append((re.compile(pattern), template, spec["paths"][template]))
        self._validators: dict[str, OAS30Validator] = {}

    # -- lookup --------------------------------------------------------------------------------
    def path_known(self, path: str) -> bool:
        return any(rx.match(self._strip(path)) for rx, _, _ in self._routes)

    def find(self, method: str, path: str) -> Operation | None:
        local = self._strip(path)
        for rx, template, item in self._routes:
            m = rx.match(local)
            if m and method.lower() in item:
                return Operation(method.upper(), template, item[method.lower()], m.groupdict())
        return None

    def _strip(self, path: str) -> str:
        if self.base_path and path.startswith(self.base_path):
            return path[len(self.base_path):] or "/"
        return path

    # -- schemas -------------------------------------------------------------------------------
    def resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            node = self._pointer(node["$ref"])
        return node

    def _pointer(self, ref: str) -> Any:
        node: Any = self.spec
        for part in ref.lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _validator(self, key: str, schema: dict[str, Any]) -> OAS30Validator:
        v = self._validators.get(key)
        if v is None:
            # Root the schema next to the document's components so '#/components/...' resolves.
            v = OAS30Validator({"components": self._components, "allOf": [schema]})
            self._validators[key] = v
        return v

    def schema_errors(self, key: str, schema: dict[str, Any], instance: Any) -> list[str]:
        validator = self._validator(key, schema)
        errors: list[ValidationError] = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        return [_describe(e) for e in errors[:5]]

    # -- requests ------------------------------------------------------------------------------
    def check_request(self, op: Operation, query: dict[str, list[str]], body: Any,
                      raw_body: bytes = b"", content_type: str = "") -> list[str]:
        """Problems a vendor would refuse this request for (empty when it is valid)."""
        problems: list[str] = []
        params = [self.resolve(p) for p in op.spec.get("parameters", [])]
        for p in params:
            if p.get("in") != "query":
                continue
            name = p["name"]
            schema = self.resolve(p.get("schema", {}))
            if name not in query:
                if p.get("required"):
                    problems.append(f"query parameter '{name}' is required")
                continue
            value = _coerce(query[name], schema, self)
            if value is _BAD:
                problems.append(f"query parameter '{name}': {query[name]!r} is not a valid {schema.get('type')}")
                continue
            for err in self.schema_errors(f"q:{op.operation_id}:{name}", schema, value):
                problems.append(f"query parameter '{name}': {err}")
        rb = self.resolve(op.spec.get("requestBody"))
        if rb:
            media = rb.get("content", {}).get("application/json")
            if raw_body and body is None:
                problems.append("request body is not valid JSON")
            elif body is None:
                if rb.get("required"):
                    problems.append("request body is required")
            elif media and "schema" in media:
                problems.extend(self.schema_errors(f"b:{op.operation_id}", media["schema"], body))
        return problems

    # -- answers -------------------------------------------------------------------------------
    def check_response(self, op: Operation, status: int, body: Any) -> list[str]:
        """Where an answer departs from the documented response (empty when it conforms)."""
        responses = op.spec.get("responses", {})
        resp = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
        if resp is None:
            if 200 <= status < 300:
                return [f"status {status} is not documented for {op.operation_id}"]
            return []  # error statuses are checked against the vendor's error envelope by the stand-in
        resp = self.resolve(resp)
        media = resp.get("content", {}).get("application/json")
        if not media or "schema" not in media:
            return [] if body in (None, b"", "") else [f"{op.operation_id} {status}: documented without a body"]
        return self.schema_errors(f"r:{op.operation_id}:{status}", media["schema"], body)


_BAD = object()


def _coerce(values: list[str], schema: dict[str, Any], contract: Contract) -> Any:
    """Query strings -> the typed value the parameter's schema describes."""
    typ = schema.get("type")
    if typ == "array":
        item = contract.resolve(schema.get("items", {}))
        out = [_scalar(v, item) for v in values]
        return _BAD if any(v is _BAD for v in out) else out
    return _scalar(values[-1], schema)


def _scalar(value: str, schema: dict[str, Any]) -> Any:
    typ = schema.get("type")
    try:
        if typ == "integer":
            return int(value)
        if typ == "number":
            return float(value)
    except ValueError:
        return _BAD
    if typ == "boolean":
        if value in ("true", "false"):
            return value == "true"
        return _BAD
    return value


def _describe(err: ValidationError) -> str:
    where = "/".join(str(p) for p in err.absolute_path) or "(body)"
    return f"{where}: {err.message[:300]}"

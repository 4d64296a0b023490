"""Pure patch functions of the Kubernetes API: JSON merge patch, strategic merge patch, JSON patch.

* :func:`merge_patch` — RFC 7386 (``application/merge-patch+json``).
* :func:`strategic_merge_patch` — ``application/strategic-merge-patch+json``: lists whose schema
  says ``x-kubernetes-patch-strategy: merge`` are merged element by element on the
  ``x-kubernetes-patch-merge-key`` (containers by ``name``, container ports by ``containerPort`` ...);
  ``$patch: replace`` / ``$patch: delete`` directives on maps and list elements are honoured,
  ``$setElementOrder/...`` and ``$retainKeys`` are accepted and ignored.
* :func:`json_patch` — RFC 6902 (``application/json-patch+json``).

The schema used by the strategic merge is reached through :class:`SchemaNode`, which walks the
Kubernetes JSON schema definitions (``$ref`` into ``$defs``); tests can hand it a small schema.
"""
from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    """A patch that cannot be applied (bad pointer, failed ``test`` op, malformed document)."""


# -- RFC 7386 ---------------------------------------------------------------------------------
def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch; neither argument is modified."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- schema walking ----------------------------------------------------------------------------
class SchemaNode:
    """A position in a Kubernetes JSON schema, resolving ``$ref`` into the shared ``$defs``."""

    def __init__(self, schema: dict[str, Any] | None, defs: dict[str, Any] | None = None) -> None:
        self.defs = defs or {}
        self.schema = self._resolve(schema or {})

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in schema and seen < 32:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = {**self.defs.get(name, {}), **{k: v for k, v in schema.items() if k != "$ref"}}
            seen += 1
        return schema

    def child(self, key: str) -> "SchemaNode":
        """The schema of property ``key`` (or of map values)."""
        props = self.schema.get("properties") or {}
        if key in props:
            return SchemaNode(props[key], self.defs)
        extra = self.schema.get("additionalProperties")
        return SchemaNode(extra if isinstance(extra, dict) else None, self.defs)

    def items(self) -> "SchemaNode":
        """The schema of the elements of an array."""
        return SchemaNode(self.schema.get("items"), self.defs)

    @property
    def strategy(self) -> str:
        return str(self.schema.get("x-kubernetes-patch-strategy", ""))

    @property
    def merge_key(self) -> str | None:
        return self.schema.get("x-kubernetes-patch-merge-key")


# -- strategic merge ---------------------------------------------------------------------------
_DELETE = object()


def strategic_merge_patch(original: Any, patch: Any, schema: SchemaNode | None = None) -> Any:
    """Apply a strategic merge patch to ``original`` guided by ``schema``; inputs stay untouched."""
    merged = _merge_value(copy.deepcopy(original), copy.deepcopy(patch), schema or SchemaNode(None))
    return {} if merged is _DELETE else merged


def _merge_value(original: Any, patch: Any, schema: SchemaNode) -> Any:
    if isinstance(patch, dict):
        return _merge_map(original if isinstance(original, dict) else {}, patch, schema)
    if isinstance(patch, list) and isinstance(original, list):
        return _merge_list(original, patch, schema)
    return patch


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: SchemaNode) -> Any:
    directive = patch.pop("$patch", None)
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return _strip_directives(patch)
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys",):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            original[field] = [v for v in original.get(field) or [] if v not in value]
            continue
        if value is None:
            original.pop(key, None)
            continue
        merged = _merge_value(original.get(key), value, schema.child(key))
        if merged is _DELETE:
            original.pop(key, None)
        else:
            original[key] = merged
    return original


def _merge_list(original: list[Any], patch: list[Any], schema: SchemaNode) -> list[Any]:
    if "merge" not in schema.strategy:
        return _strip_directives(patch)
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [_strip_directives(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    key = schema.merge_key
    if key is None:  # a merged list of scalars: a union keeping order
        return original + [p for p in patch if p not in original]
    result = list(original)
    for element in patch:
        if not isinstance(element, dict):
            result.append(element)
            continue
        index = next((i for i, o in enumerate(result)
                      if isinstance(o, dict) and o.get(key) == element.get(key)), None)
        if element.get("$patch") == "delete":
            if index is not None:
                del result[index]
            continue
        if index is None:
            result.append(_strip_directives(element))
        else:
            result[index] = _merge_map(result[index], element, schema.items())
    return result


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


# -- RFC 6902 ------------------------------------------------------------------------------------
def json_patch(document: Any, operations: Any) -> Any:
    """Apply an RFC 6902 JSON patch (a list of operations); ``document`` stays untouched."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(document)
    for op in operations:
        doc = _apply_op(doc, op)
    return doc


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"invalid JSON pointer {path!r}")
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _get(doc: Any, tokens: list[str]) -> Any:
    for token in tokens:
        doc = _step(doc, token)
    return doc


def _step(doc: Any, token: str) -> Any:
    if isinstance(doc, dict):
        if token not in doc:
            raise PatchError(f"path component {token!r} not found")
        return doc[token]
    if isinstance(doc, list):
        return doc[_index(doc, token, allow_end=False)]
    raise PatchError(f"cannot descend into a scalar at {token!r}")


def _index(doc: list[Any], token: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(doc)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    if index > len(doc) or (index == len(doc) and not allow_end):
        raise PatchError(f"array index {index} out of range")
    return index


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _get(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, allow_end=True), value)
    else:
        raise PatchError("cannot add to a scalar")
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _get(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path component {last!r} not found")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, allow_end=False)]
    else:
        raise PatchError("cannot remove from a scalar")
    return doc


def _apply_op(doc: Any, op: Any) -> Any:
    if not isinstance(op, dict) or "op" not in op or "path" not in op:
        raise PatchError(f"malformed operation {op!r}")
    kind, tokens = op["op"], _pointer(op["path"])
    if kind in ("add", "replace", "test") and "value" not in op:
        raise PatchError(f"operation {kind} needs a value")
    if kind == "add":
        return _add(doc, tokens, copy.deepcopy(op["value"]))
    if kind == "remove":
        return _remove(doc, tokens)
    if kind == "replace":
        _get(doc, tokens)  # must exist
        return _add(_remove(doc, tokens), tokens, copy.deepcopy(op["value"])) if tokens else op["value"]
    if kind in ("move", "copy"):
        source = _pointer(op.get("from"))
        value = copy.deepcopy(_get(doc, source))
        if kind == "move":
            doc = _remove(doc, source)
        return _add(doc, tokens, value)
    if kind == "test":
        if _get(doc, tokens) != op["value"]:
            raise PatchError(f"test failed at {op['path']}")
        return doc
    raise PatchError(f"unknown operation {kind!r}")

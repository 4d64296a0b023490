"""Label and field selectors as the Kubernetes API server parses and matches them.

Label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists),
``!k`` (does not exist), joined by commas. Field selectors: ``path=v``, ``path==v``, ``path!=v``
on dotted paths such as ``metadata.name``. The label-selector grammar and matching are the shared
ones of :mod:`lab.standins._labels`, with Kubernetes' key/value rules and error message.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from ._labels import LabelSelectorError, Requirement, parse_term, selector_matches, split_terms


class SelectorError(ValueError):
    """A selector the API server would refuse (400 BadRequest)."""


_KEY_RE = re.compile(r"^(?:[a-z0-9A-Z.\-]+/)?[a-zA-Z0-9](?:[a-zA-Z0-9_.\-]*[a-zA-Z0-9])?$")
_VALUE_RE = re.compile(r"^[A-Za-z0-9_.\-]*$")


def _parse_requirement(text: str) -> Requirement:
    try:
        return parse_term(text.strip(), key_ok=lambda k: bool(_KEY_RE.match(k)),
                          value_ok=lambda v: bool(_VALUE_RE.match(v)))
    except LabelSelectorError:
        raise SelectorError(f"unable to parse requirement: {text.strip()!r}") from None


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse a label selector string; an empty selector matches everything."""
    return [_parse_requirement(p) for p in split_terms(text or "", strict=False) if p.strip()]


def label_matcher(text: str | None) -> Callable[[dict[str, Any]], bool]:
    """A predicate over objects (their ``metadata.labels``) for a label selector string."""
    requirements = parse_label_selector(text)

    def matches(obj: dict[str, Any]) -> bool:
        return selector_matches(requirements, (obj.get("metadata") or {}).get("labels") or {})
    return matches


def match_label_selector_object(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Match a structured ``LabelSelector`` (``matchLabels`` / ``matchExpressions``)."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for expr in selector.get("matchExpressions") or []:
        req = Requirement(expr["key"], ops[expr["operator"]], tuple(expr.get("values") or ()))
        if not req.matches(labels):
            return False
    return True


_FIELD_RE = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$")


def _lookup(obj: Any, dotted: str) -> str:
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return "" if obj is None else str(obj)


def field_matcher(text: str | None, supported: set[str]) -> Callable[[dict[str, Any]], bool]:
    """A predicate for a field selector; fields outside ``supported`` raise :class:`SelectorError`."""
    checks: list[tuple[str, bool, str]] = []
    for part in (p for p in split_terms(text or "", strict=False) if p.strip()):
        match = _FIELD_RE.match(part)
        if not match:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = match.groups()
        if field not in supported:
            raise SelectorError(f'field label not supported: {field}')
        checks.append((field, op != "!=", value))

    def matches(obj: dict[str, Any]) -> bool:
        return all((_lookup(obj, f) == v) == want for f, want, v in checks)
    return matches

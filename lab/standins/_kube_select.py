"""Label and field selectors as the Kubernetes API server parses and matches them.

Label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists),
``!k`` (does not exist), joined by commas. Field selectors: ``path=v``, ``path==v``, ``path!=v``
on dotted paths such as ``metadata.name``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable


class SelectorError(ValueError):
    """A selector the API server would refuse (400 BadRequest)."""


@dataclass(frozen=True)
class Requirement:
    """One requirement of a selector: ``key <op> values``."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values  # "!=", "notin"


_LABEL_KEY = r"(?:[a-z0-9A-Z.\-]+/)?[a-zA-Z0-9]([a-zA-Z0-9_.\-]*[a-zA-Z0-9])?"
_SET_RE = re.compile(rf"^\s*({_LABEL_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_RE = re.compile(rf"^\s*({_LABEL_KEY})\s*(==|=|!=)\s*([A-Za-z0-9_.\-]*)\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_LABEL_KEY})\s*$")


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def _parse_requirement(text: str) -> Requirement:
    match = _SET_RE.match(text)
    if match:
        values = tuple(v.strip() for v in match.group(4).split(",") if v.strip())
        return Requirement(match.group(1), match.group(3), values)
    match = _EQ_RE.match(text)
    if match:
        op = "=" if match.group(3) in ("=", "==") else "!="
        return Requirement(match.group(1), op, (match.group(4),))
    match = _EXISTS_RE.match(text)
    if match:
        return Requirement(match.group(2), "!" if match.group(1) else "exists")
    raise SelectorError(f"unable to parse requirement: {text.strip()!r}")


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse a label selector string; an empty selector matches everything."""
    return [_parse_requirement(p) for p in _split_top_level(text or "")]


def label_matcher(text: str | None) -> Callable[[dict[str, Any]], bool]:
    """A predicate over objects (their ``metadata.labels``) for a label selector string."""
    requirements = parse_label_selector(text)

    def matches(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r.matches(labels) for r in requirements)
    return matches


def match_label_selector_object(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Match a structured ``LabelSelector`` (``matchLabels`` / ``matchExpressions``)."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
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
    for part in _split_top_level(text or ""):
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

"""Hetzner Cloud labels: validation of keys and values, and the label-selector grammar.

Pure functions, no I/O, so they are unit tested on their own
(``tests/unit/test_hcloud_label_selector.py``). The Kubernetes stand-in (``_kube_select.py``) reuses
the grammar (:func:`split_terms`, :func:`parse_term`, :class:`Requirement`) with its own key/value rules.

Selector grammar (comma = AND; whitespace around tokens is ignored)::

    k==v   k=v     value of k is v
    k!=v           k is absent or its value is not v
    k              k is present
    !k             k is absent
    k in (a,b)     value of k is a or b
    k notin (a,b)  k is absent or its value is neither a nor b

The negative operators follow the Kubernetes semantics Hetzner's selectors are modelled on: a
resource without the key matches ``k!=v`` and ``k notin (...)``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
_KEY_RE = re.compile(rf"^(?:(?P<prefix>{_PREFIX})/)?(?P<name>{_NAME})$")
_VALUE_RE = re.compile(rf"^(?:{_NAME})?$")
_SET_RE = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_BINARY_RE = re.compile(r"^(?P<key>[^!=\s]+)\s*(?P<op>==|!=|=)\s*(?P<value>[^!=\s]*)$")


class LabelSelectorError(ValueError):
    """The selector does not follow the grammar."""


@dataclass(frozen=True)
class Requirement:
    """One comma-separated term of a selector."""

    key: str
    op: str  # one of: ==, !=, exists, !exists, in, notin
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether ``labels`` satisfy this term."""
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("==", "in"):
            return present and value in self.values
        return not present or value not in self.values  # != and notin


def key_valid(key: str) -> bool:
    """A label key: optional DNS-subdomain prefix (max 253) and '/', then a name of max 63 chars."""
    m = _KEY_RE.match(key)
    return bool(m) and len(m.group("prefix") or "") <= 253


def value_valid(value: str) -> bool:
    """A label value: empty, or max 63 alphanumerics with '-', '_', '.' inside."""
    return isinstance(value, str) and bool(_VALUE_RE.match(value))


def label_errors(labels: object) -> list[str]:
    """Human-readable problems of a labels object (empty when it is valid)."""
    if not isinstance(labels, dict):
        return ["labels must be an object"]
    problems: list[str] = []
    for key, value in labels.items():
        if not key_valid(key):
            problems.append(f"label key '{key}' is invalid")
        if not isinstance(value, str) or not value_valid(value):
            problems.append(f"label value '{value}' of key '{key}' is invalid")
    return problems


def split_terms(selector: str, strict: bool = True) -> list[str]:
    """Split at commas that are not inside parentheses (terms are not stripped).

    ``strict`` raises :class:`LabelSelectorError` on unbalanced parentheses; otherwise they are left
    in the terms for the term parser to refuse.
    """
    terms, depth, current = [], 0, []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0 and strict:
                raise LabelSelectorError("unbalanced ')'")
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0 and strict:
        raise LabelSelectorError("unbalanced '('")
    terms.append("".join(current))
    return terms


def parse_term(term: str, key_ok: Callable[[str], bool] = key_valid,
               value_ok: Callable[[str], bool] = value_valid) -> Requirement:
    """One (stripped) selector term -> :class:`Requirement`; keys and values are checked with
    ``key_ok`` / ``value_ok`` (Hetzner's rules unless a caller brings its vendor's)."""
    def checked(ok: Callable[[str], bool], text: str, what: str) -> str:
        if not ok(text):
            raise LabelSelectorError(f"invalid label {what} in '{term}'")
        return text

    if not term:
        raise LabelSelectorError("empty requirement")
    m = _SET_RE.match(term)
    if m:
        values = tuple(v.strip() for v in m.group("values").split(","))
        if values == ("",):
            raise LabelSelectorError(f"empty value set in '{term}'")
        key = checked(key_ok, m.group("key"), "key")
        return Requirement(key, m.group("op"), tuple(checked(value_ok, v, "value") for v in values))
    m = _BINARY_RE.match(term)
    if m:
        op = "!=" if m.group("op") == "!=" else "=="
        key = checked(key_ok, m.group("key"), "key")
        return Requirement(key, op, (checked(value_ok, m.group("value"), "value"),))
    if term.startswith("!"):
        return Requirement(checked(key_ok, term[1:].strip(), "key"), "!exists")
    return Requirement(checked(key_ok, term, "key"), "exists")


def parse_label_selector(selector: str) -> list[Requirement]:
    """Parse a selector into its AND-ed requirements; raises :class:`LabelSelectorError`."""
    if not selector.strip():
        raise LabelSelectorError("empty label selector")
    return [parse_term(t.strip()) for t in split_terms(selector)]


def selector_matches(requirements: list[Requirement], labels: dict[str, str]) -> bool:
    """Whether ``labels`` satisfy every requirement."""
    return all(r.matches(labels) for r in requirements)

"""The pure label-selector parser and label validation of the Hetzner stand-in (lab/standins/_labels.py)."""
from __future__ import annotations

import pytest

from lab.standins._labels import (
    LabelSelectorError,
    Requirement,
    key_valid,
    label_errors,
    parse_label_selector,
    selector_matches,
    value_valid,
)

WEB = {"role": "web", "env": "prod", "example.com/tier": "front"}
DB = {"role": "db", "env": "prod"}
BARE: dict[str, str] = {}


@pytest.mark.parametrize("selector, expected", [
    ("role==web", [Requirement("role", "==", ("web",))]),
    ("role=web", [Requirement("role", "==", ("web",))]),
    ("role!=web", [Requirement("role", "!=", ("web",))]),
    ("role", [Requirement("role", "exists")]),
    ("!role", [Requirement("role", "!exists")]),
    ("role in (web,db)", [Requirement("role", "in", ("web", "db"))]),
    ("role notin (web, db)", [Requirement("role", "notin", ("web", "db"))]),
    ("role in (web,db),env=prod", [Requirement("role", "in", ("web", "db")), Requirement("env", "==", ("prod",))]),
    (" role == web , !gpu ", [Requirement("role", "==", ("web",)), Requirement("gpu", "!exists")]),
    ("example.com/tier=front", [Requirement("example.com/tier", "==", ("front",))]),
    ("role=", [Requirement("role", "==", ("",))]),
])
def test_parse(selector: str, expected: list[Requirement]) -> None:
    assert parse_label_selector(selector) == expected


@pytest.mark.parametrize("selector", [
    "", "  ", "role==web,", ",role", "role in (web", "role in web)", "role in ()", "role===web",
    "role==web==x", "-role=web", "role=we b", "!", "role in (a,b) x", "role notin", "ro le",
])
def test_parse_rejects(selector: str) -> None:
    with pytest.raises(LabelSelectorError):
        parse_label_selector(selector)


@pytest.mark.parametrize("selector, web, db, bare", [
    ("role==web", True, False, False),
    ("role!=web", False, True, True),  # absent key matches != (Kubernetes semantics)
    ("role", True, True, False),
    ("!role", False, False, True),
    ("role in (web,db)", True, True, False),
    ("role notin (web)", False, True, True),
    ("env=prod,role=db", False, True, False),
    ("env=prod,!example.com/tier", False, True, False),
    ("example.com/tier in (front,back)", True, False, False),
])
def test_matches(selector: str, web: bool, db: bool, bare: bool) -> None:
    reqs = parse_label_selector(selector)
    assert [selector_matches(reqs, labels) for labels in (WEB, DB, BARE)] == [web, db, bare]


@pytest.mark.parametrize("key, ok", [
    ("role", True), ("a", True), ("example.com/role", True), ("my-key_1.x", True),
    ("", False), ("-role", False), ("role-", False), ("Example.com/role", False), ("a/b/c", False),
    ("x" * 63, True), ("x" * 64, False), ("/role", False),
])
def test_key_syntax(key: str, ok: bool) -> None:
    assert key_valid(key) is ok


@pytest.mark.parametrize("value, ok", [
    ("", True), ("web", True), ("v1.2_x-y", True), ("-web", False), ("web.", False), ("a b", False),
    ("x" * 63, True), ("x" * 64, False),
])
def test_value_syntax(value: str, ok: bool) -> None:
    assert value_valid(value) is ok


def test_label_errors() -> None:
    assert label_errors({"role": "web", "example.com/x": ""}) == []
    assert len(label_errors({"-bad": "ok", "good": "-bad"})) == 2
    assert label_errors(["not", "a", "dict"]) == ["labels must be an object"]
    assert label_errors({"role": 3}) != []

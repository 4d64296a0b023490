"""The Hetzner Cloud API as of a pinned "today": dated removals from the contract, and the vendor's
dated changes that the contract (a 2026-02 snapshot) does not carry.

The contract announces removals in prose, e.g. the ``datacenter`` property of servers: "This
property is deprecated and will be removed after the 1 July 2026". :func:`dated_removals` finds
every such sentence in the contract's schema descriptions and :func:`contract_as_of` returns the
contract with the properties whose date has passed taken out (out of ``properties`` and
``required``), plus the names a request may no longer send (the vendor refuses them).

:data:`VENDOR_CHANGES` lists what the vendor changed after the snapshot, each with its source.

The stand-in's "today" is a setting (:data:`TODAY`, ``--today``), never the wall clock, so a run in
CI next year answers the same; bump it deliberately, together with the tests that depend on it.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Iterator

TODAY = date(2026, 11, 28)

_REMOVAL = re.compile(r"removed after (?:the )?(\d{1,2} [A-Z][a-z]+\.? \d{4})")


@dataclass(frozen=True)
class Removal:
    """A property the contract says will be removed after ``after``."""

    owner: str  # JSON pointer of the schema that holds the property
    name: str
    after: date
    text: str  # the contract's sentence


@dataclass(frozen=True)
class VendorChange:
    """A dated vendor change the contract does not carry."""

    effective: date  # in force on and after this day
    kind: str  # "gone": the operations answer 410 deprecated_api_endpoint
    operations: tuple[str, ...]  # operationIds
    what: str
    source: str  # where the vendor said so


VENDOR_CHANGES: tuple[VendorChange, ...] = (
    VendorChange(
        date(2026, 10, 2), "gone", ("list_data_centers", "get_data_center"),
        "GET /datacenters and GET /datacenters/{id} were deprecated and removed after 1 October 2026; "
        "requests to them answer HTTP 410 Gone (error code deprecated_api_endpoint)",
        "https://docs.hetzner.cloud/changelog#2026-06-02-datacenters-deprecated; hcloud-python v2.22.0 and "
        "hcloud-go v2.44.0 release notes (June 2026): 'will be removed after 1 Oct. 2026. After this date, "
        "requests to these endpoints will return HTTP 410 Gone'; error code table of the API reference: "
        "410 deprecated_api_endpoint 'The API endpoint functionality was removed'"),
)


def parse_day(text: str) -> date:
    """``"1 July 2026"`` / ``"1 Oct. 2026"`` -> date."""
    cleaned = text.replace(".", "")
    for fmt in ("%d %B %Y", "%d %b %Y"):
        try:
            return datetime.strptime(cleaned, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"not a date: {text!r}")


def _walk(node: Any, pointer: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object (a dict with ``properties``) in ``node``, with its JSON pointer."""
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict):
            yield pointer, node
        for key, value in node.items():
            yield from _walk(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{pointer}/{i}")


def dated_removals(spec: dict[str, Any]) -> list[Removal]:
    """Every property whose description announces its removal after a date."""
    out = []
    for pointer, schema in _walk(spec.get("components", {}), "#/components"):
        for name, prop in schema["properties"].items():
            desc = prop.get("description", "") if isinstance(prop, dict) else ""
            match = _REMOVAL.search(desc)
            if match:
                out.append(Removal(pointer, name, parse_day(match.group(1)), match.group(0)))
    return out


def contract_as_of(spec: dict[str, Any], today: date) -> tuple[dict[str, Any], list[Removal]]:
    """A copy of ``spec`` without the properties removed before ``today``, and those removals."""
    out = copy.deepcopy(spec)
    gone = [r for r in dated_removals(out) if r.after < today]
    for pointer, schema in _walk(out.get("components", {}), "#/components"):
        names = {r.name for r in gone if r.owner == pointer}
        for name in names:
            schema["properties"].pop(name, None)
            if "required" in schema:
                schema["required"] = [n for n in schema["required"] if n != name]
                if not schema["required"]:
                    del schema["required"]
    return out, gone


def removed_names(removals: list[Removal], schema_name: str) -> set[str]:
    """The removed properties of ``#/components/schemas/<schema_name>``."""
    owner = f"#/components/schemas/{schema_name}"
    return {r.name for r in removals if r.owner == owner}


def changes_in_force(today: date) -> list[VendorChange]:
    return [c for c in VENDOR_CHANGES if c.effective <= today]

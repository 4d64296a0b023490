"""The Hetzner stand-in's calendar: dated removals parsed from the contract's prose."""
from __future__ import annotations

from datetime import date

import pytest

from lab.standins._hcloud_today import VENDOR_CHANGES, changes_in_force, contract_as_of, dated_removals, parse_day


@pytest.mark.parametrize("text, day", [("1 July 2026", date(2026, 7, 1)), ("1 Oct. 2026", date(2026, 10, 1)),
                                       ("30 January 2025", date(2025, 1, 30))])
def test_parse_day(text, day):
    assert parse_day(text) == day


def test_parse_day_refuses_what_is_not_a_date():
    with pytest.raises(ValueError):
        parse_day("soon")


SPEC = {"components": {"schemas": {
    "thing": {"type": "object", "required": ["a", "old"], "properties": {
        "a": {"type": "string"},
        "old": {"type": "string", "description": "**Deprecated**: will be removed after the 1 July 2026. Use a."},
        "later": {"type": "string", "description": "This property will be removed after 1 January 2027."}}}}}}


def test_removals_take_effect_the_day_after_their_date():
    assert {(r.name, r.after) for r in dated_removals(SPEC)} == {("old", date(2026, 7, 1)), ("later", date(2027, 1, 1))}
    same_day, gone = contract_as_of(SPEC, date(2026, 7, 1))
    assert gone == [] and "old" in same_day["components"]["schemas"]["thing"]["properties"]
    after, gone = contract_as_of(SPEC, date(2026, 7, 2))
    thing = after["components"]["schemas"]["thing"]
    assert [r.name for r in gone] == ["old"]
    assert "old" not in thing["properties"] and thing["required"] == ["a"] and "later" in thing["properties"]
    assert "old" in SPEC["components"]["schemas"]["thing"]["properties"]  # the input is not modified


def test_vendor_changes_carry_a_source_and_apply_from_their_date():
    assert all(c.source.startswith("https://docs.hetzner.cloud/changelog") for c in VENDOR_CHANGES)
    assert changes_in_force(date(2026, 10, 1)) == []
    assert [c.operations for c in changes_in_force(date(2026, 10, 2))] == [("list_data_centers", "get_data_center")]

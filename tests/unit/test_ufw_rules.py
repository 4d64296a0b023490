"""The ufw_rules planner: canonical rules, parsing what ufw prints, and the convergence plan."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.honeydue.infra.plugins.module_utils._ufw import (
    Rule, UfwRuleError, normalize, parse_added, plan)

# Verbatim `ufw show added` output captured from ufw 0.36.2 (Debian 12) in a lab node.
SHOW_ADDED = """Added user rules (see 'ufw status' for running firewall):
ufw route allow from 10.42.0.0/16
ufw route allow to 10.42.0.0/16
ufw allow 22/tcp comment 'ssh from admins'
ufw allow 8472/udp
ufw allow from 10.1.2.3 to any port 2379:2380 proto tcp
ufw allow from 10.42.0.0/16
ufw allow from 2001:db8::/32 to any port 80,443 proto tcp comment 'cf'
"""


def test_parses_every_form_ufw_prints():
    rules = parse_added(SHOW_ADDED)
    assert rules == [
        Rule(True, "allow", "10.42.0.0/16", "any", "", "any"),
        Rule(True, "allow", "any", "10.42.0.0/16", "", "any"),
        Rule(False, "allow", "any", "any", "22", "tcp", "ssh from admins"),
        Rule(False, "allow", "any", "any", "8472", "udp"),
        Rule(False, "allow", "10.1.2.3", "any", "2379:2380", "tcp"),
        Rule(False, "allow", "10.42.0.0/16", "any", "", "any"),
        Rule(False, "allow", "2001:db8::/32", "any", "80,443", "tcp", "cf"),
    ]


@pytest.mark.parametrize("spec,expected", [
    ({"from_ip": "0.0.0.0/0", "port": "22", "proto": "tcp"}, ("any", "22")),
    ({"from_ip": "::/0", "port": "22", "proto": "tcp"}, ("any", "22")),
    ({"from_ip": "198.51.100.7/32", "port": "443,80", "proto": "tcp"}, ("198.51.100.7", "80,443")),
    ({"from_ip": "2001:DB8::/32", "port": " 443, 80 ,443", "proto": "tcp"}, ("2001:db8::/32", "80,443")),
])
def test_spellings_of_the_same_rule_are_equal(spec, expected):
    rule = normalize(spec)
    assert (rule.src, rule.port) == expected


@pytest.mark.parametrize("spec,msg", [
    ({"from_ip": "10.0.0.1/8", "port": "22", "proto": "tcp"}, "not an address or network"),
    ({"from_ip": "10.0.0.0/8", "port": "2380:2379", "proto": "tcp"}, "out of range"),
    ({"from_ip": "10.0.0.0/8", "port": "70000", "proto": "tcp"}, "out of range"),
    ({"from_ip": "10.0.0.0/8", "port": "80,443"}, "needs proto tcp or udp"),
    ({"from_ip": "10.0.0.0/8", "to_ip": "2001:db8::/32"}, "different IP versions"),
    ({}, "at least one of"),
    ({"from_ip": "10.0.0.0/8", "comment": "it's"}, "quotes"),
])
def test_invalid_rules_are_refused_before_any_change(spec, msg):
    with pytest.raises(UfwRuleError, match=msg):
        normalize(spec)


def test_interface_rules_are_not_silently_misread():
    with pytest.raises(UfwRuleError, match="cannot manage"):
        parse_added("ufw allow in on cni0\n")


def test_args_round_trip_through_the_parser():
    for rule in parse_added(SHOW_ADDED):
        assert parse_added("ufw " + " ".join(_quote(a) for a in rule.args())) == [rule]


def _quote(arg):
    return f"'{arg}'" if " " in arg else arg


def test_plan_removes_a_node_that_left_the_inventory_and_adds_the_new_one():
    old = [normalize({"from_ip": ip, "port": "2379:2380", "proto": "tcp"}) for ip in ("10.0.0.2", "10.0.0.3")]
    new = [normalize({"from_ip": ip, "port": "2379:2380", "proto": "tcp"}) for ip in ("10.0.0.2", "10.0.0.4")]
    deletes, adds = plan(old, new)
    assert [r.src for r in deletes] == ["10.0.0.3"] and [r.src for r in adds] == ["10.0.0.4"]


def test_plan_updates_a_comment_without_deleting():
    current = [normalize({"from_ip": "10.0.0.2", "port": "22", "proto": "tcp", "comment": "old"})]
    desired = [normalize({"from_ip": "10.0.0.2", "port": "22", "proto": "tcp", "comment": "new"})]
    assert plan(current, desired) == ([], desired)


def test_plan_keeps_foreign_rules_when_not_exclusive():
    foreign = normalize({"from_ip": "192.0.2.1", "port": "9100", "proto": "tcp"})
    assert plan([foreign], [], exclusive=False) == ([], [])
    assert plan([foreign], [], exclusive=True) == ([foreign], [])


_rules = st.builds(
    lambda src, port, proto, route: normalize({"from_ip": src, "port": port, "proto": proto, "route": route}),
    st.sampled_from(["any", "10.0.0.2", "10.0.0.0/8", "2001:db8::/32", "198.51.100.7"]),
    st.sampled_from(["22", "80,443", "2379:2380", "8472"]),
    st.sampled_from(["tcp", "udp"]),
    st.booleans(),
)


@given(st.lists(_rules, max_size=8), st.lists(_rules, max_size=8))
def test_applying_the_plan_converges_and_a_second_plan_is_empty(current, desired):
    deletes, adds = plan(current, desired)
    state = {r.key: r for r in current}
    for r in deletes:
        del state[r.key]
    for r in adds:
        state[r.key] = r
    assert set(state) == {r.key for r in desired}
    assert plan(list(state.values()), desired) == ([], [])


def test_expand_makes_one_rule_per_source_and_none_for_an_empty_list():
    from ansible_collections.honeydue.infra.plugins.module_utils._ufw import expand
    rules = expand({"from_ip": ["10.0.0.2", "10.0.0.3"], "port": "6443,2379:2380,10250", "proto": "tcp"})
    assert [(r.src, r.port) for r in rules] == [("10.0.0.2", "2379:2380,6443,10250"),
                                                ("10.0.0.3", "2379:2380,6443,10250")]
    assert expand({"from_ip": [], "port": "8472", "proto": "udp"}) == []
    assert [r.dst for r in expand({"to_ip": ["10.42.0.0/16", "10.43.0.0/16"], "route": True})] == \
        ["10.42.0.0/16", "10.43.0.0/16"]

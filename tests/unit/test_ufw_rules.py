"""The ufw_rules planner: canonical rules, parsing what ufw prints, and the convergence plan."""
from __future__ import annotations

import functools
import ipaddress

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.honeydue.infra.plugins.module_utils._ufw import (
    Outcome, Rule, UfwRuleError, execute, normalize, parse_added, plan)

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


def test_outgoing_interface_rules_are_not_silently_misread():
    with pytest.raises(UfwRuleError, match="cannot manage"):
        parse_added("ufw allow out on eth0 to any port 53\n")


def test_incoming_interface_rules_round_trip():
    """The cluster ports are open only in on the private interface (`ufw allow in on IFACE ...`)."""
    line = "ufw allow in on enp7s0 from 10.0.1.0/24 to any port 6443,2379:2380,10250 proto tcp comment 'k3s'"
    (rule,) = parse_added(line)
    assert (rule.interface, rule.src, rule.port, rule.proto) == ("enp7s0", "10.0.1.0/24", "2379:2380,6443,10250", "tcp")
    assert rule.args()[:3] == ["allow", "in", "on"]
    assert parse_added("ufw " + " ".join(_quote(a) for a in rule.args())) == [rule]
    anywhere = normalize({"from_ip": "10.0.1.0/24", "port": "6443", "proto": "tcp"})
    assert anywhere.key != rule.key  # the same match on another interface is another rule
    with pytest.raises(UfwRuleError, match="interface"):
        normalize({"from_ip": "10.0.1.0/24", "port": "6443", "proto": "tcp", "interface": "eth0; rm -rf /"})


def test_args_round_trip_through_the_parser():
    for rule in parse_added(SHOW_ADDED):
        assert parse_added("ufw " + " ".join(_quote(a) for a in rule.args())) == [rule]


def _quote(arg):
    return f"'{arg}'" if " " in arg else arg


def _ops(the_plan):
    return [(step.op, step.rule) for step in the_plan.steps]


def test_plan_removes_a_node_that_left_the_inventory_and_adds_the_new_one():
    old = [normalize({"from_ip": ip, "port": "2379:2380", "proto": "tcp"}) for ip in ("10.0.0.2", "10.0.0.3")]
    new = [normalize({"from_ip": ip, "port": "2379:2380", "proto": "tcp"}) for ip in ("10.0.0.2", "10.0.0.4")]
    assert _ops(plan(old, new)) == [("add", new[1]), ("delete", old[1])]


def test_changing_the_admin_cidr_adds_the_new_ssh_rule_before_deleting_the_old_one():
    cf = normalize({"from_ip": "173.245.48.0/20", "port": "80,443", "proto": "tcp", "comment": "cf"})
    old_ssh = normalize({"from_ip": "198.51.100.0/24", "port": "22", "proto": "tcp", "comment": "ssh from admins"})
    new_ssh = normalize({"from_ip": "203.0.113.0/24", "port": "22", "proto": "tcp", "comment": "ssh from admins"})
    p = plan([old_ssh, cf], [new_ssh, cf])
    assert [str(s) for s in p.steps] == [
        "ufw allow from 203.0.113.0/24 to any port 22 proto tcp comment 'ssh from admins'",
        "ufw delete allow from 198.51.100.0/24 to any port 22 proto tcp",
    ]
    assert p.after == (cf, new_ssh)


def test_plan_updates_a_comment_or_an_action_in_place_without_deleting():
    current = [normalize({"from_ip": "10.0.0.2", "port": "22", "proto": "tcp", "comment": "old"})]
    desired = [normalize({"from_ip": "10.0.0.2", "port": "22", "proto": "tcp", "comment": "new"})]
    assert _ops(plan(current, desired)) == [("update", desired[0])]
    # ufw keeps one rule per match: `ufw limit ...` replaces the `allow` in place, so no delete.
    limited = [normalize({"rule": "limit", "from_ip": "10.0.0.2", "port": "22", "proto": "tcp", "comment": "old"})]
    assert _ops(plan(current, limited)) == [("update", limited[0])]


def test_two_listed_rules_for_the_same_match_with_different_actions_are_refused():
    allow = normalize({"from_ip": "10.0.0.2", "port": "22", "proto": "tcp"})
    deny = normalize({"rule": "deny", "from_ip": "10.0.0.2", "port": "22", "proto": "tcp"})
    with pytest.raises(UfwRuleError, match="different actions"):
        plan([], [allow, deny])


def test_plan_keeps_foreign_rules_when_not_exclusive():
    foreign = normalize({"from_ip": "192.0.2.1", "port": "9100", "proto": "tcp"})
    assert plan([foreign], [], exclusive=False).steps == ()
    assert _ops(plan([foreign], [], exclusive=True)) == [("delete", foreign)]


def test_deletes_run_bottom_up():
    rules = [normalize({"from_ip": f"10.0.0.{i}", "port": "22", "proto": "tcp"}) for i in (1, 2, 3)]
    assert [s.rule for s in plan(rules, []).steps] == rules[::-1]


# -- the order is safe: a model of ufw's chains, and every moment of every plan checked against it --------
_SOURCES = ["any", "10.0.0.2", "10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32", "198.51.100.7"]
_PACKET_SOURCES = ["10.0.0.2", "10.1.2.3", "10.9.9.9", "198.51.100.7", "192.0.2.1", "2001:db8::1", "2001:db9::1"]
_PORTS = ["22", "80,443", "2379:2380", "22,8472"]


def _rule(action, src, port, proto, route, comment):
    return normalize({"rule": action, "from_ip": src, "port": port, "proto": proto, "route": route, "comment": comment})


_rules = st.builds(
    _rule,
    st.sampled_from(["allow", "allow", "deny", "reject", "limit"]),
    st.sampled_from(_SOURCES),
    st.sampled_from(_PORTS),
    st.sampled_from(["tcp", "udp"]),
    st.booleans(),
    st.sampled_from(["", "a"]),
)


def _unique(rules):
    """Rules as ufw can hold them: one per match (what `ufw show added` lists)."""
    by_key = {}
    for rule in rules:
        by_key.setdefault(rule.key, rule)
    return list(by_key.values())


@functools.lru_cache(maxsize=None)
def _matches(rule, packet):
    route, src, port, proto = packet
    if rule.route != route or rule.proto not in ("any", proto):
        return False
    if rule.src != "any" and ipaddress.ip_address(src) not in ipaddress.ip_network(rule.src):
        return False
    return not rule.port or any(
        lo <= port <= hi for lo, hi in ((int(b[0]), int(b[-1])) for b in (p.split(":") for p in rule.port.split(","))))


def verdict(rules, packet):
    """What ufw does with a new connection: the first matching rule of its chain, else the default
    (deny). The listing, restricted to the packet's family and direction, is the chain's order."""
    return next((r.action for r in rules if _matches(r, packet)), "default deny")


_PACKETS = [(route, src, port, proto) for route in (False, True) for src in _PACKET_SOURCES
            for port in (22, 80, 443, 2379, 8472) for proto in ("tcp", "udp")]


def _simulate(before, steps):
    """Independent of the planner: ufw appends an added rule, replaces one with the same match in place."""
    state, moments = list(before), [list(before)]
    for step in steps:
        at = [i for i, r in enumerate(state) if r.key == step.rule.key]
        if step.op == "delete":
            assert at, f"deleting {step.rule}, which ufw does not hold"
            del state[at[0]]
        else:
            assert (step.op == "update") == bool(at), step
            if at:
                state[at[0]] = step.rule
            else:
                state.append(step.rule)
        moments.append(list(state))
    return moments


def unsafe_moments(before, steps, desired):
    """Every (moment, packet) where the firewall is neither as before nor as after, and every
    moment where a rule held both before and after is missing."""
    moments = _simulate(before, steps)
    after = moments[-1]
    kept = set(before) & set(desired)
    ends = [(packet, {verdict(before, packet), verdict(after, packet)}) for packet in _PACKETS]
    bad = []
    for n, state in enumerate(moments):
        bad += [(n, "missing", r) for r in kept if r not in state]
        bad += [(n, packet, verdict(state, packet)) for packet, allowed in ends if verdict(state, packet) not in allowed]
    return bad


@settings(max_examples=300, deadline=None)
@given(st.lists(_rules, max_size=8), st.lists(_rules, max_size=8))
def test_no_moment_of_a_plan_is_less_open_than_both_ends(old, new):
    """For any old and new rule sets: all adds and updates come before any delete, rules held in
    both are never touched (nor missing at any moment), every packet meets the old firewall or the
    new one at every moment (so a port reachable before and after stays reachable throughout), and
    the plan converges."""
    current, desired = _unique(old), _unique(new)
    p = plan(current, desired)
    ops = [s.op for s in p.steps]
    assert ops == sorted(ops, key=lambda op: op == "delete"), ops
    assert not {s.rule for s in p.steps} & (set(current) & set(desired))
    assert unsafe_moments(current, p.steps, desired) == []
    assert _simulate(current, p.steps)[-1] == list(p.after)
    assert {r.key: r for r in p.after} == {r.key: r for r in desired}
    assert plan(list(p.after), desired).steps == ()


def test_the_safety_check_catches_delete_before_add():
    """The property above is not vacuous: the same plan run deletes-first leaves SSH shut."""
    old = [normalize({"from_ip": "10.0.0.0/8", "port": "22", "proto": "tcp"})]
    new = [normalize({"from_ip": "10.1.0.0/16", "port": "22", "proto": "tcp"})]
    steps = plan(old, new).steps
    assert unsafe_moments(old, steps, new) == []
    reversed_steps = sorted(steps, key=lambda s: s.op != "delete")
    assert (1, (False, "10.1.2.3", 22, "tcp"), "default deny") in unsafe_moments(old, reversed_steps, new)


def test_the_safety_check_catches_a_top_down_delete_that_uncovers_a_deny():
    allow = normalize({"from_ip": "10.0.0.0/8", "port": "22", "proto": "tcp"})
    deny = normalize({"rule": "deny", "from_ip": "10.1.0.0/16", "port": "22", "proto": "tcp"})
    new = [normalize({"from_ip": "10.1.2.3", "port": "22", "proto": "tcp"})]
    steps = plan([allow, deny], new).steps
    assert [s.rule for s in steps] == [new[0], deny, allow]
    assert unsafe_moments([allow, deny], steps, new) == []
    top_down = [steps[0], steps[2], steps[1]]
    assert unsafe_moments([allow, deny], top_down, new)


# -- execution: stop at the first failure and say how far it got -----------------------------------------
def _switch():
    old = normalize({"from_ip": "198.51.100.0/24", "port": "22", "proto": "tcp", "comment": "ssh"})
    new = normalize({"from_ip": "203.0.113.0/24", "port": "22", "proto": "tcp", "comment": "ssh"})
    cf = normalize({"from_ip": "173.245.48.0/20", "port": "80,443", "proto": "tcp", "comment": "cf"})
    return plan([old, cf], [new, cf]), old, new, cf


def test_execute_runs_every_step_in_order():
    p, old, new, cf = _switch()
    calls = []
    outcome = execute(p, lambda args: calls.append(args) or (0, "Rule added", ""))
    assert calls == [new.args(), old.args(delete=True)]
    assert outcome.result() == dict(changed=True, rules=[str(cf), str(new)], added=[str(new)], deleted=[str(old)])


def test_a_failure_midway_reports_what_was_applied_and_what_was_not():
    p, old, new, cf = _switch()
    answers = iter([(0, "Rule added", ""), (1, "", "ERROR: problem running ufw-init\n")])
    result = execute(p, lambda args: next(answers)).result()
    assert result["failed"] and result["changed"]
    assert result["cmd"] == "ufw delete allow from 198.51.100.0/24 to any port 22 proto tcp"
    assert (result["rc"], result["stderr"]) == (1, "ERROR: problem running ufw-init\n")
    assert result["added"] == [str(new)] and result["deleted"] == []
    assert result["pending"] == [result["cmd"]]
    assert result["rules"] == [str(old), str(cf), str(new)]  # the new SSH rule is in; the old one not yet out
    assert "1 rule(s) added/updated and 0 deleted before it" in result["msg"]
    assert "problem running ufw-init" in result["msg"]


def test_a_failure_on_the_first_step_changed_nothing():
    p, old, new, cf = _switch()
    result = execute(p, lambda args: (2, "", "ERROR: Bad port")).result()
    assert result["failed"] and not result["changed"]
    assert result["added"] == result["deleted"] == []
    assert result["pending"] == [str(s) for s in p.steps]
    assert result["rules"] == [str(old), str(cf)]


def test_a_plan_without_steps_runs_nothing():
    p, old, new, cf = _switch()
    p = plan(list(p.after), [new, cf])
    assert execute(p, lambda args: pytest.fail(f"ran {args}")).result() == dict(
        changed=False, rules=[str(cf), str(new)], added=[], deleted=[])


def test_check_mode_result_is_the_full_plan_without_running_it():
    p, old, new, cf = _switch()
    result = Outcome(p, len(p.steps)).result()
    assert result == dict(changed=True, rules=[str(cf), str(new)], added=[str(new)], deleted=[str(old)])


def test_expand_makes_one_rule_per_source_and_none_for_an_empty_list():
    from ansible_collections.honeydue.infra.plugins.module_utils._ufw import expand
    rules = expand({"from_ip": ["10.0.0.2", "10.0.0.3"], "port": "6443,2379:2380,10250", "proto": "tcp"})
    assert [(r.src, r.port) for r in rules] == [("10.0.0.2", "2379:2380,6443,10250"),
                                                ("10.0.0.3", "2379:2380,6443,10250")]
    assert expand({"from_ip": [], "port": "8472", "proto": "udp"}) == []
    assert [r.dst for r in expand({"to_ip": ["10.42.0.0/16", "10.43.0.0/16"], "route": True})] == \
        ["10.42.0.0/16", "10.43.0.0/16"]

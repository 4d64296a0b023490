"""The hcloud_fleet planner: what to create, what drifted, and when scale in is refused."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.honeydue.infra.plugins.module_utils._hcloud_fleet import (
    FleetError, desired_servers, diff, plan, primary_ip_problems, primary_ip_ref, selector, server_view)

SPEC = {"server_type": "cx33", "image": "ubuntu-24.04", "location": "nbg1", "placement_group": "spread", "networks": []}
SEL = {"cluster": "honeydue"}
ON = {"delete": True, "rebuild": True}


def want(*names, role="k3s-server"):
    return desired_servers([{"name": n, "labels": {"role": role}} for n in names], {"env": "prod"}, SEL)


def have(name, **over):
    attrs = dict(server_type="cx33", image="ubuntu-24.04", location="nbg1", placement_group="spread",
                 labels={"cluster": "honeydue", "role": "k3s-server", "env": "prod"}, protection=ON, status="running")
    attrs.update(over)
    return server_view(name, **attrs)


def test_fresh_fleet_creates_every_server_with_the_selector_labels():
    p = plan(want("hetzner1", "hetzner2", "hetzner3"), [], SPEC)
    assert [c["name"] for c in p.create] == ["hetzner1", "hetzner2", "hetzner3"]
    assert p.create[0]["labels"] == {"cluster": "honeydue", "role": "k3s-server", "env": "prod"}
    assert p.changed and not p.delete and not p.drift


def test_existing_fleet_is_left_alone():
    p = plan(want("hetzner1", "hetzner2"), [have("hetzner1"), have("hetzner2")], SPEC)
    assert not p.changed and p.keep == ["hetzner1", "hetzner2"]


def test_drift_is_reported_never_acted_on():
    drifted = have("hetzner1", server_type="cx43", labels={"cluster": "honeydue", "role": "x"})
    p = plan(want("hetzner1"), [drifted], SPEC)
    assert not p.create and not p.delete
    assert p.drift["hetzner1"]["server_type"] == {"expected": "cx33", "actual": "cx43"}
    assert p.drift["hetzner1"]["labels"]["actual"] == {"role": "x", "env": None}


def test_protection_turned_off_is_turned_back_on():
    p = plan(want("hetzner1"), [have("hetzner1", protection={"delete": False, "rebuild": False})], SPEC)
    assert p.protect == ["hetzner1"] and p.changed


def test_scale_in_is_refused_without_allow_delete():
    with pytest.raises(FleetError, match="hetzner4 is no longer wanted") as exc:
        plan(want("hetzner1"), [have("hetzner1"), have("hetzner4")], SPEC)
    assert exc.value.code == "scale_in_refused"


def test_scale_in_needs_confirmation_that_the_node_left_k3s():
    with pytest.raises(FleetError, match="not confirmed removed"):
        plan(want("hetzner1"), [have("hetzner1"), have("hetzner4")], SPEC, allow_delete=True)
    p = plan(want("hetzner1"), [have("hetzner1"), have("hetzner4")], SPEC, allow_delete=True,
             confirmed_removed=["hetzner4"])
    assert p.delete == ["hetzner4"]
    labelled = have("hetzner4", labels={"cluster": "honeydue", "k3s-removed": "true"})
    assert plan(want("hetzner1"), [have("hetzner1"), labelled], SPEC, allow_delete=True).delete == ["hetzner4"]


@pytest.mark.parametrize("servers,msg", [
    ([{"name": "Hetzner_1"}], "not a valid hostname"),
    ([{"name": "a"}, {"name": "a"}], "listed twice"),
])
def test_bad_names_are_refused(servers, msg):
    with pytest.raises(FleetError, match=msg):
        desired_servers(servers, {}, SEL)


def test_selector_and_diff():
    assert selector({"env": "p", "cluster": "h"}) == "cluster=h,env=p"
    with pytest.raises(FleetError):
        selector({})
    d = diff([have("hetzner1")], plan(want("hetzner1", "hetzner2"), [have("hetzner1")], SPEC), SPEC)
    assert sorted(d["after"]) == ["hetzner1", "hetzner2"] and list(d["before"]) == ["hetzner1"]


names = st.lists(st.integers(min_value=1, max_value=30), unique=True, max_size=12).map(
    lambda xs: [f"hetzner{x}" for x in xs])


@given(wanted=names, existing=names, removed=st.lists(st.integers(1, 30), max_size=12), allow=st.booleans())
def test_plan_never_recreates_and_never_deletes_unconfirmed(wanted, existing, removed, allow):
    confirmed = [f"hetzner{x}" for x in removed]
    current = [have(n) for n in existing]
    try:
        p = plan(want(*wanted), current, SPEC, allow_delete=allow, confirmed_removed=confirmed)
    except FleetError as exc:
        surplus = set(existing) - set(wanted)
        assert exc.code == "scale_in_refused" and surplus
        assert not allow or not surplus <= set(confirmed)
        return
    created = {c["name"] for c in p.create}
    assert created == set(wanted) - set(existing)  # exactly the missing ones, never an existing one
    assert set(p.delete) <= set(confirmed) and set(p.delete) == set(existing) - set(wanted)
    assert not p.delete or allow
    assert created | set(p.keep) == set(wanted)


# -- names taken outside the fleet, lock holders --------------------------------------------------
def test_in_fleet_needs_every_selector_label():
    from ansible_collections.honeydue.infra.plugins.module_utils._hcloud_fleet import in_fleet
    assert in_fleet({"cluster": "honeydue", "role": "x"}, SEL)
    assert not in_fleet({"cluster": "other"}, SEL) and not in_fleet({}, SEL) and not in_fleet(None, SEL)


def test_taken_names_are_only_those_used_outside_the_fleet():
    from ansible_collections.honeydue.infra.plugins.module_utils._hcloud_fleet import taken_names
    found = {"hetzner2": {"cluster": "someone-else"}, "hetzner3": {"cluster": "honeydue"}}
    assert taken_names(["hetzner1", "hetzner2", "hetzner3"], found, SEL) == ["hetzner2"]
    assert taken_names(["hetzner1"], {}, SEL) == []


def test_lock_holders_name_the_actions():
    from ansible_collections.honeydue.infra.plugins.module_utils._hcloud_fleet import lock_holders
    assert lock_holders([{"id": 7, "command": "apply_firewall"}, {"id": 8, "command": "start_server"}]) == (
        "apply_firewall (action 7), start_server (action 8)")
    assert lock_holders([]) == "an unlisted action"


# -- Primary IPs ------------------------------------------------------------------------------------
def test_primary_ip_ref_is_an_id_or_a_name():
    assert primary_ip_ref(42) == 42 and primary_ip_ref("42") == 42
    assert primary_ip_ref("hetzner1-ipv4") == "hetzner1-ipv4"
    for bad in (True, "  "):
        with pytest.raises(FleetError):
            primary_ip_ref(bad)
    entries = desired_servers([{"name": "hetzner1", "ipv4": "7"}, {"name": "hetzner2"}], {}, SEL)
    assert [e["ipv4"] for e in entries] == [7, None]


def _pip(pid, **over):
    return {"id": pid, "name": f"ip{pid}", "type": "ipv4", "assignee_id": None, "location": "nbg1", **over}


def test_primary_ip_problems_name_every_unusable_ip():
    entries = [{"name": f"hetzner{i}", "ipv4": f"ip{i}"} for i in range(1, 7)] + [{"name": "hetzner7", "ipv4": None}]
    found = {"ip1": _pip(1), "ip2": None, "ip3": _pip(3, type="ipv6"), "ip4": _pip(4, assignee_id=99),
             "ip5": _pip(5, location="fsn1"), "ip6": _pip(1)}
    problems = primary_ip_problems(entries, found, "nbg1")
    assert problems == ["hetzner2: no Primary IP 'ip2'", "hetzner3: Primary IP ip3 is of type ipv6, not ipv4",
                        "hetzner4: Primary IP ip4 is assigned to server 99",
                        "hetzner5: Primary IP ip5 is in fsn1, the servers in nbg1",
                        "hetzner6: Primary IP ip1 is also named for hetzner1"]
    assert primary_ip_problems(entries[:1], found, "nbg1") == []


def test_a_server_on_another_primary_ip_is_drift_never_recreated():
    wanted = desired_servers([{"name": "hetzner1", "ipv4": "hetzner1-ipv4"}], {}, SEL)
    same = have("hetzner1", labels=SEL, primary_ipv4=5)
    assert plan(wanted, [same], SPEC, primary_ids={"hetzner1-ipv4": 5}).drift == {}
    other = have("hetzner1", labels=SEL, primary_ipv4=6)
    p = plan(wanted, [other], SPEC, primary_ids={"hetzner1-ipv4": 5})
    assert p.create == [] and p.drift["hetzner1"]["ipv4"] == {"expected": "hetzner1-ipv4", "actual": 6}
    # the Primary IP is gone: still drift, still nothing recreated
    p = plan(wanted, [same], SPEC, primary_ids={"hetzner1-ipv4": None})
    assert p.create == [] and p.drift["hetzner1"]["ipv4"]["actual"] == 5
    # by ID
    by_id = desired_servers([{"name": "hetzner1", "ipv4": 5}], {}, SEL)
    assert plan(by_id, [same], SPEC).drift == {}

"""The DNS guard's rules (plugins/module_utils/_dns_guard.py): hysteresis, never fewer than one
record, drains, the records it asks the planner for, and Lease leader election with conflicts."""
from __future__ import annotations

import copy
import itertools

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.honeydue.infra.plugins.module_utils import _dns_guard as g
from ansible_collections.honeydue.infra.plugins.module_utils._cf_plan import apply, desired_sets, fqdn, plan
from lab.standins._kube_validate import validate_builtin

ZONE = "honeydue.example"
NODES = [{"name": f"node{i}", "ipv4": f"203.0.113.1{i}", "ipv6": f"2001:db8::{i}",
          "health_url": f"http://10.0.1.1{i}:8080/ping"} for i in (1, 2, 3)]
NAMES = [n["name"] for n in NODES]


def config(**overrides):
    doc = {"node_name": "node1", "zone": ZONE, "nodes": copy.deepcopy(NODES),
           "cloudflare": {"token_file": "/etc/honeydue/dns-guard.token"}}
    doc.update(overrides)
    return g.load_config(doc)


def run(results, healthy=True, fail=3, rise=3):
    """Feed check results to one node; the states after each check and the transitions."""
    state, states, flips = g.new_health(healthy), [], []
    for ok in results:
        state, flip = g.observe(state, ok, fail, rise, "" if ok else "HTTP 503")
        states.append(state["healthy"])
        flips.append(flip)
    return states, flips


# -- hysteresis ------------------------------------------------------------------------------------
def test_a_node_leaves_only_on_the_third_consecutive_failure():
    states, flips = run([False, False, True, False, False, False])
    assert states == [True, True, True, True, True, False]  # the good check in between reset the count
    assert flips == [None, None, None, None, None, "down"]


def test_a_node_comes_back_only_after_three_good_checks():
    states, flips = run([True, True, False, True, True, True], healthy=False)
    assert states == [False, False, False, False, False, True]
    assert flips[-1] == "up" and flips[:-1] == [None] * 5


def test_a_flapping_node_never_changes_state():
    for start in (True, False):
        states, flips = run([False, True] * 20, healthy=start)
        assert set(states) == {start} and set(flips) == {None}
        states, flips = run([False, False, True] * 10, healthy=start)  # two bad of three: still flapping
        assert set(states) == {start} and set(flips) == {None}


@given(st.lists(st.booleans(), max_size=60), st.booleans(), st.integers(1, 4), st.integers(1, 4))
@settings(max_examples=300, deadline=None)
def test_a_state_changes_only_after_threshold_agreeing_checks(results, start, fail, rise):
    states, flips = run(results, start, fail, rise)
    state = start
    for i, flip in enumerate(flips):
        if flip is not None:
            need = fail if flip == "down" else rise
            assert i + 1 >= need and all(ok == (flip == "up") for ok in results[i + 1 - need:i + 1])
            state = not state
        assert states[i] == state


def test_detection_and_restore_time_with_the_defaults():
    """The node stops at any moment between two checks: its records go on the third failed check,
    at most interval x fail_threshold (+ the last check's timeout) later, well under 30 s."""
    health = config()["health"]
    assert (health["interval"], health["fail_threshold"], health["rise_threshold"]) == (2.0, 3, 3)
    assert g.detection_seconds(health) == 7.5 and g.restore_seconds(health) == 6.0
    for phase in (0.0, 0.5, 1.0, 1.99):  # the first check after the stop comes 2 - phase s later
        state, t = g.new_health(True), 2.0 - phase
        while True:
            state, flip = g.observe(state, False, 3, 3)
            if flip == "down":
                break
            t += health["interval"]
        assert t <= g.detection_seconds(health) < 30


def test_a_new_leader_starts_from_what_dns_holds():
    health = g.initial_health(NODES, ["203.0.113.11", "203.0.113.13"])
    assert {n: h["healthy"] for n, h in health.items()} == {"node1": True, "node2": False, "node3": True}
    sel = g.select(NODES, health, set(), ["node1", "node3"])
    assert sel["serving"] == ["node1", "node3"]  # taking over changes nothing by itself


# -- which nodes DNS holds -------------------------------------------------------------------------
def health_of(*healthy):
    return {n: g.new_health(n in healthy) for n in NAMES}


def test_the_records_are_the_healthy_nodes():
    assert g.select(NODES, health_of(*NAMES), set(), NAMES) == {"serving": NAMES, "keep_current": False, "held": {}}
    assert g.select(NODES, health_of("node1", "node3"), set(), NAMES)["serving"] == ["node1", "node3"]
    assert g.select(NODES, health_of("node2"), set(), ["node1"])["serving"] == ["node2"]


def test_with_no_healthy_node_the_current_records_stay():
    sel = g.select(NODES, health_of(), set(), ["node1", "node2"])
    assert sel["keep_current"] and sel["serving"] == ["node1", "node2"]
    assert g.select(NODES, health_of(), {"node1"}, ["node1"])["keep_current"]  # a drain does not empty it either


def test_a_drained_node_leaves_whatever_its_health():
    sel = g.select(NODES, health_of(*NAMES), {"node2"}, NAMES)
    assert sel["serving"] == ["node1", "node3"] and not sel["held"]


def test_the_last_healthy_node_is_never_drained():
    sel = g.select(NODES, health_of("node1"), {"node1"}, ["node1"])
    assert sel["serving"] == ["node1"] and "last healthy node" in sel["held"]["node1"]
    sel = g.select(NODES, health_of(*NAMES), set(NAMES), ["node2", "node3"])  # all drained: those in DNS stay
    assert sel["serving"] == ["node2", "node3"] and set(sel["held"]) == {"node2", "node3"}
    sel = g.select(NODES, health_of("node3"), {"node3"}, ["node1"])  # not in DNS yet: still one record
    assert sel["serving"] == ["node3"]


@given(st.sets(st.sampled_from(NAMES)), st.sets(st.sampled_from(NAMES)), st.sets(st.sampled_from(NAMES)))
def test_never_fewer_than_one_record(healthy, drained, published):
    sel = g.select(NODES, health_of(*healthy), drained, sorted(published))
    if sel["keep_current"]:
        assert not healthy and sel["serving"] == sorted(published)  # nothing is written at all
        return
    assert sel["serving"], "a write never leaves a name without records"
    assert set(sel["serving"]) <= healthy
    if healthy - drained:
        assert set(sel["serving"]) == healthy - drained and not sel["held"]


@pytest.mark.parametrize(("value", "drained"), [("true", True), ("True", True), (" yes ", True), ("1", True),
                                                ("false", False), ("", False), (None, False)])
def test_the_drain_annotation(value, drained):
    annotations = {} if value is None else {g.DRAIN_ANNOTATION: value}
    assert g.is_drained(annotations) is drained


# -- the record sets -------------------------------------------------------------------------------
_ids = itertools.count()


def zone_of(nodes, names=("@", "api", "admin"), comment="managed by honeydue.infra"):
    """The zone as playbooks/dns.yml (cf_dns_roundrobin with the cloudflare_dns defaults) leaves it."""
    return [{"id": f"r{next(_ids)}", "name": fqdn(name, ZONE), "type": "A", "content": n["ipv4"], "proxied": True,
             "ttl": 1, "comment": comment} for name in names for n in nodes]


def test_an_unhealthy_node_is_one_delete_per_name_and_nothing_else():
    cfg = config()
    before = zone_of(NODES)
    batch = plan(before, desired_sets(g.desired_records(cfg, ["node1", "node3"]), ZONE))
    removed = {r["id"] for r in before if r["content"] == "203.0.113.12"}
    assert {op["id"] for op in batch["deletes"]} == removed and len(removed) == 3
    assert batch["patches"] == [] and batch["posts"] == []
    after = apply(before, batch)
    assert g.published_nodes(cfg, after, {fqdn(n, ZONE) for n in cfg["names"]}) == ["node1", "node3"]


def test_a_restored_node_is_one_post_per_name():
    cfg = config()
    before = zone_of(NODES[::2])
    batch = plan(before, desired_sets(g.desired_records(cfg, NAMES), ZONE))
    assert batch["deletes"] == [] and batch["patches"] == []
    assert sorted((p["name"], p["content"]) for p in batch["posts"]) == sorted(
        (fqdn(n, ZONE), "203.0.113.12") for n in ("@", "api", "admin"))
    assert all(p["proxied"] and p["ttl"] == 1 and p["comment"] == "managed by honeydue.infra" for p in batch["posts"])


def test_the_guard_and_playbooks_dns_yml_write_the_same_records():
    """Same proxied/ttl/comment as the cloudflare_dns role's defaults: neither patches the other's."""
    cfg = config()
    assert plan(zone_of(NODES), desired_sets(g.desired_records(cfg, NAMES), ZONE)) == {
        "deletes": [], "patches": [], "puts": [], "posts": []}


def test_ipv6_gives_an_aaaa_set_per_name():
    cfg = config(ipv6=True)
    records = g.desired_records(cfg, ["node1", "node2"])
    assert [(r["name"], r["type"]) for r in records] == [
        ("@", "A"), ("@", "AAAA"), ("api", "A"), ("api", "AAAA"), ("admin", "A"), ("admin", "AAAA")]
    assert records[1]["values"] == ["2001:db8::1", "2001:db8::2"]


def test_a_name_outside_the_guard_is_never_touched():
    cfg = config()
    other = {"id": "mx", "name": f"mail.{ZONE}", "type": "A", "content": "198.51.100.1", "proxied": False,
             "ttl": 300, "comment": None}
    batch = plan(zone_of(NODES) + [other], desired_sets(g.desired_records(cfg, ["node1"]), ZONE))
    assert "mx" not in {op["id"] for op in batch["deletes"]}


# -- configuration ---------------------------------------------------------------------------------
def test_the_defaults():
    cfg = config()
    assert cfg["names"] == ["@", "api", "admin"] and cfg["proxied"] and cfg["ttl"] == 1
    assert cfg["identity"] == "node1"
    assert cfg["kubernetes"]["lease_namespace"] == "kube-system" and cfg["kubernetes"]["lease_name"] == "honeydue-dns-guard"
    assert (cfg["kubernetes"]["lease_duration"], cfg["kubernetes"]["renew_deadline"]) == (15, 10.0)
    assert cfg["cloudflare"]["api_base_url"] == "https://api.cloudflare.com/client/v4"


@pytest.mark.parametrize(("change", "message"), [
    ({"health": {"interval": 1, "timeout": 2}}, "must not exceed health.interval"),
    ({"health": {"fail_threshold": 0}}, "less than 1"),
    ({"health": {"fail_threshold": 2.5}}, "not an integer"),
    ({"cloudflare": {}}, "token_file is required"),
    ({"ttl": 300}, "proxied"),
    ({"kubernetes": {"lease_duration": 10, "renew_deadline": 10}}, "renew_deadline must be shorter"),
    ({"ipv6": True, "nodes": [dict(NODES[0], ipv6=None)]}, "ipv6 is required"),
    ({"nodes": [NODES[0], dict(NODES[1], ipv4=NODES[0]["ipv4"])]}, "share an ipv4"),
    ({"nodes": [dict(NODES[0], ipv4="2001:db8::1")]}, "not an IPv4"),
    ({"nodes": [dict(NODES[0], health_url="10.0.1.11:8080/ping")]}, "not an http"),
    ({"nodes": []}, "non-empty list"),
    ({"health": {"intervall": 2}}, "unknown key"),
    ({"zone": ""}, "zone is required"),
])
def test_a_bad_configuration_is_refused(change, message):
    doc = {"node_name": "node1", "zone": ZONE, "nodes": copy.deepcopy(NODES),
           "cloudflare": {"token_file": "/t"}}
    doc.update(change)
    with pytest.raises(g.ConfigError, match=message):
        g.load_config(doc)


# -- Kubernetes objects ----------------------------------------------------------------------------
def test_the_event_is_a_valid_core_v1_event_about_the_node():
    ev = g.event("node2", "DNSRecordRemoved", "node2 (203.0.113.12) taken out", "Warning", "default", "node1",
                 1_790_000_000.25, "uid-2")
    assert validate_builtin(ev) == []
    assert ev["involvedObject"] == {"apiVersion": "v1", "kind": "Node", "name": "node2", "uid": "uid-2"}
    assert ev["metadata"]["name"] == f"node2.{int(1_790_000_000.25 * 1e9):x}"
    assert (ev["source"]["component"], ev["reportingInstance"], ev["count"]) == ("honeydue-dns-guard", "node1", 1)


class LeaseStore:
    """The apiserver's handling of one Lease: create once, PUT only with the current resourceVersion."""

    def __init__(self):
        self.lease, self.rv = None, 100

    def get(self):
        return copy.deepcopy(self.lease)

    def write(self, action, body):
        if action == "create" and self.lease is not None:
            return None  # 409 AlreadyExists
        if action == "update" and (self.lease is None or body["metadata"].get("resourceVersion") != self.lease[
                "metadata"]["resourceVersion"]):
            return None  # 409 Conflict
        self.rv += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self.rv)
        return copy.deepcopy(self.lease)


def elect(elector, store, now, mono):
    """One round: read, decide, write, report."""
    action, body = elector.attempt(store.get(), now, mono)
    if action == "wait":
        return action
    answer = store.write(action, body)
    if answer is None:
        elector.failed()
        return "conflict"
    elector.succeeded(answer, mono)
    return action


def test_the_first_candidate_creates_the_lease():
    store, a = LeaseStore(), g.LeaderElector("node1", "kube-system", "honeydue-dns-guard")
    assert elect(a, store, 1000.0, 0.0) == "create"
    spec = store.lease["spec"]
    assert spec["holderIdentity"] == "node1" and spec["leaseDurationSeconds"] == 15 and spec["leaseTransitions"] == 0
    assert spec["acquireTime"] == spec["renewTime"] == g.micro_time(1000.0) == "1970-01-01T00:16:40.000000Z"
    assert validate_builtin(store.lease) == []
    assert a.leading(0.0)


def test_renewals_keep_the_acquire_time_and_carry_the_resource_version():
    store, a = LeaseStore(), g.LeaderElector("node1", "kube-system", "x")
    elect(a, store, 1000.0, 0.0)
    read = store.get()
    action, body = a.attempt(read, 1002.0, 2.0)
    assert action == "update" and body["metadata"]["resourceVersion"] == read["metadata"]["resourceVersion"]
    assert body["spec"]["acquireTime"] == g.micro_time(1000.0) and body["spec"]["renewTime"] == g.micro_time(1002.0)
    assert body["spec"]["leaseTransitions"] == 0


def test_a_held_lease_is_taken_over_only_after_it_went_unrenewed_for_its_duration():
    store = LeaseStore()
    a, b = (g.LeaderElector(n, "kube-system", "x") for n in ("node1", "node2"))
    elect(a, store, 1000.0, 0.0)
    assert elect(b, store, 1000.0, 0.0) == "wait" and not b.leading(0.0)
    elect(a, store, 1002.0, 2.0)  # a renews: b sees a new record and starts counting again
    assert elect(b, store, 1002.0, 2.0) == "wait"
    # a stops renewing (its node died). b waits 15 s from when it saw the last renewal, on its own clock.
    assert elect(b, store, 1016.0, 16.9) == "wait"
    assert elect(b, store, 1017.5, 17.5) == "update" and b.leading(17.5)
    spec = store.lease["spec"]
    assert spec["holderIdentity"] == "node2" and spec["leaseTransitions"] == 1
    assert spec["acquireTime"] == g.micro_time(1017.5)


def test_wall_clocks_are_not_trusted():
    """A renewTime far in the past (a skewed clock on the holder) does not make the Lease expired:
    only watching it stay unchanged for leaseDurationSeconds does."""
    store = LeaseStore()
    a, b = (g.LeaderElector(n, "kube-system", "x") for n in ("node1", "node2"))
    elect(a, store, 0.0, 0.0)  # renewTime 1970
    assert elect(b, store, 2_000_000_000.0, 500.0) == "wait"


def test_the_holder_stops_acting_when_it_cannot_renew_within_the_deadline():
    store, a = LeaseStore(), g.LeaderElector("node1", "kube-system", "x", lease_duration=15, renew_deadline=10)
    elect(a, store, 1000.0, 0.0)
    assert a.leading(9.9) and not a.leading(10.0)  # no renewal since: it must not act any more
    assert a.leading(9.9) != a.leading(10.5)
    # ...and it stopped before anyone else may take over (15 s after they last saw a renewal).
    assert a.renew_deadline < a.lease_duration


def test_two_candidates_racing_for_the_same_lease_cannot_both_win():
    store = LeaseStore()
    a, b = (g.LeaderElector(n, "kube-system", "x") for n in ("node1", "node2"))
    # Both find no Lease and create it at the same moment: the apiserver takes one.
    ca, cb = a.attempt(None, 1000.0, 0.0), b.attempt(None, 1000.0, 0.0)
    assert store.write(*ca) is not None and store.write(*cb) is None
    a.succeeded(store.get(), 0.0)
    b.failed()
    assert a.leading(0.1) and not b.leading(0.1)
    # Both saw the Lease expire and PUT with the same resourceVersion: again only one wins.
    read = store.get()
    read["spec"]["holderIdentity"] = "gone"
    store.lease = copy.deepcopy(read)
    a2, b2 = (g.LeaderElector(n, "kube-system", "x") for n in ("node3", "node4"))
    ua, ub = a2.attempt(store.get(), 1100.0, 50.0), b2.attempt(store.get(), 1100.0, 50.0)
    assert ua[0] == ub[0] == "wait"
    ua, ub = a2.attempt(store.get(), 1116.0, 66.0), b2.attempt(store.get(), 1116.0, 66.0)
    assert ua[0] == ub[0] == "update"
    assert store.write(*ua) is not None and store.write(*ub) is None


@given(st.lists(st.tuples(st.sampled_from([0, 1, 2]), st.floats(0.0, 6.0), st.booleans()), min_size=1, max_size=80))
@settings(max_examples=300, deadline=None)
def test_never_two_leaders_at_once(steps):
    """Any interleaving of three candidates (some rounds lost to the network): at no moment do two
    of them consider themselves leader."""
    store = LeaseStore()
    electors = [g.LeaderElector(f"node{i}", "kube-system", "x") for i in range(3)]
    mono = 0.0
    for who, delay, reachable in steps:
        mono += delay
        if reachable:
            elect(electors[who], store, 1000.0 + mono, mono)
        assert sum(e.leading(mono) for e in electors) <= 1


def test_a_released_lease_is_taken_at_once():
    store = LeaseStore()
    a, b = (g.LeaderElector(n, "kube-system", "x") for n in ("node1", "node2"))
    elect(a, store, 1000.0, 0.0)
    assert elect(b, store, 1001.0, 1.0) == "wait"
    body = a.release(store.get(), 1002.0)
    assert body["spec"]["holderIdentity"] == "" and body["spec"]["leaseDurationSeconds"] == 1
    assert store.write("update", body) is not None
    a.released()
    assert not a.leading(2.0)
    assert elect(b, store, 1002.5, 2.5) == "update" and b.leading(2.5)
    assert store.lease["spec"]["leaseTransitions"] == 1
    assert g.LeaderElector("node3", "kube-system", "x").release(store.get(), 1003.0) is None  # not ours

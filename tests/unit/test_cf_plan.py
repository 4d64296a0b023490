"""cf_dns_roundrobin's planner: exact batches, safety, convergence from any starting zone, Cloudflare's
TTL rule for proxied records, and converging after failed or unanswered writes without resending them."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.honeydue.infra.plugins.module_utils._cf_plan import (
    ConvergeError, PlanError, apply, by_name, chunks, converge, desired_sets, fqdn, is_empty, landed, mixed_proxied, plan)

ZONE = "honeydue.example"
IPS = ["203.0.113.10", "203.0.113.11", "203.0.113.12", "203.0.113.13", "203.0.113.14"]
_ids = itertools.count()


def rec(name, content, proxied=True, ttl=1, comment=None, rtype="A"):
    return {"id": f"r{next(_ids)}", "name": fqdn(name, ZONE), "type": rtype, "content": content,
            "proxied": proxied, "ttl": ttl, "comment": comment}


def want(*sets, state="present", allow_empty=False):
    return desired_sets([dict({"proxied": True, "ttl": 1}, **s) for s in sets], ZONE, state, allow_empty)


def test_names_resolve_in_the_zone():
    assert fqdn("@", ZONE) == ZONE and fqdn("api", ZONE) == "api.honeydue.example"
    assert fqdn("API.honeydue.example.", ZONE) == "api.honeydue.example"
    with pytest.raises(PlanError, match="fully qualified"):
        fqdn("api", None)


def test_converge_from_empty_posts_every_ip():
    batch = plan([], want({"name": "api", "values": IPS[:3]}))
    assert batch["deletes"] == batch["patches"] == [] and len(batch["posts"]) == 3
    assert {p["content"] for p in batch["posts"]} == set(IPS[:3])
    assert all(p["proxied"] is True and p["ttl"] == 1 and p["name"] == "api.honeydue.example" for p in batch["posts"])


def test_nothing_differs_nothing_sent():
    existing = [rec("api", ip) for ip in IPS[:3]]
    assert is_empty(plan(existing, want({"name": "api", "values": list(reversed(IPS[:3]))})))


def test_one_ip_replaced_is_one_patch_not_delete_and_post():
    existing = [rec("api", ip) for ip in IPS[:3]]
    batch = plan(existing, want({"name": "api", "values": [IPS[0], IPS[1], IPS[4]]}))
    assert batch == {"deletes": [], "patches": [{"id": existing[2]["id"], "content": IPS[4]}], "puts": [], "posts": []}


def test_only_settings_differ_is_a_patch_of_those_fields():
    existing = [rec("api", IPS[0], proxied=False, ttl=300)]
    batch = plan(existing, want({"name": "api", "values": [IPS[0]], "comment": "k3s nodes"}))
    assert batch["patches"] == [{"id": existing[0]["id"], "proxied": True, "ttl": 1, "comment": "k3s nodes"}]
    assert batch["deletes"] == batch["posts"] == []


def test_prune_removes_extra_records_and_duplicates():
    existing = [rec("api", IPS[0]), rec("api", IPS[0]), rec("api", IPS[1])]
    batch = plan(existing, want({"name": "api", "values": [IPS[0]]}))
    assert sorted(d["id"] for d in batch["deletes"]) == sorted([existing[1]["id"], existing[2]["id"]])


def test_without_prune_extra_records_stay():
    existing = [rec("api", IPS[3])]
    batch = plan(existing, want({"name": "api", "values": [IPS[0]]}), prune=False)
    assert batch["deletes"] == [] and [p["content"] for p in batch["posts"]] == [IPS[0]]


def test_other_names_and_types_are_never_touched():
    existing = [rec("www", IPS[0]), rec("api", "2001:db8::1", rtype="AAAA"), rec("api", IPS[0])]
    assert is_empty(plan(existing, want({"name": "api", "values": [IPS[0]]})))


def test_absent_removes_listed_values_or_all():
    existing = [rec("old", IPS[0]), rec("old", IPS[1])]
    listed = want({"name": "old", "values": [IPS[0]]}, state="absent")
    assert plan(existing, listed, state="absent")["deletes"] == [{"id": existing[0]["id"]}]
    assert len(plan(existing, want({"name": "old"}, state="absent"), state="absent")["deletes"]) == 2


def test_empty_values_are_refused_naming_the_record():
    with pytest.raises(PlanError, match="api.honeydue.example A: values is empty"):
        want({"name": "api", "values": []})
    assert want({"name": "api", "values": []}, allow_empty=True)


@pytest.mark.parametrize("rtype,value,msg", [
    ("A", "203.0.113.256", "not an IP address"),
    ("A", "2001:db8::1", "is an IPv6 address"),
    ("AAAA", "203.0.113.1", "is an IPv4 address"),
])
def test_invalid_ips_fail_before_any_call(rtype, value, msg):
    with pytest.raises(PlanError, match=msg):
        want({"name": "api", "type": rtype, "values": [value]})


def test_mixed_proxied_names_are_reported():
    records = [rec("api", IPS[0], proxied=True), rec("api", IPS[1], proxied=False), rec("admin", IPS[0])]
    keys = {("api.honeydue.example", "A"), ("admin.honeydue.example", "A")}
    assert mixed_proxied(records, keys) == ["api.honeydue.example"]


def test_chunks_keep_the_global_order_and_size():
    batch = {"deletes": [{"id": f"d{i}"} for i in range(150)], "patches": [{"id": f"p{i}"} for i in range(100)],
             "puts": [], "posts": [{"content": str(i)} for i in range(10)]}
    parts = list(chunks(batch, 200))
    assert [sum(len(v) for v in p.values()) for p in parts] == [200, 60]
    assert len(parts[0]["deletes"]) == 150 and len(parts[0]["patches"]) == 50 and not parts[0]["posts"]


# -- property: from any starting zone ------------------------------------------------------------
_names = st.sampled_from(["@", "api", "admin"])
_existing = st.lists(st.tuples(_names, st.sampled_from(IPS), st.booleans(), st.sampled_from([1, 300])), max_size=10)
_desired = st.dictionaries(_names, st.lists(st.sampled_from(IPS), min_size=1, max_size=4, unique=True), min_size=1)


def _run_batch_stepwise(existing, batch):
    """Apply a batch one operation at a time in Cloudflare's order, yielding each intermediate zone."""
    state = {r["id"]: dict(r) for r in existing}
    yield list(state.values())
    for op in batch["deletes"]:
        state.pop(op["id"])
        yield list(state.values())
    for op in batch["patches"]:
        state[op["id"]].update({k: v for k, v in op.items() if k != "id"})
        yield list(state.values())
    for n, op in enumerate(batch["posts"]):
        state[f"new{n}"] = dict(op, id=f"new{n}")
        yield list(state.values())


@settings(max_examples=300, deadline=None)
@given(_existing, _desired)
def test_any_zone_converges_in_one_batch_safely(existing_rows, desired_map):
    existing = [rec(n, ip, proxied=p, ttl=t) for n, ip, p, t in existing_rows]
    desired = want(*({"name": n, "values": v} for n, v in desired_map.items()))
    batch = plan(existing, desired)
    after = apply(existing, batch)
    # Exactly the desired set, with the desired settings.
    for (name, rtype), spec in desired.items():
        rows = [r for r in after if r["name"] == name and r["type"] == rtype]
        assert sorted(r["content"] for r in rows) == spec["values"]
        assert all(r["proxied"] is True and r["ttl"] == 1 for r in rows)
    # A second plan is empty.
    assert is_empty(plan(after, desired))
    # No name that should have records is ever left without one during the batch.
    had = {r["name"] for r in existing}
    for zone in _run_batch_stepwise(existing, batch):
        for name, _ in desired:
            if name in had:
                assert any(r["name"] == name for r in zone), f"{name} had no record mid-batch"
    # A result per name for the module's return value.
    assert set(by_name(after, desired)) == {n for n, _ in desired}


# -- proxied records always have TTL 1 (Auto) ----------------------------------------------------
def test_proxied_with_another_ttl_is_refused_before_any_call():
    with pytest.raises(PlanError, match=r"api.honeydue.example A: ttl 300 with proxied=true; .*TTL 1 \(Auto\)"):
        want({"name": "api", "values": IPS[:1], "proxied": True, "ttl": 300})
    assert want({"name": "api", "values": IPS[:1], "proxied": False, "ttl": 300})


def test_a_proxied_records_ttl_is_never_patched():
    # proxied not managed (None) and a TTL Cloudflare would ignore for the proxied record: no patch.
    existing = [rec("api", IPS[0], proxied=True, ttl=1)]
    desired = desired_sets([{"name": "api", "values": [IPS[0]], "ttl": 300}], ZONE)
    assert is_empty(plan(existing, desired))
    # A record stored before with another TTL (as the API answers it for a proxied record: 1) is left alone.
    assert is_empty(plan([rec("api", IPS[0], proxied=True, ttl=300)], want({"name": "api", "values": [IPS[0]]})))


def test_unproxying_writes_the_ttl_and_proxying_writes_1():
    proxied = [rec("api", IPS[0], proxied=True, ttl=1)]
    batch = plan(proxied, want({"name": "api", "values": [IPS[0]], "proxied": False, "ttl": 300}))
    assert batch["patches"] == [{"id": proxied[0]["id"], "proxied": False, "ttl": 300}]
    plain = [rec("api", IPS[0], proxied=False, ttl=300)]
    assert plan(plain, want({"name": "api", "values": [IPS[0]]}))["patches"] == [
        {"id": plain[0]["id"], "proxied": True, "ttl": 1}]


def test_posts_of_proxied_records_carry_ttl_1_and_apply_stores_1():
    desired = desired_sets([{"name": "api", "values": [IPS[0]], "ttl": 600}], ZONE)  # proxied not given: posted proxied
    batch = plan([], desired)
    assert batch["posts"] == [{"name": "api.honeydue.example", "type": "A", "content": IPS[0], "proxied": True, "ttl": 1}]
    assert [r["ttl"] for r in apply([rec("x", IPS[1], proxied=True, ttl=300)], batch)] == [1, 1]


_ttls = st.sampled_from([None, 1, 60, 300, 3600])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_names, st.sampled_from(IPS), st.booleans(), st.sampled_from([1, 120, 300])), max_size=8),
       st.dictionaries(_names, st.tuples(st.lists(st.sampled_from(IPS), min_size=1, max_size=3, unique=True),
                                         st.sampled_from([True, False, None]), _ttls), min_size=1))
def test_second_run_is_empty_whatever_proxied_and_ttl(existing_rows, desired_map):
    """Against Cloudflare's rule (proxied records stored with TTL 1), any valid input converges in one run."""
    existing = [rec(n, ip, proxied=p, ttl=1 if p else t) for n, ip, p, t in existing_rows]
    sets = [{"name": n, "values": v, "proxied": p, "ttl": t} for n, (v, p, t) in desired_map.items()]
    sets = [s for s in sets if not (s["proxied"] and s["ttl"] not in (None, 1))]  # refused (tested above)
    if not sets:
        return
    desired = desired_sets(sets, ZONE)
    after = apply(existing, plan(existing, desired))
    assert all(r["ttl"] == 1 for r in after if r.get("proxied"))
    assert is_empty(plan(after, desired))


# -- landed: what a lost answer applied -----------------------------------------------------------
def test_landed_reads_the_operations_off_the_zone_listed_again():
    before = [rec("api", IPS[0]), rec("api", IPS[1]), rec("api", IPS[2])]
    part = {"deletes": [{"id": before[0]["id"]}], "patches": [{"id": before[1]["id"], "content": IPS[3]}],
            "puts": [], "posts": [{"name": "api.honeydue.example", "type": "A", "content": IPS[4], "proxied": True, "ttl": 1}]}
    assert landed(before, part, apply(before, part)) == part
    assert landed(before, part, before) == {"deletes": [], "patches": [], "puts": [], "posts": []}
    # A proxied record's TTL reads back as 1 whatever was written.
    ttl_patch = {"deletes": [], "patches": [{"id": before[2]["id"], "ttl": 300}], "puts": [], "posts": []}
    assert landed(before, ttl_patch, before)["patches"] == ttl_patch["patches"]


# -- converge: plan, send, and after a failed or unanswered write list again ----------------------------
class ApiError(Exception):
    def __init__(self, outcome, code=None):
        super().__init__(f"{outcome} {code}")
        self.outcome = outcome
        self.code = code


class FakeZone:
    """Cloudflare's batch semantics in memory: one transaction, deletes/patches/puts/posts in that order,
    81044 for a missing record, 81058 for an identical record, proxied records stored with TTL 1.
    ``faults`` scripts the next sends: "ok", "before" (lost, not applied), "after" (applied, answer
    lost), "5xx" (not applied, unknown outcome), "refused" (400), "list" (the next listing fails)."""

    def __init__(self, records, faults=()):
        self.records = {r["id"]: dict(r) for r in records}
        self.faults = list(faults)
        self.sent, self.lists, self._ids = [], 0, itertools.count()
        self.fail_list = False
        self.views = []  # listings to answer first (a view of the zone that is already stale)

    def list(self):
        self.lists += 1
        if self.fail_list:
            raise ApiError("unknown")
        if self.views:
            return self.views.pop(0)
        return [dict(r) for r in self.records.values()]

    def send(self, part):
        self.sent.append(part)
        fault = self.faults.pop(0) if self.faults else "ok"
        if fault == "list":
            self.fail_list, fault = True, "after"
        if fault in ("before", "5xx"):
            raise ApiError("unknown")
        if fault == "refused":
            raise ApiError("refused", 9000)
        work = {k: dict(v) for k, v in self.records.items()}
        for op in part["deletes"]:
            if work.pop(op["id"], None) is None:
                raise ApiError("stale", 81044)
        for op in part["patches"]:
            if op["id"] not in work:
                raise ApiError("stale", 81044)
            work[op["id"]].update({k: v for k, v in op.items() if k != "id"})
        for op in part["posts"]:
            if any((r["name"], r["type"], r["content"]) == (op["name"], op["type"], op["content"]) for r in work.values()):
                raise ApiError("stale", 81058)
            rid = f"cf{next(self._ids)}"
            work[rid] = dict(op, id=rid, comment=op.get("comment"))
        for r in work.values():
            r["ttl"] = 1 if r.get("proxied") else r.get("ttl", 1)
        self.records = work
        if fault == "after":
            raise ApiError("unknown")


def _converge(zone, desired, **kwargs):
    return converge(zone.list, zone.send, desired, api_errors=(ApiError,), **kwargs)


DESIRED = {"name": "api", "values": IPS[:3]}


def test_converge_sends_one_batch_and_reports_it():
    zone = FakeZone([])
    done = _converge(zone, want(DESIRED))
    assert done["changed"] and done["replans"] == 0 and len(zone.sent) == 1 and zone.lists == 1
    assert done["operations"] == zone.sent[0] and len(done["operations"]["posts"]) == 3


def test_converge_in_check_mode_sends_nothing():
    zone = FakeZone([])
    done = _converge(zone, want(DESIRED), check_mode=True)
    assert done["changed"] and zone.sent == [] and len(done["operations"]["posts"]) == 3


def test_a_lost_answer_of_a_landed_batch_is_read_back_not_resent():
    zone = FakeZone([rec("api", IPS[3]), rec("api", IPS[4]), rec("api", IPS[0])], faults=["after"])
    done = _converge(zone, want({"name": "api", "values": IPS[:2]}))
    assert len(zone.sent) == 1 and zone.lists == 2  # listed again, found the zone as desired
    assert done["changed"] and done["operations"] == zone.sent[0] and done["replans"] == 0
    assert sorted(r["content"] for r in zone.records.values()) == IPS[:2]


def test_a_batch_lost_before_it_landed_is_planned_again():
    zone = FakeZone([], faults=["before"])
    done = _converge(zone, want(DESIRED))
    assert len(zone.sent) == 2 and done["replans"] == 1 and zone.lists == 2
    assert done["operations"] == zone.sent[1]
    assert sorted(r["content"] for r in zone.records.values()) == IPS[:3]


def test_a_stale_refusal_is_planned_again_from_the_zone_as_it_is():
    zone = FakeZone([rec("api", IPS[0])])
    zone.views = [[]]  # the first listing predates someone else's record for IPS[0]
    done = _converge(zone, want(DESIRED))
    assert [len(s["posts"]) for s in zone.sent] == [3, 2] and done["replans"] == 1
    assert sorted(r["content"] for r in zone.records.values()) == IPS[:3]


def test_a_refusal_after_earlier_chunks_reports_what_landed():
    zone = FakeZone([], faults=["ok", "refused"])
    with pytest.raises(ConvergeError) as err:
        _converge(zone, want(DESIRED, {"name": "admin", "values": IPS[:3]}), batch_size=3)
    assert err.value.changed and err.value.applied == zone.sent[0] and err.value.cause.code == 9000
    assert len(zone.records) == 3 and zone.lists == 1  # a plain refusal is not re-planned


def test_a_refusal_before_anything_landed_is_not_a_change():
    zone = FakeZone([], faults=["refused"])
    with pytest.raises(ConvergeError) as err:
        _converge(zone, want(DESIRED))
    assert not err.value.changed and is_empty(err.value.applied) and zone.records == {}


def test_new_plans_are_bounded():
    zone = FakeZone([], faults=["before"] * 10)
    with pytest.raises(ConvergeError) as err:
        _converge(zone, want(DESIRED), max_replans=2)
    assert len(zone.sent) == 3 and err.value.replans == 2 and err.value.pending == 3
    assert not err.value.changed and err.value.cause.outcome == "unknown"


def test_max_replans_0_still_reads_back_a_landed_batch():
    zone = FakeZone([], faults=["after"])
    assert _converge(zone, want(DESIRED), max_replans=0)["changed"]


def test_an_unanswered_write_that_cannot_be_read_back_may_have_changed():
    zone = FakeZone([], faults=["list"])
    with pytest.raises(ConvergeError) as err:
        _converge(zone, want(DESIRED))
    assert err.value.changed and err.value.relist_error is not None and is_empty(err.value.applied)


_faults = st.lists(st.sampled_from(["ok", "before", "after", "5xx"]), max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_names, st.sampled_from(IPS), st.booleans()), max_size=8, unique_by=lambda t: t[:2]),
       _desired, _faults, st.integers(min_value=1, max_value=4), st.integers(min_value=0, max_value=4))
def test_lost_answers_never_duplicate_and_converge_within_the_bound(existing_rows, desired_map, faults, size, max_replans):
    """Whatever answers are lost (before or after applying), the zone never holds a duplicate, ends
    exactly as desired when the faults fit in max_replans, and the result says truthfully what changed."""
    existing = [rec(n, ip, proxied=p) for n, ip, p in existing_rows]
    desired = want(*({"name": n, "values": v} for n, v in desired_map.items()))
    zone = FakeZone(existing, faults)
    start = {r["id"]: dict(r) for r in existing}
    unanswered = sum(1 for f in faults if f != "ok")
    try:
        done = _converge(zone, desired, batch_size=size, max_replans=max_replans)
    except ConvergeError as err:
        assert unanswered > max_replans  # only when the faults outnumber the new plans allowed
        done = {"changed": err.changed, "operations": err.applied}
    else:
        for (name, rtype), spec in desired.items():
            assert sorted(r["content"] for r in zone.records.values() if (r["name"], r["type"]) == (name, rtype)) == spec["values"]
        assert is_empty(plan(list(zone.records.values()), desired))
        assert len(zone.sent) <= len(list(chunks(plan(existing, desired), size))) + unanswered
    identities = [(r["name"], r["type"], r["content"]) for r in zone.records.values()]
    assert len(identities) == len(set(identities))  # never a duplicate
    assert done["changed"] == (zone.records != start)
    ops = done["operations"]
    assert {d["id"] for d in ops["deletes"]} == set(start) - set(zone.records)
    assert len(ops["posts"]) == len(set(zone.records) - set(start))

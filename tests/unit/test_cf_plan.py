"""cf_dns_roundrobin's planner: exact batches, safety, and convergence from any starting zone."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.honeydue.infra.plugins.module_utils._cf_plan import (
    PlanError, apply, by_name, chunks, desired_sets, fqdn, is_empty, mixed_proxied, plan)

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

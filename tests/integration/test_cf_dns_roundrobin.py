"""honeydue.infra.cf_dns_roundrobin against the Cloudflare stand-in: exact calls, safety, failures."""
from __future__ import annotations

import time

import pytest

from tests.conftest import TOKEN

ZONE = "honeydue.example"
NODES = ["203.0.113.10", "203.0.113.11", "203.0.113.12"]
NAMES = ["@", "api", "admin"]


@pytest.fixture
def dns(cloudflare_api, playbook):
    """``dns(records, **module_args)`` runs one cf_dns_roundrobin task and returns its result."""
    base = f"{cloudflare_api.url}/client/v4"
    zone_id = cloudflare_api.zone_by_name(ZONE)["id"]

    def run(records=None, check=False, extra_args=(), env=None, **args):
        task = {"name": "dns", "honeydue.infra.cf_dns_roundrobin": dict(
            {"zone": ZONE, "api_base_url": base, "records": records if records is not None else
             [{"name": n, "values": NODES} for n in NAMES]}, **args)}
        cli = list(extra_args) + (["--check"] if check else []) + ["--diff"]
        result = playbook([{"name": "dns", "hosts": "localhost", "gather_facts": False, "tasks": [task]}],
                          env=dict({"CLOUDFLARE_API_TOKEN": TOKEN}, **(env or {})), extra_args=cli)
        run.last = result
        return result.task_results("dns")

    run.zone_id = zone_id
    return run


def zone_records(cf, zone_id):
    return sorted((r["name"], r["content"], r["proxied"]) for r in cf.records[zone_id].values())


def paths(cf, zone_id):
    return [s.replace(zone_id, "{zone}") for s in cf.sequence()]


CONVERGE = ["GET /client/v4/zones", "GET /client/v4/zones/{zone}/dns_records",
            "POST /client/v4/zones/{zone}/dns_records/batch"]
READ_ONLY = CONVERGE[:2]


def test_converge_from_empty_is_one_lookup_one_list_one_batch(cloudflare_api, dns):
    res = dns()
    assert res["changed"] and res["api_calls"] == 3
    assert paths(cloudflare_api, dns.zone_id) == CONVERGE
    assert len(res["operations"]["posts"]) == 9
    assert zone_records(cloudflare_api, dns.zone_id) == sorted(
        (n, ip, True) for n in (ZONE, f"api.{ZONE}", f"admin.{ZONE}") for ip in NODES)
    assert [r["content"] for r in res["records"][f"api.{ZONE}"]] == NODES


def test_second_run_reads_twice_and_writes_nothing(cloudflare_api, dns):
    dns()
    cloudflare_api.log.clear()
    res = dns()
    assert not res["changed"] and res["api_calls"] == 2
    assert paths(cloudflare_api, dns.zone_id) == READ_ONLY


def test_one_node_replaced_is_one_patch_per_name(cloudflare_api, dns):
    dns()
    before_ids = set(cloudflare_api.records[dns.zone_id])
    cloudflare_api.log.clear()
    replaced = NODES[:2] + ["203.0.113.99"]
    res = dns([{"name": n, "values": replaced} for n in NAMES])
    assert paths(cloudflare_api, dns.zone_id) == CONVERGE
    ops = res["operations"]
    assert ops["deletes"] == [] and ops["posts"] == [] and len(ops["patches"]) == 3
    assert all(p == {"id": p["id"], "content": "203.0.113.99"} for p in ops["patches"])
    assert set(cloudflare_api.records[dns.zone_id]) == before_ids  # same records, rewritten in place
    assert {r[1] for r in zone_records(cloudflare_api, dns.zone_id)} == set(replaced)


def test_prune_removes_a_stale_ip_and_leaves_other_names_alone(cloudflare_api, dns):
    dns()
    dns([{"name": "www", "values": ["198.51.100.7"]}])  # another name: never touched by the next run
    res = dns([{"name": n, "values": NODES[:2]} for n in NAMES])
    assert len(res["operations"]["deletes"]) == 3 and not res["operations"]["posts"]
    contents = {(n, ip) for n, ip, _ in zone_records(cloudflare_api, dns.zone_id)}
    assert (f"api.{ZONE}", NODES[2]) not in contents and (f"www.{ZONE}", "198.51.100.7") in contents


def test_absent_removes_the_names(cloudflare_api, dns):
    dns()
    res = dns([{"name": "admin"}], state="absent")
    assert len(res["operations"]["deletes"]) == 3
    assert not [r for r in zone_records(cloudflare_api, dns.zone_id) if r[0] == f"admin.{ZONE}"]


def test_check_mode_reports_the_batch_and_changes_nothing(cloudflare_api, dns):
    res = dns(check=True)
    assert res["changed"] and len(res["operations"]["posts"]) == 9
    assert paths(cloudflare_api, dns.zone_id) == READ_ONLY
    assert cloudflare_api.records[dns.zone_id] == {}
    assert res["diff"]["after"][f"api.{ZONE}"] == NODES and res["diff"]["before"] == {
        ZONE: [], f"admin.{ZONE}": [], f"api.{ZONE}": []}


def test_rate_limit_is_waited_out_then_the_batch_lands(cloudflare_api, dns):
    cloudflare_api.inject("rate_limit", method="POST", path="/batch$", times=1)
    res = dns()
    assert res["changed"] and res["api_calls"] == 4
    batch_calls = cloudflare_api.calls("POST", "/batch$")
    assert [c.status for c in batch_calls] == [429, 200] and batch_calls[0].fault
    assert len(cloudflare_api.records[dns.zone_id]) == 9


def test_a_failing_batch_leaves_the_zone_untouched_and_reports_cloudflare_errors(cloudflare_api, dns):
    # A CNAME at admin. makes posting A records there fail (81054) - and with it the whole batch.
    zone = cloudflare_api.zone_by_name(ZONE)
    cloudflare_api._apply_post(zone, cloudflare_api.records[zone["id"]],
                               {"type": "CNAME", "name": f"admin.{ZONE}", "content": "elsewhere.example", "ttl": 1})
    before = zone_records(cloudflare_api, dns.zone_id)
    res = dns()
    assert res["failed"]
    assert res["failure"]["status"] == 400 and res["failure"]["path"].endswith("/dns_records/batch")
    assert [e["code"] for e in res["failure"]["errors"]] == [81054]
    assert "81054" in res["msg"]
    assert zone_records(cloudflare_api, dns.zone_id) == before  # api. and the apex were not written either


def test_empty_values_are_refused_before_any_call(cloudflare_api, dns):
    res = dns([{"name": "api", "values": []}])
    assert res["failed"] and "api.honeydue.example A: values is empty" in res["msg"]
    assert cloudflare_api.sequence() == []


def test_invalid_ip_is_refused_before_any_call(cloudflare_api, dns):
    res = dns([{"name": "api", "values": ["203.0.113.300"]}])
    assert res["failed"] and "not an IP address" in res["msg"] and cloudflare_api.sequence() == []


def test_wrong_token_is_a_clear_error_and_the_token_never_shows(cloudflare_api, dns):
    res = dns(env={"CLOUDFLARE_API_TOKEN": "wrong-token-5f3a"}, extra_args=["-vvv"])
    assert res["failed"] and res["failure"]["status"] == 403
    assert res["failure"]["errors"][0]["code"] == 9109 and "Invalid access token" in res["msg"]
    assert "wrong-token-5f3a" not in dns.last.stdout + dns.last.stderr


def test_the_token_never_shows_even_at_vvv(dns):
    dns(extra_args=["-vvv"])
    assert dns.last.rc == 0
    assert TOKEN not in dns.last.stdout + dns.last.stderr


def test_zone_id_saves_the_lookup(cloudflare_api, dns):
    res = dns([{"name": f"api.{ZONE}", "values": NODES}], zone=None, zone_id=dns.zone_id)
    assert res["changed"] and paths(cloudflare_api, dns.zone_id) == CONVERGE[1:]


def test_server_errors_are_retried_with_back_off(cloudflare_api, dns):
    cloudflare_api.inject("server_error", method="GET", path="/dns_records$", times=2)
    res = dns()
    assert res["changed"]
    assert [c.status for c in cloudflare_api.calls("GET", "/dns_records$")] == [500, 500, 200]


def test_retrying_stops_at_max_wait_with_cloudflares_answer(cloudflare_api, dns):
    cloudflare_api.inject("rate_limit", method="GET", path="/zones$", times=10)
    res = dns(max_wait=1.5)  # the stand-in says retry-after: 1, so one retry fits, the second does not
    assert res["failed"] and res["failure"]["status"] == 429
    assert res["failure"]["errors"][0]["code"] == 971
    assert [c.status for c in cloudflare_api.log] == [429, 429]
    assert res["api_calls"] == 2


def desired_zone():
    return sorted((n, ip, True) for n in (ZONE, f"api.{ZONE}", f"admin.{ZONE}") for ip in NODES)


def seed(cf, name, content, **fields):
    zone = cf.zone_by_name(ZONE)
    record, refusal = cf._apply_post(zone, cf.records[zone["id"]], dict(
        {"type": "A", "name": f"{name}.{ZONE}" if name != "@" else ZONE, "content": content, "ttl": 1}, **fields))
    assert refusal is None
    return record


# -- proxied records always have TTL 1 (Auto) ------------------------------------------------------
def test_proxied_records_converge_and_a_second_run_changes_nothing(cloudflare_api, dns):
    seed(cloudflare_api, "api", NODES[0], proxied=False, ttl=300)  # a DNS-only record with its own TTL
    first = dns([{"name": n, "values": NODES, "proxied": True, "ttl": 1} for n in NAMES])
    assert first["changed"] and dns.last.rc == 0
    assert first["operations"]["patches"] == [{"id": first["operations"]["patches"][0]["id"], "proxied": True, "ttl": 1}]
    assert {(r["proxied"], r["ttl"]) for r in cloudflare_api.records[dns.zone_id].values()} == {(True, 1)}
    cloudflare_api.log.clear()
    second = dns([{"name": n, "values": NODES, "proxied": True, "ttl": 1} for n in NAMES])
    assert not second["changed"] and dns.last.changed() == 0
    assert paths(cloudflare_api, dns.zone_id) == READ_ONLY


def test_proxied_with_another_ttl_is_refused_before_any_call(cloudflare_api, dns):
    res = dns([{"name": "api", "values": NODES, "proxied": True, "ttl": 300}])
    assert res["failed"] and "ttl 300 with proxied=true" in res["msg"] and "TTL 1 (Auto)" in res["msg"]
    assert cloudflare_api.sequence() == []


def test_dns_only_records_keep_their_ttl_and_converge(cloudflare_api, dns):
    records = [{"name": "origin", "values": NODES, "proxied": False, "ttl": 300}]
    assert dns(records)["changed"]
    assert {(r["proxied"], r["ttl"]) for r in cloudflare_api.records[dns.zone_id].values()} == {(False, 300)}
    assert not dns(records)["changed"] and dns.last.changed() == 0


# -- 429: Cloudflare blocks for up to 5 minutes --------------------------------------------------------
def test_a_rate_limit_longer_than_max_wait_fails_at_once_naming_the_wait(cloudflare_api, dns):
    cloudflare_api.inject(method="GET", path="/zones$", response=cloudflare_api.rate_limited(300), times=5)
    started = time.monotonic()
    res = dns()
    assert time.monotonic() - started < 30  # did not sleep 300 s (nor 60)
    assert res["failed"] and res["failure"]["status"] == 429 and res["failure"]["retry_after"] == 300
    assert "wait 300 s (retry-after)" in res["msg"] and "max_wait=60 s" in res["msg"]
    assert [c.status for c in cloudflare_api.log] == [429] and res["api_calls"] == 1


def test_the_account_rate_limit_stops_the_run_before_the_write(cloudflare_api, dns):
    cloudflare_api.configure_rate_limit(limit=2, window=300, block=300)  # 1,200 per 5 minutes, scaled down
    res = dns()
    assert res["failed"] and res["failure"]["status"] == 429 and res["failure"]["errors"][0]["code"] == 971
    assert res["failure"]["outcome"] == "refused" and not res["changed"]
    assert "wait 300 s" in res["msg"] and "max_wait" in res["msg"]
    assert cloudflare_api.records[dns.zone_id] == {}


# -- writes are never resent blindly -----------------------------------------------------------------
@pytest.mark.parametrize("drop", ["after", "before"])
def test_a_batch_whose_answer_is_lost_converges_without_duplicates(cloudflare_api, dns, drop):
    cloudflare_api.inject(method="POST", path="/batch$", drop=drop)
    res = dns()
    assert dns.last.rc == 0 and res["changed"], dns.last.stdout[-3000:]
    assert zone_records(cloudflare_api, dns.zone_id) == desired_zone()  # exactly the desired set: no duplicates
    batches = cloudflare_api.calls("POST", "/batch$")
    if drop == "after":  # it landed: read back from the zone, never sent again
        assert [c.status for c in batches] == [0] and res["replans"] == 0
        assert paths(cloudflare_api, dns.zone_id) == CONVERGE + ["GET /client/v4/zones/{zone}/dns_records"]
    else:  # it did not land: planned again from the zone listed again, and sent
        assert [c.status for c in batches] == [0, 200] and res["replans"] == 1
    assert len(res["operations"]["posts"]) == 9
    cloudflare_api.log.clear()
    assert not dns()["changed"] and dns.last.changed() == 0
    assert paths(cloudflare_api, dns.zone_id) == READ_ONLY


@pytest.mark.parametrize("drop", ["after", "before"])
def test_a_lost_answer_with_deletes_and_patches_converges(cloudflare_api, dns, drop):
    dns()
    seed(cloudflare_api, "api", "203.0.113.50")  # a stale extra: to be deleted
    replaced = NODES[:2] + ["203.0.113.99"]  # one node replaced: patches
    cloudflare_api.inject(method="POST", path="/batch$", drop=drop)
    res = dns([{"name": n, "values": replaced} for n in NAMES])
    assert dns.last.rc == 0 and res["changed"], dns.last.stdout[-3000:]
    assert len(res["operations"]["deletes"]) == 1 and len(res["operations"]["patches"]) == 3
    assert zone_records(cloudflare_api, dns.zone_id) == sorted(
        (n, ip, True) for n in (ZONE, f"api.{ZONE}", f"admin.{ZONE}") for ip in replaced)
    assert not dns([{"name": n, "values": replaced} for n in NAMES])["changed"] and dns.last.changed() == 0


def test_a_5xx_on_the_batch_is_planned_again_not_resent(cloudflare_api, dns):
    cloudflare_api.inject("server_error", method="POST", path="/batch$")
    res = dns()
    assert res["changed"] and res["replans"] == 1
    assert [c.status for c in cloudflare_api.calls("POST", "/batch$")] == [500, 200]
    assert [c.status for c in cloudflare_api.calls("GET", "/dns_records$")] == [200, 200]  # listed again in between
    assert zone_records(cloudflare_api, dns.zone_id) == desired_zone()


def test_a_lost_answer_between_chunks_converges_and_reports_every_operation(cloudflare_api, dns):
    cloudflare_api.inject(method="POST", path="/batch$")  # the first chunk is answered
    cloudflare_api.inject(method="POST", path="/batch$", drop="after")  # the second lands, unanswered
    res = dns(batch_size=3)
    assert dns.last.rc == 0 and res["changed"] and res["replans"] == 1
    assert [c.status for c in cloudflare_api.calls("POST", "/batch$")] == [200, 0, 200]
    assert len(res["operations"]["posts"]) == 9
    assert zone_records(cloudflare_api, dns.zone_id) == desired_zone()
    assert not dns(batch_size=3)["changed"] and dns.last.changed() == 0


def test_a_failing_chunk_reports_what_landed_before_it(cloudflare_api, dns):
    # api. holds a CNAME: its A records are refused (81054). admin. (first chunk) lands before that.
    seed(cloudflare_api, "api", "elsewhere.example", type="CNAME")
    res = dns(batch_size=3)
    assert res["failed"] and res["changed"] is True and dns.last.rc != 0
    assert [e["code"] for e in res["failure"]["errors"]] == [81054] and res["failure"]["outcome"] == "refused"
    assert [p["content"] for p in res["operations"]["posts"]] == NODES
    assert {p["name"] for p in res["operations"]["posts"]} == {f"admin.{ZONE}"}
    assert "3 operation(s) applied before the failure" in res["msg"]
    assert sorted(r[0] for r in zone_records(cloudflare_api, dns.zone_id) if r[1] != "elsewhere.example") == [
        f"admin.{ZONE}"] * 3


def test_lost_answers_past_max_replans_fail_clearly(cloudflare_api, dns):
    cloudflare_api.inject(method="POST", path="/batch$", drop="before", times=5)
    res = dns(max_replans=1)
    assert res["failed"] and not res["changed"] and res["failure"]["status"] is None
    assert res["failure"]["outcome"] == "unknown" and "may or may not have been applied" in res["msg"]
    assert "max_replans" in res["msg"] and res["replans"] == 1
    assert len(cloudflare_api.calls("POST", "/batch$")) == 2
    assert cloudflare_api.records[dns.zone_id] == {}

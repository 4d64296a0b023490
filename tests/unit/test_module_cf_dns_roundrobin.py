"""cf_dns_roundrobin's entry point, main(), against an in-memory Cloudflare (open_url patched)."""
from __future__ import annotations

import json

import pytest

from ansible_collections.honeydue.infra.plugins.modules import cf_dns_roundrobin

ZONE, ZONE_ID = "honeydue.example", "023e105f4ecef8ad9ca31a8372d0c353"
TOKEN = "cf-unit-token-0123456789"
IP10, IP11, IP12 = "203.0.113.10", "203.0.113.11", "203.0.113.12"


def record(rid, content, name="api.honeydue.example"):
    return {"id": rid, "zone_id": ZONE_ID, "name": name, "type": "A", "content": content, "proxied": True,
            "ttl": 1, "comment": None}


@pytest.fixture
def cloudflare(fake_cloudflare):
    return fake_cloudflare(ZONE, ZONE_ID, records=[record("r1", IP10), record("r2", IP11)])


def args(*values, **extra):
    return {"zone": ZONE, "records": [{"name": "api", "values": list(values)}], "api_token": TOKEN, **extra}


def test_records_already_as_wanted_make_no_write(run_module, cloudflare):
    result = run_module(cf_dns_roundrobin.main, args(IP11, IP10, zone_id=ZONE_ID))
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["operations"] == {"deletes": [], "patches": [], "puts": [], "posts": []}
    assert [(m, p) for m, p, *_ in cloudflare.calls] == [("GET", f"/zones/{ZONE_ID}/dns_records")]
    assert result["api_calls"] == 1 and result["zone_id"] == ZONE_ID
    assert [r["content"] for r in result["records"]["api.honeydue.example"]] == [IP10, IP11]


def test_a_replaced_ip_is_one_patch_in_one_batch_call(run_module, cloudflare):
    result = run_module(cf_dns_roundrobin.main, args(IP10, IP12), diff=True)
    assert not result.get("failed"), result
    assert result["changed"] is True
    assert [(m, p) for m, p, *_ in cloudflare.calls] == [
        ("GET", "/zones"), ("GET", f"/zones/{ZONE_ID}/dns_records"), ("POST", f"/zones/{ZONE_ID}/dns_records/batch")]
    assert cloudflare.calls[-1][3] == {"patches": [{"id": "r2", "content": IP12}]}
    assert all(token == TOKEN for *_, token in cloudflare.calls)
    assert result["operations"]["patches"] == [{"id": "r2", "content": IP12}]
    assert sorted(r["content"] for r in cloudflare.records) == [IP10, IP12]
    assert result["diff"] == {"before": {"api.honeydue.example": [IP10, IP11]},
                              "after": {"api.honeydue.example": [IP10, IP12]}}


def test_check_mode_reports_the_batch_and_writes_nothing(run_module, cloudflare):
    result = run_module(cf_dns_roundrobin.main, args(IP10, IP12), check_mode=True)
    assert result["changed"] is True and result["operations"]["patches"] == [{"id": "r2", "content": IP12}]
    assert [m for m, *_ in cloudflare.calls] == ["GET", "GET"]
    assert sorted(r["content"] for r in cloudflare.records) == [IP10, IP11]


def test_a_refused_token_fails_with_cloudflares_answer_before_any_write(run_module, cloudflare):
    cloudflare.fail("GET", "/zones", 403, [{"code": 10000, "message": "Authentication error"}])
    result = run_module(cf_dns_roundrobin.main, args(IP10, IP12))
    assert result["failed"] is True and not result.get("changed")
    assert result["failure"] == {"status": 403, "method": "GET", "path": "/zones",
                                 "errors": [{"code": 10000, "message": "Authentication error"}]}
    assert "HTTP 403" in result["msg"] and "10000: Authentication error" in result["msg"]
    assert "zone_id" not in result and result["api_calls"] == 1
    assert TOKEN not in json.dumps(result)


def test_a_refused_batch_fails_with_nothing_applied(run_module, cloudflare):
    cloudflare.fail("POST", f"/zones/{ZONE_ID}/dns_records/batch", 400, [{"code": 1004, "message": "DNS Validation Error"}])
    result = run_module(cf_dns_roundrobin.main, args(IP10, IP12))
    assert result["failed"] is True and result["changed"] is False
    assert result["failure"]["outcome"] == "refused" and result["failure"]["status"] == 400
    assert result["operations"] == {"deletes": [], "patches": [], "puts": [], "posts": []}
    assert result["zone_id"] == ZONE_ID and "0 operation(s) applied" in result["msg"]
    assert sorted(r["content"] for r in cloudflare.records) == [IP10, IP11]


def test_a_batch_whose_answer_was_lost_is_not_resent_once_the_zone_shows_it(run_module, cloudflare):
    cloudflare.fail("POST", f"/zones/{ZONE_ID}/dns_records/batch", 502, [{"code": 502, "message": "Bad gateway"}],
                    apply=True)
    result = run_module(cf_dns_roundrobin.main, args(IP10, IP12))
    assert not result.get("failed"), result
    assert result["changed"] is True and result["replans"] == 0
    assert [m for m, *_ in cloudflare.calls].count("POST") == 1
    assert result["operations"]["patches"] == [{"id": "r2", "content": IP12}]

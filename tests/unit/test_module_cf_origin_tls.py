"""cf_origin_tls's entry point, main(), against an in-memory Cloudflare (open_url patched)."""
from __future__ import annotations

import json

from ansible_collections.honeydue.infra.plugins.modules import cf_origin_tls

ZONE, ZONE_ID = "honeydue.example", "023e105f4ecef8ad9ca31a8372d0c353"
TOKEN = "cf-unit-token-0123456789"
SSL_PATH = f"/zones/{ZONE_ID}/settings/ssl"


def args(**extra):
    return {"zone_id": ZONE_ID, "api_token": TOKEN, **extra}


def test_the_mode_already_set_is_only_read(run_module, fake_cloudflare):
    cloudflare = fake_cloudflare(ZONE, ZONE_ID, ssl="strict")
    result = run_module(cf_origin_tls.main, args(ssl="strict"))
    assert not result.get("failed"), result
    assert result["changed"] is False and result["steps"] == [] and result["ssl"] == "strict"
    assert [(m, p) for m, p, *_ in cloudflare.calls] == [("GET", SSL_PATH)]
    assert result["api_calls"] == 1 and result["aop_enabled"] is None and not result.get("certificates")


def test_raising_the_mode_is_one_patch(run_module, fake_cloudflare):
    cloudflare = fake_cloudflare(ZONE, ZONE_ID, ssl="flexible")
    result = run_module(cf_origin_tls.main, {**args(ssl="strict"), "zone": ZONE, "zone_id": None}, diff=True)
    assert not result.get("failed"), result
    assert result["changed"] is True and result["ssl"] == "strict" and cloudflare.ssl == "strict"
    assert result["steps"] == [{"action": "ssl", "from": "flexible", "to": "strict"}]
    assert [(m, p) for m, p, *_ in cloudflare.calls] == [
        ("GET", "/zones"), ("GET", SSL_PATH), ("PATCH", SSL_PATH), ("GET", SSL_PATH)]
    assert cloudflare.calls[2][3] == {"value": "strict"}
    assert result["zone_id"] == ZONE_ID
    assert result["diff"]["before"]["ssl"] == "flexible" and result["diff"]["after"]["ssl"] == "strict"


def test_check_mode_reports_the_step_and_writes_nothing(run_module, fake_cloudflare):
    cloudflare = fake_cloudflare(ZONE, ZONE_ID, ssl="flexible")
    result = run_module(cf_origin_tls.main, args(ssl="strict"), check_mode=True)
    assert result["changed"] is True and result["steps"] == [{"action": "ssl", "from": "flexible", "to": "strict"}]
    assert [m for m, *_ in cloudflare.calls] == ["GET"] and cloudflare.ssl == "flexible"


def test_a_token_without_zone_settings_edit_fails_naming_the_permission(run_module, fake_cloudflare):
    cloudflare = fake_cloudflare(ZONE, ZONE_ID, ssl="flexible")
    cloudflare.fail("PATCH", SSL_PATH, 403, [{"code": 10000, "message": "Authentication error"}])
    result = run_module(cf_origin_tls.main, args(ssl="strict"))
    assert result["failed"] is True and result["changed"] is False and result["steps"] == []
    assert result["failure"] == {"status": 403, "method": "PATCH", "path": SSL_PATH, "outcome": "refused",
                                 "errors": [{"code": 10000, "message": "Authentication error"}],
                                 "permission": "Zone Settings: Edit"}
    assert "Zone Settings: Edit" in result["msg"] and "Applied before the failure: nothing" in result["msg"]
    assert cloudflare.ssl == "flexible"
    assert TOKEN not in json.dumps(result)


def test_a_read_that_keeps_failing_is_an_api_failure_before_any_write(run_module, fake_cloudflare):
    cloudflare = fake_cloudflare(ZONE, ZONE_ID, ssl="flexible")
    cloudflare.fail("GET", SSL_PATH, 403, [{"code": 10000, "message": "Authentication error"}])
    result = run_module(cf_origin_tls.main, args(ssl="strict"))
    assert result["failed"] is True and not result.get("changed") and result["steps"] == []
    assert result["failure"]["permission"] == "Zone Settings: Read (or Edit)"
    assert "outcome" not in result["failure"] and [m for m, *_ in cloudflare.calls] == ["GET"]

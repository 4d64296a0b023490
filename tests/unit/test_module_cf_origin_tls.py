"""cf_origin_tls's entry point, main(), against an in-memory Cloudflare (open_url patched)."""
from __future__ import annotations

import json

from ansible_collections.honeydue.infra.plugins.modules import cf_origin_tls

ZONE, ZONE_ID = "honeydue.example", "023e105f4ecef8ad9ca31a8372d0c353"
TOKEN = "cf-unit-token-0123456789"
SSL_PATH = f"/zones/{ZONE_ID}/settings/ssl"
AUH_PATH = f"/zones/{ZONE_ID}/settings/always_use_https"


def args(**extra):
    return {"zone_id": ZONE_ID, "api_token": TOKEN, **extra}


def with_always_use_https(cloudflare, value="off"):
    """The fake (tests/unit/conftest.py) serves only the ssl setting: add always_use_https the same way."""
    cloudflare.always_use_https = value
    route = cloudflare._route

    def routed(method, path, query, body):
        if path != AUH_PATH:
            return route(method, path, query, body)
        if method == "PATCH":
            if body.get("value") not in ("on", "off"):
                return 400, {"success": False, "errors": [
                    {"code": 1007, "message": "Invalid value for zone setting always_use_https"}]}
            cloudflare.always_use_https = body["value"]
        return cloudflare._ok({"id": "always_use_https", "value": cloudflare.always_use_https, "editable": True})
    cloudflare._route = routed
    return cloudflare


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


def test_always_use_https_on_is_one_patch_after_the_mode(run_module, fake_cloudflare):
    cloudflare = with_always_use_https(fake_cloudflare(ZONE, ZONE_ID, ssl="flexible"))
    result = run_module(cf_origin_tls.main, args(ssl="strict", always_use_https=True), diff=True)
    assert not result.get("failed"), result
    assert result["changed"] is True and result["always_use_https"] is True and result["ssl"] == "strict"
    assert result["steps"] == [{"action": "ssl", "from": "flexible", "to": "strict"},
                               {"action": "always_use_https", "from": False, "to": True}]
    assert [(m, p, b) for m, p, _q, b, _t in cloudflare.calls if m != "GET"] == [
        ("PATCH", SSL_PATH, {"value": "strict"}), ("PATCH", AUH_PATH, {"value": "on"})]
    assert cloudflare.always_use_https == "on"
    assert result["diff"]["before"]["always_use_https"] is False and result["diff"]["after"]["always_use_https"] is True


def test_always_use_https_already_on_is_only_read(run_module, fake_cloudflare):
    cloudflare = with_always_use_https(fake_cloudflare(ZONE, ZONE_ID), "on")
    result = run_module(cf_origin_tls.main, args(always_use_https=True))
    assert result["changed"] is False and result["steps"] == [] and result["always_use_https"] is True
    assert [(m, p) for m, p, *_ in cloudflare.calls] == [("GET", AUH_PATH)]
    assert result["ssl"] is None and result["aop_enabled"] is None


def test_always_use_https_check_mode_writes_nothing(run_module, fake_cloudflare):
    cloudflare = with_always_use_https(fake_cloudflare(ZONE, ZONE_ID), "on")
    result = run_module(cf_origin_tls.main, args(always_use_https=False), check_mode=True, diff=True)
    assert result["changed"] is True and result["steps"] == [{"action": "always_use_https", "from": True, "to": False}]
    assert result["always_use_https"] is False and result["diff"]["after"]["always_use_https"] is False
    assert [m for m, *_ in cloudflare.calls] == ["GET"] and cloudflare.always_use_https == "on"


def test_backing_out_turns_always_use_https_off_first(run_module, fake_cloudflare):
    cloudflare = with_always_use_https(fake_cloudflare(ZONE, ZONE_ID, ssl="strict"), "on")
    result = run_module(cf_origin_tls.main, args(ssl="full", always_use_https=False))  # "full": no AOP read
    assert not result.get("failed"), result
    assert [s["action"] for s in result["steps"]] == ["always_use_https", "ssl"]
    assert [(m, p) for m, p, *_ in cloudflare.calls if m == "PATCH"] == [("PATCH", AUH_PATH), ("PATCH", SSL_PATH)]


def test_a_refused_always_use_https_fails_with_what_was_applied(run_module, fake_cloudflare):
    cloudflare = with_always_use_https(fake_cloudflare(ZONE, ZONE_ID, ssl="flexible"))
    cloudflare.fail("PATCH", AUH_PATH, 403, [{"code": 10000, "message": "Authentication error"}])
    result = run_module(cf_origin_tls.main, args(ssl="strict", always_use_https=True))
    assert result["failed"] is True and result["changed"] is True
    assert result["steps"] == [{"action": "ssl", "from": "flexible", "to": "strict"}]
    assert result["failure"] == {"status": 403, "method": "PATCH", "path": AUH_PATH, "outcome": "refused",
                                 "errors": [{"code": 10000, "message": "Authentication error"}],
                                 "permission": "Zone Settings: Edit"}
    assert "Zone Settings: Edit" in result["msg"] and "Applied before the failure: [{'action': 'ssl'" in result["msg"]
    assert cloudflare.ssl == "strict" and cloudflare.always_use_https == "off"

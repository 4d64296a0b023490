"""honeydue.infra.cf_origin_tls against the Cloudflare stand-in, through ansible-playbook: the zone's SSL
mode and zone-level Authenticated Origin Pulls, idempotence, check mode, safe order, token permissions."""
from __future__ import annotations

import pytest

from tests.conftest import TOKEN
from tests.integration.standins.test_cloudflare_origin_tls import keypair

ZONE = "honeydue.example"
CERT, KEY = keypair()
NEW_CERT, NEW_KEY = keypair()


@pytest.fixture
def origin_tls(cloudflare_api, playbook):
    """``origin_tls(**module_args)`` runs one cf_origin_tls task and returns its result."""
    base = f"{cloudflare_api.url}/client/v4"
    cloudflare_api.aop_deploy_seconds = 0.5

    def run(check=False, extra_args=(), token=TOKEN, **args):
        task = {"name": "origin tls", "honeydue.infra.cf_origin_tls": dict(
            {"zone": ZONE, "api_base_url": base, "aop_poll_interval": 0.2, "aop_activation_timeout": 30}, **args)}
        cli = list(extra_args) + (["--check"] if check else []) + ["--diff"]
        result = playbook([{"name": "origin tls", "hosts": "localhost", "gather_facts": False, "tasks": [task]}],
                          env={"CLOUDFLARE_API_TOKEN": token}, extra_args=cli)
        run.last = result
        return result.task_results("origin tls")

    run.zone_id = cloudflare_api.zone_by_name(ZONE)["id"]
    return run


def writes(cf):
    return [f"{r.method} {r.path.split('/client/v4/zones/', 1)[-1].split('/', 1)[-1]}"
            for r in cf.log if r.method != "GET"]


def zone(cf, zone_id):
    certs = [c for c in cf._aop_visible(cf.zones[zone_id])]
    return cf.ssl_settings[zone_id]["value"], cf.aop_enabled[zone_id], [(c["certificate"], c["status"]) for c in certs]


SWITCH = {"ssl": "strict", "aop_certificate": CERT, "aop_private_key": KEY, "aop_enabled": True}


def test_the_switch_lands_in_the_safe_order_and_a_second_run_changes_nothing(cloudflare_api, origin_tls):
    res = origin_tls(**SWITCH)
    assert origin_tls.last.rc == 0, origin_tls.last.stdout[-3000:]
    assert res["changed"] and [s["action"] for s in res["steps"]] == ["ssl", "upload", "aop"]
    assert writes(cloudflare_api) == ["PATCH settings/ssl", "POST origin_tls_client_auth",
                                      "PUT origin_tls_client_auth/settings"]
    # AOP went on only after Cloudflare reported the certificate active.
    log = [(r.method, r.path.rsplit("/", 1)[-1]) for r in cloudflare_api.log]
    assert log.index(("PUT", "settings")) > log.index(("POST", "origin_tls_client_auth"))
    assert zone(cloudflare_api, origin_tls.zone_id) == ("strict", True, [(CERT, "active")])
    assert res["ssl"] == "strict" and res["aop_enabled"] is True
    assert res["certificate"]["status"] == "active" and res["certificate"]["ours"] is True

    cloudflare_api.log.clear()
    again = origin_tls(**SWITCH)
    assert not again["changed"] and origin_tls.last.changed() == 0 and again["steps"] == []
    assert writes(cloudflare_api) == []
    assert [r.method for r in cloudflare_api.log] == ["GET"] * 4  # zone, ssl, AOP switch, certificates


def test_check_mode_writes_nothing_and_shows_the_diff(cloudflare_api, origin_tls):
    res = origin_tls(check=True, **SWITCH)
    assert res["changed"] and [s["action"] for s in res["steps"]] == ["ssl", "upload", "await", "aop"]
    assert writes(cloudflare_api) == []
    assert zone(cloudflare_api, origin_tls.zone_id) == ("flexible", False, [])
    assert res["diff"]["before"] == {"ssl": "flexible", "aop_enabled": False, "always_use_https": None, "certificates": []}
    assert res["diff"]["after"]["ssl"] == "strict" and res["diff"]["after"]["aop_enabled"] is True
    assert res["diff"]["after"]["certificates"] == [{"id": None, "status": "active", "expires_on": None, "ours": True}]


def auh(cf, zone_id):
    return cf.always_use_https[zone_id]["value"]


def test_always_use_https_on_then_again_then_off(cloudflare_api, origin_tls):
    res = origin_tls(always_use_https=True)
    assert origin_tls.last.rc == 0, origin_tls.last.stdout[-3000:]
    assert res["changed"] and res["always_use_https"] is True
    assert res["steps"] == [{"action": "always_use_https", "from": False, "to": True}]
    assert writes(cloudflare_api) == ["PATCH settings/always_use_https"]
    assert [r.body for r in cloudflare_api.log if r.method == "PATCH"] == [{"value": "on"}]
    assert auh(cloudflare_api, origin_tls.zone_id) == "on"
    assert res["diff"]["before"]["always_use_https"] is False and res["diff"]["after"]["always_use_https"] is True
    assert res["ssl"] is None and res["aop_enabled"] is None  # only what is managed is read

    cloudflare_api.log.clear()
    again = origin_tls(always_use_https=True)
    assert not again["changed"] and origin_tls.last.changed() == 0 and again["steps"] == []
    assert writes(cloudflare_api) == [] and [r.method for r in cloudflare_api.log] == ["GET"] * 2  # zone, setting

    off = origin_tls(always_use_https=False)
    assert off["changed"] and off["steps"] == [{"action": "always_use_https", "from": True, "to": False}]
    assert auh(cloudflare_api, origin_tls.zone_id) == "off" and off["always_use_https"] is False


def test_always_use_https_check_mode_writes_nothing(cloudflare_api, origin_tls):
    res = origin_tls(check=True, always_use_https=True)
    assert res["changed"] and res["steps"] == [{"action": "always_use_https", "from": False, "to": True}]
    assert res["always_use_https"] is True and res["diff"]["after"]["always_use_https"] is True
    assert writes(cloudflare_api) == [] and auh(cloudflare_api, origin_tls.zone_id) == "off"


def test_always_use_https_is_the_last_step_of_the_switch_and_the_first_back(cloudflare_api, origin_tls):
    res = origin_tls(always_use_https=True, **SWITCH)
    assert origin_tls.last.rc == 0, origin_tls.last.stdout[-3000:]
    assert [s["action"] for s in res["steps"]] == ["ssl", "upload", "aop", "always_use_https"]
    assert writes(cloudflare_api) == ["PATCH settings/ssl", "POST origin_tls_client_auth",
                                      "PUT origin_tls_client_auth/settings", "PATCH settings/always_use_https"]
    assert cloudflare_api.zone_settings(ZONE) == {"ssl": "strict", "always_use_https": "on", "aop_enabled": True,
                                                  "aop_certificate": {"certificate": CERT, "private_key": KEY}}
    cloudflare_api.log.clear()
    back = origin_tls(ssl="flexible", aop_enabled=False, always_use_https=False)
    assert [s["action"] for s in back["steps"]] == ["always_use_https", "aop", "ssl"]
    assert writes(cloudflare_api) == ["PATCH settings/always_use_https", "PUT origin_tls_client_auth/settings",
                                      "PATCH settings/ssl"]
    assert cloudflare_api.zone_settings(ZONE)["always_use_https"] == "off"


def test_a_token_without_zone_settings_edit_cannot_turn_always_use_https_on(cloudflare_api, origin_tls):
    cloudflare_api.add_token("settings-reader-1", ["Zone Read", "Zone Settings Read"])
    res = origin_tls(token="settings-reader-1", always_use_https=True)
    assert res["failed"] and not res["changed"] and res["steps"] == []
    assert res["failure"]["status"] == 403 and res["failure"]["method"] == "PATCH"
    assert res["failure"]["errors"] == [{"code": 10000, "message": "Authentication error"}]
    assert res["failure"]["permission"] == "Zone Settings: Edit" and "Applied before the failure: nothing" in res["msg"]
    assert auh(cloudflare_api, origin_tls.zone_id) == "off"


def test_each_step_alone(cloudflare_api, origin_tls):
    """The ingress stage takes the switch one step at a time: each option works on its own."""
    assert origin_tls(aop_certificate=CERT, aop_private_key=KEY)["changed"]
    assert zone(cloudflare_api, origin_tls.zone_id) == ("flexible", False, [(CERT, "active")])
    assert origin_tls(ssl="strict")["changed"]
    assert origin_tls(aop_enabled=True)["changed"]  # the certificate already on the zone is enough
    assert zone(cloudflare_api, origin_tls.zone_id) == ("strict", True, [(CERT, "active")])
    back = origin_tls(ssl="flexible", aop_enabled=False)  # rollback: AOP off first, then the mode
    assert [s["action"] for s in back["steps"]] == ["aop", "ssl"]
    assert zone(cloudflare_api, origin_tls.zone_id)[:2] == ("flexible", False)


def test_a_new_certificate_replaces_the_old_one_only_once_it_is_active(cloudflare_api, origin_tls):
    origin_tls(**SWITCH)
    old_id = cloudflare_api._aop_visible(cloudflare_api.zones[origin_tls.zone_id])[0]["id"]
    cloudflare_api.log.clear()
    res = origin_tls(**dict(SWITCH, aop_certificate=NEW_CERT, aop_private_key=NEW_KEY))
    assert [(s["action"], s.get("id")) for s in res["steps"]][::2] == [("upload", res["steps"][0]["id"])]
    assert res["steps"][1] == {"action": "delete", "id": old_id}
    statuses = [(r.method, r.status) for r in cloudflare_api.log]
    delete_at = statuses.index(("DELETE", 200))
    polls = [r for r in cloudflare_api.log[:delete_at] if r.method == "GET" and r.path.endswith(res["steps"][0]["id"])]
    assert polls, "the new certificate was not read before the old one was deleted"
    assert [c for c, s in zone(cloudflare_api, origin_tls.zone_id)[2] if s == "active"] == [NEW_CERT]


def test_a_token_without_zone_settings_is_refused_naming_the_permission(cloudflare_api, origin_tls):
    cloudflare_api.add_token("dns-token-0001", ["DNS Write", "Zone Read"])
    res = origin_tls(token="dns-token-0001", ssl="strict")
    assert res["failed"] and not res["changed"] and res["steps"] == []
    assert res["failure"]["status"] == 403 and res["failure"]["errors"] == [{"code": 10000, "message": "Authentication error"}]
    assert res["failure"]["permission"] == "Zone Settings: Read (or Edit)"
    assert "Zone Settings" in res["msg"] and "10000" in res["msg"]
    assert writes(cloudflare_api) == []


def test_a_token_without_ssl_and_certificates_edit_fails_after_what_it_could_do(cloudflare_api, origin_tls):
    cloudflare_api.add_token("settings-token-1", ["Zone Read", "Zone Settings Write", "SSL and Certificates Read"])
    res = origin_tls(token="settings-token-1", **SWITCH)
    assert res["failed"] and res["changed"]  # the SSL mode was applied before the refused upload
    assert [s["action"] for s in res["steps"]] == ["ssl"]
    assert res["failure"]["method"] == "POST" and res["failure"]["permission"] == "SSL and Certificates: Edit"
    assert "SSL and Certificates: Edit" in res["msg"] and "Applied before the failure" in res["msg"]
    assert zone(cloudflare_api, origin_tls.zone_id) == ("strict", False, [])


def test_unsafe_combinations_are_refused_before_any_write(cloudflare_api, origin_tls):
    res = origin_tls(aop_certificate=CERT, aop_private_key=KEY, aop_enabled=True)  # the zone is Flexible
    assert res["failed"] and "set ssl: strict first" in res["msg"]
    cloudflare_api.set_ssl(ZONE, "strict")
    res = origin_tls(aop_enabled=True)
    assert res["failed"] and "no active zone-level client certificate" in res["msg"]
    res = origin_tls(aop_certificate=CERT, aop_private_key=NEW_KEY)
    assert res["failed"] and "not the key of aop_certificate" in res["msg"] and res["api_calls"] == 0
    assert writes(cloudflare_api) == []


def test_the_private_key_and_token_never_show(cloudflare_api, origin_tls):
    origin_tls(extra_args=["-vvv"], **SWITCH)
    out = origin_tls.last.stdout + origin_tls.last.stderr
    assert origin_tls.last.rc == 0
    key_body = KEY.splitlines()[1]
    assert key_body not in out and TOKEN not in out


def test_a_lost_upload_answer_is_recovered_without_a_second_upload(cloudflare_api, origin_tls):
    cloudflare_api.inject(method="POST", path="/origin_tls_client_auth$", drop="after")
    res = origin_tls(aop_certificate=CERT, aop_private_key=KEY)
    assert res["changed"] and not res.get("failed")
    assert len(cloudflare_api.calls("POST", "/origin_tls_client_auth$")) == 1
    assert [(s["action"], s.get("recovered")) for s in res["steps"]] == [("upload", True)]
    assert zone(cloudflare_api, origin_tls.zone_id)[2] == [(CERT, "active")]

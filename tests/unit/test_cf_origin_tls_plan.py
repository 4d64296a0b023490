"""cf_origin_tls's planner: step order, the safety rules, idempotence, and converging after failed or
unanswered writes without resending them (the Cloudflare calls are a fake here)."""
from __future__ import annotations

import base64
import itertools

import pytest

from ansible_collections.honeydue.infra.plugins.module_utils._cf_origin_tls import (
    ConvergeError, PlanError, certificate_der, converge, desired, permission_for, plan, predict, reads, summary)

KEY = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"


def pem(tag: bytes) -> str:
    body = base64.b64encode(b"0\x82" + tag * 20).decode()
    return f"-----BEGIN CERTIFICATE-----\n{body[:64]}\n{body[64:]}\n-----END CERTIFICATE-----\n"


CERT, OTHER = pem(b"ours"), pem(b"older")
_ids = itertools.count()


def cert(text=CERT, status="active"):
    return {"id": f"c{next(_ids)}", "certificate": text, "status": status, "expires_on": "2027-11-28T00:00:00Z"}


def want(**kw):
    args = {"ssl": None, "certificate": None, "private_key": None, "aop_enabled": None, "always_use_https": None}
    if kw.pop("with_cert", False):
        args.update(certificate=CERT, private_key=KEY)
    args.update(kw)
    return desired(**args)


def actions(steps):
    return [(s["action"], s.get("to", s.get("enabled", s.get("id")))) for s in steps]


# -- inputs ----------------------------------------------------------------------------------------
def test_certificates_compare_by_der_not_by_text():
    reflowed = CERT.replace("\n", "\r\n").replace("-----\r\n", "-----\n  ")
    assert certificate_der(reflowed) == certificate_der(CERT) != certificate_der(OTHER)


@pytest.mark.parametrize("kwargs, message", [
    ({"ssl": "strict", "certificate": CERT}, "go together"),
    ({"certificate": "not a pem", "private_key": KEY}, "not a PEM certificate"),
    ({"certificate": CERT, "private_key": "nope"}, "not a PEM private key"),
    ({"certificate": CERT, "private_key": KEY.replace("PRIVATE", "ENCRYPTED PRIVATE")}, "password-protected"),
    ({"ssl": "flexible", "aop_enabled": True}, "does not work when"),
    ({"ssl": "origin_pull"}, "must be one of"),
    ({"always_use_https": "on"}, "must be true or false"),
    ({}, "nothing to manage"),
])
def test_bad_input_is_refused_before_any_call(kwargs, message):
    with pytest.raises(PlanError, match=message):
        desired(**{"ssl": None, "certificate": None, "private_key": None, "aop_enabled": None, **kwargs})


def test_only_what_is_managed_is_read():
    nothing = {"ssl": False, "aop": False, "certificates": False, "always_use_https": False}
    assert reads(want(ssl="strict")) == dict(nothing, ssl=True)
    assert reads(want(with_cert=True)) == dict(nothing, certificates=True)
    assert reads(want(aop_enabled=True)) == dict(nothing, ssl=True, aop=True, certificates=True)
    assert reads(want(ssl="flexible")) == dict(nothing, ssl=True, aop=True)  # AOP must be off
    assert reads(want(always_use_https=True)) == reads(want(always_use_https=False)) == dict(
        nothing, always_use_https=True)  # Zone Settings only


def test_always_use_https_alone_is_one_step_either_way():
    assert plan({"always_use_https": False}, want(always_use_https=True)) == [
        {"action": "always_use_https", "from": False, "to": True}]
    assert plan({"always_use_https": True}, want(always_use_https=False)) == [
        {"action": "always_use_https", "from": True, "to": False}]
    assert plan({"always_use_https": True}, want(always_use_https=True)) == []


def test_the_token_permission_of_each_call():
    assert permission_for("PATCH", "/zones/z/settings/ssl")[0] == "Zone Settings: Edit"
    assert permission_for("PATCH", "/zones/z/settings/always_use_https") == ("Zone Settings: Edit", "Zone Settings Write")
    assert permission_for("GET", "/zones/z/settings/always_use_https")[0] == "Zone Settings: Read (or Edit)"
    assert permission_for("GET", "/zones/z/settings/ssl")[1] == "Zone Settings Read"
    assert permission_for("POST", "/zones/z/origin_tls_client_auth")[0] == "SSL and Certificates: Edit"
    assert permission_for("PUT", "/zones/z/origin_tls_client_auth/settings")[1] == "SSL and Certificates Write"
    assert permission_for("GET", "/zones")[0] == "Zone: Read"


# -- plans -----------------------------------------------------------------------------------------
def test_the_full_switch_in_one_task_is_in_the_safe_order():
    old = cert(OTHER)
    steps = plan({"ssl": "flexible", "aop_enabled": False, "certificates": [old]},
                 want(ssl="strict", with_cert=True, aop_enabled=True))
    assert actions(steps) == [("ssl", "strict"), ("upload", None), ("await", None), ("delete", old["id"]),
                              ("aop", True)]


def test_always_use_https_is_the_last_step_of_the_switch():
    old = cert(OTHER)
    steps = plan({"ssl": "flexible", "aop_enabled": False, "certificates": [old], "always_use_https": False},
                 want(ssl="strict", with_cert=True, aop_enabled=True, always_use_https=True))
    assert actions(steps) == [("ssl", "strict"), ("upload", None), ("await", None), ("delete", old["id"]),
                              ("aop", True), ("always_use_https", True)]


def test_backing_out_turns_always_use_https_off_first():
    steps = plan({"ssl": "strict", "aop_enabled": True, "certificates": None, "always_use_https": True},
                 want(ssl="flexible", aop_enabled=False, always_use_https=False))
    assert actions(steps) == [("always_use_https", False), ("aop", False), ("ssl", "flexible")]


def test_an_unsafe_combination_is_refused_before_always_use_https_is_touched():
    with pytest.raises(PlanError, match="aop_enabled: false"):
        plan({"ssl": "strict", "aop_enabled": True, "always_use_https": True},
             want(ssl="flexible", always_use_https=False))


def test_rolling_back_switches_aop_off_before_lowering_the_mode():
    steps = plan({"ssl": "strict", "aop_enabled": True, "certificates": None}, want(ssl="flexible", aop_enabled=False))
    assert actions(steps) == [("aop", False), ("ssl", "flexible")]


def test_nothing_to_do_is_an_empty_plan():
    ours = cert()
    assert plan({"ssl": "strict", "aop_enabled": True, "certificates": [ours]},
                want(ssl="strict", with_cert=True, aop_enabled=True)) == []


def test_a_pending_certificate_of_ours_is_awaited_not_uploaded_again():
    ours, old = cert(status="pending_deployment"), cert(OTHER)
    steps = plan({"certificates": [old, ours]}, want(with_cert=True))
    assert actions(steps) == [("await", ours["id"]), ("delete", old["id"])]


def test_certificates_being_deleted_are_neither_ours_nor_deleted_again():
    gone_ours, gone_old = cert(status="pending_deletion"), cert(OTHER, status="pending_deletion")
    assert actions(plan({"certificates": [gone_ours, gone_old]}, want(with_cert=True))) == [
        ("upload", None), ("await", None)]


def test_a_deployment_that_timed_out_is_deleted_and_uploaded_again():
    failed = cert(status="deployment_timed_out")
    assert actions(plan({"certificates": [failed]}, want(with_cert=True))) == [
        ("delete", failed["id"]), ("upload", None), ("await", None)]


def test_aop_on_with_a_plain_http_mode_is_refused():
    with pytest.raises(PlanError, match="set ssl: strict first"):
        plan({"ssl": "flexible", "aop_enabled": False, "certificates": [cert()]}, want(aop_enabled=True))
    with pytest.raises(PlanError, match="aop_enabled: false"):
        plan({"ssl": "strict", "aop_enabled": True}, want(ssl="flexible"))


def test_aop_on_without_a_certificate_of_the_zone_is_refused():
    with pytest.raises(PlanError, match="no active zone-level client certificate"):
        plan({"ssl": "strict", "aop_enabled": False, "certificates": []}, want(aop_enabled=True))
    # An active one already on the zone is enough.
    assert actions(plan({"ssl": "strict", "aop_enabled": False, "certificates": [cert()]},
                        want(aop_enabled=True))) == [("aop", True)]


def test_predict_and_summary_hide_pem_bodies():
    old = cert(OTHER)
    current = {"ssl": "flexible", "aop_enabled": False, "certificates": [old]}
    w = want(ssl="strict", with_cert=True, aop_enabled=True)
    after = summary(predict(current, plan(current, w), w), w["der"])
    assert after == {"ssl": "strict", "aop_enabled": True, "always_use_https": None,
                     "certificates": [{"id": None, "status": "active", "expires_on": None, "ours": True}]}


# -- converge against a fake zone ------------------------------------------------------------------
class Failure(Exception):
    def __init__(self, outcome, method="POST", path="/zones/z/origin_tls_client_auth"):
        super().__init__(f"{method} {path} failed ({outcome})")
        self.outcome, self.method, self.path = outcome, method, path


class FakeZone:
    """A zone whose certificates turn active after ``polls`` reads; ``fail`` maps a call to an outcome."""

    def __init__(self, ssl="flexible", aop=False, certificates=(), polls=1, always_use_https=False):
        self.ssl, self.aop, self.certs, self.polls = ssl, aop, {c["id"]: dict(c) for c in certificates}, polls
        self.always_use_https = always_use_https
        self.calls, self.fail, self.lost = [], {}, set()

    def _call(self, name, apply):
        self.calls.append(name)
        outcome = self.fail.pop(name, None)
        if outcome == "refused":
            raise Failure("refused")
        result = apply()
        if outcome == "unknown":  # applied, but the answer was lost
            raise Failure("unknown")
        return result

    def get_ssl(self):
        return self._call("get_ssl", lambda: self.ssl)

    def set_ssl(self, mode):
        return self._call("set_ssl", lambda: setattr(self, "ssl", mode) or {"value": mode})

    def get_aop_enabled(self):
        return self._call("get_aop", lambda: self.aop)

    def get_always_use_https(self):
        return self._call("get_auh", lambda: self.always_use_https)

    def set_always_use_https(self, enabled):
        return self._call("set_auh", lambda: setattr(self, "always_use_https", enabled)
                          or {"value": "on" if enabled else "off"})

    def set_aop_enabled(self, enabled):
        return self._call("set_aop", lambda: setattr(self, "aop", enabled) or {"enabled": enabled})

    def list_certificates(self):
        return self._call("list", lambda: [dict(c) for c in self.certs.values()])

    def get_certificate(self, cid):
        def read():
            c = self.certs[cid]
            c["_reads"] = c.get("_reads", 0) + 1
            if c["status"] == "pending_deployment" and c["_reads"] > self.polls:
                c["status"] = "active"
            return dict(c)
        return self._call("get", read)

    def upload(self):
        def post():
            c = cert(status="pending_deployment")
            self.certs[c["id"]] = c
            return dict(c)
        return self._call("upload", post)

    def delete(self, cid):
        return self._call("delete", lambda: self.certs[cid].update(status="pending_deletion") or {"id": cid})


def run(zone, w, **kw):
    clock = itertools.count()
    return converge(zone, w, sleep=lambda s: None, now=lambda: next(clock), poll_interval=1,
                    activation_timeout=kw.pop("timeout", 100), api_errors=(Failure,), **kw)


def test_converge_applies_the_switch_then_a_second_run_only_reads():
    zone = FakeZone(certificates=[cert(OTHER)], polls=2)
    w = want(ssl="strict", with_cert=True, aop_enabled=True)
    done = run(zone, w)
    assert done["changed"] and [s["action"] for s in done["steps"]] == ["ssl", "upload", "delete", "aop"]
    assert zone.calls == ["get_ssl", "get_aop", "list", "set_ssl", "upload", "get", "get", "get", "delete",
                          "set_aop", "get_ssl", "get_aop", "list"]
    assert zone.ssl == "strict" and zone.aop is True
    assert [c["status"] for c in zone.certs.values()] == ["pending_deletion", "active"]
    zone.calls.clear()
    again = run(zone, w)
    assert not again["changed"] and again["steps"] == [] and zone.calls == ["get_ssl", "get_aop", "list"]


def test_check_mode_reads_and_writes_nothing():
    zone = FakeZone()
    done = run(zone, want(ssl="strict", with_cert=True, aop_enabled=True), check_mode=True)
    assert done["changed"] and [s["action"] for s in done["steps"]] == ["ssl", "upload", "await", "aop"]
    assert zone.calls == ["get_ssl", "get_aop", "list"] and zone.ssl == "flexible" and not zone.certs


def test_old_certificates_stay_when_the_new_one_does_not_turn_active():
    old = cert(OTHER)
    zone = FakeZone(certificates=[old], polls=10**6)
    with pytest.raises(ConvergeError, match="still pending_deployment .*older certificates were kept") as err:
        run(zone, want(with_cert=True, aop_enabled=True, ssl="strict"), timeout=3)
    assert err.value.changed and [s["action"] for s in err.value.applied] == ["ssl", "upload"]
    assert zone.certs[old["id"]]["status"] == "active" and zone.aop is False


def test_a_refused_write_stops_and_reports_what_landed():
    zone = FakeZone()
    zone.fail["set_aop"] = "refused"
    with pytest.raises(ConvergeError) as err:
        run(zone, want(ssl="strict", with_cert=True, aop_enabled=True))
    assert [s["action"] for s in err.value.applied] == ["ssl", "upload"] and err.value.changed
    assert isinstance(err.value.cause, Failure)


def test_an_upload_whose_answer_was_lost_is_found_and_not_sent_again():
    zone = FakeZone(ssl="strict")
    zone.fail["upload"] = "unknown"
    done = run(zone, want(with_cert=True))
    assert zone.calls.count("upload") == 1 and done["replans"] == 1
    assert [c["status"] for c in zone.certs.values()] == ["active"]
    assert [(s["action"], s.get("recovered")) for s in done["steps"]] == [("upload", True)]
    assert zone.calls[:3] == ["list", "upload", "list"]  # read again, then await the one that landed


def test_a_lost_write_that_did_not_land_is_planned_again_within_max_replans():
    zone = FakeZone()

    def lost_set_ssl(mode):  # not applied, no answer
        zone.calls.append("set_ssl")
        raise Failure("unknown", "PATCH", "/zones/z/settings/ssl")
    zone.set_ssl = lost_set_ssl
    with pytest.raises(ConvergeError, match="max_replans"):
        run(zone, want(ssl="strict"), max_replans=1)
    assert zone.calls.count("set_ssl") == 2


def test_converge_always_use_https_with_the_switch_then_backing_out():
    zone = FakeZone(certificates=[cert(OTHER)])
    w = want(ssl="strict", with_cert=True, aop_enabled=True, always_use_https=True)
    done = run(zone, w)
    assert [s["action"] for s in done["steps"]] == ["ssl", "upload", "delete", "aop", "always_use_https"]
    writes = [c for c in zone.calls if c.startswith(("set_", "upload", "delete"))]
    assert writes == ["set_ssl", "upload", "delete", "set_aop", "set_auh"]
    assert zone.always_use_https is True and done["after"]["always_use_https"] is True
    assert done["before"]["always_use_https"] is False
    zone.calls.clear()
    assert run(zone, w)["steps"] == [] and "set_auh" not in zone.calls
    back = run(zone, want(ssl="flexible", aop_enabled=False, always_use_https=False))
    assert [s["action"] for s in back["steps"]] == ["always_use_https", "aop", "ssl"]
    assert (zone.always_use_https, zone.aop, zone.ssl) == (False, False, "flexible")


def test_check_mode_predicts_always_use_https_and_writes_nothing():
    zone = FakeZone()
    done = run(zone, want(always_use_https=True), check_mode=True)
    assert done["changed"] and done["steps"] == [{"action": "always_use_https", "from": False, "to": True}]
    assert done["after"]["always_use_https"] is True and zone.calls == ["get_auh"] and zone.always_use_https is False


def test_a_refused_always_use_https_reports_what_landed_before_it():
    zone = FakeZone(certificates=[cert()], ssl="flexible")
    zone.fail["set_auh"] = "refused"
    with pytest.raises(ConvergeError) as err:
        run(zone, want(ssl="strict", aop_enabled=True, always_use_https=True))
    assert [s["action"] for s in err.value.applied] == ["ssl", "aop"] and err.value.changed
    assert zone.always_use_https is False


def test_a_lost_always_use_https_answer_is_read_back_not_sent_again():
    zone = FakeZone()
    zone.fail["set_auh"] = "unknown"  # applied, the answer lost
    done = run(zone, want(always_use_https=True))
    assert zone.calls == ["get_auh", "set_auh", "get_auh"] and done["replans"] == 0
    assert done["steps"] == [{"action": "always_use_https", "from": False, "to": True, "recovered": True}]

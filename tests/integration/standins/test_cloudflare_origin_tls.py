"""The Cloudflare stand-in's origin TLS endpoints (zone SSL mode, zone-level Authenticated Origin
Pulls) and its token permissions, call by call, against the vendor's envelope and answers.

Every answer is checked by the stand-in itself (``contract_violations``, asserted empty when the
stand-in stops) and here, independently, against the ``common.yaml`` envelope.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from openapi_schema_validator import OAS30Validator

from lab.standins._openapi import load_spec
from tests.conftest import TOKEN

ZONE = "honeydue.example"


def _envelope(name: str) -> OAS30Validator:
    components = load_spec("cloudflare/common.yaml")["components"]
    return OAS30Validator({"components": components, "allOf": [{"$ref": f"#/components/schemas/{name}"}]})


SUCCESS, FAILURE = _envelope("api-response-common"), _envelope("api-response-common-failure")


def keypair(cn: str = "Cloudflare origin pull (honeydue.example)", issuer: tuple[Any, x509.Name] | None = None):
    """A client certificate and its key as PEM text (self-signed unless ``issuer`` = (key, name))."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    signer, issuer_name = issuer or (key, name)
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(signer, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cf():
    """A stand-in on a clock the test moves (certificates deploy 60 s after their upload)."""
    from lab.standins.cloudflare import CloudflareStandIn
    clock = Clock()
    api = CloudflareStandIn(token=TOKEN, clock=clock, aop_deploy_seconds=60).start()
    api.clock = clock
    try:
        yield api
    finally:
        api.stop()
        assert not api.contract_violations, api.contract_violations


def call(api, method: str, path: str, token: str = TOKEN, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    zone_id = api.zone_by_name(ZONE)["id"]
    resp = requests.request(method, f"{api.url}/client/v4{path.replace('{zone}', zone_id)}",
                            headers={"Authorization": f"Bearer {token}"}, timeout=10, **kwargs)
    body = resp.json()
    validator = SUCCESS if resp.status_code < 400 else FAILURE
    assert [e.message for e in validator.iter_errors(body)] == [], body
    if resp.status_code >= 400:
        assert body["success"] is False and body["result"] is None and body["errors"]
    return resp.status_code, body


def codes(body: dict[str, Any]) -> list[int]:
    return [e["code"] for e in body["errors"]]


# -- settings/ssl ----------------------------------------------------------------------------------
def test_ssl_setting_reads_and_patches_with_the_vendors_value_set(cf):
    status, body = call(cf, "GET", "/zones/{zone}/settings/ssl")
    assert status == 200 and body["result"] == {"id": "ssl", "value": "flexible", "editable": True, "modified_on": None}
    for value in ("off", "full", "strict"):
        status, body = call(cf, "PATCH", "/zones/{zone}/settings/ssl", json={"value": value})
        assert status == 200 and body["result"]["value"] == value and body["result"]["modified_on"]
    assert call(cf, "GET", "/zones/{zone}/settings/ssl")[1]["result"]["value"] == "strict"


@pytest.mark.parametrize("body", [{"value": "full_strict"}, {"value": "origin_pull"}, {"value": True}, {}])
def test_an_invalid_ssl_value_is_1007(cf, body):
    status, answer = call(cf, "PATCH", "/zones/{zone}/settings/ssl", json=body)
    assert status == 400 and answer["errors"] == [{"code": 1007, "message": "Invalid value for zone setting ssl"}]
    assert call(cf, "GET", "/zones/{zone}/settings/ssl")[1]["result"]["value"] == "flexible"


def test_unmodelled_settings_and_methods_are_refused_like_unknown_routes(cf):
    assert codes(call(cf, "GET", "/zones/{zone}/settings/tls_client_auth")[1]) == [7000]
    status, body = call(cf, "POST", "/zones/{zone}/settings/ssl", json={"value": "strict"})
    assert status == 405 and codes(body) == [7001]
    assert codes(call(cf, "GET", "/zones/0123456789abcdef0123456789abcdef/settings/ssl")[1]) == [7003]


# -- settings/always_use_https ---------------------------------------------------------------------
def test_always_use_https_is_off_on_a_new_zone_and_patches_on_and_off(cf):
    status, body = call(cf, "GET", "/zones/{zone}/settings/always_use_https")
    assert status == 200 and body["result"] == {"id": "always_use_https", "value": "off", "editable": True,
                                                "modified_on": None}
    assert body["success"] is True and body["errors"] == [] and body["messages"] == []
    for value in ("on", "off", "on"):
        status, body = call(cf, "PATCH", "/zones/{zone}/settings/always_use_https", json={"value": value})
        assert status == 200 and body["result"]["id"] == "always_use_https" and body["result"]["value"] == value
        assert body["result"]["editable"] is True and body["result"]["modified_on"]
    assert call(cf, "GET", "/zones/{zone}/settings/always_use_https")[1]["result"]["value"] == "on"
    # Its own setting: the SSL mode did not move.
    assert call(cf, "GET", "/zones/{zone}/settings/ssl")[1]["result"]["value"] == "flexible"
    new = cf.add_zone("second.example")
    assert cf.always_use_https[new["id"]]["value"] == "off"


@pytest.mark.parametrize("body", [{"value": "true"}, {"value": True}, {"value": "ON"}, {"value": "on", "extra": 1}, {}])
def test_an_invalid_always_use_https_value_is_1007(cf, body):
    status, answer = call(cf, "PATCH", "/zones/{zone}/settings/always_use_https", json=body)
    assert status == 400 and answer["errors"] == [{"code": 1007,
                                                   "message": "Invalid value for zone setting always_use_https"}]
    assert call(cf, "GET", "/zones/{zone}/settings/always_use_https")[1]["result"]["value"] == "off"


def test_always_use_https_needs_zone_settings_like_ssl(cf):
    cf.add_token("dns-only-token", ["DNS Write", "Zone Read"])
    cf.add_token("settings-reader", ["Zone Settings Read"])
    cf.add_token("settings-editor", ["Zone Settings Write"])
    path = "/zones/{zone}/settings/always_use_https"
    for status, body in (call(cf, "GET", path, token="dns-only-token"),
                         call(cf, "PATCH", path, token="dns-only-token", json={"value": "on"}),
                         call(cf, "PATCH", path, token="settings-reader", json={"value": "on"})):
        assert status == 403 and body["errors"] == [{"code": 10000, "message": "Authentication error"}]
    assert call(cf, "GET", path, token="settings-reader")[0] == 200
    assert call(cf, "GET", path, token="settings-editor")[0] == 200  # Write also reads
    assert call(cf, "PATCH", path, token="settings-editor", json={"value": "on"})[0] == 200
    assert call(cf, "POST", path, json={"value": "on"})[0] == 405


def test_zone_settings_tell_lab_code_what_the_edge_does(cf):
    assert cf.zone_settings(ZONE) == {"ssl": "flexible", "always_use_https": "off", "aop_enabled": False,
                                      "aop_certificate": None}
    cf.set_always_use_https(ZONE, "on")
    cf.set_ssl(ZONE, "strict")
    with pytest.raises(ValueError):
        cf.set_always_use_https(ZONE, "yes")
    cert, key = keypair()
    call(cf, "POST", "/zones/{zone}/origin_tls_client_auth", json={"certificate": cert, "private_key": key})
    call(cf, "PUT", "/zones/{zone}/origin_tls_client_auth/settings", json={"enabled": True})
    # Uploaded, but not deployed yet: not presented.
    assert cf.zone_settings(ZONE) == {"ssl": "strict", "always_use_https": "on", "aop_enabled": True,
                                      "aop_certificate": None}
    cf.clock.now += 60
    assert cf.zone_settings(ZONE)["aop_certificate"] == {"certificate": cert, "private_key": key}
    # A newer one, once active, is the one presented; a deleted one never is.
    new_cert, new_key = keypair()
    up = call(cf, "POST", "/zones/{zone}/origin_tls_client_auth",
              json={"certificate": new_cert, "private_key": new_key})[1]["result"]
    assert cf.zone_settings(ZONE)["aop_certificate"]["certificate"] == cert
    cf.clock.now += 60
    assert cf.zone_settings(ZONE)["aop_certificate"] == {"certificate": new_cert, "private_key": new_key}
    call(cf, "DELETE", f"/zones/{{zone}}/origin_tls_client_auth/{up['id']}")
    assert cf.zone_settings(ZONE)["aop_certificate"]["certificate"] == cert
    # Never in an API answer.
    listing = call(cf, "GET", "/zones/{zone}/origin_tls_client_auth")[1]["result"]
    assert all("private_key" not in c and "_private_key" not in c for c in listing)
    # The same view for lab code in another process.
    resp = requests.get(f"{cf.url}/_standin/zone_settings", params={"zone": ZONE}, timeout=10)
    assert resp.status_code == 200 and resp.json() == cf.zone_settings(ZONE)
    assert requests.get(f"{cf.url}/_standin/zone_settings", params={"zone": "nope.example"}, timeout=10).status_code == 404


# -- origin_tls_client_auth ------------------------------------------------------------------------
def test_an_upload_is_pending_then_active_and_listed(cf):
    cert, key = keypair()
    status, body = call(cf, "POST", "/zones/{zone}/origin_tls_client_auth", json={"certificate": cert, "private_key": key})
    assert status == 200
    up = body["result"]
    assert up["status"] == "pending_deployment" and len(up["id"]) == 32 and up["certificate"] == cert
    assert up["signature"] == "ECDSAWithSHA256" and up["issuer"] == "Cloudflare origin pull (honeydue.example)"
    assert "private_key" not in up and set(up) == {"id", "certificate", "expires_on", "issuer", "signature",
                                                   "status", "uploaded_on"}
    cf.clock.now += 59
    assert call(cf, "GET", f"/zones/{{zone}}/origin_tls_client_auth/{up['id']}")[1]["result"]["status"] == \
        "pending_deployment"
    cf.clock.now += 1
    status, listing = call(cf, "GET", "/zones/{zone}/origin_tls_client_auth")
    assert [c["status"] for c in listing["result"]] == ["active"] and listing["result_info"]["count"] == 1


def test_the_same_certificate_twice_is_1406(cf):
    cert, key = keypair()
    call(cf, "POST", "/zones/{zone}/origin_tls_client_auth", json={"certificate": cert, "private_key": key})
    status, body = call(cf, "POST", "/zones/{zone}/origin_tls_client_auth",
                        json={"certificate": cert.replace("\n", "\r\n"), "private_key": key})
    assert status == 400 and body["errors"] == [{"code": 1406, "message": "This certificate already exists for this zone."}]


def test_invalid_certificates_and_keys_are_refused_with_the_vendors_codes(cf):
    cert, key = keypair()
    _, other_key = keypair()
    path = "/zones/{zone}/origin_tls_client_auth"
    assert codes(call(cf, "POST", path, json={"certificate": "-----BEGIN CERTIFICATE-----\nnope\n", "private_key": key})[1]) == [1002]
    assert codes(call(cf, "POST", path, json={"private_key": key})[1]) == [1002]
    assert codes(call(cf, "POST", path, json={"certificate": cert, "private_key": "garbage"})[1]) == [2106]
    encrypted = serialization.load_pem_private_key(key.encode(), None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")).decode()
    assert codes(call(cf, "POST", path, json={"certificate": cert, "private_key": encrypted})[1]) == [2106]
    status, body = call(cf, "POST", path, json={"certificate": cert, "private_key": other_key})
    assert status == 400 and codes(body) == [2200] and "pair you uploaded is invalid" in body["errors"][0]["message"]
    assert call(cf, "GET", path)[1]["result"] == []


def test_delete_is_pending_deletion_then_the_certificate_is_gone(cf):
    cert, key = keypair()
    up = call(cf, "POST", "/zones/{zone}/origin_tls_client_auth", json={"certificate": cert, "private_key": key})[1]["result"]
    status, body = call(cf, "DELETE", f"/zones/{{zone}}/origin_tls_client_auth/{up['id']}")
    assert status == 200 and body["result"]["status"] == "pending_deletion"
    # A certificate being deleted may be uploaded again.
    assert call(cf, "POST", "/zones/{zone}/origin_tls_client_auth", json={"certificate": cert, "private_key": key})[0] == 200
    cf.clock.now += 60
    listing = call(cf, "GET", "/zones/{zone}/origin_tls_client_auth")[1]["result"]
    assert [c["status"] for c in listing] == ["active"] and listing[0]["id"] != up["id"]
    assert codes(call(cf, "GET", f"/zones/{{zone}}/origin_tls_client_auth/{up['id']}")[1]) == [7003]


def test_aop_settings_are_false_by_default_and_put_takes_a_boolean(cf):
    assert call(cf, "GET", "/zones/{zone}/origin_tls_client_auth/settings")[1]["result"] == {"enabled": False}
    status, body = call(cf, "PUT", "/zones/{zone}/origin_tls_client_auth/settings", json={"enabled": True})
    assert status == 200 and body["result"] == {"enabled": True}
    assert call(cf, "GET", "/zones/{zone}/origin_tls_client_auth/settings")[1]["result"] == {"enabled": True}
    status, body = call(cf, "PUT", "/zones/{zone}/origin_tls_client_auth/settings", json={"enabled": "yes"})
    assert status == 400 and codes(body) == [1004]


def test_malformed_json_is_6007(cf):
    zone_id = cf.zone_by_name(ZONE)["id"]
    resp = requests.patch(f"{cf.url}/client/v4/zones/{zone_id}/settings/ssl", data=b"{value",
                          headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == 400 and codes(resp.json()) == [6007]


# -- token permissions -----------------------------------------------------------------------------
def test_a_dns_token_may_not_touch_ssl_or_certificates(cf):
    cf.add_token("dns-only-token", ["DNS Write", "Zone Read"])
    cert, key = keypair()
    assert call(cf, "GET", "/zones", token="dns-only-token")[0] == 200
    assert call(cf, "GET", "/zones/{zone}/dns_records", token="dns-only-token")[0] == 200
    refused = [
        call(cf, "GET", "/zones/{zone}/settings/ssl", token="dns-only-token"),
        call(cf, "PATCH", "/zones/{zone}/settings/ssl", token="dns-only-token", json={"value": "strict"}),
        call(cf, "POST", "/zones/{zone}/origin_tls_client_auth", token="dns-only-token",
             json={"certificate": cert, "private_key": key}),
        call(cf, "GET", "/zones/{zone}/origin_tls_client_auth", token="dns-only-token"),
        call(cf, "PUT", "/zones/{zone}/origin_tls_client_auth/settings", token="dns-only-token", json={"enabled": True}),
    ]
    for status, body in refused:
        assert status == 403 and body["errors"] == [{"code": 10000, "message": "Authentication error"}]
    assert cf.ssl_settings[cf.zone_by_name(ZONE)["id"]]["value"] == "flexible"
    assert call(cf, "GET", "/zones/{zone}/origin_tls_client_auth")[1]["result"] == []


def test_read_permission_reads_and_write_permission_writes(cf):
    cf.add_token("settings-reader", ["Zone Settings Read", "SSL and Certificates Read"])
    cf.add_token("ssl-editor", ["Zone Settings Write", "SSL and Certificates Write"])
    assert call(cf, "GET", "/zones/{zone}/settings/ssl", token="settings-reader")[0] == 200
    assert call(cf, "GET", "/zones/{zone}/origin_tls_client_auth/settings", token="settings-reader")[0] == 200
    assert call(cf, "PATCH", "/zones/{zone}/settings/ssl", token="settings-reader", json={"value": "strict"})[0] == 403
    assert call(cf, "GET", "/zones/{zone}/settings/ssl", token="ssl-editor")[0] == 200  # Write also reads
    assert call(cf, "PATCH", "/zones/{zone}/settings/ssl", token="ssl-editor", json={"value": "strict"})[0] == 200
    # ... but a token for settings cannot list zones or records.
    assert call(cf, "GET", "/zones", token="ssl-editor")[0] == 403
    assert call(cf, "POST", "/zones/{zone}/dns_records/batch", token="ssl-editor", json={"posts": []})[0] == 403


def test_tokens_are_added_through_the_control_api(cf):
    resp = requests.post(f"{cf.url}/_standin/tokens", json={"token": "t-ctl", "permissions": ["Zone Read"]}, timeout=10)
    assert resp.status_code == 204
    assert call(cf, "GET", "/zones", token="t-ctl")[0] == 200
    assert call(cf, "GET", "/zones/{zone}/settings/ssl", token="t-ctl")[0] == 403
    bad = requests.post(f"{cf.url}/_standin/tokens", json={"token": "t", "permissions": ["Everything"]}, timeout=10)
    assert bad.status_code == 400
    # An unknown token is still 9109, before any permission check.
    status, body = call(cf, "GET", "/zones/{zone}/settings/ssl", token="not-a-token")
    assert status == 403 and codes(body) == [9109]

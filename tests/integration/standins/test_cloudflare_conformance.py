"""The Cloudflare stand-in, endpoint by endpoint, against the vendor contract and envelope.

Each answer is checked twice: by the stand-in itself (``contract_violations``, asserted empty by the
``cloudflare_api`` fixture) and here, independently, against the unpatched ``common.yaml`` envelope
and the response schemas of the vendored OpenAPI document.
"""
from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from openapi_schema_validator import OAS30Validator

from lab.standins._openapi import Contract, load_spec
from tests.conftest import TOKEN

ZONE = "honeydue.example"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HEX32 = re.compile(r"^[0-9a-f]{32}$")
RECORD_REQUIRED = {"id", "zone_id", "zone_name", "name", "type", "content", "proxiable", "proxied",
                   "ttl", "locked", "meta", "comment", "tags", "created_on", "modified_on"}


def _envelope_validator(name: str) -> OAS30Validator:
    components = load_spec("cloudflare/common.yaml")["components"]
    return OAS30Validator({"components": components, "allOf": [{"$ref": f"#/components/schemas/{name}"}]})


SUCCESS = _envelope_validator("api-response-common")
FAILURE = _envelope_validator("api-response-common-failure")
VENDOR = Contract(load_spec("cloudflare/dns-zones.openapi.json"), "/client/v4")


def _without_null_comments(body: dict[str, Any]) -> dict[str, Any]:
    """The answer minus ``"comment": null`` -- the one known erratum of the vendored record schema
    (the real API answers null; the 2024-08 schema says string). Everything else is checked as is."""
    def strip(record: Any) -> Any:
        if isinstance(record, dict) and record.get("comment", "") is None:
            return {k: v for k, v in record.items() if k != "comment"}
        return record
    result = body.get("result")
    result = [strip(r) for r in result] if isinstance(result, list) else strip(result)
    return {**body, "result": result}


class Client:
    """``requests`` plus independent checks of every answer."""

    def __init__(self, api) -> None:
        self.api = api
        self.base = f"{api.url}/client/v4"
        self.zone_id = api.zone_by_name(ZONE)["id"]

    def call(self, method: str, path: str, *, headers: dict[str, str] | None = None,
             **kwargs: Any) -> requests.Response:
        path = path.replace("{zone}", self.zone_id)
        resp = requests.request(method, self.base + path, headers=AUTH if headers is None else headers,
                                timeout=10, **kwargs)
        body = resp.json()
        validator = SUCCESS if resp.status_code < 400 else FAILURE
        problems = [e.message for e in validator.iter_errors(body)]
        # The one known erratum of common.yaml: the real 429 carries code 971 (< its minimum 1000).
        problems = [p for p in problems if p != "971 is less than the minimum of 1000"]
        assert problems == [], (method, path, body)
        if resp.status_code >= 400:
            assert body["success"] is False and body["errors"] and body["result"] is None
        op = VENDOR.find(method, "/client/v4" + path.split("?")[0])
        if op is not None and resp.status_code == 200:
            problems = VENDOR.check_response(op, 200, _without_null_comments(body))
            assert problems == [], problems
        return resp

    def records(self, **params: str) -> requests.Response:
        return self.call("GET", "/zones/{zone}/dns_records", params=params)

    def create(self, **record: Any) -> requests.Response:
        return self.call("POST", "/zones/{zone}/dns_records", json=record)


@pytest.fixture
def cf(cloudflare_api) -> Client:
    return Client(cloudflare_api)


def _codes(resp: requests.Response) -> list[int]:
    return [e["code"] for e in resp.json()["errors"]]


# -- zones -----------------------------------------------------------------------------------------
def test_zone_list_filters_and_result_info(cf):
    cf.api.add_zone("other.example")
    resp = cf.call("GET", "/zones", params={"name": ZONE})
    assert resp.status_code == 200
    body = resp.json()
    assert [z["name"] for z in body["result"]] == [ZONE]
    assert HEX32.match(body["result"][0]["id"])
    assert body["result_info"] == {"page": 1, "per_page": 20, "count": 1, "total_count": 1, "total_pages": 1}
    assert [z["name"] for z in cf.call("GET", "/zones", params={"name": "ends_with:.example"}).json()["result"]] \
        == ["honeydue.example", "other.example"]
    assert cf.call("GET", "/zones", params={"name": "nothing.example"}).json()["result"] == []
    assert cf.call("GET", "/zones", params={"status": "pending"}).json()["result"] == []


def test_zone_pagination_and_per_page_limits(cf):
    for i in range(6):
        cf.api.add_zone(f"z{i}.example")
    page2 = cf.call("GET", "/zones", params={"per_page": "5", "page": "2"}).json()
    assert page2["result_info"] == {"page": 2, "per_page": 5, "count": 2, "total_count": 7, "total_pages": 2}
    for bad in ("4", "51"):  # the contract: 5 <= per_page <= 50
        assert cf.call("GET", "/zones", params={"per_page": bad}).status_code == 400


def test_zone_details_and_unknown_zone(cf):
    resp = cf.call("GET", f"/zones/{cf.zone_id}")
    assert resp.json()["result"]["name"] == ZONE
    assert _codes(cf.call("GET", "/zones/" + "0" * 32)) == [7003]
    assert _codes(cf.call("GET", "/zones/" + "0" * 32 + "/dns_records")) == [7003]


def test_control_endpoint_adds_a_zone(cf):
    resp = requests.post(f"{cf.api.url}/_standin/zones", json={"name": "lab.example"}, timeout=10)
    assert resp.status_code == 201
    assert [z["name"] for z in cf.call("GET", "/zones", params={"name": "lab.example"}).json()["result"]] \
        == ["lab.example"]


# -- records: CRUD ---------------------------------------------------------------------------------
def test_create_normalises_names_and_carries_every_field(cf):
    rec = cf.create(type="A", name="api", content="192.0.2.1", ttl=1, proxied=True).json()["result"]
    assert RECORD_REQUIRED <= set(rec)
    assert (rec["name"], rec["zone_id"], rec["zone_name"]) == (f"api.{ZONE}", cf.zone_id, ZONE)
    assert rec["proxiable"] is True and rec["locked"] is False and rec["comment"] is None
    apex = cf.create(type="TXT", name="@", content="v=spf1 -all").json()["result"]
    assert apex["name"] == ZONE and apex["proxiable"] is False and apex["proxied"] is False
    fqdn = cf.create(type="AAAA", name=f"v6.{ZONE}.", content="2001:db8::1").json()["result"]
    assert fqdn["name"] == f"v6.{ZONE}"


def test_get_patch_put_delete(cf):
    rid = cf.create(type="A", name="www", content="192.0.2.1", ttl=300, comment="web").json()["result"]["id"]
    path = f"/zones/{{zone}}/dns_records/{rid}"
    assert cf.call("GET", path).json()["result"]["ttl"] == 300
    patched = cf.call("PATCH", path, json={"content": "192.0.2.2"}).json()["result"]
    assert (patched["content"], patched["ttl"], patched["comment"]) == ("192.0.2.2", 300, "web")
    put = cf.call("PUT", path, json={"type": "A", "name": "www", "content": "192.0.2.3"}).json()["result"]
    assert (put["content"], put["ttl"], put["comment"], put["id"]) == ("192.0.2.3", 1, None, rid)
    assert cf.call("DELETE", path).json()["result"] == {"id": rid}
    assert _codes(cf.call("GET", path)) == [81044]
    assert cf.call("DELETE", path).status_code == 404


# -- records: listing ------------------------------------------------------------------------------
@pytest.fixture
def populated(cf) -> Client:
    for name, rtype, content, proxied in [("a", "A", "192.0.2.1", True), ("b", "A", "192.0.2.2", False),
                                          ("c", "AAAA", "2001:db8::1", False),
                                          ("d", "CNAME", f"a.{ZONE}", True), ("a", "TXT", "hello", False)]:
        assert cf.create(type=rtype, name=name, content=content, proxied=proxied).status_code == 200
    return cf


@pytest.mark.parametrize("params, expected", [
    ({"type": "A"}, {"a", "b"}),
    ({"name": f"a.{ZONE}"}, {"a"}),
    ({"name": f"a.{ZONE}", "type": "TXT"}, {"a"}),
    ({"content": "192.0.2.2"}, {"b"}),
    ({"proxied": "true"}, {"a", "d"}),
    ({"type": "AAAA", "content": "hello", "match": "any"}, {"a", "c"}),
    ({"type": "AAAA", "content": "hello"}, set()),
])
def test_list_filters(populated, params, expected):
    found = populated.records(**params).json()["result"]
    assert {r["name"].split(".")[0] for r in found} == expected


def test_list_order_direction_pagination(populated):
    by_type = [r["type"] for r in populated.records().json()["result"]]
    assert by_type == sorted(by_type)
    desc = [r["content"] for r in populated.records(order="content", direction="desc").json()["result"]]
    assert desc == sorted(desc, reverse=True)
    page = populated.records(per_page="2", page="3").json()
    assert page["result_info"] == {"page": 3, "per_page": 2, "count": 1, "total_count": 5, "total_pages": 3}
    assert populated.records(per_page="0").status_code == 400
    assert populated.records(order="colour").status_code == 400
    assert populated.records(proxied="yes").status_code == 400


# -- validation ------------------------------------------------------------------------------------
@pytest.mark.parametrize("record, code", [
    ({"type": "A", "name": "x", "content": "192.0.2.300"}, 9005),
    ({"type": "A", "name": "x", "content": "2001:db8::1"}, 9005),
    ({"type": "AAAA", "name": "x", "content": "192.0.2.1"}, 9006),
    ({"type": "CNAME", "name": "x", "content": "192.0.2.1"}, 1004),
    ({"type": "A", "name": "x", "content": "192.0.2.1", "ttl": 30}, 1004),
    ({"type": "A", "name": "x", "content": "192.0.2.1", "ttl": 90000}, 1004),
    ({"type": "TXT", "name": "x", "content": "t", "proxied": True}, 1004),
    ({"type": "A", "name": "x", "content": "192.0.2.1", "ttl": "300"}, 1004),
    ({"type": "A", "name": "x"}, 1004),
    ({"type": "BOGUS", "name": "x", "content": "y"}, 1004),
])
def test_invalid_records_are_refused(cf, record, code):
    resp = cf.create(**record)
    assert resp.status_code == 400 and _codes(resp) == [code]
    assert cf.records().json()["result"] == []


def test_ttl_chain_names_the_cause(cf):
    err = cf.create(type="A", name="x", content="192.0.2.1", ttl=59).json()["errors"][0]
    assert err["error_chain"] == [{"code": 9021,
                                   "message": "TTL must be between 60 and 86400 seconds, or 1 for Automatic."}]


def test_identical_and_cname_conflicts(cf):
    assert cf.create(type="A", name="api", content="192.0.2.1").status_code == 200
    assert _codes(cf.create(type="A", name="API.honeydue.example", content="192.0.2.1")) == [81058]
    assert cf.create(type="A", name="api", content="192.0.2.2").status_code == 200  # round robin is fine
    assert _codes(cf.create(type="CNAME", name="api", content="elsewhere.example")) == [81053]
    assert cf.create(type="CNAME", name="alias", content="elsewhere.example").status_code == 200
    assert _codes(cf.create(type="A", name="alias", content="192.0.2.9")) == [81054]
    assert _codes(cf.create(type="CNAME", name="alias", content="other.example")) == [81053]


def test_malformed_json_and_unknown_routes(cf):
    resp = cf.call("POST", "/zones/{zone}/dns_records", data=b"{not json",
                   headers={**AUTH, "Content-Type": "application/json"})
    assert _codes(resp) == [6007]
    assert _codes(cf.call("GET", "/nothing/here")) == [7000]
    assert cf.call("DELETE", "/zones").status_code == 405


# -- batch -----------------------------------------------------------------------------------------
def test_batch_runs_deletes_patches_puts_posts_in_that_order(cf):
    old = cf.create(type="A", name="old", content="192.0.2.1").json()["result"]["id"]
    keep = cf.create(type="A", name="keep", content="192.0.2.2").json()["result"]["id"]
    swap = cf.create(type="TXT", name="swap", content="before").json()["result"]["id"]
    # The post re-creates exactly the record being deleted: only legal because deletes run first.
    body = {"posts": [{"type": "A", "name": "old", "content": "192.0.2.1"}],
            "puts": [{"id": swap, "type": "TXT", "name": "swap", "content": "after"}],
            "patches": [{"id": keep, "ttl": 600}],
            "deletes": [{"id": old}]}
    resp = cf.call("POST", "/zones/{zone}/dns_records/batch", json=body)
    assert resp.status_code == 200, resp.json()
    result = resp.json()["result"]
    assert [r["id"] for r in result["deletes"]] == [old]
    assert result["patches"][0]["ttl"] == 600 and result["puts"][0]["content"] == "after"
    assert result["posts"][0]["id"] != old
    names = sorted((r["name"], r["content"]) for r in cf.records().json()["result"])
    assert names == [(f"keep.{ZONE}", "192.0.2.2"), (f"old.{ZONE}", "192.0.2.1"), (f"swap.{ZONE}", "after")]


def test_batch_is_all_or_nothing(cf):
    rid = cf.create(type="A", name="stay", content="192.0.2.1").json()["result"]["id"]
    before = cf.records().json()["result"]
    body = {"deletes": [{"id": rid}],
            "posts": [{"type": "A", "name": "new", "content": "192.0.2.5"},
                      {"type": "A", "name": "bad", "content": "not-an-ip"}]}
    resp = cf.call("POST", "/zones/{zone}/dns_records/batch", json=body)
    assert resp.status_code == 400
    err = resp.json()["errors"][0]
    assert err["code"] == 9005 and err["source"] == {"pointer": "/posts/1"}
    assert cf.records().json()["result"] == before


def test_batch_shape_and_size_limit(cf):
    batch = "/zones/{zone}/dns_records/batch"
    assert cf.call("POST", batch, json={"deletes": [{}]}).status_code == 400
    assert cf.call("POST", batch, json={"upserts": []}).status_code == 400
    assert cf.call("POST", batch, json=[]).status_code == 400
    posts = [{"type": "TXT", "name": f"t{i}", "content": "x"} for i in range(201)]
    assert cf.call("POST", batch, json={"posts": posts}).status_code == 400
    assert cf.call("POST", batch, json={"posts": posts[:200]}).status_code == 200
    assert len(cf.records(per_page="500").json()["result"]) == 200


# -- auth ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("headers, status, code", [
    ({}, 400, 9106),
    ({"Authorization": "Token abc"}, 400, 6003),
    ({"Authorization": "Bearer wrong-token"}, 403, 9109),
    ({"X-Auth-Email": "ops@honeydue.example", "X-Auth-Key": "wrong"}, 403, 9103),
])
def test_auth_failures(cf, headers, status, code):
    for path in ("/zones", "/zones/{zone}/dns_records"):
        resp = cf.call("GET", path, headers=headers)
        assert (resp.status_code, _codes(resp)) == (status, [code])


def test_api_key_auth_is_accepted(cf):
    resp = cf.call("GET", "/zones", headers={"X-Auth-Email": "ops@honeydue.example", "X-Auth-Key": TOKEN})
    assert resp.status_code == 200


# -- faults ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, status", [("rate_limit", 429), ("server_error", 500),
                                          ("conflict", 400), ("locked", 400)])
def test_faults_answer_in_the_envelope(cf, kind, status):
    cf.api.inject(kind, method="GET", path="/dns_records$")
    resp = cf.records()
    assert resp.status_code == status
    if kind == "rate_limit":
        assert resp.headers["retry-after"] == "1" and _codes(resp) == [971]
    assert cf.records().status_code == 200  # only once


# -- proxied records: TTL 1 (Auto), whatever is sent ------------------------------------------------
def test_proxied_records_are_stored_and_answered_with_ttl_1(cf):
    """https://developers.cloudflare.com/dns/proxy-status/: proxied records have TTL Auto, not editable."""
    made = cf.create(type="A", name="p", content="192.0.2.1", ttl=300, proxied=True).json()["result"]
    assert made["ttl"] == 1
    path = f"/zones/{{zone}}/dns_records/{made['id']}"
    assert cf.call("PATCH", path, json={"ttl": 600}).json()["result"]["ttl"] == 1
    put = cf.call("PUT", path, json={"type": "A", "name": "p", "content": "192.0.2.2", "ttl": 3600, "proxied": True})
    assert put.json()["result"]["ttl"] == 1
    unproxied = cf.call("PATCH", path, json={"proxied": False, "ttl": 120}).json()["result"]
    assert (unproxied["proxied"], unproxied["ttl"]) == (False, 120)  # DNS-only records keep their TTL
    assert cf.call("PATCH", path, json={"proxied": True}).json()["result"]["ttl"] == 1
    plain = cf.create(type="A", name="q", content="192.0.2.3", ttl=300).json()["result"]["id"]
    body = {"posts": [{"type": "A", "name": "r", "content": "192.0.2.4", "ttl": 900, "proxied": True}],
            "patches": [{"id": plain, "proxied": True, "ttl": 300}],
            "puts": [{"id": made["id"], "type": "A", "name": "p", "content": "192.0.2.5", "ttl": 60, "proxied": True}]}
    result = cf.call("POST", "/zones/{zone}/dns_records/batch", json=body).json()["result"]
    assert [r["ttl"] for key in ("patches", "puts", "posts") for r in result[key]] == [1, 1, 1]
    assert {r["ttl"] for r in cf.records().json()["result"]} == {1}
    # The TTL sent is still checked (the stand-in's choice): out of range is refused, proxied or not.
    assert _codes(cf.create(type="A", name="s", content="192.0.2.6", ttl=5, proxied=True)) == [1004]


# -- the global rate limit ------------------------------------------------------------------------
def test_every_answer_carries_the_rate_limit_headers(cf):
    resp = cf.call("GET", "/zones")
    assert resp.headers["Ratelimit-Policy"] == '"default";q=1200;w=300'
    assert resp.headers["Ratelimit"].startswith('"default";r=1199;t=')


def test_past_the_limit_every_call_is_blocked_with_retry_after(cf):
    """1,200 requests per 5 minutes, then blocked for 5 minutes (here: a limit of 3, set by the control API)."""
    ctl = f"{cf.api.url}/_standin/rate_limit"
    assert requests.post(ctl, json={"limit": 3}, timeout=10).status_code == 204
    assert requests.get(ctl, timeout=10).json() == {"limit": 3, "window": 300.0, "block": 300.0, "retry_after": 1}
    assert [cf.call("GET", "/zones").status_code for _ in range(3)] == [200] * 3
    batch = {"posts": [{"type": "A", "name": "x", "content": "192.0.2.1"}]}
    for resp in (cf.call("GET", "/zones"), cf.call("POST", "/zones/{zone}/dns_records/batch", json=batch)):
        assert resp.status_code == 429 and _codes(resp) == [971]
        assert resp.headers["retry-after"] == "300" and resp.headers["Ratelimit"] == '"default";r=0;t=300'
    assert cf.api.records[cf.zone_id] == {}  # the refused batch was not applied
    assert requests.post(ctl, json={"limit": None}, timeout=10).status_code == 204
    assert cf.call("GET", "/zones").status_code == 200 and "Ratelimit" not in cf.call("GET", "/zones").headers
    assert requests.post(ctl, json={"block": 301}, timeout=10).status_code == 400


def test_the_injected_rate_limit_can_ask_for_up_to_300_seconds(cf):
    assert requests.post(f"{cf.api.url}/_standin/rate_limit", json={"retry_after": 300}, timeout=10).status_code == 204
    assert requests.post(f"{cf.api.url}/_standin/rate_limit", json={"retry_after": 301}, timeout=10).status_code == 400
    assert requests.post(f"{cf.api.url}/_standin/faults", json={"kind": "rate_limit", "path": "/zones$"},
                         timeout=10).status_code == 204
    resp = cf.call("GET", "/zones")
    assert resp.status_code == 429 and resp.headers["retry-after"] == "300"


# -- a lost answer ----------------------------------------------------------------------------------
def test_a_batch_whose_answer_is_lost_was_applied_and_a_resend_is_refused(cf):
    assert requests.post(f"{cf.api.url}/_standin/faults", json={"method": "POST", "path": "/batch$", "drop": "after"},
                         timeout=10).status_code == 204
    rid = cf.create(type="A", name="old", content="192.0.2.9").json()["result"]["id"]
    body = {"deletes": [{"id": rid}], "posts": [{"type": "A", "name": "new", "content": "192.0.2.1"}]}
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{cf.base}/zones/{cf.zone_id}/dns_records/batch", json=body, headers=AUTH, timeout=10)
    assert [(r["name"], r["content"]) for r in cf.records().json()["result"]] == [(f"new.{ZONE}", "192.0.2.1")]
    resp = cf.call("POST", "/zones/{zone}/dns_records/batch", json=body)
    assert resp.status_code == 404 and _codes(resp) == [81044]  # the delete: the record is gone
    resp = cf.call("POST", "/zones/{zone}/dns_records/batch", json={"posts": body["posts"]})
    assert resp.status_code == 400 and _codes(resp) == [81058]  # the post: an identical record exists

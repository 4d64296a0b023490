"""The Cloudflare client's retry policy against the stand-in (in process, no sleeping).

Reads are retried on 429, 5xx and lost connections; a write is sent again only after 429 (refused
before processing) and otherwise fails with ``outcome`` ``unknown``; a 429 whose wait would exceed
``max_wait`` fails at once, naming the wait.
"""
from __future__ import annotations

import pytest

from ansible_collections.honeydue.infra.plugins.module_utils._cloudflare import (
    CloudflareClient, CloudflareError, retry_after_seconds)
from tests.conftest import TOKEN

ZONE = "honeydue.example"
POST = {"posts": [{"type": "A", "name": "api", "content": "203.0.113.10", "proxied": True, "ttl": 1}]}


@pytest.fixture
def client(cloudflare_api):
    slept: list[float] = []
    c = CloudflareClient(TOKEN, f"{cloudflare_api.url}/client/v4", timeout=5, max_wait=60, sleep=slept.append)
    c.slept = slept
    c.zone = cloudflare_api.zone_by_name(ZONE)["id"]
    return c


def records(api, zone):
    return sorted(r["content"] for r in api.records[zone].values())


@pytest.mark.parametrize("fault", [{"kind": "server_error"}, {"drop": "before"}, {"drop": "after"}])
def test_reads_are_retried_on_5xx_and_lost_answers(cloudflare_api, client, fault):
    cloudflare_api.inject(fault.get("kind"), method="GET", path="/dns_records$", drop=fault.get("drop"))
    assert client.list_records(client.zone) == []
    assert [c.status for c in cloudflare_api.calls("GET", "/dns_records$")] == [500 if "kind" in fault else 0, 200]
    assert client.slept == [0.5]


@pytest.mark.parametrize("drop, landed", [("before", False), ("after", True)])
def test_a_write_whose_answer_is_lost_is_not_resent(cloudflare_api, client, drop, landed):
    cloudflare_api.inject(method="POST", path="/batch$", drop=drop)
    with pytest.raises(CloudflareError) as err:
        client.batch(client.zone, POST)
    assert err.value.status is None and err.value.outcome == "unknown"
    assert "may or may not have been applied" in err.value.summary()
    assert err.value.as_dict()["outcome"] == "unknown"
    assert len(cloudflare_api.calls("POST", "/batch$")) == 1 and client.slept == []
    assert records(cloudflare_api, client.zone) == (["203.0.113.10"] if landed else [])


def test_a_write_answered_5xx_is_not_resent(cloudflare_api, client):
    cloudflare_api.inject("server_error", method="POST", path="/batch$")
    with pytest.raises(CloudflareError) as err:
        client.batch(client.zone, POST)
    assert (err.value.status, err.value.outcome) == (500, "unknown")
    assert len(cloudflare_api.calls("POST", "/batch$")) == 1


def test_a_resent_landed_write_fails_like_cloudflare_stale_view(cloudflare_api, client):
    """Why a blind retry is wrong: the landed post now exists, so Cloudflare refuses it (81058)."""
    client.batch(client.zone, POST)
    with pytest.raises(CloudflareError) as err:
        client.batch(client.zone, POST)
    assert err.value.status == 400 and [e["code"] for e in err.value.errors] == [81058]
    assert err.value.outcome == "stale"


def test_a_rate_limited_write_is_sent_again_after_retry_after(cloudflare_api, client):
    cloudflare_api.inject(method="POST", path="/batch$", response=cloudflare_api.rate_limited(7))
    client.batch(client.zone, POST)
    assert [c.status for c in cloudflare_api.calls("POST", "/batch$")] == [429, 200] and client.slept == [7.0]
    assert records(cloudflare_api, client.zone) == ["203.0.113.10"]


def test_a_wait_past_max_wait_fails_at_once_naming_it(cloudflare_api, client):
    cloudflare_api.inject(method="GET", path="/zones$", response=cloudflare_api.rate_limited(300))
    with pytest.raises(CloudflareError) as err:
        client.zone_id(ZONE)
    assert client.slept == [] and client.calls == 1
    msg = err.value.summary()
    assert "HTTP 429" in msg and "971" in msg and "wait 300 s (retry-after)" in msg and "max_wait=60 s" in msg
    assert err.value.as_dict()["retry_after"] == 300.0


def test_the_real_rate_limit_blocks_and_says_for_how_long(cloudflare_api, client):
    cloudflare_api.configure_rate_limit(limit=2, window=300, block=300)
    client.zone_id(ZONE)
    client.list_records(client.zone)
    with pytest.raises(CloudflareError) as err:
        client.batch(client.zone, POST)
    assert err.value.status == 429 and err.value.retry_after == 300.0 and err.value.outcome == "refused"
    assert client.slept == [] and records(cloudflare_api, client.zone) == []


@pytest.mark.parametrize("headers, seconds", [
    ({"retry-after": "300"}, 300.0), ({"retry-after": "1.5"}, 1.5), ({}, 1.0), ({"retry-after": "soon"}, 1.0),
    ({"retry-after": "Sat, 28 Nov 2026 07:00:30 GMT"}, 30.0),
])
def test_retry_after_seconds(headers, seconds):
    now = 1795849200.0  # Sat, 28 Nov 2026 07:00:00 GMT
    assert retry_after_seconds(headers, now=now) == pytest.approx(seconds)

"""community.general.cloudflare_dns (through the test-only wrapper) against the Cloudflare stand-in."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import TOKEN

REPO = Path(__file__).resolve().parents[3]
LIBRARY = str(REPO / "lab" / "ansible" / "library")
ZONE = "honeydue.example"
FQDN = f"api.{ZONE}"


def _play(state: str = "present", **extra: Any) -> list[dict[str, Any]]:
    args = {"zone": ZONE, "record": "api", "type": "A", "value": "192.0.2.10", "proxied": True,
            "state": state, "api_token": TOKEN, **extra}
    return [{"hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "record", "cloudflare_dns_standin": args}]}]


def _env(api) -> dict[str, str]:
    return {"CLOUDFLARE_API_BASE_URL": f"{api.url}/client/v4", "ANSIBLE_LIBRARY": LIBRARY}


def _zone_records(api) -> list[dict[str, Any]]:
    zone = api.zone_by_name(ZONE)
    return list(api.records[zone["id"]].values())


def test_present_is_four_calls_then_idempotent_then_absent(cloudflare_api, playbook):
    zone_id = cloudflare_api.zone_by_name(ZONE)["id"]
    first = playbook(_play(), env=_env(cloudflare_api))
    assert first.rc == 0, first.stdout + first.stderr
    assert first.task_results("record")["changed"] is True
    records = _zone_records(cloudflare_api)
    assert [(r["name"], r["content"], r["proxied"]) for r in records] == [(FQDN, "192.0.2.10", True)]
    # Measured: zone lookup twice (_get_zone_id in ensure_dns_record and in get_dns_records),
    # one filtered list, one create.
    assert cloudflare_api.sequence() == [
        "GET /client/v4/zones", "GET /client/v4/zones",
        f"GET /client/v4/zones/{zone_id}/dns_records", f"POST /client/v4/zones/{zone_id}/dns_records"]
    listing = cloudflare_api.calls("GET", "/dns_records$")[0]
    assert listing.query == {"type": ["A"], "name": [FQDN], "content": ["192.0.2.10"]}
    assert cloudflare_api.calls("GET", "/zones$")[0].query == {"name": [ZONE]}

    cloudflare_api.log.clear()
    second = playbook(_play(), env=_env(cloudflare_api))
    assert second.rc == 0, second.stdout + second.stderr
    assert second.task_results("record")["changed"] is False
    assert [c.method for c in cloudflare_api.log] == ["GET", "GET", "GET"]

    cloudflare_api.log.clear()
    gone = playbook(_play("absent"), env=_env(cloudflare_api))
    assert gone.rc == 0, gone.stdout + gone.stderr
    assert gone.task_results("record")["changed"] is True
    assert _zone_records(cloudflare_api) == []
    assert cloudflare_api.sequence()[-1] == f"DELETE /client/v4/zones/{zone_id}/dns_records/{records[0]['id']}"


def test_changed_ttl_is_a_put(cloudflare_api, playbook):
    assert playbook(_play(proxied=False), env=_env(cloudflare_api)).rc == 0
    cloudflare_api.log.clear()
    run = playbook(_play(proxied=False, ttl=300), env=_env(cloudflare_api))
    assert run.rc == 0, run.stdout + run.stderr
    assert [c.method for c in cloudflare_api.log] == ["GET", "GET", "GET", "PUT"]
    assert _zone_records(cloudflare_api)[0]["ttl"] == 300


def test_a_ttl_on_a_proxied_record_is_put_on_every_run(cloudflare_api, playbook):
    """Cloudflare stores TTL 1 for proxied records whatever is sent, and cloudflare_dns compares the TTL
    it sends with the one it reads: it PUTs again on every run (DNSControl/dnscontrol#489 saw the same)."""
    assert playbook(_play(), env=_env(cloudflare_api)).rc == 0
    for _ in range(2):
        cloudflare_api.log.clear()
        run = playbook(_play(ttl=300), env=_env(cloudflare_api))
        assert run.rc == 0, run.stdout + run.stderr
        assert run.task_results("record")["changed"] is True
        assert [c.method for c in cloudflare_api.log] == ["GET", "GET", "GET", "PUT"]
        assert _zone_records(cloudflare_api)[0]["ttl"] == 1


def test_vendor_refusal_fails_the_task(cloudflare_api, playbook):
    run = playbook(_play(value="192.0.2.300"), env=_env(cloudflare_api))
    assert run.rc != 0
    assert "9005" in run.task_results("record")["msg"]
    assert _zone_records(cloudflare_api) == []


def test_wrapper_refuses_without_base_url(cloudflare_api, playbook):
    run = playbook(_play(), env={"ANSIBLE_LIBRARY": LIBRARY})
    assert run.rc != 0
    assert "CLOUDFLARE_API_BASE_URL" in run.task_results("record")["msg"]
    assert cloudflare_api.log == []


def test_rate_limit_is_not_retried_by_community_general(cloudflare_api, playbook):
    """cloudflare_dns fails on 429 ('API client is rate limited'); it has no retry."""
    cloudflare_api.inject("rate_limit", method="POST", path="/dns_records$")
    run = playbook(_play(), env=_env(cloudflare_api))
    assert run.rc != 0
    assert "rate limited" in run.task_results("record")["msg"]
    assert [(c.method, c.status) for c in cloudflare_api.log][-1] == ("POST", 429)


def _post_with_retry(url: str, body: dict[str, Any], attempts: int = 3) -> requests.Response:
    """A client that honours ``retry-after`` on 429."""
    import time

    for _ in range(attempts):
        resp = requests.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        if resp.status_code != 429:
            return resp
        time.sleep(float(resp.headers["retry-after"]))
    return resp


@pytest.mark.parametrize("times", [1, 2])
def test_rate_limit_then_success_with_retry_after(cloudflare_api, times):
    zone_id = cloudflare_api.zone_by_name(ZONE)["id"]
    cloudflare_api.inject("rate_limit", method="POST", path="/dns_records$", times=times)
    resp = _post_with_retry(f"{cloudflare_api.url}/client/v4/zones/{zone_id}/dns_records",
                            {"type": "A", "name": "api", "content": "192.0.2.10", "ttl": 1})
    assert resp.status_code == 200 and resp.json()["success"] is True
    assert [(c.status, c.fault) for c in cloudflare_api.log] == [(429, True)] * times + [(200, False)]
    first = cloudflare_api.log[0]
    assert first.method == "POST"
    assert len(_zone_records(cloudflare_api)) == 1

"""The Hetzner stand-in answers like the vendor does today (its pinned TODAY), not like a year ago.

Each test exercises one dated or documented vendor behaviour through plain HTTP, every answer
checked against the contract as of that day (:class:`Api` from the conformance suite).
"""
from __future__ import annotations

import time
from datetime import date
from typing import Any

import pytest
import requests

from lab.standins._hcloud_today import TODAY, contract_as_of, dated_removals
from lab.standins._openapi import load_spec
from lab.standins.hcloud import HcloudStandIn
from tests.conftest import TOKEN
from tests.integration.standins.test_hcloud_conformance import KEY_A, Api, field_names


@pytest.fixture
def api(hcloud_api) -> Api:
    return Api(hcloud_api)


def test_today_is_pinned_not_the_wall_clock() -> None:
    assert TODAY == date(2026, 11, 28)
    assert HcloudStandIn().today == TODAY


def test_the_contract_announces_the_datacenter_removal() -> None:
    removals = {(r.owner.rsplit("/", 1)[-1], r.name): r.after for r in dated_removals(load_spec("hetzner/hcloud.openapi.json"))}
    assert removals[("server", "datacenter")] == date(2026, 7, 1)
    assert removals[("create_server_request", "datacenter")] == date(2026, 7, 1)
    assert removals[("create_primary_ip_request", "datacenter")] == date(2026, 7, 1)
    spec, gone = contract_as_of(load_spec("hetzner/hcloud.openapi.json"), TODAY)
    server = spec["components"]["schemas"]["server"]
    assert "datacenter" not in server["properties"] and "datacenter" not in server["required"]
    assert {r.name for r in gone} == {"datacenter"}
    _, before = contract_as_of(load_spec("hetzner/hcloud.openapi.json"), date(2026, 7, 1))
    assert before == []  # "removed after 1 July 2026": still there on that day


def test_servers_carry_location_and_never_datacenter(api: Api) -> None:
    created = api.server("web-1", location="hel1")
    listed = api.ok("GET", "/servers")["servers"]
    got = api.ok("GET", f"/servers/{created['server']['id']}")["server"]
    for server in (created["server"], listed[0], got):
        assert "datacenter" not in server
        assert server["location"]["name"] == "hel1"


def test_a_request_with_datacenter_is_refused(api: Api) -> None:
    body = {"name": "web-1", "server_type": "cx33", "image": "ubuntu-24.04", "datacenter": "nbg1-dc3"}
    error = api.err("POST", "/servers", 400, "invalid_input", json=body)
    assert field_names(error) == ["datacenter"]
    assert "removed" in error["details"]["fields"][0]["messages"][0]
    assert api.ok("GET", "/servers")["servers"] == []


def test_datacenters_endpoints_are_gone(api: Api) -> None:
    for path in ("/datacenters", "/datacenters/2"):
        error = api.err("GET", path, 410, "deprecated_api_endpoint")
        assert error["details"]["announcement"].startswith("https://docs.hetzner.cloud/changelog#")


def test_before_the_removal_dates_the_old_api_answers() -> None:
    """The removals follow the pinned day: on 30 June 2026 datacenter was still sent and accepted."""
    with HcloudStandIn(token=TOKEN, today=date(2026, 6, 30)) as old:
        api = Api(old)
        api.ok("GET", "/datacenters")
        server = api.ok("POST", "/servers", 201, json={"name": "a", "server_type": "cx33",
                                                       "image": "ubuntu-24.04", "datacenter": "fsn1-dc14"})["server"]
        assert server["datacenter"]["name"] == "fsn1-dc14" and server["location"]["name"] == "fsn1"
        # checked against today's contract by Api, which has no datacenter: no violation either way
        assert not old.contract_violations


# -- locked servers --------------------------------------------------------------------------------
def test_a_label_selector_firewall_locks_each_new_server_while_it_applies(api: Api) -> None:
    standin = api.standin
    fw = api.ok("POST", "/firewalls", 201, json={
        "name": "fw", "rules": [{"direction": "in", "protocol": "tcp", "port": "22", "source_ips": ["0.0.0.0/0"]}],
        "apply_to": [{"type": "label_selector", "label_selector": {"selector": "cluster=honeydue"}}]})["firewall"]
    standin.firewall_apply_delay = 1.0
    inside = api.server("node1", labels={"cluster": "honeydue"})["server"]
    outside = api.server("other", labels={"cluster": "else"})["server"]
    running = [a for a in standin.actions.values() if a.command == "apply_firewall" and a.status == "running"]
    assert [(a.resources) for a in running] == [[("firewall", fw["id"]), ("server", inside["id"])]]
    got = api.ok("GET", f"/servers/{inside['id']}")["server"]
    assert got["public_net"]["firewalls"] == [{"id": fw["id"], "status": "pending"}]
    for path, body in [("change_protection", {"delete": True, "rebuild": True}), ("poweroff", None)]:
        api.err("POST", f"/servers/{inside['id']}/actions/{path}", 423, "locked", json=body)
    api.err("DELETE", f"/servers/{inside['id']}", 423, "locked")
    api.ok("POST", f"/servers/{outside['id']}/actions/poweroff", 201)  # not matched, not locked
    locked_on = api.ok("GET", f"/servers/{inside['id']}/actions", params={"status": "running"})["actions"]
    assert "apply_firewall" in {a["command"] for a in locked_on}
    time.sleep(1.1)
    api.ok("POST", f"/servers/{inside['id']}/actions/change_protection", 201, json={"delete": True, "rebuild": True})
    got = api.ok("GET", f"/servers/{inside['id']}")["server"]
    assert got["public_net"]["firewalls"] == [{"id": fw["id"], "status": "applied"}]


def test_relabelling_a_server_into_a_selector_applies_the_firewall(api: Api) -> None:
    api.ok("POST", "/firewalls", 201, json={
        "name": "fw", "apply_to": [{"type": "label_selector", "label_selector": {"selector": "cluster=honeydue"}}]})
    api.standin.firewall_apply_delay = 5.0
    sid = api.server("node1")["server"]["id"]
    api.ok("GET", f"/servers/{sid}")  # create and start finish
    api.ok("PUT", f"/servers/{sid}", json={"labels": {"cluster": "honeydue"}})
    api.err("POST", f"/servers/{sid}/actions/reboot", 423, "locked")


# -- pagination --------------------------------------------------------------------------------------
def _follow_next(api: Api, path: str, **params: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    items, metas, page = [], [], 1
    while page is not None:
        resp = api.call("GET", path, params={**params, "page": page, "per_page": 50})
        body = resp.json()
        items.extend(body["servers"])
        metas.append({**body["meta"]["pagination"], "link": resp.headers.get("Link", "")})
        page = body["meta"]["pagination"]["next_page"]
    return items, metas


def test_pagination_with_unknown_totals_is_followed_by_next_page(api: Api) -> None:
    for i in range(120):
        api.standin.servers[i + 1] = _bare_server(api.standin, i)
    api.standin.unknown_totals = True
    items, metas = _follow_next(api, "/servers")
    assert len(items) == 120 and len({s["id"] for s in items}) == 120
    assert [m["page"] for m in metas] == [1, 2, 3]
    assert all(m["last_page"] is None and m["total_entries"] is None for m in metas)
    assert all('rel="last"' not in m["link"] for m in metas)
    assert 'rel="next"' in metas[0]["link"] and 'rel="next"' not in metas[-1]["link"]
    next_url = requests.utils.parse_header_links(metas[0]["link"])[0]["url"]
    assert "page=2" in next_url and "per_page=50" in next_url


def test_pagination_with_known_totals_has_a_last_link(api: Api) -> None:
    for i in range(60):
        api.standin.servers[i + 1] = _bare_server(api.standin, i)
    _, metas = _follow_next(api, "/servers")
    assert (metas[0]["last_page"], metas[0]["total_entries"]) == (2, 60)
    assert 'rel="last"' in metas[0]["link"]


def _bare_server(standin: HcloudStandIn, i: int) -> dict[str, Any]:
    server = standin._new_server({"name": f"bulk-{i:03d}", "server_type": "cx33", "image": "ubuntu-24.04"})
    server["status"] = "running"
    return server


# -- smaller rules -----------------------------------------------------------------------------------
@pytest.mark.parametrize("port, ok", [
    ("22", True), ("2379-2380", True), ("1-65535", True), ("65535", True),
    ("0", False), ("65536", False), ("80,443", False), ("any", False), ("2380-2379", False), ("22-", False),
])
def test_firewall_rule_ports(api: Api, port: str, ok: bool) -> None:
    body = {"name": "fw", "rules": [{"direction": "in", "protocol": "tcp", "port": port, "source_ips": ["10.0.0.0/8"]}]}
    if ok:
        api.ok("POST", "/firewalls", 201, json=body)
    else:
        api.err("POST", "/firewalls", 400, "invalid_input", json=body)
        assert api.ok("GET", "/firewalls")["firewalls"] == []


def test_reserved_label_prefix_is_refused(api: Api) -> None:
    error = api.err("POST", "/servers", 400, "invalid_input", json={
        "name": "a", "server_type": "cx33", "image": "ubuntu-24.04", "labels": {"hetzner.cloud/x": "y"}})
    assert field_names(error) == ["labels"]
    api.ok("POST", "/ssh_keys", 201, json={"name": "k", "labels": {"example.com/x": "y"}, "public_key": KEY_A})

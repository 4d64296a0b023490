"""Conformance of the Hetzner Cloud stand-in: every implemented endpoint, answers checked against the contract.

Each call goes through :class:`Api`, which validates the answer itself (success answers against the
operation's documented response, errors against ``error_response``) independently of the stand-in's
own audit; the ``hcloud_api`` fixture additionally asserts the stand-in recorded no violation.
"""
from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
import requests

from lab.standins.hcloud import ERROR_SCHEMA, hcloud_contract
from tests.conftest import TOKEN

CONTRACT = hcloud_contract()
KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGz5p4ShwQh3Jc3m6Ot6gYb7mv5l+3Ww0T5fJ9j1k4bF a@x"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB6k8Sx0k1m6oZ5wY3s1p2xq9rT4uV7yZ0aBcDeFgHiJ b@x"


class Api:
    """Plain-requests client that checks every answer against the contract."""

    def __init__(self, standin: Any) -> None:
        self.standin = standin
        self.base = standin.url + "/v1"
        self.session = requests.Session()

    def call(self, method: str, path: str, *, token: str | None = TOKEN, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kwargs.pop("headers", {}))
        resp = self.session.request(method, self.base + path, headers=headers, timeout=10, **kwargs)
        body = resp.json() if resp.content else None
        for header in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
            assert header in resp.headers, f"{method} {path}: no {header}"
        if resp.status_code >= 400:
            problems = CONTRACT.schema_errors("error_response", ERROR_SCHEMA, body)
        else:
            op = CONTRACT.find(method, "/v1" + path)
            assert op is not None, f"{method} {path} answered {resp.status_code} but is not in the contract"
            problems = CONTRACT.check_response(op, resp.status_code, body)
        assert problems == [], f"{method} {path} -> {resp.status_code}: {problems}"
        return resp

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        resp = self.call(method, path, **kwargs)
        assert resp.status_code == status, resp.text
        return resp.json() if resp.content else None

    def err(self, method: str, path: str, status: int, code: str, **kwargs: Any) -> dict[str, Any]:
        resp = self.call(method, path, **kwargs)
        assert resp.status_code == status, resp.text
        error = resp.json()["error"]
        assert error["code"] == code, error
        return error

    def server(self, name: str, **extra: Any) -> dict[str, Any]:
        body = {"name": name, "server_type": "cx33", "image": "ubuntu-24.04", **extra}
        return self.ok("POST", "/servers", 201, json=body)


@pytest.fixture
def api(hcloud_api) -> Api:
    return Api(hcloud_api)


def field_names(error: dict[str, Any]) -> list[str]:
    return [f["name"] for f in error["details"]["fields"]]


# -- auth, routing, validation --------------------------------------------------------------------
def test_unauthorized_without_or_with_wrong_token(api: Api) -> None:
    for token in (None, "wrong"):
        resp = api.call("GET", "/servers", token=token)
        assert resp.status_code == 401
        assert resp.json() == {"error": {"code": "unauthorized", "message": "unable to authenticate", "details": {}}}


def test_unknown_path_and_method(api: Api) -> None:
    api.err("GET", "/nope", 404, "not_found")
    api.err("DELETE", "/server_types", 404, "not_found")
    api.err("GET", "/servers/424242", 404, "not_found")
    api.err("GET", "/servers/abc", 400, "invalid_input")


def test_invalid_requests_get_invalid_input(api: Api) -> None:
    error = api.err("POST", "/servers", 400, "invalid_input", json={"name": "x"})
    assert "(body)" in field_names(error) or "server_type" in str(error["details"])
    api.err("GET", "/servers", 400, "invalid_input", params={"sort": "colour"})
    api.err("GET", "/servers", 400, "invalid_input", params={"page": "one"})
    api.err("GET", "/servers", 400, "invalid_input", params={"status": "sleeping"})
    api.err("GET", "/actions", 400, "invalid_input")  # id is required
    resp = api.call("POST", "/servers", data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "json_error"


def test_rate_limit_headers_count_down(api: Api) -> None:
    first = int(api.call("GET", "/locations").headers["RateLimit-Remaining"])
    second = int(api.call("GET", "/locations").headers["RateLimit-Remaining"])
    assert second == first - 1
    assert api.call("GET", "/locations").headers["RateLimit-Limit"] == "3600"


@pytest.mark.parametrize("kind, status, code", [
    ("rate_limit", 429, "rate_limit_exceeded"), ("server_error", 500, "server_error"),
    ("conflict", 409, "conflict"), ("locked", 423, "locked"), ("unavailable", 503, "unavailable"),
])
def test_fault_answers(api: Api, kind: str, status: int, code: str) -> None:
    api.standin.inject(kind, method="GET", path=r"^/v1/locations$")
    resp = api.call("GET", "/locations")
    assert resp.status_code == status and resp.json()["error"]["code"] == code
    if kind == "rate_limit":
        assert resp.headers["RateLimit-Remaining"] == "0"
    api.ok("GET", "/locations")


# -- catalogs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("collection, key, names", [
    ("server_types", "server_type", {"cx22", "cx32", "cx33", "cx43", "cpx11", "cax11"}),
    ("locations", "location", {"nbg1", "fsn1", "hel1"}),
    ("images", "image", {"ubuntu-24.04", "ubuntu-22.04", "debian-12"}),
])
def test_catalogs(api: Api, collection: str, key: str, names: set[str]) -> None:
    items = api.ok("GET", f"/{collection}")[collection]
    assert names <= {i["name"] for i in items}
    one = items[0]
    assert api.ok("GET", f"/{collection}/{one['id']}")[key] == one
    by_name = api.ok("GET", f"/{collection}", params={"name": one["name"]})[collection]
    assert {i["name"] for i in by_name} == {one["name"]}
    api.err("GET", f"/{collection}/999999", 404, "not_found")


def test_catalog_details(api: Api) -> None:
    cx33 = api.ok("GET", "/server_types", params={"name": "cx33"})["server_types"][0]
    assert (cx33["cores"], cx33["memory"], cx33["architecture"], cx33["deprecated"]) == (4, 8.0, "x86", False)
    assert all(loc["network_zone"] == "eu-central" for loc in api.ok("GET", "/locations")["locations"])
    arm = api.ok("GET", "/images", params={"name": "debian-12", "architecture": "arm"})["images"]
    assert [(i["type"], i["architecture"]) for i in arm] == [("system", "arm")]


# -- servers -----------------------------------------------------------------------------------------
def test_server_create_get_list_update_delete(api: Api) -> None:
    api.ok("POST", "/ssh_keys", 201, json={"name": "ops", "public_key": KEY_A})
    created = api.server("web-1", ssh_keys=["ops"], labels={"role": "web"}, location="fsn1")
    server = created["server"]
    assert created["root_password"] is None
    assert created["action"]["command"] == "create_server" and created["action"]["status"] == "running"
    assert [a["command"] for a in created["next_actions"]] == ["start_server"]
    assert server["status"] == "initializing" and server["location"]["name"] == "fsn1"
    assert "datacenter" not in server  # removed from the API after 1 July 2026
    assert server["public_net"]["ipv4"]["ip"].startswith("203.0.113.")
    assert server["public_net"]["ipv6"]["ip"].startswith("2001:db8:")
    assert api.server("web-2")["root_password"]
    got = api.ok("GET", f"/servers/{server['id']}")["server"]
    assert got["status"] == "running"  # create and start actions finished on the next request
    updated = api.ok("PUT", f"/servers/{server['id']}", json={"name": "web-one", "labels": {"role": "api"}})["server"]
    assert (updated["name"], updated["labels"]) == ("web-one", {"role": "api"})
    assert [s["name"] for s in api.ok("GET", "/servers", params={"name": "web-one"})["servers"]] == ["web-one"]
    deleted = api.ok("DELETE", f"/servers/{server['id']}")
    assert deleted["action"]["command"] == "delete_server"
    api.err("GET", f"/servers/{server['id']}", 404, "not_found")


@pytest.mark.parametrize("extra, field", [
    ({"server_type": "cx99"}, "server_type"),
    ({"image": "windows-11"}, "image"),
    ({"location": "mars1"}, "location"),
    ({"datacenter": "mars1-dc1"}, "datacenter"),
    ({"ssh_keys": ["missing"]}, "ssh_keys"),
    ({"name": "bad_name!"}, "name"),
    ({"labels": {"-bad": "x"}}, "labels"),
    ({"labels": {"ok": "bad value"}}, "labels"),
    ({"placement_group": 4242}, "placement_group"),
    ({"networks": [4242]}, "networks"),
])
def test_server_create_refusals(api: Api, extra: dict[str, Any], field: str) -> None:
    body = {"name": "web-1", "server_type": "cx33", "image": "ubuntu-24.04", **extra}
    error = api.err("POST", "/servers", 400, "invalid_input", json=body)
    assert field in field_names(error)
    assert api.ok("GET", "/servers")["servers"] == []


def test_server_name_is_unique(api: Api) -> None:
    first = api.server("web-1")["server"]
    error = api.err("POST", "/servers", 409, "uniqueness_error",
                    json={"name": "web-1", "server_type": "cx22", "image": "debian-12"})
    assert field_names(error) == ["name"]
    second = api.server("web-2")["server"]
    api.err("PUT", f"/servers/{second['id']}", 409, "uniqueness_error", json={"name": "web-1"})
    assert api.ok("PUT", f"/servers/{first['id']}", json={"name": "web-1"})["server"]["name"] == "web-1"


def test_server_power_actions(api: Api) -> None:
    sid = api.server("web-1")["server"]["id"]
    for path, command, status in [("poweroff", "stop_server", "off"), ("poweron", "start_server", "running"),
                                  ("shutdown", "shutdown_server", "off"), ("poweron", "start_server", "running"),
                                  ("reboot", "reboot_server", "running"), ("reset", "reset_server", "running")]:
        action = api.ok("POST", f"/servers/{sid}/actions/{path}", 201)["action"]
        assert action["command"] == command and action["resources"] == [{"id": sid, "type": "server"}]
        assert api.ok("GET", f"/actions/{action['id']}")["action"]["status"] == "success"
        assert api.ok("GET", f"/servers/{sid}")["server"]["status"] == status
    commands = [a["command"] for a in api.ok("GET", f"/servers/{sid}/actions")["actions"]]
    assert commands[:3] == ["create_server", "start_server", "stop_server"] and len(commands) == 8
    api.err("POST", "/servers/4242/actions/poweron", 404, "not_found")


def test_delete_protection(api: Api) -> None:
    sid = api.server("web-1")["server"]["id"]
    api.err("POST", f"/servers/{sid}/actions/change_protection", 400, "invalid_input",
            json={"delete": True, "rebuild": False})
    api.ok("POST", f"/servers/{sid}/actions/change_protection", 201, json={"delete": True, "rebuild": True})
    assert api.ok("GET", f"/servers/{sid}")["server"]["protection"] == {"delete": True, "rebuild": True}
    api.err("DELETE", f"/servers/{sid}", 423, "protected")
    api.ok("POST", f"/servers/{sid}/actions/change_protection", 201, json={"delete": False, "rebuild": False})
    api.ok("DELETE", f"/servers/{sid}")


LABELLED = {"web-1": {"role": "web", "env": "prod"}, "web-2": {"role": "web", "env": "dev"},
            "db-1": {"role": "db", "env": "prod", "backup": ""}, "misc": {}}


@pytest.mark.parametrize("selector, names", [
    ("role==web", {"web-1", "web-2"}),
    ("role=web,env=prod", {"web-1"}),
    ("role!=web", {"db-1", "misc"}),
    ("backup", {"db-1"}),
    ("!role", {"misc"}),
    ("env in (prod,dev)", {"web-1", "web-2", "db-1"}),
    ("env notin (prod)", {"web-2", "misc"}),
    ("role=web,env notin (dev)", {"web-1"}),
])
def test_label_selector(api: Api, selector: str, names: set[str]) -> None:
    for name, labels in LABELLED.items():
        api.server(name, labels=labels)
    found = api.ok("GET", "/servers", params={"label_selector": selector})["servers"]
    assert {s["name"] for s in found} == names


@pytest.mark.parametrize("selector", ["=web", "role in (web", "a b", "role===x", ","])
def test_label_selector_refusals(api: Api, selector: str) -> None:
    error = api.err("GET", "/servers", 400, "invalid_input", params={"label_selector": selector})
    assert field_names(error) == ["label_selector"]


def test_pagination_meta(api: Api) -> None:
    for i in range(7):
        api.server(f"s{i}")
    pages = [api.ok("GET", "/servers", params={"per_page": 3, "page": p}) for p in (1, 2, 3)]
    assert [p["meta"]["pagination"] for p in pages] == [
        {"page": 1, "per_page": 3, "previous_page": None, "next_page": 2, "last_page": 3, "total_entries": 7},
        {"page": 2, "per_page": 3, "previous_page": 1, "next_page": 3, "last_page": 3, "total_entries": 7},
        {"page": 3, "per_page": 3, "previous_page": 2, "next_page": None, "last_page": 3, "total_entries": 7},
    ]
    assert [s["name"] for p in pages for s in p["servers"]] == [f"s{i}" for i in range(7)]
    default = api.ok("GET", "/servers")["meta"]["pagination"]
    assert (default["per_page"], default["last_page"], default["next_page"]) == (25, 1, None)
    api.err("GET", "/servers", 400, "invalid_input", params={"per_page": 51})
    api.err("GET", "/servers", 400, "invalid_input", params={"page": 0})
    empty = api.ok("GET", "/ssh_keys")["meta"]["pagination"]
    assert (empty["total_entries"], empty["last_page"], empty["previous_page"]) == (0, 1, None)


def test_sort_and_status_filter(api: Api) -> None:
    for name in ("b", "c", "a"):
        api.server(name)
    api.ok("GET", "/servers")  # lets the create actions finish
    names = [s["name"] for s in api.ok("GET", "/servers", params={"sort": "name:desc"})["servers"]]
    assert names == ["c", "b", "a"]
    sid = api.ok("GET", "/servers", params={"name": "b"})["servers"][0]["id"]
    api.ok("POST", f"/servers/{sid}/actions/poweroff", 201)
    api.ok("GET", "/locations")
    assert [s["name"] for s in api.ok("GET", "/servers", params={"status": "off"})["servers"]] == ["b"]


def test_register_address(api: Api) -> None:
    api.standin.register_address("node-1", "172.18.0.5")
    assert api.server("node-1")["server"]["public_net"]["ipv4"]["ip"] == "172.18.0.5"
    other = api.server("node-2")["server"]
    resp = requests.post(api.standin.url + "/_standin/addresses", json={"name": "node-2", "ipv4": "172.18.0.6"},
                         timeout=5)
    assert resp.status_code == 204
    assert api.ok("GET", f"/servers/{other['id']}")["server"]["public_net"]["ipv4"]["ip"] == "172.18.0.6"


# -- actions -----------------------------------------------------------------------------------------
def test_action_polls_and_delay(api: Api) -> None:
    api.standin.action_polls = 2
    created = api.server("web-1")
    action, start = created["action"], created["next_actions"][0]
    statuses = [api.ok("GET", f"/actions/{action['id']}")["action"]["status"] for _ in range(3)]
    assert statuses == ["running", "running", "success"]
    sid = api.ok("GET", "/servers")["servers"][0]["id"]
    # the server is locked while its start action runs (it has not been polled yet)
    api.err("POST", f"/servers/{sid}/actions/reboot", 423, "locked")
    statuses = [api.ok("GET", f"/actions/{start['id']}")["action"]["status"] for _ in range(3)]
    assert statuses == ["running", "running", "success"]
    api.standin.action_polls, api.standin.action_delay = 0, 30.0
    slow = api.ok("POST", f"/servers/{sid}/actions/reboot", 201)["action"]
    assert api.ok("GET", f"/actions/{slow['id']}")["action"]["status"] == "running"
    api.err("POST", f"/servers/{sid}/actions/reset", 423, "locked")


def test_failed_action(api: Api) -> None:
    api.standin.fail_next_action("start_server", "boot_failed", "no bootable device")
    created = api.server("web-1")
    start = api.ok("GET", f"/actions/{created['next_actions'][0]['id']}")["action"]
    assert start["status"] == "error" and start["error"] == {"code": "boot_failed", "message": "no bootable device"}
    assert start["finished"] is not None and start["progress"] == 100
    assert api.ok("GET", f"/servers/{created['server']['id']}")["server"]["status"] == "off"


def test_action_lookups(api: Api) -> None:
    created = api.server("web-1")
    sid, aid = created["server"]["id"], created["action"]["id"]
    many = api.ok("GET", "/actions", params={"id": [aid, created["next_actions"][0]["id"]]})["actions"]
    assert [a["command"] for a in many] == ["create_server", "start_server"]
    assert api.ok("GET", f"/servers/actions/{aid}")["action"]["id"] == aid
    assert api.ok("GET", f"/servers/{sid}/actions/{aid}")["action"]["id"] == aid
    assert len(api.ok("GET", "/servers/actions", params={"status": "success"})["actions"]) == 2
    api.err("GET", "/actions/999", 404, "not_found")
    api.err("GET", f"/servers/{sid}/actions/999", 404, "not_found")


# -- SSH keys ----------------------------------------------------------------------------------------
def md5_fingerprint(public_key: str) -> str:
    digest = hashlib.md5(base64.b64decode(public_key.split()[1])).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def test_ssh_keys(api: Api) -> None:
    key = api.ok("POST", "/ssh_keys", 201, json={"name": "a", "public_key": KEY_A, "labels": {"o": "x"}})["ssh_key"]
    assert key["fingerprint"] == md5_fingerprint(KEY_A)
    api.err("POST", "/ssh_keys", 409, "uniqueness_error", json={"name": "a", "public_key": KEY_B})
    api.err("POST", "/ssh_keys", 409, "uniqueness_error", json={"name": "b", "public_key": KEY_A})
    api.err("POST", "/ssh_keys", 400, "invalid_input", json={"name": "c", "public_key": "ssh-rsa notbase64!"})
    api.ok("POST", "/ssh_keys", 201, json={"name": "b", "public_key": KEY_B})
    found = api.ok("GET", "/ssh_keys", params={"fingerprint": key["fingerprint"]})["ssh_keys"]
    assert [k["name"] for k in found] == ["a"]
    assert [k["name"] for k in api.ok("GET", "/ssh_keys", params={"label_selector": "o=x"})["ssh_keys"]] == ["a"]
    renamed = api.ok("PUT", f"/ssh_keys/{key['id']}", json={"name": "a2"})["ssh_key"]
    assert renamed["name"] == "a2" and renamed["labels"] == {"o": "x"}
    api.ok("DELETE", f"/ssh_keys/{key['id']}", 204)
    api.err("GET", f"/ssh_keys/{key['id']}", 404, "not_found")


# -- placement groups --------------------------------------------------------------------------------
def test_placement_groups(api: Api) -> None:
    group = api.ok("POST", "/placement_groups", 201, json={"name": "pg", "type": "spread"})["placement_group"]
    sid = api.server("web-1", placement_group=group["id"])["server"]["id"]
    assert api.ok("GET", f"/placement_groups/{group['id']}")["placement_group"]["servers"] == [sid]
    assert api.ok("GET", f"/servers/{sid}")["server"]["placement_group"]["id"] == group["id"]
    api.err("DELETE", f"/placement_groups/{group['id']}", 422, "resource_in_use")
    api.ok("DELETE", f"/servers/{sid}")
    assert api.ok("GET", f"/placement_groups/{group['id']}")["placement_group"]["servers"] == []
    assert api.ok("PUT", f"/placement_groups/{group['id']}", json={"labels": {"a": "b"}})["placement_group"]["labels"]
    api.err("POST", "/placement_groups", 409, "uniqueness_error", json={"name": "pg", "type": "spread"})
    api.err("POST", "/placement_groups", 400, "invalid_input", json={"name": "pg2", "type": "cluster"})
    assert len(api.ok("GET", "/placement_groups", params={"type": "spread"})["placement_groups"]) == 1
    api.ok("DELETE", f"/placement_groups/{group['id']}", 204)


# -- firewalls ---------------------------------------------------------------------------------------
SSH_RULE = {"direction": "in", "protocol": "tcp", "port": "22", "source_ips": ["0.0.0.0/0", "::/0"]}


def test_firewalls(api: Api) -> None:
    web = api.server("web-1", labels={"role": "web"})["server"]["id"]
    db = api.server("db-1", labels={"role": "db"})["server"]["id"]
    created = api.ok("POST", "/firewalls", 201, json={
        "name": "fw", "rules": [SSH_RULE],
        "apply_to": [{"type": "server", "server": {"id": db}},
                     {"type": "label_selector", "label_selector": {"selector": "role=web"}}]})
    fw = created["firewall"]
    assert {a["command"] for a in created["actions"]} == {"set_firewall_rules", "apply_firewall"}
    selector_target = next(a for a in fw["applied_to"] if a["type"] == "label_selector")
    assert selector_target["applied_to_resources"] == [{"type": "server", "server": {"id": web}}]
    assert api.ok("GET", f"/servers/{web}")["server"]["public_net"]["firewalls"] == [{"id": fw["id"], "status": "applied"}]
    new_web = api.server("web-2", labels={"role": "web"})["server"]["id"]
    got = api.ok("GET", f"/firewalls/{fw['id']}")["firewall"]
    resources = next(a for a in got["applied_to"] if a["type"] == "label_selector")["applied_to_resources"]
    assert [r["server"]["id"] for r in resources] == [web, new_web]
    rules = api.ok("POST", f"/firewalls/{fw['id']}/actions/set_rules", 201,
                   json={"rules": [SSH_RULE, {"direction": "in", "protocol": "icmp", "source_ips": ["0.0.0.0/0"]}]})
    assert rules["actions"][0]["command"] == "set_firewall_rules"
    assert len(api.ok("GET", f"/firewalls/{fw['id']}")["firewall"]["rules"]) == 2
    api.err("POST", f"/firewalls/{fw['id']}/actions/apply_to_resources", 422, "firewall_already_applied",
            json={"apply_to": [{"type": "server", "server": {"id": db}}]})
    api.err("POST", f"/firewalls/{fw['id']}/actions/apply_to_resources", 404, "firewall_resource_not_found",
            json={"apply_to": [{"type": "server", "server": {"id": 4242}}]})
    api.err("DELETE", f"/firewalls/{fw['id']}", 422, "resource_in_use")
    api.ok("POST", f"/firewalls/{fw['id']}/actions/remove_from_resources", 201, json={"remove_from": [
        {"type": "server", "server": {"id": db}},
        {"type": "label_selector", "label_selector": {"selector": "role=web"}}]})
    assert api.ok("GET", f"/servers/{web}")["server"]["public_net"]["firewalls"] == []
    api.ok("POST", f"/firewalls/{fw['id']}/actions/apply_to_resources", 201,
           json={"apply_to": [{"type": "server", "server": {"id": db}}]})
    assert len(api.ok("GET", f"/firewalls/{fw['id']}/actions")["actions"]) >= 4
    assert api.ok("PUT", f"/firewalls/{fw['id']}", json={"name": "fw2"})["firewall"]["name"] == "fw2"
    assert [f["name"] for f in api.ok("GET", "/firewalls")["firewalls"]] == ["fw2"]
    api.ok("DELETE", f"/servers/{db}")  # deleting the server detaches the firewall
    api.ok("DELETE", f"/firewalls/{fw['id']}", 204)


@pytest.mark.parametrize("rule", [
    {"direction": "in", "protocol": "tcp", "source_ips": ["0.0.0.0/0"]},                  # no port
    {"direction": "in", "protocol": "icmp", "port": "22", "source_ips": ["0.0.0.0/0"]},   # port on icmp
    {"direction": "in", "protocol": "tcp", "port": "22"},                                 # no source
    {"direction": "in", "protocol": "tcp", "port": "22", "source_ips": ["nonsense"]},     # bad CIDR
    {"direction": "sideways", "protocol": "tcp", "port": "22", "source_ips": ["0.0.0.0/0"]},
])
def test_firewall_rule_refusals(api: Api, rule: dict[str, Any]) -> None:
    api.err("POST", "/firewalls", 400, "invalid_input", json={"name": "fw", "rules": [rule]})


# -- networks ----------------------------------------------------------------------------------------
def test_networks(api: Api) -> None:
    net = api.ok("POST", "/networks", 201, json={
        "name": "lab", "ip_range": "10.0.0.0/16",
        "subnets": [{"type": "cloud", "ip_range": "10.0.1.0/24", "network_zone": "eu-central"}]})["network"]
    assert net["subnets"][0]["gateway"] == "10.0.0.1"
    action = api.ok("POST", f"/networks/{net['id']}/actions/add_subnet", 201,
                    json={"type": "cloud", "network_zone": "eu-central"})["action"]
    assert action["command"] == "add_subnet"
    subnets = api.ok("GET", f"/networks/{net['id']}")["network"]["subnets"]
    assert [s["ip_range"] for s in subnets] == ["10.0.1.0/24", "10.0.0.0/24"]
    api.err("POST", f"/networks/{net['id']}/actions/add_subnet", 400, "invalid_input",
            json={"type": "cloud", "network_zone": "eu-central", "ip_range": "192.168.0.0/24"})
    sid = api.server("web-1")["server"]["id"]
    api.ok("POST", f"/servers/{sid}/actions/attach_to_network", 201, json={"network": net["id"], "ip": "10.0.1.10"})
    private = api.ok("GET", f"/servers/{sid}")["server"]["private_net"]
    assert [(p["network"], p["ip"]) for p in private] == [(net["id"], "10.0.1.10")]
    assert api.ok("GET", f"/networks/{net['id']}")["network"]["servers"] == [sid]
    api.err("POST", f"/servers/{sid}/actions/attach_to_network", 422, "server_already_attached",
            json={"network": net["id"]})
    other = api.server("web-2", networks=[net["id"]])["server"]
    assert other["private_net"][0]["ip"] == "10.0.1.1"
    commands = [a["command"] for a in api.ok("GET", f"/networks/{net['id']}/actions")["actions"]]
    assert commands == ["add_subnet", "attach_to_network"]  # attached at creation: part of create_server
    api.ok("POST", f"/servers/{sid}/actions/detach_from_network", 201, json={"network": net["id"]})
    assert api.ok("GET", f"/servers/{sid}")["server"]["private_net"] == []
    api.err("POST", "/networks", 400, "invalid_input", json={"name": "pub", "ip_range": "8.8.0.0/16"})
    api.err("POST", "/networks", 409, "uniqueness_error", json={"name": "lab", "ip_range": "10.1.0.0/16"})
    assert api.ok("PUT", f"/networks/{net['id']}", json={"labels": {"k": "v"}})["network"]["labels"] == {"k": "v"}
    api.ok("POST", f"/networks/{net['id']}/actions/change_protection", 201, json={"delete": True})
    api.err("DELETE", f"/networks/{net['id']}", 423, "protected")
    api.ok("POST", f"/networks/{net['id']}/actions/change_protection", 201, json={"delete": False})
    api.ok("DELETE", f"/networks/{net['id']}", 204)
    assert api.ok("GET", f"/servers/{other['id']}")["server"]["private_net"] == []


def test_unimplemented_operation_is_visible(api: Api) -> None:
    """An endpoint the stand-in lacks answers 501 and is recorded, so a client using it cannot pass."""
    sid = api.server("web-1")["server"]["id"]
    resp = api.call("POST", f"/servers/{sid}/actions/request_console")
    assert resp.status_code == 501
    assert any("not implemented" in v for v in api.standin.contract_violations)
    api.standin.contract_violations.clear()

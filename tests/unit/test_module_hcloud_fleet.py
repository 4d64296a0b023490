"""hcloud_fleet's entry point, main(), against an in-memory Hetzner Cloud client (hcloud.Client patched)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import hcloud
import pytest

from ansible_collections.honeydue.infra.plugins.modules import hcloud_fleet

TOKEN = "hcloud-unit-token-0123456789"
SELECTOR = {"cluster": "honeydue"}
LABELS = {"cluster": "honeydue", "role": "k3s-server", "env": "production"}


class FakeServer:
    def __init__(self, cloud, sid, name, labels, protection):
        self._cloud, self.id, self.name, self.labels = cloud, sid, name, dict(labels)
        self.status = "running"
        self.server_type = SimpleNamespace(name="cx33")
        self.image = SimpleNamespace(name="ubuntu-24.04")
        self.location = SimpleNamespace(name="nbg1")
        self.placement_group = None
        self.private_net = []
        self.protection = dict(protection)
        self.public_net = SimpleNamespace(ipv4=SimpleNamespace(ip=f"198.51.100.{sid}"), ipv6=None)

    def change_protection(self, delete=None, rebuild=None):
        self.protection = {"delete": delete, "rebuild": rebuild}
        return self._cloud.action("change_protection")

    def delete(self):
        self._cloud.servers.items.remove(self)
        return self._cloud.action("delete_server")


class FakeServers:
    def __init__(self, cloud):
        self._cloud, self.items, self.created = cloud, [], []

    def get_all(self, label_selector=None):
        self._cloud.calls.append(("servers.get_all", label_selector))
        if self._cloud.refuse is not None:
            raise self._cloud.refuse
        wanted = dict(pair.split("=", 1) for pair in label_selector.split(","))
        return [s for s in self.items if all(s.labels.get(k) == v for k, v in wanted.items())]

    def get_by_name(self, name):
        return next((s for s in self.items if s.name == name), None)

    def create(self, name, **kwargs):
        self.created.append(dict(kwargs, name=name))
        self.add(name, kwargs["labels"], protection={"delete": False, "rebuild": False})
        return SimpleNamespace(action=self._cloud.action("create_server"), next_actions=[self._cloud.action("start_server")])

    def add(self, name, labels, protection=None):
        server = FakeServer(self._cloud, len(self.items) + 1, name, labels, protection or {"delete": True, "rebuild": True})
        self.items.append(server)
        return server


class _ByName:
    def __init__(self, **known):
        self._known = known

    def get_by_name(self, name):
        return self._known.get(name)


class FakeHcloud:
    """What Fleet uses of ``hcloud.Client``: servers, the catalog lookups, and raw ``/actions`` polls."""

    def __init__(self):
        self.calls, self.refuse, self.actions = [], None, {}
        self.servers = FakeServers(self)
        self.server_types = _ByName(cx33=SimpleNamespace(id=1, name="cx33", architecture="x86"))
        self.locations = _ByName(nbg1=SimpleNamespace(id=2, name="nbg1"))
        self.images = SimpleNamespace(get_by_name_and_architecture=lambda name, arch: (
            SimpleNamespace(id=3, name=name) if (name, arch) == ("ubuntu-24.04", "x86") else None))
        self.ssh_keys = _ByName(ops=SimpleNamespace(id=4, name="ops"))
        self.networks = _ByName()
        self.placement_groups = _ByName()
        self.client_kwargs = None

    def action(self, command):
        aid = len(self.actions) + 100
        self.actions[aid] = command
        return SimpleNamespace(id=aid, command=command)

    def request(self, method, url, params=None):
        self.calls.append((method, url))
        if url == "/actions":
            return {"actions": [{"id": i, "command": self.actions[i], "status": "success"} for i in params["id"]]}
        return {"actions": []}  # /servers/{id}/actions: nothing running


@pytest.fixture
def cloud(monkeypatch):
    fake = FakeHcloud()

    def client(**kwargs):
        fake.client_kwargs = kwargs
        return fake
    monkeypatch.setattr(hcloud_fleet.hcloud, "Client", client)
    return fake


def args(*names, **extra):
    return {"api_token": TOKEN, "api_endpoint": "http://127.0.0.1:1/v1", "poll_interval": 0,
            "servers": [{"name": n, "labels": {"role": "k3s-server"}} for n in names],
            "selector_labels": SELECTOR, "labels": {"env": "production"}, "ssh_keys": ["ops"], **extra}


def test_an_existing_fleet_is_left_alone(run_module, cloud):
    cloud.servers.add("hetzner1", LABELS)
    result = run_module(hcloud_fleet.main, args("hetzner1"))
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert (result["created"], result["deleted"], result["protected"], result["surplus"]) == ([], [], [], [])
    assert result["drift"] == {} and result["recovered"] == []
    assert [s["name"] for s in result["servers"]] == ["hetzner1"]
    assert result["servers"][0]["protection"] == {"delete": True, "rebuild": True}
    assert cloud.servers.created == [] and cloud.actions == {}
    assert cloud.client_kwargs["token"] == TOKEN and cloud.client_kwargs["api_endpoint"] == "http://127.0.0.1:1/v1"


def test_missing_servers_are_created_with_the_fleet_labels_and_protected(run_module, cloud):
    cloud.servers.add("hetzner1", LABELS)
    result = run_module(hcloud_fleet.main, args("hetzner1", "hetzner2", "hetzner3"), diff=True)
    assert not result.get("failed"), result
    assert result["changed"] is True and result["created"] == ["hetzner2", "hetzner3"]
    assert [c["name"] for c in cloud.servers.created] == ["hetzner2", "hetzner3"]
    assert all(c["labels"] == LABELS and c["start_after_create"] for c in cloud.servers.created)
    assert [s["name"] for s in result["servers"]] == ["hetzner1", "hetzner2", "hetzner3"]
    assert all(s["protection"] == {"delete": True, "rebuild": True} for s in result["servers"])
    assert result["protected"] == []  # only existing servers whose protection was turned back on
    assert sorted(result["diff"]["after"]) == ["hetzner1", "hetzner2", "hetzner3"]
    assert sorted(result["diff"]["before"]) == ["hetzner1"]


def test_check_mode_creates_nothing(run_module, cloud):
    result = run_module(hcloud_fleet.main, args("hetzner1"), check_mode=True)
    assert result["changed"] is True and result["created"] == ["hetzner1"]
    assert cloud.servers.created == [] and result["servers"] == []


def test_an_api_error_fails_with_the_apis_code(run_module, cloud):
    cloud.refuse = hcloud.APIException(code="unauthorized", message="unable to authenticate", details={})
    result = run_module(hcloud_fleet.main, args("hetzner1"))
    assert result["failed"] is True and result["changed"] is False
    assert result["failure"] == {"code": "unauthorized", "message": "unable to authenticate", "details": {}}
    assert result["msg"] == "Hetzner Cloud API error unauthorized: unable to authenticate"
    assert result["created"] == [] and cloud.servers.created == []
    assert TOKEN not in json.dumps(result)


def test_a_name_used_outside_the_fleet_fails_before_any_create(run_module, cloud):
    cloud.servers.add("hetzner2", {"cluster": "other"})
    result = run_module(hcloud_fleet.main, args("hetzner1", "hetzner2"))
    assert result["failed"] is True and result["changed"] is False
    assert result["failure"]["code"] == "name_taken" and "hetzner2" in result["failure"]["message"]
    assert cloud.servers.created == []

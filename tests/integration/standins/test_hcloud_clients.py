"""Real clients against the Hetzner Cloud stand-in: hcloud-python, hetzner.hcloud modules and inventory."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import hcloud
import pytest
import yaml
from hcloud.firewalls import FirewallResource, FirewallResourceLabelSelector, FirewallRule
from hcloud.images import Image
from hcloud.networks import NetworkSubnet
from hcloud.server_types import ServerType

from tests.conftest import TOKEN

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def client(standin) -> hcloud.Client:
    """An hcloud-python client on the stand-in, polling actions every 10 ms."""
    return hcloud.Client(TOKEN, api_endpoint=standin.url + "/v1", poll_interval=0.01, timeout=10)


def test_library_creates_server_and_waits_for_its_actions(hcloud_api) -> None:
    hcloud_api.action_polls = 2  # each action reports "running" twice before it succeeds
    api = client(hcloud_api)
    key = api.ssh_keys.create("ops", public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGz5p4ShwQh3Jc3m6Ot6gYb7mv5l+3Ww0T5fJ9j1k4bF x")
    created = api.servers.create("web-1", server_type=ServerType(name="cx33"), image=Image(name="ubuntu-24.04"),
                                 ssh_keys=[key], labels={"role": "web"})
    assert created.root_password is None and created.server.status == "initializing"
    created.action.wait_until_finished()
    for action in created.next_actions:
        action.wait_until_finished()
    server = api.servers.get_by_name("web-1")
    assert server.status == "running" and server.public_net.ipv4.ip.startswith("203.0.113.")
    polls = [c for c in hcloud_api.calls("GET", r"^/v1/actions/\d+$")]
    assert len(polls) == 6  # 2 actions x (running, running, success)


def test_library_networks_firewalls_and_failures(hcloud_api) -> None:
    api = client(hcloud_api)
    net = api.networks.create("lab", ip_range="10.0.0.0/16",
                              subnets=[NetworkSubnet(type="cloud", ip_range="10.0.1.0/24", network_zone="eu-central")])
    created = api.servers.create("web-1", server_type=ServerType(name="cx22"), image=Image(name="debian-12"),
                                 labels={"role": "web"})
    created.action.wait_until_finished()
    api.servers.attach_to_network(created.server, net).wait_until_finished()
    fw = api.firewalls.create("fw", rules=[FirewallRule("in", "tcp", ["0.0.0.0/0"], port="22")], resources=[
        FirewallResource(type="label_selector", label_selector=FirewallResourceLabelSelector("role=web"))])
    for action in fw.actions:
        action.wait_until_finished()
    server = api.servers.get_by_id(created.server.id)
    assert server.private_net[0].ip == "10.0.1.1"
    assert [f.firewall.id for f in server.public_net.firewalls] == [fw.firewall.id]
    hcloud_api.fail_next_action("stop_server", "server_error", "hypervisor busy")
    with pytest.raises(hcloud.actions.ActionFailedException):
        api.servers.power_off(server).wait_until_finished()
    assert api.servers.get_by_id(server.id).status == "running"


def test_library_retries_rate_limit(hcloud_api) -> None:
    hcloud_api.inject("rate_limit", method="POST", path=r"^/v1/servers$", times=1)
    created = client(hcloud_api).servers.create("web-1", server_type=ServerType(name="cx33"),
                                                image=Image(name="ubuntu-24.04"))
    assert created.server.name == "web-1"
    posts = hcloud_api.calls("POST", r"^/v1/servers$")
    assert [(c.status, c.fault) for c in posts] == [(429, True), (201, False)]
    assert len(hcloud_api.servers) == 1


SERVER_TASK = {
    "name": "server",
    "hetzner.hcloud.server": {
        "name": "web-1", "server_type": "cx33", "image": "ubuntu-24.04", "location": "nbg1",
        "labels": {"role": "web", "env": "lab"}, "state": "present",
    },
}


def inventory_list(tmp_path: Path, standin, config: dict) -> dict:
    """``ansible-inventory --list`` with a ``*.hcloud.yml`` source pointed at the stand-in."""
    source = tmp_path / "lab.hcloud.yml"
    source.write_text(yaml.safe_dump({"plugin": "hetzner.hcloud.hcloud", **config}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "HCLOUD_"))}
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_INVENTORY_CACHE="False",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), HCLOUD_TOKEN=TOKEN, ANSIBLE_INVENTORY_UNPARSED_FAILED="True")
    proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(source), "--list"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def unsafe(value: object) -> object:
    """ansible-inventory marks plugin strings as unsafe: ``{"__ansible_unsafe": "..."}``."""
    return value["__ansible_unsafe"] if isinstance(value, dict) and "__ansible_unsafe" in value else value


@pytest.mark.slow
def test_ansible_server_module_and_inventory(hcloud_api, playbook, tmp_path: Path) -> None:
    env = {"HCLOUD_TOKEN": TOKEN, "HCLOUD_ENDPOINT": hcloud_api.url + "/v1"}
    plays = [{"hosts": "localhost", "gather_facts": False, "tasks": [SERVER_TASK]}]
    first = playbook(plays, env=env)
    assert first.rc == 0, first.stdout[-3000:] + first.stderr[-3000:]
    result = first.task_results("server")
    assert result["changed"] is True and result["hcloud_server"]["status"] == "running"
    assert hcloud_api.calls("POST", r"^/v1/servers$")[0].body["labels"] == {"role": "web", "env": "lab"}

    second = playbook(plays, env=env)
    assert second.rc == 0, second.stdout[-3000:]
    assert second.task_results("server")["changed"] is False
    assert len(hcloud_api.calls("POST", r"^/v1/servers$")) == 1

    hcloud_api.register_address("web-1", "172.30.0.7")
    inventory = inventory_list(tmp_path, hcloud_api, {
        "api_endpoint": hcloud_api.url + "/v1", "label_selector": "env=lab",
        "keyed_groups": [{"key": "hcloud_labels.role", "prefix": "role"}]})
    assert inventory["role_web"]["hosts"] == ["web-1"]
    host = inventory["_meta"]["hostvars"]["web-1"]
    assert unsafe(host["ansible_host"]) == "172.30.0.7" and unsafe(host["hcloud_server_type"]) == "cx33"
    assert hcloud_api.calls("GET", r"^/v1/servers$")[-1].query["label_selector"] == ["env=lab"]


PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGz5p4ShwQh3Jc3m6Ot6gYb7mv5l+3Ww0T5fJ9j1k4bF ops@lab"
STACK_TASKS = [
    {"name": "key", "hetzner.hcloud.ssh_key": {"name": "ops", "public_key": PUBKEY, "labels": {"env": "lab"}}},
    {"name": "group", "hetzner.hcloud.placement_group": {"name": "spread", "type": "spread"}},
    {"name": "network", "hetzner.hcloud.network": {"name": "lab", "ip_range": "10.0.0.0/16"}},
    {"name": "subnet", "hetzner.hcloud.subnetwork": {"network": "lab", "ip_range": "10.0.1.0/24",
                                                     "network_zone": "eu-central", "type": "cloud"}},
    {"name": "firewall", "hetzner.hcloud.firewall": {"name": "ssh", "rules": [
        {"direction": "in", "protocol": "tcp", "port": "22", "source_ips": ["0.0.0.0/0", "::/0"]}]}},
    {"name": "firewall targets", "hetzner.hcloud.firewall_resource": {"firewall": "ssh", "label_selectors": ["role=web"]}},
    {"name": "server", "hetzner.hcloud.server": {
        "name": "web-1", "server_type": "cx33", "image": "ubuntu-24.04", "location": "fsn1",
        "ssh_keys": ["ops"], "placement_group": "spread", "labels": {"role": "web"},
        "private_networks": ["lab"], "state": "present"}},
    {"name": "info", "hetzner.hcloud.server_info": {"label_selector": "role=web"}, "register": "info"},
]


@pytest.mark.slow
def test_ansible_modules_build_a_stack_idempotently(hcloud_api, playbook) -> None:
    env = {"HCLOUD_TOKEN": TOKEN, "HCLOUD_ENDPOINT": hcloud_api.url + "/v1"}
    plays = [{"hosts": "localhost", "gather_facts": False, "tasks": STACK_TASKS}]
    first = playbook(plays, env=env)
    assert first.rc == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert first.changed() == 7
    info = first.task_results("info")["hcloud_server_info"]
    assert [(s["name"], s["placement_group"], s["private_networks"]) for s in info] == [("web-1", "spread", ["lab"])]
    server = next(iter(hcloud_api.servers.values()))
    assert server["private_net"][0]["ip"] == "10.0.1.1"
    assert hcloud_api.server_json(server)["public_net"]["firewalls"][0]["status"] == "applied"

    second = playbook(plays, env=env)
    assert second.rc == 0, second.stdout[-4000:]
    assert second.changed() == 0

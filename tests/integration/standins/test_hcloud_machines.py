"""The Hetzner stand-in's machines hook (lab/machines.py's contract): what a server create, a network
attach, a power action and a delete ask of the lab's hypervisor, driven by hcloud-python."""
from __future__ import annotations

import hcloud
import pytest
from hcloud.images import Image
from hcloud.networks import NetworkSubnet
from hcloud.server_types import ServerType

from tests.conftest import TOKEN


class FakeMachines:
    """Records the calls DockerMachines would turn into docker commands."""

    def __init__(self, fail_create: bool = False) -> None:
        self.calls: list[tuple] = []
        self.fail_create = fail_create

    def create(self, server, public_ipv4, private, user_data, start):
        if self.fail_create:
            raise RuntimeError("docker create: no space left on device")
        self.calls.append(("create", server["name"], public_ipv4, [(n["name"], ip) for n, ip in private], user_data, start))

    def attach(self, server, net, ip):
        self.calls.append(("attach", server["name"], net["name"], ip))

    def detach(self, server, net):
        self.calls.append(("detach", server["name"], net["name"]))

    def power(self, server, what):
        self.calls.append(("power", server["name"], what))

    def delete(self, server):
        self.calls.append(("delete", server["name"]))


def client(standin) -> hcloud.Client:
    return hcloud.Client(TOKEN, api_endpoint=standin.url + "/v1", poll_interval=0.01, timeout=10)


def test_a_created_server_becomes_a_machine_with_its_addresses_and_user_data(hcloud_api) -> None:
    machines = hcloud_api.machines = FakeMachines()
    api = client(hcloud_api)
    net = api.networks.create("honeydue", ip_range="10.0.0.0/16",
                              subnets=[NetworkSubnet(type="cloud", ip_range="10.0.1.0/24", network_zone="eu-central")])
    created = api.servers.create("hetzner1", server_type=ServerType(name="cx33"), image=Image(name="ubuntu-24.04"),
                                 networks=[net], user_data="#cloud-config\nusers: [{name: deploy}]\n")
    created.action.wait_until_finished()
    server = api.servers.get_by_name("hetzner1")
    assert machines.calls == [("create", "hetzner1", server.public_net.ipv4.ip, [("honeydue", "10.0.1.1")],
                               "#cloud-config\nusers: [{name: deploy}]\n", True)]
    api.servers.power_off(server).wait_until_finished()
    api.servers.power_on(server).wait_until_finished()
    api.servers.reboot(server).wait_until_finished()
    api.servers.detach_from_network(server, net).wait_until_finished()
    api.servers.attach_to_network(server, net, ip="10.0.1.7").wait_until_finished()
    api.servers.delete(server).wait_until_finished()
    assert machines.calls[1:] == [("power", "hetzner1", "stop"), ("power", "hetzner1", "start"),
                                  ("power", "hetzner1", "restart"), ("detach", "hetzner1", "honeydue"),
                                  ("attach", "hetzner1", "honeydue", "10.0.1.7"), ("delete", "hetzner1")]


def test_a_machine_that_cannot_be_made_is_a_server_error_and_no_server(hcloud_api) -> None:
    hcloud_api.machines = FakeMachines(fail_create=True)
    api = client(hcloud_api)
    with pytest.raises(hcloud.APIException) as err:
        api.servers.create("hetzner1", server_type=ServerType(name="cx33"), image=Image(name="ubuntu-24.04"))
    assert err.value.code == "server_error" and "no space left" in err.value.message
    assert api.servers.get_all() == [] and api.primary_ips.get_all() == []
    hcloud_api.machines = None
    api.servers.create("hetzner1", server_type=ServerType(name="cx33"), image=Image(name="ubuntu-24.04"))

"""honeydue.infra.hcloud inventory: API server objects -> hosts, groups and addresses."""
from __future__ import annotations

import pytest

from ansible_collections.honeydue.infra.plugins.module_utils._hcloud_inventory import host_entry, next_pages, public_ipv6

ROLES = {"k3s-server": "k3s_servers", "k3s-agent": "k3s_agents"}


def server(name="hetzner1", role="k3s-server", private=None):
    return {
        "id": 42, "name": name, "status": "running", "labels": {"cluster": "honeydue", "role": role},
        "public_net": {"ipv4": {"ip": "203.0.113.10"}, "ipv6": {"ip": "2001:db8:1:2::/64"}},
        "private_net": [{"network": 7, "ip": private}] if private else [],
        "server_type": {"name": "cx33"}, "image": {"name": "ubuntu-24.04"},
        "location": {"name": "nbg1", "network_zone": "eu-central"},  # no `datacenter` since July 2026
    }


def test_public_addresses_and_role_group():
    name, groups, hv = host_entry(server(), role_groups=ROLES)
    assert (name, groups) == ("hetzner1", ["k3s_servers"])
    assert hv["ansible_host"] == hv["honeydue_node_ip"] == hv["honeydue_public_ipv4"] == "203.0.113.10"
    assert hv["honeydue_public_ipv6"] == "2001:db8:1:2::1" and hv["ansible_user"] == "deploy"
    assert (hv["hcloud_location"], hv["hcloud_server_type"], hv["hcloud_image"]) == ("nbg1", "cx33", "ubuntu-24.04")
    assert "hcloud_datacenter" not in hv


def test_private_network_address_is_the_node_ip_and_ssh_stays_public():
    _, _, hv = host_entry(server(private="10.0.1.2"), role_groups=ROLES, network_id=7)
    assert hv["honeydue_node_ip"] == hv["honeydue_private_ipv4"] == "10.0.1.2"  # K3s and cluster ports
    assert hv["ansible_host"] == "203.0.113.10"  # the operator's machine is outside the private network
    assert hv["honeydue_public_ipv4"] == "203.0.113.10"  # DNS still points at the public address


def test_a_controller_inside_the_private_network_connects_there():
    _, _, hv = host_entry(server(private="10.0.1.2"), role_groups=ROLES, network_id=7, connect="private")
    assert hv["ansible_host"] == hv["honeydue_node_ip"] == "10.0.1.2"


def test_a_server_missing_from_the_network_is_an_error_not_a_wrong_address():
    with pytest.raises(ValueError, match="not attached to network 7"):
        host_entry(server(), role_groups=ROLES, network_id=7)


def test_agents_and_unknown_roles():
    assert host_entry(server(role="k3s-agent"), role_groups=ROLES)[1] == ["k3s_agents"]
    assert host_entry(server(role="bastion"), role_groups=ROLES)[1] == []


def test_no_ipv6():
    assert public_ipv6({"public_net": {"ipv4": {"ip": "203.0.113.1"}, "ipv6": None}}) is None


def meta(page, next_page, last_page=None, total=None):
    return {"page": page, "per_page": 50, "previous_page": page - 1 or None, "next_page": next_page,
            "last_page": last_page, "total_entries": total}


@pytest.mark.parametrize("pagination, fetched, expected", [
    (meta(1, 2, 3, 120), {1}, [2, 3]),  # last_page known: read the rest at once
    (meta(1, 2), {1}, [2]),  # last_page null: only next_page
    (meta(2, 3), {1, 2}, [3]),
    (meta(3, None), {1, 2, 3}, []),  # the end
    (meta(3, 4, 3, 150), {1, 2, 3}, [4]),  # a stale last_page: next_page still wins
    (meta(2, 2), {1, 2}, []),  # a broken answer that points back: no endless loop
    (None, {1}, []),
])
def test_next_pages_follow_next_page_not_last_page(pagination, fetched, expected):
    assert next_pages(pagination, fetched) == expected

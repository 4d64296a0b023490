"""The network policy, defined once and rendered into the cloud firewall and ufw."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.honeydue.infra.plugins.filter.policy import (
    cluster_ports, hcloud_firewall_rules, iface_for, normalize, ufw_policy_rules)

POLICY = {"ssh_port": 22, "admin_cidrs": ["198.51.100.0/24"], "origin_cidrs": ["173.245.48.0/20", "2400:cb00::/32"],
          "private_cidr": "10.0.1.0/24"}
CLUSTER = {"6443", "2379", "2380", "10250", "8472"}


def test_the_cloud_firewall_has_no_cluster_port():
    rules = hcloud_firewall_rules(POLICY)
    assert [(r["protocol"], r.get("port")) for r in rules] == [
        ("tcp", "22"), ("tcp", "6443"), ("tcp", "80"), ("tcp", "443"), ("icmp", None)]
    assert rules[1]["source_ips"] == ["198.51.100.0/24"]  # the API from the admins only
    assert not any(r.get("port") in ("2379-2380", "10250", "8472") for r in rules)


def test_api_public_false_closes_6443_in_both_layers():
    closed = {**POLICY, "api_public": False}
    assert "6443" not in [r.get("port") for r in hcloud_firewall_rules(closed)]
    public = [r for r in ufw_policy_rules(closed, "enp7s0") if "interface" not in r]
    assert not any("6443" in (r.get("port") or "") for r in public)


def test_origin_http_false_closes_80_in_both_layers_and_keeps_443():
    closed = {**POLICY, "origin_http": False}
    assert [r.get("port") for r in hcloud_firewall_rules(closed) if r["protocol"] == "tcp"] == ["22", "6443", "443"]
    web = [r for r in ufw_policy_rules(closed, "enp7s0") if r.get("comment") == "http from cloudflare"]
    assert [r["port"] for r in web] == ["443"] and web[0]["from_ip"] == POLICY["origin_cidrs"]
    assert [r["port"] for r in ufw_policy_rules(POLICY, "enp7s0") if r.get("comment") == "http from cloudflare"] == ["80,443"]
    with pytest.raises(AnsibleFilterError, match="origin_http must be true or false"):
        normalize({**POLICY, "origin_http": "closed"})
    assert normalize({**POLICY, "origin_http": "False"})["origin_http"] is False, "a templated string reads as a bool"


def test_ufw_allows_cluster_ports_only_in_on_the_private_interface_from_the_subnet():
    rules = ufw_policy_rules(POLICY, "enp7s0")
    cluster = [r for r in rules if r.get("interface")]
    assert {r["interface"] for r in cluster} == {"enp7s0"}
    assert all(r["from_ip"] == ["10.0.1.0/24"] for r in cluster)
    assert {(r["proto"], r["port"]) for r in cluster} == {("tcp", "6443,2379:2380,10250"), ("udp", "8472")}
    public = [r for r in rules if "interface" not in r and r.get("port")]
    assert {r["port"] for r in public} == {"22", "6443", "80,443"}


def test_one_ssh_port_everywhere():
    moved = {**POLICY, "ssh_port": "2222"}
    assert hcloud_firewall_rules(moved)[0]["port"] == "2222"
    assert ufw_policy_rules(moved)[0]["port"] == "2222"
    assert normalize(moved)["ssh_port"] == 2222


def test_wireguard_native_changes_the_udp_ports():
    wg = {**POLICY, "flannel_backend": "wireguard-native"}
    assert cluster_ports(wg)["udp"] == ["51820-51821"]
    assert [r["port"] for r in ufw_policy_rules(wg, "enp7s0") if r.get("proto") == "udp"] == ["51820:51821"]
    assert cluster_ports(POLICY) == {"tcp": ["6443", "2379-2380", "10250"], "udp": ["8472"]}


@pytest.mark.parametrize("bad, words", [
    ({"ssh_port": 0}, "ssh_port"), ({"ssh_port": 70000}, "ssh_port"), ({"ssh_port": "x"}, "ssh_port"),
    ({"ssh_port": 10250}, "collides"), ({"ssh_port": 443}, "collides"),
    ({"admin_cidrs": []}, "admin_cidrs is empty"), ({"admin_cidrs": "0.0.0.0/0"}, "list"),
    ({"origin_cidrs": ["10.0.0.1/8"]}, "origin_cidrs"), ({"private_cidr": "nope"}, "private_cidr"),
    ({"flannel_backend": "ipsec"}, "flannel_backend"),
])
def test_bad_policies_fail_naming_the_key(bad, words):
    with pytest.raises(AnsibleFilterError, match=words):
        hcloud_firewall_rules({**POLICY, **bad})


def test_iface_for_finds_the_private_interface():
    facts = {"interfaces": ["lo", "eth0", "enp7s0"],
             "eth0": {"device": "eth0", "ipv4": {"address": "203.0.113.10"}},
             "enp7s0": {"device": "enp7s0", "ipv4": {"address": "10.0.1.2"}},
             "lo": {"device": "lo", "ipv4": {"address": "127.0.0.1"}}}
    assert iface_for(facts, "10.0.1.2") == "enp7s0"
    with pytest.raises(AnsibleFilterError, match="no interface carries 10.0.1.9"):
        iface_for(facts, "10.0.1.9")


def test_while_ssh_moves_both_layers_open_the_old_and_the_new_port():
    moved = {**POLICY, "ssh_port": 2222}
    ssh = [r for r in hcloud_firewall_rules(moved, ssh_ports=[22]) if r["description"] == "ssh from admins"]
    assert [r["port"] for r in ssh] == ["22", "2222"]  # Hetzner takes one port per rule
    assert all(r["source_ips"] == ["198.51.100.0/24"] for r in ssh)
    assert ufw_policy_rules(moved, "enp7s0", ssh_ports=["22"])[0]["port"] == "22,2222"
    # The port it moves to is the policy's, already open: nothing doubles.
    assert ufw_policy_rules(moved, ssh_ports=[2222])[0]["port"] == "2222"
    assert len(hcloud_firewall_rules(moved, ssh_ports=[2222])) == len(hcloud_firewall_rules(moved))

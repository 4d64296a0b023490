"""The collection's filters, as plays use them."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.honeydue.infra.plugins.filter.image import image_ref
from ansible_collections.honeydue.infra.plugins.filter.network import cidr_normalize, peer_addresses

FULL_SHA = "3f2c1ab9e0d4c5b6a7f8e9d0c1b2a3f4e5d6c7b8"


class TestImageRef:
    def test_full_sha_is_shortened_to_git_default(self):
        assert image_ref("honeydue/api", "git.honeydue.example", FULL_SHA) == "git.honeydue.example/honeydue/api:3f2c1ab"

    def test_short_and_full_sha_give_the_same_reference(self):
        assert image_ref("honeydue/api", "reg:5000", "3F2C1AB") == image_ref("honeydue/api", "reg:5000", FULL_SHA)

    def test_scheme_and_trailing_slash_are_dropped(self):
        assert image_ref("honeydue/admin", "https://git.honeydue.example/", FULL_SHA, 12) == \
            "git.honeydue.example/honeydue/admin:3f2c1ab9e0d4"

    @pytest.mark.parametrize("name,registry,sha,msg", [
        ("honeydue/api", "git.honeydue.example", "main", "not a git SHA"),
        ("honeydue/api", "git.honeydue.example", "3f2c1a", "not a git SHA"),
        ("Honeydue/API", "git.honeydue.example", FULL_SHA, "not a valid repository name"),
        ("honeydue/api:latest", "git.honeydue.example", FULL_SHA, "not a valid repository name"),
        ("honeydue/api", "git honeydue", FULL_SHA, "not a registry"),
        ("", "git.honeydue.example", FULL_SHA, "non-empty"),
    ])
    def test_bad_parts_fail_with_the_part_named(self, name, registry, sha, msg):
        with pytest.raises(AnsibleFilterError, match=msg):
            image_ref(name, registry, sha)


class TestCidrNormalize:
    def test_cloudflare_text_form_sorted_ipv4_first_and_deduplicated(self):
        text = "2400:cb00::/32\n173.245.48.0/20\n103.21.244.0/22\n173.245.48.0/20\n"
        assert cidr_normalize(text) == ["103.21.244.0/22", "173.245.48.0/20", "2400:cb00::/32"]

    def test_version_selects_one_family(self):
        nets = ["2606:4700::/32", "104.16.0.0/13"]
        assert cidr_normalize(nets, version=4) == ["104.16.0.0/13"]
        assert cidr_normalize(nets, version=6) == ["2606:4700::/32"]

    def test_bare_addresses_become_host_networks(self):
        assert cidr_normalize(["192.0.2.7", "2001:db8::1"]) == ["192.0.2.7/32", "2001:db8::1/128"]

    def test_networks_inside_listed_networks_are_dropped(self):
        assert cidr_normalize(["10.0.0.0/8", "10.1.0.0/16", "10.1.2.3"]) == ["10.0.0.0/8"]

    def test_host_bits_are_refused_unless_not_strict(self):
        with pytest.raises(AnsibleFilterError, match="10.0.0.1/8"):
            cidr_normalize(["10.0.0.1/8"])
        assert cidr_normalize(["10.0.0.1/8"], strict=False) == ["10.0.0.0/8"]

    def test_garbage_names_the_bad_entry(self):
        with pytest.raises(AnsibleFilterError, match="'300.1.1.0/24'"):
            cidr_normalize(["1.1.1.0/24", "300.1.1.0/24"])


class TestPeerAddresses:
    HOSTVARS = {
        "node1": {"ansible_host": "198.51.100.11"},
        "node2": {"ansible_host": "198.51.100.12", "honeydue_node_ip": "10.0.0.2"},
        "node3": {"ansible_host": "198.51.100.13"},
    }

    def test_excludes_self_and_prefers_node_ip(self):
        assert peer_addresses(["node1", "node2", "node3"], self.HOSTVARS, "node1") == ["10.0.0.2", "198.51.100.13"]

    def test_without_self_lists_every_node(self):
        assert peer_addresses(["node3", "node1"], self.HOSTVARS) == ["198.51.100.11", "198.51.100.13"]

    def test_hostname_without_facts_fails(self):
        hostvars = {"a": {"ansible_host": "a.example"}, "b": {"ansible_host": "198.51.100.2"}}
        with pytest.raises(AnsibleFilterError, match="no IP address for a"):
            peer_addresses(["a", "b"], hostvars, "b")

    def test_hostname_falls_back_to_the_default_ipv4_fact(self):
        hostvars = {"a": {"ansible_host": "a", "ansible_facts": {"default_ipv4": {"address": "172.20.0.2"}}},
                    "b": {"ansible_host": "198.51.100.2"}}
        assert peer_addresses(["a", "b"], hostvars, "b") == ["172.20.0.2"]

    def test_node_ip_that_is_not_an_address_fails(self):
        hostvars = {"a": {"honeydue_node_ip": "node-a"}, "b": {"ansible_host": "198.51.100.2"}}
        with pytest.raises(AnsibleFilterError, match="not an IP address"):
            peer_addresses(["a", "b"], hostvars, "b")

    def test_a_bare_group_name_string_is_refused(self):
        with pytest.raises(AnsibleFilterError, match="list of inventory host names"):
            peer_addresses("k3s_servers", self.HOSTVARS)

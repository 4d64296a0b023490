"""K3s server config checks: the shipped key list, unknown keys, cluster-wide settings."""
from __future__ import annotations

from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.honeydue.infra.plugins.filter.k3s import k3s_critical_mismatch, k3s_server_config
from ansible_collections.honeydue.infra.plugins.module_utils._k3s_keys import SERVER_KEYS_V1_34

SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "k3s" / "config-keys-v1.34.txt"


def test_the_shipped_key_list_is_the_v1_34_list():
    assert SPEC.is_file(), "shared/specs must be beside the repository"
    spec = {line.strip() for line in SPEC.read_text().splitlines() if line.strip() and not line.startswith("#")}
    assert spec == SERVER_KEYS_V1_34


def test_known_keys_and_appends_pass():
    cfg = {"cluster-init": True, "node-ip": "10.0.1.11", "tls-san+": ["api.example"], "disable": ["servicelb"]}
    assert k3s_server_config(cfg) is cfg


def test_unknown_keys_fail_with_a_hint():
    with pytest.raises(AnsibleFilterError, match=r"'flanel-iface' \(did you mean 'flannel-iface'\?\)"):
        k3s_server_config({"flanel-iface": "enp7s0", "node-ip": "10.0.1.11"})


def test_critical_settings_must_agree():
    same = {"node1": {"flannel-backend": "vxlan", "disable": ["servicelb", "local-storage"]},
            "node2": {"flannel-backend": "vxlan", "disable": ["servicelb"]}}
    assert k3s_critical_mismatch(same) == []  # local-storage is not cluster-wide; servicelb is
    differ = {"node1": {"flannel-backend": "vxlan", "secrets-encryption": True},
              "node2": {"flannel-backend": "wireguard-native", "secrets-encryption": True}}
    assert k3s_critical_mismatch(differ) == ["flannel-backend: node1=vxlan, node2=wireguard-native"]

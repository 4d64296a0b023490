"""The lab nodes are real little machines: systemd as PID 1, a network between them, sshd."""
from __future__ import annotations

import os

import pytest
import testinfra.utils.ansible_runner

HOSTS = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
PEERS = ["node1", "node2", "node3"]


@pytest.fixture(params=HOSTS)
def node(request):
    return testinfra.get_host(f"ansible://{request.param}?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}")


def test_systemd_is_pid_1_and_booted_clean(node):
    assert node.check_output("cat /proc/1/comm") == "systemd"
    state = node.run("systemctl is-system-running")
    assert state.stdout.strip() == "running", node.check_output("systemctl --failed --no-legend")


def test_sshd_is_running_and_listening(node):
    assert node.service("ssh").is_running
    assert node.socket("tcp://0.0.0.0:22").is_listening


def test_image_has_what_the_roles_need(node):
    for pkg in ("openssh-server", "python3", "sudo", "iproute2", "iptables", "ufw", "ca-certificates", "curl"):
        assert node.package(pkg).is_installed, pkg


@pytest.mark.parametrize("peer", PEERS)
def test_nodes_reach_each_other_by_name(node, peer):
    # ICMP by name over the dedicated network, then sshd on the peer answers with its banner.
    assert node.run(f"ping -c1 -W2 {peer}").rc == 0
    banner = node.run(f"timeout 5 bash -c 'exec 3<>/dev/tcp/{peer}/22; head -c 7 <&3'")
    assert banner.stdout == "SSH-2.0", banner.stderr


def test_each_node_has_its_own_host_keys(node):
    fingerprints = set()
    for peer in PEERS:
        out = node.check_output(f"ssh-keyscan -t ed25519 {peer} 2>/dev/null | ssh-keygen -lf -")
        fingerprints.add(out.split()[1])
    assert len(fingerprints) == len(PEERS)

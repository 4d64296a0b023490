"""The join decisions and etcd settings of the K3s stand-in (lab/k3s/_etcd.py), as K3s v1.34 makes them."""
from __future__ import annotations

from pathlib import Path

import pytest

from lab.k3s._etcd import Member, etcd_config, initial_cluster, member_name, plan_join


def m(name, ip, learner=False, mid="1"):
    return Member(id=mid, name=name, peer_urls=(f"https://{ip}:2380",), client_urls=(f"https://{ip}:2379",),
                  is_learner=learner)


NODE1 = m("node1-0a1b2c3d", "10.0.1.11", mid="11")


def test_member_names_are_node_name_and_8_hex():
    name = member_name("node2")
    assert name.startswith("node2-") and len(name.split("-")[-1]) == 8 and int(name.split("-")[-1], 16) >= 0


def test_a_new_node_is_added_as_a_learner():
    assert plan_join([NODE1], "node2-11112222", "node2", "10.0.1.12").action == "add"


def test_a_member_with_our_name_and_peer_url_just_starts():
    me = m("node2-11112222", "10.0.1.12", mid="12")
    plan = plan_join([NODE1, me], "node2-11112222", "node2", "10.0.1.12")
    assert (plan.action, plan.member) == ("start", me)


def test_a_nameless_member_with_our_peer_url_is_an_interrupted_join():
    half = m("", "10.0.1.12", learner=True, mid="12")
    assert plan_join([NODE1, half], "node2-99999999", "node2", "10.0.1.12").action == "start"


def test_a_rebuilt_node_whose_old_member_is_listed_fails_with_duplicate_node_name():
    stale = m("node2-11112222", "10.0.1.12", mid="12")
    plan = plan_join([NODE1, stale], "node2-33334444", "node2", "10.0.1.12")
    assert plan.action == "fail" and "duplicate node name found" in plan.reason


def test_another_host_on_our_peer_url_fails_like_etcd():
    other = m("node9-11112222", "10.0.1.12", mid="19")
    plan = plan_join([NODE1, other], "node2-33334444", "node2", "10.0.1.12")
    assert plan.action == "fail" and plan.reason == "etcdserver: Peer URLs already exists"


def test_one_learner_at_a_time():
    learner = m("node3-55556666", "10.0.1.13", learner=True, mid="13")
    plan = plan_join([NODE1, learner], "node2-33334444", "node2", "10.0.1.12")
    assert plan.action == "retry" and "too many learner members" in plan.reason


def test_initial_cluster_names_every_member_and_us():
    assert initial_cluster([NODE1, m("", "10.0.1.13")], "node2-1", "10.0.1.12") == {
        "node1-0a1b2c3d": "https://10.0.1.11:2380", "node2-1": "https://10.0.1.12:2380"}


def test_etcd_listens_as_k3s_configures_it():
    cfg = etcd_config(Path("/var/lib/rancher/k3s"), "node1-0a1b2c3d", "10.0.1.11",
                      initial_cluster={"node1-0a1b2c3d": "https://10.0.1.11:2380"},
                      extra_args=["quota-backend-bytes=8589934592", "--auto-compaction-retention=2"])
    assert cfg["listen-client-urls"] == "https://127.0.0.1:2379,https://10.0.1.11:2379"
    assert cfg["listen-client-http-urls"] == "https://127.0.0.1:2382"  # the gateway and /health: loopback only
    assert cfg["listen-peer-urls"] == "https://127.0.0.1:2380,https://10.0.1.11:2380"
    assert cfg["listen-metrics-urls"] == "http://127.0.0.1:2381"
    assert (cfg["heartbeat-interval"], cfg["election-timeout"]) == (500, 5000)
    assert cfg["client-transport-security"]["client-cert-auth"] and cfg["peer-transport-security"]["client-cert-auth"]
    assert cfg["data-dir"] == "/var/lib/rancher/k3s/server/db/etcd"
    assert cfg["initial-cluster-state"] == "new"
    assert cfg["quota-backend-bytes"] == 8589934592 and cfg["auto-compaction-retention"] == 2


@pytest.mark.parametrize("expose, want", [(False, "http://127.0.0.1:2381"),
                                          (True, "http://127.0.0.1:2381,http://10.0.1.11:2381")])
def test_metrics_on_the_node_ip_only_when_exposed(expose, want):
    assert etcd_config(Path("/d"), "n", "10.0.1.11", expose_metrics=expose)["listen-metrics-urls"] == want

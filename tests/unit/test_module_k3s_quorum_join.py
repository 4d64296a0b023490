"""k3s_quorum_join's entry point against an in-memory etcd JSON gateway (module_utils open_url patched)."""
from __future__ import annotations

import base64
import io
import json
from unittest import mock
from urllib.error import HTTPError, URLError

from ansible_collections.honeydue.infra.plugins.modules import k3s_quorum_join


class FakeEtcd:
    """The gateway of one member of a 3-member cluster: member list, status, alarms, remove, lease, txn."""

    def __init__(self, members, me="1", leader="1"):
        self.members = [dict(m) for m in members]
        self.me, self.leader = me, leader
        self.kv, self.removed, self.calls = {}, [], []

    def open_url(self, url, method="POST", data=None, **_kwargs):
        path = url.split("2382", 1)[1]
        body = json.loads(data or "{}")
        self.calls.append((method, path, body))
        if path == "/v3/cluster/member/list":
            return self._answer({"members": self.members})
        if path == "/v3/maintenance/status":
            return self._answer({"header": {"member_id": self.me}, "leader": self.leader, "raftIndex": "100"})
        if path == "/v3/maintenance/alarm":
            return self._answer({})
        if path == "/v3/cluster/member/remove":
            if len([m for m in self.members if m["ID"] != body["ID"]]) < 2:
                msg = b'{"message": "etcdserver: re-configuration failed due to not enough started members"}'
                raise HTTPError(url, 400, "bad", {}, io.BytesIO(msg))
            self.removed.append(body["ID"])
            self.members = [m for m in self.members if m["ID"] != body["ID"]]
            return self._answer({})
        if path == "/v3/lease/grant":
            return self._answer({"ID": "77", "TTL": body["TTL"]})
        if path == "/v3/kv/txn":
            key = body["compare"][0]["key"]
            if body["compare"][0]["target"] == "VALUE":
                if self.kv.get(key) != body["compare"][0]["value"]:
                    return self._answer({"succeeded": False})
                self.kv.pop(key)
                return self._answer({"succeeded": True})
            if key in self.kv:
                return self._answer({"succeeded": False, "responses": [{"response_range": {"kvs": [{"value": self.kv[key]}]}}]})
            self.kv[key] = body["success"][0]["request_put"]["value"]
            return self._answer({"succeeded": True})
        if path == "/v3/kv/deleterange":
            self.kv.pop(body["key"], None)
            return self._answer({})
        raise AssertionError(f"unexpected call {method} {path}")

    @staticmethod
    def _answer(doc):
        return io.BytesIO(json.dumps(doc).encode())


def member(i, name, ip, learner=False):
    return {"ID": str(i), "name": name, "peerURLs": [f"https://{ip}:2380"], "clientURLs": [f"https://{ip}:2379"],
            "isLearner": learner}


MEMBERS = [member(1, "node1-aaaa0001", "10.0.1.11"), member(2, "node2-bbbb0002", "10.0.1.12"),
           member(3, "node3-cccc0003", "10.0.1.13")]


def statuses(*ids):
    return {f"node{i}": {"status": {"answered": True, "member_id": str(i), "leader": "1", "raft_index": 100,
                                    "alarms": []}} for i in ids}


def run(run_module, etcd, args, check_mode=False):
    with mock.patch("ansible_collections.honeydue.infra.plugins.module_utils._etcd_gateway.open_url", etcd.open_url):
        return run_module(k3s_quorum_join.main, args, check_mode=check_mode)


def test_a_rebuilt_node_has_its_stale_member_removed_under_the_lock(run_module):
    etcd = FakeEtcd(MEMBERS)
    result = run(run_module, etcd, {"state": "prepare", "node_name": "node3", "peer_url": "https://10.0.1.23:2380",
                                    "statuses": statuses(1, 2), "lock_owner": "node3"})
    assert not result.get("failed"), result
    assert result["changed"] and result["removed"] == ["node3-cccc0003"] and etcd.removed == ["3"]
    assert base64.b64decode(next(iter(etcd.kv.values()))).decode() == "node3"  # the lock is held until wait


def test_check_mode_returns_the_plan_and_changes_nothing(run_module):
    etcd = FakeEtcd(MEMBERS)
    result = run(run_module, etcd, {"state": "prepare", "node_name": "node3", "peer_url": "https://10.0.1.23:2380",
                                    "statuses": statuses(1, 2), "lock_owner": "node3"}, check_mode=True)
    assert result["plan"]["action"] == "remove-then-join" and result["changed"]  # it would change
    assert etcd.removed == [] and etcd.kv == {}
    # --diff: the member list before and as planned
    assert "node3-cccc0003 3 https://10.0.1.13:2380" in result["diff"]["before"]
    assert "node3-cccc0003" not in result["diff"]["after"] and "node1-aaaa0001" in result["diff"]["after"]


def test_a_degraded_cluster_refuses_with_the_member_table(run_module):
    etcd = FakeEtcd(MEMBERS)
    result = run(run_module, etcd, {"state": "prepare", "node_name": "node4", "peer_url": "https://10.0.1.14:2380",
                                    "statuses": statuses(1, 2), "lock_owner": "node4"})
    assert result["failed"] and "node3" in result["msg"]
    assert [row["healthy"] for row in result["members_before"]] == [True, True, False]
    assert etcd.removed == [] and etcd.kv == {}


def test_another_runs_lock_is_respected(run_module):
    etcd = FakeEtcd(MEMBERS)
    key = base64.b64encode(k3s_quorum_join.LOCK_KEY.encode()).decode()
    etcd.kv[key] = base64.b64encode(b"someone-else").decode()
    with mock.patch.object(k3s_quorum_join.time, "sleep"), mock.patch.object(k3s_quorum_join.time, "time",
                                                                            side_effect=[0, 10_000]):
        result = run(run_module, etcd, {"state": "prepare", "node_name": "node3", "peer_url": "https://10.0.1.23:2380",
                                        "statuses": statuses(1, 2), "lock_owner": "node3", "lock_ttl": 60})
    assert result["failed"] and "someone-else" in result["msg"] and etcd.removed == []


def test_a_rebuilt_node_on_its_kept_address_is_told_apart_by_its_member_name(run_module):
    etcd = FakeEtcd(MEMBERS)
    result = run(run_module, etcd, {"state": "prepare", "node_name": "node3", "peer_url": "https://10.0.1.13:2380",
                                    "member_name": "", "statuses": statuses(1, 2), "lock_owner": "node3"})
    assert result["plan"]["action"] == "remove-then-join" and etcd.removed == ["3"]


def test_release_leaves_another_owners_lock_alone(run_module):
    etcd = FakeEtcd(MEMBERS)
    key = base64.b64encode(k3s_quorum_join.LOCK_KEY.encode()).decode()
    etcd.kv[key] = base64.b64encode(b"someone-else").decode()
    result = run(run_module, etcd, {"state": "release", "lock_owner": "node3"})
    assert not result["changed"] and key in etcd.kv
    result = run(run_module, etcd, {"state": "release", "lock_owner": "someone-else"})
    assert result["changed"] and key not in etcd.kv


def test_status_reports_the_member_name_on_disk_and_asks_nothing_without_data(run_module, tmp_path):
    etcd = FakeEtcd(MEMBERS)
    result = run(run_module, etcd, {"state": "status", "data_dir": str(tmp_path)})
    assert result["status"] == {"answered": False, "member_name": "", "error": "no etcd data"} and etcd.calls == []
    (tmp_path / "server" / "db" / "etcd").mkdir(parents=True)
    (tmp_path / "server" / "db" / "etcd" / "name").write_text("node1-aaaa0001\n")
    result = run(run_module, etcd, {"state": "status", "data_dir": str(tmp_path)})
    assert result["status"]["answered"] and result["status"]["member_name"] == "node1-aaaa0001"
    assert result["status"]["member_id"] == "1" and result["status"]["leader"] == "1"


def test_remove_takes_the_member_out_under_the_lock_and_releases_it(run_module):
    etcd = FakeEtcd(MEMBERS)
    result = run(run_module, etcd, {"state": "remove", "node_name": "node3", "statuses": statuses(1, 2, 3),
                                    "lock_owner": "remove-node3"})
    assert result["changed"] and result["removed"] == ["node3-cccc0003"] and etcd.removed == ["3"] and etcd.kv == {}
    assert result["diff"]["before"].count("\n") == 3 and result["diff"]["after"].count("\n") == 2


def test_remove_is_refused_when_another_server_is_down(run_module):
    etcd = FakeEtcd(MEMBERS)
    result = run(run_module, etcd, {"state": "remove", "node_name": "node3", "statuses": statuses(1, 3),
                                    "lock_owner": "remove-node3"})
    assert result["failed"] and "node2" in result["msg"] and etcd.removed == []


class StartingEtcd(FakeEtcd):
    """A server just started with ``--no-block``: nothing listens for its first ``refused`` calls."""

    def __init__(self, members, refused):
        super().__init__(members)
        self.refused = refused

    def open_url(self, url, method="POST", data=None, **kwargs):
        if self.refused:
            self.refused -= 1
            raise URLError(ConnectionRefusedError(111, "Connection refused"))
        if url.endswith("/health"):
            return self._answer({"health": "true", "reason": ""})
        return super().open_url(url, method, data, **kwargs)


def wait_args(timeout):
    return {"state": "wait", "node_name": "node1", "peer_url": "https://10.0.1.11:2380", "node_ready": False,
            "timeout": timeout}


def test_wait_outlasts_a_server_that_does_not_answer_yet(run_module):
    """The first member list is read inside the wait (the bring-up's flake: K3s started, etcd not up yet)."""
    etcd = StartingEtcd(MEMBERS, refused=3)
    with mock.patch.object(k3s_quorum_join.time, "sleep"):
        result = run(run_module, etcd, wait_args(timeout=30))
    assert not result.get("failed"), result
    assert etcd.refused == 0 and result["members_before"] == result["members_after"]
    assert [row["name"] for row in result["members_before"]] == [m["name"] for m in MEMBERS]


def test_wait_that_never_gets_an_answer_fails_with_the_last_error(run_module):
    etcd = StartingEtcd(MEMBERS, refused=10**9)
    with mock.patch.object(k3s_quorum_join.time, "sleep"):
        result = run(run_module, etcd, wait_args(timeout=1))
    assert result["failed"] and "within 1 s" in result["msg"] and "Connection refused" in result["msg"]
    assert result["members_before"] == []

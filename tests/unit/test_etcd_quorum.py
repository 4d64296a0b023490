"""Quorum arithmetic, health and join planning for K3s's embedded etcd (module_utils/_etcd_quorum)."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.honeydue.infra.plugins.module_utils._etcd_quorum import (
    Member, Status, diff, health, member_table, plan_join, plan_remove, quorum, tolerates)


def m(i, name, ip, learner=False):
    return Member(str(i), name, (f"https://{ip}:2380",), (f"https://{ip}:2379",), learner)


N1, N2, N3 = m(1, "node1-aaaa0001", "10.0.1.11"), m(2, "node2-bbbb0002", "10.0.1.12"), m(3, "node3-cccc0003", "10.0.1.13")


def up(*members, leader="1", index=100):
    return {x.id: Status(x.id, leader=leader, raft_index=index) for x in members}


@given(st.integers(min_value=1, max_value=99))
def test_quorum_is_a_strict_majority(n):
    q = quorum(n)
    assert 2 * q > n and 2 * (q - 1) <= n
    assert tolerates(n) == n - q


def test_three_voters_survive_one_loss_and_no_more():
    assert (quorum(3), tolerates(3), tolerates(5), tolerates(2)) == (2, 1, 2, 0)


def test_a_healthy_cluster():
    h = health([N1, N2, N3], up(N1, N2, N3))
    assert h.healthy and (h.voters, h.voters_up, h.quorum, h.leader) == (3, 3, 2, "1")


def test_one_member_down_is_unhealthy_but_has_quorum():
    h = health([N1, N2, N3], up(N1, N2))
    assert not h.healthy and h.voters_up == 2 and any("node3" in p for p in h.problems)
    assert not any("quorum" in p for p in h.problems)


def test_the_member_being_replaced_does_not_count_against_health():
    assert health([N1, N2, N3], up(N1, N2), replacing={"3"}).healthy


def test_two_down_loses_quorum_even_when_one_is_being_replaced():
    h = health([N1, N2, N3], up(N1), replacing={"3"})
    assert not h.healthy and any("quorum needs 2" in p for p in h.problems)


def test_split_leaders_alarms_and_lag_are_problems():
    statuses = up(N1, N2, N3)
    statuses["3"] = Status("3", leader="2", raft_index=100)
    assert any("disagree" in p for p in health([N1, N2, N3], statuses).problems)
    statuses = up(N1, N2, N3)
    statuses["2"] = Status("2", leader="1", raft_index=100, alarms=("NOSPACE",))
    assert any("alarm NOSPACE" in p for p in health([N1, N2, N3], statuses).problems)
    statuses = up(N1, N2, N3)
    statuses["3"] = Status("3", leader="1", raft_index=10)
    assert any("90 raft entries behind" in p for p in health([N1, N2, N3], statuses).problems)


def test_a_new_node_joins_a_healthy_cluster():
    assert plan_join([N1, N2], up(N1, N2), "node3", "https://10.0.1.13:2380").action == "join"


def test_a_healthy_voter_has_nothing_to_do():
    assert plan_join([N1, N2, N3], up(N1, N2, N3), "node3", "https://10.0.1.13:2380").action == "none"


def test_a_rebuilt_node_with_a_new_address_has_its_old_member_removed_first():
    plan = plan_join([N1, N2, N3], up(N1, N2), "node3", "https://10.0.1.23:2380")
    assert plan.action == "remove-then-join" and plan.remove == [N3]


def test_a_rebuilt_node_on_the_same_address_under_a_new_member_name_is_taken_as_ours():
    # Same node name, same peer URL: K3s restarts it as that member once its data is back; the
    # stale one (down) is replaced in place.
    plan = plan_join([N1, N2, N3], up(N1, N2), "node3", "https://10.0.1.13:2380")
    assert plan.action == "join"


def test_a_join_into_a_degraded_cluster_is_refused_with_the_table():
    plan = plan_join([N1, N2, N3], up(N1, N2), "node4", "https://10.0.1.14:2380")
    assert plan.action == "refuse" and "node3" in plan.reason
    rows = member_table([N1, N2, N3], up(N1, N2))
    assert [r["healthy"] for r in rows] == [True, True, False] and rows[2]["peer_url"] == "https://10.0.1.13:2380"


def test_removing_a_stale_member_that_would_break_quorum_is_refused():
    # Two voters left, one of them down: removing node2's stale member leaves 1 of 2 answering.
    plan = plan_join([N1, N2, N3], {"1": Status("1", leader="1", raft_index=5)}, "node2", "https://10.0.1.22:2380")
    assert plan.action == "refuse"


members_st = st.lists(st.booleans(), min_size=1, max_size=7).map(
    lambda flags: [m(i + 1, f"node{i + 1}-{i:08x}", f"10.0.1.{11 + i}") for i, _ in enumerate(flags)])


@given(members_st, st.data())
def test_a_plan_never_removes_a_member_when_the_rest_would_lose_quorum(members, data):
    answering = data.draw(st.lists(st.sampled_from(members), unique=True))
    statuses = up(*answering, leader=answering[0].id if answering else "0")
    target = data.draw(st.sampled_from(members))
    plan = plan_join(members, statuses, target.name.rsplit("-", 1)[0], "https://192.0.2.1:2380")
    if plan.action == "remove-then-join":
        left = [x for x in members if x not in plan.remove]
        assert sum(1 for x in left if x.id in statuses) >= quorum(len(left))
    if plan.action != "refuse":
        assert sum(1 for x in members if x.id in statuses) >= quorum(len(members)) or plan.action == "none"


def test_diff_names_added_removed_and_promoted():
    before = [N1, N2, m(3, "node3-cccc0003", "10.0.1.13", learner=True)]
    after = [N1, N3, m(4, "node4-dddd0004", "10.0.1.14")]
    assert diff(before, after) == {"added": ["node4-dddd0004"], "removed": ["node2-bbbb0002"], "promoted": ["node3-cccc0003"]}


def test_a_rebuilt_node_on_its_kept_address_has_its_old_member_removed():
    # Hetzner Primary IP kept: same peer URL, no data on disk (member_name ""), old member down.
    plan = plan_join([N1, N2, N3], up(N1, N2), "node3", "https://10.0.1.13:2380", member_name="")
    assert plan.action == "remove-then-join" and plan.remove == [N3]


def test_a_node_restarting_on_its_own_data_is_not_stale():
    plan = plan_join([N1, N2, N3], up(N1, N2), "node3", "https://10.0.1.13:2380", member_name=N3.name)
    assert plan.action == "join" and plan.remove == []
    assert plan_join([N1, N2, N3], up(N1, N2, N3), "node3", "https://10.0.1.13:2380",
                     member_name=N3.name).action == "none"


def test_a_rebuilt_node_is_refused_while_another_server_is_down():
    plan = plan_join([N1, N2, N3], up(N1), "node3", "https://10.0.1.13:2380", member_name="")
    assert plan.action == "refuse" and "node2" in plan.reason


def test_removing_a_server_keeps_quorum_or_is_refused():
    plan = plan_remove([N1, N2, N3], up(N1, N2, N3), "node3")
    assert plan.action == "remove" and plan.remove == [N3]
    assert plan_remove([N1, N2, N3], up(N1, N3), "node3").action == "refuse"  # node2 down: 1 of 2 left
    assert plan_remove([N1, N2, N3], up(N1, N2, N3), "node9").action == "none"
    assert plan_remove([N1], up(N1), "node1").action == "refuse"  # the last member


@given(members_st, st.data())
def test_a_planned_removal_never_leaves_fewer_than_a_quorum_answering(members, data):
    statuses = {x.id: Status(x.id, leader=members[0].id, raft_index=10) for x in members
                if data.draw(st.booleans())}
    target = data.draw(st.sampled_from(members))
    plan = plan_remove(members, statuses, target.name.rsplit("-", 1)[0])
    if plan.action == "remove":
        left = [x for x in members if x not in plan.remove]
        assert left and sum(1 for x in left if x.id in statuses) >= quorum(len(left))

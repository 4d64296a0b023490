# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Quorum arithmetic, cluster health and join planning for K3s's embedded etcd: pure functions.

Used by ``honeydue.infra.k3s_quorum_join``. The inputs are what etcd's JSON gateway answers
(``/v3/cluster/member/list`` and ``/v3/maintenance/status`` of each member); nothing here talks to
the network, so every decision is unit- and property-tested.

Healthy (one definition, :func:`health`): every member except the one being replaced answers,
all report the same leader, none has an alarm, each is within ``max_lag`` raft entries of the
leader, and the voters that answer are a majority of all voters. A dead member that this run is
replacing does not make the cluster unhealthy (otherwise no node could ever be replaced), but it
still counts as a voter for the majority.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_LAG = 50  # raft entries behind the leader that still count as caught up


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    peer_urls: tuple[str, ...] = ()
    client_urls: tuple[str, ...] = ()
    is_learner: bool = False

    @classmethod
    def from_gateway(cls, raw: dict[str, Any]) -> Member:
        """A member as the JSON gateway lists it (uint64 ids are strings there)."""
        return cls(id=str(raw.get("ID", "")), name=raw.get("name", ""), peer_urls=tuple(raw.get("peerURLs", [])),
                   client_urls=tuple(raw.get("clientURLs", [])), is_learner=bool(raw.get("isLearner", False)))


@dataclass(frozen=True)
class Status:
    """One member's ``/v3/maintenance/status`` (None fields: it did not answer)."""

    member_id: str
    leader: str | None = None
    raft_index: int | None = None
    alarms: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def answered(self) -> bool:
        return self.leader is not None


@dataclass
class Health:
    healthy: bool
    voters: int
    voters_up: int
    quorum: int
    leader: str | None
    problems: list[str] = field(default_factory=list)


def quorum(voters: int) -> int:
    """The majority etcd needs: floor(n/2) + 1 of the voting members."""
    if voters < 0:
        raise ValueError("voters must be >= 0")
    return voters // 2 + 1


def tolerates(voters: int) -> int:
    """How many voters can be lost with the cluster still writable."""
    return max(voters - quorum(voters), 0)


def health(members: list[Member], statuses: dict[str, Status], *, replacing: set[str] = frozenset(),
           max_lag: int = MAX_LAG) -> Health:
    """The cluster's health by the one definition above. ``replacing``: member ids this run replaces."""
    voters = [m for m in members if not m.is_learner]
    problems = []
    up = [m for m in members if statuses.get(m.id, Status(m.id)).answered]
    voters_up = [m for m in voters if m in up]
    need = quorum(len(voters))
    for m in members:
        if m.id in replacing:
            continue
        st = statuses.get(m.id, Status(m.id))
        if not st.answered:
            problems.append(f"{m.name or m.id}: not answering" + (f" ({'; '.join(st.errors)})" if st.errors else ""))
        elif st.alarms:
            problems.append(f"{m.name or m.id}: alarm {', '.join(st.alarms)}")
    leaders = {statuses[m.id].leader for m in up if statuses[m.id].leader not in (None, "0")}
    leader = next(iter(leaders)) if len(leaders) == 1 else None
    if len(leaders) > 1:
        problems.append(f"members disagree on the leader: {sorted(leaders)}")
    elif not leaders:
        problems.append("no leader")
    if leader is not None and leader in statuses and statuses[leader].raft_index is not None:
        top = statuses[leader].raft_index
        for m in up:
            idx = statuses[m.id].raft_index
            if m.id not in replacing and idx is not None and top - idx > max_lag:
                problems.append(f"{m.name or m.id}: {top - idx} raft entries behind the leader")
    if len(voters_up) < need:
        problems.append(f"{len(voters_up)} of {len(voters)} voters answer; quorum needs {need}")
    return Health(not problems, len(voters), len(voters_up), need, leader, problems)


@dataclass
class JoinPlan:
    action: str  # "none" (already a healthy voter), "join", "remove-then-join", "refuse"
    remove: list[Member] = field(default_factory=list)
    reason: str = ""


def plan_join(members: list[Member], statuses: dict[str, Status], node_name: str, peer_url: str,
              member_name: str | None = None) -> JoinPlan:
    """What a server about to (re)start or join does.

    ``member_name`` is the etcd member name the node has on disk (K3s keeps it in
    ``server/db/etcd/name``; empty: the node has no etcd data, for example it was rebuilt). K3s
    names members ``<node-name>-<8 hex>`` afresh on every empty start, and a Hetzner Primary IP
    keeps the address, so a rebuilt node usually has its old peer URL and a new member name.

    - our member (``member_name``) listed and no other one of ours: start K3s (nothing when it is
      already a healthy voter);
    - any other member with our node name or our peer URL is stale (K3s would fail with "duplicate
      node name found" or "Peer URLs already exists", and etcd refuses to add a member while a
      down voter is listed): removed first, only if the voters left keep quorum and the cluster is
      otherwise healthy;
    - the cluster unhealthy (by :func:`health`, our own and the stale members excluded): refuse.
    """
    def ours(m: Member) -> bool:
        return m.name.rsplit("-", 1)[0] == node_name if m.name else False

    if member_name is None:  # not known: the member with our node name and peer URL is ours
        mine = [m for m in members if ours(m) and peer_url in m.peer_urls]
    else:
        mine = [m for m in members if member_name and m.name == member_name]
    stale = [m for m in members if m not in mine and (ours(m) or peer_url in m.peer_urls)]
    state = health(members, statuses, replacing={m.id for m in stale + mine})
    if mine and not stale:
        me = mine[0]
        if not me.is_learner and statuses.get(me.id, Status(me.id)).answered and state.healthy:
            return JoinPlan("none", reason="already a healthy voter")
        if not state.healthy:
            return JoinPlan("refuse", reason="; ".join(state.problems))
        return JoinPlan("join", reason="member listed; starting K3s")
    if not state.healthy:
        return JoinPlan("refuse", reason="; ".join(state.problems))
    if stale:
        left = [m for m in members if m not in stale and not m.is_learner]
        up_left = [m for m in left if statuses.get(m.id, Status(m.id)).answered]
        if len(up_left) < quorum(len(left)):
            return JoinPlan("refuse", stale, f"removing {', '.join(m.name or m.id for m in stale)} would leave "
                                             f"{len(up_left)} of {len(left)} voters answering, below quorum")
        return JoinPlan("remove-then-join", stale, "a member of this node from before it was rebuilt")
    return JoinPlan("join")


def member_table(members: list[Member], statuses: dict[str, Status]) -> list[dict[str, Any]]:
    """The rows a refusal shows: name, id, peer URL, learner, healthy."""
    return [{"name": m.name, "id": m.id, "peer_url": m.peer_urls[0] if m.peer_urls else "", "learner": m.is_learner,
             "healthy": statuses.get(m.id, Status(m.id)).answered and not statuses[m.id].alarms}
            for m in members]


def membership_text(members: list[Member]) -> str:
    """The member list as --diff shows it: one line per member, by name."""
    return "".join(f"{m.name} {m.id} {m.peer_urls[0] if m.peer_urls else '-'}{' learner' if m.is_learner else ''}\n"
                   for m in sorted(members, key=lambda m: m.name))


def diff(before: list[Member], after: list[Member]) -> dict[str, list[str]]:
    """Membership changes between two lists: added, removed, promoted (learner -> voter)."""
    b, a = {m.id: m for m in before}, {m.id: m for m in after}
    return {"added": sorted(a[i].name for i in a.keys() - b.keys()),
            "removed": sorted(b[i].name for i in b.keys() - a.keys()),
            "promoted": sorted(a[i].name for i in a.keys() & b.keys() if b[i].is_learner and not a[i].is_learner)}


def plan_remove(members: list[Member], statuses: dict[str, Status], node_name: str) -> JoinPlan:
    """Removing a server on purpose: its member(s) go only from an otherwise healthy cluster, and only
    while the voters left keep quorum (etcd would refuse anyway; this says why first)."""
    targets = [m for m in members if m.name and m.name.rsplit("-", 1)[0] == node_name]
    if not targets:
        return JoinPlan("none", reason=f"{node_name} has no etcd member")
    state = health(members, statuses, replacing={m.id for m in targets})
    if not state.healthy:
        return JoinPlan("refuse", targets, "; ".join(state.problems))
    left = [m for m in members if m not in targets and not m.is_learner]
    up_left = [m for m in left if statuses.get(m.id, Status(m.id)).answered]
    if not left or len(up_left) < quorum(len(left)):
        return JoinPlan("refuse", targets, f"removing {node_name} would leave {len(up_left)} of {len(left)} voters "
                                           "answering, below quorum")
    return JoinPlan("remove", targets, f"{len(left)} voters remain")

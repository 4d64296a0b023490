"""The embedded etcd as K3s v1.34 runs it: its configuration, member names, and the join decision.

Pure functions; the process itself is started by :mod:`lab.k3s.server`. Sources: k3s-io/k3s
pkg/etcd/etcd.go at the v1.34.3 commit 151ca514e (see ../shared/specs/k3s/embedded-etcd.md).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# K: pkg/etcd/etcd.go (cluster(), listenClientURLs(), clientHTTPURL ...).
CLIENT_PORT, PEER_PORT, METRICS_PORT, HTTP_PORT = 2379, 2380, 2381, 2382
HEARTBEAT_MS, ELECTION_MS = 500, 5000


def url_host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def member_name(node_name: str, suffix: str | None = None) -> str:
    """``<node-name>-<first 8 hex of a UUID>``: K3s persists it in db/etcd/name (K: etcd.go)."""
    return f"{node_name}-{suffix or secrets.token_hex(4)}"


def peer_url(ip: str) -> str:
    return f"https://{url_host(ip)}:{PEER_PORT}"


def client_url(ip: str) -> str:
    return f"https://{url_host(ip)}:{CLIENT_PORT}"


def etcd_config(data_dir: Path, name: str, node_ip: str, *, initial_cluster: dict[str, str] | None = None,
                state: str = "new", expose_metrics: bool = False, extra_args: list[str] | None = None,
                unsafe_no_fsync: bool = False) -> dict[str, Any]:
    """etcd's configuration as K3s writes it to ``server/db/etcd/config``.

    Clients on loopback and the node IP (gRPC only, because listen-client-http-urls moves the HTTP
    gateway and /health to https://127.0.0.1:2382), peers on loopback and the node IP, metrics on
    http://127.0.0.1:2381 (and the node IP with etcd-expose-metrics), client-cert auth on both
    transports, heartbeat 500 ms, election 5 s. ``--etcd-arg key=value`` entries are merged in last.
    """
    tls = data_dir / "server" / "tls" / "etcd"
    host = url_host(node_ip)
    cfg: dict[str, Any] = {
        "name": name,
        "data-dir": str(data_dir / "server" / "db" / "etcd"),
        "listen-client-urls": f"https://127.0.0.1:{CLIENT_PORT},https://{host}:{CLIENT_PORT}",
        "listen-client-http-urls": f"https://127.0.0.1:{HTTP_PORT}",
        "advertise-client-urls": f"https://{host}:{CLIENT_PORT}",
        "listen-peer-urls": f"https://127.0.0.1:{PEER_PORT},https://{host}:{PEER_PORT}",
        "initial-advertise-peer-urls": peer_url(node_ip),
        "listen-metrics-urls": f"http://127.0.0.1:{METRICS_PORT}" + (f",http://{host}:{METRICS_PORT}" if expose_metrics else ""),
        "heartbeat-interval": HEARTBEAT_MS,
        "election-timeout": ELECTION_MS,
        "logger": "zap",
        "log-outputs": ["stderr"],
        "experimental-initial-corrupt-check": True,
        "client-transport-security": {
            "cert-file": str(tls / "server-client.crt"), "key-file": str(tls / "server-client.key"),
            "trusted-ca-file": str(tls / "server-ca.crt"), "client-cert-auth": True},
        "peer-transport-security": {
            "cert-file": str(tls / "peer-server-client.crt"), "key-file": str(tls / "peer-server-client.key"),
            "trusted-ca-file": str(tls / "peer-ca.crt"), "client-cert-auth": True},
    }
    if initial_cluster is not None:
        cfg["initial-cluster"] = ",".join(f"{n}={u}" for n, u in initial_cluster.items())
        cfg["initial-cluster-state"] = state
    if unsafe_no_fsync:
        cfg["unsafe-no-fsync"] = True
    for arg in extra_args or []:
        key, _, value = arg.partition("=")
        cfg[key.lstrip("-")] = _typed(value)
    return cfg


def _typed(value: str) -> Any:
    if value in ("true", "false"):
        return value == "true"
    return int(value) if value.isdigit() else value


@dataclass(frozen=True)
class Member:
    """One entry of etcd's member list (MemberList), as the JSON gateway returns it."""

    id: str
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Member:
        return cls(id=str(raw.get("ID", "")), name=raw.get("name", ""), peer_urls=tuple(raw.get("peerURLs", [])),
                   client_urls=tuple(raw.get("clientURLs", [])), is_learner=bool(raw.get("isLearner", False)))


@dataclass(frozen=True)
class JoinPlan:
    action: str  # "start" (already a member: no add), "add" (MemberAddAsLearner), "fail", "retry"
    reason: str = ""
    member: Member | None = None


def plan_join(members: list[Member], name: str, node_name: str, node_ip: str, *, learners_allowed: int = 1) -> JoinPlan:
    """What a joining server does with the cluster's member list (K: etcd.go join()).

    - a member with our name and peer URL: nothing to add, start;
    - a member without a name holding our peer URL: an interrupted join, taken as ours;
    - another member whose name has our node-name prefix: "duplicate node name found" (fatal; K3s
      deletes its name file);
    - another member holding our peer URL: etcd's ErrPeerURLExist (fatal, not retried);
    - already ``learners_allowed`` learners: retried every second ("too many learner members").
    """
    mine = peer_url(node_ip)
    for m in members:
        if m.name == name and mine in m.peer_urls:
            return JoinPlan("start", "already a member", m)
        if not m.name and mine in m.peer_urls:
            return JoinPlan("start", "an interrupted join holds our peer URL", m)
    for m in members:
        if m.name != name and m.name.rsplit("-", 1)[0] == node_name:
            return JoinPlan("fail", f"duplicate node name found, please use a unique name for this node: {m.name}", m)
        if mine in m.peer_urls:
            return JoinPlan("fail", "etcdserver: Peer URLs already exists", m)
    if sum(m.is_learner for m in members) >= learners_allowed:
        return JoinPlan("retry", "etcdserver: too many learner members in cluster")
    return JoinPlan("add")


def initial_cluster(members: list[Member], name: str, node_ip: str) -> dict[str, str]:
    """The initial-cluster a joiner starts etcd with: every named member and itself."""
    out = {m.name: m.peer_urls[0] for m in members if m.name and m.peer_urls}
    out[name] = peer_url(node_ip)
    return out

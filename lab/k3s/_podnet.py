"""Pod networking of a lab node, the way Flannel's ``host-gw`` backend and the bridge CNI plugin lay
it out (Flannel docs "Backends": host-gw; CNI ``bridge`` plugin; K3s ``--flannel-backend``):

- the node's pod CIDR (``Node.spec.podCIDR``, ``10.42.<n>.0/24``) on a bridge ``cni0`` holding the
  first address (``10.42.<n>.1``);
- each pod in its own network namespace (``cni-<pod uid>``, as containerd names them), joined to
  ``cni0`` by a veth pair, ``eth0`` inside with the next free address and a default route via the bridge;
- a route per other node: ``10.42.<m>.0/24 via <that node's InternalIP>`` — host-gw. (K3s's default
  is VXLAN: the same routes, but through ``flannel.1`` with packets wrapped in UDP 8472; host-gw needs
  the nodes on one L2 segment, which the lab's private network is);
- Flannel's forward rules (chain ``FLANNEL-FWD``: accept what comes from or goes to the cluster CIDR),
  so routed pod traffic passes a host firewall whose default forward policy drops.

Functions return ``ip``/``iptables`` argument lists; ``run`` applies them. Nothing here touches a
namespace it did not create.
"""
from __future__ import annotations

import hashlib
import ipaddress
import subprocess
from collections.abc import Iterable

BRIDGE = "cni0"
CLUSTER_CIDR = "10.42.0.0/16"
FWD_CHAIN = "FLANNEL-FWD"


def netns_name(pod_uid: str) -> str:
    return f"cni-{pod_uid}"


def veth_name(pod_uid: str) -> str:
    """The host side of a pod's veth pair (``veth`` + 8 hex characters; interface names max 15)."""
    return "veth" + hashlib.sha256(pod_uid.encode()).hexdigest()[:8]


def gateway(pod_cidr: str) -> str:
    return str(next(ipaddress.ip_network(pod_cidr).hosts()))


def next_address(pod_cidr: str, used: Iterable[str]) -> str:
    """The lowest free pod address (the gateway and the network's ends excluded)."""
    taken = set(used) | {gateway(pod_cidr)}
    for host in ipaddress.ip_network(pod_cidr).hosts():
        if str(host) not in taken:
            return str(host)
    raise RuntimeError(f"pod CIDR {pod_cidr} is full")


def node_commands(pod_cidr: str, cluster_cidr: str = CLUSTER_CIDR) -> list[list[str]]:
    """Bridge and forward rules for a node (idempotent: ``replace``/``-C || -A`` style handled by ``run``)."""
    prefix = ipaddress.ip_network(pod_cidr).prefixlen
    return [
        ["ip", "link", "add", BRIDGE, "type", "bridge"],
        ["ip", "addr", "replace", f"{gateway(pod_cidr)}/{prefix}", "dev", BRIDGE],
        ["ip", "link", "set", BRIDGE, "up"],
        # set only when off: a container's /proc/sys is read-only (docker sets it with --sysctl)
        ["sh", "-c", 'test "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 || sysctl -qw net.ipv4.ip_forward=1'],
        ["iptables", "-N", FWD_CHAIN],
        ["iptables", "-A", FWD_CHAIN, "-s", cluster_cidr, "-j", "ACCEPT"],
        ["iptables", "-A", FWD_CHAIN, "-d", cluster_cidr, "-j", "ACCEPT"],
        ["iptables", "-I", "FORWARD", "1", "-j", FWD_CHAIN],
    ]


def route_commands(own_cidr: str, peers: dict[str, str], present: dict[str, str]) -> list[list[str]]:
    """host-gw: a route to each other node's pod CIDR via its address; stale ones removed.

    ``peers``: pod CIDR -> node address wanted; ``present``: pod CIDR -> gateway routed now."""
    out = [["ip", "route", "replace", cidr, "via", via] for cidr, via in sorted(peers.items())
           if cidr != own_cidr and present.get(cidr) != via]
    out += [["ip", "route", "del", cidr] for cidr in sorted(present) if cidr not in peers and cidr != own_cidr]
    return out


def pod_commands(pod_uid: str, address: str, pod_cidr: str) -> list[list[str]]:
    """A pod's namespace, veth pair and addresses."""
    ns, veth = netns_name(pod_uid), veth_name(pod_uid)
    prefix = ipaddress.ip_network(pod_cidr).prefixlen
    peer = "p" + veth[4:]
    return [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", veth, "type", "veth", "peer", "name", peer],
        ["ip", "link", "set", peer, "netns", ns],
        ["ip", "link", "set", veth, "master", BRIDGE],
        ["ip", "link", "set", veth, "up"],
        ["ip", "-n", ns, "link", "set", peer, "name", "eth0"],
        ["ip", "-n", ns, "addr", "add", f"{address}/{prefix}", "dev", "eth0"],
        ["ip", "-n", ns, "link", "set", "eth0", "up"],
        ["ip", "-n", ns, "link", "set", "lo", "up"],
        ["ip", "-n", ns, "route", "add", "default", "via", gateway(pod_cidr)],
    ]


def pod_teardown_commands(pod_uid: str) -> list[list[str]]:
    return [["ip", "link", "del", veth_name(pod_uid)], ["ip", "netns", "del", netns_name(pod_uid)]]


def run(commands: list[list[str]], *, prefix: list[str] | None = None, tolerate: tuple[str, ...] = (
        "File exists", "Chain already exists", "Cannot find device", "No such file")) -> list[str]:
    """Run each command (under ``prefix``, e.g. ``ip netns exec <node>``); errors other than the
    tolerated "already there"/"already gone" ones raise. Returns what failed tolerably."""
    skipped = []
    for argv in commands:
        if argv[:2] == ["iptables", "-A"] or argv[:2] == ["iptables", "-I"]:
            check = ["iptables", "-C", *(argv[2:] if argv[1] == "-A" else [argv[2], *argv[4:]])]
            if subprocess.run([*(prefix or []), *check], capture_output=True).returncode == 0:
                continue
        done = subprocess.run([*(prefix or []), *argv], capture_output=True, text=True)
        if done.returncode:
            if any(t in done.stderr for t in tolerate):
                skipped.append(" ".join(argv))
                continue
            raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return skipped


def present_routes(prefix: list[str] | None = None, cluster_cidr: str = CLUSTER_CIDR) -> dict[str, str]:
    """Routes to other pod CIDRs in place now (``ip route``): CIDR -> gateway."""
    out = subprocess.run([*(prefix or []), "ip", "-o", "route", "show"], capture_output=True, text=True).stdout
    net = ipaddress.ip_network(cluster_cidr)
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if "via" in parts and "/" in parts[0] and ipaddress.ip_network(parts[0]).subnet_of(net):
            found[parts[0]] = parts[parts.index("via") + 1]
    return found

# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network policy, defined once (``honeydue_network_policy`` in the inventory's group_vars) and
rendered into each place that enforces it: the Hetzner Cloud firewall, ufw, and the SSH waits.

A policy is a dict::

    ssh_port: 22                      # sshd, both firewall layers, the SSH waits
    admin_cidrs: [198.51.100.0/24]    # SSH (and the Kubernetes API when api_public) from here only
    api_public: true                  # 6443 from admin_cidrs on the public side (deploy.yml runs there)
    origin_cidrs: [...]               # 80/443 from here only (Cloudflare's ranges)
    origin_http: true                 # false: 443 only (Full strict with Always Use HTTPS: the switch's last step)
    private_cidr: 10.0.1.0/24         # the cluster's private subnet: every cluster port, and only there
    flannel_backend: vxlan            # or wireguard-native (encrypted overlay, UDP 51820/51821)
    pod_cidr: 10.42.0.0/16
    service_cidr: 10.43.0.0/16

Ports are kept as numbers and ranges here and written in each consumer's syntax: ``"2379-2380"``
for Hetzner, ``"2379:2380"`` for ufw.
"""
from __future__ import annotations

import ipaddress

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.module_utils.common.text.converters import to_text

# K3s server ports between nodes (docs.k3s.io/installation/requirements#networking).
K3S_TCP = ((6443, 6443), (2379, 2380), (10250, 10250))
FLANNEL_UDP = {
    "vxlan": ((8472, 8472),),
    "host-gw": (),
    "wireguard-native": ((51820, 51821),),
}
DEFAULTS = {"ssh_port": 22, "api_public": True, "origin_http": True, "flannel_backend": "vxlan",
            "pod_cidr": "10.42.0.0/16", "service_cidr": "10.43.0.0/16"}


def _nets(policy, key, *, allow_empty=False):
    raw = policy.get(key)
    if raw is None or isinstance(raw, str) or not isinstance(raw, (list, tuple)):
        raise AnsibleFilterError(f"network policy: {key} must be a list of networks, not {raw!r}")
    out = []
    for item in raw:
        try:
            out.append(ipaddress.ip_network(to_text(item).strip(), strict=True))
        except ValueError as exc:
            raise AnsibleFilterError(f"network policy: {key}: {item!r} is not a network: {exc}") from None
    if not out and not allow_empty:
        raise AnsibleFilterError(f"network policy: {key} is empty (an empty list would close that door for good)")
    return [str(n) for n in sorted(set(out), key=lambda n: (n.version, n.network_address, n.prefixlen))]


def _net(policy, key):
    try:
        return str(ipaddress.ip_network(to_text(policy.get(key, "")).strip(), strict=True))
    except ValueError as exc:
        raise AnsibleFilterError(f"network policy: {key} {policy.get(key)!r} is not a network: {exc}") from None


def normalize(policy):
    """The policy with defaults filled in and every value checked (a bad one raises)."""
    if not isinstance(policy, dict):
        raise AnsibleFilterError("network policy: expected a dict (honeydue_network_policy)")
    p = {**DEFAULTS, **policy}
    try:
        port = int(p["ssh_port"])
    except (TypeError, ValueError):
        port = 0
    if not 1 <= port <= 65535:
        raise AnsibleFilterError(f"network policy: ssh_port {p['ssh_port']!r} is not a port (1-65535)")
    if p["flannel_backend"] not in FLANNEL_UDP:
        raise AnsibleFilterError(f"network policy: flannel_backend {p['flannel_backend']!r} is not one of "
                                 f"{sorted(FLANNEL_UDP)}")
    if port in {q for lo, hi in K3S_TCP for q in range(lo, hi + 1)} | {80, 443}:
        raise AnsibleFilterError(f"network policy: ssh_port {port} collides with a cluster or web port")
    try:
        origin_http = boolean(p["origin_http"], strict=True)
    except TypeError:
        raise AnsibleFilterError(f"network policy: origin_http must be true or false, not {p['origin_http']!r}") from None
    return {**p, "ssh_port": port, "api_public": bool(p["api_public"]), "origin_http": origin_http,
            "admin_cidrs": _nets(p, "admin_cidrs"), "origin_cidrs": _nets(p, "origin_cidrs"),
            "private_cidr": _net(p, "private_cidr"), "pod_cidr": _net(p, "pod_cidr"),
            "service_cidr": _net(p, "service_cidr")}


def _hetzner_port(lo, hi):
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _ufw_port(lo, hi):
    return str(lo) if lo == hi else f"{lo}:{hi}"


def cluster_ports(policy):
    """``{"tcp": [...], "udp": [...]}``: the ports cluster nodes open to each other, as (lo, hi) pairs
    rendered ``"N"`` / ``"N-M"``."""
    p = normalize(policy)
    return {"tcp": [_hetzner_port(lo, hi) for lo, hi in K3S_TCP],
            "udp": [_hetzner_port(lo, hi) for lo, hi in FLANNEL_UDP[p["flannel_backend"]]]}


def hcloud_firewall_rules(policy, ssh_ports=None):
    """The Hetzner Cloud firewall's rules: the public side only. SSH (and 6443 when ``api_public``)
    from the admin CIDRs, 80/443 from the origin ranges, ICMP. No cluster rules: Hetzner's firewall
    does not filter private networks, and cluster traffic never uses the public addresses.
    ``ssh_ports`` (while SSH moves to the policy's port) opens these ports for SSH too; Hetzner
    takes one port or range per rule, so each gets its own rule."""
    p = normalize(policy)
    rules = [{"description": "ssh from admins", "direction": "in", "protocol": "tcp",
              "port": str(port), "source_ips": p["admin_cidrs"]}
             for port in sorted({p["ssh_port"], *(int(x) for x in ssh_ports or [])})]
    if p["api_public"]:
        rules.append({"description": "kubernetes api from admins", "direction": "in", "protocol": "tcp",
                      "port": "6443", "source_ips": p["admin_cidrs"]})
    if p["origin_http"]:
        rules.append({"description": "http from cloudflare", "direction": "in", "protocol": "tcp", "port": "80",
                      "source_ips": p["origin_cidrs"]})
    rules += [{"description": "https from cloudflare", "direction": "in", "protocol": "tcp", "port": "443",
               "source_ips": p["origin_cidrs"]},
              {"description": "icmp", "direction": "in", "protocol": "icmp", "source_ips": ["0.0.0.0/0", "::/0"]}]
    return rules


def ufw_policy_rules(policy, private_iface=None, ssh_ports=None):
    """ufw's rules (for ``honeydue.infra.ufw_rules``): the public side as in the cloud firewall, the
    cluster ports only ``in on`` the private interface from the private subnet, the pod and service
    networks. Without ``private_iface`` the cluster rules match the private subnet on any interface
    (a host that has no separate private interface). ``ssh_ports`` (while SSH moves to the policy's
    port) opens these ports for SSH too."""
    p = normalize(policy)
    on = {"interface": private_iface} if private_iface else {}
    ports = sorted({p["ssh_port"], *(int(x) for x in ssh_ports or [])})
    rules = [{"from_ip": p["admin_cidrs"], "port": ",".join(str(x) for x in ports), "proto": "tcp",
              "comment": "ssh from admins"}]
    if p["api_public"]:
        rules.append({"from_ip": p["admin_cidrs"], "port": "6443", "proto": "tcp", "comment": "kubernetes api from admins"})
    rules.append({"from_ip": p["origin_cidrs"], "port": "80,443" if p["origin_http"] else "443", "proto": "tcp",
                  "comment": "http from cloudflare"})
    rules.append({"from_ip": [p["private_cidr"]], "port": ",".join(_ufw_port(lo, hi) for lo, hi in K3S_TCP),
                  "proto": "tcp", "comment": "k3s between nodes (private network)", **on})
    udp = FLANNEL_UDP[p["flannel_backend"]]
    if udp:
        rules.append({"from_ip": [p["private_cidr"]], "port": ",".join(_ufw_port(lo, hi) for lo, hi in udp),
                      "proto": "udp", "comment": f"flannel {p['flannel_backend']} between nodes (private network)", **on})
    nets = [p["pod_cidr"], p["service_cidr"]]
    rules += [{"from_ip": nets, "comment": "k3s pods and services"},
              {"from_ip": nets, "route": True, "comment": "k3s pods and services (forwarded)"},
              {"to_ip": nets, "route": True, "comment": "k3s pods and services (forwarded)"}]
    return rules


def iface_for(facts, address):
    """The name of the interface that carries ``address`` (from a host's gathered facts)."""
    if not isinstance(facts, dict):
        raise AnsibleFilterError("iface_for: expected a host's ansible_facts")
    wanted = to_text(address).strip()
    for name in facts.get("interfaces") or []:
        info = facts.get(name.replace("-", "_")) or {}
        addrs = [info.get("ipv4") or {}] + list(info.get("ipv4_secondaries") or [])
        if any(a.get("address") == wanted for a in addrs):
            return info.get("device") or name
    raise AnsibleFilterError(f"iface_for: no interface carries {wanted} (is the host attached to the private network?)")


class FilterModule:
    """The network policy's renderers."""

    def filters(self):
        return {"network_policy": normalize, "cluster_ports": cluster_ports,
                "hcloud_firewall_rules": hcloud_firewall_rules, "ufw_policy_rules": ufw_policy_rules,
                "iface_for": iface_for}

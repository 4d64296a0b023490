# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure part of the honeydue.infra.hcloud inventory plugin: API server objects -> hosts.

Private to the collection; unit-tested without Ansible's inventory machinery.
"""
from __future__ import annotations

import ipaddress


def next_pages(pagination, fetched):
    """The page numbers still to read after the pages in ``fetched``, from one page's
    ``meta.pagination``.

    ``next_page`` is the truth: ``last_page`` and ``total_entries`` may be null (Hetzner: "when the
    total number of entries is unknown"). When ``last_page`` is known, every page up to it can be
    read at once (concurrently); otherwise only ``next_page``, one at a time.
    """
    pagination = pagination or {}
    nxt = pagination.get("next_page")
    if not nxt or nxt in fetched:
        return []
    last = pagination.get("last_page")
    if last and last >= nxt:
        return [p for p in range(nxt, last + 1) if p not in fetched]
    return [nxt]


def public_ipv6(server):
    """A server's public IPv6 address: the first address (::1) of its /64, or None."""
    net = ((server.get("public_net") or {}).get("ipv6") or {}).get("ip")
    if not net:
        return None
    network = ipaddress.ip_network(net, strict=False)
    return str(network.network_address + 1)


def private_ip(server, network_id):
    for attachment in server.get("private_net") or []:
        if attachment.get("network") == network_id:
            return attachment.get("ip")
    return None


def host_entry(server, *, role_label="role", role_groups=None, network_id=None, ansible_user="deploy",
               connect="public"):
    """``(name, groups, hostvars)`` for one API server object.

    ``honeydue_node_ip`` (the address K3s and the cluster ports use) is the private address on
    ``network_id`` when one is given (the server must be attached), else the public IPv4.
    ``ansible_host`` is the public IPv4 (the operator's machine is outside the private network),
    or the private address with ``connect="private"`` (a controller inside it, e.g. a bastion).
    """
    public_v4 = (((server.get("public_net") or {}).get("ipv4")) or {}).get("ip")
    private = private_ip(server, network_id) if network_id is not None else None
    if network_id is not None and private is None:
        raise ValueError(f"server {server['name']} is not attached to network {network_id}")
    labels = server.get("labels") or {}
    hostvars = {
        "ansible_host": private if connect == "private" and private else public_v4,
        "ansible_user": ansible_user,
        "honeydue_node_ip": private or public_v4,
        "honeydue_private_ipv4": private,
        "honeydue_public_ipv4": public_v4,
        "honeydue_public_ipv6": public_ipv6(server),
        "hcloud_id": server["id"],
        "hcloud_name": server["name"],
        "hcloud_status": server.get("status"),
        "hcloud_labels": labels,
        "hcloud_server_type": (server.get("server_type") or {}).get("name"),
        # Servers carry `location` only: Hetzner removed `datacenter` after 1 July 2026.
        "hcloud_location": (server.get("location") or {}).get("name"),
        "hcloud_image": (server.get("image") or {}).get("name"),
        "hcloud_private_networks": [{"network": a.get("network"), "ip": a.get("ip")}
                                    for a in server.get("private_net") or []],
    }
    groups = []
    group = (role_groups or {}).get(labels.get(role_label))
    if group:
        groups.append(group)
    return server["name"], groups, hostvars

# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Network filters for the two firewall layers (Hetzner Cloud firewall, ufw) and the cluster."""
from __future__ import annotations

import ipaddress

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text


def _network(value, strict):
    text = to_text(value).strip()
    try:
        return ipaddress.ip_network(text, strict=strict)
    except ValueError as exc:
        raise AnsibleFilterError(f"cidr_normalize: {text!r} is not a valid network: {exc}") from None


def cidr_normalize(value, version=None, strict=True):
    """Canonical, de-duplicated, sorted CIDR list (IPv4 first), optionally of one IP version.

    ``value`` is a list of CIDRs or addresses, or a newline/whitespace separated string (the form
    Cloudflare publishes at /ips-v4 and /ips-v6). A bare address becomes a /32 or /128. With
    ``strict`` (default) a CIDR with host bits set (``10.0.0.1/8``) is an error: it is almost
    always a typo, and silently widening a firewall rule is worse than failing.
    """
    if isinstance(value, str):
        items = value.split()
    elif isinstance(value, (list, tuple, set)):
        items = list(value)
    else:
        raise AnsibleFilterError("cidr_normalize: expected a list of CIDRs or a newline-separated string")
    if version not in (None, 4, 6, "4", "6"):
        raise AnsibleFilterError("cidr_normalize: version must be 4, 6 or omitted")
    nets = {_network(item, bool(strict)) for item in items if to_text(item).strip()}
    if version is not None:
        nets = {n for n in nets if n.version == int(version)}
    # Drop networks wholly inside another listed one: one rule each is enough.
    kept = [n for n in nets if not any(o != n and o.version == n.version and n.subnet_of(o) for o in nets)]
    return [str(n) for n in sorted(kept, key=lambda n: (n.version, n.network_address, n.prefixlen))]


def _as_ip(value):
    try:
        return ipaddress.ip_address(to_text(value).strip())
    except ValueError:
        return None


def _host_address(name, hostvars, var):
    """A host's address: its ``var``, else ``ansible_host`` if that is an IP, else its default IPv4 fact."""
    host = hostvars.get(name)
    if host is None:
        raise AnsibleFilterError(f"peer_addresses: {name!r} is not in the inventory")
    if host.get(var):
        addr = _as_ip(host[var])
        if addr is None:
            raise AnsibleFilterError(f"peer_addresses: {name}'s {var} is {host[var]!r}, not an IP address")
        return addr
    facts = host.get("ansible_facts") or {}
    fact = (facts.get("default_ipv4") or host.get("ansible_default_ipv4") or {}).get("address")
    for candidate in (host.get("ansible_host"), fact):
        addr = _as_ip(candidate) if candidate else None
        if addr is not None:
            return addr
    raise AnsibleFilterError(
        f"peer_addresses: no IP address for {name}: set {var}, use an IP as ansible_host, "
        "or gather its facts; firewall rules need addresses")


def peer_addresses(hosts, hostvars, self_host=None, var="honeydue_node_ip"):
    """Addresses of the other hosts in ``hosts`` (for "only from the cluster's nodes" rules).

    Each host's address is its ``var`` (default ``honeydue_node_ip``), else ``ansible_host`` when
    that is an IP address, else its ``default_ipv4`` fact.
    The result is sorted and de-duplicated, and excludes ``self_host`` (pass
    ``inventory_hostname``) and any peer that shares ``self_host``'s address.
    """
    if isinstance(hosts, str) or not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("peer_addresses: expected a list of inventory host names, e.g. groups['k3s_servers']")
    own = _host_address(self_host, hostvars, var) if self_host else None
    addrs = {_host_address(h, hostvars, var) for h in hosts if h != self_host}
    addrs.discard(own)
    return [str(a) for a in sorted(addrs, key=lambda a: (a.version, a))]


class FilterModule:
    """Network filters."""

    def filters(self):
        return {"cidr_normalize": cidr_normalize, "peer_addresses": peer_addresses}

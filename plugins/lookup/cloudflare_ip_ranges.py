# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: cloudflare_ip_ranges
author: honeyDue engineering (@honeydue)
version_added: 0.1.0
short_description: Cloudflare's published edge IP ranges, as shipped with this collection
description:
  - Returns the IPv4 and IPv6 ranges Cloudflare publishes at U(https://www.cloudflare.com/ips/),
    the only sources allowed to reach the origin's ports 80 and 443. With Flexible SSL anything
    else that reaches them bypasses Cloudflare.
  - It is the default of C(honeydue_cloudflare_ip_ranges), the one variable both firewall layers
    (the Hetzner Cloud firewall and ufw) use. The list is data shipped with the collection, not
    fetched at run time; Cloudflare changes it rarely and announces changes in advance. To
    follow a change before a new collection release, set C(honeydue_cloudflare_ip_ranges).
options:
  version:
    description: Only ranges of this IP version.
    type: int
    choices: [4, 6]
"""

EXAMPLES = r"""
- name: Cloudflare's IPv4 ranges
  ansible.builtin.debug:
    msg: "{{ query('honeydue.infra.cloudflare_ip_ranges', version=4) }}"
"""

RETURN = r"""
_raw:
  description: CIDRs, IPv4 first.
  type: list
  elements: str
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

# https://www.cloudflare.com/ips-v4 and /ips-v6 (checked 2026-11).
CLOUDFLARE_IPV4 = (
    "173.245.48.0/20", "103.21.244.0/22", "103.22.200.0/22", "103.31.4.0/22", "141.101.64.0/18",
    "108.162.192.0/18", "190.93.240.0/20", "188.114.96.0/20", "197.234.240.0/22", "198.41.128.0/17",
    "162.158.0.0/15", "104.16.0.0/13", "104.24.0.0/14", "172.64.0.0/13", "131.0.72.0/22",
)
CLOUDFLARE_IPV6 = (
    "2400:cb00::/32", "2606:4700::/32", "2803:f800::/32", "2405:b500::/32", "2405:8100::/32",
    "2a06:98c0::/29", "2c0f:f248::/32",
)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        version = self.get_option("version")
        if terms:
            raise AnsibleLookupError("cloudflare_ip_ranges takes no terms, only version=4|6")
        if version == 4:
            return list(CLOUDFLARE_IPV4)
        if version == 6:
            return list(CLOUDFLARE_IPV6)
        return list(CLOUDFLARE_IPV4 + CLOUDFLARE_IPV6)

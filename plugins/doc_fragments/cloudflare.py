# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Cloudflare API options shared by cf_dns_roundrobin and cf_origin_tls (module_utils/_cloudflare.py)."""
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  api_token:
    description:
      - Cloudflare API token; the module's description lists the permissions it needs.
      - If not set, the value of the environment variable E(CLOUDFLARE_API_TOKEN) is used.
      - Never logged or returned; it travels only in the C(Authorization) header.
    type: str
    required: true
  api_base_url:
    description: API base URL; tests point it at a local stand-in.
    type: str
    default: https://api.cloudflare.com/client/v4
  timeout:
    description: Seconds per HTTP request.
    type: int
    default: 30
  max_retries:
    description:
      - Retries of one call after HTTP 429 (any call), or after 5xx or a connection error (reads only;
        see O(max_replans) for writes).
    type: int
    default: 5
  max_wait:
    description:
      - Upper bound, in seconds, of the total time spent waiting between retries.
      - A HTTP 429 whose C(retry-after) would take the total past it fails the task at once, naming
        the wait Cloudflare asked for (up to 300 s when the account's rate limit is exhausted).
    type: float
    default: 60
notes:
  - Part of the C(group/honeydue.infra.cloudflare) module defaults group (O(api_token), O(api_base_url)).
"""

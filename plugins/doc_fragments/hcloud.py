# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Hetzner Cloud API options of the collection's hcloud modules (hcloud_fleet)."""
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  api_token:
    description:
      - Hetzner Cloud API token (read/write). Prefer the environment or a vault variable.
      - If not set, the value of the environment variable E(HCLOUD_TOKEN) is used.
      - Never logged or returned.
    type: str
    required: true
  api_endpoint:
    description:
      - Hetzner Cloud API endpoint; tests point it at a local stand-in.
      - If not set, the value of the environment variable E(HCLOUD_ENDPOINT) is used, else the default.
    type: str
    default: https://api.hetzner.cloud/v1
notes:
  - Part of the C(group/honeydue.infra.hcloud) module defaults group (O(api_token), O(api_endpoint)).
"""

#!/usr/bin/python
# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cf_dns_roundrobin
short_description: Cloudflare round-robin A/AAAA record sets in one batch call, safe by construction
version_added: 0.1.0
author: honeyDue engineering
description:
  - Makes each listed name hold exactly the listed IPs (one A or AAAA record per IP), so that
    Cloudflare round-robins over them, with one zone lookup, one paginated list and one
    C(/dns_records/batch) call (split at O(batch_size) operations) - and no write at all when
    nothing differs.
  - Replaces one C(community.general.cloudflare_dns) task per (name, IP) plus C(absent) tasks for
    stale IPs, each of which looks the zone up twice, cannot prune, and fails on the first HTTP 429.
  - A record whose only difference is O(records[].proxied), O(records[].ttl) or
    O(records[].comment) is patched, never deleted and recreated. When every IP of a name
    changes, stale records are rewritten with patches, because Cloudflare runs deletes before posts and
    delete + post would leave the name without records for a moment.
  - Safe by construction. O(state=present) with an empty O(records[].values) fails, naming the
    record, unless O(allow_empty=true), because an empty inventory must never wipe production DNS.
    Invalid IPs fail before any call. A failed batch leaves the zone as it was, since Cloudflare
    runs a batch in one transaction.
options:
  zone:
    description: Zone name. Needs Zone:Read; give O(zone_id) instead to avoid the lookup.
    type: str
  zone_id:
    description:
      - Zone identifier; saves the zone lookup (and the Zone:Read permission).
      - Without O(zone), record names must be fully qualified.
    type: str
  records:
    description: The record sets.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Record name, relative to the zone (C(api)), C(@) for the apex, or a FQDN in the zone.
        type: str
        required: true
      type:
        description: Record type.
        type: str
        choices: [A, AAAA]
        default: A
      values:
        description: The IP addresses the name points at. With O(state=absent), empty means every record of the name and type.
        type: list
        elements: str
        default: []
      proxied:
        description: Whether Cloudflare proxies the records.
        type: bool
        default: true
      ttl:
        description: TTL in seconds; C(1) is automatic (required for proxied records in practice).
        type: int
        default: 1
      comment:
        description: Comment on every record of the set; not managed when omitted.
        type: str
  state:
    description: C(present) makes the names hold exactly the values (see O(prune)); C(absent) removes them.
    type: str
    choices: [present, absent]
    default: present
  prune:
    description: With O(state=present), remove records of the same name and type that are not listed.
    type: bool
    default: true
  allow_empty:
    description: Allow O(state=present) with an empty O(records[].values) (which then removes every record of that name).
    type: bool
    default: false
  api_token:
    description:
      - Cloudflare API token (Zone:Read if O(zone) is used, DNS:Edit).
      - Falls back to the environment variable E(CLOUDFLARE_API_TOKEN).
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
    description: Retries of one call after HTTP 429, 5xx or a connection error.
    type: int
    default: 5
  max_wait:
    description: Upper bound, in seconds, of the total time spent waiting between retries.
    type: float
    default: 60
  batch_size:
    description: Operations per batch call (200 on Cloudflare's Free plan, 3500 on paid plans).
    type: int
    default: 200
attributes:
  check_mode:
    support: full
    details: Reports exactly the batch it would send.
  diff_mode:
    support: full
    details: Before/after per name.
notes:
  - Cloudflare proxies every A/AAAA record of a name when any of them is proxied; a name that
    would end up mixing proxied and unproxied records produces a warning.
"""

EXAMPLES = r"""
- name: api., admin. and the apex point at every node, proxied
  honeydue.infra.cf_dns_roundrobin:
    zone: honeydue.example
    records:
      - {name: "@", values: "{{ node_ips }}"}
      - {name: api, values: "{{ node_ips }}"}
      - {name: admin, values: "{{ node_ips }}"}
    api_token: "{{ vault_cloudflare_api_token }}"

- name: Retire a name
  honeydue.infra.cf_dns_roundrobin:
    zone_id: 023e105f4ecef8ad9ca31a8372d0c353
    state: absent
    records:
      - {name: old}
"""

RETURN = r"""
records:
  description: The resulting records per name (in check mode, what they would be).
  returned: success
  type: dict
  sample: {"api.honeydue.example": [{"type": "A", "content": "203.0.113.10", "proxied": true, "ttl": 1}]}
operations:
  description: The batch applied (or, in check mode, that would be applied).
  returned: success
  type: dict
  sample: {"deletes": [], "patches": [{"id": "372e67954025e0ba6aaa6d586b9e0b59", "content": "203.0.113.12"}], "puts": [], "posts": []}
api_calls:
  description: HTTP requests made, retries included.
  returned: always
  type: int
zone_id:
  description: The zone's identifier.
  returned: success
  type: str
failure:
  description: Cloudflare's answer to the failed call.
  returned: failed on an API error
  type: dict
  sample: {"status": 403, "method": "GET", "path": "/zones", "errors": [{"code": 9109, "message": "Invalid access token"}]}
"""

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.honeydue.infra.plugins.module_utils._cf_plan import (
    PlanError, apply, by_name, chunks, desired_sets, is_empty, mixed_proxied, plan)
from ansible_collections.honeydue.infra.plugins.module_utils._cloudflare import (
    DEFAULT_BASE_URL, CloudflareClient, CloudflareError)


def _diff(before, after):
    return {"before": {n: [r["content"] for r in rows] for n, rows in before.items()},
            "after": {n: [r["content"] for r in rows] for n, rows in after.items()}}


def run(module, client):
    p = module.params
    # Every input is checked before the first call.
    desired = desired_sets(p["records"], p["zone"], p["state"], p["allow_empty"])
    zone_id = p["zone_id"] or client.zone_id(p["zone"])
    types = {t for _, t in desired}
    existing = client.list_records(zone_id, rtype=next(iter(types)) if len(types) == 1 else None)
    batch = plan(existing, desired, p["state"], p["prune"])
    after = apply(existing, batch)
    for name in mixed_proxied(after, desired):
        module.warn(f"{name} mixes proxied and unproxied records; Cloudflare proxies all of them")
    result = {"changed": not is_empty(batch), "operations": batch, "zone_id": zone_id}
    if result["changed"] and not module.check_mode:
        for part in chunks(batch, p["batch_size"]):
            client.batch(zone_id, part)
    result["records"] = by_name(after, desired)
    result["api_calls"] = client.calls
    if module._diff:
        result["diff"] = _diff(by_name(existing, desired), result["records"])
    return result


def main():
    record_spec = dict(
        name=dict(type="str", required=True),
        type=dict(type="str", default="A", choices=["A", "AAAA"]),
        values=dict(type="list", elements="str", default=[]),
        proxied=dict(type="bool", default=True),
        ttl=dict(type="int", default=1),
        comment=dict(type="str"),
    )
    module = AnsibleModule(
        argument_spec=dict(
            zone=dict(type="str"),
            zone_id=dict(type="str"),
            records=dict(type="list", elements="dict", required=True, options=record_spec),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            prune=dict(type="bool", default=True),
            allow_empty=dict(type="bool", default=False),
            api_token=dict(type="str", required=True, no_log=True, fallback=(env_fallback, ["CLOUDFLARE_API_TOKEN"])),
            api_base_url=dict(type="str", default=DEFAULT_BASE_URL),
            timeout=dict(type="int", default=30),
            max_retries=dict(type="int", default=5),
            max_wait=dict(type="float", default=60.0),
            batch_size=dict(type="int", default=200),
        ),
        required_one_of=[("zone", "zone_id")],
        supports_check_mode=True,
    )
    p = module.params
    client = CloudflareClient(p["api_token"], p["api_base_url"], timeout=p["timeout"],
                              max_retries=p["max_retries"], max_wait=p["max_wait"])
    try:
        result = run(module, client)
    except PlanError as exc:
        module.fail_json(msg=str(exc), api_calls=client.calls)
    except CloudflareError as exc:
        module.fail_json(msg=exc.summary(), failure=exc.as_dict(), api_calls=client.calls)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

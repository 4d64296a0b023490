#!/usr/bin/python
# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cf_dns_roundrobin
short_description: Cloudflare round-robin A/AAAA record sets in one batch call, safe by construction
version_added: 0.1.0
author: honeyDue engineering (@honeydue)
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
    Invalid IPs fail before any call. A refused batch call leaves the zone as it was, since
    Cloudflare runs each batch call in one transaction.
  - Proxied records always have TTL 1 (Auto) at Cloudflare, whatever TTL is sent. So
    O(records[].proxied=true) with an O(records[].ttl) other than C(1) fails before any call, and a
    proxied record's TTL is never patched (it would be patched again on every run).
  - Writes are never resent blindly. A batch call answered with a 5xx, or not answered at all (a
    lost connection or a timeout), may have been applied. The module then lists the records again,
    works out from them which operations landed, and plans again from what it finds. An empty plan
    means the zone is as desired; otherwise the new plan is sent (at most O(max_replans) times).
    A refusal that means the zone changed since it was listed (81044 record does not exist, 81057
    and 81058 record already exists) is handled the same way. Reads (GET) are retried on HTTP 429,
    5xx and connection errors; a write is sent again only after HTTP 429, which Cloudflare answers
    before it processes the call.
  - With more operations than O(batch_size), the batch is split into several calls, each its own
    transaction. A failure after some calls landed reports C(changed=true), the operations that
    landed (RV(operations)) and Cloudflare's answer (RV(failure)).
  - HTTP 429 is waited out for C(retry-after) seconds while the total wait stays within
    O(max_wait). Past 1,200 requests in 5 minutes Cloudflare blocks every call for up to 5 minutes
    (C(retry-after) up to 300); when the wait would exceed O(max_wait) the module fails at once,
    saying how long Cloudflare asked to wait, instead of sleeping.
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
        description:
          - TTL in seconds (30 to 86400; 60 and up outside Enterprise zones); C(1) is automatic (Auto, 300 s).
          - Proxied records always have TTL 1 at Cloudflare, so with O(records[].proxied=true) any other
            value fails before any API call.
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
  max_replans:
    description:
      - After a batch call that failed with an unknown outcome (5xx, no answer) or because the zone
        changed meanwhile, the records are listed again and a new plan is made. At most this many
        new plans are sent; C(0) still lists again, to report what landed and to succeed when the
        zone already is as desired.
    type: int
    default: 3
  batch_size:
    description: Operations per batch call (200 on Cloudflare's Free plan, 3500 on paid plans).
    type: int
    default: 200
attributes:
  check_mode:
    details: Reports exactly the batch it would send.
  diff_mode:
    details: Before/after per name.
notes:
  - Cloudflare proxies every A/AAAA record of a name when any of them is proxied; a name that
    would end up mixing proxied and unproxied records produces a warning.
  - "Vendor behaviour relied on: Proxy status (U(https://developers.cloudflare.com/dns/proxy-status/)),
    Rate limits (U(https://developers.cloudflare.com/fundamentals/api/reference/limits/)) and the
    DNS records batch endpoint (one transaction, deletes then patches, puts, posts)."
  - "Token permissions: DNS: Edit, and Zone: Read when O(zone) is given (not needed with O(zone_id))."
extends_documentation_fragment:
  - honeydue.infra.cloudflare
  - honeydue.infra.attributes
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

- name: DNS-only records with their own TTL (proxied records always have TTL 1, Auto)
  honeydue.infra.cf_dns_roundrobin:
    zone: honeydue.example
    records:
      - {name: origin, values: "{{ node_ips }}", proxied: false, ttl: 300}
    api_token: "{{ vault_cloudflare_api_token }}"
    max_wait: 330  # wait out even a full rate-limit block (retry-after up to 300 s) instead of failing
  register: dns
  # On failure, dns.operations lists what landed before it and dns.failure Cloudflare's answer.

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
  description:
    - The operations applied, over every batch call and new plan (in check mode, the batch that would be applied).
    - On a failed write, the operations that landed before the failure (empty when none did), so
      that with several batch calls the task says exactly what it changed.
    - After a batch call whose answer was lost, its operations that the zone, listed again, shows applied.
  returned: success, and failure after the first write
  type: dict
  contains:
    deletes:
      description: Deleted records, as C({id}).
      type: list
      elements: dict
    patches:
      description: Patched records, as C({id}) and the fields written.
      type: list
      elements: dict
    puts:
      description: Overwritten records (not used by this module today).
      type: list
      elements: dict
    posts:
      description: Created records, as sent (C(name), C(type), C(content), C(proxied), C(ttl), C(comment)).
      type: list
      elements: dict
  sample: {"deletes": [], "patches": [{"id": "372e67954025e0ba6aaa6d586b9e0b59", "content": "203.0.113.12"}], "puts": [], "posts": []}
replans:
  description: How many new plans were sent after batch calls that failed with an unknown outcome or a stale view (see O(max_replans)).
  returned: success, and failure after the first write
  type: int
  sample: 0
changed:
  description:
    - On failure too, whether any operation landed before it (or, when the zone could not be listed
      again after an unanswered write, may have).
  returned: always
  type: bool
api_calls:
  description: HTTP requests made, retries included.
  returned: always
  type: int
zone_id:
  description: The zone's identifier.
  returned: success, and failure after the zone lookup
  type: str
failure:
  description:
    - Cloudflare's answer to the failed call (C(status) is null when no answer came).
    - C(retry_after) is set when a HTTP 429 was not waited out (O(max_wait) or O(max_retries)), with the seconds Cloudflare asked for.
    - C(outcome) is set for a write; C(unknown) (no answer or 5xx, it may have landed), C(stale) or C(refused).
  returned: failed on an API error
  type: dict
  sample: {"status": 429, "method": "GET", "path": "/zones", "retry_after": 300,
           "errors": [{"code": 971, "message": "Please wait and consider throttling your request speed"}]}
  contains:
    status:
      description: HTTP status of the answer; null when no answer came.
      type: int
      returned: always
    method:
      description: HTTP method of the failed call.
      type: str
      returned: always
    path:
      description: API path of the failed call, relative to O(api_base_url).
      type: str
      returned: always
    errors:
      description: Cloudflare's C(errors), as C({code, message}).
      type: list
      elements: dict
      returned: always
    retry_after:
      description: Seconds Cloudflare asked to wait, when a HTTP 429 was not waited out.
      type: float
      returned: when a HTTP 429 was not waited out
    outcome:
      description: For a write, C(unknown) (no answer or 5xx, it may have landed), C(stale) or C(refused).
      type: str
      returned: when the failed call was a write
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.honeydue.infra.plugins.module_utils._cf_plan import (
    ConvergeError, PlanError, by_name, converge, count, desired_sets, mixed_proxied)
from ansible_collections.honeydue.infra.plugins.module_utils._cloudflare import (
    CloudflareError, client_from_params, common_argument_spec)


def _diff(before, after):
    return {"before": {n: [r["content"] for r in rows] for n, rows in before.items()},
            "after": {n: [r["content"] for r in rows] for n, rows in after.items()}}


def run(module, client, facts):
    p = module.params
    # Every input is checked before the first call.
    desired = desired_sets(p["records"], p["zone"], p["state"], p["allow_empty"])
    zone_id = facts["zone_id"] = p["zone_id"] or client.zone_id(p["zone"])
    types = {key[1] for key in desired}
    rtype = next(iter(types)) if len(types) == 1 else None
    done = converge(lambda: client.list_records(zone_id, rtype=rtype), lambda part: client.batch(zone_id, part),
                    desired, p["state"], p["prune"], p["batch_size"], p["max_replans"], module.check_mode,
                    api_errors=(CloudflareError,))
    for name in mixed_proxied(done["after"], desired):
        module.warn(f"{name} mixes proxied and unproxied records; Cloudflare proxies all of them")
    result = {"changed": done["changed"], "operations": done["operations"], "replans": done["replans"],
              "zone_id": zone_id, "records": by_name(done["after"], desired), "api_calls": client.calls}
    if module._diff:
        result["diff"] = _diff(by_name(done["before"], desired), result["records"])
    return result


def _failed_write(exc):
    """The message of a ConvergeError: Cloudflare's answer, and what landed before it."""
    msg = f"{exc.cause.summary()}. {count(exc.applied)} operation(s) applied before the failure (see operations)"
    if exc.relist_error is not None:
        msg += f"; listing the records again failed too, so what landed is unknown: {exc.relist_error}"
    if exc.pending:
        msg += (f"; after {exc.replans} new plan(s) (max_replans) {exc.pending} operation(s) still differ;"
                " run the task again")
    return msg


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
            batch_size=dict(type="int", default=200),
            **common_argument_spec(),
        ),
        required_one_of=[("zone", "zone_id")],
        supports_check_mode=True,
    )
    p = module.params
    client = client_from_params(p)
    facts = {}
    try:
        result = run(module, client, facts)
    except PlanError as exc:
        module.fail_json(msg=str(exc), api_calls=client.calls)
    except CloudflareError as exc:  # before any write: the zone lookup or the first listing
        module.fail_json(msg=exc.summary(), failure=exc.as_dict(), api_calls=client.calls, **facts)
    except ConvergeError as exc:
        module.fail_json(msg=_failed_write(exc), failure=exc.cause.as_dict(), changed=exc.changed, operations=exc.applied,
                         replans=exc.replans, api_calls=client.calls, **facts)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ufw_rules
short_description: Converge ufw's user rules to exactly a given set
version_added: 0.1.0
author: honeyDue engineering
description:
  - Makes ufw hold exactly the listed rules, in one task. Rules that are listed but missing are
    added; with O(exclusive=true) (the default) every other user rule is deleted, so an address
    removed from the inventory or from the Cloudflare list loses its rule on the next run.
  - C(community.general.ufw) manages one rule per task and cannot remove rules it was not told
    about, so a removed node or a retired Cloudflare range would stay open for good; that is why
    this module exists. Use C(community.general.ufw) for the default policies, logging and
    enabling ufw.
  - Rules are compared in canonical form (C(0.0.0.0/0) is C(any), port lists are sorted, a host
    network is its address), so spelling differences never cause changes. A rule whose only
    difference is its comment is updated in place.
  - Works whether ufw is enabled or not; it never enables or disables ufw.
options:
  rules:
    description: The complete set of rules.
    type: list
    elements: dict
    required: true
    suboptions:
      rule:
        description: What the rule does.
        type: str
        choices: [allow, deny, reject, limit]
        default: allow
      from_ip:
        description:
          - Source addresses or networks; one rule is made per source (and per O(rules[].to_ip)).
          - C(any), C(0.0.0.0/0) and C(::/0) mean any; an empty list makes no rule.
        type: list
        elements: str
        default: [any]
      to_ip:
        description: Destination addresses or networks, as O(rules[].from_ip).
        type: list
        elements: str
        default: [any]
      port:
        description:
          - Destination port, or a comma-separated list of ports and ranges C(a:b) (at most 15).
          - Lists and ranges need O(rules[].proto).
        type: str
      proto:
        description: Protocol.
        type: str
        choices: [any, tcp, udp]
        default: any
      route:
        description: A routed (forwarded) rule, C(ufw route ...), instead of an incoming one.
        type: bool
        default: false
      comment:
        description: Comment stored with the rule (no quotes or newlines).
        type: str
  exclusive:
    description: Delete every user rule that is not in O(rules).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - Needs root (C(become)) and the ufw command on the target.
  - Deleting a rule that is in use is immediate when ufw is enabled; list the SSH rule that keeps
    you connected, as the base_hardening role does.
"""

EXAMPLES = r"""
- name: Node firewall rules, nothing else
  honeydue.infra.ufw_rules:
    rules:
      - {from_ip: [203.0.113.0/24], port: "22", proto: tcp, comment: ssh from admins}
      - {from_ip: [173.245.48.0/20, 2400:cb00::/32], port: "80,443", proto: tcp, comment: cloudflare}
      - {from_ip: [198.51.100.12, 198.51.100.13], port: "6443,2379:2380,10250", proto: tcp, comment: k3s peers}
      - {from_ip: [10.42.0.0/16], route: true, comment: k3s pods}
"""

RETURN = r"""
rules:
  description: The user rules ufw holds after the task (in check mode, would hold), as ufw commands.
  returned: always
  type: list
  elements: str
  sample: ["ufw allow from 203.0.113.0/24 to any port 22 proto tcp comment 'ssh from admins'"]
added:
  description: Rules added (or whose comment was updated).
  returned: always
  type: list
  elements: str
deleted:
  description: Rules deleted.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.honeydue.infra.plugins.module_utils._ufw import UfwRuleError, expand, parse_added, plan


def _ufw(module, binary, args):
    rc, out, err = module.run_command([binary] + list(args))
    if rc != 0:
        module.fail_json(msg=f"ufw {' '.join(args)} failed: {(err or out).strip()}", rc=rc, stdout=out, stderr=err)
    return out


def main():
    rule_spec = dict(
        rule=dict(type="str", default="allow", choices=["allow", "deny", "reject", "limit"]),
        from_ip=dict(type="list", elements="str", default=["any"]),
        to_ip=dict(type="list", elements="str", default=["any"]),
        port=dict(type="str"),
        proto=dict(type="str", default="any", choices=["any", "tcp", "udp"]),
        route=dict(type="bool", default=False),
        comment=dict(type="str"),
    )
    module = AnsibleModule(
        argument_spec=dict(
            rules=dict(type="list", elements="dict", required=True, options=rule_spec),
            exclusive=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    binary = module.get_bin_path("ufw", required=True)
    try:
        desired = [rule for spec in module.params["rules"] for rule in expand(spec)]
        current = parse_added(_ufw(module, binary, ["show", "added"]))
    except UfwRuleError as exc:
        module.fail_json(msg=str(exc))
    deletes, adds = plan(current, desired, module.params["exclusive"])
    changed = bool(deletes or adds)
    if changed and not module.check_mode:
        for rule in deletes:
            _ufw(module, binary, rule.args(delete=True))
        for rule in adds:
            _ufw(module, binary, rule.args())
    replaced = {r.key for r in deletes + adds}
    after = [r for r in current if r.key not in replaced] + adds
    result = dict(
        changed=changed,
        rules=[str(r) for r in after],
        added=[str(r) for r in adds],
        deleted=[str(r) for r in deletes],
    )
    if module._diff:
        result["diff"] = dict(before="\n".join(str(r) for r in current) + "\n",
                              after="\n".join(str(r) for r in after) + "\n")
    module.exit_json(**result)


if __name__ == "__main__":
    main()

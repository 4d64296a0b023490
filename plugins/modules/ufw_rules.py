#!/usr/bin/python
# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ufw_rules
short_description: Converge ufw's user rules to exactly a given set
version_added: 0.1.0
author: honeyDue engineering (@honeydue)
description:
  - Makes ufw hold exactly the listed rules, in one task. Rules that are listed but missing are
    added; with O(exclusive=true) (the default) every other user rule is deleted, so an address
    removed from the inventory or from the Cloudflare list loses its rule on the next run.
  - C(community.general.ufw) manages one rule per task and cannot remove rules it was not told
    about, so a removed node or a retired Cloudflare range would stay open for good; that is why
    this module exists. Use C(community.general.ufw) for the default policies, logging and
    enabling ufw.
  - Rules are compared in canonical form (C(0.0.0.0/0) is C(any), port lists are sorted, a host
    network is its address), so spelling differences never cause changes. A rule that differs
    from one ufw holds only in its action or comment is updated in place (ufw keeps one rule per
    match).
  - "Safe order: every rule is added (or updated) before any rule is deleted, rules ufw already holds
    are never touched, and deletes run bottom-up. At every step each connection attempt meets
    either the firewall as it was before the task or as it is after it: changing the admin CIDR
    opens SSH from the new range before it closes it for the old one, never neither."
  - If a ufw command fails midway the task fails with the command, its rc, stdout and stderr, the
    rules already added and deleted (RV(added), RV(deleted); C(changed) is true if any were) and
    the steps not applied (RV(pending)); re-running converges from there.
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
      interface:
        description:
          - Only traffic coming in on this interface (C(ufw allow in on IFACE ...)), for example the
            private network's; omitted, any interface.
        type: str
      comment:
        description: Comment stored with the rule (no quotes or newlines).
        type: str
  exclusive:
    description: Delete every user rule that is not in O(rules).
    type: bool
    default: true
attributes:
  check_mode:
    details: Reads the rules ufw holds and reports the adds, updates and deletes it would run.
  diff_mode:
    details: ufw's user rules before and after, one per line as C(ufw show added) prints them.
extends_documentation_fragment:
  - honeydue.infra.attributes
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
  description:
    - The user rules ufw holds after the task (in check mode, would hold), as ufw commands, in ufw's order.
    - On failure of a ufw command, those it holds with the steps before it applied.
  returned: always
  type: list
  elements: str
  sample: ["ufw allow from 203.0.113.0/24 to any port 22 proto tcp comment 'ssh from admins'"]
added:
  description: Rules added, or updated in place (another action or comment); on failure, those applied before it.
  returned: always
  type: list
  elements: str
deleted:
  description: Rules deleted; on failure, those deleted before it.
  returned: always
  type: list
  elements: str
cmd:
  description: The ufw command that failed.
  returned: failure of a ufw command
  type: str
  sample: "ufw delete allow from 203.0.113.0/24 to any port 22 proto tcp"
rc:
  description: Its exit status.
  returned: failure of a ufw command
  type: int
stdout:
  description: Its standard output.
  returned: failure of a ufw command
  type: str
stderr:
  description: Its standard error.
  returned: failure of a ufw command
  type: str
pending:
  description: The commands not applied, the failed one first, in the order they would have run.
  returned: failure of a ufw command
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.honeydue.infra.plugins.module_utils._ufw import Outcome, UfwRuleError, execute, expand, parse_added, plan


def main():
    rule_spec = dict(
        rule=dict(type="str", default="allow", choices=["allow", "deny", "reject", "limit"]),
        from_ip=dict(type="list", elements="str", default=["any"]),
        to_ip=dict(type="list", elements="str", default=["any"]),
        port=dict(type="str"),
        proto=dict(type="str", default="any", choices=["any", "tcp", "udp"]),
        route=dict(type="bool", default=False),
        interface=dict(type="str"),
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

    def run(args):
        return module.run_command([binary] + list(args))

    rc, out, err = run(["show", "added"])
    if rc != 0:
        module.fail_json(msg=f"ufw show added failed (rc {rc}): {(err or out).strip()}", rc=rc, stdout=out, stderr=err)
    try:
        desired = [rule for spec in module.params["rules"] for rule in expand(spec)]
        the_plan = plan(parse_added(out), desired, module.params["exclusive"])
    except UfwRuleError as exc:
        module.fail_json(msg=str(exc))
    if module.check_mode:
        outcome = Outcome(the_plan, len(the_plan.steps))
    else:
        outcome = execute(the_plan, run)
    result = outcome.result()
    if module._diff:
        result["diff"] = dict(before="".join(f"{r}\n" for r in the_plan.before),
                              after="".join(f"{r}\n" for r in result["rules"]))
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the ufw_rules module: rule normalisation, `ufw show added` parsing, the plan and
its execution with partial-progress reporting.

Private to the collection (the leading underscore): no compatibility promise outside it.
"""
from __future__ import annotations

import ipaddress
import re
import shlex
from typing import NamedTuple

ACTIONS = ("allow", "deny", "reject", "limit")
PROTOS = ("any", "tcp", "udp")
_PORT = re.compile(r"^[0-9]{1,5}(?::[0-9]{1,5})?$")
_IFACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,14}$")


class UfwRuleError(ValueError):
    """A rule that ufw would refuse, or that this module cannot manage."""


class Rule(NamedTuple):
    """One ufw user rule, canonical: equal rules compare equal whatever their spelling."""

    route: bool
    action: str
    src: str  # 'any' or a canonical network
    dst: str
    port: str  # '' or canonical '80,443' / '2379:2380'
    proto: str  # 'any', 'tcp', 'udp'
    comment: str = ""
    interface: str = ""  # '' (any) or the interface incoming traffic must arrive on (`in on IFACE`)

    @property
    def key(self):
        """ufw's identity of a rule: what it matches, not what it does.

        ufw holds one rule per match (``UFWRule.match``): adding a rule that differs from an
        existing one only in its action or comment replaces that rule in place.
        """
        return (self.route, self.interface, self.src, self.dst, self.port, self.proto)

    def args(self, delete=False):
        """ufw command-line arguments that add (or delete) this rule."""
        out = ["route"] if self.route else []
        if delete:
            out.append("delete")
        out.append(self.action)
        if self.interface:
            out += ["in", "on", self.interface]
        out += ["from", self.src, "to", self.dst]
        if self.port:
            out += ["port", self.port]
        if self.proto != "any":
            out += ["proto", self.proto]
        if self.comment and not delete:
            out += ["comment", self.comment]
        return out

    def __str__(self):
        return "ufw " + " ".join(shlex.quote(a) for a in self.args())


def _address(value, what):
    text = str(value if value is not None else "any").strip().lower()
    if text in ("any", "", "0.0.0.0/0", "::/0"):
        return "any"
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise UfwRuleError(f"{what} {value!r} is not an address or network: {exc}") from None
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


def _ports(value):
    if value in (None, ""):
        return ""
    parts = []
    items = str(value).replace(" ", "").split(",")
    if len(items) > 15:
        raise UfwRuleError(f"port {value!r}: ufw takes at most 15 ports in one rule")
    for part in items:
        if not _PORT.match(part):
            raise UfwRuleError(f"port {value!r}: {part!r} is not a port or a range a:b")
        bounds = [int(p) for p in part.split(":")]
        if not all(1 <= b <= 65535 for b in bounds) or (len(bounds) == 2 and bounds[0] >= bounds[1]):
            raise UfwRuleError(f"port {value!r}: {part!r} is out of range")
        parts.append(tuple(bounds))
    return ",".join(":".join(str(b) for b in p) for p in sorted(set(parts)))


def normalize(spec):
    """A rule as the module takes it (dict) -> :class:`Rule`, validated."""
    action = spec.get("rule") or "allow"
    if action not in ACTIONS:
        raise UfwRuleError(f"rule {action!r} is not one of {', '.join(ACTIONS)}")
    proto = spec.get("proto") or "any"
    if proto not in PROTOS:
        raise UfwRuleError(f"proto {proto!r} is not one of {', '.join(PROTOS)}")
    src = _address(spec.get("from_ip"), "from_ip")
    dst = _address(spec.get("to_ip"), "to_ip")
    port = _ports(spec.get("port"))
    if ("," in port or ":" in port) and proto == "any":
        raise UfwRuleError(f"port {port!r}: a port list or range needs proto tcp or udp")
    if src != "any" and dst != "any":
        if ipaddress.ip_network(src).version != ipaddress.ip_network(dst).version:
            raise UfwRuleError(f"from_ip {src} and to_ip {dst} are of different IP versions")
    if src == "any" and dst == "any" and not port:
        raise UfwRuleError("a rule needs at least one of from_ip, to_ip or port")
    comment = str(spec.get("comment") or "")
    if "'" in comment or "\n" in comment:
        raise UfwRuleError(f"comment {comment!r} may not contain quotes or newlines")
    interface = str(spec.get("interface") or "")
    if interface and not _IFACE.match(interface):
        raise UfwRuleError(f"interface {interface!r} is not an interface name")
    return Rule(bool(spec.get("route")), action, src, dst, port, proto, comment, interface)


def expand(spec):
    """A module rule entry -> rules: one per (from_ip, to_ip) pair of its address lists.

    ``from_ip`` and ``to_ip`` may each be one address or a list; an empty list yields no rule
    (for example "from the other nodes" on a single-node cluster).
    """
    def _list(value):
        if value is None:
            return ["any"]
        return [value] if isinstance(value, str) else list(value)
    return [normalize(dict(spec, from_ip=src, to_ip=dst))
            for src in _list(spec.get("from_ip")) for dst in _list(spec.get("to_ip"))]


def parse_added(text):
    """Parse `ufw show added` into rules (the user rules ufw has, enabled or not)."""
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("ufw "):
            continue
        rules.append(_parse_line(line))
    return rules


def _parse_line(line):
    tokens = shlex.split(line)[1:]
    route = bool(tokens) and tokens[0] == "route"
    if route:
        tokens = tokens[1:]
    if not tokens or tokens[0] not in ACTIONS:
        raise UfwRuleError(f"cannot manage the ufw rule {line!r}")
    action, rest = tokens[0], tokens[1:]
    fields = {"from_ip": None, "to_ip": None, "port": None, "proto": None, "comment": None, "rule": action,
              "route": route, "interface": None}
    if rest[:2] == ["in", "on"] and len(rest) > 2:
        fields["interface"] = rest[2]
        rest = rest[3:]
    if rest and rest[0] not in ("from", "to", "port", "proto", "comment"):
        # Short form: `ufw allow 22/tcp`, `ufw allow 8472`.
        port, _sep, proto = rest.pop(0).partition("/")
        fields["port"], fields["proto"] = port, proto or None
    names = {"from": "from_ip", "to": "to_ip", "port": "port", "proto": "proto", "comment": "comment"}
    while rest:
        if rest[0] not in names or len(rest) < 2:
            raise UfwRuleError(f"cannot manage the ufw rule {line!r} (outgoing-interface or app rules are not supported)")
        fields[names[rest[0]]] = rest[1]
        rest = rest[2:]
    return normalize(fields)


class Step(NamedTuple):
    """One ufw command of a plan: ``add`` a rule, ``update`` one in place (same match, another
    action or comment), or ``delete`` one."""

    op: str
    rule: Rule

    def args(self):
        return self.rule.args(delete=self.op == "delete")

    def __str__(self):
        return "ufw " + " ".join(shlex.quote(a) for a in self.args())


class Plan(NamedTuple):
    """The steps that take ufw from ``before`` to ``after``, in the order they must run."""

    before: tuple
    steps: tuple
    after: tuple

    def state_after(self, done):
        """The rules ufw holds once the first ``done`` steps have run."""
        return apply_steps(self.before, self.steps[:done])


def apply_steps(rules, steps):
    """What ufw holds after ``steps`` on ``rules`` (in ufw's order): an add is appended, an update
    replaces its rule in place, a delete removes it."""
    state = list(rules)
    for step in steps:
        at = next((i for i, r in enumerate(state) if r.key == step.rule.key), None)
        if step.op == "delete":
            if at is not None:
                del state[at]
        elif at is None:
            state.append(step.rule)
        else:
            state[at] = step.rule
    return tuple(state)


def plan(current, desired, exclusive=True):
    """The steps that make ufw hold ``desired``, ordered so that no moment is less open than both
    the start and the end.

    ``current`` is what ``ufw show added`` lists, in its order. A listed rule that ufw already holds
    is never touched; one that differs only in its action or comment is updated in place. All adds
    and updates run first (ufw appends an added rule to the end of its chain), then, with
    ``exclusive``, every rule no longer listed is deleted, bottom-up. With that order each packet's
    fate at every step is either its fate before the run or after it: changing the admin CIDR
    never leaves a moment with neither rule, and a deny that shadows an allow is never removed
    before that allow. (Bottom-up is taken from the listing, which ufw prints IPv4 chain first and
    calls an equivalent ordering of the kernel chains.)
    """
    wanted = {}
    for rule in desired:
        seen = wanted.setdefault(rule.key, rule)
        if seen.action != rule.action:
            raise UfwRuleError(f"{seen} and {rule} match the same traffic with different actions;"
                               " ufw keeps one rule per match")
    have = {rule.key: rule for rule in current}
    steps = []
    for key, rule in wanted.items():
        if key not in have:
            steps.append(Step("add", rule))
        elif have[key] != rule:
            steps.append(Step("update", rule))
    if exclusive:
        steps += [Step("delete", r) for r in reversed(list(have.values())) if r.key not in wanted]
    return Plan(tuple(current), tuple(steps), apply_steps(current, steps))


class Outcome(NamedTuple):
    """How far :func:`execute` got: ``done`` steps ran; ``failed`` is the step that failed (None
    when all ran), with its ``rc``, ``stdout`` and ``stderr``."""

    plan: Plan
    done: int
    failed: Step = None
    rc: int = 0
    stdout: str = ""
    stderr: str = ""

    def result(self):
        """The module's result: what ufw holds, what was added/deleted; on failure, the failed
        command, its rc and output, and what was not applied."""
        done = self.plan.steps[:self.done]
        out = dict(
            changed=bool(done),
            rules=[str(r) for r in self.plan.state_after(self.done)],
            added=[str(s.rule) for s in done if s.op != "delete"],
            deleted=[str(s.rule) for s in done if s.op == "delete"],
        )
        if self.failed is not None:
            pending = self.plan.steps[self.done:]
            out.update(
                failed=True,
                msg=(f"{self.failed} failed (rc {self.rc}): {(self.stderr or self.stdout).strip()};"
                     f" {len(out['added'])} rule(s) added/updated and {len(out['deleted'])} deleted before it,"
                     f" {len(pending)} step(s) not applied; re-run to converge"),
                cmd=str(self.failed),
                rc=self.rc,
                stdout=self.stdout,
                stderr=self.stderr,
                pending=[str(s) for s in pending],
            )
        return out


def execute(the_plan, run):
    """Run the plan's steps in order with ``run(args) -> (rc, stdout, stderr)``; stop at the first
    failure. Returns an :class:`Outcome`."""
    for done, step in enumerate(the_plan.steps):
        rc, out, err = run(step.args())
        if rc != 0:
            return Outcome(the_plan, done, step, rc, out, err)
    return Outcome(the_plan, len(the_plan.steps))

# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the ufw_rules module: rule normalisation, `ufw show added` parsing, the plan.

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

    @property
    def key(self):
        """Identity without the comment (ufw updates a comment in place)."""
        return self[:6]

    def args(self, delete=False):
        """ufw command-line arguments that add (or delete) this rule."""
        out = ["route"] if self.route else []
        if delete:
            out.append("delete")
        out += [self.action, "from", self.src, "to", self.dst]
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
    return Rule(bool(spec.get("route")), action, src, dst, port, proto, comment)


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
              "route": route}
    if rest and rest[0] not in ("from", "to", "port", "proto", "comment"):
        # Short form: `ufw allow 22/tcp`, `ufw allow 8472`.
        port, _, proto = rest.pop(0).partition("/")
        fields["port"], fields["proto"] = port, proto or None
    names = {"from": "from_ip", "to": "to_ip", "port": "port", "proto": "proto", "comment": "comment"}
    while rest:
        if rest[0] not in names or len(rest) < 2:
            raise UfwRuleError(f"cannot manage the ufw rule {line!r} (interface or app rules are not supported)")
        fields[names[rest[0]]] = rest[1]
        rest = rest[2:]
    return normalize(fields)


def plan(current, desired, exclusive=True):
    """What to delete and what to add so that ufw holds ``desired``.

    Returns ``(deletes, adds)``. A rule whose only difference is its comment is re-added (ufw
    updates the comment in place). With ``exclusive`` every other user rule is deleted, so an
    address removed from the inventory or the Cloudflare list loses its rule.
    """
    wanted = {}
    for rule in desired:
        wanted.setdefault(rule.key, rule)
    have = {rule.key: rule for rule in current}
    adds = [r for k, r in wanted.items() if k not in have or have[k].comment != r.comment]
    deletes = [r for k, r in have.items() if exclusive and k not in wanted]
    return deletes, adds

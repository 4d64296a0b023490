# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure planner of cf_dns_roundrobin: from the zone's records and the wanted record sets to one
Cloudflare batch (deletes, patches, puts, posts), safe by construction.

Private to the collection. No I/O: everything here is unit- and property-tested.

Safety rules the plan keeps:
* Cloudflare runs a batch as deletes, then patches, puts, posts. A name whose every IP changes is
  therefore moved with patches (a stale record's content is rewritten), never delete + post: at no
  point of the batch does a name that should have records have none.
* A record whose only difference is proxied/ttl/comment is patched, never deleted and recreated.
* ``state=present`` with no values is refused (unless ``allow_empty``): an empty inventory must
  never wipe production DNS.
"""
from __future__ import annotations

import ipaddress

TYPES = ("A", "AAAA")
SETTINGS = ("proxied", "ttl", "comment")


class PlanError(ValueError):
    """Input the module refuses before any API call."""


def fqdn(name, zone):
    """``api`` -> ``api.<zone>``; ``@`` or the zone itself -> the zone; FQDNs kept (lowercase, no dot).

    Without a zone (only its id is known) names must already be fully qualified.
    """
    zone = (zone or "").lower().rstrip(".")
    name = (name or "@").strip().lower().rstrip(".")
    if not zone:
        if name == "@" or "." not in name:
            raise PlanError(f"{name!r}: without the zone's name, give fully qualified names")
        return name
    if name in ("@", "", zone):
        return zone
    if name.endswith("." + zone):
        return name
    return f"{name}.{zone}"


def _ip(value, rtype, name):
    try:
        addr = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise PlanError(f"{name} {rtype}: {value!r} is not an IP address") from None
    if (rtype == "A") != (addr.version == 4):
        raise PlanError(f"{name} {rtype}: {value} is an IPv{addr.version} address")
    return str(addr)


def desired_sets(records, zone, state="present", allow_empty=False):
    """Validate and normalise the module's ``records`` into ``{(fqdn, type): spec}``.

    ``spec`` is ``{"values": [...], "proxied", "ttl", "comment"}`` (settings None when not given).
    """
    out = {}
    for rec in records:
        rtype = (rec.get("type") or "A").upper()
        if rtype not in TYPES:
            raise PlanError(f"{rec.get('name')}: type {rtype} is not one of {', '.join(TYPES)}")
        name = fqdn(rec.get("name"), zone)
        values = [_ip(v, rtype, name) for v in rec.get("values") or []]
        if state == "present" and not values and not allow_empty:
            raise PlanError(
                f"{name} {rtype}: values is empty; refusing to remove every record of a name "
                "(an empty inventory must never wipe DNS). Set allow_empty=true to mean it.")
        ttl = rec.get("ttl")
        if ttl is not None and ttl != 1 and not 30 <= int(ttl) <= 86400:
            raise PlanError(f"{name} {rtype}: ttl {ttl} must be 1 (auto) or 30..86400")
        key = (name, rtype)
        if key in out:
            raise PlanError(f"{name} {rtype} is listed twice")
        out[key] = {"values": sorted(set(values), key=lambda v: ipaddress.ip_address(v)),
                    "proxied": rec.get("proxied"), "ttl": ttl, "comment": rec.get("comment")}
    return out


def _changes(record, spec, content=None):
    """The fields of ``record`` that must change to match ``spec`` (and ``content``)."""
    change = {}
    if content is not None and record["content"] != content:
        change["content"] = content
    for field in SETTINGS:
        want = spec.get(field)
        if want is None:
            continue
        have = record.get(field)
        if field == "comment":
            have, want = have or "", want or ""
        if have != want:
            change[field] = want
    return change


def plan(existing, desired, state="present", prune=True):
    """The batch that turns ``existing`` (API records) into ``desired`` (from :func:`desired_sets`).

    Returns ``{"deletes": [...], "patches": [...], "puts": [], "posts": [...]}``; empty lists when
    nothing differs. Only records whose (name, type) is in ``desired`` are ever touched.
    """
    batch = {"deletes": [], "patches": [], "puts": [], "posts": []}
    for (name, rtype), spec in sorted(desired.items()):
        have = sorted((r for r in existing if r["name"].lower() == name and r["type"] == rtype),
                      key=lambda r: (r["content"], r["id"]))
        if state == "absent":
            targets = set(spec["values"])
            batch["deletes"] += [{"id": r["id"]} for r in have if not targets or r["content"] in targets]
            continue
        _plan_present(batch, name, rtype, spec, have, prune)
    return batch


def _plan_present(batch, name, rtype, spec, have, prune):
    wanted = spec["values"]
    kept, stale, seen = [], [], set()
    for r in have:
        if r["content"] in wanted and r["content"] not in seen:
            seen.add(r["content"])
            kept.append(r)
        else:
            stale.append(r)  # not wanted, or a duplicate of a kept content
    missing = [v for v in wanted if v not in seen]
    for r in kept:
        change = _changes(r, spec)
        if change:
            batch["patches"].append(dict(id=r["id"], **change))
    if prune:
        # Move stale records onto missing values with patches: no delete-then-post gap.
        for r, value in zip(stale, missing, strict=False):  # the shorter list decides
            batch["patches"].append(dict(id=r["id"], **_changes(r, spec, value)))
        batch["deletes"] += [{"id": r["id"]} for r in stale[len(missing):]]
        missing = missing[len(stale):]
    for value in missing:
        post = {"name": name, "type": rtype, "content": value,
                "proxied": bool(spec["proxied"]) if spec["proxied"] is not None else True,
                "ttl": spec["ttl"] if spec["ttl"] is not None else 1}
        if spec.get("comment"):
            post["comment"] = spec["comment"]
        batch["posts"].append(post)


def is_empty(batch):
    return not any(batch.values())


def apply(existing, batch):
    """The zone's records after ``batch``, in Cloudflare's order (for check mode, diff and tests).

    Posted records get placeholder ids ``new-<n>``.
    """
    records = {r["id"]: dict(r) for r in existing}
    for op in batch["deletes"]:
        records.pop(op["id"])
    for op in batch["patches"]:
        records[op["id"]].update({k: v for k, v in op.items() if k != "id"})
    for op in batch["puts"]:
        records[op["id"]] = dict(op)
    for n, op in enumerate(batch["posts"]):
        records[f"new-{n}"] = dict(op, id=f"new-{n}", comment=op.get("comment"))
    return list(records.values())


def by_name(records, keys):
    """``{fqdn: [{type, content, proxied, ttl}, ...]}`` for the (name, type) ``keys``, sorted."""
    out = {}
    for name, rtype in sorted(keys):
        rows = [{"type": r["type"], "content": r["content"], "proxied": r.get("proxied"), "ttl": r.get("ttl")}
                for r in records if r["name"].lower() == name and r["type"] == rtype]
        out.setdefault(name, []).extend(sorted(rows, key=lambda r: (r["type"], r["content"])))
    return out


def mixed_proxied(records, keys):
    """Names whose A/AAAA records mix proxied and unproxied (Cloudflare then proxies them all)."""
    names = sorted({name for name, _ in keys})
    return [n for n in names
            if len({bool(r.get("proxied")) for r in records if r["name"].lower() == n and r["type"] in TYPES}) > 1]


def chunks(batch, size=200):
    """Split a batch into batches of at most ``size`` operations, keeping the global order."""
    ops = [(key, op) for key in ("deletes", "patches", "puts", "posts") for op in batch[key]]
    for start in range(0, len(ops), size):
        part = {"deletes": [], "patches": [], "puts": [], "posts": []}
        for key, op in ops[start:start + size]:
            part[key].append(op)
        yield part

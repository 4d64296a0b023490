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
* Proxied records always have TTL 1 (Auto) at Cloudflare, whatever is sent: ``proxied`` with another
  TTL is refused, and a proxied record's TTL is compared as 1, so the plan never patches it run
  after run (https://developers.cloudflare.com/dns/proxy-status/).

:func:`converge` drives plan -> send -> (after a failed or unanswered write) list again -> plan
again, with the I/O passed in as two callables; it never resends a write blindly.
"""
from __future__ import annotations

import ipaddress
from collections import Counter

TYPES = ("A", "AAAA")
SETTINGS = ("proxied", "ttl", "comment")
KEYS = ("deletes", "patches", "puts", "posts")
TTL_AUTO = 1
# What a failed write means (the ``outcome`` attribute of the error the ``send`` callable raises).
UNKNOWN, STALE, REFUSED = "unknown", "stale", "refused"


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
        if ttl is not None and ttl != TTL_AUTO and not 30 <= int(ttl) <= 86400:
            raise PlanError(f"{name} {rtype}: ttl {ttl} must be 1 (auto) or 30..86400")
        if rec.get("proxied") and ttl is not None and ttl != TTL_AUTO:
            raise PlanError(
                f"{name} {rtype}: ttl {ttl} with proxied=true; Cloudflare gives proxied records TTL 1 (Auto) "
                "whatever is sent. Set ttl: 1, or proxied: false to serve the records with that TTL.")
        key = (name, rtype)
        if key in out:
            raise PlanError(f"{name} {rtype} is listed twice")
        out[key] = {"values": sorted(set(values), key=ipaddress.ip_address),
                    "proxied": rec.get("proxied"), "ttl": ttl, "comment": rec.get("comment")}
    return out


def _changes(record, spec, content=None):
    """The fields of ``record`` that must change to match ``spec`` (and ``content``).

    A proxied record has TTL 1 at Cloudflare whatever is sent, so both sides of the TTL comparison
    are taken as Cloudflare stores them: a TTL the API would ignore is never patched (and
    re-patched on every run).
    """
    change = {}
    if content is not None and record["content"] != content:
        change["content"] = content
    proxied = spec.get("proxied") if spec.get("proxied") is not None else bool(record.get("proxied"))
    for field in SETTINGS:
        want = spec.get(field)
        if want is None:
            continue
        have = record.get(field)
        if field == "comment":
            have, want = have or "", want or ""
        if field == "ttl":  # Cloudflare stores 1 for a proxied record whatever is sent
            have = TTL_AUTO if record.get("proxied") else have
            want = TTL_AUTO if proxied else want
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
        proxied = bool(spec["proxied"]) if spec["proxied"] is not None else True
        post = {"name": name, "type": rtype, "content": value, "proxied": proxied,
                "ttl": spec["ttl"] if spec["ttl"] is not None and not proxied else TTL_AUTO}
        if spec.get("comment"):
            post["comment"] = spec["comment"]
        batch["posts"].append(post)


def is_empty(batch):
    return not any(batch.values())


def empty_batch():
    return {key: [] for key in KEYS}


def count(batch):
    return sum(len(batch[key]) for key in KEYS)


def apply(existing, batch):
    """The zone's records after ``batch``, in Cloudflare's order (for check mode, diff and tests).

    Posted records get placeholder ids ``new-<n>``; proxied records get TTL 1, as Cloudflare stores them.
    """
    records = {r["id"]: dict(r) for r in existing}
    for op in batch["deletes"]:
        records.pop(op["id"])
    for op in batch["patches"]:
        records[op["id"]].update({k: v for k, v in op.items() if k != "id"})
    for op in batch["puts"]:
        records[op["id"]] = dict(op)
    n = 0
    for op in batch["posts"]:
        while f"new-{n}" in records:  # placeholders of an earlier apply() stay
            n += 1
        records[f"new-{n}"] = dict(op, id=f"new-{n}", comment=op.get("comment"))
    for record in records.values():
        if record.get("proxied"):
            record["ttl"] = TTL_AUTO
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
    names = sorted({key[0] for key in keys})
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


# -- after a failed or unanswered write ------------------------------------------------------------
def _reflects(record, op):
    """Whether ``record`` shows every field ``op`` (a patch or put) writes."""
    for field, want in op.items():
        if field == "id":
            continue
        have = record.get(field)
        if field == "ttl" and record.get("proxied"):
            want = TTL_AUTO
        elif field == "comment":
            have, want = have or "", want or ""
        elif field == "name":
            have, want = str(have).lower(), str(want).lower()
        if have != want:
            return False
    return True


def _identity(record):
    return (record["name"].lower(), record["type"], record["content"])


def landed(before, part, after):
    """The operations of ``part`` that the re-listed zone ``after`` shows applied to ``before``.

    For a write whose answer was lost: Cloudflare runs one batch call as one transaction, so this is
    all of ``part`` or nothing, unless someone else wrote to the same records meanwhile.
    """
    out = empty_batch()
    was = {r["id"] for r in before}
    now = {r["id"]: r for r in after}
    out["deletes"] = [op for op in part["deletes"] if op["id"] in was and op["id"] not in now]
    for key in ("patches", "puts"):
        out[key] = [op for op in part[key] if op["id"] in now and _reflects(now[op["id"]], op)]
    gained = Counter(map(_identity, after)) - Counter(map(_identity, before))
    for op in part["posts"]:
        if gained[_identity(op)] > 0:
            gained[_identity(op)] -= 1
            out["posts"].append(op)
    return out


def _merge(into, part):
    for key in KEYS:
        into[key].extend(part[key])


class ConvergeError(Exception):
    """A write failed and the zone could not be brought to the plan.

    ``cause`` is the error the last ``send`` raised, ``relist_error`` the one of ``list_records``
    when listing again after it failed too, ``applied`` the operations that landed, ``changed``
    whether any did (or, when the zone could not be listed again after an unanswered write, may
    have), ``replans`` the new plans sent and ``pending`` the operations still to do when the bound
    on new plans was reached.
    """

    def __init__(self, cause, applied, changed, replans, pending=0, relist_error=None):
        self.cause = cause
        self.applied = applied
        self.changed = changed
        self.replans = replans
        self.pending = pending
        self.relist_error = relist_error
        super().__init__(str(cause))


def converge(list_records, send, desired, state="present", prune=True, batch_size=200, max_replans=3,
             check_mode=False, api_errors=(Exception,)):
    """List, plan and send the batch in chunks of ``batch_size``; after a failed write, list again.

    ``list_records()`` returns the zone's records; ``send(part)`` writes one batch call and raises
    one of ``api_errors`` on failure, whose ``outcome`` attribute says what the failure means:
    ``refused`` (not applied: stop), ``stale`` (not applied, the zone changed meanwhile) or
    ``unknown`` (no answer or 5xx: it may have landed). After ``stale`` or ``unknown`` the zone is
    listed again, what landed is worked out from it (:func:`landed`), and a new plan is made from it:
    a write is never resent as it was. An empty new plan means the zone is as desired; at most
    ``max_replans`` new plans are sent.

    Returns ``{"before", "after", "operations", "changed", "replans"}``: the first listing, the
    records after (predicted in check mode), the operations applied (planned in check mode).
    Raises :class:`ConvergeError` when it cannot get there.
    """
    before = list_records()
    batch = plan(before, desired, state, prune)
    if check_mode or is_empty(batch):
        return {"before": before, "after": apply(before, batch), "operations": batch,
                "changed": not is_empty(batch), "replans": 0}
    applied, replans, existing = empty_batch(), 0, before
    while True:
        current, failure, part = existing, None, None
        for part in chunks(batch, batch_size):
            try:
                send(part)
            except api_errors as exc:
                failure = exc
                break
            _merge(applied, part)
            current = apply(current, part)
        if failure is None:
            return {"before": before, "after": current, "operations": applied,
                    "changed": not is_empty(applied), "replans": replans}
        outcome = getattr(failure, "outcome", REFUSED)
        if outcome not in (UNKNOWN, STALE):
            raise ConvergeError(failure, applied, not is_empty(applied), replans)
        try:
            existing = list_records()
        except api_errors as exc:
            raise ConvergeError(failure, applied, not is_empty(applied) or outcome == UNKNOWN, replans,
                                relist_error=exc) from None
        if outcome == UNKNOWN:
            _merge(applied, landed(current, part, existing))
        batch = plan(existing, desired, state, prune)
        if is_empty(batch):
            return {"before": before, "after": apply(existing, batch), "operations": applied,
                    "changed": not is_empty(applied), "replans": replans}
        if replans >= max_replans:
            raise ConvergeError(failure, applied, not is_empty(applied), replans, pending=count(batch))
        replans += 1

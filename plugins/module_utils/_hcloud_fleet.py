# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the hcloud_fleet module: which servers to create, what drifted, what may be deleted.

Private to the collection (the leading underscore): no compatibility promise outside it. Nothing
here talks to the API; the module turns hcloud objects into :func:`server_view` dicts first.
"""
from __future__ import annotations

import re
from typing import Any, NamedTuple

# Attributes compared for drift. A difference is reported, never acted on: changing any of them
# on a live K3s node means a rebuild or a rescale, which is an operator's decision.
DRIFT_FIELDS = ("server_type", "image", "location", "placement_group")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class FleetError(ValueError):
    """A request the fleet refuses before any change; ``code`` is machine readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Plan(NamedTuple):
    create: list[dict[str, Any]]  # desired entries (name, labels) that do not exist yet
    keep: list[str]  # desired names that exist
    protect: list[str]  # existing servers whose delete/rebuild protection must be turned on
    delete: list[str]  # surplus servers confirmed removed from K3s, allowed to go
    surplus: list[str]  # every existing server of the fleet that is not desired any more
    drift: dict[str, dict[str, dict[str, Any]]]  # name -> field -> {expected, actual}

    @property
    def changed(self) -> bool:
        return bool(self.create or self.protect or self.delete)


def selector(labels: dict[str, str]) -> str:
    """The Hetzner label selector matching every server that carries ``labels``."""
    if not labels:
        raise FleetError("invalid_input", "selector_labels must name at least one label (e.g. cluster=<name>)")
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def in_fleet(labels: dict[str, str] | None, selector_labels: dict[str, str]) -> bool:
    """Whether a server with ``labels`` belongs to the fleet marked by ``selector_labels``."""
    labels = labels or {}
    return all(labels.get(k) == str(v) for k, v in selector_labels.items())


def taken_names(wanted: list[str], found: dict[str, dict[str, str]], selector_labels: dict[str, str]) -> list[str]:
    """Names the fleet wants to create that a server outside the fleet already uses.

    ``found`` maps each of those names that exists in the project to that server's labels. Server
    names are unique per project, so such a create could only fail (``uniqueness_error``); it is
    refused before the first create instead, leaving nothing half done.
    """
    return [n for n in wanted if n in found and not in_fleet(found[n], selector_labels)]


def lock_holders(actions: list[dict[str, Any]]) -> str:
    """``apply_firewall (action 7), start_server (action 8)``: the running actions that lock a server."""
    return ", ".join(f"{a.get('command', '?')} (action {a.get('id', '?')})" for a in actions) or "an unlisted action"


def desired_servers(servers: list[dict[str, Any]], common_labels: dict[str, str],
                    selector_labels: dict[str, str]) -> list[dict[str, Any]]:
    """Validated desired entries: unique RFC 1123 names, labels = selector + common + own."""
    seen: set[str] = set()
    out = []
    for entry in servers:
        name = str(entry.get("name") or "")
        if not _NAME.match(name):
            raise FleetError("invalid_input",
                             f"server name {name!r} is not a valid hostname (lowercase RFC 1123 label)")
        if name in seen:
            raise FleetError("invalid_input", f"server name {name!r} is listed twice")
        seen.add(name)
        labels = {**common_labels, **(entry.get("labels") or {}), **selector_labels}
        ipv4 = entry.get("ipv4")
        out.append({"name": name, "labels": {str(k): str(v) for k, v in labels.items()},
                    "ipv4": None if ipv4 in (None, "") else primary_ip_ref(ipv4)})
    return out


def primary_ip_ref(value: Any) -> int | str:
    """A Primary IP reference as given: an ID (``42``, ``"42"``) or a name (``"hetzner1-ipv4"``)."""
    if isinstance(value, bool):
        raise FleetError("invalid_input", f"ipv4 {value!r} is neither a Primary IP ID nor a name")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text:
        raise FleetError("invalid_input", "ipv4 must name a Primary IP (ID or name)")
    return int(text) if text.isdigit() else text


def primary_ip_problems(entries: list[dict[str, Any]], found: dict[int | str, dict[str, Any] | None],
                        location: str) -> list[str]:
    """Why the Primary IPs named by the servers to create cannot be used, checked before any create.

    ``found`` maps each reference (:func:`primary_ip_ref`) to the Primary IP it names
    (``{"id", "name", "type", "location", "assignee_id"}``) or ``None`` when there is none. A server
    is created with ``public_net.ipv4`` = that ID; the API would refuse an IP that is not ``ipv4``
    (``primary_ip_version_mismatch``), is assigned (``primary_ip_assigned``) or lies in another
    location. Two servers naming the same IP is refused too.
    """
    problems = []
    users: dict[Any, str] = {}
    for entry in entries:
        ref = entry.get("ipv4")
        if ref is None:
            continue
        pip = found.get(ref)
        if pip is None:
            problems.append(f"{entry['name']}: no Primary IP {ref!r}")
            continue
        what = f"{entry['name']}: Primary IP {pip.get('name') or pip['id']}"
        if pip["id"] in users:
            problems.append(f"{what} is also named for {users[pip['id']]}")
        users[pip["id"]] = entry["name"]
        if pip.get("type") != "ipv4":
            problems.append(f"{what} is of type {pip.get('type')}, not ipv4")
        if pip.get("assignee_id") is not None:
            problems.append(f"{what} is assigned to server {pip['assignee_id']}")
        if pip.get("location") and pip["location"] != location:
            problems.append(f"{what} is in {pip['location']}, the servers in {location}")
    return problems


def server_view(name: str, *, sid: int | None = None, status: str = "", server_type: str = "", image: str | None = None,
                location: str = "", labels: dict[str, str] | None = None, placement_group: str | None = None,
                networks: list[str] | None = None, protection: dict[str, bool] | None = None,
                ipv4: str | None = None, ipv6: str | None = None,
                private_ipv4: str | None = None, primary_ipv4: int | None = None) -> dict[str, Any]:
    """The attributes of one existing server that the planner and the module's result use."""
    return {"name": name, "id": sid, "status": status, "server_type": server_type, "image": image,
            "location": location, "labels": dict(labels or {}), "placement_group": placement_group,
            "networks": sorted(networks or []), "protection": dict(protection or {"delete": False, "rebuild": False}),
            "ipv4": ipv4, "ipv6": ipv6, "private_ipv4": private_ipv4, "primary_ipv4": primary_ipv4}


def drift_of(want: dict[str, Any], have: dict[str, Any], spec: dict[str, Any],
             primary_ids: dict[Any, int | None] | None = None) -> dict[str, dict[str, Any]]:
    """Differences between a desired entry (+ the fleet-wide ``spec``) and an existing server.

    ``primary_ids`` maps a Primary IP reference (the entry's ``ipv4``) to its ID (``None``: no such
    Primary IP); a server whose public IPv4 is another Primary IP has drifted in ``ipv4``.
    """
    out: dict[str, dict[str, Any]] = {}
    for field in DRIFT_FIELDS:
        expected = spec.get(field)
        if expected is not None and have.get(field) != expected:
            out[field] = {"expected": expected, "actual": have.get(field)}
    wrong = {k: v for k, v in want["labels"].items() if have["labels"].get(k) != v}
    if wrong:
        out["labels"] = {"expected": wrong, "actual": {k: have["labels"].get(k) for k in wrong}}
    missing = sorted(set(spec.get("networks") or []) - set(have.get("networks") or []))
    if missing:
        out["networks"] = {"expected": sorted(spec.get("networks") or []), "actual": have.get("networks") or []}
    ref = want.get("ipv4")
    if ref is not None:
        wanted_id = (primary_ids or {}).get(ref, ref if isinstance(ref, int) else None)
        if wanted_id is None or have.get("primary_ipv4") != wanted_id:
            out["ipv4"] = {"expected": ref, "actual": have.get("primary_ipv4")}
    return out


def plan(desired: list[dict[str, Any]], existing: list[dict[str, Any]], spec: dict[str, Any], *,
         protection: bool = True, allow_delete: bool = False, confirmed_removed: list[str] | None = None,
         removed_label: str = "k3s-removed", primary_ids: dict[Any, int | None] | None = None) -> Plan:
    """Decide what converges ``existing`` (the fleet's servers now) to ``desired``.

    - a desired server that does not exist is created; one that exists is never recreated, its
      differences are only reported (``drift``);
    - a server of the fleet that is not desired any more (scale in) is deleted only with
      ``allow_delete`` and only when it was confirmed removed from K3s: its name is in
      ``confirmed_removed`` or it carries the label ``<removed_label>=true``. Otherwise the whole
      plan is refused with :class:`FleetError` (``scale_in_refused``) before any change.
    """
    have = {s["name"]: s for s in existing}
    wanted = {d["name"] for d in desired}
    create = [d for d in desired if d["name"] not in have]
    keep = [d["name"] for d in desired if d["name"] in have]
    want_protection = {"delete": protection, "rebuild": protection}
    protect = [n for n in keep if protection and have[n]["protection"] != want_protection]
    drift = {}
    for entry in desired:
        if entry["name"] in have:
            found = drift_of(entry, have[entry["name"]], spec, primary_ids)
            if found:
                drift[entry["name"]] = found
    surplus = sorted((n for n in have if n not in wanted), key=_natural)
    confirmed = set(confirmed_removed or [])
    if surplus and not allow_delete:
        raise FleetError("scale_in_refused", (
            f"{', '.join(surplus)} {'is' if len(surplus) == 1 else 'are'} no longer wanted, but servers are never "
            "deleted without allow_delete=true. Drain and remove the node(s) from K3s first, then re-run with "
            "allow_delete=true and the names in the confirmed-removed list (or the label "
            f"{removed_label}=true on the server)"))
    unconfirmed = [n for n in surplus if n not in confirmed and have[n]["labels"].get(removed_label) != "true"]
    if unconfirmed:
        raise FleetError("scale_in_refused", (
            f"allow_delete=true, but {', '.join(unconfirmed)} {'is' if len(unconfirmed) == 1 else 'are'} not "
            f"confirmed removed from K3s: list the name(s) as confirmed removed or label the server(s) "
            f"{removed_label}=true once drained and removed (kubectl drain, kubectl delete node)"))
    return Plan(create, keep, protect, list(surplus), surplus, drift)


def _natural(name: str) -> tuple[Any, ...]:
    """hetzner2 before hetzner10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def summary(server: dict[str, Any]) -> dict[str, Any]:
    """What a diff shows for one server."""
    return {k: server.get(k) for k in ("server_type", "image", "location", "labels", "placement_group", "networks")}


def diff(existing: list[dict[str, Any]], the_plan: Plan, spec: dict[str, Any]) -> dict[str, Any]:
    """``--diff`` before/after: the fleet's servers by name."""
    before = {s["name"]: summary(s) for s in existing}
    after = {n: v for n, v in before.items() if n not in the_plan.delete}
    for entry in the_plan.create:
        after[entry["name"]] = summary({**spec, "labels": entry["labels"]})
    return {"before": before, "after": after}

"""Hetzner Cloud API v1 stand-in: servers, actions, SSH keys, placement groups, firewalls, networks,
primary IPs.

Every request is checked against the vendor contract (``shared/specs/hetzner/hcloud.openapi.json``)
and refused the way the vendor refuses it (``invalid_input``, ``not_found``, ``uniqueness_error`` ...);
every answer is checked against the documented response schema (errors against ``error_response``)
and any departure is appended to :attr:`HcloudStandIn.contract_violations`.

Actions are created ``running`` and finish (``success``, or ``error`` after
:meth:`HcloudStandIn.fail_next_action`) once ``action_delay`` seconds have passed and
``action_polls`` polls of the action have reported it running; with both at 0 they finish on
the next request. Their effect on resources (a server becoming ``running`` ...) lands when they finish.

The API as it is *today* (``today``, pinned: see :mod:`lab.standins._hcloud_today`): properties the
contract announces as "removed after <date>" are gone once that date has passed (servers carry
``location`` only, no ``datacenter``; a request that still sends ``datacenter`` is refused), and the
dated vendor changes the contract does not carry apply (``/datacenters`` answers 410).

Vendor behaviours beyond the contract, from the API reference (docs.hetzner.cloud/reference/cloud):

* **Locked resources.** While an action runs on a server, starting another action on it (power,
  protection, networks, placement group, delete) answers 423 ``locked``. A firewall applied by
  label selector starts an ``apply_firewall`` action on every server that comes to match it (a new
  server, or a relabelled one); its duration is ``firewall_apply_delay``.
* **Pagination.** Every list answer has ``meta.pagination`` and a ``Link`` header (``prev``, ``next``,
  ``last``). ``last_page`` and ``total_entries`` "may be null ... when the total number of entries
  is unknown": with ``unknown_totals`` set the stand-in answers that way and leaves out ``rel=last``,
  so a client must follow ``next_page``.
* **Labels.** The ``hetzner.cloud/`` key prefix is reserved and refused.
* **Firewall rules.** ``port`` is ``"N"`` or ``"N-M"`` (lower and upper bound) within 1-65535.
* **Primary IPs.** A server's public addresses are Primary IPs: given in the create request
  (``public_net.ipv4``/``ipv6``: unassigned, same location, right type) or created for it with
  ``auto_delete`` true. Deleting a server unassigns its Primary IPs and deletes the auto_delete ones.
  Assign/unassign need the server ``off``; an assigned Primary IP cannot be deleted
  (``must_be_unassigned``, from 1 May 2026), a delete-protected one neither (``protected``), and
  delete protection needs ``auto_delete`` false.

Run it on its own with ``python -m lab.standins.hcloud --port 8080 --token T``; the endpoint is
``http://127.0.0.1:8080/v1``. ``POST /_standin/addresses {"name": ..., "ipv4": ...}`` gives a
server (existing, or created later under that name) a chosen public IPv4 address;
``POST /_standin/action_timing {"delay": s, "polls": n, "firewall_apply": s}`` sets how long actions
run; ``POST /_standin/pagination {"unknown_totals": true}`` switches the pagination style.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import ipaddress
import itertools
import re
import secrets
import time
from urllib.parse import urlencode
from dataclasses import dataclass
from functools import lru_cache
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterable

from lab.standins._hcloud_today import TODAY, Removal, changes_in_force, contract_as_of, removed_names
from lab.standins._labels import LabelSelectorError, label_errors, parse_label_selector, selector_matches
from lab.standins._openapi import Contract, Operation, load_spec
from lab.standins._server import Request, Response, StandIn

BASE_PATH = "/v1"
ERROR_SCHEMA = {"$ref": "#/components/schemas/error_response"}
RATE_LIMIT = 3600
DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 50
PUBLIC_V4 = ipaddress.ip_network("203.0.113.0/24")
PUBLIC_V6 = ipaddress.ip_network("2001:db8::/32")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
RESERVED_LABEL_PREFIX = "hetzner.cloud/"
_PORT = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")
# delete_primary_ip: "If assigned to a Server the Primary IP will be unassigned automatically until
# 1 May 2026. After this date, the Primary IP needs to be unassigned before it can be deleted."
PRIMARY_IP_MUST_BE_UNASSIGNED = date(2026, 5, 1)
_PRIVATE_RANGES = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


def now_iso() -> str:
    """The current time the way the vendor writes it (RFC 3339, UTC, seconds)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# ------------------------------------------------------------------------------------------------
# the contract
# ------------------------------------------------------------------------------------------------
# Create-server fields the vendor takes as "ID or name" (request description: "you can either use the
# ID as listed in /server_types or its name"), but which the contract types as string only. Hetzner's
# own clients send the ID as a JSON integer (hcloud-python ``id_or_name``; hcloud-go ``SSHKeys []int64``,
# ``ServerType``/``Image`` ``interface{}``), and the vendor accepts it.
_ID_OR_NAME = ("server_type", "image", "location", "datacenter")


def id_or_name_fields(spec: dict[str, Any]) -> dict[str, Any]:
    """Let the create-server ID-or-name fields also be integers (see ``_ID_OR_NAME``); likewise the
    create-Primary-IP ``location`` ("Location ID or name"), which hcloud-python sends as
    ``location.id_or_name`` (the ID once the location was looked up, as hetzner.hcloud.primary_ip does).

    ``assignee_type`` of a create-Primary-IP request is ``required`` in the contract, but it only
    means something together with ``assignee_id``: Hetzner's own hcloud-python (2.x) sends it only
    with ``assignee_id`` (its ``create`` warns "The 'assignee_type' argument ... will be required
    together with the 'assignee_id' argument"), so an unassigned create ("If not assigned to a
    resource the ``location`` key needs to be provided") without it is accepted, as the vendor does.
    """
    schemas = spec["components"]["schemas"]
    props = schemas["create_server_request"]["properties"]
    for name in _ID_OR_NAME:
        if name in props:  # datacenter: removed from the API after 1 July 2026
            props[name] = {"anyOf": [props[name], {"type": "integer"}]}
    props["ssh_keys"]["items"] = {"anyOf": [props["ssh_keys"]["items"], {"type": "integer"}]}
    pip = schemas["create_primary_ip_request"]
    pip["properties"]["location"] = {"anyOf": [pip["properties"]["location"], {"type": "integer"}]}
    pip["required"] = [n for n in pip["required"] if n != "assignee_type"]
    return spec


@lru_cache(maxsize=2)
def _hcloud_spec(today: date) -> tuple[dict[str, Any], tuple[Removal, ...]]:
    spec, removals = contract_as_of(load_spec("hetzner/hcloud.openapi.json"), today)
    return id_or_name_fields(spec), tuple(removals)


# The vendor parses boolean query parameters like Go's strconv.ParseBool; hcloud-python sends
# Python's str(True) ("True"). Those spellings are normalised to the contract's "true"/"false".
_GO_BOOLS = {"1": "true", "t": "true", "T": "true", "TRUE": "true", "true": "true", "True": "true",
             "0": "false", "f": "false", "F": "false", "FALSE": "false", "false": "false", "False": "false"}


def normalise_bool_query(contract: Contract, op: Operation, query: dict[str, list[str]]) -> dict[str, list[str]]:
    """``query`` with the boolean parameters of ``op`` spelled the way the contract validator expects."""
    out = dict(query)
    for param in (contract.resolve(p) for p in op.spec.get("parameters", [])):
        name = param.get("name")
        if param.get("in") == "query" and name in out and contract.resolve(param.get("schema", {})).get("type") == "boolean":
            out[name] = [_GO_BOOLS.get(v, v) for v in out[name]]
    return out


@lru_cache(maxsize=2)
def hcloud_contract(today: date = TODAY) -> Contract:
    """The Hetzner contract as of ``today``, served under ``/v1``; shared, as compiling its
    validators is the slow part."""
    return Contract(_hcloud_spec(today)[0], BASE_PATH)


def hcloud_removals(today: date = TODAY) -> tuple[Removal, ...]:
    """The contract's dated removals in force on ``today``."""
    return _hcloud_spec(today)[1]


# ------------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------------
class ApiError(Exception):
    """A vendor error answer: HTTP status, machine code, human message, details."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details if details is not None else {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def invalid_input(fields: dict[str, list[str]], message: str | None = None) -> ApiError:
    """400 ``invalid_input`` naming the offending fields (``details.fields``) like the vendor."""
    names = ", ".join(f"'{n}'" for n in fields)
    return ApiError(400, "invalid_input", message or f"invalid input in field{'s' if len(fields) > 1 else ''} {names}",
                    {"fields": [{"name": n, "messages": m} for n, m in fields.items()]})


def not_found(kind: str, ident: object) -> ApiError:
    return ApiError(404, "not_found", f"{kind} with ID '{ident}' not found")


def uniqueness(field_name: str = "name") -> ApiError:
    return ApiError(409, "uniqueness_error", f"{field_name} is already used",
                    {"fields": [{"name": field_name}]})


def _problem_fields(problems: list[str]) -> dict[str, list[str]]:
    """Contract problems (``query parameter 'x': ...`` / ``a/b: ...``) -> invalid_input fields."""
    fields: dict[str, list[str]] = {}
    for p in problems:
        m = re.match(r"query parameter '([^']+)'[: ]*(.*)", p) or re.match(r"([^:/]+)[^:]*: (.*)", p)
        name, msg = (m.group(1), m.group(2) or p) if m else ("(body)", p)
        fields.setdefault(name, []).append(msg)
    return fields


# ------------------------------------------------------------------------------------------------
# read-only catalog
# ------------------------------------------------------------------------------------------------
def _location(lid: int, name: str, city: str, country: str, lat: float, lon: float) -> dict[str, Any]:
    return {"id": lid, "name": name, "description": f"{city} DC Park 1", "country": country, "city": city,
            "latitude": lat, "longitude": lon, "network_zone": "eu-central"}


LOCATIONS = [
    _location(1, "fsn1", "Falkenstein", "DE", 50.47612, 12.370071),
    _location(2, "nbg1", "Nuremberg", "DE", 49.452102, 11.076665),
    _location(3, "hel1", "Helsinki", "FI", 60.169855, 24.938379),
]

# name, id, cores, memory GB, disk GB, cpu_type, architecture, category, monthly net EUR
_SERVER_TYPES = [
    ("cx22", 104, 2, 4, 40, "shared", "x86", "cost_optimized", "3.79"),
    ("cx32", 105, 4, 8, 80, "shared", "x86", "cost_optimized", "6.80"),
    ("cx23", 114, 2, 4, 40, "shared", "x86", "cost_optimized", "2.99"),
    ("cx33", 115, 4, 8, 80, "shared", "x86", "cost_optimized", "4.99"),
    ("cx43", 116, 8, 16, 160, "shared", "x86", "cost_optimized", "9.49"),
    ("cpx11", 22, 2, 2, 40, "shared", "x86", "regular_purpose", "4.35"),
    ("cpx21", 23, 3, 4, 80, "shared", "x86", "regular_purpose", "7.55"),
    ("cax11", 45, 2, 4, 40, "shared", "arm", "cost_optimized", "3.79"),
    ("ccx13", 96, 2, 8, 80, "dedicated", "x86", "general_purpose", "12.49"),
]


def _price(location: str, monthly_net: str) -> dict[str, Any]:
    net = float(monthly_net)
    money = lambda v: {"net": f"{v:.4f}", "gross": f"{v * 1.19:.4f}"}  # noqa: E731 - tiny formatter
    return {"location": location, "price_hourly": money(net / 730), "price_monthly": money(net),
            "included_traffic": 21990232555520, "price_per_tb_traffic": money(1.0)}


def _server_type(row: tuple[Any, ...]) -> dict[str, Any]:
    name, stid, cores, mem, disk, cpu, arch, category, monthly = row
    return {"id": stid, "name": name, "description": name.upper(), "category": category, "cores": cores,
            "memory": float(mem), "disk": disk, "deprecated": False, "deprecation": None,
            "prices": [_price(loc["name"], monthly) for loc in LOCATIONS], "storage_type": "local",
            "cpu_type": cpu, "architecture": arch,
            # available/recommended: not in the contract's schema, but hcloud-python >= 2.27 requires them.
            "locations": [{"id": loc["id"], "name": loc["name"], "deprecation": None,
                           "available": True, "recommended": True} for loc in LOCATIONS]}


SERVER_TYPES = [_server_type(r) for r in _SERVER_TYPES]

DATACENTERS = [
    {"id": 4, "name": "fsn1-dc14", "description": "Falkenstein 1 virtual DC 14", "location": LOCATIONS[0]},
    {"id": 2, "name": "nbg1-dc3", "description": "Nuremberg 1 virtual DC 3", "location": LOCATIONS[1]},
    {"id": 3, "name": "hel1-dc2", "description": "Helsinki 1 virtual DC 2", "location": LOCATIONS[2]},
]
for _dc in DATACENTERS:
    _ids = [st["id"] for st in SERVER_TYPES]
    _dc["server_types"] = {"supported": _ids, "available": _ids, "available_for_migration": _ids}


def _image(iid: int, name: str, flavor: str, version: str, arch: str) -> dict[str, Any]:
    pretty = {"ubuntu": "Ubuntu", "debian": "Debian"}[flavor]
    return {"id": iid, "type": "system", "status": "available", "name": name,
            "description": f"{pretty} {version}", "image_size": None, "disk_size": 5,
            "created": "2024-04-25T12:00:00+00:00", "created_from": None, "bound_to": None,
            "os_flavor": flavor, "os_version": version, "rapid_deploy": True,
            "protection": {"delete": False}, "deprecated": None, "deleted": None, "labels": {},
            "architecture": arch}


IMAGES = [
    _image(161547269, "ubuntu-24.04", "ubuntu", "24.04", "x86"),
    _image(161547270, "ubuntu-24.04", "ubuntu", "24.04", "arm"),
    _image(67794396, "ubuntu-22.04", "ubuntu", "22.04", "x86"),
    _image(103907373, "ubuntu-22.04", "ubuntu", "22.04", "arm"),
    _image(114690387, "debian-12", "debian", "12", "x86"),
    _image(114690389, "debian-12", "debian", "12", "arm"),
]


def _lookup(items: list[dict[str, Any]], ident: object, *, arch: str | None = None) -> dict[str, Any] | None:
    """Find a catalog entry by ID (int or digit string) or name (optionally of one architecture)."""
    for item in items:
        if str(item["id"]) == str(ident) or (item.get("name") == ident
                                              and (arch is None or item.get("architecture") == arch)):
            return item
    return None


# ------------------------------------------------------------------------------------------------
# actions
# ------------------------------------------------------------------------------------------------
@dataclass
class Action:
    """An asynchronous task; finishes lazily (see :meth:`HcloudStandIn._advance`)."""

    id: int
    command: str
    resources: list[tuple[str, int]]
    started: str
    ready_at: float
    polls_left: int
    failure: tuple[str, str] | None = None
    on_success: Callable[[], None] | None = None
    on_error: Callable[[], None] | None = None
    status: str = "running"
    progress: int = 0
    finished: str | None = None
    error: dict[str, str] | None = None

    def concerns(self, kind: str, rid: int | None = None) -> bool:
        return any(t == kind and (rid is None or i == rid) for t, i in self.resources)

    def finish(self) -> None:
        """Move to ``success`` (running the side effect) or ``error``."""
        self.finished, self.progress = now_iso(), 100
        if self.failure:
            self.status = "error"
            self.error = {"code": self.failure[0], "message": self.failure[1]}
            if self.on_error:
                self.on_error()
        else:
            self.status = "success"
            if self.on_success:
                self.on_success()

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "command": self.command, "status": self.status, "progress": self.progress,
                "started": self.started, "finished": self.finished, "error": self.error,
                "resources": [{"id": i, "type": t} for t, i in self.resources]}


# Per-resource action endpoints -> (resource kind, index into HcloudStandIn._resource_actions()).
_ACTION_ROUTES: dict[str, tuple[str, int]] = {
    f"{verb}": (kind, index)
    for kind, verbs in {
        "server": ("list_server_actions", "get_server_action", "list_actions_for_server", "get_action_for_server"),
        "firewall": ("list_firewall_actions", "get_firewall_action", "list_actions_for_firewall",
                     "get_action_for_firewall"),
        "network": ("list_network_actions", "get_network_action", "list_actions_for_network",
                    "get_action_for_network"),
        "primary_ip": ("list_primary_ip_actions", "get_primary_ip_action", "list_actions_for_primary_ip",
                       "get_action_for_primary_ip"),
    }.items()
    for index, verb in enumerate(verbs)
}

# ------------------------------------------------------------------------------------------------
# the stand-in
# ------------------------------------------------------------------------------------------------
Handler = Callable[[Request, Operation], tuple[int, Any]]


class HcloudStandIn(StandIn):
    """Hetzner Cloud API v1 stand-in (endpoint: <url>/v1)."""

    name = "hcloud"

    def __init__(self, token: str = "test-token", port: int = 0, today: date = TODAY) -> None:
        self.today = today
        self.contract = hcloud_contract(today)
        removals = hcloud_removals(today)
        # request fields the vendor refuses now, per request schema; response fields it no longer sends
        self.refused_fields = {name: removed_names(list(removals), name)
                               for name in ("create_server_request", "create_primary_ip_request")}
        self.server_removed = removed_names(list(removals), "server")
        # the Primary IP schema is inline in its answers: every copy of it loses the same names
        self.primary_ip_removed = {r.name for r in removals if "primary_ip" in r.owner and "request" not in r.owner}
        self.gone = {op: change for change in changes_in_force(today) if change.kind == "gone"
                     for op in change.operations}
        self.action_delay = 0.0
        self.action_polls = 0
        self.firewall_apply_delay = 0.0
        self.unknown_totals = False
        self.addresses: dict[str, str] = {}
        # The lab's machines (lab.machines.DockerMachines): servers become lab node containers.
        self.machines: Any = None
        self._link = ""
        super().__init__(token=token, port=port)

    # -- state -------------------------------------------------------------------------------
    def _initial_state(self) -> None:
        self._ids = itertools.count(1001)
        self._action_ids = itertools.count(1)
        self._v4_hosts = itertools.count(10)
        self._v6_nets = itertools.count(1)
        self.servers: dict[int, dict[str, Any]] = {}
        self.ssh_keys: dict[int, dict[str, Any]] = {}
        self.placement_groups: dict[int, dict[str, Any]] = {}
        self.firewalls: dict[int, dict[str, Any]] = {}
        self.networks: dict[int, dict[str, Any]] = {}
        self.primary_ips: dict[int, dict[str, Any]] = {}
        self.actions: dict[int, Action] = {}
        self._failures: dict[str, tuple[str, str]] = {}
        self._budget = float(RATE_LIMIT)
        self._budget_at = time.monotonic()

    def reset(self) -> None:
        """Forget everything, including registered addresses and action timing."""
        super().reset()
        self.addresses.clear()
        self.action_delay, self.action_polls, self.firewall_apply_delay = 0.0, 0, 0.0
        self.unknown_totals = False

    def register_address(self, name: str, ipv4: str) -> None:
        """Give the server called ``name`` (now, or whenever it is created) the public IPv4 ``ipv4``."""
        ipaddress.IPv4Address(ipv4)
        with self._lock:
            self.addresses[name] = ipv4
            for server in self.servers.values():
                pip = self._assigned(server["id"], "ipv4")
                if server["name"] == name and pip is not None:
                    pip["ip"] = ipv4
                    pip["dns_ptr"] = [{"ip": ipv4, "dns_ptr": f"static.{ipv4}.clients.your-server.de"}]
                    self._sync_public_net(server)

    def fail_next_action(self, command: str, code: str = "action_failed", message: str = "Action failed") -> None:
        """Make the next action with this ``command`` (``create_server``, ``start_server`` ...) end in error."""
        with self._lock:
            self._failures[command] = (code, message)

    def control(self, req: Request, what: str) -> Response:
        """Extra control endpoint: ``POST /_standin/addresses {"name", "ipv4"}``."""
        if req.method == "POST" and what == "addresses":
            spec = req.body if isinstance(req.body, dict) else {}
            try:
                self.register_address(str(spec["name"]), str(spec["ipv4"]))
            except (KeyError, ValueError) as exc:
                return Response(400, {"error": f"need name and a valid ipv4: {exc}"})
            return Response(204)
        if req.method == "POST" and what == "action_timing":
            spec = req.body if isinstance(req.body, dict) else {}
            self.action_delay = float(spec.get("delay", 0))
            self.action_polls = int(spec.get("polls", 0))
            self.firewall_apply_delay = float(spec.get("firewall_apply", 0))
            return Response(204)
        if req.method == "POST" and what == "pagination":
            spec = req.body if isinstance(req.body, dict) else {}
            self.unknown_totals = bool(spec.get("unknown_totals", False))
            return Response(204)
        return super().control(req, what)

    # -- vendor answers ----------------------------------------------------------------------
    def _rate_headers(self, remaining: int | None = None) -> dict[str, str]:
        """RateLimit-* headers; the budget refills one request per second like the vendor's."""
        now = time.monotonic()
        self._budget = min(RATE_LIMIT, self._budget + (now - self._budget_at))
        self._budget_at = now
        if remaining is None:
            self._budget = max(0.0, self._budget - 1)
            remaining = int(self._budget)
        reset = int(time.time()) + (RATE_LIMIT - remaining)
        return {"RateLimit-Limit": str(RATE_LIMIT), "RateLimit-Remaining": str(remaining),
                "RateLimit-Reset": str(reset), "X-Correlation-Id": secrets.token_hex(8)}

    def _error(self, err: ApiError, remaining: int | None = None) -> Response:
        return Response(err.status, err.body(), self._rate_headers(remaining))

    def auth_failure(self, req: Request) -> Response | None:
        if req.headers.get("authorization", "") == f"Bearer {self.token}":
            return None
        return self._error(ApiError(401, "unauthorized", "unable to authenticate"))

    def fault_response(self, kind: str) -> Response:
        faults = {
            "rate_limit": ApiError(429, "rate_limit_exceeded", "limit of 3600 requests per hour reached"),
            "server_error": ApiError(500, "server_error", "internal server error"),
            "unavailable": ApiError(503, "unavailable", "service temporarily unavailable"),
            "conflict": ApiError(409, "conflict", "the resource has changed during the request, please retry"),
            "locked": ApiError(423, "locked", "resource is locked by another action"),
        }
        if kind not in faults:
            raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(faults)}")
        return self._error(faults[kind], remaining=0 if kind == "rate_limit" else None)

    # -- request path ------------------------------------------------------------------------
    def dispatch(self, req: Request) -> Response:
        self._advance()
        op = self.contract.find(req.method, req.path)
        self._link = ""
        try:
            if op is None:
                raise ApiError(404, "not_found", "not found")
            status, body = self._route(req, op)
        except ApiError as err:
            status, body = err.status, err.body()
        self._audit(req, op, status, body)
        headers = self._rate_headers()
        if self._link and status < 400:
            headers["Link"] = self._link
        return Response(status, body, headers)

    def _route(self, req: Request, op: Operation) -> tuple[int, Any]:
        change = self.gone.get(op.operation_id)
        if change is not None:
            raise ApiError(410, "deprecated_api_endpoint", "API functionality was removed",
                           {"announcement": change.source.split(";")[0]})
        self._refuse_removed_fields(req, op)
        req = dataclasses.replace(req, query=normalise_bool_query(self.contract, op, req.query))
        problems = self.contract.check_request(op, req.query, req.body, req.raw_body, req.content_type)
        if "request body is not valid JSON" in problems:
            raise ApiError(400, "json_error", "invalid JSON in request body")
        if problems:
            raise invalid_input(_problem_fields(problems))
        self._check_paging(req)
        handler = self._handler(op.operation_id)
        if handler is None:
            self.contract_violations.append(f"{op.method} {op.template}: not implemented by the stand-in")
            raise ApiError(501, "not_implemented", f"{op.operation_id} is not implemented by the stand-in")
        return handler(req, op)

    def _handler(self, operation_id: str) -> Handler | None:
        """The method answering an operation: ``op_<operationId>`` or a shared action handler."""
        if operation_id in _ACTION_ROUTES:
            kind, index = _ACTION_ROUTES[operation_id]
            return self._resource_actions(kind)[index]
        handler: Handler | None = getattr(self, f"op_{operation_id}", None)
        return handler

    def _audit(self, req: Request, op: Operation | None, status: int, body: Any) -> None:
        """Check our own answer against the contract; record departures."""
        if status >= 400:
            problems = self.contract.schema_errors("error_response", ERROR_SCHEMA, body)
        elif op is not None:
            problems = self.contract.check_response(op, status, body)
        else:
            problems = [f"success answer {status} for an unknown operation"]
        self.contract_violations.extend(f"{req.method} {req.path} -> {status}: {p}" for p in problems)

    def _refuse_removed_fields(self, req: Request, op: Operation) -> None:
        """A request that still sends a property the vendor removed is refused, naming it."""
        ref = (((op.spec.get("requestBody") or {}).get("content") or {}).get("application/json") or {}).get(
            "schema", {}).get("$ref", "")
        removed = self.refused_fields.get(ref.rsplit("/", 1)[-1], set())
        sent = sorted(removed & set(req.body)) if isinstance(req.body, dict) else []
        if sent:
            raise invalid_input({n: [f"{n} was removed from the API; use location instead "
                                     "(https://docs.hetzner.cloud/changelog#2025-12-16-phasing-out-datacenters)"]
                                 for n in sent})

    @staticmethod
    def _check_paging(req: Request) -> None:
        for name, lowest, highest in (("page", 1, None), ("per_page", 1, MAX_PER_PAGE)):
            raw = req.q(name)
            if raw is None:
                continue
            value = int(raw)
            if value < lowest or (highest is not None and value > highest):
                limit = f"between {lowest} and {highest}" if highest else f"at least {lowest}"
                raise invalid_input({name: [f"must be {limit}"]})

    # -- actions -----------------------------------------------------------------------------
    def _advance(self) -> None:
        """Finish every running action whose time has come and whose polls are used up."""
        now = time.monotonic()
        for action in self.actions.values():
            if action.status == "running" and action.polls_left <= 0 and now >= action.ready_at:
                action.finish()

    def _new_action(self, command: str, resources: list[tuple[str, int]],
                    on_success: Callable[[], None] | None = None,
                    on_error: Callable[[], None] | None = None, *,
                    delay: float | None = None, polls: int | None = None) -> Action:
        action = Action(next(self._action_ids), command, resources, now_iso(),
                        ready_at=time.monotonic() + (self.action_delay if delay is None else delay),
                        polls_left=self.action_polls if polls is None else polls,
                        failure=self._failures.pop(command, None), on_success=on_success, on_error=on_error)
        self.actions[action.id] = action
        return action

    def running_on(self, kind: str, rid: int) -> list[Action]:
        """The actions still running on one resource."""
        return [a for a in self.actions.values() if a.status == "running" and a.concerns(kind, rid)]

    def _unlocked(self, server: dict[str, Any]) -> None:
        """Refuse a new action on a server while another one runs on it (423 ``locked``)."""
        if self.running_on("server", server["id"]):
            raise ApiError(423, "locked", "server is locked by another action")

    def _selector_firewalls(self, labels: dict[str, str]) -> set[int]:
        """Firewalls that apply to a server with ``labels`` through one of their label selectors."""
        return {fw["id"] for fw in self.firewalls.values()
                if any(t["type"] == "label_selector"
                       and selector_matches(parse_label_selector(t["label_selector"]["selector"]), labels)
                       for t in fw["applied_to"])}

    def _follow_selectors(self, sid: int, before: set[int], after: set[int]) -> None:
        """A server that comes to match (or stops matching) a firewall's label selector gets an
        ``apply_firewall`` (``remove_firewall``) action, nobody polls it, it takes ``firewall_apply_delay``."""
        for fid in sorted(after - before):
            self._new_action("apply_firewall", [("firewall", fid), ("server", sid)],
                             delay=self.firewall_apply_delay, polls=0)
        for fid in sorted(before - after):
            self._new_action("remove_firewall", [("firewall", fid), ("server", sid)],
                             delay=self.firewall_apply_delay, polls=0)

    def _poll(self, action: Action) -> dict[str, Any]:
        """An action as a poll sees it (a poll uses up one of ``action_polls``)."""
        if action.status == "running":
            if action.polls_left > 0:
                action.polls_left -= 1
            elif time.monotonic() >= action.ready_at:
                action.finish()
        return action.as_json()

    def _action_by_id(self, raw: str, kind: str | None = None, rid: int | None = None) -> Action:
        action = self.actions.get(_int_id(raw))
        if action is None or (kind is not None and not action.concerns(kind, rid)):
            raise not_found("action", raw)
        return action

    def _action_list(self, req: Request, actions: Iterable[Action]) -> tuple[int, Any]:
        wanted_status = set(req.query.get("status", []))
        items = [a for a in actions if not wanted_status or a.status in wanted_status]
        page = self._paginate(req, self._sorted(req, items, lambda a: a.as_json()))
        return 200, {"actions": [self._poll(a) for a in page["items"]], "meta": page["meta"]}

    def op_get_action(self, req: Request, op: Operation) -> tuple[int, Any]:
        return 200, {"action": self._poll(self._action_by_id(op.params["id"]))}

    def op_get_multiple_actions(self, req: Request, op: Operation) -> tuple[int, Any]:
        ids = [int(i) for i in req.query.get("id", [])]
        return self._action_list(req, [self.actions[i] for i in ids if i in self.actions])

    def _resource_actions(self, kind: str) -> tuple[Handler, Handler, Handler, Handler]:
        """list-all, get-one, list-for-resource and get-for-resource handlers of one resource kind."""
        def list_all(req: Request, op: Operation) -> tuple[int, Any]:
            ids = {int(i) for i in req.query.get("id", [])}
            return self._action_list(req, [a for a in self.actions.values()
                                           if a.concerns(kind) and (not ids or a.id in ids)])

        def get_one(req: Request, op: Operation) -> tuple[int, Any]:
            return 200, {"action": self._poll(self._action_by_id(op.params["id"], kind))}

        def list_for(req: Request, op: Operation) -> tuple[int, Any]:
            rid = self._get(kind, op.params["id"])["id"]
            return self._action_list(req, [a for a in self.actions.values() if a.concerns(kind, rid)])

        def get_for(req: Request, op: Operation) -> tuple[int, Any]:
            rid = self._get(kind, op.params["id"])["id"]
            return 200, {"action": self._poll(self._action_by_id(op.params["action_id"], kind, rid))}
        return list_all, get_one, list_for, get_for

    # -- generic collection helpers -------------------------------------------------------------
    def _store(self, kind: str) -> dict[int, dict[str, Any]]:
        return {"server": self.servers, "ssh_key": self.ssh_keys, "placement_group": self.placement_groups,
                "firewall": self.firewalls, "network": self.networks, "primary_ip": self.primary_ips}[kind]

    def _get(self, kind: str, raw: object) -> dict[str, Any]:
        item = self._store(kind).get(_int_id(raw))
        if item is None:
            raise not_found(kind.replace("_", " "), raw)
        return item

    def _unique_name(self, kind: str, name: str, except_id: int | None = None) -> None:
        if any(i["name"] == name and i["id"] != except_id for i in self._store(kind).values()):
            raise uniqueness("name")

    @staticmethod
    def _labels(body: dict[str, Any], default: dict[str, str] | None = None) -> dict[str, str]:
        labels = body.get("labels", default if default is not None else {})
        problems = label_errors(labels)
        # "The `hetzner.cloud/` prefix is reserved and cannot be used." (API reference, Labels)
        problems += [f"label key '{k}': the hetzner.cloud/ prefix is reserved" for k in labels
                     if k.startswith(RESERVED_LABEL_PREFIX)]
        if problems:
            raise invalid_input({"labels": problems})
        return dict(labels)

    def _filtered(self, req: Request, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Apply the ``name`` and ``label_selector`` filters every list endpoint shares."""
        out = list(items)
        name = req.q("name")
        if name is not None:
            out = [i for i in out if i.get("name") == name]
        selector = req.q("label_selector")
        if selector is not None:
            try:
                reqs = parse_label_selector(selector)
            except LabelSelectorError as exc:
                raise invalid_input({"label_selector": [str(exc)]}) from None
            out = [i for i in out if selector_matches(reqs, i.get("labels") or {})]
        return out

    @staticmethod
    def _sorted(req: Request, items: list[Any], view: Callable[[Any], dict[str, Any]] = lambda x: x) -> list[Any]:
        """Sort by the ``sort`` parameters (``field``, ``field:asc``, ``field:desc``); default by id."""
        out = sorted(items, key=lambda i: view(i)["id"])
        for spec in reversed(req.query.get("sort", [])):
            key, _, order = spec.partition(":")
            out.sort(key=lambda i: (view(i).get(key) is None, view(i).get(key) or ""),
                     reverse=order == "desc")
        return out

    def _paginate(self, req: Request, items: list[Any]) -> dict[str, Any]:
        """One page of ``items``, the vendor's ``meta.pagination`` and its ``Link`` header.

        With ``unknown_totals``, ``last_page`` and ``total_entries`` are null and the Link header has
        no ``rel=last``, as the vendor answers when it does not know the total.
        """
        page = int(req.q("page") or 1)
        per_page = int(req.q("per_page") or DEFAULT_PER_PAGE)
        total = len(items)
        last = max(1, -(-total // per_page))
        previous_page = page - 1 if page > 1 else None
        next_page = page + 1 if page < last else None
        meta = {"pagination": {"page": page, "per_page": per_page, "previous_page": previous_page,
                               "next_page": next_page,
                               "last_page": None if self.unknown_totals else last,
                               "total_entries": None if self.unknown_totals else total}}
        rels = [("prev", previous_page), ("next", next_page)]
        if not self.unknown_totals:
            rels.append(("last", last))
        self._link = ", ".join(f'<{self._page_url(req, n)}>; rel="{rel}"' for rel, n in rels if n is not None)
        return {"items": items[(page - 1) * per_page: page * per_page], "meta": meta}

    def _page_url(self, req: Request, page: int) -> str:
        query = {k: v for k, v in req.query.items() if k != "page"}
        query["page"] = [str(page)]
        host = req.headers.get("host") or f"127.0.0.1:{self._port}"
        return f"http://{host}{req.path}?{urlencode(query, doseq=True)}"

    def _list(self, req: Request, key: str, items: Iterable[dict[str, Any]],
              view: Callable[[dict[str, Any]], dict[str, Any]] = lambda x: x) -> tuple[int, Any]:
        page = self._paginate(req, self._sorted(req, self._filtered(req, items), view))
        return 200, {key: [view(i) for i in page["items"]], "meta": page["meta"]}

    # -- catalogs ----------------------------------------------------------------------------
    @staticmethod
    def _catalog_item(items: list[dict[str, Any]], kind: str, raw: str) -> dict[str, Any]:
        item = next((i for i in items if str(i["id"]) == str(_int_id(raw))), None)
        if item is None:
            raise not_found(kind, raw)
        return item

    def op_list_server_types(self, req: Request, op: Operation) -> tuple[int, Any]:
        return self._list(req, "server_types", SERVER_TYPES)

    def op_get_server_type(self, req: Request, op: Operation) -> tuple[int, Any]:
        return 200, {"server_type": self._catalog_item(SERVER_TYPES, "server type", op.params["id"])}

    def op_list_locations(self, req: Request, op: Operation) -> tuple[int, Any]:
        return self._list(req, "locations", LOCATIONS)

    def op_get_location(self, req: Request, op: Operation) -> tuple[int, Any]:
        return 200, {"location": self._catalog_item(LOCATIONS, "location", op.params["id"])}

    def op_list_data_centers(self, req: Request, op: Operation) -> tuple[int, Any]:
        status, body = self._list(req, "datacenters", DATACENTERS)
        body["recommendation"] = DATACENTERS[0]["id"]
        return status, body

    def op_get_data_center(self, req: Request, op: Operation) -> tuple[int, Any]:
        return 200, {"datacenter": self._catalog_item(DATACENTERS, "datacenter", op.params["id"])}

    def op_list_images(self, req: Request, op: Operation) -> tuple[int, Any]:
        images = [i for i in IMAGES if self._image_wanted(req, i)]
        return self._list(req, "images", images)

    @staticmethod
    def _image_wanted(req: Request, image: dict[str, Any]) -> bool:
        for param in ("type", "status", "architecture"):
            wanted = req.query.get(param)
            if wanted and image[param] not in wanted:
                return False
        if req.query.get("bound_to"):
            return False  # system images are bound to nothing
        return image["deprecated"] is None or req.q("include_deprecated") == "true"

    def op_get_image(self, req: Request, op: Operation) -> tuple[int, Any]:
        return 200, {"image": self._catalog_item(IMAGES, "image", op.params["id"])}

    # -- SSH keys ----------------------------------------------------------------------------
    def op_list_ssh_keys(self, req: Request, op: Operation) -> tuple[int, Any]:
        fingerprint = req.q("fingerprint")
        keys = [k for k in self.ssh_keys.values() if fingerprint is None or k["fingerprint"] == fingerprint]
        return self._list(req, "ssh_keys", keys)

    def op_get_ssh_key(self, req: Request, op: Operation) -> tuple[int, Any]:
        return 200, {"ssh_key": self._get("ssh_key", op.params["id"])}

    def op_create_ssh_key(self, req: Request, op: Operation) -> tuple[int, Any]:
        body = req.body
        self._unique_name("ssh_key", body["name"])
        try:
            fingerprint = ssh_fingerprint(body["public_key"])
        except ValueError as exc:
            raise invalid_input({"public_key": [str(exc)]}) from None
        if any(k["fingerprint"] == fingerprint for k in self.ssh_keys.values()):
            raise ApiError(409, "uniqueness_error", "SSH key with the same fingerprint already exists",
                           {"fields": [{"name": "public_key"}]})
        key = {"id": next(self._ids), "name": body["name"], "fingerprint": fingerprint,
               "public_key": body["public_key"].strip(), "labels": self._labels(body), "created": now_iso()}
        self.ssh_keys[key["id"]] = key
        return 201, {"ssh_key": key}

    def op_replace_ssh_key(self, req: Request, op: Operation) -> tuple[int, Any]:
        return 200, {"ssh_key": self._rename_relabel("ssh_key", op.params["id"], req.body or {})}

    def op_delete_ssh_key(self, req: Request, op: Operation) -> tuple[int, Any]:
        del self.ssh_keys[self._get("ssh_key", op.params["id"])["id"]]
        return 204, None

    def _rename_relabel(self, kind: str, raw: str, body: dict[str, Any]) -> dict[str, Any]:
        """The PUT every resource shares: a new name (unique) and/or a new label set."""
        item = self._get(kind, raw)
        if "name" in body:
            if kind == "server" and not _HOSTNAME.match(body["name"]):
                raise invalid_input({"name": ["must be a valid hostname (RFC 1123)"]})
            self._unique_name(kind, body["name"], item["id"])
        labels = self._labels(body, item["labels"])
        if "name" in body:
            item["name"] = body["name"]
        item["labels"] = labels
        return item

    # -- placement groups --------------------------------------------------------------------
    def op_list_placement_groups(self, req: Request, op: Operation) -> tuple[int, Any]:
        types = req.query.get("type")
        groups = [g for g in self.placement_groups.values() if not types or g["type"] in types]
        return self._list(req, "placement_groups", groups)

    def op_get_placementgroup(self, req: Request, op: Operation) -> tuple[int, Any]:
        return 200, {"placement_group": self._get("placement_group", op.params["id"])}

    def op_create_placementgroup(self, req: Request, op: Operation) -> tuple[int, Any]:
        body = req.body
        self._unique_name("placement_group", body["name"])
        group = {"id": next(self._ids), "name": body["name"], "type": body["type"],
                 "labels": self._labels(body), "servers": [], "created": now_iso()}
        self.placement_groups[group["id"]] = group
        return 201, {"placement_group": group, "action": None}

    def op_replace_placementgroup(self, req: Request, op: Operation) -> tuple[int, Any]:
        return 200, {"placement_group": self._rename_relabel("placement_group", op.params["id"], req.body or {})}

    def op_delete_placementgroup(self, req: Request, op: Operation) -> tuple[int, Any]:
        group = self._get("placement_group", op.params["id"])
        if group["servers"]:
            raise ApiError(422, "resource_in_use", "placement group still has servers")
        del self.placement_groups[group["id"]]
        return 204, None

    # -- servers -----------------------------------------------------------------------------
    def server_json(self, server: dict[str, Any]) -> dict[str, Any]:
        """A server as the vendor shows it, with firewalls and placement group resolved now."""
        out = {k: v for k, v in server.items() if not k.startswith("_")}
        out["public_net"] = dict(server["public_net"])
        pending = {i for a in self.running_on("server", server["id"]) if a.command == "apply_firewall"
                   for t, i in a.resources if t == "firewall"}
        out["public_net"]["firewalls"] = [{"id": f["id"], "status": "pending" if f["id"] in pending else "applied"}
                                          for f in self.firewalls.values() if server["id"] in self._fw_servers(f)]
        pg = server["_placement_group"]
        out["placement_group"] = self.placement_groups.get(pg) if pg else None
        out["private_net"] = [dict(n) for n in server["private_net"]]
        if "datacenter" not in self.server_removed:  # before 2 July 2026 the vendor still sent it
            out["datacenter"] = next(dc for dc in DATACENTERS if dc["location"]["id"] == server["location"]["id"])
        return out

    def op_list_servers(self, req: Request, op: Operation) -> tuple[int, Any]:
        statuses = req.query.get("status")
        servers = [s for s in self.servers.values() if not statuses or s["status"] in statuses]
        return self._list(req, "servers", servers, self.server_json)

    def op_get_server(self, req: Request, op: Operation) -> tuple[int, Any]:
        return 200, {"server": self.server_json(self._get("server", op.params["id"]))}

    def op_replace_server(self, req: Request, op: Operation) -> tuple[int, Any]:
        server = self._get("server", op.params["id"])
        before = self._selector_firewalls(server["labels"])
        server = self._rename_relabel("server", op.params["id"], req.body or {})
        self._follow_selectors(server["id"], before, self._selector_firewalls(server["labels"]))
        return 200, {"server": self.server_json(server)}

    def op_create_server(self, req: Request, op: Operation) -> tuple[int, Any]:
        body = req.body
        server = self._new_server(body)
        sid = server["id"]
        self.servers[sid] = server
        self._give_public_net(server, body.get("public_net") or {})
        self._join_placement_group(server, server["_placement_group"])
        for net_id in body.get("networks", []):
            self._attach(server, self._get("network", net_id), None, [])
        for fw in body.get("firewalls", []):
            self.firewalls[fw["firewall"]]["applied_to"].append({"type": "server", "server": {"id": sid}})
        start = body.get("start_after_create", True)
        if self.machines is not None:
            pip = self._assigned(sid, "ipv4")
            private = [(self.networks[p["network"]], p["ip"]) for p in server["private_net"]]
            try:
                self.machines.create(server, None if pip is None else pip["ip"], private, body.get("user_data"), start)
            except RuntimeError as exc:  # the hypervisor failed: the vendor answers 500 and keeps no server
                self._leave_placement_group(server)
                for net in self.networks.values():
                    if sid in net["servers"]:
                        net["servers"].remove(sid)
                for pip in [p for p in self.primary_ips.values() if p["assignee_id"] == sid]:
                    pip["assignee_id"] = None
                    if pip["auto_delete"]:
                        del self.primary_ips[pip["id"]]
                del self.servers[sid]
                raise ApiError(500, "server_error", f"lab machine: {exc}") from exc
        create = self._new_action("create_server", [("server", sid)],
                                  on_success=lambda: self._set_status(sid, "starting" if start else "off"),
                                  on_error=lambda: self._set_status(sid, "off"))
        self._follow_selectors(sid, set(), self._selector_firewalls(server["labels"]))
        next_actions = []
        if start:
            next_actions.append(self._new_action("start_server", [("server", sid)],
                                                 on_success=lambda: self._set_status(sid, "running"),
                                                 on_error=lambda: self._set_status(sid, "off")))
        password = None if body.get("ssh_keys") else secrets.token_urlsafe(15)
        return 201, {"server": self.server_json(server), "action": create.as_json(),
                     "next_actions": [a.as_json() for a in next_actions], "root_password": password}

    def _set_status(self, sid: int, status: str) -> None:
        if sid in self.servers:
            self.servers[sid]["status"] = status

    def _new_server(self, body: dict[str, Any]) -> dict[str, Any]:
        """Validate a create request and build the stored server (raises the vendor's errors)."""
        name = body["name"]
        if not _HOSTNAME.match(name):
            raise invalid_input({"name": ["must be a valid hostname (RFC 1123)"]})
        self._unique_name("server", name)
        labels = self._labels(body)
        stype = _lookup(SERVER_TYPES, body["server_type"])
        if stype is None:
            raise invalid_input({"server_type": ["server type not found"]})
        image = _lookup(IMAGES, body["image"], arch=stype["architecture"])
        if image is None:
            raise invalid_input({"image": ["image not found"]})
        if image["architecture"] != stype["architecture"]:
            raise invalid_input({"image": ["image architecture does not match the server type"]})
        location = self._placement(body)
        self._check_references(body)
        self._check_given_primary_ips(body.get("public_net") or {}, location)
        return {"id": next(self._ids), "name": name, "status": "initializing", "created": now_iso(),
                "public_net": {"ipv4": None, "ipv6": None, "floating_ips": [], "firewalls": []},
                "private_net": [], "server_type": stype, "location": location, "image": image, "iso": None, "rescue_enabled": False,
                "locked": False, "backup_window": None, "outgoing_traffic": 0, "ingoing_traffic": 0,
                "included_traffic": 21990232555520, "protection": {"delete": False, "rebuild": False},
                "labels": labels, "volumes": [], "load_balancers": [], "primary_disk_size": stype["disk"],
                "_placement_group": body.get("placement_group")}

    @staticmethod
    def _placement(body: dict[str, Any]) -> dict[str, Any]:
        """The location a new server lands in (``location``, or before July 2026 a ``datacenter``'s;
        nbg1 by default). Once ``datacenter`` is removed, :meth:`_refuse_removed_fields` refuses it."""
        if body.get("datacenter") is not None and body.get("location") is not None:
            raise invalid_input({"location": ["location and datacenter are mutually exclusive"]})
        if body.get("datacenter") is not None:
            dc = _lookup(DATACENTERS, body["datacenter"])
            if dc is None:
                raise invalid_input({"datacenter": ["datacenter not found"]})
            return dc["location"]
        location = _lookup(LOCATIONS, body.get("location") or "nbg1")
        if location is None:
            raise invalid_input({"location": ["location not found"]})
        return location

    def _check_references(self, body: dict[str, Any]) -> None:
        """SSH keys, networks, firewalls and the placement group named in a create request exist."""
        for ident in body.get("ssh_keys", []):
            if not any(str(k["id"]) == str(ident) or k["name"] == ident for k in self.ssh_keys.values()):
                raise invalid_input({"ssh_keys": [f"SSH key '{ident}' not found"]})
        for net_id in body.get("networks", []):
            if net_id not in self.networks:
                raise invalid_input({"networks": [f"network {net_id} not found"]})
        for fw in body.get("firewalls", []):
            if fw["firewall"] not in self.firewalls:
                raise invalid_input({"firewalls": [f"firewall {fw['firewall']} not found"]})
        pg = body.get("placement_group")
        if pg is not None:
            if pg not in self.placement_groups:
                raise invalid_input({"placement_group": [f"placement group {pg} not found"]})
            if len(self.placement_groups[pg]["servers"]) >= 10:
                raise ApiError(412, "placement_error", "spread placement group is full (10 servers)")
        if body.get("volumes"):
            raise invalid_input({"volumes": ["volumes are not supported by the stand-in"]})

    def _check_given_primary_ips(self, pnet: dict[str, Any], location: dict[str, Any]) -> None:
        """``public_net.ipv4``/``ipv6`` of a create request name usable Primary IPs (create-server's
        operation specific errors: ``primary_ip_assigned``, ``primary_ip_datacenter_mismatch``,
        ``primary_ip_version_mismatch``)."""
        for family in ("ipv4", "ipv6"):
            pid = pnet.get(family)
            if pid is None:
                continue
            if pnet.get(f"enable_{family}", True) is False:
                raise invalid_input({f"public_net.{family}": [f"a Primary IP is given but enable_{family} is false"]})
            pip = self.primary_ips.get(pid)
            if pip is None:
                raise invalid_input({f"public_net.{family}": [f"primary ip {pid} not found"]})
            if pip["type"] != family:
                raise ApiError(422, "primary_ip_version_mismatch",
                               f"primary ip {pid} is of type {pip['type']}, not {family}")
            if pip["assignee_id"] is not None:
                raise ApiError(422, "primary_ip_assigned", f"primary ip {pid} is already assigned to a server")
            if pip["location"]["id"] != location["id"]:
                raise ApiError(422, "primary_ip_datacenter_mismatch",
                               f"primary ip {pid} is in {pip['location']['name']}, the server in {location['name']}")

    def _give_public_net(self, server: dict[str, Any], pnet: dict[str, Any]) -> None:
        """Assign the given Primary IPs; where none is given (and the family is enabled) one is
        created for the server with ``auto_delete`` true, as the vendor does."""
        for family in ("ipv4", "ipv6"):
            if pnet.get(family) is not None:
                pip = self.primary_ips[pnet[family]]
            elif pnet.get(f"enable_{family}", True):
                pip = self._new_primary_ip(f"primary_ip-{next(self._ids)}", family, server["location"], {}, True,
                                           server["name"])
                self.primary_ips[pip["id"]] = pip
            else:
                continue
            pip["assignee_id"] = server["id"]
        self._sync_public_net(server)

    def _assigned(self, sid: int, family: str) -> dict[str, Any] | None:
        return next((p for p in self.primary_ips.values() if p["assignee_id"] == sid and p["type"] == family), None)

    def _sync_public_net(self, server: dict[str, Any]) -> None:
        """The server's ``public_net.ipv4``/``ipv6`` as its assigned Primary IPs make them."""
        v4, v6 = self._assigned(server["id"], "ipv4"), self._assigned(server["id"], "ipv6")
        server["public_net"]["ipv4"] = None if v4 is None else {
            "id": v4["id"], "ip": v4["ip"], "blocked": v4["blocked"],
            "dns_ptr": v4["dns_ptr"][0]["dns_ptr"] if v4["dns_ptr"] else f"static.{v4['ip']}.clients.your-server.de"}
        server["public_net"]["ipv6"] = None if v6 is None else {
            "id": v6["id"], "ip": v6["ip"], "blocked": v6["blocked"], "dns_ptr": list(v6["dns_ptr"])}

    def _new_primary_ip(self, name: str, family: str, location: dict[str, Any], labels: dict[str, str],
                        auto_delete: bool, server_name: str | None = None) -> dict[str, Any]:
        """A Primary IP (not stored yet): a fresh address (or the one registered for ``server_name``)."""
        if family == "ipv4":
            ip = (self.addresses.get(server_name or "") or str(PUBLIC_V4[next(self._v4_hosts) % 244 + 10]))
            ptr = [{"ip": ip, "dns_ptr": f"static.{ip}.clients.your-server.de"}]
        else:
            ip = str(ipaddress.ip_network(f"{PUBLIC_V6.network_address + (next(self._v6_nets) << 64)}/64"))
            ptr = []
        return {"id": next(self._ids), "name": name, "type": family, "ip": ip, "location": location,
                "labels": labels, "auto_delete": auto_delete, "blocked": False, "created": now_iso(),
                "dns_ptr": ptr, "protection": {"delete": False}, "assignee_id": None, "assignee_type": "server"}

    def op_delete_server(self, req: Request, op: Operation) -> tuple[int, Any]:
        server = self._get("server", op.params["id"])
        if server["protection"]["delete"]:
            raise ApiError(423, "protected", "server is delete protected")
        self._unlocked(server)
        sid = server["id"]
        self._leave_placement_group(server)
        for net in self.networks.values():
            if sid in net["servers"]:
                net["servers"].remove(sid)
        for fw in self.firewalls.values():
            fw["applied_to"] = [a for a in fw["applied_to"] if a.get("server", {}).get("id") != sid]
        # "Any resources attached to the server (like ... Primary IPs ...) are detached"; those with
        # auto_delete go with it.
        for pip in [p for p in self.primary_ips.values() if p["assignee_id"] == sid]:
            pip["assignee_id"] = None
            if pip["auto_delete"]:
                del self.primary_ips[pip["id"]]
        server["status"] = "deleting"
        if self.machines is not None:
            self.machines.delete(server)
        action = self._new_action("delete_server", [("server", sid)])
        del self.servers[sid]
        return 200, {"action": action.as_json()}

    def _server_action(self, op: Operation, command: str, during: str | None = None,
                       after: str | None = None, effect: Callable[[], None] | None = None) -> tuple[int, Any]:
        """A power action: status ``during`` now, ``after`` once the action succeeds."""
        server = self._get("server", op.params["id"])
        self._unlocked(server)
        sid, before = server["id"], server["status"]
        if during:
            server["status"] = during

        def success() -> None:
            if after:
                self._set_status(sid, after)
            if effect:
                effect()
        action = self._new_action(command, [("server", sid)], on_success=success,
                                  on_error=lambda: self._set_status(sid, before))
        return 201, {"action": action.as_json()}

    def _machine(self, op: Operation, what: str) -> Callable[[], None] | None:
        """The lab machine's power change (``start``/``stop``/``restart``) once the action succeeds."""
        if self.machines is None:
            return None
        server = self._get("server", op.params["id"])
        return lambda: self.machines.power(server, what)

    def op_power_on_server(self, req: Request, op: Operation) -> tuple[int, Any]:
        return self._server_action(op, "start_server", "starting", "running", self._machine(op, "start"))

    def op_power_off_server(self, req: Request, op: Operation) -> tuple[int, Any]:
        return self._server_action(op, "stop_server", "stopping", "off", self._machine(op, "stop"))

    def op_shutdown_server(self, req: Request, op: Operation) -> tuple[int, Any]:
        return self._server_action(op, "shutdown_server", None, "off", self._machine(op, "stop"))

    def op_soft_reboot_server(self, req: Request, op: Operation) -> tuple[int, Any]:
        return self._server_action(op, "reboot_server", None, "running", self._machine(op, "restart"))

    def op_reset_server(self, req: Request, op: Operation) -> tuple[int, Any]:
        return self._server_action(op, "reset_server", None, "running", self._machine(op, "restart"))

    def op_change_server_protection(self, req: Request, op: Operation) -> tuple[int, Any]:
        server = self._get("server", op.params["id"])
        self._unlocked(server)
        body = req.body or {}
        delete = body.get("delete", server["protection"]["delete"])
        rebuild = body.get("rebuild", server["protection"]["rebuild"])
        if delete != rebuild:
            raise invalid_input({"rebuild": ["delete and rebuild must have the same value"]})
        server["protection"] = {"delete": delete, "rebuild": rebuild}
        return self._server_action(op, "change_protection")

    # -- placement group membership -------------------------------------------------------------
    def _join_placement_group(self, server: dict[str, Any], gid: int | None) -> None:
        if gid is not None:
            server["_placement_group"] = gid
            self.placement_groups[gid]["servers"].append(server["id"])

    def _leave_placement_group(self, server: dict[str, Any]) -> None:
        gid = server["_placement_group"]
        if gid in self.placement_groups and server["id"] in self.placement_groups[gid]["servers"]:
            self.placement_groups[gid]["servers"].remove(server["id"])
        server["_placement_group"] = None

    def op_add_server_to_placement_group(self, req: Request, op: Operation) -> tuple[int, Any]:
        server = self._get("server", op.params["id"])
        self._unlocked(server)
        group = self._get("placement_group", req.body["placement_group"])
        if server["status"] != "off":
            raise ApiError(412, "server_not_stopped", "the server must be stopped")
        if server["_placement_group"] is not None:
            raise ApiError(422, "server_already_in_placement_group", "server is already in a placement group")
        self._join_placement_group(server, group["id"])
        return self._server_action(op, "add_to_placement_group")

    def op_remove_from_placement_group(self, req: Request, op: Operation) -> tuple[int, Any]:
        server = self._get("server", op.params["id"])
        self._unlocked(server)
        if server["_placement_group"] is None:
            raise ApiError(422, "server_not_in_placement_group", "server is not in a placement group")
        self._leave_placement_group(server)
        return self._server_action(op, "remove_from_placement_group")

    # -- primary IPs -------------------------------------------------------------------------
    def primary_ip_json(self, pip: dict[str, Any]) -> dict[str, Any]:
        """A Primary IP as the vendor shows it (``datacenter`` only before it was removed)."""
        out = {k: v for k, v in pip.items() if not k.startswith("_")}
        out["labels"], out["protection"] = dict(pip["labels"]), dict(pip["protection"])
        out["dns_ptr"] = [dict(d) for d in pip["dns_ptr"]]
        if "datacenter" not in self.primary_ip_removed:  # before 2 July 2026 the vendor still sent it
            out["datacenter"] = next(dc for dc in DATACENTERS if dc["location"]["id"] == pip["location"]["id"])
        return out

    def op_list_primary_ips(self, req: Request, op: Operation) -> tuple[int, Any]:
        ip = req.q("ip")
        items = [p for p in self.primary_ips.values() if ip is None or p["ip"] == ip]
        return self._list(req, "primary_ips", items, self.primary_ip_json)

    def op_get_primary_ip(self, req: Request, op: Operation) -> tuple[int, Any]:
        return 200, {"primary_ip": self.primary_ip_json(self._get("primary_ip", op.params["id"]))}

    def _assignable(self, pip_type: str, server: dict[str, Any]) -> None:
        """A server can take a Primary IP of ``pip_type`` only when off and without one of that type."""
        self._unlocked(server)
        if server["status"] != "off":
            raise ApiError(422, "server_not_stopped", "the server is running, but needs to be powered off")
        if self._assigned(server["id"], pip_type) is not None:
            raise ApiError(422, f"server_has_{pip_type}", f"the server already has an {pip_type} address")

    def op_create_primary_ip(self, req: Request, op: Operation) -> tuple[int, Any]:
        body = req.body
        self._unique_name("primary_ip", body["name"])
        labels = self._labels(body)
        # "The location, datacenter and assignee_id/assignee_type attributes are mutually exclusive."
        # (datacenter itself is refused today, before this: see _refuse_removed_fields)
        assignee = body.get("assignee_id")
        if assignee is not None and body.get("location") is not None:
            raise invalid_input({"location": ["location and assignee_id are mutually exclusive"]})
        server = None
        if assignee is not None:
            if body.get("assignee_type") != "server":
                raise invalid_input({"assignee_type": ["assignee_type server is required with assignee_id"]})
            server = self._get("server", assignee)
            self._assignable(body["type"], server)
            location = server["location"]
        else:
            if body.get("location") is None:
                raise invalid_input({"location": ["location is required when the Primary IP is not assigned"]})
            found = _lookup(LOCATIONS, body["location"])
            if found is None:
                raise invalid_input({"location": ["location not found"]})
            location = found
        pip = self._new_primary_ip(body["name"], body["type"], location, labels, body.get("auto_delete", False))
        self.primary_ips[pip["id"]] = pip
        resources = [("primary_ip", pip["id"])]
        if server is not None:
            pip["assignee_id"] = server["id"]
            self._sync_public_net(server)
            resources.append(("server", server["id"]))
        action = self._new_action("create_primary_ip", resources)
        return 201, {"primary_ip": self.primary_ip_json(pip), "action": action.as_json()}

    def op_replace_primary_ip(self, req: Request, op: Operation) -> tuple[int, Any]:
        body = req.body or {}
        pip = self._get("primary_ip", op.params["id"])
        if body.get("auto_delete") is True and pip["protection"]["delete"]:
            # the mirror of change_protection's rule: a delete-protected Primary IP keeps auto_delete off
            raise invalid_input({"auto_delete": ["a delete protected Primary IP cannot be auto deleted"]})
        pip = self._rename_relabel("primary_ip", op.params["id"], body)
        if "auto_delete" in body:
            pip["auto_delete"] = body["auto_delete"]
        return 200, {"primary_ip": self.primary_ip_json(pip)}

    def op_delete_primary_ip(self, req: Request, op: Operation) -> tuple[int, Any]:
        pip = self._get("primary_ip", op.params["id"])
        if pip["protection"]["delete"]:
            raise ApiError(423, "protected", "primary ip is delete protected")
        if pip["assignee_id"] is not None:
            # "If assigned to a Server the Primary IP will be unassigned automatically until 1 May 2026.
            # After this date, the Primary IP needs to be unassigned before it can be deleted."
            if self.today >= PRIMARY_IP_MUST_BE_UNASSIGNED:
                raise ApiError(422, "must_be_unassigned", "primary ip is still assigned to a resource")
            server = self.servers.get(pip["assignee_id"])
            if server is not None:
                if server["status"] != "off":
                    raise ApiError(422, "server_not_stopped", "the server is running, but needs to be powered off")
                pip["assignee_id"] = None
                self._sync_public_net(server)
        del self.primary_ips[pip["id"]]
        return 204, None

    def op_assign_primary_ip_to_resource(self, req: Request, op: Operation) -> tuple[int, Any]:
        pip = self._get("primary_ip", op.params["id"])
        server = self._get("server", req.body["assignee_id"])
        if pip["assignee_id"] is not None:
            raise ApiError(422, "primary_ip_already_assigned", "primary ip is already assigned to a server")
        self._assignable(pip["type"], server)
        if pip["location"]["id"] != server["location"]["id"]:
            raise ApiError(422, "primary_ip_datacenter_mismatch",
                           f"primary ip is in {pip['location']['name']}, the server in {server['location']['name']}")
        pip["assignee_id"] = server["id"]
        self._sync_public_net(server)
        action = self._new_action("assign_primary_ip", [("primary_ip", pip["id"]), ("server", server["id"])])
        return 201, {"action": action.as_json()}

    def op_unassign_primary_ip_from_resource(self, req: Request, op: Operation) -> tuple[int, Any]:
        pip = self._get("primary_ip", op.params["id"])
        server = self.servers.get(pip["assignee_id"]) if pip["assignee_id"] is not None else None
        if server is None:
            raise ApiError(422, "invalid_input", "primary ip is not assigned")
        self._unlocked(server)
        if server["status"] != "off":
            raise ApiError(422, "server_not_stopped", "the server is running, but needs to be powered off")
        pip["assignee_id"] = None
        self._sync_public_net(server)
        action = self._new_action("unassign_primary_ip", [("primary_ip", pip["id"]), ("server", server["id"])])
        return 201, {"action": action.as_json()}

    def op_change_primary_ip_protection(self, req: Request, op: Operation) -> tuple[int, Any]:
        pip = self._get("primary_ip", op.params["id"])
        delete = req.body["delete"]
        # "A Primary IPs deletion protection can only be enabled if its auto_delete property is set to false."
        if delete and pip["auto_delete"]:
            raise invalid_input({"delete": ["delete protection can only be enabled while auto_delete is false"]})
        pip["protection"] = {"delete": delete}
        return 201, {"action": self._new_action("change_protection", [("primary_ip", pip["id"])]).as_json()}

    # -- networks ----------------------------------------------------------------------------
    def op_list_networks(self, req: Request, op: Operation) -> tuple[int, Any]:
        return self._list(req, "networks", self.networks.values())

    def op_get_network(self, req: Request, op: Operation) -> tuple[int, Any]:
        return 200, {"network": self._get("network", op.params["id"])}

    def op_create_network(self, req: Request, op: Operation) -> tuple[int, Any]:
        body = req.body
        self._unique_name("network", body["name"])
        ip_range = _private_range(body["ip_range"], "ip_range")
        net = {"id": next(self._ids), "name": body["name"], "ip_range": str(ip_range), "subnets": [],
               "routes": list(body.get("routes", [])), "servers": [], "load_balancers": [],
               "protection": {"delete": False}, "labels": self._labels(body), "created": now_iso(),
               "expose_routes_to_vswitch": body.get("expose_routes_to_vswitch", False)}
        for sub in body.get("subnets", []):
            net["subnets"].append(self._subnet(net, sub))
        self.networks[net["id"]] = net
        return 201, {"network": net}

    def op_replace_network(self, req: Request, op: Operation) -> tuple[int, Any]:
        body = req.body or {}
        net = self._rename_relabel("network", op.params["id"], body)
        if "expose_routes_to_vswitch" in body:
            net["expose_routes_to_vswitch"] = body["expose_routes_to_vswitch"]
        return 200, {"network": net}

    def op_delete_network(self, req: Request, op: Operation) -> tuple[int, Any]:
        net = self._get("network", op.params["id"])
        if net["protection"]["delete"]:
            raise ApiError(423, "protected", "network is delete protected")
        for server in self.servers.values():
            server["private_net"] = [p for p in server["private_net"] if p["network"] != net["id"]]
        del self.networks[net["id"]]
        return 204, None

    def _subnet(self, net: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        """Validate (or choose) a subnet's range inside ``net``."""
        whole = ipaddress.ip_network(net["ip_range"])
        taken = [ipaddress.ip_network(s["ip_range"]) for s in net["subnets"]]
        if spec.get("ip_range"):
            rng = _private_range(spec["ip_range"], "ip_range")
            if not rng.subnet_of(whole) or any(rng.overlaps(t) for t in taken):
                raise invalid_input({"ip_range": ["subnet must lie in the network and not overlap another"]})
        else:
            free = [c for c in whole.subnets(new_prefix=max(24, whole.prefixlen))
                    if not any(c.overlaps(t) for t in taken)]
            if not free:
                raise ApiError(422, "no_subnet_available", "no free subnet range in the network")
            rng = free[0]
        return {"type": spec["type"], "ip_range": str(rng), "network_zone": spec["network_zone"],
                "gateway": str(whole.network_address + 1), "vswitch_id": spec.get("vswitch_id")}

    def op_add_subnet_to_network(self, req: Request, op: Operation) -> tuple[int, Any]:
        net = self._get("network", op.params["id"])
        net["subnets"].append(self._subnet(net, req.body))
        action = self._new_action("add_subnet", [("network", net["id"])])
        return 201, {"action": action.as_json()}

    def op_change_network_protection(self, req: Request, op: Operation) -> tuple[int, Any]:
        net = self._get("network", op.params["id"])
        if "delete" in (req.body or {}):
            net["protection"]["delete"] = req.body["delete"]
        return 201, {"action": self._new_action("change_protection", [("network", net["id"])]).as_json()}

    def _attach(self, server: dict[str, Any], net: dict[str, Any], ip: str | None, alias_ips: list[str]) -> None:
        """Give ``server`` an address in ``net`` (``ip`` or the next free one) and list it there."""
        if any(p["network"] == net["id"] for p in server["private_net"]):
            raise ApiError(422, "server_already_attached", "server is already attached to the network")
        zone = server["location"]["network_zone"]
        subnets = [ipaddress.ip_network(s["ip_range"]) for s in net["subnets"]
                   if s["type"] == "cloud" and s["network_zone"] == zone]
        used = {p["ip"] for s in self.servers.values() for p in s["private_net"] if p["network"] == net["id"]}
        used.add(str(ipaddress.ip_network(net["ip_range"]).network_address + 1))
        if ip is not None:
            if ip in used or not any(ipaddress.ip_address(ip) in s for s in subnets):
                raise ApiError(422, "ip_not_available", f"IP {ip} is not available")
        else:
            ip = next((str(h) for s in subnets for h in s.hosts() if str(h) not in used), None)
            if ip is None:
                raise ApiError(422, "no_subnet_available", "no subnet or IP available in the network")
        mac = "86:00:00:" + ":".join(f"{b:02x}" for b in server["id"].to_bytes(3, "big"))
        server["private_net"].append({"network": net["id"], "ip": ip, "alias_ips": list(alias_ips),
                                      "mac_address": mac})
        net["servers"].append(server["id"])

    def op_attach_server_to_network(self, req: Request, op: Operation) -> tuple[int, Any]:
        server = self._get("server", op.params["id"])
        self._unlocked(server)
        net = self._get("network", req.body["network"])
        self._attach(server, net, req.body.get("ip"), req.body.get("alias_ips", []))
        if self.machines is not None:
            self.machines.attach(server, net, next(p["ip"] for p in server["private_net"] if p["network"] == net["id"]))
        action = self._new_action("attach_to_network", [("server", server["id"]), ("network", net["id"])])
        return 201, {"action": action.as_json()}

    def op_detach_server_from_network(self, req: Request, op: Operation) -> tuple[int, Any]:
        server = self._get("server", op.params["id"])
        self._unlocked(server)
        net = self._get("network", req.body["network"])
        if not any(p["network"] == net["id"] for p in server["private_net"]):
            raise ApiError(422, "server_not_attached", "server is not attached to the network")
        server["private_net"] = [p for p in server["private_net"] if p["network"] != net["id"]]
        net["servers"].remove(server["id"])
        if self.machines is not None:
            self.machines.detach(server, net)
        action = self._new_action("detach_from_network", [("server", server["id"]), ("network", net["id"])])
        return 201, {"action": action.as_json()}

    # -- firewalls ---------------------------------------------------------------------------
    def _fw_servers(self, fw: dict[str, Any]) -> list[int]:
        """Servers a firewall applies to, directly or through its label selectors."""
        out: list[int] = []
        for target in fw["applied_to"]:
            if target["type"] == "server":
                out.append(target["server"]["id"])
            else:
                reqs = parse_label_selector(target["label_selector"]["selector"])
                out.extend(s["id"] for s in self.servers.values() if selector_matches(reqs, s["labels"]))
        return sorted(set(out))

    def firewall_json(self, fw: dict[str, Any]) -> dict[str, Any]:
        """A firewall with label-selector targets resolved to the servers they match now."""
        applied = []
        for target in fw["applied_to"]:
            target = dict(target)
            if target["type"] == "label_selector":
                reqs = parse_label_selector(target["label_selector"]["selector"])
                target["applied_to_resources"] = [{"type": "server", "server": {"id": s["id"]}}
                                                  for s in self.servers.values()
                                                  if selector_matches(reqs, s["labels"])]
            applied.append(target)
        return {**fw, "applied_to": applied}

    @staticmethod
    def _rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Validate firewall rules the way the vendor does and fill the defaults."""
        out = []
        for i, rule in enumerate(rules):
            where = f"rules[{i}]"
            if rule["protocol"] in ("tcp", "udp") and not rule.get("port"):
                raise invalid_input({where: ["port is required for tcp and udp"]})
            if rule["protocol"] not in ("tcp", "udp") and rule.get("port"):
                raise invalid_input({where: ["port is only allowed for tcp and udp"]})
            if rule.get("port") and not _valid_port(rule["port"]):
                raise invalid_input({where: [f"port '{rule['port']}' must be a port (1-65535) or a range "
                                             "'lower-upper' of them"]})
            ips_key = "source_ips" if rule["direction"] == "in" else "destination_ips"
            if not rule.get(ips_key):
                raise invalid_input({where: [f"{ips_key} is required for direction {rule['direction']}"]})
            for ip in rule.get("source_ips", []) + rule.get("destination_ips", []):
                try:
                    ipaddress.ip_network(ip)
                except ValueError:
                    raise invalid_input({where: [f"'{ip}' is not a valid CIDR"]}) from None
            out.append({"direction": rule["direction"], "protocol": rule["protocol"], "port": rule.get("port"),
                        "source_ips": list(rule.get("source_ips", [])),
                        "destination_ips": list(rule.get("destination_ips", [])),
                        "description": rule.get("description")})
        return out

    def _targets(self, fw: dict[str, Any], targets: list[dict[str, Any]], adding: bool) -> None:
        """Validate apply_to / remove_from targets against the firewall's current ones."""
        for target in targets:
            kind = target["type"]
            if kind not in target:
                raise invalid_input({kind: [f"{kind} is required for type {kind}"]})
            if kind == "server" and target["server"]["id"] not in self.servers:
                raise ApiError(404 if fw.get("id") else 422, "firewall_resource_not_found",
                               f"server {target['server']['id']} not found")
            if kind == "label_selector":
                try:
                    parse_label_selector(target["label_selector"]["selector"])
                except LabelSelectorError as exc:
                    raise invalid_input({"label_selector": [str(exc)]}) from None
            present = any(_same_target(t, target) for t in fw["applied_to"])
            if adding and present:
                raise ApiError(422, "firewall_already_applied", "firewall is already applied to the resource")
            if not adding and not present:
                raise ApiError(404, "firewall_resource_not_found", "firewall is not applied to the resource")

    @staticmethod
    def _stored_target(target: dict[str, Any]) -> dict[str, Any]:
        key = target["type"]
        return {"type": key, key: dict(target[key])}

    def op_list_firewalls(self, req: Request, op: Operation) -> tuple[int, Any]:
        return self._list(req, "firewalls", self.firewalls.values(), self.firewall_json)

    def op_get_firewall(self, req: Request, op: Operation) -> tuple[int, Any]:
        return 200, {"firewall": self.firewall_json(self._get("firewall", op.params["id"]))}

    def op_create_firewall(self, req: Request, op: Operation) -> tuple[int, Any]:
        body = req.body
        self._unique_name("firewall", body["name"])
        fw: dict[str, Any] = {"name": body["name"], "labels": self._labels(body),
                              "rules": self._rules(body.get("rules", [])), "applied_to": []}
        targets = body.get("apply_to", [])
        self._targets(fw, targets, adding=True)
        fw.update(id=next(self._ids), created=now_iso(),
                  applied_to=[self._stored_target(t) for t in targets])
        self.firewalls[fw["id"]] = fw
        actions = [self._new_action("set_firewall_rules", [("firewall", fw["id"])])]
        actions += [self._new_action("apply_firewall", [("firewall", fw["id"]), ("server", sid)])
                    for sid in self._fw_servers(fw)]
        return 201, {"firewall": self.firewall_json(fw), "actions": [a.as_json() for a in actions]}

    def op_replace_firewall(self, req: Request, op: Operation) -> tuple[int, Any]:
        fw = self._rename_relabel("firewall", op.params["id"], req.body or {})
        return 200, {"firewall": self.firewall_json(fw)}

    def op_delete_firewall(self, req: Request, op: Operation) -> tuple[int, Any]:
        fw = self._get("firewall", op.params["id"])
        if fw["applied_to"]:
            raise ApiError(422, "resource_in_use", "firewall is still applied to a resource")
        del self.firewalls[fw["id"]]
        return 204, None

    def op_set_rules(self, req: Request, op: Operation) -> tuple[int, Any]:
        fw = self._get("firewall", op.params["id"])
        fw["rules"] = self._rules(req.body["rules"])
        actions = [self._new_action("set_firewall_rules", [("firewall", fw["id"])])]
        actions += [self._new_action("apply_firewall", [("firewall", fw["id"]), ("server", sid)])
                    for sid in self._fw_servers(fw)]
        return 201, {"actions": [a.as_json() for a in actions]}

    def op_apply_to_resources(self, req: Request, op: Operation) -> tuple[int, Any]:
        fw = self._get("firewall", op.params["id"])
        self._targets(fw, req.body["apply_to"], adding=True)
        before = set(self._fw_servers(fw))
        fw["applied_to"].extend(self._stored_target(t) for t in req.body["apply_to"])
        actions = [self._new_action("apply_firewall", [("firewall", fw["id"]), ("server", sid)])
                   for sid in self._fw_servers(fw) if sid not in before]
        if not actions:
            actions = [self._new_action("apply_firewall", [("firewall", fw["id"])])]
        return 201, {"actions": [a.as_json() for a in actions]}

    def op_remove_from_resources(self, req: Request, op: Operation) -> tuple[int, Any]:
        fw = self._get("firewall", op.params["id"])
        self._targets(fw, req.body["remove_from"], adding=False)
        before = set(self._fw_servers(fw))
        fw["applied_to"] = [t for t in fw["applied_to"]
                            if not any(_same_target(t, r) for r in req.body["remove_from"])]
        gone = before - set(self._fw_servers(fw))
        actions = [self._new_action("remove_firewall", [("firewall", fw["id"]), ("server", sid)])
                   for sid in sorted(gone)] or [self._new_action("remove_firewall", [("firewall", fw["id"])])]
        return 201, {"actions": [a.as_json() for a in actions]}


# ------------------------------------------------------------------------------------------------
# small pure helpers
# ------------------------------------------------------------------------------------------------
def _int_id(raw: object) -> int:
    """A path/body ID; the vendor refuses non-integers with invalid_input."""
    try:
        return int(str(raw))
    except ValueError:
        raise invalid_input({"id": ["must be an integer"]}) from None


def _valid_port(raw: str) -> bool:
    """``"N"`` or ``"N-M"`` with 1 <= N <= M <= 65535 (the vendor's firewall rule ``port``)."""
    match = _PORT.match(raw)
    if match is None:
        return False
    low = int(match.group(1))
    high = int(match.group(2) or low)
    return 1 <= low <= high <= 65535


def _same_target(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a["type"] != b["type"]:
        return False
    if a["type"] == "server":
        return a["server"]["id"] == b["server"]["id"]
    return a["label_selector"]["selector"] == b["label_selector"]["selector"]


def _private_range(raw: str, field_name: str) -> ipaddress.IPv4Network:
    """An RFC 1918 IPv4 network given in CIDR notation (host bits unset)."""
    try:
        net = ipaddress.ip_network(raw)
    except ValueError:
        raise invalid_input({field_name: [f"'{raw}' is not a valid CIDR network"]}) from None
    if not isinstance(net, ipaddress.IPv4Network) or not any(net.subnet_of(p) for p in _PRIVATE_RANGES):
        raise invalid_input({field_name: ["must be a private (RFC 1918) IPv4 range"]})
    return net


def ssh_fingerprint(public_key: str) -> str:
    """The MD5 fingerprint of an OpenSSH public key, colon separated (``b7:2f:...``)."""
    parts = public_key.strip().split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
        raise ValueError("invalid public key")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("invalid public key") from None
    if len(blob) < 4 or blob[4:4 + int.from_bytes(blob[:4], "big")].decode(errors="replace") != parts[0]:
        raise ValueError("invalid public key")
    digest = hashlib.md5(blob).hexdigest()  # noqa: S324 - the vendor's fingerprint format
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


if __name__ == "__main__":
    HcloudStandIn.main()

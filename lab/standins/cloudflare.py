"""Cloudflare API v4 stand-in: zones and DNS records on loopback, checked against the vendor contract.

``python -m lab.standins.cloudflare --port P --token T`` serves ``http://127.0.0.1:P/client/v4``.

* Contract: ``shared/specs/cloudflare/dns-zones.openapi.json`` (requests and answers), the envelope of
  ``common.yaml`` (every answer), ``dns_records_batch.md`` (the batch endpoint, checked by hand).
* Every request is checked (query parameters, JSON body) and refused with a 400 envelope when the
  vendor would refuse it; every answer is checked and departures land in ``contract_violations``.
* Known errata of the vendored schema (2024-08) are applied explicitly in :func:`contract_spec`,
  each with the evidence that the real service behaves differently; nothing else is relaxed.

Vendor behaviours modelled (as the API behaves in 2026), with their sources:

* Proxied records always have TTL 1 (Auto): whatever ``ttl`` a create, PUT, PATCH or batch
  post/put/patch sends for a record that ends up proxied, the record is stored and answered with
  ``ttl: 1``. "By default, all proxied records have a time to live (TTL) of Auto, which is set to
  300 seconds. This value cannot be edited." -- *Proxy status*,
  https://developers.cloudflare.com/dns/proxy-status/ (and *Time to Live (TTL)*,
  https://developers.cloudflare.com/dns/manage-dns-records/reference/ttl/). The API accepts the
  request and answers ``ttl: 1`` (cloudflare/terraform-provider-cloudflare#126: ``ttl = 300`` with
  ``proxied = true`` reads back as 1, "It's how Cloudflare API works"; DNSControl/dnscontrol#489:
  proxied records "are always forced to have a TTL of 1", so a client comparing TTLs updates on
  every run). The sent TTL is still range-checked first (9021 below): the stand-in's choice.
* Rate limit: "The global rate limit for the Cloudflare API is 1,200 requests per five minute
  period per user ... If you exceed this limit, all API calls for the next five minutes will be
  blocked, receiving a HTTP 429 response." Answers carry ``Ratelimit`` (``"default";r=<remaining>;
  t=<seconds to reset>``) and ``Ratelimit-Policy`` (``"default";q=1200;w=300``); a 429 carries
  ``retry-after``, "the number of seconds, rounded up, until more capacity is available" -- *Rate
  limits*, https://developers.cloudflare.com/fundamentals/api/reference/limits/ and the changelog
  *Introducing new headers for rate limiting on Cloudflare's API* (2025-09-03). :class:`RateLimiter`
  models it (on by default: 1,200 per 300 s, then blocked for 300 s; one user per stand-in);
  the policy name ``default`` is the docs' example, not observed. ``POST /_standin/rate_limit``
  ``{"limit": N, "window": s, "block": s}`` reconfigures it (``"limit": null`` turns it off), and
  ``{"retry_after": s}`` (1..300) sets the ``retry-after`` of the injected ``rate_limit`` fault;
  :meth:`CloudflareStandIn.rate_limited` builds that answer with any wait up to 300 s.
* The batch endpoint runs in one transaction (all or nothing) in the order deletes, patches,
  puts, posts (dns_records_batch.md). A batch whose answer is lost (``inject(..., drop="after")``,
  :mod:`lab.standins._server`) is applied; sending it again fails like Cloudflare does (81044 for a
  delete of a record already gone, 81058 for a post of a record that now exists).

Vendor answers used here (verbatim answers of api.cloudflare.com quoted in public issues):

* no credentials: 400 ``9106 Missing X-Auth-Key, X-Auth-Email or Authorization headers``
  (cloudflare/cloudflare-python#2678: ``BadRequestError: Error code: 400``);
* malformed ``Authorization``: 400 ``6003 Invalid request headers`` with ``error_chain``
  ``6111 Invalid format for Authorization header`` (Ultimate-Multisite/ultimate-multisite#73);
* a well-formed but unknown token: 403 ``9109 Invalid access token`` (jeessy2/ddns-go#1341 shows
  9109 with HTTP 403; certbot-dns-cloudflare and others quote ``9109 Invalid access token``);
* rate limit: 429 with ``retry-after`` and ``971 Please wait and consider throttling your request
  speed`` (cloudflare/workers-sdk#10025; the 429 + retry-after rule: dns_records_batch.md);
* unknown record: ``81044 Record does not exist.`` (zanjie1999/cloudflare-api-v4-ddns#5);
* DNS validation codes: see :mod:`lab.standins._cfdns`.

Origin TLS (zone SSL mode and zone-level Authenticated Origin Pulls), as the API behaves in 2026.
The vendored zones schema has none of these endpoints, so each answer is checked against a schema
written here from the API reference (:data:`ORIGIN_TLS_SCHEMAS`); sources:

* ``GET``/``PATCH /zones/{id}/settings/ssl`` -- *Edit zone setting*,
  https://developers.cloudflare.com/api/resources/zones/subresources/settings/methods/edit/ (body
  ``{"value": ...}``; result ``{id, value, editable, modified_on}``; accepted permission "Zone
  Settings Write", reads also "Zone Settings Read"). Values ``off``, ``flexible``, ``full``,
  ``strict`` (schema ``zones_ssl_value``); ``origin_pull`` (Strict, SSL-only origin pull) is
  Enterprise-only (*Encryption modes*, https://developers.cloudflare.com/ssl/origin-configuration/ssl-modes/
  and the partial *change-encryption-mode-api*) and refused on the stand-in's Free plan zones. A
  refused value answers 400 ``1007 Invalid value for zone setting ssl`` (the code and wording
  Cloudflare sends for other settings: cloudflare/terraform-provider-cloudflare#3003,
  pulumi/pulumi-cloudflare#1319). Other setting names are not modelled (7000 no route).
* ``GET``/``PATCH /zones/{id}/settings/always_use_https`` -- the same *Edit zone setting* call
  and permissions ("Zone Settings Write"; reads also "Zone Settings Read"). "Reply to all requests
  for URLs that use "http" with a 301 redirect to the equivalent "https" URL" (the API reference;
  the SDKs' ``zones.settings.always_use_https``, result type ``{id: 'always_use_https', value: 'on' |
  'off', editable, modified_on}``); default ``off`` (schema ``zones_always_use_https``,
  ``"default": "off"``), seeded so for every new zone. Any other value, a non-string or an extra key
  answers 400 ``1007 Invalid value for zone setting always_use_https`` -- the wording Cloudflare uses
  for every setting (``Invalid value for zone setting early_hints (1007)`` for an on/off setting,
  cloudflare/terraform-provider-cloudflare#3177; #3003 and pulumi/pulumi-cloudflare#1319 above).
  The redirect itself is not served (the stand-in has no edge); :meth:`CloudflareStandIn.zone_settings`
  tells lab code what the edge would do.
* ``POST``/``GET /zones/{id}/origin_tls_client_auth``, ``GET``/``DELETE .../{certificate_id}`` --
  *Zone Certificates*, https://developers.cloudflare.com/api/resources/origin_tls_client_auth/subresources/zone_certificates/
  (same paths as the SDKs' deprecated ``origin_tls_client_auth.create/list/get/delete``; accepted
  permission "SSL and Certificates Write", reads also "SSL and Certificates Read"). The model:
  ``id, certificate, expires_on, issuer, signature, status, uploaded_on``; ``status`` one of
  ``initializing, pending_deployment, pending_deletion, active, deleted, deployment_timed_out,
  deletion_timed_out``. An upload answers ``pending_deployment`` and turns ``active`` later
  ("Deployment is asynchronous", alchemy.run's Cloudflare provider docs; *Manage certificates*:
  "Upload the new certificate. Check whether new certificate is Active. Once certificate is active,
  delete the previous certificate.",
  https://developers.cloudflare.com/ssl/origin-configuration/authenticated-origin-pull/set-up/manage-certificates/).
  Here it turns ``active`` ``aop_deploy_seconds`` after the upload (on the stand-in's clock; None:
  never) and a deleted one answers ``pending_deletion`` and leaves the list as long after (the
  stand-in's choice; Cloudflare does not say when deleted certificates stop being listed).
  Certificates are not deleted on expiry (same page). Refusals (HTTP 400): a certificate already
  uploaded to the zone ``1406 This certificate already exists for this zone.`` (verbatim,
  cloudflare/terraform-provider-cloudflare#837); a certificate that does not parse ``1002 Invalid
  certificate.``, a private key that does not parse (or has a password) ``2106 The private key you
  uploaded is invalid. Please check your input and try again.``, a key that does not belong to the
  certificate ``2200 The certificate and private key pair you uploaded is invalid. Please check your
  input and try again.`` -- the custom-certificate codes of *Troubleshooting | Custom certificates*
  (https://developers.cloudflare.com/ssl/edge-certificates/custom-certificates/troubleshooting/,
  2200 added by cloudflare/cloudflare-docs#30931), which the zone-level AOP docs tell to follow
  ("follow the API instructions to upload a custom certificate ... but use the
  origin_tls_client_auth endpoint"); unverified on this endpoint itself. An unknown certificate id
  answers the generic 400 7003 (stand-in's choice).
* ``GET``/``PUT /zones/{id}/origin_tls_client_auth/settings`` -- *Set Enablement for Zone*,
  https://developers.cloudflare.com/api/resources/origin_tls_client_auth/subresources/settings/methods/update/
  (body and result ``{"enabled": bool}``, false by default; "SSL and Certificates Write"). Zone-level
  AOP is independent of global AOP (the ``tls_client_auth`` setting, Cloudflare's shared
  certificate) -- *Zone-level*, https://developers.cloudflare.com/ssl/origin-configuration/authenticated-origin-pull/set-up/zone-level/.
  A body without a boolean ``enabled`` answers 400 1004 (stand-in's choice of code).

Token permissions: the stand-in holds any number of API tokens, each with a set of permissions
named as the API reference's "Accepted Permissions" (:data:`PERMISSIONS`; the dashboard calls
"... Write" "... Edit"). The token given to the constructor has all of them (what the existing
tests use); :meth:`CloudflareStandIn.add_token` (``POST /_standin/tokens {"token": ..., "permissions":
[...]}``) adds limited ones. A call the token's permissions do not cover is refused with
Cloudflare's answer, HTTP 403 ``10000 Authentication error`` (verbatim: Curetix/mailflare-extension#20,
a token lacking "Email Routing Rules: Edit"; hieunc229/mailflare#1, "Cloudflare API 403 on
/zones/.../email/routing/dns: code 10000: Authentication error"; lablabs/cloudflare-exporter#120,
"Cloudflare API returns Authentication error (10000) in case if token does not have the required
scope of permissions"). The answer does not name the missing permission; clients have to.
"""
from __future__ import annotations

import copy
import math
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Callable, Iterable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from openapi_schema_validator import OAS30Validator

from lab.standins import _cfdns as dns
from lab.standins._openapi import Contract, Operation, load_spec
from lab.standins._server import CONTROL_PREFIX, Request, Response, StandIn

API = "/client/v4"
SPEC = "cloudflare/dns-zones.openapi.json"
DEFAULT_ZONE = "honeydue.example"
FREE_PLAN_BATCH_LIMIT = 200  # dns_records_batch.md: 200 on Free, 3,500 on paid plans
RATE_LIMIT_CODE = 971
RATE_LIMIT = 1200  # requests per RATE_WINDOW seconds, per user (Rate limits, developers.cloudflare.com)
RATE_WINDOW = 300.0
RATE_BLOCK = 300.0  # "all API calls for the next five minutes will be blocked"
MAX_RETRY_AFTER = 300
SERVER_ASSIGNED = ("id", "proxiable", "created_on", "modified_on")
BATCH_KEYS = ("deletes", "patches", "puts", "posts")
_ID = re.compile(r"^[0-9a-f]{32}$")
_BEARER = re.compile(r"^Bearer ([A-Za-z0-9._~+/=-]+)$")

# Token permissions, named as the API reference lists them ("Accepted Permissions").
ZONE_READ, ZONE_WRITE = "Zone Read", "Zone Write"
DNS_READ, DNS_WRITE = "DNS Read", "DNS Write"
ZONE_SETTINGS_READ, ZONE_SETTINGS_WRITE = "Zone Settings Read", "Zone Settings Write"
SSL_READ, SSL_WRITE = "SSL and Certificates Read", "SSL and Certificates Write"
PERMISSIONS = frozenset({ZONE_READ, ZONE_WRITE, DNS_READ, DNS_WRITE, ZONE_SETTINGS_READ, ZONE_SETTINGS_WRITE,
                         SSL_READ, SSL_WRITE})
AUTH_ERROR = 10000  # "Authentication error": a token without the permission a call needs (HTTP 403)
SSL_VALUES = ("off", "flexible", "full", "strict")  # zones_ssl_value
ALWAYS_USE_HTTPS_VALUES = ("on", "off")  # zones_always_use_https_value
ENTERPRISE_SSL_VALUES = ("origin_pull",)
AOP_STATUSES = ("initializing", "pending_deployment", "pending_deletion", "active", "deleted",
                "deployment_timed_out", "deletion_timed_out")
AOP_DEPLOY_SECONDS = 1.0

# Answers of the origin TLS endpoints, from the API reference (the vendored schema lacks them).
ORIGIN_TLS_SCHEMAS: dict[str, dict[str, Any]] = {
    "ssl-setting": {"type": "object", "required": ["id", "value", "editable"], "additionalProperties": False,
                    "properties": {"id": {"type": "string", "enum": ["ssl"]},
                                   "value": {"type": "string", "enum": list(SSL_VALUES + ENTERPRISE_SSL_VALUES)},
                                   "editable": {"type": "boolean"},
                                   "modified_on": {"type": "string", "format": "date-time", "nullable": True}}},
    "always-use-https-setting": {
        "type": "object", "required": ["id", "value", "editable"], "additionalProperties": False,
        "properties": {"id": {"type": "string", "enum": ["always_use_https"]},
                       "value": {"type": "string", "enum": list(ALWAYS_USE_HTTPS_VALUES)},
                       "editable": {"type": "boolean"},
                       "modified_on": {"type": "string", "format": "date-time", "nullable": True}}},
    "aop-certificate": {"type": "object", "additionalProperties": False,
                        "required": ["id", "certificate", "expires_on", "issuer", "signature", "status", "uploaded_on"],
                        "properties": {"id": {"type": "string", "maxLength": 32},
                                       "certificate": {"type": "string"},
                                       "expires_on": {"type": "string", "format": "date-time"},
                                       "issuer": {"type": "string"},
                                       "signature": {"type": "string"},
                                       "status": {"type": "string", "enum": list(AOP_STATUSES)},
                                       "uploaded_on": {"type": "string", "format": "date-time"}}},
    "aop-settings": {"type": "object", "required": ["enabled"], "additionalProperties": False,
                     "properties": {"enabled": {"type": "boolean"}}},
}

Body = dict[str, Any]


# -- the contract, with its documented errata -------------------------------------------------------
def contract_spec() -> dict[str, Any]:
    """The vendored OpenAPI document with the errata the real API contradicts, and nothing more.

    1. ``dns-records_dns-record`` is used for requests and answers alike and lists ``id``,
       ``proxiable``, ``created_on``, ``modified_on`` as required. They are server-assigned
       (three are ``readOnly``; OpenAPI 3.0.3 says required readOnly properties apply to responses
       only) and no client sends them on create. Requests use a copy without them
       (``dns-records_dns-record-request``); answers keep the original.
    2. ``PATCH .../dns_records/{id}`` takes a partial record (that is what PATCH means, and what the
       API reference describes); the body is checked against the record's properties, and the
       merged record against the request schema (:meth:`CloudflareStandIn._patch`).
    3. ``comment`` is ``nullable``: the real API answers ``"comment": null`` for a record without a
       comment and accepts ``"comment": null`` to clear it (community.general.cloudflare_dns sends
       it on every create and reads ``record['comment']`` back).
    4. ``DELETE`` has no body: the vendored document marks an empty ``requestBody`` as required,
       yet every client (including community.general.cloudflare_dns) deletes without one.
    """
    spec = copy.deepcopy(load_spec(SPEC))
    schemas = spec["components"]["schemas"]
    schemas["dns-records_comment"]["nullable"] = True
    request = copy.deepcopy(schemas["dns-records_dns-record"])
    request["required"] = [r for r in request["required"] if r not in SERVER_ASSIGNED]
    schemas["dns-records_dns-record-request"] = request
    schemas["dns-records_dns-record-patch"] = {"type": "object", "properties": {
        "type": {"$ref": "#/components/schemas/dns-records_type"},
        "name": {"$ref": "#/components/schemas/dns-records_name"},
        "content": {"$ref": "#/components/schemas/dns-records_content"},
        "proxied": {"$ref": "#/components/schemas/dns-records_proxied"},
        "ttl": {"$ref": "#/components/schemas/dns-records_ttl"},
        "comment": {"$ref": "#/components/schemas/dns-records_comment"},
        "tags": {"$ref": "#/components/schemas/dns-records_tags"},
    }}
    records = spec["paths"]["/zones/{zone_id}/dns_records"]
    one = spec["paths"]["/zones/{zone_id}/dns_records/{dns_record_id}"]
    for op, name in ((records["post"], "request"), (one["put"], "request"), (one["patch"], "patch")):
        op["requestBody"]["content"]["application/json"]["schema"] = {
            "$ref": f"#/components/schemas/dns-records_dns-record-{name}"}
    one["delete"]["requestBody"]["required"] = False
    return spec


class Envelope:
    """Checks answers against the ``common.yaml`` envelope (success, collection, failure)."""

    def __init__(self) -> None:
        components = copy.deepcopy(load_spec("cloudflare/common.yaml")["components"])
        # Erratum: ``messages[].code`` has ``minimum: 1000``, yet the API's own rate-limit answer is
        # code 971 ("Please wait and consider throttling your request speed", cloudflare/workers-sdk
        # #10025). Exactly that one code below 1000 is admitted; any other still fails.
        code = components["schemas"]["messages"]["items"]["properties"]["code"]
        code.pop("minimum")
        code["anyOf"] = [{"minimum": 1000}, {"enum": [RATE_LIMIT_CODE]}]
        self._validators = {
            name: OAS30Validator({"components": components,
                                  "allOf": [{"$ref": f"#/components/schemas/{name}"}]})
            for name in ("api-response-single", "api-response-collection", "api-response-common-failure")}

    def problems(self, status: int, body: Any) -> list[str]:
        """Where ``body`` departs from the envelope its status calls for."""
        if not isinstance(body, dict):
            return [f"status {status}: body is not a JSON object"]
        if status >= 400 or body.get("success") is False:
            name = "api-response-common-failure"
        elif "result_info" in body or isinstance(body.get("result"), list):
            name = "api-response-collection"
        else:
            name = "api-response-single"
        out = [f"{name}: {e.message[:200]}" for e in self._validators[name].iter_errors(body)]
        if name.endswith("failure") and not body.get("errors"):
            out.append("failure without errors")
        if (status >= 400) != (body.get("success") is False):
            out.append(f"status {status} with success={body.get('success')!r}")
        if name == "api-response-collection":
            info = body.get("result_info") or {}
            missing = {"page", "per_page", "count", "total_count", "total_pages"} - set(info)
            if missing:
                out.append(f"result_info lacks {sorted(missing)}")
        return out


@lru_cache(maxsize=1)
def _contract() -> Contract:
    """One patched contract per process (read-only once built; its validator cache is shared)."""
    return Contract(contract_spec(), API)


@lru_cache(maxsize=1)
def _envelope() -> Envelope:
    return Envelope()


# -- the global rate limit -------------------------------------------------------------------------
@dataclass
class RateLimiter:
    """Cloudflare's global API limit: ``limit`` requests per sliding ``window`` seconds; the request
    past it and every request for the next ``block`` seconds are refused (429 + ``retry-after``).

    Deterministic: the caller passes the time (``now``, seconds on a monotonic clock).
    """

    limit: int = RATE_LIMIT
    window: float = RATE_WINDOW
    block: float = RATE_BLOCK
    hits: deque[float] = field(default_factory=deque)
    blocked_until: float | None = None

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0 or not 0 < self.block <= MAX_RETRY_AFTER:
            raise ValueError(f"rate limit needs limit >= 1, window > 0 and 0 < block <= {MAX_RETRY_AFTER}")

    def admit(self, now: float) -> int | None:
        """Count one request: None when it may proceed, else the seconds to wait (rounded up)."""
        if self.blocked_until is not None:
            if now < self.blocked_until:
                return max(1, math.ceil(round(self.blocked_until - now, 6)))
            self.blocked_until = None
        while self.hits and self.hits[0] <= now - self.window:
            self.hits.popleft()
        if len(self.hits) >= self.limit:
            self.blocked_until = now + self.block
            self.hits.clear()
            return max(1, math.ceil(self.block))
        self.hits.append(now)
        return None

    def headers(self, now: float) -> dict[str, str]:
        """``Ratelimit`` (remaining, seconds to reset) and ``Ratelimit-Policy`` (quota, window)."""
        if self.blocked_until is not None and now < self.blocked_until:
            remaining, reset = 0, math.ceil(round(self.blocked_until - now, 6))
        else:
            remaining = max(0, self.limit - len(self.hits))
            reset = math.ceil(round(self.hits[0] + self.window - now, 6)) if self.hits else math.ceil(self.window)
        return {"Ratelimit": f'"default";r={remaining};t={max(0, reset)}',
                "Ratelimit-Policy": f'"default";q={self.limit};w={math.ceil(self.window)}'}


# -- envelopes ------------------------------------------------------------------------------------
def ok(result: Any, result_info: dict[str, int] | None = None) -> Response:
    body: Body = {"result": result, "success": True, "errors": [], "messages": []}
    if result_info is not None:
        body["result_info"] = result_info
    return Response(200, body)


def fail(status: int, *errors: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(status, {"result": None, "success": False, "errors": list(errors), "messages": []},
                    headers or {})


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _new_id() -> str:
    return secrets.token_hex(16)


def _stamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _issuer(cert: x509.Certificate) -> str:
    """The issuing authority's name as AOP answers show it (an organisation, e.g. "GlobalSign")."""
    for oid in (x509.NameOID.ORGANIZATION_NAME, x509.NameOID.COMMON_NAME):
        names = cert.issuer.get_attributes_for_oid(oid)
        if names:
            return str(names[0].value)
    return cert.issuer.rfc4514_string()


def _signature(cert: x509.Certificate) -> str:
    """The signature type as Cloudflare names it (``SHA256WithRSA``, ``ECDSAWithSHA256``)."""
    digest = (cert.signature_hash_algorithm.name if cert.signature_hash_algorithm else "").upper()
    if "ecdsa" in str(cert.signature_algorithm_oid._name).lower():
        return f"ECDSAWith{digest}"
    return f"{digest}WithRSA"


def _retry_after(seconds: Any) -> int:
    """A ``retry-after`` Cloudflare can send: whole seconds, 1..300 (blocked "for up to 5 minutes")."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 1 <= seconds <= MAX_RETRY_AFTER:
        raise ValueError(f"retry_after must be 1..{MAX_RETRY_AFTER} seconds, not {seconds!r}")
    return math.ceil(seconds)


class CloudflareStandIn(StandIn):
    """Cloudflare API v4 stand-in (zones, DNS records, batch) on 127.0.0.1."""

    name = "cloudflare"

    def __init__(self, token: str = "test-token", port: int = 0, zones: list[str] | None = None,
                 batch_limit: int = FREE_PLAN_BATCH_LIMIT, retry_after: int = 1,
                 rate_limit: int | None = RATE_LIMIT, rate_window: float = RATE_WINDOW,
                 rate_block: float = RATE_BLOCK, clock: Callable[[], float] = time.monotonic,
                 ssl_mode: str = "flexible", aop_deploy_seconds: float | None = AOP_DEPLOY_SECONDS) -> None:
        self._seed = list(zones) if zones is not None else [DEFAULT_ZONE]
        # A new zone's SSL mode: honeydue.example runs Flexible today (README); the value is seeded.
        self._seed_ssl = ssl_mode
        self.aop_deploy_seconds = aop_deploy_seconds
        self.tokens: dict[str, frozenset[str]] = {}
        self.ssl_settings: dict[str, Body] = {}
        self.always_use_https: dict[str, Body] = {}
        self.aop_certificates: dict[str, dict[str, Body]] = {}
        self.aop_enabled: dict[str, bool] = {}
        self.batch_limit = batch_limit
        self.retry_after = _retry_after(retry_after)
        self._rate = (rate_limit, rate_window, rate_block)
        self._clock = clock
        self.limiter: RateLimiter | None = None  # built by _initial_state (and again by reset)
        self.contract = _contract()
        self.envelope = _envelope()
        self.zones: dict[str, Body] = {}
        self.records: dict[str, dict[str, Body]] = {}
        self._account = {"id": _new_id(), "name": "Honeydue Lab"}
        super().__init__(token=token, port=port)

    # -- state -----------------------------------------------------------------------------------
    def _initial_state(self) -> None:
        self.zones = {}
        self.records = {}
        self.ssl_settings = {}
        self.always_use_https = {}
        self.aop_certificates = {}
        self.aop_enabled = {}
        self.tokens = {self.token: PERMISSIONS}  # the constructor's token may do everything
        for name in self._seed:
            self.add_zone(name)
        self.configure_rate_limit(*self._rate)  # a fresh limiter, as configured

    def configure_rate_limit(self, limit: int | None = RATE_LIMIT, window: float = RATE_WINDOW,
                             block: float = RATE_BLOCK) -> None:
        """The global rate limit (Cloudflare's: 1,200 per 300 s, then 300 s blocked); None: off."""
        limiter = RateLimiter(int(limit) if limit is not None else 1, float(window), float(block))  # checks all three
        limiter = limiter if limit is not None else None
        with self._lock:
            self._rate = (limit, window, block)
            self.limiter = limiter

    def add_zone(self, name: str) -> Body:
        """Register an active zone (``POST /_standin/zones {"name": ...}`` from outside)."""
        stamp = _now()
        zone = {
            "id": _new_id(), "name": name.lower().rstrip("."), "status": "active", "paused": False,
            "type": "full", "development_mode": 0,
            "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "original_name_servers": None, "original_registrar": None, "original_dnshost": None,
            "created_on": stamp, "modified_on": stamp, "activated_on": stamp,
            "owner": {"id": self._account["id"], "type": "organization", "name": self._account["name"]},
            "account": dict(self._account), "meta": {"step": 2, "phishing_detected": False},
            "permissions": ["#dns_records:edit", "#dns_records:read", "#zone:read"],
            "plan": {"id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website",
                     "legacy_id": "free", "is_subscribed": True, "can_subscribe": False},
        }
        self.zones[zone["id"]] = zone
        self.records[zone["id"]] = {}
        self.ssl_settings[zone["id"]] = {"id": "ssl", "value": self._seed_ssl, "editable": True, "modified_on": None}
        # Cloudflare's default for the setting (schema zones_always_use_https: "default": "off").
        self.always_use_https[zone["id"]] = {"id": "always_use_https", "value": "off", "editable": True,
                                             "modified_on": None}
        self.aop_certificates[zone["id"]] = {}
        self.aop_enabled[zone["id"]] = False  # "It is false by default."
        return zone

    def add_token(self, token: str, permissions: Iterable[str]) -> None:
        """Accept ``token`` with exactly ``permissions`` (names of :data:`PERMISSIONS`)."""
        wanted = frozenset(permissions)
        unknown = wanted - PERMISSIONS
        if unknown or not _BEARER.match(f"Bearer {token}"):
            raise ValueError(f"unknown permissions {sorted(unknown)} or a malformed token")
        with self._lock:
            self.tokens[token] = wanted

    def set_ssl(self, zone_name: str, value: str) -> None:
        """Seed a zone's SSL mode (as if changed in the dashboard)."""
        self.ssl_settings[self.zone_by_name(zone_name)["id"]].update(value=value, modified_on=_now())

    def set_always_use_https(self, zone_name: str, value: str) -> None:
        """Seed a zone's Always Use HTTPS (``"on"``/``"off"``, as if changed in the dashboard)."""
        if value not in ALWAYS_USE_HTTPS_VALUES:
            raise ValueError(f"always_use_https is 'on' or 'off', not {value!r}")
        with self._lock:
            self.always_use_https[self.zone_by_name(zone_name)["id"]].update(value=value, modified_on=_now())

    def zone_settings(self, zone_name: str) -> Body:
        """What the edge does for ``zone_name`` now, for lab code standing in for it.

        ``{"ssl": mode, "always_use_https": "on"|"off", "aop_enabled": bool, "aop_certificate":
        {"certificate": pem, "private_key": pem} | None}``. ``aop_certificate`` is the client
        certificate Cloudflare presents to the origin with zone-level AOP: among the zone's uploaded
        certificates that are ``active`` now (deployed: ``aop_deploy_seconds`` after the upload, and not
        deleted -- a deleted one is ``pending_deletion``), the one uploaded last (the stand-in's choice
        while an old and a new one are both active; Cloudflare does not say which it presents). It is
        given even while ``aop_enabled`` is false; the edge presents it only when it is true.
        """
        with self._lock:
            zone_id = self.zone_by_name(zone_name)["id"]
            active = [cert for cert in self.aop_certificates[zone_id].values()
                      if (view := self._aop_view(cert)) is not None and view["status"] == "active"]
            newest = max(active, key=lambda c: c["_uploaded_at"], default=None)
            return {"ssl": self.ssl_settings[zone_id]["value"],
                    "always_use_https": self.always_use_https[zone_id]["value"],
                    "aop_enabled": self.aop_enabled[zone_id],
                    "aop_certificate": None if newest is None else {"certificate": newest["certificate"],
                                                                    "private_key": newest["_private_key"]}}

    def zone_by_name(self, name: str) -> Body:
        return next(z for z in self.zones.values() if z["name"] == name)

    def control(self, req: Request, what: str) -> Response:
        """``POST /_standin/zones {"name": ...}`` adds a zone; ``GET /_standin/zones`` lists them.

        ``GET /_standin/zone_settings?zone=NAME`` answers :meth:`zone_settings` (private key included:
        the lab's own certificate, on loopback).

        ``POST /_standin/rate_limit {"limit": N|null, "window": s, "block": s, "retry_after": s}``
        sets the rate limiter and the ``retry-after`` of the ``rate_limit`` fault (any key optional).
        """
        if what == "rate_limit" and req.method == "POST":
            spec = req.body if isinstance(req.body, dict) else {}
            limit, window, block = self._rate
            try:
                if "retry_after" in spec:
                    self.retry_after = _retry_after(spec["retry_after"])
                if {"limit", "window", "block"} & set(spec):
                    self.configure_rate_limit(spec.get("limit", limit), spec.get("window", window),
                                              spec.get("block", block))
            except (TypeError, ValueError) as exc:
                return Response(400, {"error": str(exc)})
            return Response(204)
        if what == "rate_limit" and req.method == "GET":
            limit, window, block = self._rate
            return Response(200, {"limit": limit, "window": window, "block": block, "retry_after": self.retry_after})
        if what == "zones" and req.method == "POST":
            name = (req.body or {}).get("name")
            if not isinstance(name, str) or not name:
                return Response(400, {"error": "body must be {\"name\": \"<zone>\"}"})
            with self._lock:
                return Response(201, self.add_zone(name))
        if what == "zones" and req.method == "GET":
            with self._lock:
                return Response(200, list(self.zones.values()))
        if what == "tokens" and req.method == "POST":
            spec = req.body if isinstance(req.body, dict) else {}
            try:
                self.add_token(str(spec.get("token") or ""), spec.get("permissions") or [])
            except (TypeError, ValueError) as exc:
                return Response(400, {"error": str(exc)})
            return Response(204)
        if what == "zone_settings" and req.method == "GET":
            name = req.q("zone", DEFAULT_ZONE) or DEFAULT_ZONE
            if not any(z["name"] == name for z in self.zones.values()):
                return Response(404, {"error": f"no zone {name}"})
            return Response(200, self.zone_settings(name))
        if what == "aop" and req.method == "POST":
            spec = req.body if isinstance(req.body, dict) else {}
            seconds = spec.get("deploy_seconds")
            if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0):
                return Response(400, {"error": "deploy_seconds must be a number >= 0, or null (never active)"})
            self.aop_deploy_seconds = seconds
            return Response(204)
        return super().control(req, what)

    # -- vendor answers --------------------------------------------------------------------------
    def auth_failure(self, req: Request) -> Response | None:
        """Bearer token (``api_token``) or ``X-Auth-Email`` + ``X-Auth-Key`` (both in the spec)."""
        auth = req.headers.get("authorization")
        key, email = req.headers.get("x-auth-key"), req.headers.get("x-auth-email")
        if auth is None and key is None:
            resp = fail(400, dns.error(9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers"))
        elif auth is not None:
            m = _BEARER.match(auth)
            if m is None:
                resp = fail(400, dns.error(6003, "Invalid request headers", chain=[
                    {"code": 6111, "message": "Invalid format for Authorization header"}]))
            elif self._token_permissions(m.group(1)) is not None:
                return None
            else:
                resp = fail(403, dns.error(9109, "Invalid access token"))
        elif not email or "@" not in email:
            resp = fail(400, dns.error(6003, "Invalid request headers", chain=[
                {"code": 6102, "message": "Invalid format for X-Auth-Email header"}]))
        elif secrets.compare_digest(key or "", self.token):
            return None
        else:
            resp = fail(403, dns.error(9103, "Unknown X-Auth-Key or X-Auth-Email"))
        self._check_envelope(req, resp)
        return resp

    def _token_permissions(self, value: str) -> frozenset[str] | None:
        """The permissions of a bearer token (None: not a token of this stand-in)."""
        found = None
        for token, permissions in self.tokens.items():
            if secrets.compare_digest(value, token):
                found = permissions
        return found

    def _permissions_of(self, req: Request) -> frozenset[str]:
        """What the request's credentials may do (the global API key may do everything)."""
        m = _BEARER.match(req.headers.get("authorization") or "")
        if m is None:
            return PERMISSIONS
        return self._token_permissions(m.group(1)) or frozenset()

    def _forbidden(self, req: Request, accepted: frozenset[str]) -> Response | None:
        """Cloudflare's 403 when the token holds none of the ``accepted`` permissions."""
        if self._permissions_of(req) & accepted:
            return None
        return fail(403, dns.error(AUTH_ERROR, "Authentication error"))

    def rate_limited(self, retry_after: int | None = None) -> Response:
        """Cloudflare's 429: code 971 and ``retry-after`` in seconds (1..300; default ``retry_after``)."""
        wait = _retry_after(self.retry_after if retry_after is None else retry_after)
        resp = fail(429, dns.error(RATE_LIMIT_CODE, "Please wait and consider throttling your request speed"),
                    headers={"retry-after": str(wait)})
        problems = self.envelope.problems(resp.status, resp.body)
        if problems:
            self.contract_violations.append(f"rate limit: {problems}")
        return resp

    def fault_response(self, kind: str) -> Response:
        """Canned vendor answers. Only ``rate_limit`` is verbatim vendor text; see the report."""
        if kind == "rate_limit":
            return self.rate_limited()
        if kind == "server_error":
            resp = fail(500, dns.error(1000, "Internal Server Error"))  # code: stand-in's choice
        elif kind == "conflict":
            # 81057 is the vendor's older duplicate-record answer (NewFuture/DDNS#21), HTTP 400.
            resp = fail(400, dns.error(81057, "Record already exists."))
        elif kind == "locked":
            resp = fail(400, dns.dns_validation(9000, "DNS record is locked and cannot be modified."))
        else:
            raise ValueError(f"unknown fault kind {kind!r}")
        problems = self.envelope.problems(resp.status, resp.body)
        if problems:
            self.contract_violations.append(f"fault {kind}: {problems}")
        return resp

    # -- the request path: the global rate limit first ------------------------------------------------
    def handle(self, req: Request) -> Response:
        """Every API request counts against the rate limit; past it, 429 without reaching the API."""
        if req.path.startswith(CONTROL_PREFIX):
            return super().handle(req)
        with self._lock:
            limiter = self.limiter
            now = self._clock()
            wait = limiter.admit(now) if limiter is not None else None
            headers = limiter.headers(now) if limiter is not None else {}
        if wait is not None:
            if self.latency:
                time.sleep(self.latency)
            resp = self.rate_limited(wait)
            resp.headers.update(headers)
            self._record(req, resp.status)
            return resp
        resp = super().handle(req)
        # Injected fault answers are shared between requests: answer a copy with the headers.
        return Response(resp.status, resp.body, {**headers, **resp.headers})

    # -- dispatch --------------------------------------------------------------------------------
    def dispatch(self, req: Request) -> Response:
        op, resp = self._route(req)
        if op is not None:
            for problem in self.contract.check_response(op, resp.status, resp.body):
                self.contract_violations.append(f"{req.method} {req.path} -> {resp.status}: {problem}")
        self._check_envelope(req, resp)
        return resp

    def _check_envelope(self, req: Request, resp: Response) -> None:
        for problem in self.envelope.problems(resp.status, resp.body):
            self.contract_violations.append(f"{req.method} {req.path} -> {resp.status}: envelope: {problem}")

    def _route(self, req: Request) -> tuple[Operation | None, Response]:
        parts = req.path[len(API):].strip("/").split("/") if req.path.startswith(API + "/") else []
        if len(parts) == 4 and parts[0] == "zones" and parts[2:] == ["dns_records", "batch"] \
                and req.method == "POST":
            zone = self.zones.get(parts[1])
            if zone is None:
                return None, self._bad_identifier(req)
            return None, self._forbidden(req, frozenset({DNS_WRITE})) or self._batch(req, zone)
        if len(parts) >= 3 and parts[0] == "zones" and parts[2] in ("settings", "origin_tls_client_auth"):
            return None, self._origin_tls(req, parts)
        op = self.contract.find(req.method, req.path)
        if op is None:
            if self.contract.path_known(req.path):
                return None, fail(405, dns.error(7001, f"Method {req.method} not available for that URI."))
            return None, fail(400, dns.error(7000, "No route for that URI"))
        handler = self._handlers().get(op.operation_id)
        if handler is None:
            return op, fail(405, dns.error(7001, f"Method {req.method} not available for that URI."))
        zone = None
        if "zone_id" in op.params:
            zone = self.zones.get(op.params["zone_id"])
            if zone is None:
                return op, self._bad_identifier(req)
        if "dns_record_id" in op.params and not _ID.match(op.params["dns_record_id"]):
            return op, self._bad_identifier(req)
        if op.operation_id in ("zones-get", "zones-0-get"):
            accepted = frozenset({ZONE_READ, ZONE_WRITE})
        elif req.method == "GET":
            accepted = frozenset({DNS_READ, DNS_WRITE})
        else:
            accepted = frozenset({DNS_WRITE})
        forbidden = self._forbidden(req, accepted)
        if forbidden is not None:
            return op, forbidden
        refused = self._refuse(req, op)
        if refused is not None:
            return op, refused
        return op, handler(req, op, zone)

    def _handlers(self) -> dict[str, Callable[[Request, Operation, Body | None], Response]]:
        return {
            "zones-get": self._list_zones,
            "zones-0-get": lambda req, op, zone: ok(zone),
            "dns-records-for-a-zone-list-dns-records": self._list_records,
            "dns-records-for-a-zone-create-dns-record": self._create,
            "dns-records-for-a-zone-dns-record-details": self._get_record,
            "dns-records-for-a-zone-patch-dns-record": self._patch,
            "dns-records-for-a-zone-update-dns-record": self._put,
            "dns-records-for-a-zone-delete-dns-record": self._delete,
        }

    @staticmethod
    def _bad_identifier(req: Request) -> Response:
        # Cloudflare's answer to an unknown or malformed identifier in the path (HTTP 400, 7003).
        route = req.path[len(API):]
        return fail(400, dns.error(7003, f"Could not route to {route}, perhaps your object identifier is invalid?"))

    def _refuse(self, req: Request, op: Operation) -> Response | None:
        """The 400 answer to a request the contract refuses (None when it is valid)."""
        if req.raw_body and req.body is None:
            return fail(400, dns.error(6007, "Malformed JSON in request body"))
        problems = self.contract.check_request(op, req.query, req.body, req.raw_body, req.content_type)
        if not problems:
            return None
        # Exact vendor codes for schema refusals vary by product; 1004 is the DNS API's umbrella code.
        return fail(400, dns.error(1004, "DNS Validation Error",
                                   chain=[{"code": 1004, "message": p} for p in problems]))

    # -- zones -----------------------------------------------------------------------------------
    def _list_zones(self, req: Request, op: Operation, zone: Body | None) -> Response:
        match = req.q("match", "all")
        tests: list[Callable[[Body], bool]] = []
        if req.q("name") is not None:
            tests.append(lambda z: dns.zone_name_matches(z["name"], req.q("name") or ""))
        if req.q("status") is not None:
            tests.append(lambda z: z["status"] == req.q("status"))
        if req.q("account.id") is not None:
            tests.append(lambda z: z["account"]["id"] == req.q("account.id"))
        combine = any if match == "any" else all
        found = [z for z in self.zones.values() if not tests or combine(t(z) for t in tests)]
        order = req.q("order", "name") or "name"
        found.sort(key=lambda z: str(z.get(order, z["name"])), reverse=req.q("direction") == "desc")
        page, info = dns.paginate(found, int(float(req.q("page", "1") or 1)),
                                  int(float(req.q("per_page", "20") or 20)))
        return ok(page, info)

    # -- records: reads --------------------------------------------------------------------------
    def _list_records(self, req: Request, op: Operation, zone: Body | None) -> Response:
        assert zone is not None
        filters = {k: v for k in ("type", "name", "content", "proxied", "comment")
                   if (v := req.q(k)) is not None}
        found = [r for r in self.records[zone["id"]].values()
                 if dns.record_matches(r, filters, req.q("match", "all") or "all")]
        found = dns.sort_records(found, req.q("order", "type") or "type", req.q("direction", "asc") or "asc")
        page, info = dns.paginate(found, int(float(req.q("page", "1") or 1)),
                                  int(float(req.q("per_page", "100") or 100)))
        return ok([copy.deepcopy(r) for r in page], info)

    def _get_record(self, req: Request, op: Operation, zone: Body | None) -> Response:
        record = self._find(zone, op)
        return ok(copy.deepcopy(record)) if record else self._missing()

    def _find(self, zone: Body | None, op: Operation) -> Body | None:
        assert zone is not None
        return self.records[zone["id"]].get(op.params["dns_record_id"])

    @staticmethod
    def _missing() -> Response:
        return fail(404, dns.error(81044, "Record does not exist."))

    # -- records: writes -------------------------------------------------------------------------
    def _create(self, req: Request, op: Operation, zone: Body | None) -> Response:
        assert zone is not None
        return self._commit(zone, self._apply_post(zone, self.records[zone["id"]], req.body))

    def _put(self, req: Request, op: Operation, zone: Body | None) -> Response:
        assert zone is not None
        return self._commit(zone, self._apply_put(zone, self.records[zone["id"]],
                                                  op.params["dns_record_id"], req.body))

    def _patch(self, req: Request, op: Operation, zone: Body | None) -> Response:
        assert zone is not None
        return self._commit(zone, self._apply_patch(zone, self.records[zone["id"]],
                                                    op.params["dns_record_id"], req.body))

    def _delete(self, req: Request, op: Operation, zone: Body | None) -> Response:
        assert zone is not None
        gone = self.records[zone["id"]].pop(op.params["dns_record_id"], None)
        return ok({"id": gone["id"]}) if gone else self._missing()

    @staticmethod
    def _commit(zone: Body, outcome: tuple[Body | None, Response | None]) -> Response:
        record, refusal = outcome
        return refusal if refusal is not None else ok(copy.deepcopy(record))

    # Each _apply_* works on the ``records`` mapping it is given (the zone's, or a batch's copy)
    # and answers (record, None) after changing it, or (None, refusal) leaving it untouched.
    def _apply_post(self, zone: Body, records: dict[str, Body], body: Any) -> tuple[Body | None, Response | None]:
        built, refusal = self._build(zone, records, body, None)
        if built is not None:
            records[built["id"]] = built
        return built, refusal

    def _apply_put(self, zone: Body, records: dict[str, Body], rid: str,
                   body: Any) -> tuple[Body | None, Response | None]:
        current = records.get(rid)
        if current is None:
            return None, self._missing()
        built, refusal = self._build(zone, records, body, current)
        if built is not None:
            records[rid] = built
        return built, refusal

    def _apply_patch(self, zone: Body, records: dict[str, Body], rid: str,
                     body: Any) -> tuple[Body | None, Response | None]:
        current = records.get(rid)
        if current is None:
            return None, self._missing()
        fields = {k: current[k] for k in ("type", "name", "content", "proxied", "ttl", "comment", "tags")
                  if k in current and not (k == "comment" and current[k] is None)}
        fields.update({k: v for k, v in (body or {}).items() if k not in SERVER_ASSIGNED})
        built, refusal = self._build(zone, records, fields, current)
        if built is not None:
            records[rid] = built
        return built, refusal

    def _build(self, zone: Body, records: dict[str, Body], body: Any,
               current: Body | None) -> tuple[Body | None, Response | None]:
        """A full record from a request body, checked like the vendor checks it."""
        schema = {"$ref": "#/components/schemas/dns-records_dns-record-request"}
        problems = self.contract.schema_errors("b:record", schema, body)
        if problems:
            return None, fail(400, dns.error(1004, "DNS Validation Error",
                                             chain=[{"code": 1004, "message": p} for p in problems]))
        record = self._make_record(zone, body, current)
        errors = dns.record_errors(record)  # the TTL sent is range-checked even for a proxied record
        conflict = dns.conflict_error(record, records.values())
        first = errors[0] if errors else conflict
        if first is not None:
            return None, fail(400, first)
        record["ttl"] = dns.stored_ttl(record)  # proxied: always 1 (Auto), whatever was sent
        return record, None

    def _make_record(self, zone: Body, body: Body, current: Body | None) -> Body:
        stamp = _now()
        rtype = body["type"]
        record: Body = {
            "id": current["id"] if current else _new_id(),
            "zone_id": zone["id"], "zone_name": zone["name"],
            "name": dns.normalise_name(body["name"], zone["name"]),
            "type": rtype, "content": body.get("content", ""),
            "proxiable": rtype in dns.PROXIABLE_TYPES,
            "proxied": bool(body.get("proxied", False)),
            "ttl": body.get("ttl", dns.TTL_AUTO), "locked": False, "settings": {},
            "meta": {"auto_added": False, "managed_by_apps": False,
                     "managed_by_argo_tunnel": False, "source": "primary"},
            "comment": body.get("comment"), "tags": list(body.get("tags") or []),
            "created_on": current["created_on"] if current else stamp, "modified_on": stamp,
        }
        for extra in ("priority", "data"):
            if extra in body:
                record[extra] = body[extra]
        return record

    # -- origin TLS: the zone's SSL mode and zone-level Authenticated Origin Pulls -----------------
    def _origin_tls(self, req: Request, parts: list[str]) -> Response:
        """``/zones/{id}/settings/{ssl,always_use_https}``, ``/zones/{id}/origin_tls_client_auth[/settings|/{cert}]``."""
        rest = parts[2:]
        if rest[0] == "settings":
            settings = {"ssl": {("GET",): self._get_ssl, ("PATCH",): self._patch_ssl},
                        "always_use_https": {("GET",): self._get_always_use_https,
                                             ("PATCH",): self._patch_always_use_https}}
            routes = settings.get(rest[1], {}) if len(rest) == 2 else {}
            read, write = ZONE_SETTINGS_READ, ZONE_SETTINGS_WRITE
        elif rest == ["origin_tls_client_auth"]:
            routes = {("GET",): self._list_aop, ("POST",): self._upload_aop}
            read, write = SSL_READ, SSL_WRITE
        elif rest == ["origin_tls_client_auth", "settings"]:
            routes = {("GET",): self._get_aop_settings, ("PUT",): self._put_aop_settings}
            read, write = SSL_READ, SSL_WRITE
        elif len(rest) == 2 and rest[1] != "hostnames":
            routes = {("GET",): self._get_aop, ("DELETE",): self._delete_aop}
            read, write = SSL_READ, SSL_WRITE
        else:
            routes, read, write = {}, SSL_READ, SSL_WRITE
        if not routes:
            return fail(400, dns.error(7000, "No route for that URI"))
        handler = routes.get((req.method,))
        if handler is None:
            return fail(405, dns.error(7001, f"Method {req.method} not available for that URI."))
        zone = self.zones.get(parts[1])
        if zone is None:
            return self._bad_identifier(req)
        accepted = frozenset({read, write}) if req.method == "GET" else frozenset({write})
        forbidden = self._forbidden(req, accepted)
        if forbidden is not None:
            return forbidden
        if req.raw_body and req.body is None:
            return fail(400, dns.error(6007, "Malformed JSON in request body"))
        resp = handler(req, zone, rest)
        self._check_origin_tls_answer(req, resp)
        return resp

    def _check_origin_tls_answer(self, req: Request, resp: Response) -> None:
        """Each result against the schema the API reference gives for it (ORIGIN_TLS_SCHEMAS)."""
        if resp.status >= 400 or not isinstance(resp.body, dict):
            return
        path = req.path[len(API):]
        kind = "ssl-setting" if "/settings/ssl" in path else (
            "always-use-https-setting" if "/settings/always_use_https" in path else (
                "aop-settings" if path.endswith("/origin_tls_client_auth/settings") else "aop-certificate"))
        result = resp.body.get("result")
        for item in result if isinstance(result, list) else [result]:
            for problem in self.contract.schema_errors(f"r:{kind}", ORIGIN_TLS_SCHEMAS[kind], item):
                self.contract_violations.append(f"{req.method} {path}: {kind}: {problem}")

    # settings/ssl
    def _get_ssl(self, req: Request, zone: Body, rest: list[str]) -> Response:
        return ok(dict(self.ssl_settings[zone["id"]]))

    def _patch_ssl(self, req: Request, zone: Body, rest: list[str]) -> Response:
        body = req.body if isinstance(req.body, dict) else {}
        value = body.get("value")
        plan = zone.get("plan", {}).get("legacy_id")
        allowed = SSL_VALUES + (ENTERPRISE_SSL_VALUES if plan == "enterprise" else ())
        if set(body) - {"value"} or not isinstance(value, str) or value not in allowed:
            return fail(400, dns.error(1007, "Invalid value for zone setting ssl"))
        setting = self.ssl_settings[zone["id"]]
        setting.update(value=value, modified_on=_now())
        return ok(dict(setting))

    # settings/always_use_https
    def _get_always_use_https(self, req: Request, zone: Body, rest: list[str]) -> Response:
        return ok(dict(self.always_use_https[zone["id"]]))

    def _patch_always_use_https(self, req: Request, zone: Body, rest: list[str]) -> Response:
        body = req.body if isinstance(req.body, dict) else {}
        value = body.get("value")
        if set(body) - {"value"} or not isinstance(value, str) or value not in ALWAYS_USE_HTTPS_VALUES:
            return fail(400, dns.error(1007, "Invalid value for zone setting always_use_https"))
        setting = self.always_use_https[zone["id"]]
        setting.update(value=value, modified_on=_now())
        return ok(dict(setting))

    # origin_tls_client_auth
    def _aop_view(self, cert: Body) -> Body | None:
        """The certificate as the API shows it now (None: no longer listed)."""
        now, delay = self._clock(), self.aop_deploy_seconds
        if cert["_deleted_at"] is not None:
            if delay is not None and now >= cert["_deleted_at"] + delay:
                return None
            status = "pending_deletion"
        elif delay is None or now < cert["_uploaded_at"] + delay:
            status = "pending_deployment"
        else:
            status = "active"
        return {k: v for k, v in cert.items() if not k.startswith("_")} | {"status": status}

    def _aop_visible(self, zone: Body) -> list[Body]:
        certs = self.aop_certificates[zone["id"]]
        views = {cid: self._aop_view(cert) for cid, cert in certs.items()}
        for cid, view in views.items():
            if view is None:
                del certs[cid]
        return [v for v in views.values() if v is not None]

    def _list_aop(self, req: Request, zone: Body, rest: list[str]) -> Response:
        found = sorted(self._aop_visible(zone), key=lambda c: c["uploaded_on"])
        return ok(found, {"page": 1, "per_page": max(len(found), 1), "count": len(found),
                          "total_count": len(found), "total_pages": 1})

    def _find_aop(self, zone: Body, cid: str) -> Body | None:
        self._aop_visible(zone)
        return self.aop_certificates[zone["id"]].get(cid)

    def _get_aop(self, req: Request, zone: Body, rest: list[str]) -> Response:
        cert = self._find_aop(zone, rest[1])
        return ok(self._aop_view(cert)) if cert else self._bad_identifier(req)

    def _delete_aop(self, req: Request, zone: Body, rest: list[str]) -> Response:
        cert = self._find_aop(zone, rest[1])
        if cert is None:
            return self._bad_identifier(req)
        if cert["_deleted_at"] is None:
            cert["_deleted_at"] = self._clock()
        return ok(self._aop_view(cert))

    def _upload_aop(self, req: Request, zone: Body, rest: list[str]) -> Response:
        body = req.body if isinstance(req.body, dict) else {}
        pem, key_pem = body.get("certificate"), body.get("private_key")
        try:
            cert = x509.load_pem_x509_certificate(pem.encode()) if isinstance(pem, str) else None
        except ValueError:
            cert = None
        if cert is None:
            return fail(400, dns.error(1002, "Invalid certificate."))
        try:
            key = serialization.load_pem_private_key(key_pem.encode(), password=None) \
                if isinstance(key_pem, str) else None
        except (ValueError, TypeError, UnsupportedAlgorithm):
            key = None
        if key is None or not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            return fail(400, dns.error(2106, "The private key you uploaded is invalid. Please check your input and try again."))
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
            return fail(400, dns.error(2200, "The certificate and private key pair you uploaded is invalid. "
                                             "Please check your input and try again."))
        der = cert.public_bytes(serialization.Encoding.DER)
        for other in self._aop_visible(zone):
            if other["status"] != "pending_deletion" and \
                    x509.load_pem_x509_certificate(other["certificate"].encode()).public_bytes(
                        serialization.Encoding.DER) == der:
                return fail(400, dns.error(1406, "This certificate already exists for this zone."))
        record: Body = {
            "id": _new_id(), "certificate": pem, "expires_on": _stamp(cert.not_valid_after_utc),
            "issuer": _issuer(cert), "signature": _signature(cert), "uploaded_on": _now(),
            "_uploaded_at": self._clock(), "_deleted_at": None,
            "_private_key": key_pem,  # never answered (views drop "_" keys); zone_settings() gives it to lab code
        }
        self.aop_certificates[zone["id"]][record["id"]] = record
        return ok(self._aop_view(record))

    # origin_tls_client_auth/settings
    def _get_aop_settings(self, req: Request, zone: Body, rest: list[str]) -> Response:
        return ok({"enabled": self.aop_enabled[zone["id"]]})

    def _put_aop_settings(self, req: Request, zone: Body, rest: list[str]) -> Response:
        body = req.body if isinstance(req.body, dict) else {}
        if set(body) != {"enabled"} or not isinstance(body["enabled"], bool):
            return fail(400, dns.error(1004, "Validation Error", chain=[
                {"code": 1004, "message": "body must be {\"enabled\": true|false}"}]))
        self.aop_enabled[zone["id"]] = body["enabled"]
        return ok({"enabled": body["enabled"]})

    # -- batch -----------------------------------------------------------------------------------
    def _batch(self, req: Request, zone: Body) -> Response:
        """``POST /zones/{id}/dns_records/batch``: deletes, patches, puts, posts; all or nothing."""
        refusal = self._batch_refusal(req.raw_body, req.body)
        if refusal is not None:
            return refusal
        work = copy.deepcopy(self.records[zone["id"]])
        done: dict[str, list[Body]] = {key: [] for key in BATCH_KEYS}
        for key in BATCH_KEYS:
            for index, item in enumerate(req.body.get(key) or []):
                record, failed = self._batch_op(zone, work, key, item)
                if failed is not None:
                    for err in failed.body["errors"]:
                        err.setdefault("source", {"pointer": f"/{key}/{index}"})
                    return failed
                done[key].append(copy.deepcopy(record))
        self.records[zone["id"]] = work
        resp = ok(done)
        self._check_batch_result(req, done)
        return resp

    def _batch_refusal(self, raw: bytes, body: Any) -> Response | None:
        """The hand-written contract of dns_records_batch.md."""
        if raw and body is None:
            return fail(400, dns.error(6007, "Malformed JSON in request body"))
        problems: list[str] = []
        if not isinstance(body, dict):
            problems.append("request body must be a JSON object")
        else:
            problems += [f"unknown key '{k}'" for k in body if k not in BATCH_KEYS]
            for key in BATCH_KEYS:
                items = body.get(key, [])
                if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                    problems.append(f"{key}: must be a list of objects")
                elif key != "posts" and not all(isinstance(i.get("id"), str) for i in items):
                    problems.append(f"{key}: every item needs an 'id'")
        if problems:
            return fail(400, dns.error(1004, "DNS Validation Error",
                                       chain=[{"code": 1004, "message": p} for p in problems]))
        total = sum(len(body.get(key) or []) for key in BATCH_KEYS)
        if total > self.batch_limit:
            return fail(400, dns.error(1004, "DNS Validation Error", chain=[{"code": 1004, "message":
                        f"batch of {total} records exceeds the plan's limit of {self.batch_limit}"}]))
        return None

    def _batch_op(self, zone: Body, work: dict[str, Body], key: str,
                  item: Body) -> tuple[Body | None, Response | None]:
        if key == "deletes":
            gone = work.pop(item["id"], None)
            return (gone, None) if gone else (None, self._missing())
        if key == "patches":
            return self._apply_patch(zone, work, item["id"], item)
        if key == "puts":
            body = {k: v for k, v in item.items() if k != "id"}
            return self._apply_put(zone, work, item["id"], body)
        return self._apply_post(zone, work, item)

    def _check_batch_result(self, req: Request, done: dict[str, list[Body]]) -> None:
        schema = {"$ref": "#/components/schemas/dns-records_dns-record"}
        for key, records in done.items():
            for index, record in enumerate(records):
                for problem in self.contract.schema_errors("r:batch-record", schema, record):
                    self.contract_violations.append(f"{req.method} {req.path}: /{key}/{index}: {problem}")


def main(argv: list[str] | None = None) -> None:
    CloudflareStandIn.main(argv)


if __name__ == "__main__":
    main()

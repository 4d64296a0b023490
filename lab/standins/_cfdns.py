"""Pure helpers of the Cloudflare stand-in: record names, record validation, list filters.

No I/O and no server state: every function takes plain dicts and returns plain values, so the
vendor rules are unit-testable on their own (``tests/unit/test_cloudflare_*.py``).

Error codes are the ones the real API v4 sends. Where a code is cited, the evidence is a verbatim
answer of api.cloudflare.com quoted in a public issue:

* 9005 ``Content for A record must be a valid IPv4 address.`` -- timothymiller/cloudflare-ddns#230
  (2026) and yulewang/cloudflare-api-v4-ddns#16: answered top-level with HTTP 400, not inside 1004.
* 1004 ``DNS Validation Error`` with ``error_chain`` 9021 ``TTL must be between 60 and 86400
  seconds, or 1 for Automatic.`` -- timothymiller/cloudflare-ddns#179 (2024).
* 1004 + 9041 ``Invalid proxied mode. Record cannot be proxied`` -- jordantrizz/cloudflare-cli#8.
* 1004 + ``Content for CNAME record is invalid.`` -- stephenou/fruitionsite#79 (chain code not
  shown there; 9007 is the stand-in's choice, unverified).
* 81058 ``An identical record already exists.`` -- jeessy2/ddns-go#1378 (2025), HTTP 400.
* 81053 ``An A, AAAA, or CNAME record with that host already exists.`` -- a CNAME where an
  A/AAAA/CNAME exists; terraform-provider-cloudflare#1247 (HTTP 400).
* 81054 ``A CNAME record with that host already exists. ...`` -- an A/AAAA where a CNAME exists;
  jeessy2/ddns-go#1557, favonia/cloudflare-ddns#990 (HTTP 400).
* 9006 for AAAA content is by analogy with 9005 (unverified).

Proxied records are stored with TTL 1 (Auto) whatever TTL was sent: :func:`stored_ttl`.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any, Iterable

PROXIABLE_TYPES = frozenset({"A", "AAAA", "CNAME"})
TTL_AUTO = 1
TTL_MIN, TTL_MAX = 60, 86400  # 30 on Enterprise zones; the stand-in models Free/Pro/Business
RECORDS_WITH_SAME_NAME_DOC = (
    "https://developers.cloudflare.com/dns/manage-dns-records/troubleshooting/records-with-same-name/")

_LABEL = re.compile(r"^(?!-)[a-z0-9_*-]{1,63}(?<!-)$", re.IGNORECASE)

Error = dict[str, Any]


def error(code: int, message: str, *, chain: list[Error] | None = None,
          pointer: str | None = None) -> Error:
    """One entry of the envelope's ``errors`` list."""
    out: Error = {"code": code, "message": message}
    if chain:
        out["error_chain"] = chain
    if pointer:
        out["source"] = {"pointer": pointer}
    return out


def dns_validation(code: int, message: str) -> Error:
    """The ``1004 DNS Validation Error`` wrapper with one cause in ``error_chain``."""
    return error(1004, "DNS Validation Error", chain=[{"code": code, "message": message}])


def normalise_name(name: str, zone: str) -> str:
    """A record name as Cloudflare stores it: lower case FQDN inside ``zone``, ``@`` the apex."""
    name = name.strip().rstrip(".").lower()
    zone = zone.lower()
    if name in ("@", ""):
        return zone
    if name == zone or name.endswith("." + zone):
        return name
    return f"{name}.{zone}"


def is_hostname(value: str) -> bool:
    """A DNS hostname (labels of letters, digits, hyphens, underscores; ``*`` allowed)."""
    value = value.rstrip(".")
    if not value or len(value) > 253:
        return False
    return all(_LABEL.match(label) for label in value.split("."))


def is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def is_ipv6(value: str) -> bool:
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def content_error(rtype: str, name: str, content: Any) -> Error | None:
    """Cloudflare's answer to a record whose content does not fit its type (None when it fits)."""
    if rtype == "A" and not (isinstance(content, str) and is_ipv4(content)):
        return error(9005, "Content for A record must be a valid IPv4 address.")
    if rtype == "AAAA" and not (isinstance(content, str) and is_ipv6(content)):
        return error(9006, "Content for AAAA record must be a valid IPv6 address.")
    if rtype == "CNAME":
        bad = (not isinstance(content, str) or not is_hostname(content) or is_ipv4(content)
               or content.rstrip(".").lower() == name)
        if bad:
            return dns_validation(9007, "Content for CNAME record is invalid.")
    return None


def ttl_error(ttl: Any) -> Error | None:
    """1 (automatic) or 60..86400 seconds."""
    if ttl == TTL_AUTO or (isinstance(ttl, (int, float)) and TTL_MIN <= ttl <= TTL_MAX):
        return None
    return dns_validation(9021, "TTL must be between 60 and 86400 seconds, or 1 for Automatic.")


def stored_ttl(record: dict[str, Any]) -> Any:
    """The TTL Cloudflare stores: 1 (Auto) for a proxied record whatever was sent, else the one sent.

    "All proxied records have a time to live (TTL) of Auto ... This value cannot be edited"
    (https://developers.cloudflare.com/dns/proxy-status/); the API answers ``ttl: 1``
    (cloudflare/terraform-provider-cloudflare#126, DNSControl/dnscontrol#489).
    """
    return TTL_AUTO if record.get("proxied") else record.get("ttl", TTL_AUTO)


def proxied_error(rtype: str, proxied: Any) -> Error | None:
    """Only A, AAAA and CNAME records can be proxied."""
    if proxied and rtype not in PROXIABLE_TYPES:
        return dns_validation(9041, "Invalid proxied mode. Record cannot be proxied")
    return None


def record_errors(record: dict[str, Any]) -> list[Error]:
    """Everything wrong with one (normalised) record on its own, in the order Cloudflare checks."""
    checks = (content_error(record["type"], record["name"], record.get("content")),
              ttl_error(record.get("ttl", TTL_AUTO)),
              proxied_error(record["type"], record.get("proxied", False)))
    return [e for e in checks if e is not None]


def _same_content(rtype: str, a: Any, b: Any) -> bool:
    if rtype in ("CNAME", "MX", "NS", "PTR") and isinstance(a, str) and isinstance(b, str):
        return a.rstrip(".").lower() == b.rstrip(".").lower()
    if rtype == "AAAA" and isinstance(a, str) and isinstance(b, str) and is_ipv6(a) and is_ipv6(b):
        return ipaddress.IPv6Address(a) == ipaddress.IPv6Address(b)
    return a == b


def conflict_error(record: dict[str, Any], others: Iterable[dict[str, Any]]) -> Error | None:
    """Identical-record and CNAME-at-the-same-name conflicts against the zone's other records."""
    same_name = [o for o in others if o["name"] == record["name"] and o["id"] != record.get("id")]
    for other in same_name:
        if other["type"] == record["type"] and _same_content(record["type"], other.get("content"),
                                                             record.get("content")):
            return error(81058, "An identical record already exists.")
    kinds = {o["type"] for o in same_name}
    if record["type"] == "CNAME" and kinds & {"A", "AAAA", "CNAME"}:
        return error(81053, "An A, AAAA, or CNAME record with that host already exists.")
    if record["type"] in ("A", "AAAA") and "CNAME" in kinds:
        return error(81054, "A CNAME record with that host already exists. For more details, "
                            f"refer to <{RECORDS_WITH_SAME_NAME_DOC}>.")
    return None


# -- listing -------------------------------------------------------------------------------------
def _flag(value: str | None) -> bool | None:
    return None if value is None else value == "true"


def record_matches(record: dict[str, Any], filters: dict[str, str], match: str) -> bool:
    """The ``type``/``name``/``content``/``proxied``/``comment`` filters, combined with ``match``."""
    tests: list[bool] = []
    if "type" in filters:
        tests.append(record["type"] == filters["type"])
    if "name" in filters:
        tests.append(record["name"] == filters["name"].rstrip(".").lower())
    if "content" in filters:
        tests.append(_same_content(record["type"], record.get("content"), filters["content"]))
    if "proxied" in filters:
        tests.append(record.get("proxied", False) is _flag(filters["proxied"]))
    if "comment" in filters:
        tests.append((record.get("comment") or "").lower() == filters["comment"].lower())
    if not tests:
        return True
    return any(tests) if match == "any" else all(tests)


def sort_records(records: list[dict[str, Any]], order: str, direction: str) -> list[dict[str, Any]]:
    """Order by one field (``type`` by default), ties broken by name then id for stable pages."""
    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        value = r.get(order)
        return (str(value) if not isinstance(value, (int, float)) else value, r["name"], r["id"])
    return sorted(records, key=key, reverse=(direction == "desc"))


def zone_name_matches(name: str, query: str) -> bool:
    """The ``name`` filter of ``GET /zones``: ``equal`` by default, or ``<operator>:<value>``."""
    operator, _, value = query.partition(":") if ":" in query else ("equal", "", query)
    folded = operator.endswith("_case_sensitive")
    target, candidate = (value, name) if folded else (value.lower(), name.lower())
    tests = {
        "equal": candidate == target, "not_equal": candidate != target,
        "starts_with": candidate.startswith(target), "ends_with": candidate.endswith(target),
        "contains": target in candidate,
        "starts_with_case_sensitive": candidate.startswith(target),
        "ends_with_case_sensitive": candidate.endswith(target),
        "contains_case_sensitive": target in candidate,
    }
    return tests.get(operator, candidate == query.lower())


def paginate(items: list[Any], page: int, per_page: int) -> tuple[list[Any], dict[str, int]]:
    """One page and its ``result_info`` (``total_count``: all items matching the filters)."""
    total = len(items)
    chunk = items[(page - 1) * per_page: page * per_page]
    pages = (total + per_page - 1) // per_page
    return chunk, {"page": page, "per_page": per_page, "count": len(chunk),
                   "total_count": total, "total_pages": pages}

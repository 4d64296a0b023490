# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small Cloudflare API v4 client for the collection's modules (private).

Why not the official ``cloudflare`` SDK: it is a large generated package (and another pinned
dependency on every controller) for the few calls needed here (zone lookup, paginated record
list, batch; a zone setting; the zone-level Authenticated Origin Pulls certificates and switch).
This client is ~250 lines on ansible's own ``open_url``, works with any Python the controller
runs, counts its calls, and implements the retry policy the module documents:

* HTTP 429 (reads and writes): wait ``retry-after`` seconds, then send again. Cloudflare refuses a
  rate-limited call before processing it ("all API calls for the next five minutes will be
  blocked", https://developers.cloudflare.com/fundamentals/api/reference/limits/), so resending
  it is safe. When the wait would take the total past ``max_wait`` the call fails at once, saying
  how long Cloudflare asked to wait; it never sleeps past ``max_wait``.
* 5xx and connection errors: reads (GET) are retried with exponential back-off from ``backoff``
  seconds. Writes are never resent: a write that got a 5xx or no answer may have been applied, so
  the error says so (:attr:`CloudflareError.outcome` ``unknown``) and the caller lists the records
  again and plans again (``_cf_plan.converge``).
* all bounded by ``max_retries`` and by ``max_wait`` seconds of total waiting.

The token travels only in the Authorization header and never appears in errors or results.
"""
from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.six.moves.http_client import HTTPException
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import urlencode
from ansible.module_utils.urls import open_url

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
READS = frozenset({"GET", "HEAD"})
# Refusals that mean "your view of the zone is stale" (nothing applied: a batch is one transaction):
# 81044 Record does not exist, 81057 Record already exists, 81058 An identical record already exists.
STALE_CODES = frozenset({81044, 81057, 81058})


class CloudflareError(Exception):
    """A failed call: HTTP status (None: no answer) and Cloudflare's ``errors`` list (code, message).

    ``retry_after`` is set on a 429 that was not waited out (with ``waited`` and ``max_wait``).
    """

    def __init__(self, status, errors, method="", path="", retry_after=None, waited=0.0, max_wait=None,
                 gave_up=""):
        self.status = status
        self.errors = errors or [{"code": None, "message": "no error details in the answer"}]
        self.method = method
        self.path = path
        self.retry_after = retry_after
        self.waited = waited
        self.max_wait = max_wait
        self.gave_up = gave_up
        super().__init__(self.summary())

    @property
    def is_write(self):
        return bool(self.method) and self.method not in READS

    @property
    def outcome(self):
        """For a write: ``unknown`` (no answer or 5xx: it may have been applied), ``stale`` (refused
        because the zone changed since it was listed) or ``refused`` (not applied)."""
        if self.status is None or self.status >= 500:
            return "unknown"
        if any(e.get("code") in STALE_CODES for e in self.errors):
            return "stale"
        return "refused"

    def summary(self):
        parts = [f"{e.get('code')}: {e.get('message')}" for e in self.errors]
        status = f"HTTP {self.status}" if self.status is not None else "no answer"
        msg = f"Cloudflare API {self.method} {self.path} failed ({status}): " + "; ".join(parts)
        if self.retry_after is not None:
            msg += (f". Cloudflare asked to wait {self.retry_after:g} s (retry-after) before calling again"
                    f" (it blocks for up to 300 s after 1,200 requests in 5 minutes); ")
            if self.gave_up:
                msg += f"{self.gave_up}, so not waiting"
            else:
                msg += (f"that is more than max_wait={self.max_wait:g} s allows (already waited {self.waited:g} s),"
                        " so not waiting: run again later or raise max_wait")
        elif self.gave_up:
            msg += f" ({self.gave_up})"
        if self.is_write and self.outcome == "unknown":
            msg += "; the write may or may not have been applied"
        return msg

    def as_dict(self):
        out = {"status": self.status, "method": self.method, "path": self.path,
               "errors": [{"code": e.get("code"), "message": e.get("message")} for e in self.errors]}
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        if self.is_write:
            out["outcome"] = self.outcome
        return out


def _errors_of(raw):
    """The ``errors`` list of an error answer (None when it has none or is not JSON)."""
    try:
        return (json.loads(raw) if raw else {}).get("errors")
    except (ValueError, AttributeError):
        return [{"code": None, "message": "answer is not JSON"}]


def retry_after_seconds(headers, now=None):
    """``retry-after`` in seconds: Cloudflare sends whole seconds; an HTTP date is accepted too.
    1 when the header is missing or unreadable."""
    value = (headers or {}).get("retry-after")
    if value is None:
        return 1.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return 1.0
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def common_argument_spec():
    """The options every Cloudflare module of the collection shares (documented once, in the
    ``honeydue.infra.cloudflare`` doc fragment)."""
    return dict(
        api_token=dict(type="str", required=True, no_log=True, fallback=(env_fallback, ["CLOUDFLARE_API_TOKEN"])),
        api_base_url=dict(type="str", default=DEFAULT_BASE_URL),
        timeout=dict(type="int", default=30),
        max_retries=dict(type="int", default=5),
        max_wait=dict(type="float", default=60.0),
        max_replans=dict(type="int", default=3),
    )


def client_from_params(params):
    """A :class:`CloudflareClient` from a module's parameters (see :func:`common_argument_spec`)."""
    return CloudflareClient(params["api_token"], params["api_base_url"], timeout=params["timeout"],
                            max_retries=params["max_retries"], max_wait=params["max_wait"])


class CloudflareClient:
    def __init__(self, token, base_url=DEFAULT_BASE_URL, timeout=30, max_retries=5, max_wait=60.0,
                 backoff=0.5, sleep=time.sleep):
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.backoff = backoff
        self._sleep = sleep
        self.calls = 0
        self.waited = 0.0

    # -- transport ---------------------------------------------------------------------------
    def request(self, method, path, query=None, body=None):
        url = self.base_url + path + ("?" + urlencode(query) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        read = method in READS
        attempt = 0
        while True:
            attempt += 1
            self.calls += 1
            try:
                resp = open_url(url, method=method, data=data, timeout=self.timeout,
                                headers={"Authorization": f"Bearer {self._token}",
                                         "Content-Type": "application/json"},
                                validate_certs=True, follow_redirects="none")
                raw, status = resp.read(), resp.getcode()
            except HTTPError as exc:
                payload = exc.read() if hasattr(exc, "read") else b""
                wait = retry_after_seconds(exc.headers) if exc.code == 429 else None
                delay, gave_up = self._retry_delay(exc.code, wait, attempt, read)
                if delay is None:
                    raise CloudflareError(exc.code, _errors_of(payload), method, path, retry_after=wait,
                                          waited=self.waited, max_wait=self.max_wait, gave_up=gave_up) from None
            except (URLError, OSError, HTTPException) as exc:
                # No answer: refused, reset, timed out, or closed before the status line.
                reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
                delay, gave_up = self._retry_delay(None, None, attempt, read)
                if delay is None:
                    raise CloudflareError(None, [{"code": None, "message": f"connection failed: {reason}"}],
                                          method, path, gave_up=gave_up) from None
            else:
                return self._decode(raw, status, method, path)
            self._sleep(delay)
            self.waited += delay

    def _retry_delay(self, status, retry_after, attempt, read):
        """(seconds to wait before sending again, None) or (None, why not) when it must not be sent again."""
        if status == 429:
            delay = 1.0 if retry_after is None else retry_after
        elif status is None or status >= 500:
            if not read:
                return None, ""  # a write is never resent blindly: the caller lists and plans again
            delay = self.backoff * (2 ** (attempt - 1))
        else:
            return None, ""
        if attempt > self.max_retries:
            return None, f"gave up after max_retries={self.max_retries} retries"
        if self.waited + delay > self.max_wait:
            return None, "" if status == 429 else f"waiting {delay:g} s more would exceed max_wait={self.max_wait:g} s"
        return delay, ""

    @staticmethod
    def _decode(raw, status, method, path):
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            raise CloudflareError(status, [{"code": None, "message": "answer is not JSON"}], method, path) from None
        if not doc.get("success", False):
            raise CloudflareError(status, doc.get("errors"), method, path)
        return doc

    # -- API -----------------------------------------------------------------------------------
    def zone_id(self, name):
        doc = self.request("GET", "/zones", {"name": name.rstrip(".").lower(), "per_page": 50})
        zones = doc.get("result") or []
        if len(zones) != 1:
            raise CloudflareError(404, [{"code": 1001, "message": f"zone {name} not found (or not visible to this token)"}],
                                  "GET", "/zones")
        return zones[0]["id"]

    def list_records(self, zone_id, rtype=None, per_page=5000):
        """Every record of the zone (of ``rtype`` when given), following pagination."""
        out, page = [], 1
        while True:
            query = {"per_page": per_page, "page": page}
            if rtype:
                query["type"] = rtype
            doc = self.request("GET", f"/zones/{zone_id}/dns_records", query)
            out.extend(doc.get("result") or [])
            info = doc.get("result_info") or {}
            if page >= int(info.get("total_pages") or 1):
                return out
            page += 1

    def batch(self, zone_id, batch):
        """One batch call (one transaction). Never resent on 5xx or a lost answer (see the module doc)."""
        body = {k: v for k, v in batch.items() if v}
        return self.request("POST", f"/zones/{zone_id}/dns_records/batch", body=body).get("result") or {}

    # -- zone settings (Zone Settings: Read / Edit) ----------------------------------------------
    def get_setting(self, zone_id, name):
        """``GET /zones/{id}/settings/{name}``: ``{id, value, editable, modified_on}``."""
        return self.request("GET", f"/zones/{zone_id}/settings/{name}").get("result") or {}

    def edit_setting(self, zone_id, name, value):
        """``PATCH /zones/{id}/settings/{name}`` with ``{"value": value}``."""
        return self.request("PATCH", f"/zones/{zone_id}/settings/{name}", body={"value": value}).get("result") or {}

    # -- zone-level Authenticated Origin Pulls (SSL and Certificates: Read / Edit) ---------------
    def list_aop_certificates(self, zone_id):
        """``GET /zones/{id}/origin_tls_client_auth``: the zone's client certificates (one page)."""
        return self.request("GET", f"/zones/{zone_id}/origin_tls_client_auth").get("result") or []

    def get_aop_certificate(self, zone_id, certificate_id):
        return self.request("GET", f"/zones/{zone_id}/origin_tls_client_auth/{certificate_id}").get("result") or {}

    def upload_aop_certificate(self, zone_id, certificate, private_key):
        """``POST /zones/{id}/origin_tls_client_auth``. The key travels only in this request's body."""
        body = {"certificate": certificate, "private_key": private_key}
        return self.request("POST", f"/zones/{zone_id}/origin_tls_client_auth", body=body).get("result") or {}

    def delete_aop_certificate(self, zone_id, certificate_id):
        return self.request("DELETE", f"/zones/{zone_id}/origin_tls_client_auth/{certificate_id}").get("result") or {}

    def get_aop_settings(self, zone_id):
        """``GET /zones/{id}/origin_tls_client_auth/settings``: ``{"enabled": bool}``."""
        return self.request("GET", f"/zones/{zone_id}/origin_tls_client_auth/settings").get("result") or {}

    def set_aop_settings(self, zone_id, enabled):
        body = {"enabled": bool(enabled)}
        return self.request("PUT", f"/zones/{zone_id}/origin_tls_client_auth/settings", body=body).get("result") or {}

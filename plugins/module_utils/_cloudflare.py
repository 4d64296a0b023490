# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small Cloudflare API v4 client for the collection's modules (private).

Why not the official ``cloudflare`` SDK: it is a large generated package (and another pinned
dependency on every controller) for the four calls needed here (zone lookup, paginated record
list, batch). This client is ~150 lines on ansible's own ``open_url``, works with any Python the
controller runs, counts its calls, and implements the retry policy the module documents:

* HTTP 429: wait ``retry-after`` seconds (Cloudflare sends it), then retry;
* 5xx and connection errors: exponential back-off from ``backoff`` seconds;
* both bounded by ``max_retries`` and by ``max_wait`` seconds of total waiting.

The token travels only in the Authorization header and never appears in errors or results.
"""
from __future__ import annotations

import json
import time

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import urlencode
from ansible.module_utils.urls import open_url

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"


class CloudflareError(Exception):
    """A failed call: HTTP status and Cloudflare's ``errors`` list (code, message)."""

    def __init__(self, status, errors, method="", path=""):
        self.status = status
        self.errors = errors or [{"code": None, "message": "no error details in the answer"}]
        self.method = method
        self.path = path
        super().__init__(self.summary())

    def summary(self):
        parts = [f"{e.get('code')}: {e.get('message')}" for e in self.errors]
        return f"Cloudflare API {self.method} {self.path} failed (HTTP {self.status}): " + "; ".join(parts)

    def as_dict(self):
        return {"status": self.status, "method": self.method, "path": self.path,
                "errors": [{"code": e.get("code"), "message": e.get("message")} for e in self.errors]}


def _errors_of(raw):
    """The ``errors`` list of an error answer (None when it has none or is not JSON)."""
    try:
        return (json.loads(raw) if raw else {}).get("errors")
    except (ValueError, AttributeError):
        return [{"code": None, "message": "answer is not JSON"}]


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
        attempt = 0
        while True:
            attempt += 1
            self.calls += 1
            try:
                resp = open_url(url, method=method, data=data, timeout=self.timeout,
                                headers={"Authorization": f"Bearer {self._token}",
                                         "Content-Type": "application/json"},
                                validate_certs=True, follow_redirects="none")
                return self._decode(resp.read(), resp.getcode(), method, path)
            except HTTPError as exc:
                payload = exc.read() if hasattr(exc, "read") else b""
                delay = self._retry_delay(exc.code, exc.headers, attempt)
                if delay is None:
                    raise CloudflareError(exc.code, _errors_of(payload), method, path) from None
            except URLError as exc:
                delay = self._retry_delay(None, None, attempt)
                if delay is None:
                    raise CloudflareError(None, [{"code": None, "message": f"connection failed: {exc.reason}"}],
                                          method, path) from None
            self._sleep(delay)
            self.waited += delay

    def _retry_delay(self, status, headers, attempt):
        """Seconds to wait before retrying, or None when the call must not be retried."""
        if attempt > self.max_retries:
            return None
        if status == 429:
            try:
                delay = float((headers or {}).get("retry-after") or 1)
            except ValueError:
                delay = 1.0
        elif status is None or status >= 500:
            delay = self.backoff * (2 ** (attempt - 1))
        else:
            return None
        if self.waited + delay > self.max_wait:
            return None
        return delay

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
        body = {k: v for k, v in batch.items() if v}
        return self.request("POST", f"/zones/{zone_id}/dns_records/batch", body=body).get("result") or {}

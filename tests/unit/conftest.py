"""Running a module's main() in-process: module args patched in, exit_json/fail_json caught.

``run_module(main, args, check_mode=False, diff=False)`` returns the module's result dict, with
``failed: True`` and ``msg`` when it called fail_json. The transports are the tests' business
(see ``FakeCloudflare`` below for the Cloudflare modules, and test_module_hcloud_fleet.py).
"""
from __future__ import annotations

import io
import json
from unittest import mock
from urllib.error import HTTPError
from urllib.parse import parse_qs, urlsplit

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args


class _ModuleExit(Exception):
    def __init__(self, result):
        super().__init__(result)
        self.result = result


def _exit_json(self, **kwargs):
    raise _ModuleExit(kwargs)


def _fail_json(self, msg, **kwargs):
    raise _ModuleExit({**kwargs, "failed": True, "msg": msg})


@pytest.fixture
def run_module():
    def run(main, args, check_mode=False, diff=False):
        args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        with patch_module_args(args), \
                mock.patch.object(AnsibleModule, "exit_json", _exit_json), \
                mock.patch.object(AnsibleModule, "fail_json", _fail_json):
            try:
                main()
            except _ModuleExit as done:
                return done.result
        raise AssertionError("the module returned without exit_json or fail_json")
    return run


class _Answer:
    def __init__(self, status, payload):
        self._status, self._raw = status, json.dumps(payload).encode()

    def read(self):
        return self._raw

    def getcode(self):
        return self._status


class FakeCloudflare:
    """Cloudflare API v4 in memory, in place of ``open_url`` in module_utils/_cloudflare.py.

    One zone with DNS records and the ``ssl`` setting. ``fail(method, path, status, errors,
    apply=False)`` makes the next such call answer ``status`` (after applying it when ``apply``:
    an answer lost after the write landed). ``calls`` records ``(method, path, query, body, token)``.
    """

    def __init__(self, zone, zone_id, records=(), ssl="flexible"):
        self.zone, self.zone_id = zone, zone_id
        self.records = [dict(r) for r in records]
        self.ssl = ssl
        self.calls = []
        self._faults = {}
        self._next_id = 0

    def fail(self, method, path, status, errors=None, apply=False, headers=None):
        self._faults[(method, path)] = (status, errors or [], apply, headers or {})

    # -- the patched transport ---------------------------------------------------------------
    def open_url(self, url, method="GET", data=None, headers=None, **_kwargs):
        parts = urlsplit(url)
        path = parts.path.split("/client/v4", 1)[1]
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = json.loads(data) if data else None
        token = (headers or {}).get("Authorization", "").removeprefix("Bearer ")
        self.calls.append((method, path, query, body, token))
        fault = self._faults.pop((method, path), None)
        if fault is not None and not fault[2]:
            return self._error(url, fault)
        status, payload = self._route(method, path, query, body)
        if fault is not None:
            return self._error(url, fault)
        if status >= 400:
            return self._error(url, (status, payload["errors"], False, {}))
        return _Answer(status, payload)

    @staticmethod
    def _error(url, fault):
        status, errors, _apply, headers = fault
        raw = json.dumps({"success": False, "errors": errors, "result": None}).encode()
        raise HTTPError(url, status, "error", headers, io.BytesIO(raw))

    @staticmethod
    def _ok(result, **extra):
        return 200, {"success": True, "errors": [], "messages": [], "result": result, **extra}

    def _route(self, method, path, query, body):
        zone_path = f"/zones/{self.zone_id}"
        if (method, path) == ("GET", "/zones"):
            return self._ok([{"id": self.zone_id, "name": self.zone}] if query.get("name") == self.zone else [])
        if (method, path) == ("GET", zone_path + "/dns_records"):
            rows = [r for r in self.records if r["type"] == query.get("type", r["type"])]
            return self._ok(rows, result_info={"page": 1, "total_pages": 1, "count": len(rows)})
        if (method, path) == ("POST", zone_path + "/dns_records/batch"):
            return self._ok(self._batch(body))
        if path == zone_path + "/settings/ssl":
            if method == "PATCH":
                self.ssl = body["value"]
            return self._ok({"id": "ssl", "value": self.ssl, "editable": True})
        return 404, {"success": False, "errors": [{"code": 7003, "message": f"no route {method} {path}"}]}

    def _batch(self, body):
        by_id = {r["id"]: r for r in self.records}
        for op in body.get("deletes", []):
            self.records.remove(by_id.pop(op["id"]))
        for op in body.get("patches", []):
            by_id[op["id"]].update({k: v for k, v in op.items() if k != "id"})
        posted = []
        for op in body.get("posts", []):
            self._next_id += 1
            posted.append(dict(op, id=f"new{self._next_id}"))
            self.records.append(posted[-1])
        return {"deletes": body.get("deletes", []), "patches": body.get("patches", []), "posts": posted}


@pytest.fixture
def fake_cloudflare(monkeypatch):
    """``fake_cloudflare(zone, zone_id, records=..., ssl=...)`` installs a FakeCloudflare and returns it."""
    from ansible_collections.honeydue.infra.plugins.module_utils import _cloudflare

    def install(*args, **kwargs):
        fake = FakeCloudflare(*args, **kwargs)
        monkeypatch.setattr(_cloudflare, "open_url", fake.open_url)
        return fake
    return install

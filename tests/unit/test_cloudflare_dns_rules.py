"""The pure DNS rules of the Cloudflare stand-in (lab/standins/_cfdns.py)."""
from __future__ import annotations

import pytest

from lab.standins import _cfdns as dns

ZONE = "honeydue.example"


@pytest.mark.parametrize("name, expected", [
    ("api", f"api.{ZONE}"), ("@", ZONE), ("", ZONE), (f"{ZONE}.", ZONE), ("API.Honeydue.Example", f"api.{ZONE}"),
    ("a.b", f"a.b.{ZONE}"), ("xhoneydue.example", f"xhoneydue.example.{ZONE}"),
])
def test_normalise_name(name, expected):
    assert dns.normalise_name(name, ZONE) == expected


@pytest.mark.parametrize("rtype, content, code", [
    ("A", "192.0.2.1", None), ("A", "192.0.2.256", 9005), ("A", "01.2.3.4", 9005), ("A", 5, 9005),
    ("AAAA", "2001:db8::1", None), ("AAAA", "192.0.2.1", 9006),
    ("CNAME", "target.example", None), ("CNAME", "bad_host name", 1004), ("CNAME", "192.0.2.1", 1004),
    ("CNAME", f"x.{ZONE}", 1004), ("TXT", "anything", None),
])
def test_content_error(rtype, content, code):
    err = dns.content_error(rtype, f"x.{ZONE}", content)
    assert (err["code"] if err else None) == code


@pytest.mark.parametrize("ttl, ok", [(1, True), (60, True), (86400, True), (59, False), (30, False),
                                     (86401, False), (0, False), ("300", False)])
def test_ttl(ttl, ok):
    assert (dns.ttl_error(ttl) is None) is ok


@pytest.mark.parametrize("record, ttl", [
    ({"proxied": True, "ttl": 300}, 1), ({"proxied": True, "ttl": 1}, 1), ({"proxied": True}, 1),
    ({"proxied": False, "ttl": 300}, 300), ({"ttl": 120}, 120), ({}, 1),
])
def test_proxied_records_are_stored_with_ttl_1(record, ttl):
    assert dns.stored_ttl(record) == ttl


def test_proxied_only_for_address_records():
    assert dns.proxied_error("CNAME", True) is None
    assert dns.proxied_error("TXT", False) is None
    assert dns.proxied_error("MX", True)["error_chain"][0]["code"] == 9041


def _rec(rid, rtype, name, content):
    return {"id": rid, "type": rtype, "name": f"{name}.{ZONE}", "content": content}


def test_conflicts():
    zone = [_rec("1", "A", "a", "192.0.2.1"), _rec("2", "CNAME", "c", "t.example")]
    assert dns.conflict_error(_rec(None, "A", "a", "192.0.2.1"), zone)["code"] == 81058
    assert dns.conflict_error(_rec("1", "A", "a", "192.0.2.1"), zone) is None  # itself, on update
    assert dns.conflict_error(_rec(None, "A", "a", "192.0.2.2"), zone) is None
    assert dns.conflict_error(_rec(None, "CNAME", "a", "t.example"), zone)["code"] == 81053
    assert dns.conflict_error(_rec(None, "AAAA", "c", "2001:db8::1"), zone)["code"] == 81054
    assert dns.conflict_error(_rec(None, "TXT", "c", "x"), zone) is None
    assert dns.conflict_error(_rec(None, "CNAME", "c", "T.Example."), zone)["code"] == 81058


def test_paginate():
    page, info = dns.paginate(list(range(7)), 2, 3)
    assert page == [3, 4, 5]
    assert info == {"page": 2, "per_page": 3, "count": 3, "total_count": 7, "total_pages": 3}
    assert dns.paginate([], 1, 20)[1]["total_pages"] == 0


@pytest.mark.parametrize("query, hit", [(ZONE, True), ("HONEYDUE.example", True), ("other.example", False),
                                        ("contains:due", True), ("starts_with:honey", True),
                                        ("ends_with:.org", False), ("not_equal:" + ZONE, False)])
def test_zone_name_filter(query, hit):
    assert dns.zone_name_matches(ZONE, query) is hit

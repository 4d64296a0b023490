"""The Cloudflare stand-in's global rate limit (lab/standins/cloudflare.py RateLimiter), clock in hand.

Cloudflare: 1,200 requests per five minutes per user; past it, every call is blocked for the next
five minutes with 429 and ``retry-after`` (seconds, rounded up)
(https://developers.cloudflare.com/fundamentals/api/reference/limits/).
"""
from __future__ import annotations

import pytest

from lab.standins.cloudflare import CloudflareStandIn, RateLimiter


def test_defaults_are_cloudflares():
    limiter = RateLimiter()
    assert (limiter.limit, limiter.window, limiter.block) == (1200, 300.0, 300.0)


def test_the_request_past_the_limit_blocks_every_call_for_block_seconds():
    limiter = RateLimiter(limit=1200, window=300, block=300)
    assert all(limiter.admit(t * 0.1) is None for t in range(1200))  # 1,200 in two minutes
    assert limiter.admit(120.0) == 300
    assert limiter.admit(120.5) == 300  # rounded up
    assert limiter.admit(419.2) == 1
    assert limiter.admit(420.0) is None  # five minutes later: a fresh window


def test_the_window_slides():
    limiter = RateLimiter(limit=2, window=10, block=300)
    assert limiter.admit(0) is None and limiter.admit(5) is None
    assert limiter.admit(10) is None  # the request at 0 left the window
    assert limiter.admit(11) == 300


def test_headers_say_what_is_left_and_when_it_resets():
    limiter = RateLimiter(limit=3, window=300, block=300)
    limiter.admit(0)
    assert limiter.headers(0) == {"Ratelimit": '"default";r=2;t=300', "Ratelimit-Policy": '"default";q=3;w=300'}
    limiter.admit(100)
    limiter.admit(100)
    limiter.admit(100)  # blocked until 400
    assert limiter.headers(250)["Ratelimit"] == '"default";r=0;t=150'


@pytest.mark.parametrize("kwargs", [{"limit": 0}, {"window": 0}, {"block": 301}, {"block": 0}])
def test_unrealistic_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        RateLimiter(**kwargs)


@pytest.mark.parametrize("seconds", [0, 301, "300", True])
def test_a_rate_limit_answer_waits_1_to_300_seconds(seconds):
    api = CloudflareStandIn()
    assert api.rate_limited(300).headers["retry-after"] == "300"
    with pytest.raises(ValueError):
        api.rate_limited(seconds)
    with pytest.raises(ValueError):
        CloudflareStandIn(retry_after=seconds)

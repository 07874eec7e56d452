"""The Stripe fake's rate limiter: under the limit everything passes; past it, reads are refused
like Stripe refuses them (429, code rate_limit, RateLimitError in the SDK, nothing executed), and
the SDK's own retries do not retry them."""

from __future__ import annotations

import json
from typing import Any

import pytest
import stripe

from tests.stripe_fake import TEST_API_KEY, FakeStripe, make_stripe_client
from tests.stripe_fake.rate_limit import RATE_LIMIT_MESSAGE, RateLimiter
from tests.support.clock import ManualClock

AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1000.0)


@pytest.fixture
def fake(clock: ManualClock) -> FakeStripe:
    fake = FakeStripe(seed=7)
    fake.limit_rate(3, clock=clock)
    return fake


def get(fake: FakeStripe, path: str = "/v1/prices") -> tuple[int, dict[str, str], dict[str, object]]:
    status, headers, body = fake.handle("GET", path, "", b"", AUTH)
    return status, headers, json.loads(body)


def test_reads_under_the_limit_pass(fake: FakeStripe, clock: ManualClock) -> None:
    for _ in range(30):
        assert get(fake)[0] == 200
        clock.advance(1 / 3)
    assert fake.rate_limiter is not None
    assert (fake.rate_limiter.allowed, fake.rate_limiter.limited) == (30, 0)


def test_a_burst_past_the_limit_gets_stripes_429(fake: FakeStripe, clock: ManualClock) -> None:
    assert [get(fake)[0] for _ in range(3)] == [200, 200, 200]
    status, headers, body = get(fake)
    assert status == 429
    assert headers["stripe-rate-limited-reason"] == "global-rate"
    assert "request-id" in headers
    assert body == {
        "error": {
            "code": "rate_limit",
            "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
            "message": RATE_LIMIT_MESSAGE,
            "type": "invalid_request_error",
        }
    }
    assert fake.requests[-1].status == 429 and fake.requests[-1].fault == "rate_limited"
    # The bucket refills at the rate: one more read a third of a second later, not two.
    clock.advance(1 / 3)
    assert [get(fake)[0] for _ in range(2)] == [200, 429]
    assert fake.rate_limiter is not None
    assert (fake.rate_limiter.allowed, fake.rate_limiter.limited) == (4, 2)


def test_writes_are_not_limited_by_the_read_limiter(fake: FakeStripe) -> None:
    for _ in range(3):
        get(fake)
    status, _, _ = fake.handle("POST", "/v1/customers", "", b"email=a%40example.com", AUTH)
    assert status == 200
    assert get(fake)[0] == 429


def test_the_sdk_raises_rate_limit_error_and_does_not_retry_it(fake: FakeStripe) -> None:
    client = make_stripe_client(fake, max_network_retries=2)
    for _ in range(3):
        client.v1.prices.list()
    fake.reset_requests()
    with pytest.raises(stripe.RateLimitError) as raised:
        client.v1.prices.list()
    assert raised.value.http_status == 429
    # The SDK builds RateLimitError without the code; the body carries it.
    body: Any = raised.value.json_body
    assert body["error"]["code"] == "rate_limit"
    # No Stripe-Should-Retry header: stripe-python 16 does not retry a 429, whatever max_network_retries.
    assert [request.status for request in fake.requests] == [429]


def test_turning_the_limiter_off(fake: FakeStripe) -> None:
    for _ in range(3):
        get(fake)
    assert fake.limit_rate(None) is None
    assert get(fake)[0] == 200


def test_all_methods_when_asked(clock: ManualClock) -> None:
    limiter = RateLimiter(1, ("GET", "post"), clock)
    assert limiter.applies_to("POST") and limiter.applies_to("get") and not limiter.applies_to("DELETE")
    assert [limiter.take(), limiter.take()] == [True, False]
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)

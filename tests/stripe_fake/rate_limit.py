"""Stripe's basic rate limiter, for the fake: a token bucket per account.

Stripe limits requests per second per account (test mode: 25 reads and 25 writes per second; live
mode: 100 of each) and answers the excess with HTTP 429, code `rate_limit`, without executing it.
The fake limits one class of requests (by default reads, `GET`: the storm benchmark's Stripe load
is reads, and Stripe counts reads and writes apart). The bucket holds one second of requests and
refills continuously, so a burst of `per_second` passes at once and then `per_second` a second.

stripe-python 16.1.0 does not retry a 429 unless the response carries `Stripe-Should-Retry: true`,
which Stripe's rate limiter does not send (see `HTTPClient._should_retry`): with any
`max_network_retries`, each rejected request reaches the caller as `stripe.RateLimitError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from tests.stripe_fake.errors import StripeAPIError

RATE_LIMIT_MESSAGE = "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests."
# Stripe names which limiter refused the request (global-rate, endpoint-rate, global-concurrency, ...).
RATE_LIMITED_REASON = "global-rate"


def rate_limit_error() -> StripeAPIError:
    """Stripe's body for a rate-limited request: {"error": {"code": "rate_limit", "doc_url", "message",
    "type": "invalid_request_error"}} with HTTP 429 (never stored for idempotency: nothing ran)."""
    return StripeAPIError(429, RATE_LIMIT_MESSAGE, code="rate_limit", stored=False)


@dataclass
class RateLimiter:
    """A token bucket of `per_second` requests for the `methods` it limits; counts what it saw."""

    per_second: float
    methods: Collection[str] = ("GET",)
    clock: Callable[[], float] = time.monotonic
    allowed: int = 0
    limited: int = 0
    _tokens: float = field(init=False)
    _last: float = field(init=False)

    def __post_init__(self) -> None:
        if self.per_second <= 0:
            raise ValueError("per_second must be positive")
        self.methods = frozenset(method.upper() for method in self.methods)
        self._tokens = float(self.per_second)
        self._last = self.clock()

    def applies_to(self, method: str) -> bool:
        return method.upper() in self.methods

    def take(self) -> bool:
        """True when one more request may pass now (and counts it); False for a 429."""
        now = self.clock()
        self._tokens = min(float(self.per_second), self._tokens + (now - self._last) * self.per_second)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self.allowed += 1
            return True
        self.limited += 1
        return False

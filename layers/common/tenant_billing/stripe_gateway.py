"""The typed StripeClient, created lazily and cached per API key, and the translation of Stripe
errors into domain errors. Imported only by the functions that talk to Stripe: the status path
never pays for the Stripe SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import stripe

from tenant_billing.errors import BillingMisconfiguredError, BillingNotConfiguredError, StripeUnavailableError
from tenant_billing.observability import logger, metrics
from tenant_billing.settings import get_settings
from tenant_billing.stripe_credentials import get_stripe_credentials

# The API version stripe-python 16.1.0 is pinned to. The webhook endpoint in the Stripe
# Dashboard must use the same version, so event payloads have the shapes this code reads.
STRIPE_API_VERSION = "2026-10-28.endive"


def build_http_client() -> stripe.HTTPClient:
    """A bounded timeout (the SDK's default is 80 s, longer than the function's)."""
    settings = get_settings()
    return stripe.RequestsClient(timeout=(2.0, settings.STRIPE_TIMEOUT_SECONDS))


@lru_cache(maxsize=2)
def _client_for_key(api_key: str) -> stripe.StripeClient:
    settings = get_settings()
    return stripe.StripeClient(
        api_key,
        stripe_version=STRIPE_API_VERSION,
        base_addresses={"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None,
        # StripeClient retries nothing by default. With retries, connection errors, 409 and 5xx
        # are retried with backoff, reusing the same Idempotency-Key for POSTs.
        max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
        http_client=build_http_client(),
    )


def get_stripe_client() -> stripe.StripeClient:
    """The client for the current key (a rotated key gets a new client once the cache expires)."""
    credentials = get_stripe_credentials()
    if not credentials.secret_key:
        raise BillingNotConfiguredError("billing is not configured")
    return _client_for_key(credentials.secret_key)


def clear_client_cache() -> None:
    _client_for_key.cache_clear()


@contextmanager
def stripe_errors(operation: str) -> Iterator[None]:
    """Map Stripe's exceptions to domain errors. Stripe's messages are never passed on or logged:
    only the error class, code, param, HTTP status and request id are."""
    try:
        yield
    except stripe.StripeError as exc:
        details = {
            "operation": operation,
            "stripe_error": type(exc).__name__,
            "stripe_code": exc.code,
            "http_status": exc.http_status,
            "request_id": exc.request_id,
            "param": getattr(exc, "param", None),
        }
        if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
            logger.error("Stripe rejected our credentials", extra=details)
            metrics.add_metric(name="StripeMisconfigured", unit="Count", value=1)
            raise BillingMisconfiguredError("billing is misconfigured") from None
        if isinstance(exc, stripe.InvalidRequestError) and not isinstance(exc, stripe.IdempotencyError):
            # Our request was wrong (a deleted price, a setting Stripe refuses): an operator must act.
            logger.error("Stripe rejected a request", extra=details)
            metrics.add_metric(name="StripeMisconfigured", unit="Count", value=1)
            raise BillingMisconfiguredError("billing is misconfigured") from None
        logger.warning("Stripe is unavailable", extra=details)
        metrics.add_metric(name="StripeUnavailable", unit="Count", value=1)
        raise StripeUnavailableError("the payment provider is unavailable, try again") from None

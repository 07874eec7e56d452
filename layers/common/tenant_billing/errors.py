"""Typed domain errors. Each carries a stable code and the HTTP status it maps to, given where
the class is declared: `class ForbiddenError(BillingError, status_code=403, code="forbidden")`.

`http_responses` is the one module that turns them into responses. Messages are
written for the caller: never a Stripe error message, a key or another organization's data.
"""

from __future__ import annotations

from typing import Any

from tenant_billing.records import frozen


class BillingError(Exception):
    """Base of every error a caller may see."""

    status_code = 500
    code = "internal_error"
    # True when the caller should try again later (5xx that Stripe and browsers retry).
    retryable = False

    def __init_subclass__(
        cls, *, status_code: int | None = None, code: str | None = None, retryable: bool | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.status_code = cls.status_code if status_code is None else status_code
        cls.code = code or cls.code
        cls.retryable = cls.retryable if retryable is None else retryable

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        # A class gives its usual code; one raise may name a more precise one ("invalid_json").
        if code:
            self.code = code


class InvalidRequestError(BillingError, status_code=400, code="invalid_request"):
    """The request itself is wrong; `field`, when set, names the part at fault."""


class PayloadTooLargeError(InvalidRequestError, status_code=413, code="payload_too_large"):
    """The body is over the API's limit."""


class UnsupportedMediaTypeError(InvalidRequestError, status_code=415, code="unsupported_media_type"):
    """The body is not sent as JSON."""


class UnauthorizedError(BillingError, status_code=401, code="unauthorized"):
    """The token carries no valid organization claim."""


class ForbiddenError(BillingError, status_code=403, code="forbidden"):
    """The caller's role does not allow the route."""


@frozen
class PaymentLinks:
    """What the caller needs to pay an open invoice: Stripe's hosted invoice page, and for a
    payment that needs 3-D Secure the PaymentIntent's client secret (to finish it with Stripe.js).
    Both are bearer values: returned to the organization's own caller, never logged."""

    hosted_invoice_url: str | None
    client_secret: str | None = None


class BillingStateError(BillingError):
    """The organization's billing state refuses the request; `code` says which state, and
    `payment`, when set, is the open invoice the caller is to pay."""

    def __init__(self, message: str, *, code: str, payment: PaymentLinks | None = None) -> None:
        super().__init__(message, code=code)
        self.payment = payment


class ConflictError(BillingStateError, status_code=409):
    """The request conflicts with the organization's billing state (a subscription there or missing, a
    checkout or a change in progress)."""


class PaymentRequiredError(BillingStateError, status_code=402):
    """The change was not applied: its invoice was not paid (declined, or 3-D Secure pending)."""

    def __init__(self, message: str, *, code: str, payment: PaymentLinks) -> None:
        super().__init__(message, code=code, payment=payment)


class BillingNotConfiguredError(BillingError, status_code=503, code="billing_not_configured"):
    """Billing is not set up yet: no Stripe secret or key, or the plans' prices are not configured."""


class BillingMisconfiguredError(BillingError, status_code=503, code="billing_misconfigured"):
    """Stripe rejected our credentials or a configured price: an operator must act."""


class StripeUnavailableError(BillingError, status_code=502, code="stripe_unavailable", retryable=True):
    """Stripe failed, did not answer or answered unusably, after the SDK's retries."""


class TransientStoreError(BillingError, status_code=503, code="temporarily_unavailable", retryable=True):
    """DynamoDB or Secrets Manager throttled or failed; nothing was written."""


class EventQueueUnavailableError(BillingError, status_code=503, code="temporarily_unavailable", retryable=True):
    """SQS throttled or failed: the event was not queued (Stripe delivers it again)."""


class StaleReadError(TransientStoreError):
    """Two reads of Stripe disagree and the clocks that ordered them cannot be trusted: retry."""


class ConfigurationError(BillingError, status_code=500, code="configuration_error"):
    """The deployment itself is wrong (a malformed environment variable or catalog)."""

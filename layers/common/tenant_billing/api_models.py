"""Request and response models of the HTTP API (camelCase on the wire), as plain dataclasses.

They are read and written by `wire` on every request, without pydantic (whose import and schema
building would be most of a cold start). The same declarations generate the OpenAPI document
(tests/support/generate_openapi.py turns each into the pydantic model Powertools documents), and
the tests check that `wire` accepts and refuses exactly what that pydantic model would.
"""

from __future__ import annotations

from dataclasses import field
from typing import Literal

from tenant_billing.records import frozen
from tenant_billing.wire import api

# --- responses -------------------------------------------------------------------------------------


@frozen(kw_only=True)
class PendingChangeView:
    """A change Stripe applies only once its invoice is paid: not granted until then."""

    plan: str | None
    site_quantity: int = field(metadata=api("siteQuantity"))
    expires_at: str | None = field(metadata=api("expiresAt", description="when Stripe drops the change if still unpaid"))


@frozen(kw_only=True)
class SubscriptionView:
    plan: str | None
    status: str
    site_quantity: int = field(metadata=api("siteQuantity"))
    interval: str | None = field(default=None, metadata=api(description="month or year; null when the prices are unknown"))
    plan_version: int | None = field(
        default=None,
        metadata=api(
            "planVersion", description="the catalog version of the plan's prices: an older one keeps its features and limits"
        ),
    )
    trial_end: str | None = field(default=None, metadata=api("trialEnd", description="while trialing: when the trial ends"))
    current_period_end: str | None = field(metadata=api("currentPeriodEnd"))
    cancel_at_period_end: bool = field(metadata=api("cancelAtPeriodEnd"))
    cancel_at: str | None = field(
        default=None, metadata=api("cancelAt", description="when Stripe will cancel, however the cancellation was scheduled")
    )
    pending_change: PendingChangeView | None = field(default=None, metadata=api("pendingChange"))


@frozen(kw_only=True)
class EntitlementView:
    features: list[str]
    limits: dict[str, int]


@frozen(kw_only=True)
class BillingStatusResponse:
    configured: bool
    subscription: SubscriptionView | None
    entitlement: EntitlementView
    has_stripe_customer: bool = field(metadata=api("hasStripeCustomer"))


@frozen(kw_only=True)
class UrlResponse:
    url: str


@frozen(kw_only=True)
class ChangePreviewResponse:
    plan: str
    site_quantity: int = field(metadata=api("siteQuantity"))
    interval: str
    plan_version: int = field(metadata=api("planVersion"))
    currency: str
    # Minor units (cents), as Stripe reports them.
    amount_due_now: int = field(metadata=api("amountDueNow"))
    next_invoice_total: int = field(metadata=api("nextInvoiceTotal"))
    next_invoice_date: str | None = field(metadata=api("nextInvoiceDate"))
    proration_date: int = field(metadata=api("prorationDate", description="when the server prorated (informational)"))
    preview_id: str = field(
        metadata=api(
            "previewId", description="pass it to POST /billing/subscription within 10 minutes to be charged exactly amountDueNow"
        )
    )
    expires_at: str = field(metadata=api("expiresAt", description="when previewId stops being accepted"))


@frozen(kw_only=True)
class InvoiceView:
    id: str
    number: str | None
    status: str | None
    amount_due: int = field(metadata=api("amountDue"))
    amount_paid: int = field(metadata=api("amountPaid"))
    currency: str
    period_start: str | None = field(
        metadata=api("periodStart", description="start of the service period the invoice bills (its subscription lines' period)")
    )
    period_end: str | None = field(metadata=api("periodEnd", description="end of that service period"))
    created: str | None
    hosted_invoice_url: str | None = field(metadata=api("hostedInvoiceUrl"))
    invoice_pdf: str | None = field(metadata=api("invoicePdf"))


@frozen(kw_only=True)
class InvoiceListResponse:
    invoices: list[InvoiceView]
    next_cursor: str | None = field(metadata=api("nextCursor"))


@frozen(kw_only=True)
class ErrorDetail:
    code: str = field(metadata=api(description="stable, machine-readable reason, e.g. invalid_site_quantity"))
    message: str
    hosted_invoice_url: str | None = field(
        default=None,
        metadata=api("hostedInvoiceUrl", description="payment_failed, payment_requires_action, payment_outstanding: pay here"),
    )
    client_secret: str | None = field(
        default=None,
        metadata=api(
            "clientSecret",
            description="payment_requires_action: the PaymentIntent's client secret, to finish 3-D Secure with Stripe.js",
        ),
    )
    # Last: once declared, `field` in this class body is this attribute, no longer dataclasses.field.
    field: str | None = field(default=None, metadata=api(description="the request field at fault, when there is one"))


@frozen(kw_only=True)
class ErrorResponse:
    error: ErrorDetail


# --- requests: unknown fields are an error, not silently ignored; types are strict ("3" is not 3) ---


@frozen(kw_only=True)
class PlanSelection:
    """A plan and its per-site add-on quantity: the body of checkout and of a plan change."""

    plan: str = field(metadata=api(max_length=64))
    site_quantity: int = field(default=0, metadata=api("siteQuantity"))
    interval: Literal["month", "year"] | None = field(
        default=None,
        metadata=api(
            description="how often the plan bills, monthly or yearly where the plan offers it; left out: monthly for a "
            "checkout, the subscription's own interval for a change"
        ),
    )


# Checkout takes exactly a plan selection.
CheckoutRequest = PlanSelection


@frozen(kw_only=True)
class PlanChange(PlanSelection):
    """POST /billing/subscription: a plan selection, and optionally the `previewId` of the preview
    whose amounts the caller accepted (the change is then charged exactly that). Without it the
    server prorates at the current time. No client-chosen proration date is taken."""

    preview_id: str | None = field(default=None, metadata=api("previewId", max_length=64))


@frozen(kw_only=True)
class PortalRequest:
    """POST /billing/portal takes no parameters (an empty body or {})."""


@frozen(kw_only=True)
class SyncRequest:
    """POST /billing/sync takes no parameters (an empty body or {})."""


@frozen(kw_only=True)
class CancelRequest:
    """POST /billing/subscription/cancel: at period end unless `immediately`."""

    immediately: bool = False


@frozen(kw_only=True)
class ResumeRequest:
    """POST /billing/subscription/resume takes no parameters (an empty body or {})."""


@frozen(kw_only=True)
class InvoicesQuery:
    """GET /billing/invoices?limit=&cursor= (query string values: "5" is 5)."""

    limit: int = field(default=10, metadata=api(ge=1, le=100))
    cursor: str | None = field(default=None, metadata=api(max_length=512))

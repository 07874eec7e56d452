"""Request and response models of the HTTP API (camelCase on the wire)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class PendingChangeView(_Out):
    """A change Stripe applies only once its invoice is paid: not granted until then."""

    plan: str | None
    site_quantity: int = Field(alias="siteQuantity")
    expires_at: str | None = Field(alias="expiresAt", description="when Stripe drops the change if still unpaid")


class SubscriptionView(_Out):
    plan: str | None
    status: str
    site_quantity: int = Field(alias="siteQuantity")
    current_period_end: str | None = Field(alias="currentPeriodEnd")
    cancel_at_period_end: bool = Field(alias="cancelAtPeriodEnd")
    cancel_at: str | None = Field(
        default=None, alias="cancelAt", description="when Stripe will cancel, however the cancellation was scheduled"
    )
    pending_change: PendingChangeView | None = Field(default=None, alias="pendingChange")


class EntitlementView(_Out):
    features: list[str]
    limits: dict[str, int]


class BillingStatusResponse(_Out):
    configured: bool
    subscription: SubscriptionView | None
    entitlement: EntitlementView
    has_stripe_customer: bool = Field(alias="hasStripeCustomer")


class UrlResponse(_Out):
    url: str


class _In(BaseModel):
    # Unknown fields are an error, not silently ignored; types are strict ("3" is not 3).
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False, frozen=True)


class PlanSelection(_In):
    """A plan and its per-site add-on quantity: the body of checkout and of a plan change."""

    plan: str = Field(max_length=64)
    site_quantity: int = Field(default=0, alias="siteQuantity")


# Checkout takes exactly a plan selection.
CheckoutRequest = PlanSelection


class PlanChange(PlanSelection):
    """POST /billing/subscription: a plan selection, and optionally the `previewId` of the preview
    whose amounts the caller accepted (the change is then charged exactly that). Without it the
    server prorates at the current time. No client-chosen proration date is taken."""

    preview_id: str | None = Field(default=None, alias="previewId", max_length=64)


class PortalRequest(_In):
    """POST /billing/portal takes no parameters (an empty body or {})."""


class SyncRequest(_In):
    """POST /billing/sync takes no parameters (an empty body or {})."""


class CancelRequest(_In):
    """POST /billing/subscription/cancel: at period end unless `immediately`."""

    immediately: bool = False


class ResumeRequest(_In):
    """POST /billing/subscription/resume takes no parameters (an empty body or {})."""


class ChangePreviewResponse(_Out):
    plan: str
    site_quantity: int = Field(alias="siteQuantity")
    currency: str
    # Minor units (cents), as Stripe reports them.
    amount_due_now: int = Field(alias="amountDueNow")
    next_invoice_total: int = Field(alias="nextInvoiceTotal")
    next_invoice_date: str | None = Field(alias="nextInvoiceDate")
    proration_date: int = Field(alias="prorationDate", description="when the server prorated (informational)")
    preview_id: str = Field(
        alias="previewId",
        description="pass it to POST /billing/subscription within 10 minutes to be charged exactly amountDueNow",
    )
    expires_at: str = Field(alias="expiresAt", description="when previewId stops being accepted")


class InvoiceView(_Out):
    id: str
    number: str | None
    status: str | None
    amount_due: int = Field(alias="amountDue")
    amount_paid: int = Field(alias="amountPaid")
    currency: str
    period_start: str | None = Field(alias="periodStart")
    period_end: str | None = Field(alias="periodEnd")
    created: str | None
    hosted_invoice_url: str | None = Field(alias="hostedInvoiceUrl")
    invoice_pdf: str | None = Field(alias="invoicePdf")


class InvoiceListResponse(_Out):
    invoices: list[InvoiceView]
    next_cursor: str | None = Field(alias="nextCursor")


class ErrorDetail(_Out):
    code: str = Field(description="stable, machine-readable reason, e.g. invalid_site_quantity")
    message: str
    field: str | None = Field(default=None, description="the request field at fault, when there is one")
    hosted_invoice_url: str | None = Field(
        default=None,
        alias="hostedInvoiceUrl",
        description="payment_failed, payment_requires_action, payment_outstanding: pay here",
    )
    client_secret: str | None = Field(
        default=None,
        alias="clientSecret",
        description="payment_requires_action: the PaymentIntent's client secret, to finish 3-D Secure with Stripe.js",
    )


class ErrorResponse(_Out):
    error: ErrorDetail

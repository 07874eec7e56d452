"""Request and response models of the HTTP API (camelCase on the wire)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class SubscriptionView(_Out):
    plan: str | None
    status: str
    site_quantity: int = Field(alias="siteQuantity")
    current_period_end: str | None = Field(alias="currentPeriodEnd")
    cancel_at_period_end: bool = Field(alias="cancelAtPeriodEnd")


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


class CheckoutRequest(_In):
    plan: str = Field(max_length=64)
    site_quantity: int = Field(default=0, alias="siteQuantity")


class PortalRequest(_In):
    """POST /billing/portal takes no parameters (an empty body or {})."""

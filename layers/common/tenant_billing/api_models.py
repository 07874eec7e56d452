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

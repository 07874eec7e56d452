"""GET /billing/status: what the organization's plan, subscription and entitlements are."""

from __future__ import annotations

from datetime import UTC, datetime

from tenant_billing.api_models import BillingStatusResponse, EntitlementView, PendingChangeView, SubscriptionView
from tenant_billing.catalog import Catalog
from tenant_billing.items import EntitlementRecord, OrgBilling, SubscriptionRecord
from tenant_billing.org_billing_store import OrgBillingStore
from tenant_billing.settings import Settings


def is_billing_configured(settings: Settings, catalog: Catalog) -> bool:
    """The secret's ARN and every plan's base price are set. Reads the environment only: a price
    given by its lookup key counts as set (the functions that talk to Stripe resolve it)."""
    prices = settings.STRIPE_PRICES
    return bool(settings.STRIPE_SECRET_ARN) and all(name in prices for name in catalog.base_price_names())


def iso_timestamp(epoch_seconds: int | None) -> str | None:
    if epoch_seconds is None:
        return None
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_response(
    subscription: SubscriptionRecord | None,
    entitlement: EntitlementRecord | None,
    catalog: Catalog,
    configured: bool,
    has_customer: bool,
) -> BillingStatusResponse:
    """The status body from stored records; no entitlement record means the fallback plan's."""
    if entitlement is not None:
        features, limits = list(entitlement.features), dict(entitlement.limits)
    else:
        fallback = catalog.plans[catalog.fallback_plan].current
        features, limits = list(fallback.features), dict(fallback.limits)
    return BillingStatusResponse(
        configured=configured,
        subscription=SubscriptionView(
            plan=subscription.plan,
            status=subscription.status,
            site_quantity=subscription.site_quantity,
            interval=subscription.interval,
            plan_version=subscription.plan_version,
            trial_end=iso_timestamp(subscription.trial_end),
            current_period_end=iso_timestamp(subscription.current_period_end),
            cancel_at_period_end=subscription.cancel_at_period_end,
            cancel_at=iso_timestamp(subscription.cancel_at),
            pending_change=PendingChangeView(
                plan=subscription.pending_plan,
                site_quantity=subscription.pending_site_quantity,
                expires_at=iso_timestamp(subscription.pending_expires_at),
            )
            if subscription.pending_plan is not None
            else None,
        )
        if subscription
        else None,
        entitlement=EntitlementView(features=features, limits=limits),
        has_stripe_customer=has_customer,
    )


def get_billing_status(org_id: str, repository: OrgBillingStore, settings: Settings, catalog: Catalog) -> BillingStatusResponse:
    return stored_status(repository.get_org_billing(org_id), settings, catalog)


def stored_status(billing: OrgBilling, settings: Settings, catalog: Catalog) -> BillingStatusResponse:
    return status_response(
        billing.subscription,
        billing.entitlement,
        catalog,
        is_billing_configured(settings, catalog),
        has_customer=bool(billing.customer and billing.customer.is_linked),
    )

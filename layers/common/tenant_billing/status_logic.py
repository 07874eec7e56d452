"""GET /billing/status: what the organization's plan, subscription and entitlements are."""

from __future__ import annotations

from datetime import UTC, datetime

from tenant_billing.api_models import BillingStatusResponse, EntitlementView, SubscriptionView
from tenant_billing.catalog import Catalog
from tenant_billing.entitlements import derive_entitlement
from tenant_billing.repository import BillingRepository
from tenant_billing.settings import Settings


def is_billing_configured(settings: Settings, catalog: Catalog) -> bool:
    """The secret's ARN and every plan's base price are set. Reads the environment only."""
    prices = settings.price_ids
    return bool(settings.STRIPE_SECRET_ARN) and all(env in prices for env in catalog.base_price_envs())


def iso_timestamp(epoch_seconds: int | None) -> str | None:
    if epoch_seconds is None:
        return None
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def get_billing_status(org_id: str, repository: BillingRepository, settings: Settings, catalog: Catalog) -> BillingStatusResponse:
    billing = repository.get_org_billing(org_id)
    subscription = billing.subscription
    if billing.entitlement is not None:
        features, limits = list(billing.entitlement.features), dict(billing.entitlement.limits)
    else:
        # Never subscribed (or not yet synced): the fallback plan's entitlements.
        derived = derive_entitlement(catalog, None, None, 0, settings.PAST_DUE_ENTITLEMENTS)
        features, limits = list(derived.features), dict(derived.limits)
    return BillingStatusResponse(
        configured=is_billing_configured(settings, catalog),
        subscription=SubscriptionView(
            plan=subscription.plan,
            status=subscription.status,
            site_quantity=subscription.site_quantity,
            current_period_end=iso_timestamp(subscription.current_period_end),
            cancel_at_period_end=subscription.cancel_at_period_end,
        )
        if subscription
        else None,
        entitlement=EntitlementView(features=features, limits=limits),
        has_stripe_customer=bool(billing.customer and billing.customer.is_linked),
    )

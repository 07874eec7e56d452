"""Store a subscription exactly as Stripe returned it: the one path by which the webhook, the
subscription endpoints and reconciliation write subscription state (guarded, all or nothing)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from tenant_billing.catalog import Catalog
from tenant_billing.observability import logger, metrics
from tenant_billing.repository import BillingRepository, SaveOutcome
from tenant_billing.settings import Settings
from tenant_billing.subscription_sync import SyncedState, synced_state

# Stripe retries a delivery for up to 3 days and keeps events for 30: a marker outlives both.
EVENT_MARKER_TTL_SECONDS = 30 * 24 * 3600


def store_stripe_subscription(
    org_id: str,
    subscription: Mapping[str, Any],
    read_at_ns: int,
    repository: BillingRepository,
    settings: Settings,
    catalog: Catalog,
    *,
    event_id: str | None = None,
    event_type: str = "api",
) -> tuple[SaveOutcome, SyncedState]:
    """`read_at_ns` is when the Stripe call that returned `subscription` started: a read that
    started later wins, so an older read can never overwrite a newer stored state."""
    now = int(time.time())
    state = synced_state(org_id, subscription, catalog, settings.price_ids, settings.PAST_DUE_ENTITLEMENTS, read_at_ns, now)
    if state.unknown_prices:
        metrics.add_metric(name="UnknownSubscriptionPrice", unit="Count", value=1)
        logger.warning("subscription has prices outside the catalog", extra={"prices": list(state.unknown_prices)})
    outcome = repository.save_subscription(
        state.subscription, state.entitlement, event_id, event_type, now + EVENT_MARKER_TTL_SECONDS
    )
    logger.info(
        "subscription stored",
        extra={
            "source": event_type,
            "outcome": outcome.value,
            "status": state.subscription.status,
            "plan": state.entitlement.plan,
            "site_quantity": state.subscription.site_quantity,
        },
    )
    return outcome, state

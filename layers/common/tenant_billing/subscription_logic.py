"""Cancel (at period end or now) and resume an organization's subscription, and what every
change of an existing subscription shares: finding the live one, and storing Stripe's answer.

Every change reads or changes the subscription in Stripe and stores what Stripe answered at once
(guarded like the webhook's writes), so the caller's next status call already shows it; the
webhook events that follow are then duplicates of a state already stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tenant_billing.api_models import BillingStatusResponse
from tenant_billing.auth import Caller
from tenant_billing.catalog import Catalog
from tenant_billing.checkout_logic import require_configured
from tenant_billing.entitlements import ENDED_STATUSES
from tenant_billing.errors import ConflictError
from tenant_billing.items import SubscriptionRecord
from tenant_billing.observability import metrics
from tenant_billing.org_billing_store import OrgBillingStore, SaveOutcome
from tenant_billing.org_sync import sync_org
from tenant_billing.settings import Settings
from tenant_billing.status_logic import get_billing_status, is_billing_configured, status_response
from tenant_billing.stripe_port import StripePort, Subscription
from tenant_billing.subscription_store import confirm_superseded, store_stripe_subscription


def live_subscription(repository: OrgBillingStore, org_id: str) -> SubscriptionRecord:
    subscription = repository.get_org_billing(org_id).subscription
    if subscription is None or subscription.status in ENDED_STATUSES:
        raise ConflictError("the organization has no subscription to change; subscribe through checkout", code="no_subscription")
    return subscription


def cancel_subscription(
    caller: Caller,
    immediately: bool,
    repository: OrgBillingStore,
    settings: Settings,
    catalog: Catalog,
    stripe_factory: Callable[[], StripePort],
) -> BillingStatusResponse:
    require_configured(settings, catalog)
    record = live_subscription(repository, caller.org_id)
    stripe = stripe_factory()
    read_at_ns = time.time_ns()
    cancel = stripe.cancel_now if immediately else stripe.cancel_at_period_end
    result = cancel(record.subscription_id)
    metrics.add_metric(name="SubscriptionCanceled" if immediately else "SubscriptionCancelScheduled", unit="Count", value=1)
    return store_and_answer(record, result, read_at_ns, repository, settings, catalog, stripe)


def resume_subscription(
    caller: Caller,
    repository: OrgBillingStore,
    settings: Settings,
    catalog: Catalog,
    stripe_factory: Callable[[], StripePort],
) -> BillingStatusResponse:
    """Undo a scheduled cancellation, however it was scheduled (`cancel_at_period_end`, or a
    `cancel_at` set in the Dashboard, the portal or the API). Stripe is asked, not only the table:
    a cancellation whose webhook has not arrived yet is undone too."""
    require_configured(settings, catalog)
    record = live_subscription(repository, caller.org_id)
    stripe = stripe_factory()
    read_at_ns = time.time_ns()
    result = stripe.clear_cancellation(record.subscription_id)
    metrics.add_metric(name="SubscriptionResumed", unit="Count", value=1)
    return store_and_answer(record, result, read_at_ns, repository, settings, catalog, stripe)


def store_and_answer(
    record: SubscriptionRecord,
    subscription: Subscription,
    read_at_ns: int,
    repository: OrgBillingStore,
    settings: Settings,
    catalog: Catalog,
    stripe: StripePort,
) -> BillingStatusResponse:
    """Store Stripe's answer to the change. The organization is synced whole instead (one more
    Stripe read) when the changed subscription may no longer be the one that decides its plan: it
    has another live subscription, this one just ended, or a webhook stored something else meanwhile."""
    state = None
    if not record.other_live_ids and subscription.status not in ENDED_STATUSES:
        outcome, single = store_stripe_subscription(
            record.org_id, subscription, read_at_ns, repository, settings, catalog, stripe
        )
        state = single if outcome is SaveOutcome.WRITTEN else None
    if state is None:
        result = sync_org(record.org_id, record.customer_id, stripe, repository, settings, catalog)
        if result.outcome is SaveOutcome.SUPERSEDED and result.state is not None:
            confirm_superseded(repository, result.state)
        state = result.state
    if state is None:
        return get_billing_status(record.org_id, repository, settings, catalog)
    configured = is_billing_configured(settings, catalog)
    return status_response(state.subscription, state.entitlement, catalog, configured, has_customer=True)

"""POST /billing/sync: any member reads the organization's billing as Stripe has it now and
stores it. The page Checkout or the portal returns to calls it before its first render, so the
paid plan shows at once, webhook or no webhook. It changes nothing in Stripe.

At most one Stripe read per organization per `SYNC_WINDOW_MS` (a conditional write claims the
slot); inside the window it answers with what is stored, so reloads cannot spend the Stripe
rate limit.
"""

from __future__ import annotations

from collections.abc import Callable

from tenant_billing.api_models import BillingStatusResponse
from tenant_billing.auth import Caller
from tenant_billing.catalog import Catalog
from tenant_billing.errors import StripeUnavailableError
from tenant_billing.observability import logger
from tenant_billing.org_billing_store import OrgBillingStore, SaveOutcome
from tenant_billing.org_sync import sync_org
from tenant_billing.settings import Settings
from tenant_billing.status_logic import get_billing_status, is_billing_configured, status_response, stored_status
from tenant_billing.stripe_port import StripePort
from tenant_billing.subscription_store import confirm_superseded

SYNC_WINDOW_MS = 5_000


def sync_billing(
    caller: Caller,
    repository: OrgBillingStore,
    settings: Settings,
    catalog: Catalog,
    stripe_factory: Callable[[], StripePort],
    now_ms: int,
) -> BillingStatusResponse:
    org_id = caller.org_id
    billing = repository.get_org_billing(org_id)
    customer = billing.customer
    if customer is None or not customer.is_linked or not is_billing_configured(settings, catalog):
        return stored_status(billing, settings, catalog)
    if not repository.claim_sync(org_id, now_ms, SYNC_WINDOW_MS):
        return stored_status(billing, settings, catalog)
    try:
        result = sync_org(
            org_id,
            customer.customer_id,
            stripe_factory(),
            repository,
            settings,
            catalog,
            stored=billing.subscription,
            skip_unchanged=True,
        )
    except StripeUnavailableError:
        # The slot stays taken: while Stripe is down or rate-limiting, reloads must not add reads.
        raise
    except Exception:
        # Our own failure (storage, configuration): give the slot back, so the retry reads Stripe.
        try:
            repository.release_sync(org_id, now_ms)
        except Exception:  # the original failure is the one to report; the slot expires by itself
            logger.warning("could not release the sync slot")
        raise
    if result.outcome is SaveOutcome.WRITTEN and result.state is not None:
        state = result.state
        return status_response(state.subscription, state.entitlement, catalog, configured=True, has_customer=True)
    if result.outcome is SaveOutcome.SUPERSEDED and result.state is not None:
        # A newer read (a webhook's) was stored meanwhile: answer with it, if it agrees with ours.
        confirm_superseded(repository, result.state)
        return get_billing_status(org_id, repository, settings, catalog)
    return stored_status(billing, settings, catalog)

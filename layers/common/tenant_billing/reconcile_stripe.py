"""Everything reconciliation asks of Stripe, in one place: the walk's pages, a subscription by
id, the configured prices, and the sync of one organization."""

from __future__ import annotations

from tenant_billing.catalog import Catalog
from tenant_billing.observability import logger
from tenant_billing.org_billing_store import OrgBillingStore
from tenant_billing.org_sync import SyncResult, sync_org
from tenant_billing.reconcile_check import OrgToSync
from tenant_billing.settings import Settings
from tenant_billing.stripe_port import Page, StripePort, Subscription, UnknownStartingPoint
from tenant_billing.stripe_prices import price_ids

SOURCE = "reconcile"


class ReconcileStripe:
    def __init__(self, stripe: StripePort, settings: Settings, catalog: Catalog) -> None:
        self._stripe = stripe
        self._settings = settings
        self._catalog = catalog

    def subscriptions_page(self, cursor: str, limit: int) -> Page[Subscription]:
        """The page of every subscription (`status=all`, newest first) after `cursor` ("" = from the
        newest). A cursor Stripe no longer has restarts the walk from the newest."""
        try:
            return self._stripe.list_subscriptions(None, limit, cursor or None)
        except UnknownStartingPoint:
            logger.warning("the reconciliation cursor is gone from Stripe; walking Stripe again from the newest")
            return self._stripe.list_subscriptions(None, limit, None)

    def subscription(self, subscription_id: str) -> Subscription | None:
        """The subscription, or None when Stripe does not have it."""
        return self._stripe.find_subscription(subscription_id)

    def prices(self) -> dict[str, str]:
        """{price name: Stripe price id} (lookup keys are resolved through Stripe once, then cached)."""
        return price_ids(self._settings, self._stripe)

    def sync_org(self, org: OrgToSync, repository: OrgBillingStore) -> SyncResult:
        """Read all of the organization's subscriptions and store its state if it changed."""
        return sync_org(
            org.org_id,
            org.customer_id,
            self._stripe,
            repository,
            self._settings,
            self._catalog,
            stored=org.stored,
            stored_entitlement=org.entitlement,
            skip_unchanged=True,
            event_type=SOURCE,
        )

"""Everything reconciliation asks of Stripe, in one place: the walk's pages, a subscription by
id, and the sync of one organization."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe
from stripe.params import SubscriptionListParams

from tenant_billing.catalog import Catalog
from tenant_billing.observability import logger
from tenant_billing.org_billing_store import OrgBillingStore
from tenant_billing.org_sync import SyncResult, retrieve_subscription, sync_org
from tenant_billing.reconcile_check import OrgToSync
from tenant_billing.settings import Settings
from tenant_billing.stripe_gateway import stripe_errors

SOURCE = "reconcile"


@dataclass(frozen=True, slots=True)
class SubscriptionsPage:
    subscriptions: list[dict[str, Any]]
    has_more: bool


class ReconcileStripe:
    def __init__(self, client: stripe.StripeClient, settings: Settings, catalog: Catalog) -> None:
        self._client = client
        self._settings = settings
        self._catalog = catalog

    def subscriptions_page(self, cursor: str, limit: int) -> SubscriptionsPage:
        """The page of every subscription (`status=all`, newest first) after `cursor` ("" = from the
        newest). A cursor Stripe no longer has restarts the walk from the newest."""
        params: SubscriptionListParams = {"status": "all", "limit": limit}
        if cursor:
            params["starting_after"] = cursor
        with stripe_errors("subscriptions.list"):
            try:
                page = self._client.v1.subscriptions.list(params=params)
            except stripe.InvalidRequestError as exc:
                if not (cursor and exc.code == "resource_missing"):
                    raise
                page = None
        if page is None:
            logger.warning("the reconciliation cursor is gone from Stripe; walking Stripe again from the newest")
            return self.subscriptions_page("", limit)
        return SubscriptionsPage([subscription.to_dict() for subscription in page.data], page.has_more)

    def subscription(self, subscription_id: str) -> dict[str, Any] | None:
        """The subscription, or None when Stripe does not have it."""
        return retrieve_subscription(self._client, subscription_id)

    def sync_org(self, org: OrgToSync, repository: OrgBillingStore) -> SyncResult:
        """Read all of the organization's subscriptions and store its state if it changed."""
        return sync_org(
            org.org_id,
            org.customer_id,
            self._client,
            repository,
            self._settings,
            self._catalog,
            stored=org.stored,
            stored_entitlement=org.entitlement,
            skip_unchanged=True,
            event_type=SOURCE,
        )

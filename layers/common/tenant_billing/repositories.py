"""The stores a flow uses together, as one object, for the flows that need more than one.

A flow that needs one store alone takes that store (e.g. `org_billing_store.OrgBillingStore`).
"""

from __future__ import annotations

from functools import cache
from typing import Protocol

from tenant_billing.customer_store import CustomerStore, DynamoCustomerStore
from tenant_billing.org_billing_store import DynamoOrgBillingStore, OrgBillingBatchReader, OrgBillingStore
from tenant_billing.plan_change_store import DynamoPlanChangeStore, PlanChangeStore
from tenant_billing.reconcile_store import DynamoReconcileStore, ReconcileStore
from tenant_billing.webhook_event_store import DynamoWebhookEventStore, WebhookEventStore


class CheckoutRepository(OrgBillingStore, CustomerStore, Protocol):
    """Checkout: the organization's billing items and its Stripe customer link."""


class PlanChangeRepository(OrgBillingStore, PlanChangeStore, Protocol):
    """Plan changes: the organization's billing items, its quotes and its change lock."""


class WebhookRepository(OrgBillingStore, OrgBillingBatchReader, WebhookEventStore, Protocol):
    """Webhooks: the organization's billing items and the events' dedupe markers."""


class ReconcileRepository(OrgBillingStore, OrgBillingBatchReader, CustomerStore, ReconcileStore, Protocol):
    """Reconciliation: every organization's billing items, the customer links and its own state."""


class DynamoCheckoutRepository(DynamoOrgBillingStore, DynamoCustomerStore):
    pass


class DynamoPlanChangeRepository(DynamoOrgBillingStore, DynamoPlanChangeStore):
    pass


class DynamoWebhookRepository(DynamoOrgBillingStore, DynamoWebhookEventStore):
    pass


class DynamoReconcileRepository(DynamoOrgBillingStore, DynamoCustomerStore, DynamoReconcileStore):
    pass


def _table_name() -> str:
    from tenant_billing.settings import get_settings

    return get_settings().TABLE_NAME


@cache
def get_checkout_repository() -> DynamoCheckoutRepository:
    return DynamoCheckoutRepository(_table_name())


@cache
def get_plan_change_repository() -> DynamoPlanChangeRepository:
    return DynamoPlanChangeRepository(_table_name())


@cache
def get_webhook_repository() -> DynamoWebhookRepository:
    return DynamoWebhookRepository(_table_name())


@cache
def get_reconcile_repository() -> DynamoReconcileRepository:
    return DynamoReconcileRepository(_table_name())

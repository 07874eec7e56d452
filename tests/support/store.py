"""Put an organization's billing state in the table through the real repository."""

from __future__ import annotations

import time

from tenant_billing.catalog import get_catalog
from tenant_billing.entitlements import derive_entitlement
from tenant_billing.items import EntitlementRecord, SubscriptionRecord
from tenant_billing.org_billing_store import SaveOutcome
from tenant_billing.repositories import get_checkout_repository


def store_subscription(
    org_id: str,
    *,
    plan: str = "pro",
    status: str = "active",
    site_quantity: int = 3,
    customer_id: str = "cus_test",
    subscription_id: str = "sub_test",
    current_period_end: int = 1773273600,
    cancel_at_period_end: bool = False,
    event_id: str | None = None,
) -> SaveOutcome:
    repository = get_checkout_repository()
    claim = repository.claim_customer(org_id, f"key-{org_id}", int(time.time()))
    repository.link_customer(org_id, customer_id, claim.idempotency_key)
    record = SubscriptionRecord(
        org_id=org_id,
        subscription_id=subscription_id,
        customer_id=customer_id,
        status=status,
        plan=plan,
        site_quantity=site_quantity,
        current_period_end=current_period_end,
        cancel_at_period_end=cancel_at_period_end,
        created=1770000000,
        read_at_ns=time.time_ns(),
        plan_version=1,
        interval="month",
    )
    derived = derive_entitlement(get_catalog(), plan, status, site_quantity)
    entitlement = EntitlementRecord(org_id, derived.plan, status, derived.features, derived.limits, int(time.time()))
    return repository.save_subscription(
        record, entitlement, event_id or f"evt_{org_id}_{time.time_ns()}", "test", int(time.time()) + 86400, whole_org=True
    )

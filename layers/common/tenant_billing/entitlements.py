"""Entitlement derivation: one pure function from (plan, status, siteQuantity) to what an
organization may use. No I/O, no clock, no environment."""

from __future__ import annotations

from dataclasses import field
from typing import Literal

from tenant_billing.catalog import Catalog
from tenant_billing.records import frozen

# Stripe's subscription.status values.
SUBSCRIPTION_STATUSES = frozenset(
    {"active", "canceled", "incomplete", "incomplete_expired", "past_due", "paused", "trialing", "unpaid"}
)
# Statuses that can never become active again: a new subscription is needed.
ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})
PAID_STATUSES = frozenset({"active", "trialing"})

PastDuePolicy = Literal["plan", "fallback"]


@frozen
class Entitlement:
    plan: str
    features: tuple[str, ...]
    limits: dict[str, int] = field(hash=False)


def is_entitled_status(status: str | None, past_due_policy: PastDuePolicy = "plan") -> bool:
    if status in PAID_STATUSES:
        return True
    return status == "past_due" and past_due_policy == "plan"


def derive_entitlement(
    catalog: Catalog,
    plan_id: str | None,
    status: str | None,
    site_quantity: int = 0,
    past_due_policy: PastDuePolicy = "plan",
    version: int | None = None,
) -> Entitlement:
    """The features and limits of the plan's version (the current one when None) when the status
    pays for them, otherwise the fallback plan's current version's.

    A subscriber of an older version keeps that version's features and limits (grandfathered). An
    unknown plan or version also gets the fallback: access is never granted for a price we do not
    know. Site add-ons raise the version's add-on limit by one each, only where it sells them.
    """
    plan = catalog.plan(plan_id) if plan_id else None
    found = plan.versions.get(plan.current_version if version is None else version) if plan is not None else None
    if found is None or not is_entitled_status(status, past_due_policy):
        plan_id = catalog.fallback_plan
        found = catalog.plans[plan_id].current
        site_quantity = 0
    limits = dict(found.limits)
    if found.site_limit is not None and site_quantity > 0:
        limits[found.site_limit] += site_quantity
    assert plan_id is not None
    return Entitlement(plan=plan_id, features=found.features, limits=limits)

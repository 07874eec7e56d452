from __future__ import annotations

import pytest

from tenant_billing.catalog import get_catalog
from tenant_billing.entitlements import SUBSCRIPTION_STATUSES, derive_entitlement

STARTER_FEATURES = ("page_builder", "media_library", "seo_toolkit")
PRO_FEATURES = (*STARTER_FEATURES, "analytics", "form_builder", "blog_engine")
ENTERPRISE_FEATURES = (*PRO_FEATURES, "api_gateway", "crm", "notifications", "scheduling")
STARTER_LIMITS = {"sites": 1, "pages_per_site": 25, "storage_gb": 2}
EXPECTED = {
    "starter": (STARTER_FEATURES, STARTER_LIMITS),
    "pro": (PRO_FEATURES, {"sites": 2, "pages_per_site": 100, "storage_gb": 10}),
    "enterprise": (ENTERPRISE_FEATURES, {"sites": 5, "pages_per_site": 1000, "storage_gb": 100}),
}
ENTITLED = {"active", "trialing", "past_due"}


def test_the_statuses_are_stripes_eight() -> None:
    assert {
        "active", "canceled", "incomplete", "incomplete_expired", "past_due", "paused", "trialing", "unpaid",
    } == SUBSCRIPTION_STATUSES  # fmt: skip


@pytest.mark.parametrize("plan", sorted(EXPECTED))
@pytest.mark.parametrize("status", sorted(SUBSCRIPTION_STATUSES))
def test_every_plan_and_status(plan: str, status: str) -> None:
    entitlement = derive_entitlement(get_catalog(), plan, status, 0)
    expected_plan = plan if status in ENTITLED else "starter"
    features, limits = EXPECTED[expected_plan]
    assert entitlement.plan == expected_plan
    assert entitlement.features == features
    assert entitlement.limits == limits


@pytest.mark.parametrize(
    ("plan", "quantity", "sites"), [("pro", 3, 5), ("pro", 0, 2), ("enterprise", 4, 9), ("enterprise", 100, 105)]
)
def test_site_add_ons_raise_the_site_limit(plan: str, quantity: int, sites: int) -> None:
    entitlement = derive_entitlement(get_catalog(), plan, "active", quantity)
    assert entitlement.limits["sites"] == sites
    assert entitlement.limits["pages_per_site"] == EXPECTED[plan][1]["pages_per_site"]


def test_starter_has_no_add_on_so_quantity_is_ignored() -> None:
    assert derive_entitlement(get_catalog(), "starter", "active", 7).limits == STARTER_LIMITS


@pytest.mark.parametrize("status", ["canceled", "unpaid", "paused", "incomplete", "incomplete_expired"])
def test_lost_access_drops_the_add_ons_too(status: str) -> None:
    assert derive_entitlement(get_catalog(), "enterprise", status, 10).limits == STARTER_LIMITS


def test_no_subscription_gets_the_fallback_plan() -> None:
    entitlement = derive_entitlement(get_catalog(), None, None)
    assert (entitlement.plan, entitlement.features, entitlement.limits) == ("starter", STARTER_FEATURES, STARTER_LIMITS)


def test_unknown_plan_never_grants_access() -> None:
    assert derive_entitlement(get_catalog(), "platinum", "active", 3).plan == "starter"


def test_past_due_can_be_configured_to_the_fallback() -> None:
    assert derive_entitlement(get_catalog(), "pro", "past_due", 3, past_due_policy="plan").limits["sites"] == 5
    fallback = derive_entitlement(get_catalog(), "pro", "past_due", 3, past_due_policy="fallback")
    assert (fallback.plan, fallback.limits) == ("starter", STARTER_LIMITS)


def test_derivation_does_not_mutate_the_catalog() -> None:
    derive_entitlement(get_catalog(), "pro", "active", 50)
    assert get_catalog().plans["pro"].current.limits["sites"] == 2

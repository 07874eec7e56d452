"""Cancel, resume and the organization's sync through the Stripe port in memory: Stripe's answer
is stored at once, and of several subscriptions the best live one decides the plan."""

from __future__ import annotations

import pytest

from tenant_billing.auth import Caller
from tenant_billing.catalog import get_catalog
from tenant_billing.errors import BillingMisconfiguredError
from tenant_billing.org_billing_store import SaveOutcome
from tenant_billing.org_sync import sync_org
from tenant_billing.settings import get_settings
from tenant_billing.stripe_port import Page, Subscription, SubscriptionItem, UnknownStartingPoint
from tenant_billing.subscription_logic import cancel_subscription, resume_subscription
from tests.unit.conftest import Stores
from tests.unit.memory_stripe import PERIOD_END, MemoryStripe

ADMIN = Caller("org_1", frozenset({"billing_admin"}), is_billing_admin=True)


def test_cancel_at_period_end_then_resume(stripe: MemoryStripe, repository: Stores, subscribed: str) -> None:
    answer = cancel_subscription(ADMIN, False, repository, get_settings(), get_catalog(), lambda: stripe)
    assert answer.subscription is not None and answer.subscription.cancel_at_period_end
    assert stripe.calls == ["subscriptions.update"]
    resumed = resume_subscription(ADMIN, repository, get_settings(), get_catalog(), lambda: stripe)
    assert resumed.subscription is not None
    assert (resumed.subscription.cancel_at_period_end, resumed.subscription.cancel_at) == (False, None)
    record = repository.get_org_billing("org_1").subscription
    assert record is not None and (record.cancel_at_period_end, record.cancel_at) == (False, None)


def test_cancel_now_ends_the_plan(stripe: MemoryStripe, repository: Stores, subscribed: str) -> None:
    answer = cancel_subscription(ADMIN, True, repository, get_settings(), get_catalog(), lambda: stripe)
    assert answer.subscription is not None and answer.subscription.status == "canceled"
    # An ended subscription may no longer decide the plan: the organization is synced whole.
    assert stripe.calls == ["subscriptions.cancel", "subscriptions.list"]
    assert stripe.subscriptions[subscribed].status == "canceled"


def test_stripe_refuses_to_resume_a_canceled_subscription(stripe: MemoryStripe, repository: Stores, subscribed: str) -> None:
    stripe.cancel_now(subscribed)  # in the Dashboard; its webhook not here yet
    with pytest.raises(BillingMisconfiguredError):
        resume_subscription(ADMIN, repository, get_settings(), get_catalog(), lambda: stripe)


def test_of_two_live_subscriptions_the_better_one_counts(stripe: MemoryStripe, repository: Stores, subscribed: str) -> None:
    customer_id = stripe.subscriptions[subscribed].customer_id
    better = stripe.add_subscription(customer_id, (SubscriptionItem("si_e", "price_enterprise_base", 1, PERIOD_END),))
    result = sync_org("org_1", customer_id, stripe, repository, get_settings(), get_catalog())
    assert result.outcome is SaveOutcome.WRITTEN and result.state is not None
    assert (result.state.subscription.subscription_id, result.state.subscription.plan) == (better.id, "enterprise")
    assert result.state.subscription.other_live_ids == (subscribed,)
    stripe.cancel_now(better.id)
    after = sync_org("org_1", customer_id, stripe, repository, get_settings(), get_catalog())
    assert after.state is not None and (after.state.subscription.subscription_id, after.state.subscription.plan) == (
        subscribed,
        "pro",
    )


def test_a_subscription_the_customer_does_not_hold_is_never_stored(
    stripe: MemoryStripe, repository: Stores, subscribed: str
) -> None:
    other = stripe.add_subscription("cus_other", (SubscriptionItem("si_x", "price_pro_base", 1, PERIOD_END),))
    customer_id = stripe.subscriptions[subscribed].customer_id
    result = sync_org("org_1", customer_id, stripe, repository, get_settings(), get_catalog(), must_include=other.id)
    assert result.outcome is None
    assert stripe.calls == ["subscriptions.list", "subscriptions.retrieve"]
    assert (
        sync_org("org_1", customer_id, stripe, repository, get_settings(), get_catalog(), must_include="sub_gone").outcome is None
    )


def test_stripe_refusing_its_own_cursor_is_a_misconfiguration_and_stores_nothing(
    stripe: MemoryStripe, repository: Stores, subscribed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_page = stripe.list_subscriptions(None, 100, None)
    customer_id = stripe.subscriptions[subscribed].customer_id
    before = repository.get_org_billing("org_1")

    def list_subscriptions(customer: str | None, limit: int, starting_after: str | None) -> Page[Subscription]:
        if starting_after is None:
            return Page(first_page.data, has_more=True)
        raise UnknownStartingPoint(starting_after)

    monkeypatch.setattr(stripe, "list_subscriptions", list_subscriptions)
    with pytest.raises(BillingMisconfiguredError):
        sync_org("org_1", customer_id, stripe, repository, get_settings(), get_catalog())
    assert repository.get_org_billing("org_1") == before

"""Checkout through the Stripe port in memory: one customer per organization, at most one payable
session, no second subscription, a trial only the first time."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tenant_billing.api_models import CheckoutRequest
from tenant_billing.auth import Caller
from tenant_billing.catalog import Catalog, Trial, get_catalog
from tenant_billing.checkout_logic import create_checkout
from tenant_billing.errors import BillingMisconfiguredError, ConflictError
from tenant_billing.settings import get_settings
from tenant_billing.wire import read_model
from tests.unit.conftest import Stores
from tests.unit.memory_stripe import MemoryStripe

ADMIN = Caller("org_1", frozenset({"billing_admin"}), is_billing_admin=True)


def checkout(stripe: MemoryStripe, repository: Stores, catalog: Catalog | None = None) -> str:
    request = read_model(CheckoutRequest, {"plan": "pro", "siteQuantity": 2})
    return create_checkout(ADMIN, request, repository, get_settings(), catalog or get_catalog(), lambda: stripe).url


def test_a_new_organization_gets_one_customer_and_a_session(stripe: MemoryStripe, repository: Stores) -> None:
    url = checkout(stripe, repository)
    assert stripe.calls == ["customers.create", "checkout.sessions.create"]
    ((session, request),) = stripe.sessions.values()
    assert url == session.url
    assert request.line_items == (("price_pro_base", 1), ("price_pro_site", 2))
    assert request.metadata == {"organization_id": "org_1", "plan": "pro"}
    assert request.client_reference_id == "org_1"
    billing = repository.get_org_billing("org_1")
    assert billing.customer is not None and billing.customer.customer_id == request.customer_id


def test_a_second_checkout_expires_the_first_session(stripe: MemoryStripe, repository: Stores) -> None:
    checkout(stripe, repository)
    stripe.now += 3600  # the first session is no concurrent checkout's
    stripe.calls.clear()
    checkout(stripe, repository)
    assert stripe.calls == [
        "checkout.sessions.list",
        "checkout.sessions.expire",
        "subscriptions.list",
        "checkout.sessions.create",
    ]
    assert sorted(str(session.status) for session, _ in stripe.sessions.values()) == ["expired", "open"]
    assert len(set(stripe.customers.values())) == 1


def test_a_session_paid_just_before_its_expiry_is_the_answer(stripe: MemoryStripe, repository: Stores) -> None:
    checkout(stripe, repository)
    stripe.now += 3600
    expire = stripe.close_checkout_session

    def paid_first(session_id: str) -> str:
        stripe.complete_checkout(session_id)
        return expire(session_id)

    stripe.close_checkout_session = paid_first  # type: ignore[method-assign]
    with pytest.raises(ConflictError) as refused:
        checkout(stripe, repository)
    assert refused.value.code == "subscription_exists"
    assert repository.get_org_billing("org_1").subscription is not None
    assert len(stripe.sessions) == 1


def test_a_subscription_stripe_has_is_refused_and_stored(stripe: MemoryStripe, repository: Stores) -> None:
    checkout(stripe, repository)
    stripe.complete_checkout(next(iter(stripe.sessions)))  # its webhook not here yet
    with pytest.raises(ConflictError):
        checkout(stripe, repository)
    stored = repository.get_org_billing("org_1").subscription
    assert stored is not None and (stored.plan, stored.site_quantity) == ("pro", 2)


def test_no_trial_after_a_canceled_subscription(stripe: MemoryStripe, repository: Stores) -> None:
    catalog = get_catalog()
    pro = replace(catalog.plans["pro"], trial=Trial(days=14))
    catalog = replace(catalog, plans={**catalog.plans, "pro": pro})
    checkout(stripe, repository, catalog)
    assert next(iter(stripe.sessions.values()))[1].trial_period_days == 14
    subscription = stripe.complete_checkout(next(iter(stripe.sessions)))
    stripe.cancel_now(subscription.id)
    stripe.now += 3600
    checkout(stripe, repository, catalog)
    assert [request.trial_period_days for _, request in stripe.sessions.values()] == [14, None]


def test_a_price_stripe_does_not_have_is_a_misconfiguration(stripe: MemoryStripe, repository: Stores) -> None:
    del stripe.amounts["price_pro_site"]
    with pytest.raises(BillingMisconfiguredError):
        checkout(stripe, repository)
    assert stripe.sessions == {}

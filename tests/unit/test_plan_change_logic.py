"""Plan changes through the Stripe port in memory: a preview's quote is what the change charges,
a change is applied only once paid, and nothing is changed again while an invoice is unpaid."""

from __future__ import annotations

from typing import Any

import pytest

from tenant_billing.api_models import PlanChange, PlanSelection
from tenant_billing.auth import Caller
from tenant_billing.catalog import get_catalog
from tenant_billing.errors import ConflictError, InvalidRequestError, PaymentRequiredError
from tenant_billing.plan_change_logic import change_subscription, preview_change
from tenant_billing.settings import get_settings
from tenant_billing.wire import read_model
from tests.unit.conftest import Stores
from tests.unit.memory_stripe import MemoryStripe

ADMIN = Caller("org_1", frozenset({"billing_admin"}), is_billing_admin=True)


def selection(plan: str, sites: int, **extra: Any) -> dict[str, Any]:
    return {"plan": plan, "siteQuantity": sites, **extra}


def preview(stripe: MemoryStripe, repository: Stores, plan: str, sites: int) -> Any:
    request = read_model(PlanSelection, selection(plan, sites))
    return preview_change(ADMIN, request, repository, get_settings(), get_catalog(), lambda: stripe)


def change(stripe: MemoryStripe, repository: Stores, plan: str, sites: int, **extra: Any) -> Any:
    request = read_model(PlanChange, selection(plan, sites, **extra))
    return change_subscription(ADMIN, request, repository, get_settings(), get_catalog(), lambda: stripe)


def stored(repository: Stores) -> tuple[str | None, int, str | None]:
    record = repository.get_org_billing("org_1").subscription
    assert record is not None
    return record.plan, record.site_quantity, record.pending_plan


def test_the_preview_prices_the_change_and_its_quote_is_charged(
    stripe: MemoryStripe, repository: Stores, subscribed: str
) -> None:
    quote = preview(stripe, repository, "pro", 4)
    assert stripe.calls == ["subscriptions.retrieve", "invoices.create_preview", "invoices.create_preview"]
    assert (quote.amount_due_now, quote.next_invoice_total, quote.currency) == (2 * 1900, 7900 + 4 * 1900, "usd")
    stripe.calls.clear()
    answer = change(stripe, repository, "pro", 4, previewId=quote.preview_id)
    assert stripe.calls == ["subscriptions.retrieve", "subscriptions.update"]
    assert answer.subscription is not None and answer.subscription.site_quantity == 4
    assert stored(repository) == ("pro", 4, None)
    with pytest.raises(InvalidRequestError) as reused:
        change(stripe, repository, "pro", 5, previewId=quote.preview_id)
    assert reused.value.code == "invalid_preview"


def test_nothing_to_change(stripe: MemoryStripe, repository: Stores, subscribed: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        change(stripe, repository, "pro", 2)
    assert refused.value.code == "no_change"
    assert stripe.calls == ["subscriptions.retrieve"]


def test_a_declined_change_waits_unpaid_and_grants_nothing(stripe: MemoryStripe, repository: Stores, subscribed: str) -> None:
    stripe.next_payment = "declined"
    with pytest.raises(PaymentRequiredError) as unpaid:
        change(stripe, repository, "enterprise", 2)
    assert unpaid.value.code == "payment_failed"
    assert unpaid.value.payment is not None
    assert unpaid.value.payment.hosted_invoice_url == f"https://invoice.example/{subscribed}"
    assert stored(repository) == ("pro", 2, "enterprise")


def test_3ds_gives_the_client_secret_and_blocks_another_change(stripe: MemoryStripe, repository: Stores, subscribed: str) -> None:
    stripe.next_payment = "requires_action"
    with pytest.raises(PaymentRequiredError) as unpaid:
        change(stripe, repository, "pro", 5)
    assert unpaid.value.code == "payment_requires_action"
    assert unpaid.value.payment is not None
    secret = unpaid.value.payment.client_secret
    assert secret is not None and secret.startswith("pi_secret_")
    stripe.calls.clear()
    with pytest.raises(ConflictError) as outstanding:
        change(stripe, repository, "pro", 6)
    assert outstanding.value.code == "payment_outstanding"
    assert outstanding.value.payment is not None and outstanding.value.payment.client_secret == secret
    assert stripe.calls == ["subscriptions.retrieve", "invoices.retrieve"]  # no second update, no second charge


def test_dropping_the_sites_is_paid_at_once_or_not_applied(stripe: MemoryStripe, repository: Stores, subscribed: str) -> None:
    stripe.next_payment = "declined"
    with pytest.raises(PaymentRequiredError) as declined:
        change(stripe, repository, "pro", 0)
    assert declined.value.code == "payment_failed"
    subscription = stripe.subscriptions[subscribed]
    assert [item.id for item in subscription.items] == ["si_base", "si_site"] and subscription.pending_update is None
    assert stored(repository) == ("pro", 2, None)


def test_a_quote_for_another_change_is_refused_before_stripe(stripe: MemoryStripe, repository: Stores, subscribed: str) -> None:
    quote = preview(stripe, repository, "pro", 4)
    stripe.calls.clear()
    with pytest.raises(InvalidRequestError) as refused:
        change(stripe, repository, "pro", 3, previewId=quote.preview_id)
    assert refused.value.code == "invalid_preview"
    assert stripe.calls == []

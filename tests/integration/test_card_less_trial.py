"""Trials without a card, through the real handlers, the webhook and the stream publisher: Checkout
collects no card, the subscription trials without one, Stripe's trial_will_end becomes one
`TrialEnding` event (days left, card on file or not), and the trial ends as the catalog says:
cancelled without a card, paid and going on with one added meanwhile (here through the portal's
payment method update)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import checkout_handler
from tenant_billing import catalog as catalog_module
from tests.conftest import TEST_PRICES, reset_caches
from tests.integration.test_entitlement_events import invoke, published, queue_url, stream_record
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event
from tests.support.flows import call, deliver, open_session_id, status_of

__all__ = ["queue_url"]  # the fixture, used by name
pytestmark = pytest.mark.usefixtures("billing")
TRIAL_DAYS = 14
Items = Callable[[], list[dict[str, Any]]]


@pytest.fixture(autouse=True)
def card_less_pro(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """plans.json with a 14-day card-less trial on Pro, cancelled at its end without a card."""
    doc = json.loads(catalog_module.CATALOG_PATH.read_text())
    doc["plans"]["pro"]["trial"] = {"days": TRIAL_DAYS, "paymentMethod": "if_required", "withoutPaymentMethod": "cancel"}
    path = tmp_path / "plans.json"
    path.write_text(json.dumps(doc))
    monkeypatch.setattr(catalog_module, "CATALOG_PATH", path)
    reset_caches()


def deliver_all(events: list[dict[str, Any]]) -> None:
    for stripe_event in events:
        assert deliver(stripe_event)[0] == 200


def start_trial(fake: FakeStripe) -> str:
    status, body = call(checkout_handler, api_event("POST", "/billing/checkout", body={"plan": "pro", "siteQuantity": 1}))
    assert status == 200, body
    (create,) = [r for r in fake.requests if r.method == "POST" and r.path == "/v1/checkout/sessions"]
    assert create.params["payment_method_collection"] == "if_required"
    assert create.params["subscription_data"]["trial_period_days"] == str(TRIAL_DAYS)
    assert create.params["subscription_data"]["trial_settings"] == {"end_behavior": {"missing_payment_method": "cancel"}}
    assert create.params["line_items"][0]["price"] == TEST_PRICES["pro_base"]
    events = fake.complete_checkout(open_session_id(fake, "org_demo"), None)  # no card given
    deliver_all(events)
    subscription_id: str = events[0]["data"]["object"]["id"]
    return subscription_id


def notices(table_items: Items) -> list[dict[str, Any]]:
    return [item for item in table_items() if item["sk"]["S"].startswith("TRIAL_ENDING#")]


def test_a_card_less_trial_without_a_card_added_is_announced_then_ends(
    stripe_fake: FakeStripe, table_items: Items, queue_url: str
) -> None:
    subscription_id = start_trial(stripe_fake)
    shown = status_of()
    assert (shown["subscription"]["status"], shown["subscription"]["plan"]) == ("trialing", "pro")
    assert shown["subscription"]["trialEnd"] is not None
    assert shown["entitlement"]["limits"]["sites"] == 3  # the trial grants the plan
    assert stripe_fake.payment_methods == {}

    # Stripe's reminder (delivered twice): one notice, published once as TrialEnding.
    (reminder,) = stripe_fake.trial_will_end(subscription_id)
    assert deliver(reminder)[0] == 200
    assert deliver(reminder)[0] == 200
    (notice,) = notices(table_items)
    assert notice["has_payment_method"] == {"BOOL": False}
    assert notice["days_left"] == {"N": str(TRIAL_DAYS)}
    assert invoke(stream_record("INSERT", new=notice, sequence=1)) == {"batchItemFailures": []}
    (event,) = published(queue_url)
    assert event["detail-type"] == "TrialEnding"
    assert {key: event["detail"][key] for key in ("organizationId", "subscriptionId", "daysLeft", "hasPaymentMethod")} == {
        "organizationId": "org_demo",
        "subscriptionId": subscription_id,
        "daysLeft": TRIAL_DAYS,
        "hasPaymentMethod": False,
    }
    # The notice rewritten (a MODIFY) is no news.
    assert invoke(stream_record("MODIFY", new=notice, old=notice, sequence=2)) == {"batchItemFailures": []}
    assert published(queue_url) == []

    # The trial ends without a card: Stripe cancels it, nothing is charged, the fallback applies.
    deliver_all(stripe_fake.renew_subscription(subscription_id))
    shown = status_of()
    assert shown["subscription"]["status"] == "canceled"
    assert shown["entitlement"]["limits"]["sites"] == 1
    assert [invoice for invoice in stripe_fake.invoices.values() if invoice["amount_paid"] > 0] == []


def test_a_card_added_during_the_trial_keeps_the_subscription_going(
    stripe_fake: FakeStripe, table_items: Items, queue_url: str
) -> None:
    subscription_id = start_trial(stripe_fake)
    customer_id = stripe_fake.subscriptions[subscription_id]["customer"]
    # The customer adds a card (the portal's payment method update) before Stripe's reminder.
    deliver_all(stripe_fake.set_default_card(customer_id, "4242 4242 4242 4242"))
    deliver_all(stripe_fake.trial_will_end(subscription_id))
    (notice,) = notices(table_items)
    assert notice["has_payment_method"] == {"BOOL": True}

    deliver_all(stripe_fake.renew_subscription(subscription_id))
    shown = status_of()
    assert (shown["subscription"]["status"], shown["subscription"]["trialEnd"]) == ("active", None)
    assert shown["entitlement"]["limits"]["sites"] == 3
    (paid,) = [invoice for invoice in stripe_fake.invoices.values() if invoice["amount_paid"] > 0]
    assert paid["amount_paid"] == 7900 + 1900


def test_a_second_checkout_gets_no_trial(stripe_fake: FakeStripe) -> None:
    subscription_id = start_trial(stripe_fake)
    deliver_all(stripe_fake.cancel_subscription(subscription_id))
    status, _ = call(checkout_handler, api_event("POST", "/billing/checkout", body={"plan": "pro"}))
    assert status == 200
    second = [r for r in stripe_fake.requests if r.method == "POST" and r.path == "/v1/checkout/sessions"][-1]
    assert "trial_period_days" not in second.params["subscription_data"]
    assert "payment_method_collection" not in second.params

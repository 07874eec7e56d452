"""The Stripe fake's billing changes: invoice previews, prorated item changes, and paging through lists.

Everything goes through a real stripe.StripeClient served in-process; expected amounts are computed
here from Stripe's per-second proration formula on a fixed clock.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any, cast

import pytest
import stripe

from tests.stripe_fake import CardDeclined, FakeStripe, FakeStripeError, make_stripe_client
from tests.support.clock import ManualClock
from tests.support.flows import pay_in_checkout

# 2026-01-31 00:00:00 UTC: the first period ends Feb 28 (28 days), the next one Mar 31.
START = int(datetime(2026, 1, 31, tzinfo=UTC).timestamp())
FEB_28 = int(datetime(2026, 2, 28, tzinfo=UTC).timestamp())
MAR_31 = int(datetime(2026, 3, 31, tzinfo=UTC).timestamp())
DAY = 86_400
# Feb 10, 03:17:05 UTC: a mid-period moment whose prorations do not come out round.
MID = START + 10 * DAY + 3 * 3600 + 17 * 60 + 5
X = "\N{MULTIPLICATION SIGN}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock) -> FakeStripe:
    fake = FakeStripe(clock=clock, seed=4321)
    fake.add_price("price_starter_base", product_name="Starter", unit_amount=2900)
    fake.add_price("price_pro_base", product_name="Pro", unit_amount=7900)
    fake.add_price("price_pro_site", product_name="Pro site", unit_amount=1900)
    fake.add_price("price_enterprise_base", product_name="Enterprise", unit_amount=19900)
    fake.add_price("price_enterprise_site", product_name="Enterprise site", unit_amount=900)
    fake.add_price("price_pro_yearly", product_name="Pro yearly", unit_amount=79000, interval="year")
    fake.add_price("price_pro_eur", product_name="Pro EUR", unit_amount=7500, currency="eur")
    fake.add_price("price_setup_fee", product_name="Setup fee", unit_amount=5000, interval=None)
    return fake


@pytest.fixture
def client(fake: FakeStripe) -> stripe.StripeClient:
    return make_stripe_client(fake)


def prorated(amount: int, at: int, start: int = START, end: int = FEB_28) -> int:
    """Stripe's per-second proration: round(amount * (end - at) / (end - start)), halves rounded up."""
    return int(Fraction(amount * (end - at), end - start) + Fraction(1, 2))


def pro_subscription(
    fake: FakeStripe,
    client: stripe.StripeClient,
    *,
    sites: int = 2,
    base: str = "price_pro_base",
    email: str = "o@example.com",
    card: str = "4242424242424242",
) -> str:
    """A customer who paid in Checkout (with `card`) for `base` and `sites` x Pro site; returns the subscription id."""
    line_items: list[dict[str, Any]] = [{"price": base, "quantity": 1}]
    if sites:
        line_items.append({"price": "price_pro_site", "quantity": sites})
    session = {"mode": "subscription", "line_items": line_items, "success_url": "https://app.example.com/billing/success"}
    subscription_id, _ = pay_in_checkout(fake, client, session, customer={"email": email}, card=card)
    return subscription_id


def item_ids(fake: FakeStripe, subscription_id: str) -> list[str]:
    return [item["id"] for item in fake.subscriptions[subscription_id]["items"]["data"]]


def lines_of(invoice: Any) -> list[tuple[int, str, int, int, bool, str, int]]:
    """(amount, description, period start, period end, proration, price, quantity) of each line."""
    return [
        (
            line["amount"],
            line["description"],
            line["period"]["start"],
            line["period"]["end"],
            line["parent"]["subscription_item_details"]["proration"],
            line["pricing"]["price_details"]["price"],
            line["quantity"],
        )
        for line in invoice["lines"]["data"]
    ]


def state_of(fake: FakeStripe) -> str:
    return json.dumps(
        {
            "customers": fake.customers,
            "subscriptions": fake.subscriptions,
            "invoices": fake.invoices,
            "invoice_items": fake.invoice_items,
            "payment_methods": fake.payment_methods,
            "payment_intents": fake.payment_intents,
            "invoice_payments": fake.invoice_payments,
            "events": fake.events,
        },
        sort_keys=True,
    )


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


PAID_INVOICE = [
    "invoice.created",
    "payment_intent.created",
    "invoice.finalized",
    "payment_intent.succeeded",
    "invoice_payment.paid",
    "invoice.paid",
    "invoice.payment_succeeded",
]


def preview(client: stripe.StripeClient, subscription_id: str, **details: Any) -> Any:
    params: Any = {"subscription": subscription_id, "subscription_details": details}
    return client.v1.invoices.create_preview(params=params).to_dict()


# --- previews ------------------------------------------------------------------------------------


def test_preview_of_an_upgrade_mid_period(fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock) -> None:
    subscription_id = pro_subscription(fake, client)
    base_id, _ = item_ids(fake, subscription_id)
    customer_id = fake.subscriptions[subscription_id]["customer"]
    clock.now = MID
    swap: Any = [{"id": base_id, "price": "price_enterprise_base", "quantity": 1}]
    credit, charge = -prorated(7900, MID), prorated(19900, MID)
    proration_lines = [
        (credit, "Unused time on Pro after 10 Feb 2026", MID, FEB_28, True, "price_pro_base", 1),
        (charge, "Remaining time on Enterprise after 10 Feb 2026", MID, FEB_28, True, "price_enterprise_base", 1),
    ]
    next_period_lines = [
        (19900, f"1 {X} Enterprise (at 199.00 USD / month)", FEB_28, MAR_31, False, "price_enterprise_base", 1),
        (3800, f"2 {X} Pro site (at 19.00 USD / month)", FEB_28, MAR_31, False, "price_pro_site", 2),
    ]

    # always_invoice: the invoice the update would create and charge now (proration_date defaults to now).
    now = client.v1.invoices.create_preview(
        params={
            "customer": customer_id,
            "subscription": subscription_id,
            "subscription_details": {"items": swap, "proration_behavior": "always_invoice"},
        }
    ).to_dict()
    assert now["id"].startswith("upcoming_in_")
    assert (now["object"], now["status"], now["billing_reason"], now["customer"], now["currency"]) == (
        "invoice",
        "draft",
        "upcoming",
        customer_id,
        "usd",
    )
    assert lines_of(now) == proration_lines
    assert now["subtotal"] == now["total"] == now["amount_due"] == credit + charge == 7656
    assert (now["period_start"], now["period_end"]) == (MID, MID)
    assert now["parent"]["type"] == "subscription_details"
    assert now["parent"]["subscription_details"]["subscription"] == subscription_id
    assert now["parent"]["subscription_details"]["subscription_proration_date"] == MID

    # create_prorations (the default): the next regular invoice, prorations first.
    later = preview(client, subscription_id, items=swap, proration_date=MID)
    assert lines_of(later) == proration_lines + next_period_lines
    assert later["total"] == later["amount_due"] == credit + charge + 19900 + 3800
    assert (later["period_start"], later["period_end"], later["next_payment_attempt"]) == (START, FEB_28, FEB_28 + 3600)

    # none: the next regular invoice of the new items, no prorations.
    plain = preview(client, subscription_id, items=swap, proration_behavior="none")
    assert lines_of(plain) == next_period_lines
    assert plain["total"] == 23700
    assert plain["parent"]["subscription_details"]["subscription_proration_date"] is None


def test_preview_of_quantity_changes(fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock) -> None:
    subscription_id = pro_subscription(fake, client, sites=2)
    _, site_id = item_ids(fake, subscription_id)
    at = START + 20 * DAY + 1234
    clock.now = at + 600  # the explicit proration_date wins over the clock

    more = preview(
        client, subscription_id, items=[{"id": site_id, "quantity": 5}], proration_behavior="always_invoice", proration_date=at
    )
    assert lines_of(more) == [
        (-prorated(2 * 1900, at), f"Unused time on 2 {X} Pro site after 20 Feb 2026", at, FEB_28, True, "price_pro_site", 2),
        (prorated(5 * 1900, at), f"Remaining time on 5 {X} Pro site after 20 Feb 2026", at, FEB_28, True, "price_pro_site", 5),
    ]
    assert more["amount_due"] == prorated(5 * 1900, at) - prorated(2 * 1900, at) == 1625

    fewer = preview(
        client, subscription_id, items=[{"id": site_id, "quantity": 1}], proration_behavior="always_invoice", proration_date=at
    )
    assert [line[0] for line in lines_of(fewer)] == [-prorated(2 * 1900, at), prorated(1900, at)]
    # A credit: the total is negative, nothing is due now (the rest goes to the customer's balance).
    assert fewer["total"] == -prorated(2 * 1900, at) + prorated(1900, at) < 0
    assert fewer["amount_due"] == 0

    # Next invoice after the decrease: the credit lowers the renewal.
    renewal = preview(client, subscription_id, items=[{"id": site_id, "quantity": 1}], proration_date=at)
    assert renewal["total"] == fewer["total"] + 7900 + 1900
    # Deleting the item credits its unused time only.
    removed = preview(client, subscription_id, items=[{"id": site_id, "deleted": True, "clear_usage": True}], proration_date=at)
    assert [line[0] for line in lines_of(removed)] == [-prorated(2 * 1900, at), 7900]


def test_preview_changes_nothing(fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock) -> None:
    subscription_id = pro_subscription(fake, client)
    base_id, site_id = item_ids(fake, subscription_id)
    clock.now = MID
    before = state_of(fake)
    for behavior in ("always_invoice", "create_prorations", "none"):
        invoice = preview(
            client,
            subscription_id,
            items=[{"id": base_id, "price": "price_enterprise_base"}, {"id": site_id, "quantity": 9}],
            proration_behavior=behavior,
            cancel_at_period_end=False,
        )
    assert state_of(fake) == before
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.retrieve(invoice["id"])
    assert raised.value.http_status == 404
    assert invoice["id"] not in [i.id for i in client.v1.invoices.list().data]


def test_preview_without_subscription_picks_the_customers_next_invoice(fake: FakeStripe, client: stripe.StripeClient) -> None:
    subscription_id = pro_subscription(fake, client, sites=3)
    customer_id = fake.subscriptions[subscription_id]["customer"]
    invoice = client.v1.invoices.create_preview(params={"customer": customer_id, "expand": ["customer"]}).to_dict()
    assert invoice["parent"]["subscription_details"]["subscription"] == subscription_id
    assert invoice["customer"]["id"] == customer_id
    assert invoice["total"] == 7900 + 3 * 1900

    # Set to cancel at the period end: nothing comes after, unless a change leaves prorations.
    with pytest.raises(stripe.InvalidRequestError) as raised:
        preview(client, subscription_id, cancel_at_period_end=True)
    assert (raised.value.http_status, raised.value.code) == (404, "invoice_upcoming_none")
    fake.cancel_subscription(subscription_id)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.create_preview(params={"customer": customer_id})
    assert (raised.value.http_status, raised.value.code) == (404, "invoice_upcoming_none")


# --- applying changes ----------------------------------------------------------------------------


def test_always_invoice_charges_what_the_preview_showed(
    fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock
) -> None:
    subscription_id = pro_subscription(fake, client, sites=2)
    base_id, site_id = item_ids(fake, subscription_id)
    before = copy.deepcopy(fake.subscriptions[subscription_id])
    changes: Any = [{"id": base_id, "price": "price_enterprise_base", "quantity": 1}, {"id": site_id, "quantity": 4}]
    clock.now = MID
    shown = preview(client, subscription_id, items=changes, proration_behavior="always_invoice", proration_date=MID)
    clock.advance(95)  # the customer took a while to confirm
    emitted = len(fake.events)
    updated = client.v1.subscriptions.update(
        subscription_id, params={"items": changes, "proration_behavior": "always_invoice", "proration_date": MID}
    )
    new_events = fake.events[emitted:]
    assert types(new_events) == ["customer.subscription.updated", *PAID_INVOICE]
    previous = new_events[0]["data"]["previous_attributes"]
    assert set(previous) == {"items", "latest_invoice"}
    assert previous["items"]["data"] == before["items"]["data"]
    invoice = new_events[-1]["data"]["object"]
    assert invoice["amount_paid"] == invoice["total"] == shown["amount_due"] > 0
    assert [line[:6] for line in lines_of(invoice)] == [line[:6] for line in lines_of(shown)]
    assert (invoice["status"], invoice["billing_reason"]) == ("paid", "subscription_update")
    assert updated.latest_invoice == invoice["id"]
    # The items keep their ids and their period.
    items = updated["items"].data
    assert [(i.id, i.price.id, i.quantity) for i in items] == [
        (base_id, "price_enterprise_base", 1),
        (site_id, "price_pro_site", 4),
    ]
    assert {(i.current_period_start, i.current_period_end) for i in items} == {(START, FEB_28)}
    # The prorations were invoice items, now on that invoice.
    invoice_items = {line["parent"]["subscription_item_details"]["invoice_item"] for line in invoice["lines"]["data"]}
    assert invoice_items == set(fake.invoice_items)
    assert {ii["invoice"] for ii in fake.invoice_items.values()} == {invoice["id"]}
    # The next renewal bills the new items only.
    renewal = fake.renew_subscription(subscription_id)[-1]["data"]["object"]
    assert lines_of(renewal) == [
        (19900, f"1 {X} Enterprise (at 199.00 USD / month)", FEB_28, MAR_31, False, "price_enterprise_base", 1),
        (7600, f"4 {X} Pro site (at 19.00 USD / month)", FEB_28, MAR_31, False, "price_pro_site", 4),
    ]


def test_create_prorations_are_billed_on_the_renewal(fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock) -> None:
    subscription_id = pro_subscription(fake, client, sites=2)
    _, site_id = item_ids(fake, subscription_id)
    clock.now = MID
    emitted = len(fake.events)
    client.v1.subscriptions.update(subscription_id, params={"items": [{"id": site_id, "quantity": 4}]})
    assert types(fake.events[emitted:]) == ["customer.subscription.updated"]
    assert len(fake.invoices) == 1
    pending = list(fake.invoice_items.values())
    assert [(ii["amount"], ii["invoice"], ii["proration"]) for ii in pending] == [
        (-prorated(2 * 1900, MID), None, True),
        (prorated(4 * 1900, MID), None, True),
    ]

    clock.now = FEB_28
    upcoming = client.v1.invoices.create_preview(params={"subscription": subscription_id}).to_dict()
    renewal = fake.renew_subscription(subscription_id)[-1]["data"]["object"]
    assert renewal["billing_reason"] == "subscription_cycle"
    assert lines_of(renewal) == [
        (-prorated(2 * 1900, MID), f"Unused time on 2 {X} Pro site after 10 Feb 2026", MID, FEB_28, True, "price_pro_site", 2),
        (prorated(4 * 1900, MID), f"Remaining time on 4 {X} Pro site after 10 Feb 2026", MID, FEB_28, True, "price_pro_site", 4),
        (7900, f"1 {X} Pro (at 79.00 USD / month)", FEB_28, MAR_31, False, "price_pro_base", 1),
        (7600, f"4 {X} Pro site (at 19.00 USD / month)", FEB_28, MAR_31, False, "price_pro_site", 4),
    ]
    assert renewal["amount_paid"] == upcoming["amount_due"] == renewal["total"]
    assert lines_of(upcoming) == lines_of(renewal)
    assert {ii["invoice"] for ii in fake.invoice_items.values()} == {renewal["id"]}
    # Billed once: the following renewal has no prorations.
    following = fake.renew_subscription(subscription_id)[-1]["data"]["object"]
    assert following["total"] == 7900 + 7600


def test_a_downgrade_credit_goes_to_the_customer_balance(
    fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock
) -> None:
    subscription_id = pro_subscription(fake, client, sites=2)
    base_id, _ = item_ids(fake, subscription_id)
    customer_id = fake.subscriptions[subscription_id]["customer"]
    clock.now = MID
    client.v1.subscriptions.update(
        subscription_id,
        params={"items": [{"id": base_id, "price": "price_starter_base"}], "proration_behavior": "always_invoice"},
    )
    invoice = fake.invoices[fake.subscriptions[subscription_id]["latest_invoice"]]
    credit = prorated(2900, MID) - prorated(7900, MID)
    assert (invoice["total"], invoice["amount_due"], invoice["amount_paid"], invoice["ending_balance"]) == (credit, 0, 0, credit)
    assert invoice["status"] == "paid"
    assert client.v1.customers.retrieve(customer_id).balance == credit

    upcoming = client.v1.invoices.create_preview(params={"subscription": subscription_id}).to_dict()
    assert (upcoming["total"], upcoming["starting_balance"], upcoming["amount_due"]) == (
        2900 + 3800,
        credit,
        2900 + 3800 + credit,
    )
    renewal = fake.renew_subscription(subscription_id)[-1]["data"]["object"]
    assert (renewal["amount_paid"], renewal["starting_balance"], renewal["ending_balance"]) == (2900 + 3800 + credit, credit, 0)
    assert client.v1.customers.retrieve(customer_id).balance == 0


def test_a_new_billing_interval_invoices_at_once_and_restarts_the_period(
    fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock
) -> None:
    subscription_id = pro_subscription(fake, client, sites=0)
    [base_id] = item_ids(fake, subscription_id)
    clock.now = MID
    year_later = int(datetime(2027, 2, 10, 3, 17, 5, tzinfo=UTC).timestamp())
    shown = preview(client, subscription_id, items=[{"id": base_id, "price": "price_pro_yearly"}])
    updated = client.v1.subscriptions.update(subscription_id, params={"items": [{"id": base_id, "price": "price_pro_yearly"}]})
    invoice = fake.invoices[str(updated.latest_invoice)]
    assert lines_of(invoice) == [
        (-prorated(7900, MID), "Unused time on Pro after 10 Feb 2026", MID, FEB_28, True, "price_pro_base", 1),
        (79000, f"1 {X} Pro yearly (at 790.00 USD / year)", MID, year_later, False, "price_pro_yearly", 1),
    ]
    assert invoice["amount_paid"] == shown["amount_due"] == 79000 - prorated(7900, MID)
    item = updated["items"].data[0]
    assert (item.current_period_start, item.current_period_end, updated.billing_cycle_anchor) == (MID, year_later, MID)

    # Without prorations: no credit, the new period in full.
    other = pro_subscription(fake, client, sites=0, email="b@example.com")
    [other_base] = item_ids(fake, other)
    no_credit = client.v1.subscriptions.update(
        other, params={"items": [{"id": other_base, "price": "price_pro_yearly"}], "proration_behavior": "none"}
    )
    assert [line[0] for line in lines_of(fake.invoices[str(no_credit.latest_invoice)])] == [79000]


def test_item_changes_add_swap_and_delete(fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock) -> None:
    subscription_id = pro_subscription(fake, client, sites=3)
    base_id, site_id = item_ids(fake, subscription_id)
    clock.now = MID
    # A new price without a quantity resets the quantity to 1 (as Stripe does); an added item joins the period.
    updated = client.v1.subscriptions.update(
        subscription_id,
        params={
            "items": [{"id": site_id, "price": "price_enterprise_site"}, {"price": "price_starter_base", "quantity": 2}],
            "proration_behavior": "none",
        },
    )
    assert [(i.price.id, i.quantity, i.current_period_end) for i in updated["items"].data] == [
        ("price_pro_base", 1, FEB_28),
        ("price_enterprise_site", 1, FEB_28),
        ("price_starter_base", 2, FEB_28),
    ]
    assert fake.invoice_items == {}
    removed = client.v1.subscriptions.update(
        subscription_id, params={"items": [{"id": base_id, "deleted": True}], "proration_behavior": "always_invoice"}
    )
    assert [i.price.id for i in removed["items"].data] == ["price_enterprise_site", "price_starter_base"]
    assert [line[0] for line in lines_of(fake.invoices[str(removed.latest_invoice)])] == [-prorated(7900, MID)]


def test_the_simulation_prorates_like_the_api(fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock) -> None:
    subscription_id = pro_subscription(fake, client, sites=2)
    clock.now = MID + 3600
    events = fake.update_subscription(
        subscription_id,
        items=[{"price": "price_pro_base", "quantity": 1}, {"price": "price_pro_site", "quantity": 3}],
        proration_behavior="always_invoice",
        proration_date=MID,
    )
    assert types(events) == ["customer.subscription.updated", *PAID_INVOICE]
    assert events[-1]["data"]["object"]["amount_paid"] == prorated(3 * 1900, MID) - prorated(2 * 1900, MID)
    [pending] = fake.update_subscription(subscription_id, items=[{"price": "price_pro_base", "quantity": 1}])
    assert pending["type"] == "customer.subscription.updated"
    assert [ii["invoice"] for ii in fake.invoice_items.values()].count(None) == 1  # the site item's credit
    with pytest.raises(FakeStripeError, match="proration_date"):
        fake.update_subscription(subscription_id, cancel_at_period_end=True, proration_date=START - 1)
    with pytest.raises(FakeStripeError, match="proration_behavior"):
        fake.update_subscription(subscription_id, proration_behavior="sometimes")


# --- rejections ----------------------------------------------------------------------------------

ITEM_REJECTIONS = [
    pytest.param([{"id": "si_nope", "quantity": 2}], "resource_missing", "items[0][id]", id="unknown-item"),
    pytest.param([{"id": "$FOREIGN", "quantity": 2}], None, "items[0][id]", id="foreign-item"),
    pytest.param([{"id": "$BASE", "deleted": True}, {"id": "$SITE", "deleted": True}], None, "items", id="delete-all"),
    pytest.param([{"id": "$SITE", "quantity": -1}], "parameter_invalid_integer", "items[0][quantity]", id="negative"),
    pytest.param([{"id": "$BASE", "price": "price_pro_eur"}], None, "items", id="currency"),
    pytest.param([{"price": "price_pro_yearly"}], None, "items", id="interval"),
    pytest.param([{"id": "$BASE", "price": "price_setup_fee"}], None, "items[0][price]", id="one-time-price"),
    pytest.param([{"id": "$BASE", "price": "price_nope"}], "resource_missing", "items[0][price]", id="unknown-price"),
    pytest.param([{"id": "$SITE", "qty": 2}], "parameter_unknown", "items[0][qty]", id="unknown-param"),
    pytest.param(
        [{"id": "$SITE", "price_data": {"unit_amount": 1}}],
        "parameter_unsupported_by_fake",
        "items[0][price_data]",
        id="unsupported",
    ),
]


def resolve(fake: FakeStripe, items: list[dict[str, Any]], subscription_id: str, foreign_id: str) -> list[dict[str, Any]]:
    base_id, site_id = item_ids(fake, subscription_id)
    names = {"$BASE": base_id, "$SITE": site_id, "$FOREIGN": item_ids(fake, foreign_id)[0]}
    return [{**item, "id": names.get(item["id"], item["id"])} if "id" in item else item for item in items]


@pytest.mark.parametrize(("items", "code", "param"), ITEM_REJECTIONS)
def test_update_rejections(fake: FakeStripe, client: stripe.StripeClient, items: Any, code: str | None, param: str) -> None:
    subscription_id = pro_subscription(fake, client)
    foreign_id = pro_subscription(fake, client, email="other@example.com")
    params: Any = {"items": resolve(fake, items, subscription_id, foreign_id), "proration_behavior": "always_invoice"}
    before = state_of(fake)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.subscriptions.update(subscription_id, params=params)
    assert (raised.value.code, raised.value.param) == (code, param), raised.value.user_message
    assert state_of(fake) == before


@pytest.mark.parametrize(("items", "code", "param"), ITEM_REJECTIONS)
def test_preview_rejections_of_items(
    fake: FakeStripe, client: stripe.StripeClient, items: Any, code: str | None, param: str
) -> None:
    subscription_id = pro_subscription(fake, client)
    foreign_id = pro_subscription(fake, client, email="other@example.com")
    before = state_of(fake)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        preview(client, subscription_id, items=resolve(fake, items, subscription_id, foreign_id))
    name, bracket, rest = param.partition("[")
    assert (raised.value.code, raised.value.param) == (code, f"subscription_details[{name}]{bracket}{rest}")
    assert state_of(fake) == before


SITE_TO_3 = [{"id": "$SITE", "quantity": 3}]


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        pytest.param({}, "parameter_missing", "customer", id="no-customer-or-subscription"),
        pytest.param({"subscription": "sub_nope"}, "resource_missing", "subscription", id="unknown-subscription"),
        pytest.param({"subscription": "$SUB", "customer": "$OTHER"}, None, "subscription", id="other-customer"),
        pytest.param({"customer": "cus_nope"}, "resource_missing", "customer", id="unknown-customer"),
        pytest.param(
            {"subscription_items": [{"price": "price_pro_base"}]}, "parameter_unknown", "subscription_items", id="old-param"
        ),
        pytest.param({"proration_behavior": "later"}, None, "proration_behavior", id="behavior-enum"),
        pytest.param({"items": SITE_TO_3, "proration_date": START - 1}, None, "proration_date", id="date-before-period"),
        pytest.param({"items": SITE_TO_3, "proration_date": FEB_28 + 1}, None, "proration_date", id="date-after-period"),
        pytest.param(
            {"items": SITE_TO_3, "proration_behavior": "none", "proration_date": START},
            None,
            "proration_date",
            id="date-with-none",
        ),
        pytest.param({"proration_date": START}, None, "proration_date", id="date-without-items"),
        pytest.param(
            {"customer": "$CUS", "subscription_details": {"items": [{"price": "price_pro_base"}]}},
            "parameter_unsupported_by_fake",
            "subscription_details[items]",
            id="new-subscription",
        ),
        pytest.param({"trial_end": "now"}, "parameter_unsupported_by_fake", "trial_end", id="unsupported"),
        pytest.param(
            {"subscription": "$SUB", "invoice_items": [{"amount": 100}]},
            "parameter_unsupported_by_fake",
            "invoice_items",
            id="unsupported-top",
        ),
    ],
)
def test_preview_rejections(fake: FakeStripe, client: stripe.StripeClient, params: Any, code: str | None, param: str) -> None:
    """Top-level params as given; any other key is one of subscription_details (previewing "$SUB")."""
    subscription_id = pro_subscription(fake, client)
    other_id = pro_subscription(fake, client, email="other@example.com")
    names = {
        "$SUB": subscription_id,
        "$CUS": fake.subscriptions[subscription_id]["customer"],
        "$OTHER": fake.subscriptions[other_id]["customer"],
        "$SITE": item_ids(fake, subscription_id)[1],
    }
    top = {"customer", "subscription", "subscription_details", "subscription_items", "invoice_items"}
    request: Any = {
        key: names.get(value, value) if isinstance(value, str) else value for key, value in params.items() if key in top
    }
    details = {key: value for key, value in params.items() if key not in top}
    if details:
        details["items"] = [{**item, "id": names[item["id"]]} for item in details.get("items", [])] or None
        request = {"subscription": subscription_id, "subscription_details": {k: v for k, v in details.items() if v is not None}}
        param = f"subscription_details[{param}]"
    before = state_of(fake)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.create_preview(params=request)
    assert (raised.value.code, raised.value.param) == (code, param), raised.value.user_message
    assert state_of(fake) == before


def test_update_rejects_a_proration_date_outside_the_period(fake: FakeStripe, client: stripe.StripeClient) -> None:
    subscription_id = pro_subscription(fake, client)
    _, site_id = item_ids(fake, subscription_id)
    before = state_of(fake)
    for proration_date in (START - 1, FEB_28 + 1):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.subscriptions.update(
                subscription_id, params={"items": [{"id": site_id, "quantity": 3}], "proration_date": proration_date}
            )
        assert raised.value.param == "proration_date"
    assert state_of(fake) == before


# --- payments on subscription changes -------------------------------------------------------------
#
# Who pays decides: the card the customer gave Checkout (saved for off-session use), or the one
# they saved later in the portal (set_default_card). An always_invoice change is charged at once.

OK = "4242424242424242"
SCA_ONCE = "4000002500003155"  # authenticates in Checkout, then off-session charges go through
SCA_ALWAYS = "4000002760003184"  # every charge needs the cardholder
DECLINES_LATER = "4000000000000341"  # attaches, every charge is declined
THREE_DS_MESSAGE = "requires additional user action"


def upgrade_params(fake: FakeStripe, subscription_id: str, **extra: Any) -> Any:
    """Pro -> Enterprise at MID, invoiced now (the site item's price stays: Pro site)."""
    base_id = item_ids(fake, subscription_id)[0]
    return {
        "items": [{"id": base_id, "price": "price_enterprise_base", "quantity": 1}],
        "proration_behavior": "always_invoice",
        "proration_date": MID,
        **extra,
    }


def customer_of(fake: FakeStripe, subscription_id: str) -> str:
    return str(fake.subscriptions[subscription_id]["customer"])


def with_card(fake: FakeStripe, client: stripe.StripeClient, card: str) -> str:
    """A Pro subscription paid with 4242 in Checkout whose default card is then `card` (saved in the portal)."""
    subscription_id = pro_subscription(fake, client)
    if card != OK:
        fake.set_default_card(customer_of(fake, subscription_id), card)
    return subscription_id


def intent_of(client: stripe.StripeClient, invoice_id: str) -> Any:
    """The invoice's PaymentIntent, through the one expansion path that reaches it from the invoice."""
    invoice: Any = client.v1.invoices.retrieve(invoice_id, params={"expand": ["payments.data.payment.payment_intent"]})
    [payment] = invoice.payments.data
    return payment.payment.payment_intent


@pytest.mark.parametrize(
    ("card", "via_checkout", "intent_status", "failure_events"),
    [
        pytest.param(OK, True, "succeeded", [], id="4242"),
        pytest.param(SCA_ONCE, True, "succeeded", [], id="3155-set-up-in-checkout"),
        pytest.param(
            DECLINES_LATER,
            False,
            "requires_payment_method",
            ["payment_intent.payment_failed", "invoice.payment_failed"],
            id="0341",
        ),
        pytest.param(
            SCA_ALWAYS,
            True,
            "requires_action",
            ["payment_intent.requires_action", "invoice.payment_failed", "invoice.payment_action_required"],
            id="3184",
        ),
    ],
)
def test_allow_incomplete_is_the_default_and_applies_the_change_whatever_the_card(
    fake: FakeStripe,
    client: stripe.StripeClient,
    clock: ManualClock,
    card: str,
    via_checkout: bool,
    intent_status: str,
    failure_events: list[str],
) -> None:
    subscription_id = pro_subscription(fake, client, card=card) if via_checkout else with_card(fake, client, card)
    clock.now = MID
    params = upgrade_params(fake, subscription_id)
    shown = preview(client, subscription_id, **{k: v for k, v in params.items() if k != "expand"})
    emitted = len(fake.events)
    updated: Any = client.v1.subscriptions.update(subscription_id, params=cast(Any, {**params, "expand": ["latest_invoice"]}))
    paid = intent_status == "succeeded"
    expected = ["customer.subscription.updated", "invoice.created", "payment_intent.created", "invoice.finalized"]
    expected += PAID_INVOICE[3:] if paid else failure_events
    assert types(fake.events[emitted:]) == expected
    # The change is applied either way; only the status tells whether it was paid.
    assert updated["items"].data[0].price.id == "price_enterprise_base"
    assert updated.pending_update is None
    assert updated.status == ("active" if paid else "past_due")
    invoice = updated.latest_invoice
    assert (invoice.status, invoice.amount_due, invoice.attempt_count, invoice.attempted) == (
        "paid" if paid else "open",
        shown["amount_due"],
        1,
        True,
    )
    assert invoice.hosted_invoice_url.startswith("https://invoice.stripe.com/i/acct_fake/test_")
    intent = intent_of(client, invoice.id)
    assert (intent.status, intent.amount, intent.customer) == (intent_status, shown["amount_due"], updated.customer)
    assert intent.client_secret.startswith(f"{intent.id}_secret_")
    assert intent.payment_method == updated.default_payment_method
    if card == DECLINES_LATER:
        error = intent.last_payment_error
        assert (error.type, error.code, error.decline_code, error.message) == (
            "card_error",
            "card_declined",
            "generic_decline",
            "Your card was declined.",
        )
        assert invoice.next_payment_attempt == MID + 3 * DAY
    if card == SCA_ALWAYS:
        assert intent.last_payment_error is None
        assert intent.next_action.type == "use_stripe_sdk"
        assert intent.next_action.use_stripe_sdk["stripe_js"].startswith("https://hooks.stripe.com/3d_secure_2/hosted?")


def test_a_card_that_declines_every_charge_gets_through_checkout_only_without_a_charge(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    customer: Any = client.v1.customers.create(params={"email": "o@example.com"})
    params: Any = {
        "mode": "subscription",
        "customer": customer.id,
        "line_items": [{"price": "price_pro_base", "quantity": 1}],
        "success_url": "https://app.example.com/billing/success",
    }
    session: Any = client.v1.checkout.sessions.create(params=params)
    before = state_of(fake)
    with pytest.raises(CardDeclined) as declined:
        fake.complete_checkout(session.id, "4000 0000 0000 0341")
    assert declined.value.decline_code == "generic_decline"
    assert state_of(fake) == before
    # With a trial nothing is charged: the card is saved, and the first charge after the trial fails.
    trial: Any = client.v1.checkout.sessions.create(params=cast(Any, {**params, "subscription_data": {"trial_period_days": 7}}))
    subscription_id = fake.complete_checkout(trial.id, "4000 0000 0000 0341")[0]["data"]["object"]["id"]
    renewal = fake.renew_subscription(subscription_id)
    assert types(renewal)[-3:] == ["payment_intent.payment_failed", "invoice.payment_failed", "customer.subscription.updated"]
    assert fake.subscriptions[subscription_id]["status"] == "past_due"


def card_less_trial(client: stripe.StripeClient, missing_payment_method: str | None) -> Any:
    customer: Any = client.v1.customers.create(params={"email": "t@example.com"})
    subscription_data: dict[str, Any] = {"trial_period_days": 14}
    if missing_payment_method is not None:
        subscription_data["trial_settings"] = {"end_behavior": {"missing_payment_method": missing_payment_method}}
    params: Any = {
        "mode": "subscription",
        "customer": customer.id,
        "line_items": [{"price": "price_pro_base", "quantity": 1}],
        "success_url": "https://app.example.com/billing/success",
        "payment_method_collection": "if_required",
        "subscription_data": subscription_data,
    }
    return client.v1.checkout.sessions.create(params=params)


def test_checkout_completes_without_a_card_only_when_it_collects_one_if_required_and_nothing_is_due(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    customer: Any = client.v1.customers.create(params={"email": "c@example.com"})
    base: Any = {
        "mode": "subscription",
        "customer": customer.id,
        "line_items": [{"price": "price_pro_base", "quantity": 1}],
        "success_url": "https://app.example.com/billing/success",
    }
    variants: list[Any] = [
        base,  # the default: always collect
        {**base, "payment_method_collection": "if_required"},  # something is due: a card is required
        {**base, "subscription_data": {"trial_period_days": 7}},  # a trial, but collection is "always"
    ]
    for params in variants:
        session: Any = client.v1.checkout.sessions.create(params=params)
        before = state_of(fake)
        with pytest.raises(FakeStripeError, match="collects a payment method"):
            fake.complete_checkout(session.id, None)
        assert state_of(fake) == before

    session = card_less_trial(client, "cancel")
    events = fake.complete_checkout(session.id, None)
    subscription = fake.subscriptions[events[0]["data"]["object"]["id"]]
    assert (subscription["status"], subscription["default_payment_method"]) == ("trialing", None)
    assert subscription["trial_settings"] == {"end_behavior": {"missing_payment_method": "cancel"}}
    assert fake.checkout_sessions[session.id]["payment_status"] == "no_payment_required"
    assert fake.payment_methods == {}


@pytest.mark.parametrize(
    ("missing_payment_method", "status", "last_event"),
    [
        ("cancel", "canceled", "customer.subscription.deleted"),
        ("pause", "paused", "customer.subscription.updated"),
        (None, "past_due", "customer.subscription.updated"),  # Stripe's default: create_invoice, unpaid
    ],
)
def test_a_card_less_trial_ends_as_its_trial_settings_say(
    fake: FakeStripe, client: stripe.StripeClient, missing_payment_method: str | None, status: str, last_event: str
) -> None:
    session = card_less_trial(client, missing_payment_method)
    subscription_id = fake.complete_checkout(session.id, None)[0]["data"]["object"]["id"]
    ended = fake.renew_subscription(subscription_id)
    assert (fake.subscriptions[subscription_id]["status"], types(ended)[-1]) == (status, last_event)
    paid = [invoice for invoice in fake.invoices.values() if invoice["amount_paid"] > 0]
    assert paid == []


def test_a_card_added_during_a_card_less_trial_pays_at_its_end(fake: FakeStripe, client: stripe.StripeClient) -> None:
    session = card_less_trial(client, "cancel")
    subscription_id = fake.complete_checkout(session.id, None)[0]["data"]["object"]["id"]
    fake.set_default_card(fake.subscriptions[subscription_id]["customer"], "4242 4242 4242 4242")
    fake.renew_subscription(subscription_id)
    assert fake.subscriptions[subscription_id]["status"] == "active"
    (paid,) = [invoice for invoice in fake.invoices.values() if invoice["amount_paid"] > 0]
    assert paid["amount_paid"] == fake.prices["price_pro_base"]["unit_amount"]


def test_renewals_follow_the_card(fake: FakeStripe, client: stripe.StripeClient) -> None:
    subscription_id = pro_subscription(fake, client, card=SCA_ALWAYS)  # Checkout ran the challenge
    renewal = fake.renew_subscription(subscription_id)
    assert types(renewal) == [
        "invoice.created",
        "payment_intent.created",
        "invoice.finalized",
        "payment_intent.requires_action",
        "invoice.payment_failed",
        "invoice.payment_action_required",
        "customer.subscription.updated",
    ]
    invoice = renewal[-2]["data"]["object"]
    assert (invoice["status"], invoice["billing_reason"]) == ("open", "subscription_cycle")
    assert renewal[-1]["data"]["object"]["status"] == "past_due"
    intent = fake.invoice_payment_intent(invoice["id"])
    assert intent is not None and intent["status"] == "requires_action"
    # The cardholder authenticates (Stripe.js with the client_secret, or the hosted invoice page).
    done = fake.authenticate_payment(intent["id"])
    assert types(done) == [*PAID_INVOICE[3:], "customer.subscription.updated"]
    assert done[-1]["data"]["previous_attributes"] == {"status": "past_due"}
    assert fake.invoices[invoice["id"]]["attempt_count"] == 1  # the challenge finished the same attempt


def pending_change(fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock, card: str) -> tuple[str, Any]:
    subscription_id = with_card(fake, client, card)
    clock.now = MID
    updated: Any = client.v1.subscriptions.update(
        subscription_id, params=upgrade_params(fake, subscription_id, payment_behavior="pending_if_incomplete")
    )
    return subscription_id, updated


def test_pending_if_incomplete_applies_nothing_until_the_declined_invoice_is_paid(
    fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock
) -> None:
    subscription_id = with_card(fake, client, DECLINES_LATER)
    before = copy.deepcopy(fake.subscriptions[subscription_id])
    clock.now = MID
    params = upgrade_params(fake, subscription_id, payment_behavior="pending_if_incomplete")
    shown = preview(client, subscription_id, **{k: v for k, v in params.items() if k != "payment_behavior"})
    emitted = len(fake.events)
    updated: Any = client.v1.subscriptions.update(
        subscription_id, params=cast(Any, {**params, "expand": ["latest_invoice"]})
    )  # 200
    assert types(fake.events[emitted:]) == [
        "customer.subscription.updated",
        "invoice.created",
        "payment_intent.created",
        "invoice.finalized",
        "payment_intent.payment_failed",
        "invoice.payment_failed",
    ]
    assert set(fake.events[emitted]["data"]["previous_attributes"]) == {"latest_invoice", "pending_update"}
    # Nothing of the change is applied: items, status and period as before.
    assert updated.status == "active"
    assert [(i.id, i.price.id, i.quantity) for i in updated["items"].data] == [
        (i["id"], i["price"]["id"], i["quantity"]) for i in before["items"]["data"]
    ]
    pending = updated.pending_update.to_dict()
    assert pending["expires_at"] == MID + 23 * 3600
    assert (pending["billing_cycle_anchor"], pending["cancel_at_period_end"], pending["metadata"]) == (None, None, None)
    assert (pending["trial_end"], pending["trial_from_plan"], pending["discounts"]) == (None, None, None)
    assert [(i["id"], i["price"]["id"], i["quantity"]) for i in pending["subscription_items"]] == [
        (before["items"]["data"][0]["id"], "price_enterprise_base", 1),
        (before["items"]["data"][1]["id"], "price_pro_site", 2),
    ]
    invoice = updated.latest_invoice
    assert (invoice.status, invoice.amount_due, invoice.billing_reason) == ("open", shown["amount_due"], "subscription_update")
    assert intent_of(client, invoice.id).status == "requires_payment_method"
    # Paying again with the same card: declined again, still pending with the same expiry.
    fake.pay_invoice(invoice.id)
    assert fake.subscriptions[subscription_id]["pending_update"]["expires_at"] == MID + 23 * 3600
    # The customer pays on the hosted invoice page with a card that works: the change applies.
    clock.advance(600)
    paid = fake.pay_invoice(invoice.id, OK)
    assert types(paid) == [
        *PAID_INVOICE[3:],
        "customer.subscription.pending_update_applied",
        "customer.subscription.updated",
    ]
    assert set(paid[-1]["data"]["previous_attributes"]) == {"items", "pending_update"}
    after = fake.subscriptions[subscription_id]
    assert after["pending_update"] is None
    assert [(i["price"]["id"], i["quantity"]) for i in after["items"]["data"]] == [
        ("price_enterprise_base", 1),
        ("price_pro_site", 2),
    ]
    assert (fake.invoices[invoice.id]["status"], fake.invoices[invoice.id]["attempt_count"]) == ("paid", 3)
    # The card typed in paid this invoice only: the saved default stays.
    assert fake.payment_intents[intent_of(client, invoice.id).id]["payment_method"] != after["default_payment_method"]


def test_pending_if_incomplete_with_3d_secure_waits_for_the_challenge(
    fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock
) -> None:
    subscription_id, updated = pending_change(fake, client, clock, SCA_ALWAYS)
    assert updated.pending_update is not None
    assert types(fake.events[-3:]) == [
        "payment_intent.requires_action",
        "invoice.payment_failed",
        "invoice.payment_action_required",
    ]
    invoice: Any = client.v1.invoices.retrieve(
        str(updated.latest_invoice), params={"expand": ["payments", "confirmation_secret"]}
    )
    intent_id = invoice.payments.data[0].payment.payment_intent
    assert isinstance(intent_id, str)
    intent: Any = client.v1.payment_intents.retrieve(intent_id)
    assert (intent.status, intent.client_secret) == ("requires_action", invoice.confirmation_secret.client_secret)
    assert invoice.confirmation_secret.type == "payment_intent"
    # A failed challenge leaves everything pending.
    fake.authenticate_payment(intent_id, succeed=False)
    failed: Any = client.v1.payment_intents.retrieve(intent_id)
    assert (failed.status, failed.last_payment_error.code) == ("requires_payment_method", "payment_intent_authentication_failure")
    assert fake.subscriptions[subscription_id]["pending_update"] is not None
    with pytest.raises(FakeStripeError, match="not requires_action"):
        fake.authenticate_payment(intent_id)
    # Paying with the saved card asks for the challenge again; completing it applies the change.
    fake.pay_invoice(invoice.id)
    assert fake.payment_intents[intent_id]["status"] == "requires_action"
    done = fake.authenticate_payment(intent_id)
    assert "customer.subscription.pending_update_applied" in types(done)
    assert fake.subscriptions[subscription_id]["items"]["data"][0]["price"]["id"] == "price_enterprise_base"
    with_secret: Any = client.v1.payment_intents.retrieve(intent_id, params={"client_secret": intent.client_secret})
    assert with_secret.status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.retrieve(intent_id, params={"client_secret": "pi_x_secret_wrong"})
    assert raised.value.param == "client_secret"


def test_pending_if_incomplete_is_applied_at_once_when_the_payment_succeeds(
    fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock
) -> None:
    subscription_id, updated = pending_change(fake, client, clock, OK)
    assert updated.pending_update is None
    assert updated["items"].data[0].price.id == "price_enterprise_base"
    assert fake.invoices[str(updated.latest_invoice)]["status"] == "paid"
    # A downgrade charges nothing (the credit goes to the balance): applied at once too.
    downgrade: Any = client.v1.subscriptions.update(
        subscription_id,
        params={
            "items": [{"id": item_ids(fake, subscription_id)[0], "price": "price_pro_base"}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
        },
    )
    assert (downgrade.pending_update, downgrade["items"].data[0].price.id) == (None, "price_pro_base")


def test_a_pending_update_expires_after_23_hours_and_its_invoice_is_voided(
    fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock
) -> None:
    subscription_id, updated = pending_change(fake, client, clock, DECLINES_LATER)
    invoice_id = str(updated.latest_invoice)
    intent_id = intent_of(client, invoice_id).id
    pending = copy.deepcopy(fake.subscriptions[subscription_id]["pending_update"])
    clock.advance(23 * 3600 - 1)
    assert fake.tick() == []
    clock.advance(1)
    expired = fake.tick()
    assert types(expired) == [
        "payment_intent.canceled",
        "invoice.voided",
        "customer.subscription.pending_update_expired",
        "customer.subscription.updated",
    ]
    assert expired[-1]["data"]["previous_attributes"] == {"pending_update": pending}
    subscription: Any = client.v1.subscriptions.retrieve(subscription_id, params={"expand": ["latest_invoice"]})
    assert (subscription.pending_update, subscription.status) == (None, "active")
    assert subscription["items"].data[0].price.id == "price_pro_base"
    assert subscription.latest_invoice.status == "void"
    assert subscription.latest_invoice.status_transitions.voided_at == MID + 23 * 3600
    intent: Any = client.v1.payment_intents.retrieve(intent_id)
    assert (intent.status, intent.cancellation_reason) == ("canceled", "void_invoice")
    with pytest.raises(FakeStripeError, match="void"):
        fake.pay_invoice(invoice_id, OK)


def test_a_pending_update_never_outlives_the_period(fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock) -> None:
    subscription_id = with_card(fake, client, DECLINES_LATER)
    clock.now = FEB_28 - 3600
    site_id = item_ids(fake, subscription_id)[1]
    updated: Any = client.v1.subscriptions.update(
        subscription_id,
        params={
            "items": [{"id": site_id, "quantity": 9}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
        },
    )
    assert updated.pending_update.expires_at == FEB_28
    # The renewal (at the period end) finds it expired; the renewal bills the old items.
    renewal = fake.renew_subscription(subscription_id)
    assert types(renewal)[:4] == [
        "payment_intent.canceled",
        "invoice.voided",
        "customer.subscription.pending_update_expired",
        "customer.subscription.updated",
    ]
    assert fake.subscriptions[subscription_id]["items"]["data"][1]["quantity"] == 2


def test_pending_updates_take_metadata_and_cancel_at_period_end_since_endive(
    fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock
) -> None:
    subscription_id = with_card(fake, client, DECLINES_LATER)
    clock.now = MID
    params = upgrade_params(fake, subscription_id, payment_behavior="pending_if_incomplete", cancel_at_period_end=True)
    params["metadata"] = {"plan": "enterprise"}
    updated: Any = client.v1.subscriptions.update(subscription_id, params=params)
    assert (updated.metadata.to_dict(), updated.cancel_at_period_end) == ({}, False)
    assert (updated.pending_update.metadata.to_dict(), updated.pending_update.cancel_at_period_end) == (
        {"plan": "enterprise"},
        True,
    )
    fake.pay_invoice(str(updated.latest_invoice), OK)
    after = fake.subscriptions[subscription_id]
    assert after["metadata"] == {"plan": "enterprise"}
    assert (after["cancel_at_period_end"], after["cancel_at"], after["canceled_at"]) == (True, FEB_28, MID)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        pytest.param({"description": "Enterprise"}, "description", id="description"),
        pytest.param({"cancel_at": FEB_28}, "cancel_at", id="cancel_at"),
        pytest.param({"cancellation_details": {"comment": "x"}}, "cancellation_details", id="cancellation_details"),
        pytest.param({"pause_collection": {"behavior": "void"}}, "pause_collection", id="pause_collection"),
    ],
)
def test_pending_if_incomplete_refuses_what_a_pending_update_cannot_hold(
    fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock, extra: Any, param: str
) -> None:
    subscription_id = with_card(fake, client, DECLINES_LATER)
    clock.now = MID
    before = state_of(fake)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.subscriptions.update(
            subscription_id, params=upgrade_params(fake, subscription_id, payment_behavior="pending_if_incomplete", **extra)
        )
    assert (raised.value.http_status, raised.value.param) == (400, param)
    assert "pending_if_incomplete" in str(raised.value.user_message)
    items: Any = [{"id": item_ids(fake, subscription_id)[1], "quantity": 3, "metadata": {"a": "b"}}]
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.subscriptions.update(subscription_id, params={"items": items, "payment_behavior": "pending_if_incomplete"})
    assert raised.value.param == "items[0][metadata]"
    assert state_of(fake) == before


def test_a_conflicting_update_expires_the_pending_one(fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock) -> None:
    subscription_id, updated = pending_change(fake, client, clock, DECLINES_LATER)
    first_invoice = str(updated.latest_invoice)
    # Metadata alone does not conflict: the pending update stays.
    client.v1.subscriptions.update(subscription_id, params={"metadata": {"note": "x"}})
    assert fake.subscriptions[subscription_id]["pending_update"] is not None
    # New items do: the old pending update expires (its invoice voided), the new change is charged.
    fake.set_default_card(customer_of(fake, subscription_id), OK)
    emitted = len(fake.events)
    site_id = item_ids(fake, subscription_id)[1]
    changed: Any = client.v1.subscriptions.update(
        subscription_id,
        params={
            "items": [{"id": site_id, "quantity": 5}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
        },
    )
    assert types(fake.events[emitted : emitted + 4]) == [
        "payment_intent.canceled",
        "invoice.voided",
        "customer.subscription.pending_update_expired",
        "customer.subscription.updated",
    ]
    assert fake.invoices[first_invoice]["status"] == "void"
    assert changed.pending_update is None
    assert [(i.price.id, i.quantity) for i in changed["items"].data] == [("price_pro_base", 1), ("price_pro_site", 5)]


def test_canceling_discards_a_pending_update(fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock) -> None:
    subscription_id, updated = pending_change(fake, client, clock, DECLINES_LATER)
    client.v1.subscriptions.cancel(subscription_id)
    assert types(fake.events[-5:]) == [
        "payment_intent.canceled",
        "invoice.voided",
        "customer.subscription.pending_update_expired",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    ]
    assert fake.invoices[str(updated.latest_invoice)]["status"] == "void"


@pytest.mark.parametrize(
    ("card", "code", "decline_code", "message"),
    [
        pytest.param(DECLINES_LATER, "card_declined", "generic_decline", "Your card was declined.", id="0341"),
        pytest.param(SCA_ALWAYS, "subscription_payment_intent_requires_action", None, THREE_DS_MESSAGE, id="3184"),
    ],
)
def test_error_if_incomplete_answers_402_and_applies_nothing(
    fake: FakeStripe,
    client: stripe.StripeClient,
    clock: ManualClock,
    card: str,
    code: str,
    decline_code: str | None,
    message: str,
) -> None:
    subscription_id = with_card(fake, client, card)
    clock.now = MID
    params = upgrade_params(fake, subscription_id, payment_behavior="error_if_incomplete")
    before = state_of(fake)
    with pytest.raises(stripe.CardError) as raised:
        client.v1.subscriptions.update(subscription_id, params=params, options={"idempotency_key": "change-1"})
    error: Any = raised.value
    assert (error.http_status, error.code, error.error.type) == (402, code, "card_error")
    assert error.error.decline_code == decline_code
    assert message in str(error.user_message)
    assert state_of(fake) == before
    # The 402 is the key's stored result.
    with pytest.raises(stripe.CardError):
        client.v1.subscriptions.update(subscription_id, params=params, options={"idempotency_key": "change-1"})
    assert fake.requests[-1].replayed


def test_default_incomplete_applies_the_change_and_waits_for_confirmation(
    fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock
) -> None:
    subscription_id = pro_subscription(fake, client)
    clock.now = MID
    emitted = len(fake.events)
    updated: Any = client.v1.subscriptions.update(
        subscription_id, params=upgrade_params(fake, subscription_id, payment_behavior="default_incomplete")
    )
    assert types(fake.events[emitted:]) == [
        "customer.subscription.updated",
        "invoice.created",
        "payment_intent.created",
        "invoice.finalized",
    ]
    assert (updated.status, updated["items"].data[0].price.id, updated.pending_update) == (
        "past_due",
        "price_enterprise_base",
        None,
    )
    invoice = fake.invoices[str(updated.latest_invoice)]
    assert (invoice["status"], invoice["attempt_count"], invoice["attempted"]) == ("open", 0, False)
    assert intent_of(client, invoice["id"]).status == "requires_payment_method"
    assert types(fake.pay_latest_invoice(subscription_id))[-1] == "customer.subscription.updated"
    assert fake.subscriptions[subscription_id]["status"] == "active"


def test_expansion_paths_to_the_payment(fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock) -> None:
    subscription_id, updated = pending_change(fake, client, clock, SCA_ALWAYS)
    invoice_id = str(updated.latest_invoice)
    plain: Any = client.v1.invoices.retrieve(invoice_id)
    assert "payments" not in plain and "confirmation_secret" not in plain  # includable: only when expanded
    sub: Any = client.v1.subscriptions.retrieve(
        subscription_id, params={"expand": ["latest_invoice.payments", "latest_invoice.confirmation_secret"]}
    )
    [payment] = sub.latest_invoice.payments.data
    assert (payment.object, payment.is_default, payment.status, payment.invoice) == ("invoice_payment", True, "open", invoice_id)
    assert payment.amount_requested == sub.latest_invoice.amount_due
    assert payment.payment.type == "payment_intent" and isinstance(payment.payment.payment_intent, str)
    assert sub.latest_invoice.payments.url == f"/v1/invoice_payments?invoice={invoice_id}"
    assert sub.latest_invoice.confirmation_secret.client_secret.startswith(payment.payment.payment_intent)
    # Four levels at most (a list's `data` counts): from the subscription the PaymentIntent is one too deep.
    with pytest.raises(stripe.InvalidRequestError, match="more than 4 levels"):
        client.v1.subscriptions.retrieve(
            subscription_id, params={"expand": ["latest_invoice.payments.data.payment.payment_intent"]}
        )
    with pytest.raises(stripe.InvalidRequestError, match="cannot be expanded"):
        client.v1.subscriptions.retrieve(subscription_id, params={"expand": ["latest_invoice.payment_intent"]})
    listed: Any = client.v1.invoice_payments.list(params={"invoice": invoice_id, "expand": ["data.payment.payment_intent"]})
    assert listed.data[0].payment.payment_intent.status == "requires_action"
    by_intent: Any = client.v1.invoice_payments.list(
        params={"payment": {"type": "payment_intent", "payment_intent": payment.payment.payment_intent}}
    )
    assert [p.id for p in by_intent.data] == [payment.id]
    fetched: Any = client.v1.invoice_payments.retrieve(payment.id, params={"expand": ["invoice"]})
    assert fetched.invoice.id == invoice_id
    charged = next(pi for pi in fake.payment_intents.values() if pi["status"] == "succeeded")  # Checkout's
    assert charged["latest_charge"].startswith("ch_")
    with pytest.raises(stripe.InvalidRequestError, match="fake keeps no Charge"):
        client.v1.payment_intents.retrieve(charged["id"], params={"expand": ["latest_charge"]})
    intent: Any = client.v1.payment_intents.retrieve(payment.payment.payment_intent, params={"expand": ["payment_method"]})
    assert intent.payment_method.card.last4 == "3184"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.payment_intents.retrieve("pi_nope")
    assert missing.value.http_status == 404


def test_pay_endpoint_records_declines_and_applies_a_paid_pending_update(
    fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock
) -> None:
    subscription_id, updated = pending_change(fake, client, clock, DECLINES_LATER)
    invoice_id = str(updated.latest_invoice)
    with pytest.raises(stripe.CardError) as declined:
        client.v1.invoices.pay(invoice_id)
    assert (declined.value.http_status, declined.value.code, cast(Any, declined.value).error.decline_code) == (
        402,
        "card_declined",
        "generic_decline",
    )
    assert fake.invoices[invoice_id]["attempt_count"] == 2  # recorded, not rolled back
    fake.set_default_card(customer_of(fake, subscription_id), SCA_ALWAYS)
    with pytest.raises(stripe.CardError) as action:
        client.v1.invoices.pay(invoice_id)
    assert action.value.code == "invoice_payment_intent_requires_action"
    assert intent_of(client, invoice_id).status == "requires_action"
    fake.set_default_card(customer_of(fake, subscription_id), OK)
    paid: Any = client.v1.invoices.pay(invoice_id)
    assert paid.status == "paid"
    assert fake.subscriptions[subscription_id]["pending_update"] is None
    assert fake.subscriptions[subscription_id]["items"]["data"][0]["price"]["id"] == "price_enterprise_base"
    with pytest.raises(stripe.InvalidRequestError, match="already paid"):
        client.v1.invoices.pay(invoice_id)


def test_voiding_the_invoice_discards_the_pending_update(
    fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock
) -> None:
    subscription_id, updated = pending_change(fake, client, clock, DECLINES_LATER)
    voided: Any = client.v1.invoices.void_invoice(str(updated.latest_invoice))
    assert voided.status == "void"
    assert fake.subscriptions[subscription_id]["pending_update"] is None
    assert types(fake.events[-3:]) == ["payment_intent.canceled", "invoice.voided", "customer.subscription.updated"]
    with pytest.raises(stripe.InvalidRequestError, match="only void open"):
        client.v1.invoices.void_invoice(str(updated.latest_invoice))
    # A past_due subscription whose only open invoice is voided is active again.
    fake.fail_payment(subscription_id)
    assert fake.subscriptions[subscription_id]["status"] == "past_due"
    client.v1.invoices.void_invoice(str(fake.subscriptions[subscription_id]["latest_invoice"]))
    assert fake.subscriptions[subscription_id]["status"] == "active"


def test_voiding_gives_back_the_credit_the_invoice_used(
    fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock
) -> None:
    subscription_id = with_card(fake, client, DECLINES_LATER)
    site_id = item_ids(fake, subscription_id)[1]
    clock.now = MID
    # A downgrade leaves a credit on the customer's balance...
    client.v1.subscriptions.update(
        subscription_id, params={"items": [{"id": site_id, "deleted": True}], "proration_behavior": "always_invoice"}
    )
    customer_id = customer_of(fake, subscription_id)
    credit = fake.customers[customer_id]["balance"]
    assert credit == -prorated(2 * 1900, MID)
    # ...which the next (pending) upgrade's invoice uses up; voiding that invoice gives it back.
    updated: Any = client.v1.subscriptions.update(
        subscription_id, params=upgrade_params(fake, subscription_id, payment_behavior="pending_if_incomplete")
    )
    invoice = fake.invoices[str(updated.latest_invoice)]
    assert (invoice["starting_balance"], fake.customers[customer_id]["balance"]) == (credit, 0)
    client.v1.invoices.void_invoice(invoice["id"])
    assert fake.customers[customer_id]["balance"] == credit


def test_set_default_card_is_the_portals_update_payment_method(fake: FakeStripe, client: stripe.StripeClient) -> None:
    subscription_id = pro_subscription(fake, client)
    customer_id = customer_of(fake, subscription_id)
    old_method = fake.subscriptions[subscription_id]["default_payment_method"]
    events = fake.set_default_card(customer_id, "4000 0000 0000 0341")
    assert types(events) == ["payment_method.attached", "customer.updated", "customer.subscription.updated"]
    method = events[0]["data"]["object"]
    assert (method["card"]["last4"], method["customer"], method["type"]) == ("0341", customer_id, "card")
    assert "number" not in method["card"]
    assert events[1]["data"]["previous_attributes"] == {"invoice_settings": {"default_payment_method": None}}
    assert events[2]["data"]["previous_attributes"] == {"default_payment_method": old_method}
    customer: Any = client.v1.customers.retrieve(customer_id, params={"expand": ["invoice_settings.default_payment_method"]})
    assert customer.invoice_settings.default_payment_method.card.last4 == "0341"
    before = state_of(fake)
    for card in ("4000000000000002", "4000000000009995", "1234"):
        with pytest.raises(CardDeclined):
            fake.set_default_card(customer_id, card)
    assert state_of(fake) == before
    with pytest.raises(FakeStripeError):
        fake.set_default_card("cus_nope", OK)


def test_on_the_hosted_page_3155_typed_in_needs_the_challenge_but_saved_it_does_not(
    fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock
) -> None:
    subscription_id, updated = pending_change(fake, client, clock, DECLINES_LATER)
    invoice_id = str(updated.latest_invoice)
    fake.pay_invoice(invoice_id, "4000 0025 0000 3155")  # one-time use: authentication required
    intent = fake.invoice_payment_intent(invoice_id)
    assert intent is not None and intent["status"] == "requires_action"
    assert fake.subscriptions[subscription_id]["pending_update"] is not None
    with pytest.raises(CardDeclined):
        fake.pay_invoice(invoice_id, "1234")  # no test card: nothing is charged
    fake.set_default_card(customer_of(fake, subscription_id), SCA_ONCE)  # set up in the portal
    paid = fake.pay_invoice(invoice_id)
    assert "customer.subscription.pending_update_applied" in types(paid)


# --- lists ---------------------------------------------------------------------------------------


def test_paging_through_250_subscriptions(clock: ManualClock) -> None:
    fake = FakeStripe(clock=clock, seed=7)
    fake.add_price("price_a", product_name="A", unit_amount=1000)
    fake.add_price("price_b", product_name="B", unit_amount=2000)
    client = make_stripe_client(fake)
    created: list[str] = []
    for n in range(250):
        session = client.v1.checkout.sessions.create(
            params={
                "mode": "subscription",
                "customer_email": f"owner{n}@example.com",
                "line_items": [{"price": "price_a" if n % 2 else "price_b", "quantity": 1}],
                "success_url": "https://app.example.com/billing/success",
            }
        )
        created.append(fake.complete_checkout(session.id)[1]["data"]["object"]["id"])
        clock.advance(1 if n % 3 else 0)  # some share a creation second: the order still holds
    canceled = created[::5]
    for subscription_id in canceled:
        fake.cancel_subscription(subscription_id)
    newest_first = list(reversed(created))

    pages, cursor = [], None
    while True:
        params: Any = {"status": "all", "limit": 100}
        if cursor:
            params["starting_after"] = cursor
        page = client.v1.subscriptions.list(params=params)
        pages.append(([s.id for s in page.data], page.has_more))
        if not page.has_more:
            break
        cursor = page.data[-1].id
    assert [(len(ids), has_more) for ids, has_more in pages] == [(100, True), (100, True), (50, False)]
    assert [i for ids, _ in pages for i in ids] == newest_first
    auto = client.v1.subscriptions.list(params={"status": "all", "limit": 100}).auto_paging_iter()
    assert [s.id for s in auto] == newest_first

    # The default leaves out canceled subscriptions; status=canceled has only those.
    active = [s.id for s in client.v1.subscriptions.list(params={"limit": 100}).auto_paging_iter()]
    assert active == [i for i in newest_first if i not in canceled]
    assert [s.id for s in client.v1.subscriptions.list(params={"status": "canceled", "limit": 100}).data] == [
        i for i in newest_first if i in canceled
    ]
    first = client.v1.subscriptions.list()
    assert (len(first.data), first.has_more) == (10, True)
    back = client.v1.subscriptions.list(params={"status": "all", "limit": 100, "ending_before": pages[2][0][0]})
    assert ([s.id for s in back.data], back.has_more) == (pages[1][0], True)
    by_price = client.v1.subscriptions.list(params={"status": "all", "price": "price_b", "limit": 100})
    assert [s.id for s in by_price.auto_paging_iter()] == newest_first[1::2]
    customer_id = fake.subscriptions[created[7]]["customer"]
    assert [s.id for s in client.v1.subscriptions.list(params={"customer": customer_id}).data] == [created[7]]

    # A cursor canceled between two pages still pages on (it is no longer in the default list).
    page = client.v1.subscriptions.list(params={"limit": 3})
    fake.cancel_subscription(page.data[-1].id)
    after = client.v1.subscriptions.list(params={"limit": 3, "starting_after": page.data[-1].id})
    expected = [i for i in active if i != page.data[-1].id]
    assert [s.id for s in after.data] == expected[2:5]


def test_paging_through_invoices(fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock) -> None:
    subscription_id = pro_subscription(fake, client)
    other_id = pro_subscription(fake, client, email="other@example.com")
    customer_id = fake.subscriptions[subscription_id]["customer"]
    for _ in range(11):
        clock.advance(DAY)
        fake.renew_subscription(subscription_id)
    fake.fail_payment(subscription_id)
    fake.renew_subscription(other_id)
    # Newest first: the fake's invoices are in creation order.
    mine = [i["id"] for i in reversed(fake.invoices.values()) if i["customer"] == customer_id]
    assert len(mine) == 13

    pages, cursor = [], None
    while True:
        params: Any = {"customer": customer_id, "limit": 5}
        if cursor:
            params["starting_after"] = cursor
        page = client.v1.invoices.list(params=params)
        pages.append(([i.id for i in page.data], page.has_more))
        if not page.has_more:
            break
        cursor = page.data[-1].id
    assert [(len(ids), has_more) for ids, has_more in pages] == [(5, True), (5, True), (3, False)]
    assert [i for ids, _ in pages for i in ids] == mine
    assert [i.id for i in client.v1.invoices.list(params={"subscription": subscription_id, "limit": 100}).data] == mine
    [open_invoice] = client.v1.invoices.list(params={"customer": customer_id, "status": "open"}).data
    assert open_invoice.id == mine[0]
    paid = client.v1.invoices.list(params={"customer": customer_id, "status": "paid", "limit": 12})
    assert ([i.id for i in paid.data], paid.has_more) == (mine[1:], False)
    everyone = [i.id for i in client.v1.invoices.list(params={"limit": 7}).auto_paging_iter()]
    assert len(everyone) == len(fake.invoices) == 15 and set(mine) < set(everyone)

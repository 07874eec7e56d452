"""One live subscription per organization, whatever the customer does (two tabs, a stale tab, a
retry after a timeout, paying before the webhook lands), and the organization's best live
subscription when Stripe holds two anyway. Each attack goes through the real handlers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

import checkout_handler
import reconcile_handler
import subscription_handler
from tests.conftest import TABLE_NAME, FakeLambdaContext
from tests.stripe_fake import FakeStripe, FakeStripeError, make_stripe_client
from tests.support.api_events import api_event
from tests.support.aws_calls import atomic_dynamodb_requests, count_dynamodb_calls
from tests.support.flows import call, deliver, status_of

pytestmark = pytest.mark.usefixtures("billing")
Items = Callable[[], list[dict[str, Any]]]


def checkout(org_id: str = "org_demo", plan: str = "pro", sites: int = 3) -> tuple[int, Any]:
    return call(
        checkout_handler, api_event("POST", "/billing/checkout", org_id=org_id, body={"plan": plan, "siteQuantity": sites})
    )


def open_sessions(fake: FakeStripe, org_id: str = "org_demo") -> list[str]:
    return [sid for sid, s in fake.checkout_sessions.items() if s["client_reference_id"] == org_id and s["status"] == "open"]


def session_of(fake: FakeStripe, url: str) -> str:
    (session_id,) = [sid for sid, session in fake.checkout_sessions.items() if session["url"] == url]
    return session_id


def live_subscriptions(fake: FakeStripe) -> list[dict[str, Any]]:
    return [s for s in fake.subscriptions.values() if s["status"] not in ("canceled", "incomplete_expired")]


def metric_names(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


# --- at most one payable Checkout Session ------------------------------------------------------


def test_a_second_tab_expires_the_first_so_only_one_can_be_paid(stripe_fake: FakeStripe) -> None:
    first_status, first = checkout()
    first_id = session_of(stripe_fake, first["url"])
    second_status, second = checkout(plan="enterprise", sites=0)
    assert (first_status, second_status) == (200, 200)
    second_id = session_of(stripe_fake, second["url"])
    assert stripe_fake.checkout_sessions[first_id]["status"] == "expired"
    assert open_sessions(stripe_fake) == [second_id]
    with pytest.raises(FakeStripeError, match="expired"):
        stripe_fake.complete_checkout(first_id)
    for event in stripe_fake.complete_checkout(second_id):
        assert deliver(event)[0] == 200
    assert len(live_subscriptions(stripe_fake)) == 1
    assert status_of()["subscription"]["plan"] == "enterprise"
    # The expiry reached the webhook as Stripe sends it, and changed nothing.
    assert [e["data"]["object"]["id"] for e in stripe_fake.events_of_type("checkout.session.expired")] == [first_id]


def test_a_session_stripe_expired_by_itself_is_not_expired_again(stripe_fake: FakeStripe) -> None:
    assert checkout()[0] == 200
    stripe_fake.advance_clock(25 * 3600)  # Checkout Sessions expire after 24 hours
    stripe_fake.reset_requests()
    assert checkout()[0] == 200
    assert [(r.method, r.path) for r in stripe_fake.requests] == [
        ("GET", "/v1/checkout/sessions"),
        ("GET", "/v1/subscriptions"),
        ("POST", "/v1/checkout/sessions"),
    ]


def test_an_open_session_the_table_never_recorded_is_expired_too(stripe_fake: FakeStripe, dynamodb: Any) -> None:
    # A tab opened before this rule was deployed, or by another integration: no CHECKOUT item.
    _, body = checkout()
    old_tab = session_of(stripe_fake, body["url"])
    dynamodb.delete_item(TableName=TABLE_NAME, Key={"pk": {"S": "ORG#org_demo"}, "sk": {"S": "CHECKOUT"}})
    stripe_fake.checkout_sessions[old_tab]["created"] -= 3600  # opened an hour ago
    _, body = checkout(plan="enterprise", sites=0)
    assert stripe_fake.checkout_sessions[old_tab]["status"] == "expired"
    assert open_sessions(stripe_fake) == [session_of(stripe_fake, body["url"])]
    with pytest.raises(FakeStripeError, match="expired"):
        stripe_fake.complete_checkout(old_tab)


def test_an_existing_customer_costs_two_lists_one_expiry_and_the_create(stripe_fake: FakeStripe) -> None:
    assert checkout()[0] == 200
    (previous,) = open_sessions(stripe_fake)
    stripe_fake.reset_requests()
    with count_dynamodb_calls() as calls:
        assert checkout()[0] == 200
    assert calls == {"Query": 1, "PutItem": 1}
    assert [(r.method, r.path) for r in stripe_fake.requests] == [
        ("GET", "/v1/checkout/sessions"),
        ("POST", f"/v1/checkout/sessions/{previous}/expire"),
        ("GET", "/v1/subscriptions"),
        ("POST", "/v1/checkout/sessions"),
    ]
    customer = stripe_fake.checkout_sessions[previous]["customer"]
    assert [stripe_fake.requests[i].params for i in (0, 2)] == [
        {"customer": customer, "status": "open", "limit": "100"},
        {"customer": customer, "status": "all", "limit": "100"},
    ]


@pytest.mark.parametrize("existing_customer", [False, True])
def test_concurrent_checkouts_leave_exactly_one_session_that_can_be_paid(
    stripe_fake: FakeStripe, existing_customer: bool
) -> None:
    if existing_customer:
        assert checkout()[0] == 200
    results: list[tuple[int, Any]] = []
    barrier = threading.Barrier(6)

    def press() -> None:
        barrier.wait()
        results.append(checkout())

    threads = [threading.Thread(target=press) for _ in range(6)]
    with atomic_dynamodb_requests():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    winners = [body for status, body in results if status == 200]
    assert len(winners) >= 1
    # Every URL handed out but the last recorded one is expired: only one can be paid.
    (open_id,) = open_sessions(stripe_fake)
    assert stripe_fake.checkout_sessions[open_id]["url"] in [body["url"] for body in winners]
    losers = [body for status, body in results if status != 200]
    assert all(body["error"]["code"] == "checkout_in_progress" for body in losers), losers
    assert len(stripe_fake.customers) == 1


def test_the_paid_session_answers_the_next_checkout_before_its_webhook_lands(stripe_fake: FakeStripe, table_items: Items) -> None:
    status, body = checkout()
    assert status == 200
    stripe_fake.complete_checkout(session_of(stripe_fake, body["url"]))  # paid; no webhook delivered yet
    status, body = checkout(plan="enterprise")
    assert (status, body["error"]["code"]) == (409, "subscription_exists")
    assert "POST /billing/subscription" in body["error"]["message"]
    assert "portal" not in body["error"]["message"]
    # What Stripe said is stored at once: status shows the paid plan, and no session is open.
    assert status_of()["subscription"]["plan"] == "pro"
    assert open_sessions(stripe_fake) == []
    assert len(live_subscriptions(stripe_fake)) == 1


@pytest.mark.parametrize("after", ["/v1/checkout/sessions", "/v1/subscriptions"])
def test_a_session_paid_while_the_next_checkout_runs_is_not_paid_twice(stripe_fake: FakeStripe, after: str) -> None:
    status, body = checkout()
    first_id = session_of(stripe_fake, body["url"])
    # The customer pays in the first tab right after the second checkout read one of Stripe's lists.
    table = stripe_fake._route_table
    index = next(i for i, (verb, pattern, _) in enumerate(table) if verb == "GET" and pattern.pattern == after + "\\Z")
    method, pattern, original = table[index]

    def list_then_pay(raw: dict[str, Any], ids: tuple[str, ...]) -> tuple[int, Any]:
        answer = original(raw, ids)
        table[index] = (method, pattern, original)
        if stripe_fake.checkout_sessions[first_id]["status"] == "open":
            stripe_fake.complete_checkout(first_id)
        return answer

    table[index] = (method, pattern, list_then_pay)
    status, body = checkout(plan="enterprise")
    assert table[index][2] is original  # the list was read
    if after == "/v1/checkout/sessions":
        assert (status, body["error"]["code"]) == (409, "subscription_exists")
        assert status_of()["subscription"]["plan"] == "pro"
    else:
        # Too late: the first session was expired before the list, so the payment was refused.
        assert status == 200
    assert len(live_subscriptions(stripe_fake)) <= 1
    assert len(open_sessions(stripe_fake)) + len(live_subscriptions(stripe_fake)) == 1


def test_a_completed_session_whose_subscription_ended_does_not_block_a_new_checkout(stripe_fake: FakeStripe) -> None:
    status, body = checkout()
    first_id = session_of(stripe_fake, body["url"])
    for event in stripe_fake.complete_checkout(first_id):
        deliver(event)
    subscription_id = stripe_fake.checkout_sessions[first_id]["subscription"]
    for event in stripe_fake.cancel_subscription(subscription_id):
        deliver(event)
    status, body = checkout(plan="enterprise")
    assert status == 200, body
    assert len(open_sessions(stripe_fake)) == 1


def test_a_stripe_failure_while_expiring_leaves_the_old_session_recorded_and_creates_none(stripe_fake: FakeStripe) -> None:
    assert checkout()[0] == 200
    (previous,) = open_sessions(stripe_fake)
    stripe_fake.fail_next(3, status=500, path_prefix=f"/v1/checkout/sessions/{previous}")
    status, body = checkout()
    assert (status, body["error"]["code"]) == (502, "stripe_unavailable")
    assert open_sessions(stripe_fake) == [previous]
    # The retry expires it and hands out one new session.
    assert checkout()[0] == 200
    assert len(open_sessions(stripe_fake)) == 1 and open_sessions(stripe_fake) != [previous]


def test_a_recorded_session_stripe_does_not_know_does_not_block_checkout(stripe_fake: FakeStripe) -> None:
    # A key or account switch, a restored table: the recorded session is not among Stripe's open ones.
    assert checkout()[0] == 200
    (previous,) = open_sessions(stripe_fake)
    del stripe_fake.checkout_sessions[previous]
    status, body = checkout()
    assert status == 200, body
    assert len(open_sessions(stripe_fake)) == 1


# --- two live subscriptions anyway (the Dashboard, an old integration, before this fix) ------------


def subscribe_behind_our_back(fake: FakeStripe, customer_id: str, plan_price: str, sites: int = 0) -> list[dict[str, Any]]:
    """A subscription made without our checkout: an old integration's Checkout Session."""
    client = make_stripe_client(fake)
    line_items: list[Any] = [{"price": plan_price, "quantity": 1}]
    if sites:
        line_items.append({"price": plan_price.replace("_base", "_site"), "quantity": sites})
    session = client.v1.checkout.sessions.create(
        params={"mode": "subscription", "customer": customer_id, "line_items": line_items, "success_url": "https://x.example/ok"}
    )
    return fake.complete_checkout(session.id)


def subscribed_org(fake: FakeStripe) -> tuple[str, str]:
    _, body = checkout()
    session_id = session_of(fake, body["url"])
    for event in fake.complete_checkout(session_id):
        assert deliver(event)[0] == 200
    session = fake.checkout_sessions[session_id]
    return session["customer"], session["subscription"]


def test_the_webhook_detects_a_duplicate_and_keeps_the_best_live_subscription(
    stripe_fake: FakeStripe, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    customer_id, pro_id = subscribed_org(stripe_fake)
    capsys.readouterr()
    for event in subscribe_behind_our_back(stripe_fake, customer_id, "price_enterprise_base"):
        assert deliver(event)[0] == 200
    enterprise_id = next(s["id"] for s in live_subscriptions(stripe_fake) if s["id"] != pro_id)
    assert '"DuplicateSubscription"' in capsys.readouterr().out
    warnings = [r for r in caplog.records if r.getMessage() == "organization has more than one live subscription"]
    assert warnings and {
        warnings[-1].__dict__["kept_subscription_id"],
        *warnings[-1].__dict__["other_live_subscription_ids"],
    } == {
        pro_id,
        enterprise_id,
    }
    assert status_of()["subscription"]["plan"] == "enterprise"
    # Cancelling the better one leaves the other's entitlement in place, not the fallback.
    for event in stripe_fake.cancel_subscription(enterprise_id):
        assert deliver(event)[0] == 200
    status = status_of()
    assert (status["subscription"]["plan"], status["subscription"]["status"]) == ("pro", "active")
    assert status["entitlement"]["limits"]["sites"] == 5  # pro's 2 + 3 add-ons


def test_cancelling_the_newer_duplicate_keeps_the_older_one_billed_and_shown(stripe_fake: FakeStripe) -> None:
    # Two tabs paid before this fix: both Pro. Cancel the newer in the portal: Pro stays, active.
    customer_id, first_id = subscribed_org(stripe_fake)
    stripe_fake.advance_clock(60)
    for event in subscribe_behind_our_back(stripe_fake, customer_id, "price_pro_base", sites=3):
        assert deliver(event)[0] == 200
    newer_id = next(s["id"] for s in live_subscriptions(stripe_fake) if s["id"] != first_id)
    for event in stripe_fake.cancel_subscription(newer_id):
        assert deliver(event)[0] == 200
    status = status_of()
    assert (status["subscription"]["plan"], status["subscription"]["status"]) == ("pro", "active")
    # A third checkout is still refused.
    assert checkout()[1]["error"]["code"] == "subscription_exists"


def test_a_plan_change_on_an_organization_with_a_duplicate_syncs_it_whole(stripe_fake: FakeStripe) -> None:
    customer_id, _ = subscribed_org(stripe_fake)
    for event in subscribe_behind_our_back(stripe_fake, customer_id, "price_starter_base"):
        assert deliver(event)[0] == 200
    assert status_of()["subscription"]["plan"] == "pro"
    event = api_event("POST", "/billing/subscription/cancel", org_id="org_demo", body={"immediately": True})
    status, body = call(subscription_handler, event)
    assert status == 200, body
    # Pro is canceled; the organization falls back to its other live subscription (Starter).
    assert (body["subscription"]["plan"], body["subscription"]["status"]) == ("starter", "active")


def test_cancelling_now_before_a_duplicates_webhook_landed_shows_the_other(stripe_fake: FakeStripe) -> None:
    customer_id, _ = subscribed_org(stripe_fake)
    subscribe_behind_our_back(stripe_fake, customer_id, "price_starter_base")  # its webhooks not yet here
    event = api_event("POST", "/billing/subscription/cancel", org_id="org_demo", body={"immediately": True})
    status, body = call(subscription_handler, event)
    assert status == 200, body
    assert (body["subscription"]["plan"], body["subscription"]["status"]) == ("starter", "active")


def test_a_change_never_drops_a_duplicate_a_webhook_recorded_meanwhile(
    stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer_id, _ = subscribed_org(stripe_fake)
    events = subscribe_behind_our_back(stripe_fake, customer_id, "price_starter_base")
    from tenant_billing.org_billing_store import DynamoOrgBillingStore

    original = DynamoOrgBillingStore.save_subscription

    def duplicate_lands_first(self: DynamoOrgBillingStore, record: Any, *args: Any, **kwargs: Any) -> Any:
        if not kwargs["whole_org"] and events:
            for stripe_event in events:
                assert deliver(stripe_event)[0] == 200
            events.clear()
        return original(self, record, *args, **kwargs)

    monkeypatch.setattr(DynamoOrgBillingStore, "save_subscription", duplicate_lands_first)
    event = api_event("POST", "/billing/subscription/cancel", org_id="org_demo", body={})
    status, body = call(subscription_handler, event)
    assert status == 200, body
    stored = status_of()
    assert stored == body and stored["subscription"]["cancelAtPeriodEnd"] is True
    from tenant_billing.org_billing_store import get_org_billing_store

    record = get_org_billing_store().get_org_billing("org_demo").subscription
    assert record is not None and len(record.other_live_ids) == 1


def test_the_webhook_reads_a_subscription_the_customers_list_does_not_show(stripe_fake: FakeStripe) -> None:
    # A deleted customer's subscriptions may be missing from its list: the event's one is read alone.
    customer_id, subscription_id = subscribed_org(stripe_fake)
    table = stripe_fake._route_table
    index = next(i for i, (verb, pattern, _) in enumerate(table) if verb == "GET" and pattern.pattern == "/v1/subscriptions\\Z")
    method, pattern, original = table[index]
    table[index] = (method, pattern, lambda raw, ids: (200, {**original(raw, ids)[1], "data": [], "has_more": False}))
    events = stripe_fake.cancel_subscription(subscription_id)
    for stripe_event in events:
        assert deliver(stripe_event)[1]["outcome"] in ("synced", "duplicate")
    assert status_of()["subscription"]["status"] == "canceled"
    assert customer_id


def test_reconciliation_syncs_a_known_duplicate_that_became_the_best(stripe_fake: FakeStripe) -> None:
    customer_id, _ = subscribed_org(stripe_fake)
    for stripe_event in subscribe_behind_our_back(stripe_fake, customer_id, "price_starter_base"):
        assert deliver(stripe_event)[0] == 200
    starter_id = next(
        s["id"] for s in live_subscriptions(stripe_fake) if s["items"]["data"][0]["price"]["id"] == "price_starter_base"
    )
    # Upgraded in the Dashboard to Enterprise; its webhooks were lost.
    stripe_fake.update_subscription(
        starter_id,
        items=[{"id": stripe_fake.subscriptions[starter_id]["items"]["data"][0]["id"], "price": "price_enterprise_base"}],
    )
    result = reconcile_handler.lambda_handler({}, FakeLambdaContext(remaining_ms=900_000))
    assert (result["repaired"], result["duplicates"]) == (1, 1)
    assert status_of()["subscription"]["plan"] == "enterprise"


def test_reconciliation_detects_a_duplicate_whose_webhooks_were_lost(
    stripe_fake: FakeStripe, capsys: pytest.CaptureFixture[str]
) -> None:
    customer_id, _ = subscribed_org(stripe_fake)
    subscribe_behind_our_back(stripe_fake, customer_id, "price_enterprise_base")  # never delivered
    capsys.readouterr()
    result = reconcile_handler.lambda_handler({}, FakeLambdaContext(remaining_ms=900_000))
    assert (result["repaired"], result["duplicates"]) == (1, 1)
    assert '"DuplicateSubscription"' in capsys.readouterr().out
    assert status_of()["subscription"]["plan"] == "enterprise"
    # Still a duplicate in the next run (an operator must act), but nothing left to repair.
    again = reconcile_handler.lambda_handler({}, FakeLambdaContext(remaining_ms=900_000))
    assert (again["repaired"], again["duplicates"]) == (0, 1)

"""The local Stripe emulator over real HTTP on 127.0.0.1: the API through stripe-python, the hosted
Checkout, 3-D Secure and portal pages through plain urllib (no browser), and signed webhook deliveries,
made after the redirect by a background worker that retries with backoff."""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import pytest
import stripe

from functions.local_stack.checkout_pages import AUTHENTICATION_FAILED
from functions.local_stack.emulator_server import EmulatorServer
from functions.local_stack.emulator_state import StripeEmulator
from functions.local_stack.stripe_emulator import start_emulator
from functions.local_stack.webhook_delivery import MAX_ATTEMPTS, RETRY_DELAYS, Delivery
from tenant_billing.webhook_signature import verify_signature
from tests.stripe_fake import API_VERSION, TEST_API_KEY, FakeStripe

SECRET = "whsec_emulator_test_secret"
SUCCESS_URL = "https://app.example.com/billing?checkout=success&session={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://app.example.com/billing?checkout=cancel"
RETURN_URL = "https://app.example.com/billing"
PAY = {"email": "", "card_number": "4242 4242 4242 4242", "expiry": "12/34", "cvc": "123"}
THREE_D_SECURE = {"email": "sca@example.com", "card_number": "4000 0025 0000 3155", "name": "Ada"}


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.body)
        return event


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    # Statuses to answer before answering 200: to any event, or to events of one type.
    fail_with: list[int] = field(default_factory=list)
    fail_type: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[Received]:
        with self.lock:
            return list(self.requests)

    def events(self) -> list[dict[str, Any]]:
        return [received.event for received in self.received()]

    def types(self) -> list[str]:
        return [event["type"] for event in self.events()]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                headers = {k.lower(): v for k, v in self.headers.items()}
                state.requests.append(Received(headers, body, time.monotonic()))
                failures = state.fail_type.get(json.loads(body).get("type"), state.fail_with)
                status = failures.pop(0) if failures else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/webhook"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Emulated:
    server: EmulatorServer
    base_url: str
    fake: FakeStripe
    client: stripe.StripeClient

    @property
    def emulator(self) -> StripeEmulator:
        return self.server.emulator

    def settle(self, timeout: float = 10.0) -> list[Delivery]:
        """Wait until every event emitted so far was delivered (or given up); the deliveries."""
        assert self.emulator.wait_until_idle(timeout), self.emulator.deliveries_snapshot()
        return self.emulator.deliveries_snapshot()


@pytest.fixture
def emulated(receiver: Receiver) -> Iterator[Emulated]:
    server, base_url, fake = start_emulator(webhook_url=receiver.url, webhook_secret=SECRET)
    server.emulator.delivery_delay = 0.05  # short here; the tests of the delay set their own
    try:
        fake.add_price("price_pro_base", product_name="Pro", unit_amount=7900)
        fake.add_price("price_pro_site", product_name="Pro extra site <b>", unit_amount=1900)
        client = stripe.StripeClient(TEST_API_KEY, base_addresses={"api": base_url}, stripe_version=API_VERSION)
        yield Emulated(server, base_url, fake, client)
    finally:
        server.shutdown()
        server.server_close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def http(method: str, url: str, form: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    data = urlencode(form).encode() if form is not None else (b"" if method == "POST" else None)
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read().decode()


def new_checkout(env: Emulated) -> tuple[str, str]:
    """(customer id, hosted checkout URL) for Pro + 3 extra sites."""
    customer = env.client.v1.customers.create(params={"email": "owner@example.com"})
    session = env.client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": "price_pro_base", "quantity": 1}, {"price": "price_pro_site", "quantity": 3}],
            "success_url": SUCCESS_URL,
            "cancel_url": CANCEL_URL,
        }
    )
    assert session.url is not None
    assert session.url == f"{env.base_url}/c/pay/{session.id}"
    return customer.id, session.url


def session_id_of(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def assert_signed(received: list[Received]) -> None:
    for request in received:
        assert request.headers["content-type"] == "application/json; charset=utf-8"
        assert request.headers["user-agent"] == "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
        verify_signature(request.body, request.headers["stripe-signature"], [SECRET], time.time())


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def deliveries_json(env: Emulated) -> list[dict[str, Any]]:
    status, headers, body = http("GET", f"{env.base_url}/_emulator/deliveries")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    deliveries: list[dict[str, Any]] = json.loads(body)
    return deliveries


# --- Checkout and asynchronous delivery ------------------------------------------------------------


def test_checkout_redirects_first_and_delivers_signed_events_afterwards(emulated: Emulated, receiver: Receiver) -> None:
    emulated.emulator.delivery_delay = 0.5  # the default
    customer_id, url = new_checkout(emulated)
    emulated.settle()  # customer.created, from the API call
    before = len(receiver.requests)

    status, headers, page = http("GET", url)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "Pro extra site &lt;b&gt;" in page
    assert "<b>" not in page
    assert "$79.00 / month" in page
    assert "$19.00 / month" in page
    assert "Total per month" in page
    assert "$136.00" in page
    for element in ('id="card-number"', 'id="pay"', 'id="cancel"', 'placeholder="4242 4242 4242 4242"'):
        assert element in page
    assert "4242 4242 4242 4242 succeeds, 4000 0025 0000 3155 asks for 3-D Secure, 4000 0000 0000 0002 is declined." in page

    session_id = session_id_of(url)
    status, headers, _ = http("POST", url, PAY)
    assert status == 303
    assert headers["Location"] == SUCCESS_URL.replace("{CHECKOUT_SESSION_ID}", session_id)
    # The browser is redirected before any webhook went out; the deliveries are already listed, pending.
    assert len(receiver.requests) == before
    pending = [d for d in deliveries_json(emulated) if d["pending"]]
    assert "checkout.session.completed" in [d["type"] for d in pending]
    assert all(d["attempts"] == 0 and d["status"] is None and not d["delivered"] for d in pending)

    session = emulated.fake.checkout_sessions[session_id]
    assert session["status"] == "complete"
    subscription = emulated.fake.subscriptions[session["subscription"]]
    assert subscription["customer"] == customer_id
    assert [(i["price"]["id"], i["quantity"]) for i in subscription["items"]["data"]] == [
        ("price_pro_base", 1),
        ("price_pro_site", 3),
    ]

    emulated.settle()
    received = receiver.received()[before:]
    assert_signed(received)
    types = [r.event["type"] for r in received]
    assert "customer.subscription.created" in types
    assert types[-1] == "checkout.session.completed"
    # Without failures, first attempts go out in the fake's emission order, each once.
    ids = [r.event["id"] for r in received]
    assert ids == [event["id"] for event in emulated.fake.events if event["id"] in set(ids)]

    deliveries = deliveries_json(emulated)
    assert [(d["event_id"], d["type"], d["status"], d["attempts"], d["delivered"], d["pending"]) for d in deliveries] == [
        (event["id"], event["type"], 200, 1, True, False) for event in receiver.events()
    ]
    assert deliveries[-1]["object_id"] == session_id
    assert all(d["error"] is None for d in deliveries)

    # Paid: the page is gone.
    status, _, page = http("GET", url)
    assert status == 410
    assert "complete" in page


def test_the_first_attempt_waits_for_the_delivery_delay(emulated: Emulated, receiver: Receiver) -> None:
    emulated.emulator.delivery_delay = 0.6
    started = time.monotonic()  # before the event is emitted: the wait measured is at most the real one
    _, url = new_checkout(emulated)
    emulated.settle()
    (created,) = receiver.received()
    assert created.event["type"] == "customer.created"
    assert created.at - started >= 0.55
    paid_at = time.monotonic()
    assert http("POST", url, PAY)[0] == 303
    emulated.settle()
    assert min(r.at for r in receiver.received()[1:]) - paid_at >= 0.55


def test_declined_card_keeps_the_session_open_and_sends_nothing(emulated: Emulated, receiver: Receiver) -> None:
    _, url = new_checkout(emulated)
    emulated.settle()
    before = receiver.types()
    status, _, page = http("POST", url, {"email": "a@example.com", "card_number": "4000 0000 0000 0002"})
    assert status == 402
    assert '<div id="error"' in page
    assert "Your card was declined." in page
    assert 'id="pay"' in page
    emulated.settle()
    assert receiver.types() == before == ["customer.created"]
    assert emulated.fake.checkout_sessions[session_id_of(url)]["status"] == "open"

    status, _, _ = http("POST", url, {"card_number": "4242424242424242"})
    assert status == 303
    emulated.settle()
    assert "checkout.session.completed" in receiver.types()


# --- expired sessions ------------------------------------------------------------------------------


def assert_expired_page(url: str) -> None:
    status, _, page = http("GET", url)
    assert status == 410
    assert "This checkout session has expired" in page
    assert 'id="pay"' not in page
    assert 'id="card-number"' not in page
    status, _, page = http("POST", url, PAY)
    assert status == 410
    assert "expired" in page


def test_a_session_expired_through_the_api_says_so_and_its_event_is_delivered(emulated: Emulated, receiver: Receiver) -> None:
    _, url = new_checkout(emulated)
    session_id = session_id_of(url)
    assert http("GET", url)[0] == 200
    expired = emulated.client.v1.checkout.sessions.expire(session_id)
    assert expired.status == "expired"

    deliveries = emulated.settle()
    assert [(d.type, d.object_id, d.delivered) for d in deliveries if d.type.startswith("checkout.")] == [
        ("checkout.session.expired", session_id, True)
    ]
    (event,) = [event for event in receiver.events() if event["type"] == "checkout.session.expired"]
    assert event["data"]["object"]["status"] == "expired"
    assert_signed(receiver.received())

    assert_expired_page(url)
    assert emulated.fake.subscriptions == {}
    assert emulated.fake.invoices == {}
    # Expiring it again is refused, as by Stripe.
    with pytest.raises(stripe.InvalidRequestError):
        emulated.client.v1.checkout.sessions.expire(session_id)


def test_a_session_past_expires_at_expires_on_its_own(emulated: Emulated, receiver: Receiver) -> None:
    _, url = new_checkout(emulated)
    session_id = session_id_of(url)
    emulated.settle()
    emulated.fake.advance_clock(25 * 60 * 60)
    # Stripe's clock expires it, with no request: the worker's sweep emits and delivers the event.
    wait_for(lambda: "checkout.session.expired" in receiver.types(), timeout=5)
    assert emulated.fake.checkout_sessions[session_id]["status"] == "expired"

    assert_expired_page(url)
    emulated.settle()
    assert receiver.types().count("checkout.session.expired") == 1
    assert emulated.fake.subscriptions == {}


def test_the_page_of_a_session_past_expires_at_expires_it(receiver: Receiver) -> None:
    """The page itself sees expires_at, before the worker's sweep (stopped here) would."""
    server, base_url, fake = start_emulator(webhook_url=receiver.url, webhook_secret=SECRET)
    try:
        fake.add_price("price_pro_base", product_name="Pro", unit_amount=7900)
        fake.add_price("price_pro_site", product_name="Pro", unit_amount=1900)
        client = stripe.StripeClient(TEST_API_KEY, base_addresses={"api": base_url}, stripe_version=API_VERSION)
        env = Emulated(server, base_url, fake, client)
        _, url = new_checkout(env)
        server.emulator.stop()  # no worker: only the page can expire it
        fake.advance_clock(25 * 60 * 60)
        assert fake.checkout_sessions[session_id_of(url)]["status"] == "open"
        assert_expired_page(url)
        assert fake.checkout_sessions[session_id_of(url)]["status"] == "expired"
        assert [event["type"] for event in fake.events][-1] == "checkout.session.expired"
    finally:
        server.shutdown()
        server.server_close()


# --- 3-D Secure ------------------------------------------------------------------------------------


def start_three_d_secure(env: Emulated, url: str) -> str:
    """Pay with 4000 0025 0000 3155: the challenge page's URL."""
    status, headers, _ = http("POST", url, THREE_D_SECURE)
    assert status == 303
    assert headers["Location"] == f"/c/pay/{session_id_of(url)}/3ds"
    challenge = f"{url}/3ds"
    status, _, page = http("GET", challenge)
    assert status == 200
    assert "3D Secure 2 Test Page" in page
    assert 'id="complete"' in page
    assert 'id="fail"' in page
    assert ">Complete</button>" in page
    assert ">Fail</button>" in page
    assert "$136.00 / month" in page
    assert "3155" in page
    assert "4000002500003155" not in page
    assert "4000 0025 0000 3155" not in page
    return challenge


def test_three_d_secure_complete_subscribes(emulated: Emulated, receiver: Receiver) -> None:
    customer_id, url = new_checkout(emulated)
    session_id = session_id_of(url)
    challenge = start_three_d_secure(emulated, url)
    # Nothing is charged or created while the challenge waits.
    assert emulated.fake.checkout_sessions[session_id]["status"] == "open"
    assert emulated.fake.subscriptions == {}

    status, headers, _ = http("POST", challenge, {"action": "complete"})
    assert status == 303
    assert headers["Location"] == SUCCESS_URL.replace("{CHECKOUT_SESSION_ID}", session_id)
    session = emulated.fake.checkout_sessions[session_id]
    assert (session["status"], session["payment_status"]) == ("complete", "paid")
    (subscription,) = emulated.fake.subscriptions.values()
    assert (subscription["customer"], subscription["status"]) == (customer_id, "active")
    (invoice,) = emulated.fake.invoices.values()
    assert (invoice["status"], invoice["amount_paid"]) == ("paid", 13600)
    emulated.settle()
    assert receiver.types()[-1] == "checkout.session.completed"
    # The challenge is used up.
    assert http("POST", challenge, {"action": "complete"})[0] == 410


def test_three_d_secure_fail_returns_to_checkout_and_charges_nothing(emulated: Emulated, receiver: Receiver) -> None:
    _, url = new_checkout(emulated)
    session_id = session_id_of(url)
    emulated.settle()
    challenge = start_three_d_secure(emulated, url)

    status, _, page = http("POST", challenge, {"action": "fail"})
    assert status == 402
    assert '<div id="error"' in page
    assert AUTHENTICATION_FAILED in page
    assert 'id="pay"' in page
    assert 'value="sca@example.com"' in page  # what was typed is kept, except the card
    assert 'id="card-number" name="card_number" inputmode="numeric" placeholder="4242 4242 4242 4242"\n value=""' in page
    assert emulated.fake.checkout_sessions[session_id]["status"] == "open"
    assert emulated.fake.subscriptions == {}
    assert emulated.fake.invoices == {}
    emulated.settle()
    assert receiver.types() == ["customer.created"]
    # The failed challenge is gone: its page sends the customer back to Checkout.
    status, headers, _ = http("GET", challenge)
    assert (status, headers["Location"]) == (303, f"/c/pay/{session_id}")
    assert http("POST", challenge, {"action": "complete"})[0] == 303
    assert emulated.fake.subscriptions == {}

    # The session stays open: another card pays it.
    status, headers, _ = http("POST", url, PAY)
    assert status == 303
    assert headers["Location"] == SUCCESS_URL.replace("{CHECKOUT_SESSION_ID}", session_id)
    assert len(emulated.fake.subscriptions) == 1
    emulated.settle()
    assert receiver.types()[-1] == "checkout.session.completed"


def test_a_challenge_cannot_complete_a_session_expired_meanwhile(emulated: Emulated) -> None:
    _, url = new_checkout(emulated)
    challenge = start_three_d_secure(emulated, url)
    emulated.client.v1.checkout.sessions.expire(session_id_of(url))
    status, _, page = http("POST", challenge, {"action": "complete"})
    assert status == 410
    assert "expired" in page
    assert http("GET", challenge)[0] == 410
    assert emulated.fake.subscriptions == {}
    assert emulated.fake.invoices == {}


def test_an_unknown_challenge_action_changes_nothing(emulated: Emulated) -> None:
    _, url = new_checkout(emulated)
    challenge = start_three_d_secure(emulated, url)
    assert http("POST", challenge, {"action": "skip"})[0] == 400
    assert http("GET", challenge)[0] == 200  # still waiting
    assert emulated.fake.subscriptions == {}
    assert http("GET", f"{emulated.base_url}/c/pay/cs_test_missing/3ds")[0] == 404


# --- portal ----------------------------------------------------------------------------------------


def test_unknown_sessions(emulated: Emulated) -> None:
    status, _, page = http("GET", f"{emulated.base_url}/c/pay/cs_test_missing")
    assert status == 404
    assert "not found" in page


def test_portal_cancel_resume_and_cancel_now(emulated: Emulated, receiver: Receiver) -> None:
    customer_id, url = new_checkout(emulated)
    assert http("POST", url, {"card_number": "4242424242424242"})[0] == 303
    (sub_id,) = emulated.fake.subscriptions
    portal = emulated.client.v1.billing_portal.sessions.create(params={"customer": customer_id, "return_url": RETURN_URL})
    assert portal.url.startswith(f"{emulated.base_url}/p/session/")

    status, _, page = http("GET", portal.url)
    assert status == 200
    assert f'id="subscription-{sub_id}"' in page
    assert "Pro extra site &lt;b&gt;" in page
    assert "Active" in page
    assert 'id="cancel-at-period-end"' in page
    assert 'id="cancel-now"' in page
    assert 'id="resume"' not in page
    assert 'id="return"' in page
    assert "Return to app.example.com" in page

    def act(action: str) -> list[str]:
        emulated.settle()
        before = len(receiver.requests)
        status, headers, _ = http("POST", f"{portal.url}/subscriptions/{sub_id}/{action}")
        assert status == 303
        assert headers["Location"] == portal.url
        emulated.settle()
        assert_signed(receiver.received()[before:])
        return receiver.types()[before:]

    assert act("cancel-at-period-end") == ["customer.subscription.updated"]
    # As Stripe's portal does for a subscription in flexible billing mode: cancel_at is the period
    # end, cancel_at_period_end stays false.
    subscription = emulated.fake.subscriptions[sub_id]
    period_end = subscription["items"]["data"][0]["current_period_end"]
    assert (subscription["cancel_at"], subscription["cancel_at_period_end"]) == (period_end, False)
    page = http("GET", portal.url)[2]
    assert "Cancels on " in page
    assert 'id="resume"' in page
    assert 'id="cancel-at-period-end"' not in page

    assert act("resume") == ["customer.subscription.updated"]
    subscription = emulated.fake.subscriptions[sub_id]
    assert (subscription["cancel_at"], subscription["cancel_at_period_end"]) == (None, False)
    # A cancellation scheduled through the API (cancel_at_period_end) is renewed in the portal too.
    emulated.client.v1.subscriptions.update(sub_id, params={"cancel_at_period_end": True})
    assert 'id="resume"' in http("GET", portal.url)[2]
    assert act("resume") == ["customer.subscription.updated"]
    assert emulated.fake.subscriptions[sub_id]["cancel_at_period_end"] is False

    assert "customer.subscription.deleted" in act("cancel-now")
    assert emulated.fake.subscriptions[sub_id]["status"] == "canceled"
    page = http("GET", portal.url)[2]
    assert "Canceled" in page
    assert 'id="cancel-now"' not in page
    assert 'id="resume"' not in page
    # Nothing left to do on a canceled subscription.
    assert http("POST", f"{portal.url}/subscriptions/{sub_id}/cancel-now")[0] == 409


def test_portal_refuses_foreign_and_unknown_subscriptions(emulated: Emulated) -> None:
    owner, url = new_checkout(emulated)
    assert http("POST", url, {"card_number": "4242424242424242"})[0] == 303
    (sub_id,) = emulated.fake.subscriptions
    other = emulated.client.v1.customers.create(params={"email": "other@example.com"})
    portal = emulated.client.v1.billing_portal.sessions.create(params={"customer": other.id})
    status, _, page = http("GET", portal.url)
    assert status == 200
    assert sub_id not in page
    assert http("POST", f"{portal.url}/subscriptions/{sub_id}/cancel-now")[0] == 404
    assert emulated.fake.subscriptions[sub_id]["status"] == "active"
    own = emulated.client.v1.billing_portal.sessions.create(params={"customer": owner})
    assert http("POST", f"{own.url}/subscriptions/sub_missing/cancel-now")[0] == 404
    assert http("POST", f"{own.url}/subscriptions/{sub_id}/pause")[0] == 404
    assert http("GET", f"{emulated.base_url}/p/session/test_missing")[0] == 404


def test_api_call_events_are_delivered(emulated: Emulated, receiver: Receiver) -> None:
    customer_id, url = new_checkout(emulated)
    assert http("POST", url, PAY)[0] == 303
    (sub_id,) = emulated.fake.subscriptions
    emulated.settle()
    before = len(receiver.requests)
    emulated.client.v1.subscriptions.update(sub_id, params={"cancel_at_period_end": True})
    emulated.settle()
    (event,) = receiver.events()[before:]
    assert (event["type"], event["data"]["object"]["id"]) == ("customer.subscription.updated", sub_id)
    assert event["request"]["id"] is not None
    assert customer_id == event["data"]["object"]["customer"]


# --- the portal's card, the hosted invoice page, 3-D Secure for a PaymentIntent --------------------


def subscribed_with_card(env: Emulated, card: str) -> tuple[str, str, str]:
    """(customer id, subscription id, portal URL): paid in Checkout with 4242, then `card` saved in the portal."""
    customer_id, url = new_checkout(env)
    assert http("POST", url, PAY)[0] == 303
    (sub_id,) = env.fake.subscriptions
    portal: Any = env.client.v1.billing_portal.sessions.create(params={"customer": customer_id, "return_url": RETURN_URL})
    status, headers, _ = http("POST", f"{portal.url}/payment-method", {"card_number": card})
    assert (status, headers["Location"]) == (303, portal.url)
    return customer_id, sub_id, portal.url


def change_pending(env: Emulated, sub_id: str) -> Any:
    """Two more sites, invoiced now, applied only once paid (as the product asks)."""
    site_id = env.fake.subscriptions[sub_id]["items"]["data"][1]["id"]
    return env.client.v1.subscriptions.update(
        sub_id,
        params={
            "items": [{"id": site_id, "quantity": 5}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
            "expand": ["latest_invoice"],
        },
    )


def site_quantity(env: Emulated, sub_id: str) -> int:
    return int(env.fake.subscriptions[sub_id]["items"]["data"][1]["quantity"])


def test_portal_updates_the_card_and_lists_the_invoices(emulated: Emulated, receiver: Receiver) -> None:
    customer_id, sub_id, portal_url = subscribed_with_card(emulated, "4000 0000 0000 0341")
    page = http("GET", portal_url)[2]
    assert "Visa \N{BULLET}\N{BULLET}\N{BULLET}\N{BULLET} 0341" in page
    customer = emulated.fake.customers[customer_id]
    method = customer["invoice_settings"]["default_payment_method"]
    assert emulated.fake.subscriptions[sub_id]["default_payment_method"] == method
    (invoice,) = emulated.fake.invoices.values()
    assert f'href="{invoice["hosted_invoice_url"]}"' in page
    emulated.settle()
    assert {"payment_method.attached", "customer.updated", "customer.subscription.updated"} <= set(receiver.types())
    # A card that declines on every use is not saved.
    status, _, page = http("POST", f"{portal_url}/payment-method", {"card_number": "4000 0000 0000 0002"})
    assert status == 402
    assert "Your card was declined." in page
    assert http("POST", f"{portal_url}/payment-method", {"card_number": ""})[0] == 402
    assert emulated.fake.customers[customer_id]["invoice_settings"]["default_payment_method"] == method


def test_hosted_invoice_page_shows_a_declined_change_and_paying_it_applies_the_change(
    emulated: Emulated, receiver: Receiver
) -> None:
    _, sub_id, _ = subscribed_with_card(emulated, "4000 0000 0000 0341")
    updated = change_pending(emulated, sub_id)
    assert updated.pending_update is not None and site_quantity(emulated, sub_id) == 3
    url = updated.latest_invoice.hosted_invoice_url
    assert url.startswith(f"{emulated.base_url}/i/test_")
    status, _, page = http("GET", url)
    assert status == 200
    assert 'data-status="open"' in page
    assert f'id="invoice-number">{updated.latest_invoice.number}<' in page
    assert "Your card was declined." in page  # the off-session attempt
    assert "Pro extra site &lt;b&gt;" in page  # the proration lines, escaped
    assert 'id="pay-saved"' in page and "0341" in page
    assert 'id="pay-card"' in page

    emulated.settle()
    before = len(receiver.requests)
    status, _, page = http("POST", url, {"pay_with": "saved"})
    assert (status, "Your card was declined." in page) == (402, True)
    assert http("POST", url, {"pay_with": "card", "card_number": ""})[0] == 400
    assert http("POST", url, {"pay_with": "card", "card_number": "1234"})[0] == 402
    status, headers, _ = http("POST", url, {"pay_with": "card", "card_number": "4242 4242 4242 4242"})
    assert (status, headers["Location"]) == (303, f"/i/{url.rsplit('/', 1)[-1]}")
    status, _, page = http("GET", url)
    assert 'data-status="paid"' in page and 'id="paid"' in page and 'id="pay-card"' not in page
    assert site_quantity(emulated, sub_id) == 5
    assert emulated.fake.subscriptions[sub_id]["pending_update"] is None
    emulated.settle()
    delivered = receiver.types()[before:]
    assert delivered[-3:] == [
        "invoice.payment_succeeded",
        "customer.subscription.pending_update_applied",
        "customer.subscription.updated",
    ]
    assert_signed(receiver.received()[before:])
    assert http("POST", url, {"pay_with": "saved"})[0] == 409  # nothing left to pay


def test_hosted_invoice_page_runs_3d_secure(emulated: Emulated, receiver: Receiver) -> None:
    _, sub_id, _ = subscribed_with_card(emulated, "4000 0027 6000 3184")
    updated = change_pending(emulated, sub_id)
    url = updated.latest_invoice.hosted_invoice_url
    page = http("GET", url)[2]
    assert 'id="action-required"' in page
    # Pay with the saved card: the bank's challenge; Fail leaves the invoice open and the change pending.
    status, headers, _ = http("POST", url, {"pay_with": "saved"})
    assert (status, headers["Location"]) == (303, f"/i/{url.rsplit('/', 1)[-1]}/3ds")
    status, _, page = http("GET", f"{url}/3ds")
    assert status == 200
    assert 'id="challenge-title"' in page and "3184" in page
    status, _, page = http("POST", f"{url}/3ds", {"action": "fail"})
    assert status == 402
    assert AUTHENTICATION_FAILED in page
    assert emulated.fake.subscriptions[sub_id]["pending_update"] is not None
    assert http("GET", f"{url}/3ds")[0] == 303  # no challenge pending now
    assert http("POST", f"{url}/3ds", {"action": "maybe"})[0] == 400
    # Again, and Complete: paid, the change applied, the events delivered.
    assert http("POST", url, {"pay_with": "saved"})[0] == 303
    emulated.settle()
    before = len(receiver.requests)
    status, headers, _ = http("POST", f"{url}/3ds", {"action": "complete"})
    assert status == 303
    assert 'data-status="paid"' in http("GET", url)[2]
    assert site_quantity(emulated, sub_id) == 5
    emulated.settle()
    assert "customer.subscription.pending_update_applied" in receiver.types()[before:]


def test_a_payment_intent_challenge_for_stripe_js(emulated: Emulated) -> None:
    _, sub_id, _ = subscribed_with_card(emulated, "4000 0027 6000 3184")
    updated = change_pending(emulated, sub_id)
    invoice: Any = emulated.client.v1.invoices.retrieve(
        updated.latest_invoice.id, params={"expand": ["payments.data.payment.payment_intent"]}
    )
    intent = invoice.payments.data[0].payment.payment_intent
    stripe_js = intent.next_action.use_stripe_sdk["stripe_js"]
    assert stripe_js.startswith(f"{emulated.base_url}/3d_secure_2/hosted?")
    assert "payment_intent_client_secret=" in stripe_js
    assert http("GET", stripe_js.replace("_secret_", "_secret_x"))[0] == 404
    assert http("GET", f"{stripe_js}&return_url=javascript:alert(1)")[0] == 400
    status, _, page = http("GET", stripe_js)
    assert status == 200 and 'id="challenge"' in page
    done_url = f"{stripe_js}&return_url={RETURN_URL}?step=3ds"
    status, headers, _ = http("POST", done_url, {"action": "complete"})
    assert status == 303
    assert headers["Location"].startswith(f"{RETURN_URL}?step=3ds&payment_intent={intent.id}&")
    assert headers["Location"].endswith("redirect_status=succeeded")
    confirmed: Any = emulated.client.v1.payment_intents.retrieve(intent.id)
    assert confirmed.status == "succeeded"
    assert site_quantity(emulated, sub_id) == 5
    assert http("GET", stripe_js)[0] == 409  # nothing left to authenticate


def test_unknown_and_voided_invoice_pages(emulated: Emulated) -> None:
    assert http("GET", f"{emulated.base_url}/i/test_nope")[0] == 404
    assert http("POST", f"{emulated.base_url}/i/test_nope", {"pay_with": "saved"})[0] == 404
    _, sub_id, _ = subscribed_with_card(emulated, "4000 0000 0000 0341")
    updated = change_pending(emulated, sub_id)
    emulated.client.v1.invoices.void_invoice(updated.latest_invoice.id)
    status, _, page = http("GET", updated.latest_invoice.hosted_invoice_url)
    assert status == 200
    assert 'id="voided"' in page and 'id="pay-card"' not in page


# --- retries, holds, shutdown ----------------------------------------------------------------------


def test_the_default_schedule_keeps_retrying_for_minutes() -> None:
    assert MAX_ATTEMPTS > 4
    assert list(RETRY_DELAYS) == sorted(RETRY_DELAYS)
    waits = [RETRY_DELAYS[min(n, len(RETRY_DELAYS)) - 1] for n in range(1, MAX_ATTEMPTS)]
    assert 120 <= sum(waits) <= 600


def test_failed_deliveries_are_retried_with_backoff_past_the_fourth_failure(emulated: Emulated, receiver: Receiver) -> None:
    emulator = emulated.emulator
    emulator.retry_delays = (0.05, 0.1, 0.15, 0.2)  # the last one repeats
    _, url = new_checkout(emulated)
    emulated.settle()
    before = len(receiver.requests)
    receiver.fail_type = {"customer.subscription.created": [500, 503, 502, 500, 500, 504]}  # six failures, then 200
    assert http("POST", url, PAY)[0] == 303
    deliveries = emulated.settle(timeout=15)

    (first,) = [d for d in deliveries if d.type == "customer.subscription.created"]
    others = [d for d in deliveries if d is not first]
    assert (first.attempts, first.status, first.delivered, first.pending, first.error) == (7, 200, True, False, None)
    assert all((d.attempts, d.status, d.delivered) == (1, 200, True) for d in others)
    received = receiver.received()[before:]
    assert_signed(received)
    attempts = [r for r in received if r.event["id"] == first.event_id]
    assert len(attempts) == 7
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    for gap, delay in zip(gaps, (0.05, 0.1, 0.15, 0.2, 0.2, 0.2), strict=True):
        assert gap >= delay - 0.01, gaps
    # A retried event does not hold the others back: they all arrived before its last attempt.
    assert max(r.at for r in received if r.event["id"] != first.event_id) < attempts[-1].at


def test_a_failing_endpoint_is_given_up_after_max_attempts_with_a_warning(
    emulated: Emulated, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator = emulated.emulator
    emulator.retry_delays = (0.01,)
    emulator.max_attempts = 6
    emulator.delivery_delay = 0.0
    receiver.fail_with = [503] * 6
    emulator.enqueue([{"id": "evt_1", "type": "customer.updated", "data": {"object": {"id": "cus_x"}}}])
    (delivery,) = emulated.settle()
    assert (delivery.status, delivery.attempts, delivery.delivered, delivery.pending) == (503, 6, False, False)
    assert delivery.error == "HTTP 503"
    assert len(receiver.requests) == 6

    emulator.webhook_url = "http://127.0.0.1:9/unreachable"
    emulator.enqueue([{"id": "evt_2", "type": "customer.updated", "data": {"object": {"id": "cus_x"}}}])
    _, delivery = emulated.settle()
    assert (delivery.status, delivery.attempts, delivery.delivered, delivery.pending) == (None, 6, False, False)
    assert delivery.error is not None and delivery.error.startswith("URLError")
    err = capsys.readouterr().err
    assert "evt_1" in err
    assert "evt_2" in err
    assert "giving up" in err
    assert "attempt 4 of up to 6" in err
    assert "Traceback" not in err
    assert SECRET not in err
    assert "cus_x" not in err


def test_hold_webhooks_delays_delivery(emulated: Emulated, receiver: Receiver) -> None:
    _, url = new_checkout(emulated)
    emulated.settle()
    before = len(receiver.requests)
    held_at = time.monotonic()
    status, _, body = http("POST", f"{emulated.base_url}/_emulator/hold-webhooks?seconds=3")
    assert (status, json.loads(body)) == (200, {"held_for_seconds": 3})
    assert http("POST", url, PAY)[0] == 303
    time.sleep(1.0)
    assert len(receiver.requests) == before
    held = [d for d in deliveries_json(emulated) if d["pending"]]
    assert "checkout.session.completed" in [d["type"] for d in held]
    assert all(d["attempts"] == 0 for d in held)
    status, _, body = http("GET", f"{emulated.base_url}/_emulator/hold-webhooks")
    assert status == 200
    assert 0 < json.loads(body)["held_for_seconds"] <= 2
    emulated.settle()
    assert min(r.at for r in receiver.received()[before:]) - held_at >= 2.95
    assert "checkout.session.completed" in receiver.types()


def test_a_hold_can_be_released(emulated: Emulated, receiver: Receiver) -> None:
    assert http("POST", f"{emulated.base_url}/_emulator/hold-webhooks", {"seconds": "60"})[0] == 200
    new_checkout(emulated)
    time.sleep(0.8)
    assert receiver.requests == []
    status, _, body = http("POST", f"{emulated.base_url}/_emulator/hold-webhooks?seconds=0")
    assert (status, json.loads(body)) == (200, {"held_for_seconds": 0})
    assert emulated.emulator.wait_until_idle(3)
    assert receiver.types() == ["customer.created"]


@pytest.mark.parametrize("seconds", ["", "soon", "-1", "601", "nan", "inf"])
def test_a_bad_hold_is_refused(emulated: Emulated, seconds: str) -> None:
    status, _, body = http("POST", f"{emulated.base_url}/_emulator/hold-webhooks?{urlencode({'seconds': seconds})}")
    assert status == 400
    assert json.loads(body)["error"]["param"] == "seconds"
    assert emulated.emulator.held_for() == 0
    assert http("DELETE", f"{emulated.base_url}/_emulator/hold-webhooks")[0] == 405


def test_shutdown_with_pending_retries_is_quick_and_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    server, _, _ = start_emulator(webhook_url="http://127.0.0.1:9/unreachable", webhook_secret=SECRET)
    emulator = server.emulator
    emulator.delivery_delay = 0.0
    emulator.enqueue([{"id": f"evt_{n}", "type": "customer.updated", "data": {"object": {}}} for n in range(3)])
    wait_for(lambda: all(d.attempts >= 1 for d in emulator.deliveries_snapshot()))
    worker = emulator._thread
    assert worker is not None and worker.is_alive()
    started = time.monotonic()
    server.shutdown()
    server.server_close()
    assert time.monotonic() - started < 3
    assert not worker.is_alive()
    assert all(d.pending and not d.delivered for d in emulator.deliveries_snapshot())
    err = capsys.readouterr().err
    assert "3 webhook deliveries still pending at shutdown were dropped" in err
    assert "Traceback" not in err


def test_api_errors_pass_through(emulated: Emulated) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        emulated.client.v1.subscriptions.retrieve("sub_missing")
    assert raised.value.http_status == 404
    assert http("GET", f"{emulated.base_url}/nowhere")[0] == 404

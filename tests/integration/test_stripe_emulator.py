"""The local Stripe emulator over real HTTP on 127.0.0.1: the API through stripe-python, the hosted
Checkout and portal pages through plain urllib (no browser), and signed webhook deliveries."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import pytest
import stripe

from tenant_billing.webhook_signature import verify_signature
from tests.local_runner.stripe_emulator import EmulatorServer, start_emulator
from tests.stripe_fake import API_VERSION, TEST_API_KEY, FakeStripe

SECRET = "whsec_emulator_test_secret"
SUCCESS_URL = "https://app.example.com/billing?checkout=success&session={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://app.example.com/billing?checkout=cancel"
RETURN_URL = "https://app.example.com/billing"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.body)
        return event


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    # Statuses to answer before answering 200.
    fail_with: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [received.event for received in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                state.requests.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                status = state.fail_with.pop(0) if state.fail_with else 200
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


@pytest.fixture
def emulated(receiver: Receiver) -> Iterator[Emulated]:
    server, base_url, fake = start_emulator(webhook_url=receiver.url, webhook_secret=SECRET)
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


def assert_signed(received: list[Received]) -> None:
    for request in received:
        assert request.headers["content-type"] == "application/json; charset=utf-8"
        assert request.headers["user-agent"] == "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
        verify_signature(request.body, request.headers["stripe-signature"], [SECRET], time.time())


def test_checkout_page_pays_and_delivers_signed_events_in_order(emulated: Emulated, receiver: Receiver) -> None:
    customer_id, url = new_checkout(emulated)

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
    assert "Test cards: 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined." in page

    session_id = url.rsplit("/", 1)[-1]
    status, headers, _ = http("POST", url, {"email": "", "card_number": "4242 4242 4242 4242", "expiry": "12/34", "cvc": "1"})
    assert status == 303
    assert headers["Location"] == SUCCESS_URL.replace("{CHECKOUT_SESSION_ID}", session_id)

    session = emulated.fake.checkout_sessions[session_id]
    assert session["status"] == "complete"
    subscription = emulated.fake.subscriptions[session["subscription"]]
    assert subscription["customer"] == customer_id
    assert [(i["price"]["id"], i["quantity"]) for i in subscription["items"]["data"]] == [
        ("price_pro_base", 1),
        ("price_pro_site", 3),
    ]

    assert_signed(receiver.requests)
    received = receiver.events()
    types = [event["type"] for event in received]
    assert "customer.subscription.created" in types
    assert types[-1] == "checkout.session.completed"
    # In Stripe's (the fake's emission) order, each once.
    emitted = [event["id"] for event in emulated.fake.events if event["id"] in {e["id"] for e in received}]
    assert [event["id"] for event in received] == emitted

    status, _, body = http("GET", f"{emulated.base_url}/_emulator/deliveries")
    deliveries = json.loads(body)
    assert status == 200
    assert [(d["event_id"], d["type"], d["status"], d["attempts"]) for d in deliveries] == [
        (event["id"], event["type"], 200, 1) for event in received
    ]

    # Paid: the page is gone.
    status, _, page = http("GET", url)
    assert status == 410
    assert "complete" in page


def test_declined_card_keeps_the_session_open(emulated: Emulated, receiver: Receiver) -> None:
    _, url = new_checkout(emulated)
    status, _, page = http("POST", url, {"email": "a@example.com", "card_number": "4000 0000 0000 0002"})
    assert status == 402
    assert '<div id="error"' in page
    assert "Your card was declined." in page
    assert 'id="pay"' in page
    assert receiver.requests == []
    assert emulated.fake.checkout_sessions[url.rsplit("/", 1)[-1]]["status"] == "open"

    status, _, _ = http("POST", url, {"card_number": "4242424242424242"})
    assert status == 303
    assert "checkout.session.completed" in [event["type"] for event in receiver.events()]


def test_unknown_and_expired_sessions(emulated: Emulated) -> None:
    status, _, page = http("GET", f"{emulated.base_url}/c/pay/cs_test_missing")
    assert status == 404
    assert "not found" in page
    _, url = new_checkout(emulated)
    emulated.fake.advance_clock(25 * 60 * 60)
    status, _, page = http("GET", url)
    assert status == 410
    assert "expired" in page
    status, _, _ = http("POST", url, {"card_number": "4242424242424242"})
    assert status == 410


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
        before = len(receiver.requests)
        status, headers, _ = http("POST", f"{portal.url}/subscriptions/{sub_id}/{action}")
        assert status == 303
        assert headers["Location"] == portal.url
        assert_signed(receiver.requests[before:])
        return [event["type"] for event in receiver.events()[before:]]

    assert act("cancel-at-period-end") == ["customer.subscription.updated"]
    assert emulated.fake.subscriptions[sub_id]["cancel_at_period_end"] is True
    page = http("GET", portal.url)[2]
    assert "Cancels on " in page
    assert 'id="resume"' in page
    assert 'id="cancel-at-period-end"' not in page

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


def test_failed_deliveries_are_retried(emulated: Emulated, receiver: Receiver) -> None:
    receiver.fail_with = [500, 500]
    _, url = new_checkout(emulated)
    assert http("POST", url, {"card_number": "4242424242424242"})[0] == 303
    deliveries = emulated.server.emulator.deliveries_snapshot()
    assert deliveries[0].attempts == 3
    assert all(d.status == 200 and d.delivered for d in deliveries)
    assert all(d.attempts == 1 for d in deliveries[1:])
    ids = [event["id"] for event in receiver.events()]
    assert ids == [deliveries[0].event_id] * 3 + [d.event_id for d in deliveries[1:]]
    assert_signed(receiver.requests)


def test_an_unreachable_endpoint_is_given_up_with_a_warning(
    emulated: Emulated, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator = emulated.server.emulator
    emulator.retry_delays = (0.01, 0.01, 0.01)
    receiver.fail_with = [503] * 4
    (delivery,) = emulator.deliver([{"id": "evt_1", "type": "customer.updated", "data": {"object": {"id": "cus_x"}}}])
    assert (delivery.status, delivery.attempts, delivery.delivered) == (503, 4, False)
    assert len(receiver.requests) == 4

    emulator.webhook_url = "http://127.0.0.1:9/unreachable"
    (delivery,) = emulator.deliver([{"id": "evt_2", "type": "customer.updated", "data": {"object": {"id": "cus_x"}}}])
    assert (delivery.status, delivery.attempts, delivery.delivered) == (None, 4, False)
    err = capsys.readouterr().err
    assert "evt_1" in err
    assert "evt_2" in err
    assert SECRET not in err
    assert "cus_x" not in err


def test_api_errors_pass_through(emulated: Emulated) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        emulated.client.v1.subscriptions.retrieve("sub_missing")
    assert raised.value.http_status == 404
    assert http("GET", f"{emulated.base_url}/nowhere")[0] == 404

"""A local Stripe: the fake's API, hosted Checkout and Customer Portal pages, and signed webhooks.

One HTTP server (127.0.0.1 by default) serves
- `/v1/...`: the Stripe API (FakeStripe.handle), for STRIPE_API_BASE / StripeClient(base_addresses=...);
- `/c/pay/{checkout_session_id}`: a hosted Checkout page (pay with a test card; 4000 0025 0000 3155
  and 4000 0027 6000 3184 first go through a 3-D Secure challenge at `/c/pay/{id}/3ds`);
- `/p/session/{token}`: a hosted Customer Portal page (cancel at period end, renew, cancel now,
  update the card, invoice history); its "cancel at period end" is Stripe's for flexible billing
  mode: `cancel_at` set to the period end, `cancel_at_period_end` false;
- `/i/{token}`: the hosted invoice page of each finalized invoice (`hosted_invoice_url`): the invoice,
  a Pay button (saved card) and a card form; a card that needs 3-D Secure goes through the challenge
  at `/i/{token}/3ds` (Complete pays it, applying a pending update; Fail leaves it open);
- `/3d_secure_2/hosted?payment_intent=...&payment_intent_client_secret=...[&return_url=...]`: the
  challenge of a PaymentIntent in `requires_action` (its `next_action.use_stripe_sdk.stripe_js`), what
  Stripe.js shows when a frontend confirms the payment in place; it redirects to `return_url` with
  `payment_intent`, `payment_intent_client_secret` and `redirect_status` (succeeded / failed);
- `/_emulator/deliveries`: every webhook delivery so far, pending ones included (JSON), for tests;
- `POST /_emulator/hold-webhooks?seconds=10`: start no delivery attempt for that long (0 releases).

Every event the fake emits, whether a page action (paying, cancelling in the portal), an API call
(`POST /v1/checkout/sessions/{id}/expire`, a subscription update) or Stripe's own clock (a session
reaching `expires_at`) caused it, is POSTed to the webhook URL, signed like Stripe signs it, by a
background worker: as with Stripe, after the browser was redirected, not before. Each event's first
attempt waits `delivery_delay` seconds; a failed attempt (no 2xx, a redirect, a timeout, a refused
connection) is retried with Stripe's exponential backoff scaled down from 3 days to about 5 minutes
(`retry_delays`, the last one repeating, `max_attempts` in all). First attempts go out in emission
order, one at a time; a retried event is passed by later ones, so the endpoint sees Stripe's lack of
ordering too. Plain HTML, no JavaScript, no assets.

    server, base_url, fake = start_emulator(webhook_url="http://127.0.0.1:3001/webhook", webhook_secret="whsec_...")
    ...
    server.shutdown(); server.server_close()   # stops the delivery worker too (pending deliveries are dropped)
"""

from __future__ import annotations

import heapq
import html
import itertools
import json
import math
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from tests.stripe_fake import CardDeclined, FakeStripe, FakeStripeError, SimulatedConnectionError
from tests.support.stripe_signature import signature_header

Obj = dict[str, Any]

WEBHOOK_USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
WEBHOOK_TIMEOUT_SECONDS = 10.0
# How long after an event is emitted its first delivery attempt starts (the browser is redirected first).
DELIVERY_DELAY_SECONDS = 0.5
# Pauses before the 1st, 2nd, ... retry of a failed delivery; the last one repeats (Stripe: up to 3 days).
RETRY_DELAYS: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
# Attempts in all before giving up: 16 is about 5 minutes with RETRY_DELAYS.
MAX_ATTEMPTS = 16
MAX_HOLD_SECONDS = 600.0
# Without a notification, the worker still looks for new events (and expired sessions) this often.
POLL_SECONDS = 0.25
SWEEP_SECONDS = 1.0
MAX_FORM_BYTES = 64 * 1024

CHECKOUT_PATH = "/c/pay/"
PORTAL_PATH = "/p/session/"
INVOICE_PATH = "/i/"
THREE_D_SECURE_PATH = "/3d_secure_2/hosted"
PORTAL_ACTIONS = ("cancel-at-period-end", "resume", "cancel-now")
# Test cards whose payment needs 3-D Secure authentication (4000 0025 0000 3155, 4000 0027 6000 3184).
THREE_D_SECURE_CARDS = frozenset({"4000002500003155", "4000002760003184"})
AUTHENTICATION_FAILED = (
    "We are unable to authenticate your payment method. Please choose a different payment method and try again."
)
TEST_CARDS_HINT = (
    "Test cards: 4242 4242 4242 4242 succeeds, 4000 0025 0000 3155 asks for 3-D Secure, 4000 0000 0000 0002 is declined."
)
CARD_UPDATE_HINT = (
    "Test cards: 4242 4242 4242 4242 pays; 4000 0000 0000 0341 saves, but every charge is declined; "
    "4000 0027 6000 3184 asks for 3-D Secure on every charge."
)
INVOICE_CARDS_HINT = (
    "Test cards: 4242 4242 4242 4242 succeeds, 4000 0027 6000 3184 asks for 3-D Secure, 4000 0000 0000 0002 is declined."
)
_LIVE_STATUSES = ("active", "trialing", "past_due")
_ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "vnd", "vuv", "xaf", "xof", "xpf"}
)
# The catalog's currency (plans.json); any other is shown by its code.
_SYMBOLS = {"usd": "$"}
_STATUS_LABELS = {
    "active": "Active",
    "trialing": "Trial",
    "past_due": "Past due",
    "unpaid": "Unpaid",
    "paused": "Paused",
    "incomplete": "Incomplete",
    "incomplete_expired": "Expired",
    "canceled": "Canceled",
}


@dataclass(frozen=True)
class Delivery:
    """One event's delivery so far.

    `status` is the last attempt's HTTP status (None before the first attempt or when the connection
    failed), `error` the last failure's reason (None once delivered). `pending` means more attempts will
    come; an event neither delivered nor pending was given up after `max_attempts`.
    """

    event_id: str
    type: str
    object_id: str | None
    status: int | None
    attempts: int
    delivered: bool
    pending: bool
    error: str | None


@dataclass
class _Task:
    """The mutable record behind a Delivery (guarded by StripeEmulator._cond)."""

    event_id: str
    type: str
    object_id: str | None
    body: bytes
    attempts: int = 0
    status: int | None = None
    error: str | None = None
    delivered: bool = False
    given_up: bool = False

    @property
    def pending(self) -> bool:
        return not (self.delivered or self.given_up)

    def snapshot(self) -> Delivery:
        return Delivery(
            self.event_id, self.type, self.object_id, self.status, self.attempts, self.delivered, self.pending, self.error
        )


@dataclass(frozen=True)
class _Challenge:
    """A payment waiting for its 3-D Secure challenge: what the customer typed on the Checkout page."""

    card: str = field(repr=False)
    email: str | None
    name: str | None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Stripe does not follow redirects from a webhook endpoint: a 3xx is a failed delivery."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        return None


def _log(message: str) -> None:
    """One line on stderr: never a key, a webhook secret, a body or a bearer URL (checkout/portal)."""
    try:
        sys.stderr.write(f"stripe-emulator: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed at interpreter shutdown
        pass


class StripeEmulator:
    """The state behind the pages: the fake, where webhooks go, and the deliveries (done and pending).

    start() runs the delivery worker; stop() ends it. Tune `delivery_delay`, `retry_delays`,
    `max_attempts` and `timeout` before or while it runs; hold(seconds) holds deliveries back.
    """

    def __init__(
        self,
        fake: FakeStripe,
        *,
        webhook_url: str,
        webhook_secret: str,
        base_url: str,
        delivery_delay: float = DELIVERY_DELAY_SECONDS,
    ) -> None:
        self.fake = fake
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.base_url = base_url
        self.delivery_delay = delivery_delay
        self.retry_delays: tuple[float, ...] = RETRY_DELAYS
        self.max_attempts = MAX_ATTEMPTS
        self.timeout = WEBHOOK_TIMEOUT_SECONDS
        # Guards everything below. Lock order: the fake's lock first, then this one (never the other way).
        self._cond = threading.Condition()
        self._tasks: list[_Task] = []  # every delivery, in the order its event was emitted
        self._queue: list[tuple[float, int, _Task]] = []  # (due, tie-breaker, task): the next attempts
        self._order = itertools.count()
        self._held_until = 0.0
        self._dirty = False  # something may have emitted events since the worker last looked
        self._stopping = False
        self._thread: threading.Thread | None = None
        with fake._lock:
            self._cursor = len(fake.events)  # events emitted before the emulator existed are not sent
        self._challenges: dict[str, _Challenge] = {}
        self._challenges_lock = threading.Lock()
        # No proxies (the endpoint is local) and no redirects (as Stripe).
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

    # --- webhooks: the worker -------------------------------------------------------------------

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="stripe-emulator-webhooks", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the worker (an attempt in flight finishes in the background); drop what is pending."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._stopping = True
            pending = sum(1 for task in self._tasks if task.pending)
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)
            if pending:
                _log(f"{pending} webhook deliveries still pending at shutdown were dropped")

    def notify(self) -> None:
        """Something may have emitted events: look for them now rather than at the next poll."""
        with self._cond:
            self._dirty = True
            self._cond.notify_all()

    def hold(self, seconds: float) -> float:
        """Start no delivery attempt for `seconds` from now (0 releases a hold); returns the hold's length."""
        if not math.isfinite(seconds) or not 0 <= seconds <= MAX_HOLD_SECONDS:
            raise ValueError(f"seconds must be between 0 and {MAX_HOLD_SECONDS:g}")
        with self._cond:
            self._held_until = time.monotonic() + seconds
            self._cond.notify_all()
        return seconds

    def held_for(self) -> float:
        with self._cond:
            return max(0.0, self._held_until - time.monotonic())

    def enqueue(self, events: Iterable[Obj]) -> None:
        """Deliver these events (in this order, after `delivery_delay`), as if the fake had emitted them."""
        with self._cond:
            self._add_tasks(events)

    def collect(self) -> int:
        """Queue the events the fake emitted since the last look; returns how many."""
        fake = self.fake
        with fake._lock:
            events = fake.events
            self._cursor = min(self._cursor, len(events))  # never below what was seen: rollbacks happen under the lock
            new = events[self._cursor :]
            self._cursor = len(events)
            if new:
                # Under the fake's lock, so events of two collectors cannot interleave out of order.
                with self._cond:
                    self._add_tasks(new)
            return len(new)

    def wait_until_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every event emitted so far was delivered or given up (False on timeout)."""
        deadline = time.monotonic() + timeout
        self.collect()
        with self._cond:
            while any(task.pending for task in self._tasks):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def deliveries_snapshot(self) -> list[Delivery]:
        with self._cond:
            return [task.snapshot() for task in self._tasks]

    @property
    def deliveries(self) -> list[Delivery]:
        return self.deliveries_snapshot()

    def _add_tasks(self, events: Iterable[Obj]) -> None:
        due = time.monotonic() + self.delivery_delay
        for event in events:
            obj = (event.get("data") or {}).get("object") or {}
            object_id = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None
            task = _Task(str(event.get("id")), str(event.get("type")), object_id, json.dumps(event, indent=2).encode())
            self._tasks.append(task)
            heapq.heappush(self._queue, (due, next(self._order), task))
        self._cond.notify_all()

    def _run(self) -> None:
        next_sweep = 0.0
        while True:
            try:
                if time.monotonic() >= next_sweep:
                    # Stripe expires open sessions at expires_at (and says so) whether or not anyone asks.
                    with self.fake._lock:
                        self.fake._run_clock()
                    next_sweep = time.monotonic() + SWEEP_SECONDS
                self.collect()
                with self._cond:
                    if self._stopping:
                        return
                    task = self._take_due()
                if task is not None:
                    self._attempt(task)
            except Exception as error:  # keep delivering; one line, no traceback
                _log(f"webhook worker error: {type(error).__name__}")
                time.sleep(POLL_SECONDS)

    def _take_due(self) -> _Task | None:
        """Pop the next due attempt, or wait (for a notification, the next due time or the poll) and return None."""
        now = time.monotonic()
        if self._queue and self._queue[0][0] <= now and now >= self._held_until:
            return heapq.heappop(self._queue)[2]
        if self._dirty:
            self._dirty = False
            return None
        wake = now + POLL_SECONDS
        if self._queue:
            wake = min(wake, max(self._queue[0][0], self._held_until))
        self._cond.wait(max(0.0, wake - now))
        return None

    def _attempt(self, task: _Task) -> None:
        status, reason = self._post(task.body)
        ok = status is not None and 200 <= status < 300
        with self._cond:
            if self._stopping:
                return
            task.attempts += 1
            task.status = status
            task.error = None if ok else reason
            attempts = task.attempts
            retry_in: float | None = None
            if ok:
                task.delivered = True
            elif attempts >= self.max_attempts:
                task.given_up = True
            else:
                retry_in = self.retry_delays[min(attempts, len(self.retry_delays)) - 1] if self.retry_delays else 0.0
                heapq.heappush(self._queue, (time.monotonic() + retry_in, next(self._order), task))
            self._cond.notify_all()
        what = f"webhook {task.type} ({task.event_id})"
        if ok:
            if attempts > 1:
                _log(f"{what} delivered on attempt {attempts}")
        elif retry_in is None:
            _log(f"WARNING: {what} failed {attempts} times, giving up: {reason}")
        elif attempts in (1, 4):
            _log(f"{what} failed (attempt {attempts} of up to {self.max_attempts}): {reason}; retrying in {retry_in:g} s")

    def _post(self, body: bytes) -> tuple[int | None, str]:
        """(HTTP status or None, a reason without the body or the secret)."""
        request = urllib.request.Request(
            self.webhook_url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": WEBHOOK_USER_AGENT,
                # Signed at each attempt, as Stripe does: a retry carries a fresh timestamp.
                "Stripe-Signature": signature_header([self.webhook_secret], int(time.time()), body),
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read()
                status = int(response.status)
                return status, f"HTTP {status}"
        except urllib.error.HTTPError as error:
            with error:
                error.read()
            return error.code, f"HTTP {error.code}"
        except (OSError, ValueError) as error:  # URLError, timeouts, refused connections, a bad URL
            detail = error.reason if isinstance(error, urllib.error.URLError) else error
            return None, f"{type(error).__name__}: {detail}"

    # --- 3-D Secure challenges ------------------------------------------------------------------

    def start_challenge(self, session_id: str, challenge: _Challenge) -> None:
        with self._challenges_lock:
            self._challenges[session_id] = challenge

    def challenge(self, session_id: str) -> _Challenge | None:
        with self._challenges_lock:
            return self._challenges.get(session_id)

    def end_challenge(self, session_id: str) -> _Challenge | None:
        with self._challenges_lock:
            return self._challenges.pop(session_id, None)

    # --- reads (snapshots taken under the fake's lock) ------------------------------------------

    def checkout_view(self, session_id: str) -> tuple[Obj, list[Obj], Obj] | None:
        """(session, line items, stored subscription_data), or None for an unknown session.

        Sessions past their expires_at are expired first (with their checkout.session.expired event).
        """
        fake = self.fake
        with fake._lock:
            fake._run_clock()
            session = fake.checkout_sessions.get(session_id)
            private = fake._session_private.get(session_id)
            if session is None or private is None:
                return None
            return _copy(session), _copy(private.line_items), _copy(private.subscription_data)

    def portal_view(self, token: str) -> tuple[Obj, Obj | None, list[Obj]] | None:
        """(portal session, customer, the customer's subscriptions newest first), or None."""
        fake = self.fake
        with fake._lock:
            portal = next(
                (
                    session
                    for session in fake.portal_sessions.values()
                    if session["id"] == token or str(session.get("url") or "").rsplit("/", 1)[-1] == token
                ),
                None,
            )
            if portal is None:
                return None
            customer_id = portal["customer"]
            order = {sub_id: n for n, sub_id in enumerate(fake.subscriptions)}
            subscriptions = [sub for sub in fake.subscriptions.values() if sub["customer"] == customer_id]
            subscriptions.sort(key=lambda sub: (sub["created"], order[sub["id"]]), reverse=True)
            customer = fake.customers.get(customer_id)
            return _copy(portal), _copy(customer) if customer else None, _copy(subscriptions)

    def portal_extras(self, customer_id: str) -> tuple[Obj | None, list[Obj]]:
        """(the card invoices are charged to, the customer's finalized invoices newest first)."""
        fake = self.fake
        with fake._lock:
            customer = fake.customers.get(customer_id) or {}
            method_id = (customer.get("invoice_settings") or {}).get("default_payment_method")
            if not method_id:
                live = [sub for sub in fake.subscriptions.values() if sub["customer"] == customer_id]
                live.sort(key=lambda sub: sub["created"], reverse=True)
                method_id = next((sub["default_payment_method"] for sub in live if sub.get("default_payment_method")), None)
            method = fake.payment_methods.get(str(method_id)) if method_id else None
            invoices = [
                invoice
                for invoice in fake._newest_first(fake.invoices.values())
                if invoice["customer"] == customer_id and invoice["status"] != "draft"
            ]
            return (_copy(method) if method else None), _copy(invoices)

    def invoice_view(self, token: str) -> tuple[Obj, Obj | None, Obj | None] | None:
        """(invoice, its PaymentIntent, the saved card a Pay button would charge) for a hosted page token."""
        fake = self.fake
        with fake._lock:
            fake._run_clock()
            invoice = fake.invoices.get(fake._invoice_tokens.get(token, ""))
            if invoice is None:
                return None
            intent = fake._invoice_intent(invoice)
            subscription_id = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
            subscription = fake.subscriptions.get(str(subscription_id))
            method_id = fake._default_payment_method(subscription) if subscription is not None else None
            method = fake.payment_methods.get(method_id or "")
            return _copy(invoice), (_copy(intent) if intent else None), (_copy(method) if method else None)

    def intent_view(self, intent_id: str, client_secret: str) -> tuple[Obj, Obj | None] | None:
        """(PaymentIntent, its invoice) when `client_secret` is the PaymentIntent's, else None."""
        fake = self.fake
        with fake._lock:
            intent = fake.payment_intents.get(intent_id)
            if intent is None or not client_secret or intent["client_secret"] != client_secret:
                return None
            invoice = fake._intent_invoice(intent_id)
            return _copy(intent), (_copy(invoice) if invoice else None)

    def product_name(self, price: Obj) -> str:
        with self.fake._lock:
            product = self.fake.products.get(price["product"]) if isinstance(price.get("product"), str) else None
            return str(product["name"]) if product else str(price.get("nickname") or price.get("product") or price["id"])


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


# --- formatting -----------------------------------------------------------------------------------


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def format_amount(amount: int, currency: str) -> str:
    code = currency.lower()
    value = f"{amount:,}" if code in _ZERO_DECIMAL else f"{amount / 100:,.2f}"
    symbol = _SYMBOLS.get(code)
    return f"{symbol}{value}" if symbol else f"{value} {code.upper()}"


def format_interval(recurring: Obj | None) -> str:
    if not recurring:
        return "one time"
    count, interval = int(recurring.get("interval_count") or 1), str(recurring["interval"])
    return interval if count == 1 else f"{count} {interval}s"


def format_date(timestamp: int) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return f"{moment:%B} {moment.day}, {moment.year}"


def _period_end(subscription: Obj) -> int | None:
    ends = [int(item["current_period_end"]) for item in subscription["items"]["data"] if item.get("current_period_end")]
    return max(ends) if ends else None


def _cancels_at(subscription: Obj) -> int | None:
    """When a scheduled cancellation takes effect (None when none is scheduled)."""
    if subscription["status"] not in _LIVE_STATUSES:
        return None
    if subscription.get("cancel_at_period_end"):
        return _period_end(subscription) or subscription.get("cancel_at")
    cancel_at = subscription.get("cancel_at")
    return int(cancel_at) if cancel_at else None


def portal_actions(subscription: Obj) -> tuple[str, ...]:
    """What Stripe's portal offers for a subscription it may cancel but not update."""
    if subscription["status"] not in _LIVE_STATUSES:
        return ()
    if _cancels_at(subscription) is not None:
        return ("resume", "cancel-now")
    return ("cancel-at-period-end", "cancel-now")


# --- pages ----------------------------------------------------------------------------------------

_CSS = """
*{box-sizing:border-box}
body{margin:0;font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#1a1f36;background:#fff;font-size:15px;line-height:1.45}
a{color:#635bff;text-decoration:none}a:hover{text-decoration:underline}
.badge{display:inline-block;margin-left:10px;padding:2px 7px;border-radius:4px;background:#ffde92;color:#983705;
 font-size:11px;font-weight:600;text-transform:uppercase;letter-spacing:.04em;vertical-align:middle}
.muted{color:#697386}.small{font-size:13px}
.checkout{display:flex;min-height:100vh;flex-wrap:wrap}
.summary{flex:1 1 420px;background:#f6f9fc;padding:56px 48px;border-right:1px solid #e3e8ee}
.pay{flex:1 1 420px;padding:56px 48px;max-width:560px}
.summary-inner{max-width:420px;margin-left:auto}
.headline{font-size:36px;font-weight:600;margin:6px 0 28px}.headline span{font-size:15px;color:#697386;font-weight:400}
.lines{list-style:none;padding:0;margin:0}
.lines li{display:flex;justify-content:space-between;gap:16px;padding:12px 0;border-bottom:1px solid #e3e8ee}
.lines small{display:block;color:#697386;font-size:13px}
.total{display:flex;justify-content:space-between;padding:16px 0;font-weight:600}
h1{font-size:22px;margin:0 0 20px}h2{font-size:17px;margin:0 0 12px}
label{display:block;font-size:13px;color:#3c4257;margin:16px 0 6px;font-weight:500}
input{width:100%;padding:10px 12px;border:1px solid #e0e6eb;border-radius:6px;font-size:15px;
 box-shadow:0 1px 1px rgba(0,0,0,.03)}
input:focus{outline:none;border-color:#635bff;box-shadow:0 0 0 3px rgba(99,91,255,.25)}
.card-group input{border-radius:0}.card-group #card-number{border-radius:6px 6px 0 0}
.card-row{display:flex}.card-row input{border-top:0}.card-row input:first-child{border-radius:0 0 0 6px}
.card-row input:last-child{border-left:0;border-radius:0 0 6px 0}
button{appearance:none;border:0;border-radius:6px;padding:12px 16px;font-size:15px;font-weight:600;cursor:pointer}
.primary{width:100%;margin-top:24px;background:#635bff;color:#fff}.primary:hover{background:#5851e5}
.secondary{background:#fff;color:#1a1f36;border:1px solid #d5dbe1}.danger{background:#fff;color:#df1b41;border:1px solid #f2b8c6}
.error{margin:0 0 12px;padding:10px 12px;border-radius:6px;background:#fff0f3;color:#c0123c;border:1px solid #f5c2cf}
.hint{margin-top:16px;font-size:13px;color:#697386}
.portal{max-width:760px;margin:0 auto;padding:40px 24px}
.topbar{display:flex;justify-content:space-between;align-items:center;margin-bottom:32px}
.sub{border:1px solid #e3e8ee;border-radius:8px;padding:20px 24px;margin-bottom:16px}
.sub-head{display:flex;justify-content:space-between;align-items:center;gap:12px}
.sub ul{margin:8px 0 12px;padding-left:18px}
.status{padding:2px 8px;border-radius:10px;font-size:12px;font-weight:600;background:#e3e8ee;color:#3c4257}
.status-active,.status-trialing{background:#d7f7c2;color:#006908}
.status-past_due,.status-unpaid,.status-open{background:#ffe7f2;color:#b3093c}
.status-paid{background:#d7f7c2;color:#006908}.status-void{background:#e3e8ee;color:#697386}
h1 .status{font-size:13px;vertical-align:middle;margin-left:8px}
.invoice-row{align-items:center}.invoice-row>span{flex:1}.invoice-link{min-width:40px;text-align:right}
.pay-invoice{margin-top:28px}.pay-invoice form{margin:0 0 12px}.card-update{max-width:420px}
.card-update button{margin-top:12px}
.notice{color:#983705;font-weight:500}
.actions{display:flex;gap:10px;flex-wrap:wrap;margin-top:12px}.actions form{margin:0}
.message{max-width:480px;margin:15vh auto;padding:0 24px;text-align:center}
.challenge{max-width:440px;margin:10vh auto;padding:32px;border:1px solid #e3e8ee;border-radius:8px;text-align:center}
.challenge dl{display:grid;grid-template-columns:auto 1fr;gap:6px 16px;text-align:left;margin:20px 0}
.challenge dt{color:#697386}.challenge dd{margin:0;font-weight:500}
.challenge .actions{justify-content:center}.challenge button{min-width:120px}.challenge .primary{width:auto;margin-top:0}
"""


def _document(title: str, body: str) -> bytes:
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{_CSS}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    ).encode()


def message_page(title: str, message: str, link: tuple[str, str] | None = None) -> bytes:
    back = f'<p><a id="back" href="{e(link[0])}">{e(link[1])}</a></p>' if link else ""
    return _document(
        title,
        f'<main class="message"><h1 id="message-title">{e(title)}</h1>'
        f'<p id="message" class="muted">{e(message)}</p>{back}</main>',
    )


def checkout_page(
    emulator: StripeEmulator,
    session: Obj,
    line_items: list[Obj],
    subscription_data: Obj,
    *,
    error: str | None = None,
    form: Mapping[str, str] | None = None,
) -> bytes:
    form = form or {}
    currency = str(session.get("currency") or (line_items[0]["currency"] if line_items else "usd"))
    recurring = line_items[0]["price"].get("recurring") if line_items else None
    interval = format_interval(recurring)
    total = sum(int(item["price"]["unit_amount"]) * int(item["quantity"]) for item in line_items)
    names = [emulator.product_name(item["price"]) for item in line_items]
    rows = []
    for name, item in zip(names, line_items, strict=True):
        price = item["price"]
        unit = f"{format_amount(int(price['unit_amount']), price['currency'])} / {format_interval(price.get('recurring'))}"
        line_total = format_amount(int(price["unit_amount"]) * int(item["quantity"]), price["currency"])
        rows.append(
            f'<li class="line-item"><div><strong class="product">{e(name)}</strong>'
            f"<small>Qty {e(item['quantity'])} \N{MIDDLE DOT} {e(unit)}</small></div><span>{e(line_total)}</span></li>"
        )
    trial_days = subscription_data.get("trial_period_days")
    trial = f'<p class="muted small" id="trial">Includes a {e(trial_days)}-day free trial.</p>' if trial_days else ""
    cancel_url = session.get("cancel_url")
    back = f'<a id="cancel" href="{e(cancel_url)}">\N{LEFTWARDS ARROW} Back</a>' if cancel_url else ""
    email = form.get("email", session.get("customer_email") or _customer_email(emulator, session) or "")
    error_html = f'<div id="error" class="error" role="alert">{e(error)}</div>' if error else ""
    headline = names[0] if names else "your plan"
    body = f"""<div class="checkout">
<section class="summary"><div class="summary-inner">
<p>{back}<span class="badge">Test mode</span></p>
<p class="muted">Subscribe to {e(headline)}</p>
<p class="headline" id="headline">{e(format_amount(total, currency))} <span>per {e(interval)}</span></p>
<ul class="lines" id="line-items">{"".join(rows)}</ul>
<div class="total"><span>Total per {e(interval)}</span><strong id="total">{e(format_amount(total, currency))}</strong></div>
{trial}
</div></section>
<section class="pay">
<h1>Pay with card</h1>
{error_html}
<form method="post" action="{e(CHECKOUT_PATH + session["id"])}" autocomplete="off">
<label for="email">Email <span class="muted">(optional)</span></label>
<input id="email" name="email" type="email" value="{e(email)}" placeholder="you@example.com">
<label for="card-number">Card information</label>
<div class="card-group">
<input id="card-number" name="card_number" inputmode="numeric" placeholder="4242 4242 4242 4242"
 value="{e(form.get("card_number", ""))}">
<div class="card-row">
<input id="card-expiry" name="expiry" placeholder="MM / YY" value="{e(form.get("expiry", ""))}" aria-label="Expiration">
<input id="card-cvc" name="cvc" placeholder="CVC" value="{e(form.get("cvc", ""))}" aria-label="CVC">
</div></div>
<label for="name">Cardholder name <span class="muted">(optional)</span></label>
<input id="name" name="name" value="{e(form.get("name", ""))}" placeholder="Full name on card">
<button id="pay" class="primary" type="submit">Subscribe</button>
<p class="hint" id="test-cards">{e(TEST_CARDS_HINT)}</p>
</form>
</section>
</div>"""
    return _document(f"Subscribe to {headline}", body)


def challenge_page(emulator: StripeEmulator, session: Obj, line_items: list[Obj], challenge: _Challenge) -> bytes:
    """Stripe's test 3-D Secure page: the issuer asks the cardholder to approve the payment."""
    currency = str(session.get("currency") or (line_items[0]["currency"] if line_items else "usd"))
    total = sum(int(item["price"]["unit_amount"]) * int(item["quantity"]) for item in line_items)
    recurring = line_items[0]["price"].get("recurring") if line_items else None
    amount = f"{format_amount(total, currency)} / {format_interval(recurring)}"
    return challenge_document(amount, challenge.card[-4:], f"{CHECKOUT_PATH}{session['id']}/3ds")


def challenge_document(amount: str, last4: str, action: str) -> bytes:
    """The 3-D Secure challenge: Complete or Fail, posted (field `action`) to `action`."""
    body = f"""<main class="challenge" id="challenge">
<p><span class="badge">Test mode</span></p>
<h1 id="challenge-title">3D Secure 2 Test Page</h1>
<p class="muted">Your bank asks you to confirm this payment. In test mode, choose how the authentication ends.</p>
<dl>
<dt>Amount</dt><dd id="challenge-amount">{e(amount)}</dd>
<dt>Card</dt><dd id="challenge-card">\N{BULLET}\N{BULLET}\N{BULLET}\N{BULLET} {e(last4)}</dd>
</dl>
<form method="post" action="{e(action)}" class="actions">
<button id="complete" class="primary" type="submit" name="action" value="complete">Complete</button>
<button id="fail" class="danger" type="submit" name="action" value="fail">Fail</button>
</form>
</main>"""
    return _document("3D Secure 2 Test Page", body)


def card_label(method: Obj | None) -> str:
    card = (method or {}).get("card") or {}
    if not card:
        return "no card"
    return f"{str(card.get('brand') or 'card').title()} \N{BULLET}\N{BULLET}\N{BULLET}\N{BULLET} {card.get('last4')}"


def invoice_page(
    token: str,
    invoice: Obj,
    intent: Obj | None,
    saved_card: Obj | None,
    *,
    error: str | None = None,
    form: Mapping[str, str] | None = None,
) -> bytes:
    """Stripe's hosted invoice page: what is owed and why, and (while open) how to pay it."""
    form = form or {}
    currency = str(invoice["currency"])
    status = str(invoice["status"])
    amount_due = format_amount(int(invoice["amount_due"]), currency)
    rows = []
    for line in invoice["lines"]["data"]:
        period = line.get("period") or {}
        when = ""
        if period.get("start") and period.get("end") and period["start"] != period["end"]:
            when = f"{format_date(int(period['start']))} \N{EN DASH} {format_date(int(period['end']))}"
        rows.append(
            f'<li class="invoice-line"><div><span class="description">{e(line["description"])}</span>'
            f'<small class="period">{e(when)}</small></div><span class="amount">'
            f"{e(format_amount(int(line['amount']), currency))}</span></li>"
        )
    if invoice["starting_balance"]:
        rows.append(
            f'<li class="invoice-line"><span>Applied balance</span>'
            f"<span>{e(format_amount(int(invoice['starting_balance']), currency))}</span></li>"
        )
    notices = []
    if status == "paid":
        paid_at = (invoice.get("status_transitions") or {}).get("paid_at")
        when = f" on {format_date(int(paid_at))}" if paid_at else ""
        notices.append(
            f'<p class="notice" id="paid">Paid{e(when)}: {e(format_amount(int(invoice["amount_paid"]), currency))}</p>'
        )
    elif status == "void":
        notices.append('<p class="notice" id="voided">This invoice has been voided and can no longer be paid.</p>')
    elif status == "open" and intent is not None and intent.get("status") == "requires_action" and error is None:
        notices.append('<p class="notice" id="action-required">Your bank asks you to confirm this payment.</p>')
    last_error = (intent or {}).get("last_payment_error") or {}
    if error is None and status == "open" and last_error:
        error = str(last_error.get("message") or "The payment failed.")
    error_html = f'<div id="error" class="error" role="alert">{e(error)}</div>' if error else ""
    pay = ""
    if status == "open":
        action = f"{INVOICE_PATH}{token}"
        saved = ""
        if saved_card is not None:
            saved = (
                f'<form method="post" action="{e(action)}"><input type="hidden" name="pay_with" value="saved">'
                f'<button id="pay-saved" class="primary" type="submit">Pay {e(amount_due)} with '
                f'<span id="saved-card">{e(card_label(saved_card))}</span></button></form>'
            )
        pay = f"""<section class="pay-invoice">
{error_html}
{saved}
<h2>{"Or pay with another card" if saved else "Pay with card"}</h2>
<form method="post" action="{e(action)}" autocomplete="off">
<input type="hidden" name="pay_with" value="card">
<label for="card-number">Card number</label>
<input id="card-number" name="card_number" inputmode="numeric" placeholder="4242 4242 4242 4242"
 value="{e(form.get("card_number", ""))}">
<button id="pay-card" class="primary" type="submit">Pay {e(amount_due)}</button>
<p class="hint" id="test-cards">{e(INVOICE_CARDS_HINT)}</p>
</form>
</section>"""
    else:
        pay = error_html
    body = f"""<main class="portal invoice" id="invoice" data-status="{e(status)}">
<div class="topbar"><div><strong>{e(invoice.get("account_name") or "")}</strong></div><span class="badge">Test mode</span></div>
<h1>Invoice <span id="invoice-number">{e(invoice.get("number") or "")}</span>
<span class="status status-{e(status)}" id="invoice-status">{e(status.title())}</span></h1>
<p class="headline" id="amount-due">{e(amount_due)} <span>{"paid" if status == "paid" else "due"}</span></p>
<p class="muted" id="billed-to">Billed to {e(invoice.get("customer_email") or invoice["customer"])}</p>
{"".join(notices)}
<ul class="lines" id="invoice-lines">{"".join(rows)}</ul>
<div class="total"><span>Amount due</span><strong id="total">{e(amount_due)}</strong></div>
{pay}
</main>"""
    return _document(f"Invoice {invoice.get('number') or ''}", body)


def _customer_email(emulator: StripeEmulator, session: Obj) -> str | None:
    customer_id = session.get("customer")
    if not isinstance(customer_id, str):
        return None
    with emulator.fake._lock:
        customer = emulator.fake.customers.get(customer_id)
        return str(customer["email"]) if customer and customer.get("email") else None


def portal_page(
    emulator: StripeEmulator,
    token: str,
    portal: Obj,
    customer: Obj | None,
    subscriptions: list[Obj],
    *,
    error: str | None = None,
) -> bytes:
    return_url = portal.get("return_url")
    back = ""
    if return_url:
        app = urlsplit(str(return_url)).netloc or str(return_url)
        back = f'<a id="return" href="{e(return_url)}">\N{LEFTWARDS ARROW} Return to {e(app)}</a>'
    who = ""
    if customer:
        who = " \N{MIDDLE DOT} ".join(e(value) for value in (customer.get("name"), customer.get("email")) if value)
    cards = [_subscription_card(emulator, token, sub) for sub in subscriptions]
    if not cards:
        cards = ['<p class="muted" id="no-subscriptions">No subscriptions.</p>']
    method, invoices = emulator.portal_extras(str(portal["customer"]))
    error_html = f'<div id="error" class="error" role="alert">{e(error)}</div>' if error else ""
    invoice_rows = []
    for invoice in invoices[:10]:
        status = str(invoice["status"])
        link = invoice.get("hosted_invoice_url")
        label = "Pay" if status == "open" else "View"
        view = f'<a class="invoice-link" href="{e(link)}">{label}</a>' if link else ""
        invoice_rows.append(
            f'<li class="invoice-row" data-status="{e(status)}"><span>{e(format_date(int(invoice["created"])))}</span>'
            f"<span>{e(format_amount(int(invoice['amount_due']), str(invoice['currency'])))}</span>"
            f'<span class="status status-{e(status)}">{e(status.title())}</span>{view}</li>'
        )
    invoices_html = (
        f'<ul class="lines" id="invoices">{"".join(invoice_rows)}</ul>'
        if invoice_rows
        else '<p class="muted" id="no-invoices">No invoices.</p>'
    )
    body = f"""<main class="portal">
<div class="topbar"><div>{back}</div><span class="badge">Test mode</span></div>
<h1>Billing</h1>
<p class="muted" id="customer">{who}</p>
{error_html}
<h2>Subscriptions</h2>
{"".join(cards)}
<p class="muted small" id="quantity-note">Changing plans or quantities is not offered in this emulated portal.</p>
<h2>Payment method</h2>
<p id="payment-method">{e(card_label(method))}</p>
<form method="post" action="{e(f"{PORTAL_PATH}{token}/payment-method")}" autocomplete="off" class="card-update">
<label for="card-number">New card number</label>
<input id="card-number" name="card_number" inputmode="numeric" placeholder="4242 4242 4242 4242">
<button id="update-card" class="secondary" type="submit">Update payment method</button>
<p class="hint" id="card-hint">{e(CARD_UPDATE_HINT)}</p>
</form>
<h2>Invoice history</h2>
{invoices_html}
</main>"""
    return _document("Billing", body)


def _subscription_card(emulator: StripeEmulator, token: str, subscription: Obj) -> str:
    sub_id = str(subscription["id"])
    status = str(subscription["status"])
    items = subscription["items"]["data"]
    lines = []
    for item in items:
        price = item["price"]
        unit = f"{format_amount(int(price['unit_amount']), price['currency'])} / {format_interval(price.get('recurring'))}"
        lines.append(
            f'<li><span class="product">{e(emulator.product_name(price))}</span> \N{MULTIPLICATION SIGN} '
            f'<span class="quantity">{e(item["quantity"])}</span> <span class="muted">({e(unit)})</span></li>'
        )
    title = " + ".join(emulator.product_name(item["price"]) for item in items)
    period_end = _period_end(subscription)
    cancels_at = _cancels_at(subscription)
    details = []
    if status in ("canceled", "incomplete_expired"):
        ended = subscription.get("ended_at") or subscription.get("canceled_at")
        if ended:
            details.append(f'<p class="muted">Canceled on {e(format_date(int(ended)))}</p>')
    else:
        if period_end is not None:
            details.append(f'<p class="muted period-end">Current period ends {e(format_date(period_end))}</p>')
        if cancels_at is not None:
            details.append(f'<p class="notice cancels-on">Cancels on {e(format_date(cancels_at))}</p>')
        elif status == "trialing" and subscription.get("trial_end"):
            details.append(f'<p class="muted">Trial ends {e(format_date(int(subscription["trial_end"])))}</p>')
    labels = {
        "cancel-at-period-end": ("Cancel plan", "secondary"),
        "resume": ("Renew plan", "secondary"),
        "cancel-now": ("Cancel immediately", "danger"),
    }
    forms = []
    for action in portal_actions(subscription):
        label, style = labels[action]
        target = f"{PORTAL_PATH}{token}/subscriptions/{sub_id}/{action}"
        forms.append(
            f'<form method="post" action="{e(target)}">'
            f'<button id="{action}" class="{style}" type="submit">{e(label)}</button></form>'
        )
    actions = f'<div class="actions">{"".join(forms)}</div>' if forms else ""
    return f"""<section class="sub" id="subscription-{e(sub_id)}" data-status="{e(status)}">
<div class="sub-head"><h3>{e(title)}</h3>
<span class="status status-{e(status)}">{e(_STATUS_LABELS.get(status, status))}</span></div>
<ul>{"".join(lines)}</ul>
{"".join(details)}
{actions}
</section>"""


# --- HTTP -----------------------------------------------------------------------------------------


class EmulatorServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that also carries its emulator (`server.emulator.deliveries`).

    shutdown() also stops the emulator's webhook worker.
    """

    daemon_threads = True
    emulator: StripeEmulator

    def shutdown(self) -> None:
        emulator = getattr(self, "emulator", None)
        if emulator is not None:
            emulator.stop()
        super().shutdown()


Response = tuple[int, dict[str, str], bytes]

_HTML = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
_JSON = {"Content-Type": "application/json", "Cache-Control": "no-store"}


def _html(status: int, page: bytes) -> Response:
    return status, dict(_HTML), page


def _json(status: int, value: object) -> Response:
    return status, dict(_JSON), json.dumps(value, indent=2).encode()


def _redirect(location: str) -> Response:
    return 303, {"Location": location, "Cache-Control": "no-store"}, b""


def _loggable(path: str) -> str:
    """A request path for a log line: Checkout, portal and invoice paths are bearer URLs, so their ids are cut."""
    for prefix in (CHECKOUT_PATH, PORTAL_PATH, INVOICE_PATH):
        if path.startswith(prefix):
            return prefix + "..."
    return path if path.startswith(("/_emulator/", "/v1/")) else "(a page)"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Separate header and body writes: without this, Nagle's algorithm stalls each response ~40 ms.
    disable_nagle_algorithm = True
    server_version = "StripeEmulator/1.0"

    @property
    def emulator(self) -> StripeEmulator:
        return cast(EmulatorServer, self.server).emulator

    def _serve(self) -> None:
        try:
            self._serve_request()
        finally:
            # An API call or a page action may have emitted events: the worker picks them up now.
            self.emulator.notify()

    def _serve_request(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        parts = urlsplit(self.path)
        if parts.path.startswith("/v1/"):
            self._serve_api(parts.path, parts.query, self.rfile.read(length) if length else b"")
            return
        if length > MAX_FORM_BYTES:
            self.close_connection = True
            self._send(*_html(413, message_page("Request too large", "The form is too large.")))
            return
        body = self.rfile.read(length) if length else b""
        try:
            response = self._route(self.command, parts.path, parts.query, body)
        except Exception as error:
            _log(f"error serving {self.command} {_loggable(parts.path)}: {type(error).__name__}")
            response = _html(500, message_page("Something went wrong", "The Stripe emulator failed on this request."))
        self._send(*response)

    def _serve_api(self, path: str, query: str, body: bytes) -> None:
        try:
            status, headers, payload = self.emulator.fake.handle(self.command, path, query, body, dict(self.headers))
        except SimulatedConnectionError:
            # Drop the connection without a response, as a network failure would.
            self.close_connection = True
            return
        self._send(status, headers, payload)

    def _send(self, status: int, headers: Mapping[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _route(self, method: str, path: str, query: str, body: bytes) -> Response:
        segments = [unquote(segment) for segment in path.strip("/").split("/")]
        if path.startswith(CHECKOUT_PATH) and len(segments) == 3:
            if method in ("GET", "HEAD"):
                return self._checkout_get(segments[2])
            if method == "POST":
                return self._checkout_post(segments[2], _form(body))
            return _html(405, message_page("Method not allowed", "Use GET or POST."))
        if path.startswith(CHECKOUT_PATH) and len(segments) == 4 and segments[3] == "3ds":
            if method in ("GET", "HEAD"):
                return self._challenge_get(segments[2])
            if method == "POST":
                return self._challenge_post(segments[2], _form(body).get("action", ""))
            return _html(405, message_page("Method not allowed", "Use GET or POST."))
        if path.startswith(PORTAL_PATH) and len(segments) == 3 and method in ("GET", "HEAD"):
            return self._portal_get(segments[2])
        if path.startswith(PORTAL_PATH) and len(segments) == 6 and segments[3] == "subscriptions":
            if method != "POST":
                return _html(405, message_page("Method not allowed", "Use POST."))
            return self._portal_post(segments[2], segments[4], segments[5])
        if path.startswith(PORTAL_PATH) and len(segments) == 4 and segments[3] == "payment-method":
            if method != "POST":
                return _html(405, message_page("Method not allowed", "Use POST."))
            return self._portal_card(segments[2], _form(body))
        if path.startswith(INVOICE_PATH) and len(segments) == 2:
            if method in ("GET", "HEAD"):
                return self._invoice_get(segments[1])
            if method == "POST":
                return self._invoice_post(segments[1], _form(body))
            return _html(405, message_page("Method not allowed", "Use GET or POST."))
        if path.startswith(INVOICE_PATH) and len(segments) == 3 and segments[2] == "3ds":
            if method in ("GET", "HEAD"):
                return self._invoice_challenge_get(segments[1])
            if method == "POST":
                return self._invoice_challenge_post(segments[1], _form(body).get("action", ""))
            return _html(405, message_page("Method not allowed", "Use GET or POST."))
        if path == THREE_D_SECURE_PATH:
            if method in ("GET", "HEAD", "POST"):
                return self._intent_challenge(method, _form(query.encode()), _form(body) if method == "POST" else {})
            return _html(405, message_page("Method not allowed", "Use GET or POST."))
        if path == "/_emulator/deliveries" and method in ("GET", "HEAD"):
            self.emulator.collect()  # what the fake emitted so far is listed, if only as pending
            return _json(200, [asdict(d) for d in self.emulator.deliveries_snapshot()])
        if path == "/_emulator/hold-webhooks":
            return self._hold(method, query, body)
        return _html(404, message_page("Page not found", "The Stripe emulator has no page at this address."))

    def _hold(self, method: str, query: str, body: bytes) -> Response:
        """POST ?seconds=N (or a form field): no delivery attempt starts for N seconds; 0 releases."""
        if method == "POST":
            values = {**_form(body), **_form(query.encode())}
            try:
                self.emulator.hold(float(values.get("seconds", "")))
            except ValueError:
                message = f"seconds must be a number between 0 and {MAX_HOLD_SECONDS:g}"
                return _json(400, {"error": {"message": message, "param": "seconds"}})
        elif method not in ("GET", "HEAD"):
            return _json(405, {"error": {"message": "Use GET or POST."}})
        return _json(200, {"held_for_seconds": round(self.emulator.held_for(), 3)})

    # --- Checkout -------------------------------------------------------------------------------

    def _checkout_unavailable(self, session: Obj) -> Response | None:
        status = session["status"]
        if session.get("ui_mode", "hosted_page") != "hosted_page":
            return _html(404, message_page("Checkout session not found", "This session has no hosted checkout page."))
        if status == "expired" or (status == "open" and self.emulator.fake.now() >= int(session["expires_at"])):
            self.emulator.end_challenge(str(session["id"]))
            link = (str(session["cancel_url"]), "\N{LEFTWARDS ARROW} Back") if session.get("cancel_url") else None
            return _html(
                410,
                message_page(
                    "This checkout session has expired",
                    "This payment page can no longer be paid. Start checkout again to subscribe.",
                    link,
                ),
            )
        if status != "open":
            self.emulator.end_challenge(str(session["id"]))
            link = (_success_url(session), "Continue") if session.get("success_url") else None
            return _html(410, message_page("This checkout session is complete", "You have already paid for this session.", link))
        return None

    def _checkout_get(self, session_id: str) -> Response:
        view = self.emulator.checkout_view(session_id)
        if view is None:
            return _html(404, message_page("Checkout session not found", "This checkout link is invalid."))
        return self._checkout_unavailable(view[0]) or _html(200, checkout_page(self.emulator, *view))

    def _checkout_post(self, session_id: str, form: dict[str, str]) -> Response:
        view = self.emulator.checkout_view(session_id)
        if view is None:
            return _html(404, message_page("Checkout session not found", "This checkout link is invalid."))
        unavailable = self._checkout_unavailable(view[0])
        if unavailable is not None:
            return unavailable
        card = re.sub(r"[\s-]+", "", form.get("card_number", ""))
        if not card:
            return _html(400, checkout_page(self.emulator, *view, error="Your card number is incomplete.", form=form))
        email, name = form.get("email", "").strip() or None, form.get("name", "").strip() or None
        if card in THREE_D_SECURE_CARDS:
            # The issuer wants the cardholder to authenticate first: nothing is charged until then.
            self.emulator.start_challenge(session_id, _Challenge(card, email, name))
            return _redirect(f"{CHECKOUT_PATH}{session_id}/3ds")
        return self._complete(session_id, view, card, email, name, form)

    def _complete(
        self,
        session_id: str,
        view: tuple[Obj, list[Obj], Obj],
        card: str,
        email: str | None,
        name: str | None,
        form: Mapping[str, str],
    ) -> Response:
        try:
            self.emulator.fake.complete_checkout(session_id, card, email=email, name=name)
        except CardDeclined:
            return _html(402, checkout_page(self.emulator, *view, error="Your card was declined.", form=form))
        except FakeStripeError:
            # Completed or expired since the page was read.
            refreshed = self.emulator.checkout_view(session_id)
            unavailable = self._checkout_unavailable(refreshed[0]) if refreshed else None
            return unavailable or _html(409, message_page("Checkout unavailable", "This checkout session can no longer be paid."))
        # The webhook worker delivers the events after this redirect, as Stripe does.
        return _redirect(_success_url(view[0]))

    def _challenge_get(self, session_id: str) -> Response:
        view = self.emulator.checkout_view(session_id)
        if view is None:
            return _html(404, message_page("Checkout session not found", "This checkout link is invalid."))
        unavailable = self._checkout_unavailable(view[0])
        if unavailable is not None:
            return unavailable
        challenge = self.emulator.challenge(session_id)
        if challenge is None:
            return _redirect(CHECKOUT_PATH + session_id)
        return _html(200, challenge_page(self.emulator, view[0], view[1], challenge))

    def _challenge_post(self, session_id: str, action: str) -> Response:
        view = self.emulator.checkout_view(session_id)
        if view is None:
            return _html(404, message_page("Checkout session not found", "This checkout link is invalid."))
        unavailable = self._checkout_unavailable(view[0])
        if unavailable is not None:
            return unavailable
        if action not in ("complete", "fail"):
            return _html(400, message_page("Unknown action", "Choose Complete or Fail."))
        challenge = self.emulator.end_challenge(session_id)
        if challenge is None:
            return _redirect(CHECKOUT_PATH + session_id)
        form = {"email": challenge.email or "", "name": challenge.name or ""}
        if action == "fail":
            # As Stripe: back on the payment page, the session still open, nothing created or charged.
            return _html(402, checkout_page(self.emulator, *view, error=AUTHENTICATION_FAILED, form=form))
        return self._complete(session_id, view, challenge.card, challenge.email, challenge.name, form)

    # --- Customer Portal ------------------------------------------------------------------------

    def _portal_get(self, token: str) -> Response:
        view = self.emulator.portal_view(token)
        if view is None:
            return _html(404, message_page("Portal session not found", "This billing portal link is invalid."))
        return _html(200, portal_page(self.emulator, token, *view))

    def _portal_post(self, token: str, subscription_id: str, action: str) -> Response:
        view = self.emulator.portal_view(token)
        if view is None:
            return _html(404, message_page("Portal session not found", "This billing portal link is invalid."))
        subscription = next((sub for sub in view[2] if sub["id"] == subscription_id), None)
        if subscription is None or action not in PORTAL_ACTIONS:
            return _html(404, message_page("Subscription not found", "This customer has no such subscription."))
        back = (PORTAL_PATH + token, "\N{LEFTWARDS ARROW} Back to billing")
        if action not in portal_actions(subscription):
            return _html(409, message_page("Not available", "This subscription can no longer be changed this way.", back))
        fake = self.emulator.fake
        try:
            if action == "cancel-now":
                fake.cancel_subscription(subscription_id)
            else:
                # Flexible billing mode: the portal schedules the cancellation as cancel_at (the
                # period end), not cancel_at_period_end; renewing clears it.
                fake.update_subscription(subscription_id, cancel_at="max_period_end" if action == "cancel-at-period-end" else "")
        except FakeStripeError as error:
            return _html(409, message_page("Not available", str(error), back))
        return _redirect(f"{self.emulator.base_url}{PORTAL_PATH}{token}")

    def _portal_card(self, token: str, form: Mapping[str, str]) -> Response:
        """Update payment method: the card becomes the default of the customer and of their subscriptions."""
        view = self.emulator.portal_view(token)
        if view is None:
            return _html(404, message_page("Portal session not found", "This billing portal link is invalid."))
        card = re.sub(r"[\s-]+", "", form.get("card_number", ""))
        error = None
        if not card:
            error = "Your card number is incomplete."
        else:
            try:
                self.emulator.fake.set_default_card(str(view[0]["customer"]), card)
            except CardDeclined as declined:
                error = (
                    "Your card number is invalid." if declined.decline_code == "card_not_supported" else "Your card was declined."
                )
            except FakeStripeError:
                error = "This customer can no longer be updated."
        if error is not None:
            return _html(402, portal_page(self.emulator, token, *view, error=error))
        return _redirect(f"{self.emulator.base_url}{PORTAL_PATH}{token}")

    # --- hosted invoice page --------------------------------------------------------------------

    def _invoice_page(
        self, token: str, status: int = 200, *, error: str | None = None, form: Mapping[str, str] | None = None
    ) -> Response:
        view = self.emulator.invoice_view(token)
        if view is None:
            return _html(404, message_page("Invoice not found", "This invoice link is invalid."))
        return _html(status, invoice_page(token, *view, error=error, form=form))

    def _invoice_get(self, token: str) -> Response:
        return self._invoice_page(token)

    def _invoice_post(self, token: str, form: dict[str, str]) -> Response:
        """Pay: with the saved card (pay_with=saved) or the card typed in (card_number)."""
        view = self.emulator.invoice_view(token)
        if view is None:
            return _html(404, message_page("Invoice not found", "This invoice link is invalid."))
        invoice = view[0]
        if invoice["status"] != "open":
            return self._invoice_page(token, 409)
        card: str | None = None
        if form.get("pay_with", "card") != "saved":
            card = re.sub(r"[\s-]+", "", form.get("card_number", ""))
            if not card:
                return self._invoice_page(token, 400, error="Your card number is incomplete.", form=form)
        fake = self.emulator.fake
        try:
            fake.pay_invoice(str(invoice["id"]), card)
        except CardDeclined:
            return self._invoice_page(token, 402, error="Your card number is invalid.", form=form)
        except FakeStripeError:
            return self._invoice_page(token, 409)
        intent = fake.invoice_payment_intent(str(invoice["id"])) or {}
        if intent.get("status") == "succeeded":
            return _redirect(f"{INVOICE_PATH}{token}")
        if intent.get("status") == "requires_action":
            return _redirect(f"{INVOICE_PATH}{token}/3ds")
        return self._invoice_page(token, 402, form={})

    def _invoice_challenge_get(self, token: str) -> Response:
        view = self.emulator.invoice_view(token)
        if view is None:
            return _html(404, message_page("Invoice not found", "This invoice link is invalid."))
        invoice, intent, _ = view
        if invoice["status"] != "open" or intent is None or intent["status"] != "requires_action":
            return _redirect(f"{INVOICE_PATH}{token}")
        amount = format_amount(int(intent["amount"]), str(intent["currency"]))
        return _html(200, challenge_document(amount, _intent_last4(self.emulator, intent), f"{INVOICE_PATH}{token}/3ds"))

    def _invoice_challenge_post(self, token: str, action: str) -> Response:
        view = self.emulator.invoice_view(token)
        if view is None:
            return _html(404, message_page("Invoice not found", "This invoice link is invalid."))
        if action not in ("complete", "fail"):
            return _html(400, message_page("Unknown action", "Choose Complete or Fail."))
        invoice, intent, _ = view
        if invoice["status"] != "open" or intent is None or intent["status"] != "requires_action":
            return _redirect(f"{INVOICE_PATH}{token}")
        try:
            self.emulator.fake.authenticate_payment(str(intent["id"]), succeed=action == "complete")
        except FakeStripeError:
            return _redirect(f"{INVOICE_PATH}{token}")
        if action == "fail":
            return self._invoice_page(token, 402, error=AUTHENTICATION_FAILED)
        return _redirect(f"{INVOICE_PATH}{token}")

    # --- 3-D Secure for a PaymentIntent (what Stripe.js runs for next_action) -------------------

    def _intent_challenge(self, method: str, query: dict[str, str], form: dict[str, str]) -> Response:
        intent_id = query.get("payment_intent", "")
        secret = query.get("payment_intent_client_secret", "")
        view = self.emulator.intent_view(intent_id, secret)
        if view is None:
            return _html(404, message_page("Authentication not found", "This authentication link is invalid."))
        intent, _ = view
        return_url = query.get("return_url", "")
        if return_url and urlsplit(return_url).scheme not in ("http", "https"):
            return _html(400, message_page("Invalid return_url", "return_url must be an http(s) URL."))
        if intent["status"] != "requires_action":
            return _html(409, message_page("Nothing to authenticate", f"This payment is {intent['status']}."))
        if method != "POST":
            amount = format_amount(int(intent["amount"]), str(intent["currency"]))
            action = f"{THREE_D_SECURE_PATH}?{urlencode(query)}"
            return _html(200, challenge_document(amount, _intent_last4(self.emulator, intent), action))
        action = form.get("action", "")
        if action not in ("complete", "fail"):
            return _html(400, message_page("Unknown action", "Choose Complete or Fail."))
        try:
            self.emulator.fake.authenticate_payment(intent_id, succeed=action == "complete")
        except FakeStripeError:
            return _html(409, message_page("Nothing to authenticate", "This payment no longer needs authentication."))
        outcome = "succeeded" if action == "complete" else "failed"
        if return_url:
            extra = urlencode({"payment_intent": intent_id, "payment_intent_client_secret": secret, "redirect_status": outcome})
            return _redirect(f"{return_url}{'&' if urlsplit(return_url).query else '?'}{extra}")
        if action == "fail":
            return _html(402, message_page("Authentication failed", AUTHENTICATION_FAILED))
        return _html(200, message_page("Authentication complete", "Your payment was confirmed. You can close this window."))

    do_GET = _serve
    do_HEAD = _serve
    do_POST = _serve
    do_DELETE = _serve

    def log_message(self, format: str, *args: object) -> None:
        return None


def _intent_last4(emulator: StripeEmulator, intent: Obj) -> str:
    with emulator.fake._lock:
        method = emulator.fake.payment_methods.get(str(intent.get("payment_method") or ""))
        return str(((method or {}).get("card") or {}).get("last4") or "")


def _success_url(session: Obj) -> str:
    """Stripe fills in the {CHECKOUT_SESSION_ID} template variable of success_url."""
    return str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", str(session["id"]))


def _form(body: bytes) -> dict[str, str]:
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items() if values}


def _bind(host: str, port: int) -> tuple[EmulatorServer, str]:
    server = EmulatorServer((host, port), _Handler)
    bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
    if bound_host in ("0.0.0.0", ""):  # noqa: S104 - the URL browsers use for a wildcard bind
        bound_host = "127.0.0.1"
    return server, f"http://{bound_host}:{bound_port}"


def _start(server: EmulatorServer, emulator: StripeEmulator) -> None:
    server.emulator = emulator
    emulator.start()
    # A short poll interval makes shutdown() quick (tests start and stop many servers).
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="stripe-emulator", daemon=True)
    thread.start()


def serve_emulator(
    fake: FakeStripe, *, webhook_url: str, webhook_secret: str, host: str = "127.0.0.1", port: int = 0
) -> tuple[EmulatorServer, str]:
    """Serve `fake` (API, hosted pages, webhooks) in a daemon thread: (server, base URL).

    Stop with server.shutdown() and server.server_close(). The fake's URL bases should point at
    `{base}/c/pay/`, `{base}/p/session/`, `{base}/i/` and `{base}/` (hooks, for 3-D Secure):
    start_emulator does that for you.
    """
    server, base_url = _bind(host, port)
    _start(server, StripeEmulator(fake, webhook_url=webhook_url, webhook_secret=webhook_secret, base_url=base_url))
    return server, base_url


def start_emulator(
    *,
    webhook_url: str,
    webhook_secret: str,
    host: str = "127.0.0.1",
    port: int = 0,
    fake: FakeStripe | None = None,
) -> tuple[EmulatorServer, str, FakeStripe]:
    """Bind, point the fake's Checkout, portal, hosted invoice and 3-D Secure URLs at this server
    (creating the fake if none), serve."""
    server, base_url = _bind(host, port)
    try:
        if fake is None:
            fake = FakeStripe()
        with fake._lock:
            fake.checkout_url_base = f"{base_url}{CHECKOUT_PATH}"
            fake.portal_url_base = f"{base_url}{PORTAL_PATH}"
            fake.invoice_url_base = f"{base_url}{INVOICE_PATH}"
            fake.hooks_url_base = f"{base_url}/"
        _start(server, StripeEmulator(fake, webhook_url=webhook_url, webhook_secret=webhook_secret, base_url=base_url))
    except BaseException:
        server.server_close()
        raise
    return server, base_url, fake

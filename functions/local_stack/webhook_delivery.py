"""The Stripe emulator's webhooks: every event the fake emits, POSTed and signed as Stripe does.

A background worker delivers them after the browser was redirected, not before. Each event's first
attempt waits `delivery_delay` seconds; a failed attempt (no 2xx, a redirect, a timeout, a refused
connection) is retried with Stripe's exponential backoff scaled down from 3 days to about 5 minutes
(`retry_delays`, the last one repeating, `max_attempts` in all). First attempts go out in emission
order, one at a time; a retried event is passed by later ones, so the endpoint sees Stripe's lack of
ordering too. `send` is the transport (a signed POST to the webhook URL unless replaced, e.g. by
eventbridge_delivery's queue).
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from functions.local_stack.emulator_log import log
from tests.stripe_fake import FakeStripe
from tests.stripe_fake.objects import Obj
from tests.support.stripe_signature import signature_header

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
    """The mutable record behind a Delivery (guarded by WebhookDeliveries._cond)."""

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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Stripe does not follow redirects from a webhook endpoint: a 3xx is a failed delivery."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        return None


class WebhookDeliveries:
    """The deliveries (done and pending) of the fake's events to one webhook URL.

    start() runs the delivery worker; stop() ends it. Tune `delivery_delay`, `retry_delays`,
    `max_attempts` and `timeout` before or while it runs; hold(seconds) holds deliveries back.
    """

    def __init__(
        self, fake: FakeStripe, *, webhook_url: str, webhook_secret: str, delivery_delay: float = DELIVERY_DELAY_SECONDS
    ) -> None:
        self.fake = fake
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
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
        # No proxies (the endpoint is local) and no redirects (as Stripe).
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
        # One attempt at one event's body: (HTTP status or None, a reason without the body or the secret).
        self.send: Callable[[bytes], tuple[int | None, str]] = self._post

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
                log(f"{pending} webhook deliveries still pending at shutdown were dropped")

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
                log(f"webhook worker error: {type(error).__name__}")
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
        status, reason = self.send(task.body)
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
                log(f"{what} delivered on attempt {attempts}")
        elif retry_in is None:
            log(f"WARNING: {what} failed {attempts} times, giving up: {reason}")
        elif attempts in (1, 4):
            log(f"{what} failed (attempt {attempts} of up to {self.max_attempts}): {reason}; retrying in {retry_in:g} s")

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

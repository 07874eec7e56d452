"""FakeStripe: a stateful, strict, in-process fake of the Stripe API (2026-10-28.endive).

`handle()` is the whole HTTP surface (auth, API version, idempotency, fault injection, routing);
the simulation helpers (complete_checkout, fail_payment, ...) live in lifecycle.py.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from tests.stripe_fake import objects
from tests.stripe_fake.api import Api, Handler
from tests.stripe_fake.constants import API_VERSION, TEST_API_KEY
from tests.stripe_fake.errors import ParamError, SimulatedConnectionError, StripeAPIError
from tests.stripe_fake.objects import Obj
from tests.stripe_fake.params import Raw, decode_form
from tests.stripe_fake.rate_limit import RATE_LIMITED_REASON, RateLimiter, rate_limit_error

IDEMPOTENCY_KEY_TTL = 24 * 60 * 60


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it. `status` is None when the client got a connection error instead."""

    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    status: int | None
    request_id: str
    replayed: bool = False
    fault: str | None = None


@dataclass
class _Fault:
    remaining: int
    status: int
    connection_error: bool
    path_prefix: str | None
    should_retry: bool | None
    lose_response: bool


@dataclass(frozen=True)
class _IdempotentResult:
    method: str
    path: str
    params: dict[str, Raw]
    status: int
    body: bytes
    request_id: str
    first_used: int


def listify(raw: Raw) -> Any:
    """Decoded params for inspection: hashes keyed 0..n-1 become lists."""
    if isinstance(raw, str):
        return raw
    keys = list(raw)
    if keys and all(key.isdigit() for key in keys) and sorted(int(k) for k in keys) == list(range(len(keys))):
        return [listify(raw[str(n)]) for n in range(len(keys))]
    return {key: listify(value) for key, value in raw.items()}


def _mask_key(key: str) -> str:
    prefix = "_".join(key.split("_")[:2]) + "_" if key.count("_") >= 2 else ""
    hidden = max(len(key) - len(prefix) - 4, 4)
    return f"{prefix}{'*' * hidden}{key[-4:]}"


def _fault_error(status: int) -> StripeAPIError:
    if status == 429:
        return rate_limit_error()
    if status == 409:
        return StripeAPIError(
            409,
            "This object cannot be accessed right now because another API request or Stripe process is currently "
            "accessing it. If you see this error intermittently, retry the request. If you see this error frequently "
            "and are making multiple concurrent requests to a single object, make your requests serially or at a lower rate.",
            code="lock_timeout",
        )
    if status == 401:
        return StripeAPIError(401, "Invalid API Key provided: sk_test_********fake")
    if status == 402:
        return StripeAPIError(
            402, "Your card was declined.", type_="card_error", code="card_declined", extra={"decline_code": "generic_decline"}
        )
    if status == 403:
        return StripeAPIError(403, "The provided key does not have the required permissions for this endpoint.")
    if status == 404:
        return StripeAPIError(404, "No such object (injected failure).", code="resource_missing")
    if status >= 500:
        return StripeAPIError(
            status,
            "Sorry, something went wrong. We've already been notified of the problem, but if you need any help, "
            "you can reach us at support.stripe.com/contact.",
            type_="api_error",
        )
    return StripeAPIError(status, "Injected failure.")


class FakeStripe(Api):
    """A stateful fake of the Stripe API; thread-safe (one lock around all state).

    Inspect `requests`, `customers`, `checkout_sessions`, `portal_sessions`, `subscriptions`,
    `invoices`, `invoice_items` (prorations; `invoice` None while pending), `payment_methods`,
    `payment_intents`, `invoice_payments`, `prices`, `products` and `events` (every event emitted,
    in emission order).
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = (TEST_API_KEY,),
        clock: Callable[[], float] = time.time,
        checkout_url_base: str = "https://checkout.stripe.com/c/pay/",
        portal_url_base: str = "https://billing.stripe.com/p/session/",
        invoice_url_base: str = "https://invoice.stripe.com/i/acct_fake/",
        invoice_pdf_url_base: str = "https://pay.stripe.com/invoice/acct_fake/",
        hooks_url_base: str = "https://hooks.stripe.com/",
        default_portal_configuration: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            api_keys=api_keys,
            clock=clock,
            checkout_url_base=checkout_url_base,
            portal_url_base=portal_url_base,
            invoice_url_base=invoice_url_base,
            invoice_pdf_url_base=invoice_pdf_url_base,
            hooks_url_base=hooks_url_base,
            default_portal_configuration=default_portal_configuration,
            seed=seed,
        )
        self.requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._idempotency: dict[str, _IdempotentResult] = {}
        self._route_table = self._routes()
        self.rate_limiter: RateLimiter | None = None

    # --- setup and inspection -------------------------------------------------------------------

    def add_price(
        self,
        price_id: str,
        *,
        product_name: str,
        unit_amount: int,
        currency: str = "usd",
        interval: str | None = "month",
        active: bool = True,
        interval_count: int = 1,
        product_id: str | None = None,
        lookup_key: str | None = None,
        nickname: str | None = None,
    ) -> Obj:
        """Create a product and a price (recurring every `interval`, or one-time when interval is None)."""
        if interval not in (None, "day", "week", "month", "year"):
            raise ValueError(f"interval must be day, week, month, year or None, not {interval!r}")
        with self._lock:
            if lookup_key is not None and any(p["lookup_key"] == lookup_key for p in self.prices.values()):
                raise ValueError(f"a price already has the lookup key {lookup_key!r} (Stripe keeps them unique)")
            now = self.now()
            product_id = product_id or self.new_id("prod_", 14)
            if product_id not in self.products:
                self.products[product_id] = objects.product(product_id, product_name, now, price_id)
                self._register(product_id)
            price = objects.price(
                price_id,
                product_id=product_id,
                unit_amount=unit_amount,
                currency=currency,
                interval=interval,
                interval_count=interval_count,
                active=active,
                created=now,
                lookup_key=lookup_key,
                nickname=nickname,
            )
            self.prices[price_id] = price
            self._register(price_id)
            return copy.deepcopy(price)

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 500,
        connection_error: bool = False,
        path_prefix: str | None = None,
        should_retry: bool | None = None,
        lose_response: bool = False,
    ) -> None:
        """Make the next `count` requests (whose path starts with `path_prefix`) fail without changing state.

        `status` gives Stripe's error body for that status; `connection_error` makes the client see a
        broken connection. `lose_response` (implies a connection error) executes the request first and
        then loses the response, the case idempotency keys exist for.
        """
        with self._lock:
            self._faults.append(
                _Fault(count, status, connection_error or lose_response, path_prefix, should_retry, lose_response)
            )

    def limit_rate(
        self,
        per_second: float | None,
        *,
        methods: Iterable[str] = ("GET",),
        clock: Callable[[], float] = time.monotonic,
    ) -> RateLimiter | None:
        """Answer requests of `methods` (reads by default) beyond `per_second` with Stripe's 429
        (tests.stripe_fake.rate_limit); None turns the limiter off. Returns the limiter, whose
        `allowed` and `limited` count the requests it let through and refused."""
        with self._lock:
            self.rate_limiter = None if per_second is None else RateLimiter(per_second, tuple(methods), clock)
            return self.rate_limiter

    def clear_faults(self) -> None:
        """Disarm every fault fail_next armed that has not fired yet."""
        with self._lock:
            self._faults.clear()

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def events_of_type(self, *types: str) -> list[Obj]:
        with self._lock:
            return [event for event in self.events if event["type"] in types]

    # --- HTTP surface ---------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """Serve one HTTP request: returns (status, headers, JSON body).

        Raises SimulatedConnectionError when an injected fault asks for a broken connection.
        """
        method = method.upper()
        lowered = {name.lower(): value for name, value in headers.items()}
        with self._lock:
            request_id = self.new_id("req_", 14)
            idempotency_key = lowered.get("idempotency-key") if method == "POST" else None
            text = body.decode("utf-8", errors="replace") if method == "POST" else query
            decode_error: ParamError | None = None
            try:
                raw = decode_form(text)
            except ParamError as error:
                raw, decode_error = {}, error

            def record(status: int | None, *, replayed: bool = False, fault: str | None = None) -> None:
                self.requests.append(
                    RecordedRequest(method, path, listify(raw), idempotency_key, status, request_id, replayed, fault)
                )

            response_headers = {"content-type": "application/json", "request-id": request_id, "stripe-version": API_VERSION}
            if idempotency_key is not None:
                response_headers["idempotency-key"] = idempotency_key

            fault = self._take_fault(path)
            if fault is not None and not fault.lose_response:
                if fault.should_retry is not None:
                    response_headers["stripe-should-retry"] = "true" if fault.should_retry else "false"
                if fault.connection_error:
                    record(None, fault="connection_error")
                    raise SimulatedConnectionError(f"injected connection error for {method} {path}")
                record(fault.status, fault=f"status_{fault.status}")
                return fault.status, response_headers, _dump(_fault_error(fault.status).body())

            limiter = self.rate_limiter
            if fault is None and limiter is not None and limiter.applies_to(method) and not limiter.take():
                record(429, fault="rate_limited")
                response_headers["stripe-rate-limited-reason"] = RATE_LIMITED_REASON
                return 429, response_headers, _dump(rate_limit_error().body())

            status, payload, replayed = self._process(method, path, raw, decode_error, lowered, request_id, idempotency_key)
            if replayed is not None:
                response_headers["idempotent-replayed"] = "true"
                response_headers["original-request"] = replayed
            if fault is not None:
                record(status, replayed=replayed is not None, fault="response_lost")
                raise SimulatedConnectionError(f"injected lost response for {method} {path}")
            record(status, replayed=replayed is not None)
            return status, response_headers, payload

    def _take_fault(self, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.path_prefix is None or path.startswith(fault.path_prefix):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _process(
        self,
        method: str,
        path: str,
        raw: dict[str, Raw],
        decode_error: ParamError | None,
        headers: dict[str, str],
        request_id: str,
        idempotency_key: str | None,
    ) -> tuple[int, bytes, str | None]:
        """(status, body, original request id when replayed)."""
        try:
            self._authenticate(headers)
            version = headers.get("stripe-version")
            if version is not None and version != API_VERSION:
                raise StripeAPIError(
                    400,
                    f"Invalid Stripe API version: {version}. The Stripe fake only speaks {API_VERSION}.",
                    stored=False,
                )
        except StripeAPIError as error:
            return error.status, _dump(error.body()), None

        self._run_clock()
        now = self.now()
        if idempotency_key is not None:
            previous = self._idempotency.get(idempotency_key)
            if previous is not None and now - previous.first_used >= IDEMPOTENCY_KEY_TTL:
                del self._idempotency[idempotency_key]
                previous = None
            if previous is not None:
                if (previous.method, previous.path) != (method, path):
                    message = (
                        "Keys for idempotent requests can only be used for the same endpoint they were first used for "
                        f"('{previous.method} {previous.path}' vs '{method} {path}'). Try using a key other than "
                        f"'{idempotency_key}' if you meant to execute a different request."
                    )
                    return 400, _dump(StripeAPIError(400, message, type_="idempotency_error").body()), None
                if previous.params != raw:
                    message = (
                        "Keys for idempotent requests can only be used with the same parameters they were first used "
                        f"with. Try using a key other than '{idempotency_key}' if you meant to execute a different request."
                    )
                    return 400, _dump(StripeAPIError(400, message, type_="idempotency_error").body()), None
                return previous.status, previous.body, previous.request_id

        stored = True
        self._request_context = (request_id, idempotency_key)
        checkpoint = None
        if method != "GET":
            route = self._route(method, path)
            checkpoint = self._checkpoint(shallow=route is not None and route[0].__name__ in self._ADDS_OR_REPLACES_ONLY)
        try:
            if decode_error is not None:
                raise decode_error
            status, obj = self._dispatch(method, path, raw)
            payload = _dump(obj)
        except StripeAPIError as error:
            # A failed request changes nothing, even when it failed late (e.g. on an `expand` path),
            # unless what it did stands (a declined payment attempt is recorded).
            if checkpoint is not None and not error.keep_changes:
                self._rollback(checkpoint)
            status, payload, stored = error.status, _dump(error.body()), error.stored
        except BaseException:
            if checkpoint is not None:
                self._rollback(checkpoint)
            raise
        finally:
            self._request_context = (None, None)
        if idempotency_key is not None and stored:
            self._idempotency[idempotency_key] = _IdempotentResult(method, path, raw, status, payload, request_id, now)
        return status, payload, None

    def _authenticate(self, headers: dict[str, str]) -> None:
        authorization = headers.get("authorization", "").strip()
        key = ""
        if authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
        elif authorization.lower().startswith("basic "):
            try:
                key = base64.b64decode(authorization[6:].strip()).decode("utf-8").split(":", 1)[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        if not key:
            raise StripeAPIError(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). "
                "See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
                stored=False,
            )
        if key not in self.api_keys:
            raise StripeAPIError(401, f"Invalid API Key provided: {_mask_key(key)}", stored=False)

    def _route(self, method: str, path: str) -> tuple[Handler, tuple[str, ...]] | None:
        """The handler of a request and the ids in its path, or None for an unknown URL."""
        for route_method, pattern, handler in self._route_table:
            match = pattern.match(path)
            if match is not None and route_method == method:
                return handler, tuple(unquote(group) for group in match.groups())
        return None

    def _dispatch(self, method: str, path: str, raw: dict[str, Raw]) -> tuple[int, Obj]:
        route = self._route(method, path)
        if route is not None:
            handler, ids = route
            return handler(raw, ids)
        raise StripeAPIError(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at "
            "https://support.stripe.com/.",
            stored=False,
        )


def _dump(obj: Obj) -> bytes:
    return json.dumps(obj, indent=2).encode("utf-8")

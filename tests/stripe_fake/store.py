"""The fake's state and the primitives every endpoint and simulation step builds on.

All objects are stored as JSON-ready dicts in their current Stripe shape; responses and event
payloads are deep copies (snapshots), so later changes never leak into what was already sent.
"""

from __future__ import annotations

import copy
import pickle
import random
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tests.stripe_fake import objects
from tests.stripe_fake.constants import TEST_API_KEY
from tests.stripe_fake.errors import FakeStripeError, StripeAPIError
from tests.stripe_fake.objects import Obj

_ALNUM = string.ascii_letters + string.digits

# Which fields of which object types can be expanded (the id is replaced by the object).
EXPANDABLE: dict[str, frozenset[str]] = {
    "checkout.session": frozenset({"customer", "subscription", "invoice", "payment_intent", "setup_intent", "line_items"}),
    "subscription": frozenset({"customer", "latest_invoice", "default_payment_method", "schedule", "pending_setup_intent"}),
    # payments and confirmation_secret are includable: absent unless expanded.
    "invoice": frozenset({"customer", "default_payment_method", "payments", "confirmation_secret"}),
    "invoice_payment": frozenset({"invoice"}),
    "invoice_payment.payment": frozenset({"payment_intent"}),
    "payment_intent": frozenset({"customer", "payment_method", "latest_charge"}),
    "payment_method": frozenset({"customer"}),
    "subscription_details": frozenset({"subscription"}),
    "price": frozenset({"product"}),
    "plan": frozenset({"product"}),
    "product": frozenset({"default_price"}),
    "customer": frozenset({"default_source", "test_clock"}),
    "invoice_settings": frozenset({"default_payment_method"}),
    "billing_portal.session": frozenset(),
    "event": frozenset(),
}  # fmt: skip
# Stripe: "Expansions have a maximum depth of four levels (for example, the deepest expansion allowed
# when listing charges is data.payment_intent.customer.default_source)": a list's `data` counts.
MAX_EXPAND_DEPTH = 4
# Includable invoice fields (present only when expanded).
INVOICE_INCLUDABLE = ("payments", "confirmation_secret")


class Charge(NamedTuple):
    """One line of an invoice being built: the (subscription item snapshot) it bills, its amount, ...

    `invoice_item` is the ii_... the line comes from (prorations), None for a subscription item's own line.
    """

    item: Obj
    amount: int
    description: str
    period: tuple[int, int]
    proration: bool
    invoice_item: str | None = None


@dataclass
class SessionPrivate:
    """What a Checkout Session keeps that its API object does not show."""

    line_items: list[Obj]
    subscription_data: dict[str, Any]
    customer_update: dict[str, Any] = field(default_factory=dict)


class Store:
    """State, ids, clock, events and the shared building blocks."""

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
        self.api_keys = frozenset(api_keys)
        self.checkout_url_base = checkout_url_base
        self.portal_url_base = portal_url_base
        # hosted_invoice_url = invoice_url_base + token, invoice_pdf = invoice_pdf_url_base + token + "/pdf";
        # 3-D Secure pages (next_action) under hooks_url_base.
        self.invoice_url_base = invoice_url_base
        self.invoice_pdf_url_base = invoice_pdf_url_base
        self.hooks_url_base = hooks_url_base
        self._clock = clock
        self._clock_offset = 0
        self._lock = threading.RLock()
        self._random = random.Random(seed)
        self._seq = 0
        self._order: dict[str, int] = {}

        self.products: dict[str, Obj] = {}
        self.prices: dict[str, Obj] = {}
        self.customers: dict[str, Obj] = {}
        self.checkout_sessions: dict[str, Obj] = {}
        self.portal_sessions: dict[str, Obj] = {}
        self.portal_configurations: dict[str, Obj] = {}
        self.subscriptions: dict[str, Obj] = {}
        self.invoices: dict[str, Obj] = {}
        self.payment_methods: dict[str, Obj] = {}
        self.payment_intents: dict[str, Obj] = {}
        self.invoice_payments: dict[str, Obj] = {}
        # What API objects never show: the test card number behind each payment method, the hosted
        # invoice page token of each invoice, and each invoice's default invoice payment.
        self._pm_cards: dict[str, str] = {}
        self._invoice_tokens: dict[str, str] = {}
        self._invoice_default_payment: dict[str, str] = {}
        # Invoice items (ii_...): prorations, pending (invoice None) until an invoice takes them.
        self.invoice_items: dict[str, Obj] = {}
        self.events: list[Obj] = []
        self._events_by_id: dict[str, Obj] = {}
        self._session_private: dict[str, SessionPrivate] = {}
        self._default_portal_configuration: str | None = None
        if default_portal_configuration:
            self._default_portal_configuration = self._add_portal_configuration(self.new_id("bpc_"), is_default=True)

        # The request whose handling emits events (None for simulated customer/Stripe actions).
        self._request_context: tuple[str | None, str | None] = (None, None)
        self._batch: list[Obj] | None = None

    # --- clock and ids --------------------------------------------------------------------------

    def now(self) -> int:
        """The fake's current time: the injected clock plus advance_clock() offsets."""
        return int(self._clock()) + self._clock_offset

    def advance_clock(self, seconds: int) -> None:
        """Move the fake's time forward (on top of the injected clock)."""
        with self._lock:
            self._clock_offset += seconds

    def new_id(self, prefix: str, length: int = 24) -> str:
        return prefix + "".join(self._random.choice(_ALNUM) for _ in range(length))

    def _register(self, object_id: str) -> None:
        self._seq += 1
        self._order[object_id] = self._seq

    def _add_portal_configuration(self, config_id: str, *, is_default: bool) -> str:
        now = self.now()
        self.portal_configurations[config_id] = {
            "id": config_id,
            "object": "billing_portal.configuration",
            "active": True,
            "application": None,
            "created": now,
            "is_default": is_default,
            "livemode": False,
            "metadata": {},
            "name": None,
            "updated": now,
        }
        return config_id

    # --- transactions ---------------------------------------------------------------------------

    _STATE_ATTRIBUTES = (
        "products",
        "prices",
        "customers",
        "checkout_sessions",
        "portal_sessions",
        "portal_configurations",
        "subscriptions",
        "invoices",
        "payment_methods",
        "payment_intents",
        "invoice_payments",
        "invoice_items",
        "_session_private",
        "_pm_cards",
        "_invoice_tokens",
        "_invoice_default_payment",
    )
    # Only ever added to: a shallow copy is enough.
    _APPEND_ONLY_ATTRIBUTES = ("_events_by_id", "_order", "_seq")

    def _checkpoint(self, *, shallow: bool = False) -> dict[str, Any]:
        """A copy of all state, so that a request that fails halfway leaves no trace (see _rollback).

        `shallow` copies the collections but not the objects: enough for a request that only adds
        objects or replaces stored ones whole (never changes one in place), and O(1) per object.
        """
        saved: dict[str, Any] = {}
        if shallow:
            saved["collections"] = {name: copy.copy(getattr(self, name)) for name in self._STATE_ATTRIBUTES}
        else:
            # One pickle of everything (several times faster than deepcopy; unpickled only on rollback).
            state = tuple(getattr(self, name) for name in self._STATE_ATTRIBUTES)
            saved["state"] = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        saved.update({name: copy.copy(getattr(self, name)) for name in self._APPEND_ONLY_ATTRIBUTES})
        saved["events"] = len(self.events)
        return saved

    def _rollback(self, saved: dict[str, Any]) -> None:
        if "collections" in saved:
            restored: dict[str, Any] = dict(saved["collections"])
        else:
            state = pickle.loads(saved["state"])  # noqa: S301 (bytes this object pickled itself)
            restored = dict(zip(self._STATE_ATTRIBUTES, state, strict=True))
        restored.update({name: saved[name] for name in self._APPEND_ONLY_ATTRIBUTES})
        for name, value in restored.items():
            current = getattr(self, name)
            if isinstance(current, dict):
                current.clear()
                current.update(value)
            else:
                setattr(self, name, value)
        del self.events[saved["events"] :]

    # --- events ---------------------------------------------------------------------------------

    def _emit(self, type_: str, obj: Obj, previous_attributes: Obj | None = None) -> Obj:
        request_id, idempotency_key = self._request_context
        event = objects.event(
            self.new_id("evt_"),
            type_=type_,
            created=self.now(),
            obj=copy.deepcopy(obj),
            previous_attributes=copy.deepcopy(previous_attributes) if previous_attributes is not None else None,
            request_id=request_id,
            idempotency_key=idempotency_key,
        )
        self.events.append(event)
        self._events_by_id[event["id"]] = event
        self._register(event["id"])
        if self._batch is not None:
            self._batch.append(event)
        return event

    @contextmanager
    def _collect(self) -> Iterator[list[Obj]]:
        """Collect the events emitted inside the block (the return value of a simulation step)."""
        with self._lock:
            self._run_clock()
            batch: list[Obj] = []
            self._batch = batch
            try:
                yield batch
            finally:
                self._batch = None

    # --- lookups --------------------------------------------------------------------------------

    def _subscription(self, subscription_id: str) -> Obj:
        try:
            return self.subscriptions[subscription_id]
        except KeyError:
            raise FakeStripeError(f"No such subscription: '{subscription_id}'") from None

    def _live_customer(self, customer_id: str, *, param: str) -> Obj:
        found = self.customers.get(customer_id)
        if found is None or found.get("deleted"):
            raise StripeAPIError(400, f"No such customer: '{customer_id}'", code="resource_missing", param=param)
        return found

    def _resolve(self, object_id: str) -> Obj | None:
        for collection in (
            self.customers,
            self.subscriptions,
            self.invoices,
            self.prices,
            self.products,
            self.checkout_sessions,
            self.payment_methods,
            self.payment_intents,
            self.invoice_payments,
            self.portal_configurations,
        ):
            if object_id in collection:
                return collection[object_id]
        return None

    # --- expansion ------------------------------------------------------------------------------

    def _expanded(self, obj: Obj, expand: list[str] | None, *, is_list: bool = False) -> Obj:
        result = copy.deepcopy(obj)
        for path in expand or []:
            segments = path.split(".")
            if len(segments) > MAX_EXPAND_DEPTH:
                raise StripeAPIError(
                    400, f"You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property. Property: {path}"
                )
            if is_list:
                if segments[0] != "data" or len(segments) < 2:
                    raise StripeAPIError(
                        400,
                        f"This property cannot be expanded ({path}). You may want to try expanding 'data.{path}' instead.",
                    )
                for item in result["data"]:
                    self._expand_path(item, segments[1:], path)
            else:
                self._expand_path(result, segments, path)
        return result

    def _expand_path(self, container: Obj, segments: list[str], full_path: str) -> None:
        key = segments[0]
        kind = str(container.get("object") or key_kind(container))
        expandable = key in EXPANDABLE.get(kind, frozenset())
        if kind == "checkout.session" and key == "line_items" and "line_items" not in container:
            container["line_items"] = self._session_line_items_list(container["id"])
        if kind == "invoice" and key in INVOICE_INCLUDABLE and key not in container:
            container[key] = self._invoice_includable(container, key)
        if kind == "payment_intent" and key == "latest_charge" and isinstance(container.get(key), str):
            raise StripeAPIError(
                400,
                f"The Stripe fake keeps no Charge objects, so {full_path} cannot be expanded; it can in the real API. "
                "Extend tests/stripe_fake if you need it.",
                code="parameter_unsupported_by_fake",
                param="expand",
            )
        if key not in container:
            raise StripeAPIError(400, f"This property cannot be expanded ({full_path}).")
        value = container[key]
        if isinstance(value, str):
            if not expandable:
                raise StripeAPIError(400, f"This property cannot be expanded ({full_path}).")
            resolved = self._resolve(value)
            if resolved is not None:
                value = copy.deepcopy(resolved)
                container[key] = value
        elif len(segments) == 1 and not expandable and value is not None:
            raise StripeAPIError(400, f"This property cannot be expanded ({full_path}).")
        if len(segments) > 1 and value is not None:
            if isinstance(value, list):
                for element in value:
                    if isinstance(element, dict):
                        self._expand_path(element, segments[1:], full_path)
            elif isinstance(value, dict):
                self._expand_path(value, segments[1:], full_path)
            else:
                raise StripeAPIError(400, f"This property cannot be expanded ({full_path}).")

    def _invoice_includable(self, invoice: Obj, key: str) -> Any:
        """invoice.payments (its invoice payments, newest first) or invoice.confirmation_secret."""
        invoice_id = str(invoice.get("id") or "")
        payment_id = self._invoice_default_payment.get(invoice_id)
        payment = self.invoice_payments.get(payment_id or "")
        if key == "payments":
            data = [copy.deepcopy(payment)] if payment is not None else []
            return objects.list_object(data, f"/v1/invoice_payments?invoice={invoice_id}")
        intent = self.payment_intents.get(str(payment["payment"]["payment_intent"])) if payment is not None else None
        return {"client_secret": intent["client_secret"], "type": "payment_intent"} if intent is not None else None

    def _session_line_items_list(self, session_id: str) -> Obj:
        private = self._session_private[session_id]
        return objects.list_object(copy.deepcopy(private.line_items), f"/v1/checkout/sessions/{session_id}/line_items")

    # --- pagination -----------------------------------------------------------------------------

    def _newest_first(self, items: Iterable[Obj]) -> list[Obj]:
        return sorted(items, key=self._sort_key, reverse=True)

    def _sort_key(self, obj: Obj) -> tuple[int, int]:
        return (obj.get("created", 0), self._order.get(obj["id"], 0))

    def _page(
        self, items: list[Obj], params: dict[str, Any], url: str, kind: str, *, universe: Mapping[str, Obj] | None = None
    ) -> Obj:
        """One page of `items` (newest first when `universe` is given).

        A cursor must name an object of `universe` (all objects of the kind), not necessarily one that
        the filters select: like Stripe, paging goes on when the cursor object changed in between
        (e.g. a subscription canceled while the caller pages through the default list).
        """
        limit: int = params.get("limit", 10)
        ids = [item["id"] for item in items]
        if "starting_after" in params and "ending_before" in params:
            raise StripeAPIError(
                400,
                "You may only specify one of these parameters: ending_before, starting_after.",
                code="parameters_exclusive",
                param="starting_after",
            )
        for name in ("starting_after", "ending_before"):
            if name not in params:
                continue
            cursor = params[name]
            if cursor in ids:
                position = ids.index(cursor)
                before, rest = items[:position], items[position + 1 :]
            elif universe is not None and cursor in universe:
                key = self._sort_key(universe[cursor])
                before = [item for item in items if self._sort_key(item) > key]
                rest = [item for item in items if self._sort_key(item) < key]
            else:
                raise StripeAPIError(400, f"No such {kind}: '{cursor}'", code="resource_missing", param=name)
            if name == "starting_after":
                page, has_more = rest[:limit], len(rest) > limit
            else:
                page, has_more = before[-limit:], len(before) > limit
            break
        else:
            page, has_more = items[:limit], len(items) > limit
        return objects.list_object(page, url, has_more=has_more)

    # --- Stripe's own clock ----------------------------------------------------------------------

    def _run_clock(self) -> None:
        """What Stripe does on its own when the time comes: it expires open Checkout Sessions at
        expires_at (checkout.session.expired) and pending updates at their expires_at (see
        _expire_due_pending_updates). These events belong to no request and to no helper's batch."""
        now = self.now()
        saved, self._request_context = self._request_context, (None, None)
        batch, self._batch = self._batch, None
        try:
            for session in list(self.checkout_sessions.values()):
                if session["status"] == "open" and now >= session["expires_at"]:
                    self._expire_session(session)
            self._expire_due_pending_updates(now)
        finally:
            self._request_context = saved
            self._batch = batch

    def _expire_due_pending_updates(self, now: int) -> None:
        """Overridden where payments live (payments.py)."""

    def _expire_session(self, session: Obj) -> None:
        session["status"] = "expired"
        session["url"] = None
        self._emit("checkout.session.expired", session)

    # --- subscriptions and invoices -------------------------------------------------------------

    def _price(self, price_id: str, *, param: str) -> Obj:
        found = self.prices.get(price_id)
        if found is None:
            raise StripeAPIError(400, f"No such price: '{price_id}'", code="resource_missing", param=param)
        if not found["active"]:
            raise StripeAPIError(400, "The price specified is inactive. This field only accepts active prices.", param=param)
        return found

    def _product_name(self, price: Obj) -> str:
        product = self.products.get(price["product"])
        return str(product["name"]) if product else price["product"]

    def _line_description(self, item: Obj) -> str:
        price = item["price"]
        recurring = price["recurring"] or {}
        amount = price["unit_amount"] / 100
        return (
            f"{item['quantity']} \N{MULTIPLICATION SIGN} {self._product_name(price)} "
            f"(at {amount:.2f} {price['currency'].upper()} / {recurring.get('interval', 'once')})"
        )

    def _build_invoice(
        self,
        subscription: Obj,
        *,
        invoice_id: str,
        billing_reason: str,
        period: tuple[int, int],
        charges: Iterable[Charge | tuple[Obj, int, str, tuple[int, int], bool]],
        line_prefix: str = "il_",
    ) -> Obj:
        """A draft invoice of `subscription` with one line per charge; stores nothing.

        The customer's balance is applied as Stripe does: amount_due = max(total + starting_balance, 0).
        """
        customer = self.customers[subscription["customer"]]
        lines = []
        for charge in charges:
            line = Charge(*charge)
            lines.append(
                objects.invoice_line(
                    self.new_id(line_prefix),
                    invoice_id=invoice_id,
                    subscription_id=subscription["id"],
                    item=line.item,
                    amount=line.amount,
                    description=line.description,
                    period=line.period,
                    proration=line.proration,
                    invoice_item=line.invoice_item,
                )
            )
        invoice = objects.invoice(
            invoice_id,
            customer=customer,
            subscription=subscription,
            created=self.now(),
            billing_reason=billing_reason,
            period=period,
            lines=lines,
        )
        balance = int(customer.get("balance") or 0)
        invoice["starting_balance"] = balance
        invoice["amount_due"] = invoice["amount_remaining"] = max(invoice["total"] + balance, 0)
        return invoice

    def _new_invoice(
        self,
        subscription: Obj,
        *,
        billing_reason: str,
        period: tuple[int, int],
        charges: Iterable[Charge | tuple[Obj, int, str, tuple[int, int], bool]],
    ) -> Obj:
        """A draft invoice of `subscription` (stored); it takes the invoice items its charges come from."""
        invoice_id = self.new_id("in_")
        lines = [Charge(*charge) for charge in charges]
        invoice = self._build_invoice(
            subscription, invoice_id=invoice_id, billing_reason=billing_reason, period=period, charges=lines
        )
        for charge in lines:
            if charge.invoice_item is not None and charge.invoice_item in self.invoice_items:
                self.invoice_items[charge.invoice_item]["invoice"] = invoice_id
        self.invoices[invoice_id] = invoice
        self._register(invoice_id)
        subscription["latest_invoice"] = invoice_id
        return invoice

    def _full_charges(self, subscription: Obj, period: tuple[int, int]) -> list[Charge]:
        return [
            Charge(item, item["price"]["unit_amount"] * item["quantity"], self._line_description(item), period, False)
            for item in subscription["items"]["data"]
        ]

    def _pending_charges(self, subscription_id: str) -> list[Charge]:
        """The subscription's pending invoice items (not yet invoiced), newest first, as invoice lines."""
        pending = [
            invoice_item
            for invoice_item in self.invoice_items.values()
            if invoice_item["invoice"] is None
            and (invoice_item["parent"] or {}).get("subscription_details", {}).get("subscription") == subscription_id
        ]
        # Stripe lists pending items in reverse chronological order (the sort is stable within one change).
        pending.sort(key=lambda invoice_item: invoice_item["date"], reverse=True)
        charges = []
        for invoice_item in pending:
            price_id = invoice_item["pricing"]["price_details"]["price"]
            item = {
                "id": invoice_item["parent"]["subscription_details"]["subscription_item"],
                "price": copy.deepcopy(self.prices[price_id]),
                "quantity": invoice_item["quantity"],
            }
            period = (invoice_item["period"]["start"], invoice_item["period"]["end"])
            charges.append(Charge(item, invoice_item["amount"], invoice_item["description"], period, True, invoice_item["id"]))
        return charges


def key_kind(container: Obj) -> str:
    """Kind of a nested, id-less hash, for expansion rules (invoice.parent.subscription_details)."""
    if "subscription" in container and "metadata" in container and "object" not in container:
        return "subscription_details"
    if "default_payment_method" in container and "footer" in container:
        return "invoice_settings"
    if "payment_intent" in container and "type" in container and "object" not in container:
        return "invoice_payment.payment"
    return ""


def previous_attributes(old: Obj, new: Obj) -> Obj:
    """Stripe's data.previous_attributes: old values of what changed (nested hashes: changed keys only)."""
    previous: Obj = {}
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if isinstance(before, dict) and isinstance(after, dict) and before.get("object") != "list":
            previous[key] = previous_attributes(before, after)
        else:
            previous[key] = copy.deepcopy(before)
    return previous

"""The endpoints: validate like Stripe, change state, answer with current-shape objects."""

from __future__ import annotations

import copy
import fnmatch
import re
from collections.abc import Callable
from typing import Any

from tests.stripe_fake import objects, schemas
from tests.stripe_fake.errors import ParamError, StripeAPIError, exclusive, resource_missing
from tests.stripe_fake.lifecycle import Lifecycle
from tests.stripe_fake.objects import DAY, Obj
from tests.stripe_fake.params import Raw, apply_metadata, validate_params
from tests.stripe_fake.payments import Emits, decline_error
from tests.stripe_fake.store import SessionPrivate, previous_attributes

type Handler = Callable[[dict[str, Raw], tuple[str, ...]], tuple[int, Obj]]

MAX_LINE_ITEMS = 20
# A price recurs at most every three years.
MAX_INTERVAL_COUNT = {"day": 3 * 365, "week": 156, "month": 36, "year": 3}


def _missing(param: str, message: str | None = None) -> ParamError:
    return ParamError(message or f"Missing required param: {param}.", param=param, code="parameter_missing")


class Api(Lifecycle):
    # Handlers that only add objects or replace stored ones whole (never change one in place): a
    # failure is undone by restoring the collections, without copying every object (see _checkpoint).
    _ADDS_OR_REPLACES_ONLY = frozenset(
        {
            "_create_customer",
            "_update_customer",
            "_create_checkout_session",
            "_create_portal_session",
            "_create_invoice_preview",
            "_create_product",
            "_update_product",
            "_create_price",
        }
    )

    def _routes(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        table: list[tuple[str, str, Handler]] = [
            ("POST", r"/v1/customers", self._create_customer),
            ("GET", r"/v1/customers/([^/]+)", self._retrieve_customer),
            ("POST", r"/v1/customers/([^/]+)", self._update_customer),
            ("DELETE", r"/v1/customers/([^/]+)", self._delete_customer),
            ("POST", r"/v1/checkout/sessions", self._create_checkout_session),
            ("GET", r"/v1/checkout/sessions", self._list_checkout_sessions),
            ("GET", r"/v1/checkout/sessions/([^/]+)", self._retrieve_checkout_session),
            ("GET", r"/v1/checkout/sessions/([^/]+)/line_items", self._list_checkout_line_items),
            ("POST", r"/v1/checkout/sessions/([^/]+)/expire", self._expire_checkout_session),
            ("POST", r"/v1/billing_portal/sessions", self._create_portal_session),
            ("GET", r"/v1/subscriptions", self._list_subscriptions),
            ("GET", r"/v1/subscriptions/([^/]+)", self._retrieve_subscription),
            ("POST", r"/v1/subscriptions/([^/]+)", self._update_subscription),
            ("DELETE", r"/v1/subscriptions/([^/]+)", self._cancel_subscription),
            ("GET", r"/v1/invoices", self._list_invoices),
            ("POST", r"/v1/invoices/create_preview", self._create_invoice_preview),
            ("GET", r"/v1/invoices/([^/]+)", self._retrieve_invoice),
            ("POST", r"/v1/invoices/([^/]+)/void", self._void_invoice_endpoint),
            ("POST", r"/v1/invoices/([^/]+)/pay", self._pay_invoice_endpoint),
            ("GET", r"/v1/invoice_payments", self._list_invoice_payments),
            ("GET", r"/v1/invoice_payments/([^/]+)", self._retrieve_invoice_payment),
            ("GET", r"/v1/payment_intents/([^/]+)", self._retrieve_payment_intent),
            ("GET", r"/v1/prices", self._list_prices),
            ("POST", r"/v1/prices", self._create_price),
            ("GET", r"/v1/prices/([^/]+)", self._retrieve_price),
            ("POST", r"/v1/products", self._create_product),
            ("GET", r"/v1/products/([^/]+)", self._retrieve_product),
            ("POST", r"/v1/products/([^/]+)", self._update_product),
            ("GET", r"/v1/events", self._list_events),
            ("GET", r"/v1/events/([^/]+)", self._retrieve_event),
        ]
        return [(method, re.compile(pattern + r"\Z"), handler) for method, pattern, handler in table]

    # --- customers ------------------------------------------------------------------------------

    def _set_customer_fields(self, customer: Obj, params: dict[str, Any]) -> None:
        for name in ("email", "name", "description", "phone"):
            if name in params:
                customer[name] = params[name]
        if "preferred_locales" in params:
            customer["preferred_locales"] = params["preferred_locales"] or []
        if "metadata" in params:
            customer["metadata"] = apply_metadata(customer["metadata"], params["metadata"])

    def _create_customer(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.CUSTOMER_CREATE, raw)
        customer = objects.customer(self.new_id("cus_", 14), created=self.now(), invoice_prefix=self._invoice_prefix())
        self._set_customer_fields(customer, params)
        self.customers[customer["id"]] = customer
        self._register(customer["id"])
        self._emit("customer.created", customer)
        return 200, self._expanded(customer, params.get("expand"))

    def _existing_customer(self, customer_id: str) -> Obj:
        customer = self.customers.get(customer_id)
        if customer is None:
            raise resource_missing("customer", customer_id, param="id", status=404)
        return customer

    def _retrieve_customer(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.RETRIEVE, raw)
        customer = self._existing_customer(ids[0])
        if customer.get("deleted"):
            return 200, copy.deepcopy(customer)
        return 200, self._expanded(customer, params.get("expand"))

    def _update_customer(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.CUSTOMER_UPDATE, raw)
        customer = self._existing_customer(ids[0])
        if customer.get("deleted"):
            raise resource_missing("customer", ids[0], param="id", status=404)
        updated = copy.deepcopy(customer)
        self._set_customer_fields(updated, params)
        changes = previous_attributes(customer, updated)
        self.customers[ids[0]] = updated
        if changes:
            self._emit("customer.updated", updated, changes)
        return 200, self._expanded(updated, params.get("expand"))

    def _delete_customer(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        validate_params(schemas.DELETE, raw)
        customer = self._existing_customer(ids[0])
        if customer.get("deleted"):
            raise resource_missing("customer", ids[0], param="id", status=404)
        for subscription in self._newest_first(self.subscriptions.values()):
            if subscription["customer"] == customer["id"] and subscription["status"] not in ("canceled", "incomplete_expired"):
                self._cancel_now(subscription)
        self._emit("customer.deleted", customer)
        self.customers[customer["id"]] = objects.deleted_customer(customer["id"])
        return 200, objects.deleted_customer(customer["id"])

    # --- checkout sessions ----------------------------------------------------------------------

    def _create_checkout_session(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.CHECKOUT_SESSION_CREATE, raw)
        now = self.now()
        mode = params.get("mode")
        if mode is None:
            raise _missing("mode")
        if mode != "subscription":
            raise ParamError(
                f"The Stripe fake only implements Checkout in mode=subscription, not mode={mode}.",
                param="mode",
                code="parameter_unsupported_by_fake",
            )
        ui_mode = params.get("ui_mode", "hosted_page")
        self._check_checkout_urls(params, ui_mode)
        if "customer" in params and "customer_email" in params:
            raise exclusive("customer", "customer_email")
        if "customer_update" in params and "customer" not in params:
            raise ParamError("customer_update can only be used with customer.", param="customer_update")
        if "customer_creation" in params:
            raise ParamError("customer_creation can only be used in payment mode.", param="customer_creation")
        if params.get("submit_type") not in (None, "auto", "subscribe"):
            raise ParamError(f"submit_type={params['submit_type']} can only be used in payment mode.", param="submit_type")
        if "discounts" in params and "allow_promotion_codes" in params:
            raise exclusive("allow_promotion_codes", "discounts")
        subscription_data: dict[str, Any] = params.get("subscription_data") or {}
        if "trial_period_days" in subscription_data and "trial_end" in subscription_data:
            raise exclusive("subscription_data[trial_end]", "subscription_data[trial_period_days]")
        if "trial_end" in subscription_data and subscription_data["trial_end"] < now + 2 * DAY:
            raise ParamError(
                "The `trial_end` date has to be at least 2 days in the future.", param="subscription_data[trial_end]"
            )
        expires_at = params.get("expires_at", now + DAY)
        if expires_at < now + 30 * 60 or expires_at > now + DAY:
            raise ParamError(
                "The `expires_at` timestamp must be between 30 minutes and 24 hours after the Checkout Session is created.",
                param="expires_at",
            )
        line_params: list[dict[str, Any]] = params.get("line_items") or []
        if not line_params:
            raise _missing(
                "line_items", "You must provide at least one recurring price in `subscription` mode when using prices."
            )
        if len(line_params) > MAX_LINE_ITEMS:
            raise ParamError(f"You can only specify up to {MAX_LINE_ITEMS} line items.", param="line_items")
        for index, line in enumerate(line_params):
            if "price" not in line:
                raise _missing(
                    f"line_items[{index}][price]",
                    "You must provide either price or price_data for each line item when using prices.",
                )
            if "quantity" not in line:
                raise _missing(
                    f"line_items[{index}][quantity]", f"Quantity is required. Add `quantity` to `line_items[{index}]`."
                )
            if line["quantity"] < 1:
                raise ParamError(
                    "This value must be greater than or equal to 1.",
                    param=f"line_items[{index}][quantity]",
                    code="parameter_invalid_integer",
                )

        # From here on the parameters are well-formed; what follows looks at the account's objects.
        if "discounts" in params:
            for index, discount in enumerate(params["discounts"]):
                kind = "coupon" if "coupon" in discount else "promotion_code"
                raise resource_missing(kind, discount.get(kind, ""), param=f"discounts[{index}][{kind}]")
        customer_id = params.get("customer")
        if customer_id is not None:
            self._live_customer(customer_id, param="customer")
        prices = [self._price(line["price"], param=f"line_items[{n}][price]") for n, line in enumerate(line_params)]
        recurring = [price for price in prices if price["recurring"] is not None]
        if not recurring:
            raise StripeAPIError(
                400,
                "You must provide at least one recurring price in `subscription` mode when using prices.",
                param="line_items",
            )
        if len(recurring) != len(prices):
            index = next(n for n, price in enumerate(prices) if price["recurring"] is None)
            raise StripeAPIError(
                400,
                "The Stripe fake does not implement one-time prices in subscription mode.",
                param=f"line_items[{index}][price]",
                code="parameter_unsupported_by_fake",
            )
        price_ids = [price["id"] for price in prices]
        for index, price_id in enumerate(price_ids):
            if price_id in price_ids[:index]:
                raise StripeAPIError(
                    400,
                    f"The price {price_id} is used in more than one line item; combine them into one line item with a quantity.",
                    param=f"line_items[{index}][price]",
                )
        if len({price["currency"] for price in prices}) > 1:
            raise StripeAPIError(400, "All line items must share the same currency.", param="line_items")
        intervals = {(price["recurring"]["interval"], price["recurring"]["interval_count"]) for price in prices}
        if len(intervals) > 1:
            raise StripeAPIError(
                400,
                "Checkout does not support multiple prices with different billing intervals in subscription mode.",
                param="line_items",
            )
        automatic_tax = params.get("automatic_tax") or {}
        customer_update = params.get("customer_update") or {}
        if (
            automatic_tax.get("enabled")
            and customer_id is not None
            and self.customers[customer_id]["address"] is None
            and "auto" not in (customer_update.get("address"), customer_update.get("shipping"))
        ):
            raise StripeAPIError(
                400,
                "Automatic tax calculation in Checkout requires a valid address on the Customer. Add a valid address "
                "to the Customer or set either `customer_update[address]` to 'auto' or `customer_update[shipping]` to "
                "'auto' to save the address entered in Checkout to the Customer.",
                param="automatic_tax[enabled]",
            )

        session_id = "cs_test_a1" + self.new_id("", 56)
        line_items = [
            objects.checkout_line_item(self.new_id("li_"), copy.deepcopy(price), self._product_name(price), line["quantity"])
            for price, line in zip(prices, line_params, strict=True)
        ]
        for item, line in zip(line_items, line_params, strict=True):
            item["metadata"] = apply_metadata({}, line.get("metadata") or {})
        trial = "trial_period_days" in subscription_data or "trial_end" in subscription_data
        amount = 0 if trial else sum(item["amount_total"] for item in line_items)
        hosted = ui_mode == "hosted_page"
        session = objects.checkout_session(
            session_id,
            created=now,
            expires_at=expires_at,
            mode=mode,
            ui_mode=ui_mode,
            url=self.checkout_url_base + session_id if hosted else None,
            client_secret=None if hosted else f"{session_id}_secret_{self.new_id('', 24)}",
            params=params,
            customer_id=customer_id,
            currency=prices[0]["currency"],
            amount_subtotal=amount,
            metadata=apply_metadata({}, params.get("metadata") or {}),
        )
        stored_subscription_data = dict(subscription_data)
        stored_subscription_data["metadata"] = apply_metadata(
            {}, subscription_data.get("metadata") or {}, "subscription_data[metadata]"
        )
        self.checkout_sessions[session_id] = session
        self._register(session_id)
        self._session_private[session_id] = SessionPrivate(
            line_items=line_items, subscription_data=stored_subscription_data, customer_update=customer_update
        )
        return 200, self._expanded(session, params.get("expand"))

    @staticmethod
    def _check_checkout_urls(params: dict[str, Any], ui_mode: str) -> None:
        if ui_mode == "hosted_page":
            for name in ("return_url", "redirect_on_completion"):
                if name in params:
                    raise ParamError(
                        f"You can only specify `{name}` when `ui_mode` is `embedded_page`, `elements` or `form`.",
                        param=name,
                    )
            if "success_url" not in params:
                raise _missing("success_url")
            return
        for name in ("success_url", "cancel_url"):
            if name in params:
                raise ParamError(f"You cannot set `{name}` when `ui_mode` is `{ui_mode}`.", param=name)
        redirect = params.get("redirect_on_completion", "always")
        if redirect == "never" and "return_url" in params:
            raise ParamError("You cannot set `return_url` when `redirect_on_completion` is `never`.", param="return_url")
        if redirect != "never" and "return_url" not in params:
            raise _missing("return_url")

    def _existing_session(self, session_id: str) -> Obj:
        session = self.checkout_sessions.get(session_id)
        if session is None:
            raise resource_missing("checkout.session", session_id, param="session", status=404)
        return session

    def _retrieve_checkout_session(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.RETRIEVE, raw)
        return 200, self._expanded(self._existing_session(ids[0]), params.get("expand"))

    def _list_checkout_sessions(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.CHECKOUT_SESSION_LIST, raw)
        selected = [
            session
            for session in self.checkout_sessions.values()
            if all(params[name] == session[name] for name in ("customer", "status", "subscription") if name in params)
        ]
        page = self._page(
            self._newest_first(selected), params, "/v1/checkout/sessions", "checkout.session", universe=self.checkout_sessions
        )
        return 200, self._expanded(page, params.get("expand"), is_list=True)

    def _list_checkout_line_items(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.LINE_ITEMS_LIST, raw)
        self._existing_session(ids[0])
        items = self._session_private[ids[0]].line_items
        page = self._page(copy.deepcopy(items), params, f"/v1/checkout/sessions/{ids[0]}/line_items", "line item")
        return 200, self._expanded(page, params.get("expand"), is_list=True)

    def _expire_checkout_session(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.CHECKOUT_SESSION_EXPIRE, raw)
        session = self._existing_session(ids[0])
        if session["status"] != "open":
            raise StripeAPIError(
                400,
                'Only Checkout Sessions with a status in ["open"] can be expired. '
                f'This Checkout Session has a status of "{session["status"]}".',
                param="session",
            )
        self._expire_session(session)
        return 200, self._expanded(session, params.get("expand"))

    # --- billing portal -------------------------------------------------------------------------

    def add_portal_configuration(self, config_id: str) -> Obj:
        """Register a Customer Portal configuration (bpc_...) that sessions may name."""
        with self._lock:
            self._add_portal_configuration(config_id, is_default=False)
            return copy.deepcopy(self.portal_configurations[config_id])

    def _create_portal_session(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.PORTAL_SESSION_CREATE, raw)
        if "customer" not in params:
            raise _missing("customer")
        customer = self._live_customer(params["customer"], param="customer")
        configuration = params.get("configuration")
        if configuration is not None:
            if configuration not in self.portal_configurations:
                raise resource_missing("configuration", configuration, param="configuration")
        elif self._default_portal_configuration is None:
            raise StripeAPIError(
                400,
                "No configuration provided and your test mode default configuration has not been created. Provide a "
                "configuration or create your default by saving your customer portal settings in test mode at "
                "https://dashboard.stripe.com/test/settings/billing/portal.",
            )
        else:
            configuration = self._default_portal_configuration
        session = objects.portal_session(
            self.new_id("bps_"),
            created=self.now(),
            customer_id=customer["id"],
            configuration=configuration,
            params=params,
            url=self.portal_url_base + "test_" + self.new_id("", 48),
        )
        self.portal_sessions[session["id"]] = session
        self._register(session["id"])
        self._emit("billing_portal.session.created", session)
        return 200, self._expanded(session, params.get("expand"))

    # --- subscriptions --------------------------------------------------------------------------

    def _existing_subscription(self, subscription_id: str) -> Obj:
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            raise resource_missing("subscription", subscription_id, param="id", status=404)
        return subscription

    def _retrieve_subscription(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.RETRIEVE, raw)
        return 200, self._expanded(self._existing_subscription(ids[0]), params.get("expand"))

    def _list_subscriptions(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.SUBSCRIPTION_LIST, raw)
        status = params.get("status")
        selected = []
        for subscription in self.subscriptions.values():
            if "customer" in params and subscription["customer"] != params["customer"]:
                continue
            if "price" in params and all(i["price"]["id"] != params["price"] for i in subscription["items"]["data"]):
                continue
            ended = subscription["status"] in ("canceled", "incomplete_expired")
            if status is None and subscription["status"] == "canceled":
                continue
            if status == "ended" and not ended:
                continue
            if status not in (None, "all", "ended") and subscription["status"] != status:
                continue
            selected.append(subscription)
        page = self._page(self._newest_first(selected), params, "/v1/subscriptions", "subscription", universe=self.subscriptions)
        return 200, self._expanded(page, params.get("expand"), is_list=True)

    def _update_subscription(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.SUBSCRIPTION_UPDATE, raw)
        if params.get("payment_behavior") == "pending_if_incomplete":
            _check_pending_update_params(params)
        subscription = self._existing_subscription(ids[0])
        self._apply_subscription_update(subscription, params)
        return 200, self._expanded(self.subscriptions[ids[0]], params.get("expand"))

    def _cancel_subscription(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.SUBSCRIPTION_CANCEL, raw)
        subscription = self._existing_subscription(ids[0])
        if subscription["status"] in ("canceled", "incomplete_expired"):
            raise StripeAPIError(
                400,
                f"A canceled subscription can only update its cancellation_details and metadata. "
                f"The subscription {ids[0]} is {subscription['status']}.",
            )
        self._cancel_now(subscription, details=params.get("cancellation_details"))
        return 200, self._expanded(subscription, params.get("expand"))

    # --- invoices, prices, products, events -----------------------------------------------------

    def _retrieve_invoice(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.RETRIEVE, raw)
        invoice = self.invoices.get(ids[0])
        if invoice is None:
            raise resource_missing("invoice", ids[0], param="id", status=404)
        return 200, self._expanded(invoice, params.get("expand"))

    def _existing_invoice(self, invoice_id: str) -> Obj:
        invoice = self.invoices.get(invoice_id)
        if invoice is None:
            raise resource_missing("invoice", invoice_id, param="invoice", status=404)
        return invoice

    def _void_invoice_endpoint(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        """Void an open invoice; a pending update waiting for it is discarded, a subscription past_due
        only because of it is active again."""
        params = validate_params(schemas.INVOICE_VOID, raw)
        invoice = self._existing_invoice(ids[0])
        if invoice["status"] not in ("open", "uncollectible"):
            raise StripeAPIError(
                400, f"You can only void open or uncollectible invoices. This invoice is {invoice['status']}.", param="invoice"
            )
        emits: Emits = []
        self._void_invoice(invoice, emits)
        subscription_id = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
        subscription = self.subscriptions.get(str(subscription_id))
        if subscription is not None:
            previous = copy.deepcopy(subscription)
            if subscription["latest_invoice"] == invoice["id"]:
                subscription["pending_update"] = None
            still_open = any(
                other["status"] == "open"
                and ((other.get("parent") or {}).get("subscription_details") or {}).get("subscription") == subscription_id
                for other in self.invoices.values()
            )
            if subscription["status"] == "past_due" and not still_open:
                subscription["status"] = "active"
            changes = previous_attributes(previous, subscription)
            if changes:
                self._snap(emits, "customer.subscription.updated", subscription, changes)
        self._emit_all(emits)
        return 200, self._expanded(invoice, params.get("expand"))

    def _pay_invoice_endpoint(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        """Attempt to pay an open invoice now (with its default payment method or `payment_method`).

        A decline (402 card_error) or a card that needs authentication (402
        invoice_payment_intent_requires_action) is recorded on the invoice and its PaymentIntent.
        """
        params = validate_params(schemas.INVOICE_PAY, raw)
        invoice = self._existing_invoice(ids[0])
        if invoice["status"] == "paid":
            raise StripeAPIError(400, "Invoice is already paid", param="invoice")
        if invoice["status"] != "open" or self._invoice_intent(invoice) is None:
            raise StripeAPIError(400, f"You can only pay open invoices. This invoice is {invoice['status']}.", param="invoice")
        subscription_id = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
        subscription = self.subscriptions.get(str(subscription_id))
        payment_method: str | None = params.get("payment_method")
        if payment_method is not None:
            method = self.payment_methods.get(payment_method)
            if method is None:
                raise resource_missing("payment_method", payment_method, param="payment_method")
            if method["customer"] != invoice["customer"]:
                raise StripeAPIError(
                    400,
                    f"The payment method {payment_method} is not attached to the invoice's customer {invoice['customer']}.",
                    param="payment_method",
                )
        elif subscription is not None:
            payment_method = self._default_payment_method(subscription)
        emits: Emits = []
        outcome = self._attempt_payment(
            invoice, emits, payment_method=payment_method, off_session=bool(params.get("off_session", False))
        )
        if outcome.status == "succeeded":
            self._after_invoice_paid(invoice, emits)
        self._emit_all(emits)
        if outcome.status == "requires_action":
            raise StripeAPIError(
                402,
                "This payment requires additional user action before it can be completed successfully. Payment can be "
                "completed using the PaymentIntent associated with the invoice. For more details see: "
                "https://stripe.com/docs/billing/subscriptions/overview#requires-action",
                type_="card_error",
                code="invoice_payment_intent_requires_action",
                keep_changes=True,
            )
        if outcome.status == "declined":
            if outcome.decline_code is None:
                raise StripeAPIError(
                    400,
                    "This customer has no attached payment source or default payment method.",
                    code="resource_missing",
                    keep_changes=True,
                )
            code, message = decline_error(outcome.decline_code)
            raise StripeAPIError(
                402, message, type_="card_error", code=code, extra={"decline_code": outcome.decline_code}, keep_changes=True
            )
        return 200, self._expanded(invoice, params.get("expand"))

    def _list_invoice_payments(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.INVOICE_PAYMENT_LIST, raw)
        payment_filter: dict[str, Any] = params.get("payment") or {}
        selected = []
        for payment in self.invoice_payments.values():
            if "invoice" in params and payment["invoice"] != params["invoice"]:
                continue
            if "status" in params and payment["status"] != params["status"]:
                continue
            if payment_filter:
                if payment_filter["type"] != payment["payment"]["type"]:
                    continue
                if (
                    "payment_intent" in payment_filter
                    and payment["payment"]["payment_intent"] != payment_filter["payment_intent"]
                ):
                    continue
                if "payment_record" in payment_filter:
                    continue
            selected.append(payment)
        page = self._page(
            self._newest_first(selected), params, "/v1/invoice_payments", "invoice payment", universe=self.invoice_payments
        )
        return 200, self._expanded(page, params.get("expand"), is_list=True)

    def _retrieve_invoice_payment(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.RETRIEVE, raw)
        payment = self.invoice_payments.get(ids[0])
        if payment is None:
            raise resource_missing("invoice_payment", ids[0], param="id", status=404)
        return 200, self._expanded(payment, params.get("expand"))

    def _retrieve_payment_intent(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.PAYMENT_INTENT_RETRIEVE, raw)
        intent = self.payment_intents.get(ids[0])
        if intent is None:
            raise resource_missing("payment_intent", ids[0], param="intent", status=404)
        if "client_secret" in params and params["client_secret"] != intent["client_secret"]:
            raise StripeAPIError(
                400,
                "The client_secret provided does not match the client_secret associated with the PaymentIntent.",
                param="client_secret",
            )
        return 200, self._expanded(intent, params.get("expand"))

    def _list_invoices(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.INVOICE_LIST, raw)
        selected = []
        for invoice in self.invoices.values():
            parent = invoice["parent"] or {}
            details = parent.get("subscription_details") or {}
            if "customer" in params and invoice["customer"] != params["customer"]:
                continue
            if "subscription" in params and details.get("subscription") != params["subscription"]:
                continue
            if "status" in params and invoice["status"] != params["status"]:
                continue
            selected.append(invoice)
        page = self._page(self._newest_first(selected), params, "/v1/invoices", "invoice", universe=self.invoices)
        return 200, self._expanded(page, params.get("expand"), is_list=True)

    def _create_invoice_preview(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        """The invoice a subscription change would produce (see Lifecycle._preview_invoice); changes nothing."""
        params = validate_params(schemas.INVOICE_CREATE_PREVIEW, raw)
        details: dict[str, Any] = params.get("subscription_details") or {}
        customer_id: str | None = params.get("customer")
        subscription_id: str | None = params.get("subscription")
        if customer_id is None and subscription_id is None:
            raise _missing("customer", "Missing required param: customer. Pass a customer or a subscription to preview.")
        if "proration_date" in details:
            if subscription_id is None:
                raise ParamError(
                    "subscription_details[proration_date] can only be used with subscription.",
                    param="subscription_details[proration_date]",
                )
            if "items" not in details:
                raise ParamError(
                    "subscription_details[proration_date] requires subscription_details[items] (a change to prorate).",
                    param="subscription_details[proration_date]",
                )
            if details.get("proration_behavior") == "none":
                raise ParamError(
                    "subscription_details[proration_date] cannot be used when subscription_details[proration_behavior] is none.",
                    param="subscription_details[proration_date]",
                )
        if customer_id is not None:
            self._live_customer(customer_id, param="customer")
        if subscription_id is None:
            assert customer_id is not None
            if "items" in details:
                raise ParamError(
                    "The Stripe fake does not implement previews of new subscriptions (subscription_details[items] "
                    "without subscription); it exists in the real API. Extend tests/stripe_fake if you need it.",
                    param="subscription_details[items]",
                    code="parameter_unsupported_by_fake",
                )
            candidates = [
                subscription
                for subscription in self._newest_first(self.subscriptions.values())
                if subscription["customer"] == customer_id
                and subscription["status"] in ("active", "past_due", "trialing", "unpaid")
            ]
            if not candidates:
                raise self._no_upcoming_invoice(customer_id)
            # Without a subscription Stripe previews the customer's next invoice, of whichever subscription comes first.
            subscription = min(candidates, key=lambda s: s["items"]["data"][0]["current_period_end"])
        else:
            found = self.subscriptions.get(subscription_id)
            if found is None:
                raise resource_missing("subscription", subscription_id, param="subscription")
            if customer_id is not None and found["customer"] != customer_id:
                raise StripeAPIError(
                    400,
                    f"The subscription {subscription_id} does not belong to the customer {customer_id}.",
                    param="subscription",
                )
            subscription = found
        invoice = self._preview_invoice(subscription, details)
        return 200, self._expanded(invoice, params.get("expand"))

    def _list_prices(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.PRICE_LIST, raw)
        selected = [
            price
            for price in self.prices.values()
            if ("active" not in params or price["active"] == params["active"])
            and ("lookup_keys" not in params or price["lookup_key"] in params["lookup_keys"])
        ]
        page = self._page(self._newest_first(selected), params, "/v1/prices", "price", universe=self.prices)
        return 200, self._expanded(page, params.get("expand"), is_list=True)

    def _retrieve_price(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.RETRIEVE, raw)
        price = self.prices.get(ids[0])
        if price is None:
            raise resource_missing("price", ids[0], param="id", status=404)
        return 200, self._expanded(price, params.get("expand"))

    def _create_price(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        """A price; its lookup key must be free unless `transfer_lookup_key` takes it from the
        price holding it (which keeps everything else, `active` included)."""
        params = validate_params(schemas.PRICE_CREATE, raw)
        recurring: dict[str, Any] | None = params.get("recurring")
        for param, value, implemented in (
            ("billing_scheme", params.get("billing_scheme"), "per_unit"),
            ("recurring[usage_type]", (recurring or {}).get("usage_type"), "licensed"),
        ):
            if value not in (None, implemented):
                raise ParamError(
                    f"The Stripe fake only implements {param}={implemented}, not {value}; it exists in the real API. "
                    "Extend tests/stripe_fake if you need it.",
                    param=param,
                    code="parameter_unsupported_by_fake",
                )
        if not re.fullmatch(r"[a-z]{3}", params["currency"]):
            raise ParamError(f"Invalid currency: {params['currency']}.", param="currency")
        if "unit_amount" not in params:
            raise _missing("unit_amount", "One of `unit_amount`, `unit_amount_decimal` or `custom_unit_amount` is required.")
        if recurring is not None and recurring.get("interval_count", 1) > MAX_INTERVAL_COUNT[recurring["interval"]]:
            raise ParamError(
                "Invalid recurring[interval_count]: the maximum interval is three years (3 years, 36 months or 156 weeks).",
                param="recurring[interval_count]",
            )
        if "product" not in params:
            raise _missing("product")
        if params["product"] not in self.products:
            raise resource_missing("product", params["product"], param="product")
        lookup_key: str | None = params.get("lookup_key")
        holder = next((price for price in self.prices.values() if lookup_key and price["lookup_key"] == lookup_key), None)
        if holder is not None and not params.get("transfer_lookup_key", False):
            raise StripeAPIError(400, f"A price (`{holder['id']}`) already uses that lookup key.", param="lookup_key")

        price = objects.price(
            self.new_id("price_"),
            product_id=params["product"],
            unit_amount=params["unit_amount"],
            currency=params["currency"],
            interval=recurring["interval"] if recurring else None,
            interval_count=recurring.get("interval_count", 1) if recurring else 1,
            active=params.get("active", True),
            created=self.now(),
            lookup_key=lookup_key,
            nickname=params.get("nickname"),
        )
        price["metadata"] = apply_metadata({}, params.get("metadata", {}))
        price["tax_behavior"] = params.get("tax_behavior", "unspecified")
        if holder is not None:
            # Replaced whole, not changed in place (see _ADDS_OR_REPLACES_ONLY).
            released = {**holder, "lookup_key": None}
            self.prices[holder["id"]] = released
            self._emit("price.updated", released, {"lookup_key": lookup_key})
        self.prices[price["id"]] = price
        self._register(price["id"])
        self._emit("price.created", price)
        return 200, self._expanded(price, params.get("expand"))

    def _set_product_fields(self, product: Obj, params: dict[str, Any]) -> None:
        for name in ("name", "active"):
            if name in params:
                product[name] = params[name]
        if "metadata" in params:
            product["metadata"] = apply_metadata(product["metadata"], params["metadata"])

    def _create_product(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.PRODUCT_CREATE, raw)
        product_id = params.get("id") or self.new_id("prod_", 14)
        if product_id in self.products:
            raise StripeAPIError(400, "Product already exists.", code="resource_already_exists", param="id")
        product = objects.product(product_id, params["name"], self.now(), None)
        self._set_product_fields(product, params)
        self.products[product_id] = product
        self._register(product_id)
        self._emit("product.created", product)
        return 200, self._expanded(product, params.get("expand"))

    def _existing_product(self, product_id: str) -> Obj:
        product = self.products.get(product_id)
        if product is None:
            raise resource_missing("product", product_id, param="id", status=404)
        return product

    def _retrieve_product(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.RETRIEVE, raw)
        return 200, self._expanded(self._existing_product(ids[0]), params.get("expand"))

    def _update_product(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.PRODUCT_UPDATE, raw)
        product = self._existing_product(ids[0])
        updated = copy.deepcopy(product)
        self._set_product_fields(updated, params)
        if updated != product:
            updated["updated"] = self.now()
            self._emit("product.updated", updated, previous_attributes(product, updated))
        self.products[ids[0]] = updated
        return 200, self._expanded(updated, params.get("expand"))

    def _retrieve_event(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        validate_params(schemas.RETRIEVE, raw)
        event = self._events_by_id.get(ids[0])
        if event is None:
            raise resource_missing("event", ids[0], param="id", status=404)
        return 200, copy.deepcopy(event)

    def _list_events(self, raw: dict[str, Raw], ids: tuple[str, ...]) -> tuple[int, Obj]:
        params = validate_params(schemas.EVENT_LIST, raw)
        if "type" in params and "types" in params:
            raise exclusive("type", "types")
        patterns: list[str] = params.get("types") or ([params["type"]] if "type" in params else ["*"])
        selected = [e for e in self.events if any(fnmatch.fnmatchcase(e["type"], p) for p in patterns)]
        page = self._page(self._newest_first(selected), params, "/v1/events", "event", universe=self._events_by_id)
        return 200, copy.deepcopy(page)


def _check_pending_update_params(params: dict[str, Any]) -> None:
    """payment_behavior=pending_if_incomplete accepts only what a pending update can hold."""
    allowed = "items (price, quantity), proration, billing cycle anchor, trial, metadata, discounts and cancel_at_period_end"
    for name in params:
        if name not in schemas.PENDING_UPDATE_PARAMS:
            raise ParamError(
                f"You cannot pass `{name}` with `payment_behavior=pending_if_incomplete`: a pending update can only "
                f"change {allowed}.",
                param=name,
            )
    for index, item in enumerate(params.get("items") or []):
        for name in item:
            if name not in schemas.PENDING_UPDATE_ITEM_PARAMS:
                raise ParamError(
                    f"You cannot pass `items[{index}][{name}]` with `payment_behavior=pending_if_incomplete`: a pending "
                    f"update can only change {allowed}.",
                    param=f"items[{index}][{name}]",
                )

"""Paying an invoice on its hosted page, and the 3-D Secure challenge of a PaymentIntent.

A card that needs 3-D Secure goes through the challenge at `/i/{token}/3ds` (Complete pays the
invoice, applying a pending update; Fail leaves it open). `/3d_secure_2/hosted` is the challenge
Stripe.js shows when a frontend confirms a PaymentIntent in place (its `next_action`); it redirects
to `return_url` with `payment_intent`, `payment_intent_client_secret` and `redirect_status`.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from functions.local_stack import emulator_responses as respond
from functions.local_stack.checkout_pages import AUTHENTICATION_FAILED, CHALLENGE_ACTIONS, challenge_document
from functions.local_stack.emulator_state import InvoiceView, StripeEmulator
from functions.local_stack.hosted_page_layout import INVOICE_PATH, THREE_D_SECURE_PATH
from functions.local_stack.invoice_page import invoice_page
from functions.local_stack.page_format import format_amount
from functions.local_stack.page_forms import card_number
from tests.stripe_fake import CardDeclined, FakeStripeError
from tests.stripe_fake.objects import Obj


def _invoice_view(emulator: StripeEmulator, token: str) -> InvoiceView:
    view = emulator.invoice_view(token)
    if view is None:
        raise respond.EarlyResponse(respond.message(404, "Invoice not found", "This invoice link is invalid."))
    return view


def show_invoice(
    emulator: StripeEmulator, token: str, status: int = 200, *, error: str | None = None, form: Mapping[str, str] | None = None
) -> respond.Response:
    return respond.html_page(status, invoice_page(token, *_invoice_view(emulator, token), error=error, form=form))


def pay_invoice(emulator: StripeEmulator, token: str, form: dict[str, str]) -> respond.Response:
    """Pay: with the saved card (pay_with=saved) or the card typed in (card_number)."""
    invoice = _invoice_view(emulator, token)[0]
    if invoice["status"] != "open":
        return show_invoice(emulator, token, 409)
    card: str | None = None
    if form.get("pay_with", "card") != "saved":
        card = card_number(form)
        if not card:
            return show_invoice(emulator, token, 400, error="Your card number is incomplete.", form=form)
    fake = emulator.fake
    try:
        fake.pay_invoice(str(invoice["id"]), card)
    except CardDeclined:
        return show_invoice(emulator, token, 402, error="Your card number is invalid.", form=form)
    except FakeStripeError:
        return show_invoice(emulator, token, 409)
    intent = fake.invoice_payment_intent(str(invoice["id"])) or {}
    if intent.get("status") == "succeeded":
        return respond.redirect(f"{INVOICE_PATH}{token}")
    if intent.get("status") == "requires_action":
        return respond.redirect(f"{INVOICE_PATH}{token}/3ds")
    return show_invoice(emulator, token, 402, form={})


def _challenged_intent(view: InvoiceView) -> Obj | None:
    """The invoice's PaymentIntent while it waits for the cardholder, else None."""
    invoice, intent, _ = view
    if invoice["status"] != "open" or intent is None or intent["status"] != "requires_action":
        return None
    return intent


def _challenge(emulator: StripeEmulator, intent: Obj, action: str) -> bytes:
    amount = format_amount(int(intent["amount"]), str(intent["currency"]))
    return challenge_document(amount, emulator.card_last4(intent), action)


def show_invoice_challenge(emulator: StripeEmulator, token: str) -> respond.Response:
    intent = _challenged_intent(_invoice_view(emulator, token))
    if intent is None:
        return respond.redirect(f"{INVOICE_PATH}{token}")
    return respond.html_page(200, _challenge(emulator, intent, f"{INVOICE_PATH}{token}/3ds"))


def end_invoice_challenge(emulator: StripeEmulator, token: str, action: str) -> respond.Response:
    view = _invoice_view(emulator, token)
    if action not in CHALLENGE_ACTIONS:
        return respond.unknown_challenge_action()
    intent = _challenged_intent(view)
    if intent is None:
        return respond.redirect(f"{INVOICE_PATH}{token}")
    try:
        emulator.fake.authenticate_payment(str(intent["id"]), succeed=action == "complete")
    except FakeStripeError:
        return respond.redirect(f"{INVOICE_PATH}{token}")
    if action == "fail":
        return show_invoice(emulator, token, 402, error=AUTHENTICATION_FAILED)
    return respond.redirect(f"{INVOICE_PATH}{token}")


def _awaiting_challenge(emulator: StripeEmulator, query: Mapping[str, str]) -> Obj:
    """The PaymentIntent the query names (with its client secret) while it waits for the cardholder."""
    view = emulator.intent_view(query.get("payment_intent", ""), query.get("payment_intent_client_secret", ""))
    if view is None:
        raise respond.EarlyResponse(respond.message(404, "Authentication not found", "This authentication link is invalid."))
    intent = view[0]
    return_url = query.get("return_url", "")
    if return_url and urlsplit(return_url).scheme not in ("http", "https"):
        raise respond.EarlyResponse(respond.message(400, "Invalid return_url", "return_url must be an http(s) URL."))
    if intent["status"] != "requires_action":
        raise respond.EarlyResponse(respond.message(409, "Nothing to authenticate", f"This payment is {intent['status']}."))
    return intent


def show_intent_challenge(emulator: StripeEmulator, query: Mapping[str, str]) -> respond.Response:
    intent = _awaiting_challenge(emulator, query)
    return respond.html_page(200, _challenge(emulator, intent, f"{THREE_D_SECURE_PATH}?{urlencode(query)}"))


def end_intent_challenge(emulator: StripeEmulator, query: Mapping[str, str], action: str) -> respond.Response:
    """Complete or fail the authentication; back to `return_url` with the outcome when there is one."""
    intent_id = str(_awaiting_challenge(emulator, query)["id"])
    if action not in CHALLENGE_ACTIONS:
        return respond.unknown_challenge_action()
    try:
        emulator.fake.authenticate_payment(intent_id, succeed=action == "complete")
    except FakeStripeError:
        return respond.message(409, "Nothing to authenticate", "This payment no longer needs authentication.")
    return_url = query.get("return_url", "")
    if return_url:
        outcome = {
            "payment_intent": intent_id,
            "payment_intent_client_secret": query.get("payment_intent_client_secret", ""),
            "redirect_status": "succeeded" if action == "complete" else "failed",
        }
        return respond.redirect(f"{return_url}{'&' if urlsplit(return_url).query else '?'}{urlencode(outcome)}")
    if action == "fail":
        return respond.message(402, "Authentication failed", AUTHENTICATION_FAILED)
    return respond.message(200, "Authentication complete", "Your payment was confirmed. You can close this window.")

"""What the hosted Checkout page does: pay with a test card, through a 3-D Secure challenge for the
cards that ask for one (4000 0025 0000 3155, 4000 0027 6000 3184), nothing charged until then."""

from __future__ import annotations

from collections.abc import Mapping

from functions.local_stack import emulator_responses as respond
from functions.local_stack.checkout_pages import (
    AUTHENTICATION_FAILED,
    CHALLENGE_ACTIONS,
    card_optional,
    challenge_page,
    checkout_page,
)
from functions.local_stack.emulator_state import CardPayment, CheckoutView, StripeEmulator
from functions.local_stack.hosted_page_layout import CHECKOUT_PATH
from functions.local_stack.page_forms import card_number
from tests.stripe_fake import CardDeclined, FakeStripeError
from tests.stripe_fake.objects import Obj

THREE_D_SECURE_CARDS = frozenset({"4000002500003155", "4000002760003184"})


def _success_url(session: Obj) -> str:
    """Stripe fills in the {CHECKOUT_SESSION_ID} template variable of success_url."""
    return str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", str(session["id"]))


def _unavailable(emulator: StripeEmulator, session: Obj) -> respond.Response | None:
    """Why the session's page cannot be paid (not hosted, expired, complete), or None while it can."""
    status = session["status"]
    if session.get("ui_mode", "hosted_page") != "hosted_page":
        return respond.message(404, "Checkout session not found", "This session has no hosted checkout page.")
    if status == "expired" or (status == "open" and emulator.fake.now() >= int(session["expires_at"])):
        emulator.end_challenge(str(session["id"]))
        link = (str(session["cancel_url"]), "\N{LEFTWARDS ARROW} Back") if session.get("cancel_url") else None
        message = "This payment page can no longer be paid. Start checkout again to subscribe."
        return respond.message(410, "This checkout session has expired", message, link)
    if status != "open":
        emulator.end_challenge(str(session["id"]))
        link = (_success_url(session), "Continue") if session.get("success_url") else None
        return respond.message(410, "This checkout session is complete", "You have already paid for this session.", link)
    return None


def _payable_view(emulator: StripeEmulator, session_id: str) -> CheckoutView:
    """The session's view while it can be paid; otherwise the page that says why not (EarlyResponse)."""
    view = emulator.checkout_view(session_id)
    if view is None:
        raise respond.EarlyResponse(respond.message(404, "Checkout session not found", "This checkout link is invalid."))
    unavailable = _unavailable(emulator, view[0])
    if unavailable is not None:
        raise respond.EarlyResponse(unavailable)
    return view


def show_checkout(emulator: StripeEmulator, session_id: str) -> respond.Response:
    return respond.html_page(200, checkout_page(emulator, *_payable_view(emulator, session_id)))


def pay_checkout(emulator: StripeEmulator, session_id: str, form: dict[str, str]) -> respond.Response:
    view = _payable_view(emulator, session_id)
    card = card_number(form)
    if not card and not card_optional(view[0]):
        return respond.html_page(400, checkout_page(emulator, *view, error="Your card number is incomplete.", form=form))
    # No card: a card-less trial starts without one.
    payment = CardPayment(card, form.get("email", "").strip() or None, form.get("name", "").strip() or None)
    if card in THREE_D_SECURE_CARDS:
        # The issuer wants the cardholder to authenticate first: nothing is charged until then.
        emulator.start_challenge(session_id, payment)
        return respond.redirect(f"{CHECKOUT_PATH}{session_id}/3ds")
    return _complete(emulator, view, payment, form)


def _complete(emulator: StripeEmulator, view: CheckoutView, payment: CardPayment, form: Mapping[str, str]) -> respond.Response:
    session_id = str(view[0]["id"])
    try:
        emulator.fake.complete_checkout(session_id, payment.card or None, email=payment.email, name=payment.name)
    except CardDeclined:
        return respond.html_page(402, checkout_page(emulator, *view, error="Your card was declined.", form=form))
    except FakeStripeError:
        # Completed or expired since the page was read.
        refreshed = emulator.checkout_view(session_id)
        unavailable = _unavailable(emulator, refreshed[0]) if refreshed else None
        return unavailable or respond.message(409, "Checkout unavailable", "This checkout session can no longer be paid.")
    # The webhook worker delivers the events after this redirect, as Stripe does.
    return respond.redirect(_success_url(view[0]))


def show_checkout_challenge(emulator: StripeEmulator, session_id: str) -> respond.Response:
    view = _payable_view(emulator, session_id)
    payment = emulator.challenge(session_id)
    if payment is None:
        return respond.redirect(CHECKOUT_PATH + session_id)
    return respond.html_page(200, challenge_page(view[0], view[1], payment))


def end_checkout_challenge(emulator: StripeEmulator, session_id: str, action: str) -> respond.Response:
    view = _payable_view(emulator, session_id)
    if action not in CHALLENGE_ACTIONS:
        return respond.unknown_challenge_action()
    payment = emulator.end_challenge(session_id)
    if payment is None:
        return respond.redirect(CHECKOUT_PATH + session_id)
    form = {"email": payment.email or "", "name": payment.name or ""}
    if action == "fail":
        # As Stripe: back on the payment page, the session still open, nothing created or charged.
        return respond.html_page(402, checkout_page(emulator, *view, error=AUTHENTICATION_FAILED, form=form))
    return _complete(emulator, view, payment, form)

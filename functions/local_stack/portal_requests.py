"""What the hosted Customer Portal does: cancel at period end, renew, cancel now, update the card.

Its "cancel at period end" is Stripe's for flexible billing mode: `cancel_at` set to the period end,
`cancel_at_period_end` false.
"""

from __future__ import annotations

from collections.abc import Mapping

from functions.local_stack import emulator_responses as respond
from functions.local_stack.emulator_state import PortalView, StripeEmulator
from functions.local_stack.hosted_page_layout import PORTAL_PATH
from functions.local_stack.page_forms import card_number
from functions.local_stack.portal_page import PORTAL_ACTIONS, portal_actions, portal_page
from tests.stripe_fake import CardDeclined, FakeStripeError


def _portal_view(emulator: StripeEmulator, token: str) -> PortalView:
    view = emulator.portal_view(token)
    if view is None:
        raise respond.EarlyResponse(respond.message(404, "Portal session not found", "This billing portal link is invalid."))
    return view


def _back_to_portal(emulator: StripeEmulator, token: str) -> respond.Response:
    return respond.redirect(f"{emulator.base_url}{PORTAL_PATH}{token}")


def show_portal(emulator: StripeEmulator, token: str) -> respond.Response:
    return respond.html_page(200, portal_page(emulator, token, *_portal_view(emulator, token)))


def change_subscription(emulator: StripeEmulator, token: str, subscription_id: str, action: str) -> respond.Response:
    subscriptions = _portal_view(emulator, token)[2]
    subscription = next((sub for sub in subscriptions if sub["id"] == subscription_id), None)
    if subscription is None or action not in PORTAL_ACTIONS:
        return respond.message(404, "Subscription not found", "This customer has no such subscription.")
    back = (PORTAL_PATH + token, "\N{LEFTWARDS ARROW} Back to billing")
    if action not in portal_actions(subscription):
        return respond.message(409, "Not available", "This subscription can no longer be changed this way.", back)
    try:
        if action == "cancel-now":
            emulator.fake.cancel_subscription(subscription_id)
        else:
            # Flexible billing mode: the portal schedules the cancellation as cancel_at (the
            # period end), not cancel_at_period_end; renewing clears it.
            cancel_at = "max_period_end" if action == "cancel-at-period-end" else ""
            emulator.fake.update_subscription(subscription_id, cancel_at=cancel_at)
    except FakeStripeError as error:
        return respond.message(409, "Not available", str(error), back)
    return _back_to_portal(emulator, token)


def update_card(emulator: StripeEmulator, token: str, form: Mapping[str, str]) -> respond.Response:
    """Update payment method: the card becomes the default of the customer and of their subscriptions."""
    view = _portal_view(emulator, token)
    card = card_number(form)
    error = None
    if not card:
        error = "Your card number is incomplete."
    else:
        try:
            emulator.fake.set_default_card(str(view[0]["customer"]), card)
        except CardDeclined as declined:
            error = "Your card number is invalid." if declined.decline_code == "card_not_supported" else "Your card was declined."
        except FakeStripeError:
            error = "This customer can no longer be updated."
    if error is not None:
        return respond.html_page(402, portal_page(emulator, token, *view, error=error))
    return _back_to_portal(emulator, token)

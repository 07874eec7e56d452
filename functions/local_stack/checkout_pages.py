"""The hosted Checkout page and Stripe's test 3-D Secure challenge page."""

from __future__ import annotations

from collections.abc import Mapping

from functions.local_stack.emulator_state import CardPayment, StripeEmulator
from functions.local_stack.hosted_page_layout import CHECKOUT_PATH, document, e, error_block
from functions.local_stack.page_format import format_amount, format_interval, format_unit_price
from tests.stripe_fake.objects import Obj

# The challenge pages' two buttons (field `action`).
CHALLENGE_ACTIONS = ("complete", "fail")
AUTHENTICATION_FAILED = (
    "We are unable to authenticate your payment method. Please choose a different payment method and try again."
)
TEST_CARDS_HINT = (
    "Test cards: 4242 4242 4242 4242 succeeds, 4000 0025 0000 3155 asks for 3-D Secure, 4000 0000 0000 0002 is declined."
)


def _session_total(session: Obj, line_items: list[Obj]) -> tuple[str, str]:
    """(what the session charges per interval, the interval): ("$10.00", "month")."""
    currency = str(session.get("currency") or (line_items[0]["currency"] if line_items else "usd"))
    total = sum(int(item["price"]["unit_amount"]) * int(item["quantity"]) for item in line_items)
    recurring = line_items[0]["price"].get("recurring") if line_items else None
    return format_amount(total, currency), format_interval(recurring)


def _summary(emulator: StripeEmulator, session: Obj, line_items: list[Obj], subscription_data: Obj) -> str:
    """The left half: what is bought, line by line, and the total."""
    total, interval = _session_total(session, line_items)
    names = [emulator.product_name(item["price"]) for item in line_items]
    rows = []
    for name, item in zip(names, line_items, strict=True):
        price = item["price"]
        line_total = format_amount(int(price["unit_amount"]) * int(item["quantity"]), price["currency"])
        rows.append(
            f'<li class="line-item"><div><strong class="product">{e(name)}</strong>'
            f"<small>Qty {e(item['quantity'])} \N{MIDDLE DOT} {e(format_unit_price(price))}</small></div>"
            f"<span>{e(line_total)}</span></li>"
        )
    trial_days = subscription_data.get("trial_period_days")
    trial = f'<p class="muted small" id="trial">Includes a {e(trial_days)}-day free trial.</p>' if trial_days else ""
    cancel_url = session.get("cancel_url")
    back = f'<a id="cancel" href="{e(cancel_url)}">\N{LEFTWARDS ARROW} Back</a>' if cancel_url else ""
    return f"""<section class="summary"><div class="summary-inner">
<p>{back}<span class="badge">Test mode</span></p>
<p class="muted">Subscribe to {e(names[0] if names else "your plan")}</p>
<p class="headline" id="headline">{e(total)} <span>per {e(interval)}</span></p>
<ul class="lines" id="line-items">{"".join(rows)}</ul>
<div class="total"><span>Total per {e(interval)}</span><strong id="total">{e(total)}</strong></div>
{trial}
</div></section>"""


def card_optional(session: Obj) -> bool:
    """Checkout asks for no card when the session collects one only if required and nothing is due
    (a card-less trial): the card may still be given."""
    return session.get("payment_method_collection") == "if_required" and int(session.get("amount_total") or 0) == 0


def _card_form(session: Obj, email: str, form: Mapping[str, str], error: str | None) -> str:
    """The right half: the card form, filled with what was typed before (after an error)."""
    session_id = str(session["id"])
    optional = card_optional(session)
    heading = "Start your free trial" if optional else "Pay with card"
    card_label = 'Card information <span class="muted">(optional: nothing is due now)</span>' if optional else "Card information"
    submit = "Start trial" if optional else "Subscribe"
    return f"""<section class="pay">
<h1>{heading}</h1>
{error_block(error)}
<form method="post" action="{e(CHECKOUT_PATH + session_id)}" autocomplete="off">
<label for="email">Email <span class="muted">(optional)</span></label>
<input id="email" name="email" type="email" value="{e(email)}" placeholder="you@example.com">
<label for="card-number">{card_label}</label>
<div class="card-group">
<input id="card-number" name="card_number" inputmode="numeric" placeholder="4242 4242 4242 4242"
 value="{e(form.get("card_number", ""))}">
<div class="card-row">
<input id="card-expiry" name="expiry" placeholder="MM / YY" value="{e(form.get("expiry", ""))}" aria-label="Expiration">
<input id="card-cvc" name="cvc" placeholder="CVC" value="{e(form.get("cvc", ""))}" aria-label="CVC">
</div></div>
<label for="name">Cardholder name <span class="muted">(optional)</span></label>
<input id="name" name="name" value="{e(form.get("name", ""))}" placeholder="Full name on card">
<button id="pay" class="primary" type="submit">{submit}</button>
<p class="hint" id="test-cards">{e(TEST_CARDS_HINT)}</p>
</form>
</section>"""


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
    email = form.get("email", session.get("customer_email") or emulator.customer_email(session) or "")
    summary = _summary(emulator, session, line_items, subscription_data)
    body = f'<div class="checkout">\n{summary}\n{_card_form(session, email, form, error)}\n</div>'
    headline = emulator.product_name(line_items[0]["price"]) if line_items else "your plan"
    return document(f"Subscribe to {headline}", body)


def challenge_page(session: Obj, line_items: list[Obj], payment: CardPayment) -> bytes:
    """Stripe's test 3-D Secure page: the issuer asks the cardholder to approve the payment."""
    total, interval = _session_total(session, line_items)
    return challenge_document(f"{total} / {interval}", payment.card[-4:], f"{CHECKOUT_PATH}{session['id']}/3ds")


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
    return document("3D Secure 2 Test Page", body)

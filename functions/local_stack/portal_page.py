"""The hosted Customer Portal page: subscriptions (cancel, renew), the payment method, invoice history.

Stripe's portal, configured as this product's is, may cancel a subscription but not update it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from functions.local_stack.emulator_state import StripeEmulator
from functions.local_stack.hosted_page_layout import PORTAL_PATH, document, e, error_block
from functions.local_stack.page_format import card_label, format_amount, format_date, format_unit_price
from tests.stripe_fake.objects import Obj

CARD_UPDATE_HINT = (
    "Test cards: 4242 4242 4242 4242 pays; 4000 0000 0000 0341 saves, but every charge is declined; "
    "4000 0027 6000 3184 asks for 3-D Secure on every charge."
)
_LIVE_STATUSES = ("active", "trialing", "past_due")
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
# Each portal action's button: (label, style).
_ACTION_BUTTONS = {
    "cancel-at-period-end": ("Cancel plan", "secondary"),
    "resume": ("Renew plan", "secondary"),
    "cancel-now": ("Cancel immediately", "danger"),
}
PORTAL_ACTIONS = tuple(_ACTION_BUTTONS)


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


def _subscription_dates(subscription: Obj) -> str:
    """When it ended, or when its period, its trial or a scheduled cancellation ends."""
    status = str(subscription["status"])
    if status in ("canceled", "incomplete_expired"):
        ended = subscription.get("ended_at") or subscription.get("canceled_at")
        return f'<p class="muted">Canceled on {e(format_date(int(ended)))}</p>' if ended else ""
    details = []
    period_end = _period_end(subscription)
    if period_end is not None:
        details.append(f'<p class="muted period-end">Current period ends {e(format_date(period_end))}</p>')
    cancels_at = _cancels_at(subscription)
    if cancels_at is not None:
        details.append(f'<p class="notice cancels-on">Cancels on {e(format_date(cancels_at))}</p>')
    elif status == "trialing" and subscription.get("trial_end"):
        details.append(f'<p class="muted">Trial ends {e(format_date(int(subscription["trial_end"])))}</p>')
    return "".join(details)


def _subscription_card(emulator: StripeEmulator, token: str, subscription: Obj) -> str:
    sub_id = str(subscription["id"])
    status = str(subscription["status"])
    items = subscription["items"]["data"]
    names = [emulator.product_name(item["price"]) for item in items]
    lines = [
        f'<li><span class="product">{e(name)}</span> \N{MULTIPLICATION SIGN} <span class="quantity">{e(item["quantity"])}</span>'
        f' <span class="muted">({e(format_unit_price(item["price"]))})</span></li>'
        for name, item in zip(names, items, strict=True)
    ]
    title = " + ".join(names)
    forms = []
    for action in portal_actions(subscription):
        label, style = _ACTION_BUTTONS[action]
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
{_subscription_dates(subscription)}
{actions}
</section>"""


def _invoice_history(invoices: list[Obj]) -> str:
    """The ten newest finalized invoices, each linking to its hosted page."""
    rows = []
    for invoice in invoices[:10]:
        status = str(invoice["status"])
        link = invoice.get("hosted_invoice_url")
        label = "Pay" if status == "open" else "View"
        view = f'<a class="invoice-link" href="{e(link)}">{label}</a>' if link else ""
        rows.append(
            f'<li class="invoice-row" data-status="{e(status)}"><span>{e(format_date(int(invoice["created"])))}</span>'
            f"<span>{e(format_amount(int(invoice['amount_due']), str(invoice['currency'])))}</span>"
            f'<span class="status status-{e(status)}">{e(status.title())}</span>{view}</li>'
        )
    if not rows:
        return '<p class="muted" id="no-invoices">No invoices.</p>'
    return f'<ul class="lines" id="invoices">{"".join(rows)}</ul>'


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
    body = f"""<main class="portal">
<div class="topbar"><div>{back}</div><span class="badge">Test mode</span></div>
<h1>Billing</h1>
<p class="muted" id="customer">{who}</p>
{error_block(error)}
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
{_invoice_history(invoices)}
</main>"""
    return document("Billing", body)

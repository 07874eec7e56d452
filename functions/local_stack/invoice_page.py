"""Stripe's hosted invoice page: what is owed and why, and (while open) how to pay it."""

from __future__ import annotations

from collections.abc import Mapping

from functions.local_stack.hosted_page_layout import INVOICE_PATH, document, e, error_block
from functions.local_stack.page_format import card_label, format_amount, format_date
from tests.stripe_fake.objects import Obj

INVOICE_CARDS_HINT = (
    "Test cards: 4242 4242 4242 4242 succeeds, 4000 0027 6000 3184 asks for 3-D Secure, 4000 0000 0000 0002 is declined."
)


def _lines(invoice: Obj) -> str:
    currency = str(invoice["currency"])
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
    return "".join(rows)


def _notice(invoice: Obj, intent: Obj | None, error: str | None) -> str:
    """Paid, voided, or waiting for the cardholder's authentication."""
    status = str(invoice["status"])
    if status == "paid":
        paid_at = (invoice.get("status_transitions") or {}).get("paid_at")
        when = f" on {format_date(int(paid_at))}" if paid_at else ""
        amount_paid = format_amount(int(invoice["amount_paid"]), str(invoice["currency"]))
        return f'<p class="notice" id="paid">Paid{e(when)}: {e(amount_paid)}</p>'
    if status == "void":
        return '<p class="notice" id="voided">This invoice has been voided and can no longer be paid.</p>'
    if status == "open" and intent is not None and intent.get("status") == "requires_action" and error is None:
        return '<p class="notice" id="action-required">Your bank asks you to confirm this payment.</p>'
    return ""


def _pay_forms(token: str, amount_due: str, saved_card: Obj | None, error_html: str, form: Mapping[str, str]) -> str:
    """Pay with the saved card (when there is one) or with a card typed in."""
    action = f"{INVOICE_PATH}{token}"
    saved = ""
    if saved_card is not None:
        saved = (
            f'<form method="post" action="{e(action)}"><input type="hidden" name="pay_with" value="saved">'
            f'<button id="pay-saved" class="primary" type="submit">Pay {e(amount_due)} with '
            f'<span id="saved-card">{e(card_label(saved_card))}</span></button></form>'
        )
    return f"""<section class="pay-invoice">
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


def invoice_page(
    token: str,
    invoice: Obj,
    intent: Obj | None,
    saved_card: Obj | None,
    *,
    error: str | None = None,
    form: Mapping[str, str] | None = None,
) -> bytes:
    status = str(invoice["status"])
    amount_due = format_amount(int(invoice["amount_due"]), str(invoice["currency"]))
    last_error = (intent or {}).get("last_payment_error") or {}
    # The page shows its own error first; otherwise why the last payment attempt failed.
    notice = _notice(invoice, intent, error)
    if error is None and status == "open" and last_error:
        error = str(last_error.get("message") or "The payment failed.")
    pay = _pay_forms(token, amount_due, saved_card, error_block(error), form or {}) if status == "open" else error_block(error)
    body = f"""<main class="portal invoice" id="invoice" data-status="{e(status)}">
<div class="topbar"><div><strong>{e(invoice.get("account_name") or "")}</strong></div><span class="badge">Test mode</span></div>
<h1>Invoice <span id="invoice-number">{e(invoice.get("number") or "")}</span>
<span class="status status-{e(status)}" id="invoice-status">{e(status.title())}</span></h1>
<p class="headline" id="amount-due">{e(amount_due)} <span>{"paid" if status == "paid" else "due"}</span></p>
<p class="muted" id="billed-to">Billed to {e(invoice.get("customer_email") or invoice["customer"])}</p>
{notice}
<ul class="lines" id="invoice-lines">{_lines(invoice)}</ul>
<div class="total"><span>Amount due</span><strong id="total">{e(amount_due)}</strong></div>
{pay}
</main>"""
    return document(f"Invoice {invoice.get('number') or ''}", body)

"""Stripe's hosted invoice page: what is owed and why, and (while open) how to pay it; and the
invoice's PDF (`invoice_pdf`), the same invoice as a one-page document."""

from __future__ import annotations

from collections.abc import Mapping

from functions.local_stack.hosted_page_layout import INVOICE_PATH, document, e, error_block
from functions.local_stack.page_format import card_label, format_amount, format_date
from tests.stripe_fake.objects import Obj

INVOICE_CARDS_HINT = (
    "Test cards: 4242 4242 4242 4242 succeeds, 4000 0027 6000 3184 asks for 3-D Secure, 4000 0000 0000 0002 is declined."
)


def _line_period(line: Obj) -> str:
    """The line's period as "April 1, 2026 - May 1, 2026" (with an en dash), or "" for a line of a moment."""
    period = line.get("period") or {}
    if period.get("start") and period.get("end") and period["start"] != period["end"]:
        return f"{format_date(int(period['start']))} \N{EN DASH} {format_date(int(period['end']))}"
    return ""


def _lines(invoice: Obj) -> str:
    currency = str(invoice["currency"])
    rows = []
    for line in invoice["lines"]["data"]:
        when = _line_period(line)
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


def _pdf_string(text: str) -> bytes:
    """A PDF string literal's bytes in WinAnsi, the font's encoding below (what it lacks becomes "?")."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("cp1252", errors="replace") + b")"


def _pdf(title: str, lines: list[str]) -> bytes:
    """A one-page PDF of a title and lines of text in Helvetica: the least a PDF viewer opens
    (catalog, page tree, page, font, content stream, cross-reference table)."""
    content = b"BT /F1 16 Tf 56 740 Td " + _pdf_string(title) + b" Tj /F1 11 Tf 16 TL 0 -8 Td"
    content += b"".join(b" " + _pdf_string(line) + b" '" for line in lines) + b" ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n%b\nendstream" % (len(content), content),
    ]
    document = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(document))
        document += b"%d 0 obj\n%b\nendobj\n" % (number, body)
    xref_at = len(document)
    document += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    document += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return document + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref_at)


def invoice_pdf(invoice: Obj) -> bytes:
    """What the hosted page shows, as Stripe's invoice PDF has it: who bills whom, each line, the totals."""
    currency = str(invoice["currency"])
    issued = (invoice.get("status_transitions") or {}).get("finalized_at") or invoice["created"]
    lines = [
        str(invoice.get("account_name") or ""),
        f"Billed to {invoice.get('customer_email') or invoice['customer']}",
        f"Date of issue: {format_date(int(issued))}",
        f"Status: {str(invoice['status']).title()}",
        "",
    ]
    for line in invoice["lines"]["data"]:
        lines.append(f"{line['description']}: {format_amount(int(line['amount']), currency)}")
        if when := _line_period(line):
            lines.append(f"    {when}")
    lines += [
        "",
        f"Amount due: {format_amount(int(invoice['amount_due']), currency)}",
        f"Amount paid: {format_amount(int(invoice['amount_paid']), currency)}",
    ]
    return _pdf(f"Invoice {invoice.get('number') or ''}", lines)

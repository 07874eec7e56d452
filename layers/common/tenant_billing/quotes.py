"""Server-issued quotes: what a plan-change preview priced, kept for `QUOTE_TTL_SECONDS`, so the
change is charged exactly what its preview showed, at a proration time the server chose. The
client only ever names a quote (`previewId`); it never sends an amount or a date. Pure: the
repository stores quotes, the caller supplies the clock."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterable

from tenant_billing.errors import InvalidRequestError
from tenant_billing.records import frozen
from tenant_billing.stripe_port import ItemChange, SubscriptionItem

QUOTE_TTL_SECONDS = 600
_PREVIEW_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")


@frozen
class Quote:
    preview_id: str
    org_id: str
    subscription_id: str
    plan: str
    site_quantity: int
    interval: str
    # The catalog version priced, and a digest of the item changes priced (price ids, quantities):
    # a change that would apply other prices (a new catalog version deployed meanwhile) is refused.
    plan_version: int
    changes_fingerprint: str
    # The moment Stripe prorated the preview at; the change is prorated at the same moment.
    proration_date: int
    amount_due_now: int
    currency: str
    # The subscription's items when previewed: a change to them since makes the quote void.
    items_fingerprint: str
    expires_at: int


def new_preview_id() -> str:
    # base64url, not hex: a long digit run could be taken for a card number by log scanners.
    return secrets.token_urlsafe(16)


def items_fingerprint(items: Iterable[SubscriptionItem], latest_invoice: str) -> str:
    """A digest of the subscription's items (id, price, quantity) and its latest invoice: equal only
    while nothing was invoiced since and Stripe would prorate a change of them the same way."""
    rows = [*sorted(f"{item.id}|{item.price_id}|{item.quantity}" for item in items), latest_invoice]
    digest = hashlib.sha256("\n".join(rows).encode()).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def changes_fingerprint(changes: Iterable[ItemChange]) -> str:
    """A digest of the item changes a preview priced: the change must apply exactly these."""
    rows = sorted(f"{change.item_id}|{change.price}|{change.quantity}|{change.deleted}" for change in changes)
    digest = hashlib.sha256("\n".join(rows).encode()).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def _invalid(message: str) -> InvalidRequestError:
    return InvalidRequestError(message, field="previewId", code="invalid_preview")


def check_preview_id(preview_id: str) -> None:
    if not _PREVIEW_ID.fullmatch(preview_id):
        raise _invalid("previewId is not one this API issued; preview the change again")


def accept_quote(
    quote: Quote | None, *, org_id: str, subscription_id: str, plan: str, site_quantity: int, interval: str, now: int
) -> Quote:
    """The quote, when it was issued to this organization for exactly this change of its stored
    subscription and has not expired; otherwise 400 invalid_preview (before anything reaches Stripe)."""
    if quote is None or quote.org_id != org_id:
        # Another organization's quote is answered exactly like an unknown one.
        raise _invalid("previewId is unknown; preview the change again")
    if now >= quote.expires_at:
        raise _invalid("the preview expired; preview the change again")
    if (quote.plan, quote.site_quantity, quote.interval) != (plan, site_quantity, interval):
        raise _invalid("the preview was for another plan, site quantity or interval")
    if quote.subscription_id != subscription_id:
        raise _invalid("the subscription changed since the preview; preview the change again")
    return quote


def check_quote_items(quote: Quote, fingerprint: str, changes: str) -> None:
    """The subscription's items as Stripe has them now must be those the preview priced, and the
    change must apply the prices it priced."""
    if quote.items_fingerprint != fingerprint:
        raise _invalid("the subscription changed since the preview; preview the change again")
    if quote.changes_fingerprint != changes:
        raise _invalid("the plan's prices changed since the preview; preview the change again")

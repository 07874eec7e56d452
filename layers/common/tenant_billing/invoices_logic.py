"""GET /billing/invoices: the organization's invoices, newest first, a page at a time."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from tenant_billing.api_models import InvoiceListResponse, InvoiceView
from tenant_billing.auth import Caller
from tenant_billing.catalog import Catalog
from tenant_billing.checkout_logic import require_configured
from tenant_billing.errors import InvalidRequestError
from tenant_billing.org_billing_store import OrgBillingStore
from tenant_billing.settings import Settings
from tenant_billing.status_logic import iso_timestamp
from tenant_billing.stripe_port import Invoice, StripePort, UnknownStartingPoint


def encode_cursor(org_id: str, last_invoice_id: str) -> str:
    """Opaque to callers, and bound to the organization: another org's cursor is refused."""
    raw = json.dumps({"o": org_id, "a": last_invoice_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, org_id: str) -> str:
    invalid = InvalidRequestError("cursor is not valid for this organization", field="cursor", code="invalid_cursor")
    try:
        data: Any = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid from None
    if not isinstance(data, dict) or data.get("o") != org_id or not str(data.get("a", "")).startswith("in_"):
        raise invalid
    return str(data["a"])


def _invoice_view(invoice: Invoice) -> InvoiceView:
    return InvoiceView(
        id=invoice.id,
        number=invoice.number,
        status=invoice.status,
        amount_due=invoice.amount_due,
        amount_paid=invoice.amount_paid,
        currency=invoice.currency,
        period_start=iso_timestamp(invoice.service_start),
        period_end=iso_timestamp(invoice.service_end),
        created=iso_timestamp(invoice.created),
        hosted_invoice_url=invoice.hosted_invoice_url,
        invoice_pdf=invoice.invoice_pdf,
    )


def list_invoices(
    caller: Caller,
    limit: int,
    cursor: str | None,
    repository: OrgBillingStore,
    settings: Settings,
    catalog: Catalog,
    stripe_factory: Callable[[], StripePort],
) -> InvoiceListResponse:
    """Any member may read them. An organization without a Stripe customer has none."""
    starting_after = decode_cursor(cursor, caller.org_id) if cursor else None
    require_configured(settings, catalog)
    billing = repository.get_org_billing(caller.org_id)
    if billing.customer is None or not billing.customer.is_linked:
        return InvoiceListResponse(invoices=[], next_cursor=None)
    try:
        page = stripe_factory().list_invoices(billing.customer.customer_id, limit, starting_after)
    except UnknownStartingPoint:
        # Cursors are not signed: one in the caller's own name may still name no invoice of
        # its customer. That is the caller's mistake, not a misconfiguration.
        raise InvalidRequestError("cursor is not valid for this organization", field="cursor", code="invalid_cursor") from None
    invoices = [_invoice_view(invoice) for invoice in page.data]
    next_cursor = encode_cursor(caller.org_id, invoices[-1].id) if page.has_more and invoices else None
    return InvoiceListResponse(invoices=invoices, next_cursor=next_cursor)

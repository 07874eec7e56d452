"""The invoices page cursor: opaque, and only valid for the organization it was issued to (pure)."""

from __future__ import annotations

import base64
import json

import pytest

from tenant_billing.errors import InvalidRequestError
from tenant_billing.invoices_logic import decode_cursor, encode_cursor


def raw_cursor(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize("invoice_id", ["in_1", "in_1Abc", "in_" + "x" * 200])
def test_a_cursor_round_trips_for_its_organization(invoice_id: str) -> None:
    cursor = encode_cursor("org_acme", invoice_id)
    assert "=" not in cursor
    assert decode_cursor(cursor, "org_acme") == invoice_id


def test_padding_is_accepted_too() -> None:
    padded = base64.urlsafe_b64encode(json.dumps({"o": "org_acme", "a": "in_12"}).encode()).decode()
    assert padded.endswith("=")
    assert decode_cursor(padded, "org_acme") == "in_12"


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param(encode_cursor("org_other", "in_1"), id="another organization's"),
        pytest.param(raw_cursor({"o": "org_acme", "a": "cus_1"}), id="not an invoice id"),
        pytest.param(raw_cursor({"o": "org_acme"}), id="no invoice id"),
        pytest.param(raw_cursor({"a": "in_1"}), id="no organization"),
        pytest.param(raw_cursor(["org_acme", "in_1"]), id="not an object"),
        pytest.param(raw_cursor("in_1"), id="a string"),
        pytest.param("", id="empty"),
        pytest.param("not base64!", id="not base64"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="not utf-8"),
        pytest.param(base64.urlsafe_b64encode(b"{not json").decode(), id="not json"),
    ],
)
def test_anything_else_is_the_callers_error(cursor: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        decode_cursor(cursor, "org_acme")
    assert (raised.value.status_code, raised.value.code, raised.value.field) == (400, "invalid_cursor", "cursor")
    assert str(raised.value) == "cursor is not valid for this organization"

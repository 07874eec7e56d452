"""The forms the hosted pages post: their fields, and the card number typed in."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qs


def parse_form(body: bytes) -> dict[str, str]:
    """A form (or a query string): each field's first value."""
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items() if values}


def card_number(form: Mapping[str, str]) -> str:
    """The card number typed in, without the spaces and dashes people type."""
    return re.sub(r"[\s-]+", "", form.get("card_number", ""))

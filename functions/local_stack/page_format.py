"""How the hosted pages show amounts, prices, dates and cards, as Stripe's pages do."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.stripe_fake.objects import Obj

_ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "vnd", "vuv", "xaf", "xof", "xpf"}
)
# The catalog's currency (plans.json); any other is shown by its code.
_SYMBOLS = {"usd": "$"}


def format_amount(amount: int, currency: str) -> str:
    code = currency.lower()
    value = f"{amount:,}" if code in _ZERO_DECIMAL else f"{amount / 100:,.2f}"
    symbol = _SYMBOLS.get(code)
    return f"{symbol}{value}" if symbol else f"{value} {code.upper()}"


def format_interval(recurring: Obj | None) -> str:
    if not recurring:
        return "one time"
    count, interval = int(recurring.get("interval_count") or 1), str(recurring["interval"])
    return interval if count == 1 else f"{count} {interval}s"


def format_unit_price(price: Obj) -> str:
    """A price as its unit amount per interval: "$10.00 / month"."""
    return f"{format_amount(int(price['unit_amount']), price['currency'])} / {format_interval(price.get('recurring'))}"


def format_date(timestamp: int) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return f"{moment:%B} {moment.day}, {moment.year}"


def card_label(method: Obj | None) -> str:
    card = (method or {}).get("card") or {}
    if not card:
        return "no card"
    return f"{str(card.get('brand') or 'card').title()} \N{BULLET}\N{BULLET}\N{BULLET}\N{BULLET} {card.get('last4')}"

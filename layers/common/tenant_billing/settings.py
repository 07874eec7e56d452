"""The Lambda environment as one frozen dataclass, validated once on first use.

Nothing here runs at import time: `get_settings()` reads `os.environ` the first time a handler
asks, and every later call returns the same validated object. Only the standard library: this
module is on every request path, and pydantic would add tens of milliseconds to each cold start.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, field
from functools import lru_cache
from typing import Any, Literal

from tenant_billing.catalog import PRICE_NAME_PATTERN, get_catalog
from tenant_billing.errors import ConfigurationError
from tenant_billing.records import frozen, record_fields

PRICE_ID_PATTERN = re.compile(r"^price_[A-Za-z0-9_]+$")
PRICES_FORMAT = '{"<price name>": "price_..." | {"lookupKey": "..."}}'


@frozen
class PriceSetting:
    """One entry of STRIPE_PRICES: a Stripe price id, or the `lookup_key` of a Stripe price (which
    the functions that talk to Stripe resolve to its id)."""

    price_id: str = ""
    lookup_key: str = ""


def parse_price_entry(name: str, value: object) -> PriceSetting:
    """One `name: value` of STRIPE_PRICES; the error names the entry and says what it should be."""
    if not re.match(PRICE_NAME_PATTERN, name):
        raise ValueError(f"{name!r} is not a price name (lowercase letters, digits and _, as in plans.json)")
    if isinstance(value, str):
        if not PRICE_ID_PATTERN.match(value):
            raise ValueError(
                f'{name!r}: {value!r} is not a Stripe price id (price_...); a lookup key is written {{"lookupKey": "..."}}'
            )
        return PriceSetting(price_id=value)
    if isinstance(value, dict) and set(value) == {"lookupKey"}:
        key = value["lookupKey"]
        if isinstance(key, str) and 0 < len(key) <= 200 and key.strip() == key:
            return PriceSetting(lookup_key=key)
    raise ValueError(f'{name!r}: expected a price id ("price_...") or {{"lookupKey": "..."}} (1 to 200 characters)')


def parse_prices(raw: object) -> dict[str, PriceSetting]:
    """STRIPE_PRICES as the template passes it: a JSON object of plans.json's price names to their
    prices; empty is none. The error names the entry at fault."""
    if isinstance(raw, str):
        if not raw.strip():
            return {}
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ValueError(f"not JSON; expected {PRICES_FORMAT}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object {PRICES_FORMAT}")
    prices = {str(name): parse_price_entry(str(name), value) for name, value in raw.items()}
    known = get_catalog().price_names()
    if unknown := [name for name in prices if name not in known]:
        raise ValueError(f"{', '.join(map(repr, unknown))} not in plans.json (its prices: {', '.join(known)})")
    given = [price.price_id or f"lookupKey {price.lookup_key}" for price in prices.values()]
    if repeated := sorted({price for price in given if given.count(price) > 1}):
        raise ValueError(f"{', '.join(repeated)} given to more than one price name")
    return prices


# Each Settings field's metadata holds the parser of its variable's text: it returns the value or
# raises ValueError saying what the text should be, without quoting it (a ConfigurationError's
# message reaches API responses).
_PARSE = "parse"
Parser = Callable[[str], object]


def _var(parse: Parser) -> Mapping[str, Parser]:
    return {_PARSE: parse}


def _text(*, min_length: int = 0, max_length: int | None = None) -> Mapping[str, Parser]:
    def parse(value: str) -> str:
        if len(value) < min_length:
            raise ValueError("must not be empty" if min_length == 1 else f"must be at least {min_length} characters")
        if max_length is not None and len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        return value

    return _var(parse)


SHARED_KEY_NAME = "STRIPE_SECRET_KEY"
_KEY_NAME = re.compile(r"STRIPE_SECRET_KEY(_[A-Z]+)?")


def _key_name(value: str) -> str:
    if not _KEY_NAME.fullmatch(value):
        raise ValueError("must be STRIPE_SECRET_KEY or STRIPE_SECRET_KEY_<GROUP> (capital letters)")
    return value


def _base_url(value: str) -> str:
    if value and not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    # Paths are appended to these, so "https://app.example.com/" must not give "//app".
    return value.rstrip("/")


def _one_of(*choices: str) -> Mapping[str, Parser]:
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be {' or '.join(map(repr, choices))}")
        return value

    return _var(parse)


# As pydantic read these from the environment: " 5 ", "+5", "1_000" and "5.0" are integers; "5.5",
# "1e3" and "0x10" are not. Unicode digits (which int() takes) are refused too.
_INTEGER = re.compile(r"[+-]?[0-9](?:_?[0-9])*(?:\.0+)?")


def _to_int(value: str) -> int:
    text = value.strip()
    if not _INTEGER.fullmatch(text):
        raise ValueError("must be an integer")
    return int(text.partition(".")[0])


def _to_float(value: str) -> float:
    # float() takes what pydantic took (" 5 ", "1e1", ".5", "1_0", "inf") and Unicode digits too,
    # which pydantic refused.
    if value.isascii():
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError("must be a number")


def _number(
    convert: Callable[[str], float], *, ge: float | None = None, gt: float | None = None, le: float | None = None
) -> Mapping[str, Parser]:
    def parse(value: str) -> float:
        number = convert(value)
        # Written as `not number >= ge` so that NaN fails every bound.
        if ge is not None and not number >= ge:
            raise ValueError(f"must be at least {ge}")
        if gt is not None and not number > gt:
            raise ValueError(f"must be greater than {gt}")
        if le is not None and not number <= le:
            raise ValueError(f"must be at most {le}")
        return number

    return _var(parse)


def _integer(*, ge: int | None = None, le: int | None = None) -> Mapping[str, Parser]:
    return _number(_to_int, ge=ge, le=le)


def _float(*, gt: float | None = None, le: float | None = None) -> Mapping[str, Parser]:
    return _number(_to_float, gt=gt, le=le)


# The words pydantic took for a bool, in any case; anything else (" true", "2", "") is refused.
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


def _to_bool(value: str) -> bool:
    word = value.lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ValueError("must be true or false (also 1/0, yes/no, on/off)")


def _roles(value: str) -> frozenset[str]:
    return frozenset(role.strip() for role in value.split(",") if role.strip())


@frozen(kw_only=True)
class Settings:
    """Every environment variable the functions read. Field names are the variable names; each
    field's metadata says how its text is read and checked. Build one with `from_environ`."""

    TABLE_NAME: str = field(metadata=_text(min_length=3, max_length=255))
    # The secret's ARN, never its value. Empty means billing is not configured yet.
    STRIPE_SECRET_ARN: str = field(default="", metadata=_text())
    STRIPE_SECRET_MAX_AGE_SECONDS: int = field(default=300, metadata=_integer(ge=0, le=86_400))
    # The secret's entry with this function's own (restricted) key, e.g. STRIPE_SECRET_KEY_CHECKOUT;
    # when the secret has no such entry, its STRIPE_SECRET_KEY (README, "A restricted key").
    STRIPE_KEY_NAME: str = field(default=SHARED_KEY_NAME, metadata=_var(_key_name))
    # A Stripe-compatible server (the local emulator); unset means api.stripe.com.
    STRIPE_API_BASE: str = field(default="", metadata=_var(_base_url))
    STRIPE_MAX_NETWORK_RETRIES: int = field(default=2, metadata=_integer(ge=0, le=5))
    STRIPE_TIMEOUT_SECONDS: float = field(default=8.0, metadata=_float(gt=0, le=60))

    # The catalog's prices by name (template parameter StripePrices): {"pro_base": "price_..."} or
    # {"pro_base": {"lookupKey": "..."}}. A name plans.json does not have is an error.
    STRIPE_PRICES: dict[str, PriceSetting] = field(default_factory=dict, metadata=_var(parse_prices))

    # Checkout and the portal send the user back under it (template parameter AppBaseUrl).
    APP_BASE_URL: str = field(default="http://localhost:3000", metadata=_var(_base_url))
    PORTAL_CONFIGURATION_ID: str = field(default="", metadata=_text())
    ALLOW_PROMOTION_CODES: bool = field(default=False, metadata=_var(_to_bool))
    AUTOMATIC_TAX: bool = field(default=False, metadata=_var(_to_bool))

    TENANT_CLAIM: str = field(default="org_id", metadata=_text(min_length=1))
    ROLE_CLAIM: str = field(default="org_role", metadata=_text(min_length=1))
    # Comma-separated; spaces and empty entries are dropped.
    ADMIN_ROLES: frozenset[str] = field(default=frozenset({"owner", "admin"}), metadata=_var(_roles))

    # What a past_due subscription is entitled to: its plan (Stripe's own dunning is still
    # retrying the card) or the fallback plan.
    PAST_DUE_ENTITLEMENTS: Literal["plan", "fallback"] = field(default="plan", metadata=_one_of("plan", "fallback"))

    # The queue the webhook puts verified Stripe events on (template resource StripeEventsQueue);
    # the consumer returns a message to it with a backoff.
    EVENTS_QUEUE_URL: str = field(default="", metadata=_text())
    # The consumer's Stripe read budget (template parameter StripeReadsPerSecond), shared by at most
    # CONSUMER_CONCURRENCY invocations at once (the event source mapping's MaximumConcurrency).
    STRIPE_READS_PER_SECOND: float = field(default=20, metadata=_float(gt=0, le=100))
    CONSUMER_CONCURRENCY: int = field(default=2, metadata=_integer(ge=1, le=1000))

    # Where EntitlementsChanged events go (a bus name or ARN), and their `source`.
    EVENT_BUS_NAME: str = field(default="default", metadata=_text(min_length=1))
    ENTITLEMENT_EVENT_SOURCE: str = field(default="saas.billing", metadata=_text(min_length=1))

    # Reconciliation: it stops (storing its checkpoint) when less time than the margin is left in
    # the invocation; its lease lasts this long without renewal (renewed with every checkpoint).
    RECONCILE_TIME_MARGIN_MS: int = field(default=20_000, metadata=_integer(ge=0))
    RECONCILE_LEASE_SECONDS: int = field(default=300, metadata=_integer(ge=10))
    RECONCILE_STRIPE_PAGE_SIZE: int = field(default=100, metadata=_integer(ge=1, le=100))
    # Items the table Scan evaluates per page (most items are not subscriptions).
    RECONCILE_SCAN_PAGE_SIZE: int = field(default=500, metadata=_integer(ge=1))
    # A run's "seen in Stripe" pages expire by TTL after this long.
    RECONCILE_SEEN_TTL_SECONDS: int = field(default=7 * 24 * 3600, metadata=_integer(ge=3600))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Read the variables this class names from `environ` (others are ignored); a variable left
        out takes its default. The error names every missing or malformed variable, not the first."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for var in record_fields(cls):
            if var.name not in environ:
                if var.default is MISSING and var.default_factory is MISSING:
                    problems.append(f"{var.name}: required")
                continue
            value = environ[var.name]
            try:
                # The environment holds text only; a mapping built by hand might not.
                if not isinstance(value, str):
                    raise ValueError("must be a string")
                values[var.name] = var.metadata[_PARSE](value)
            except ValueError as exc:
                problems.append(f"{var.name}: {exc}")
        if problems:
            raise ConfigurationError(f"invalid environment: {'; '.join(problems)}")
        return cls(**values)

    @property
    def consumer_reads_per_second(self) -> float:
        """Each consumer invocation's share of the Stripe read budget."""
        return self.STRIPE_READS_PER_SECOND / self.CONSUMER_CONCURRENCY

    @property
    def success_url(self) -> str:
        return f"{self.APP_BASE_URL}/app/settings?billing=success"

    @property
    def cancel_url(self) -> str:
        return f"{self.APP_BASE_URL}/app/billing?billing=canceled"

    @property
    def portal_return_url(self) -> str:
        return f"{self.APP_BASE_URL}/app/billing"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Validate the environment once. The error names each missing or malformed variable."""
    return Settings.from_environ(os.environ)

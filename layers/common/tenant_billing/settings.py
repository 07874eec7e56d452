"""The Lambda environment as one pydantic model, validated once on first use.

Nothing here runs at import time: `get_settings()` reads `os.environ` the first time a handler
asks, and every later call returns the same validated object.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tenant_billing.catalog import PRICE_NAME_PATTERN, get_catalog
from tenant_billing.errors import ConfigurationError

PRICE_ID_PATTERN = re.compile(r"^price_[A-Za-z0-9_]+$")
PRICES_FORMAT = '{"<price name>": "price_..." | {"lookupKey": "..."}}'


class PriceSetting(BaseModel):
    """One entry of STRIPE_PRICES: a Stripe price id, or the `lookup_key` of a Stripe price (which
    the functions that talk to Stripe resolve to its id)."""

    model_config = ConfigDict(frozen=True)

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


class Settings(BaseModel):
    """Every environment variable the functions read. Field names are the variable names."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    TABLE_NAME: str = Field(min_length=3, max_length=255)
    # The secret's ARN, never its value. Empty means billing is not configured yet.
    STRIPE_SECRET_ARN: str = ""
    STRIPE_SECRET_MAX_AGE_SECONDS: int = Field(default=300, ge=0, le=86_400)
    # A Stripe-compatible server (the local emulator); unset means api.stripe.com.
    STRIPE_API_BASE: str = ""
    STRIPE_MAX_NETWORK_RETRIES: int = Field(default=2, ge=0, le=5)
    STRIPE_TIMEOUT_SECONDS: float = Field(default=8.0, gt=0, le=60)

    # The catalog's prices by name (template parameter StripePrices): {"pro_base": "price_..."} or
    # {"pro_base": {"lookupKey": "..."}}. A name plans.json does not have is an error.
    STRIPE_PRICES: dict[str, PriceSetting] = Field(default_factory=dict)

    # Checkout and the portal send the user back under it (template parameter AppBaseUrl).
    APP_BASE_URL: str = "http://localhost:3000"
    PORTAL_CONFIGURATION_ID: str = ""
    ALLOW_PROMOTION_CODES: bool = False
    AUTOMATIC_TAX: bool = False

    TENANT_CLAIM: str = Field(default="org_id", min_length=1)
    ROLE_CLAIM: str = Field(default="org_role", min_length=1)
    ADMIN_ROLES: frozenset[str] = frozenset({"owner", "admin"})

    # What a past_due subscription is entitled to: its plan (Stripe's own dunning is still
    # retrying the card) or the fallback plan.
    PAST_DUE_ENTITLEMENTS: Literal["plan", "fallback"] = "plan"

    # The queue the webhook puts verified Stripe events on (template resource StripeEventsQueue);
    # the consumer returns a message to it with a backoff.
    EVENTS_QUEUE_URL: str = ""
    # The consumer's Stripe read budget (template parameter StripeReadsPerSecond), shared by at most
    # CONSUMER_CONCURRENCY invocations at once (the event source mapping's MaximumConcurrency).
    STRIPE_READS_PER_SECOND: float = Field(default=20, gt=0, le=100)
    CONSUMER_CONCURRENCY: int = Field(default=2, ge=1, le=1000)

    # Where EntitlementsChanged events go (a bus name or ARN), and their `source`.
    EVENT_BUS_NAME: str = Field(default="default", min_length=1)
    ENTITLEMENT_EVENT_SOURCE: str = Field(default="saas.billing", min_length=1)

    # Reconciliation: it stops (storing its checkpoint) when less time than the margin is left in
    # the invocation; its lease lasts this long without renewal (renewed with every checkpoint).
    RECONCILE_TIME_MARGIN_MS: int = Field(default=20_000, ge=0)
    RECONCILE_LEASE_SECONDS: int = Field(default=300, ge=10)
    RECONCILE_STRIPE_PAGE_SIZE: int = Field(default=100, ge=1, le=100)
    # Items the table Scan evaluates per page (most items are not subscriptions).
    RECONCILE_SCAN_PAGE_SIZE: int = Field(default=500, ge=1)
    # A run's "seen in Stripe" pages expire by TTL after this long.
    RECONCILE_SEEN_TTL_SECONDS: int = Field(default=7 * 24 * 3600, ge=3600)

    @field_validator("STRIPE_PRICES", mode="before")
    @classmethod
    def _parse_prices(cls, value: object) -> object:
        return parse_prices(value)

    @field_validator("ADMIN_ROLES", mode="before")
    @classmethod
    def _split_roles(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(role.strip() for role in value.split(",") if role.strip())
        return value

    @field_validator("APP_BASE_URL", "STRIPE_API_BASE")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        # Paths are appended to these, so "https://app.example.com/" must not give "//app".
        return value.rstrip("/")

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
    try:
        return Settings.model_validate({key: value for key, value in os.environ.items() if key in Settings.model_fields})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigurationError(f"invalid environment: {problems}") from None

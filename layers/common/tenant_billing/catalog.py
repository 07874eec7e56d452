"""The plan catalog: `plans.json` beside this module, validated once on first use.

The catalog names each of its prices ("pro_base") rather than holding Stripe's ids: the
STRIPE_PRICES variable (template parameter `StripePrices`) gives each name its Stripe price, so one
catalog serves test mode, live mode and the local emulator, and a plan is added by data alone.
Its `features` and `limits` give each feature and limit key its display name (a limit also its
unit) for pages; a plan that uses a key without one is refused, so a new feature is data too.

Only the standard library: this module is on every request path, and pydantic would add tens of
milliseconds to each cold start. `parse_catalog` checks the JSON and builds frozen dataclasses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

from tenant_billing.errors import ConfigurationError
from tenant_billing.records import frozen

CATALOG_PATH = Path(__file__).with_name("plans.json")

PriceKind = Literal["base", "site"]
# A price name: what STRIPE_PRICES keys its Stripe prices by.
PRICE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


@frozen(kw_only=True)
class BasePrice:
    name: str
    unit_amount: int


@frozen(kw_only=True)
class SitePrice(BasePrice):
    # The numeric limit that each add-on unit raises by one.
    limit: str = "sites"


@frozen(kw_only=True)
class Plan:
    name: str
    base_price: BasePrice
    site_price: SitePrice | None = None
    trial_days: int | None = None
    features: tuple[str, ...]
    limits: dict[str, int]


@frozen(kw_only=True)
class LimitName:
    name: str
    # What the limit counts in ("GB"); None for a plain count ("Sites").
    unit: str | None = None


@frozen(kw_only=True)
class Catalog:
    comment: str | None = None
    currency: str
    fallback_plan: str
    max_site_quantity: int
    # What pages show for each feature and limit key (the keys are what entitlements carry).
    feature_names: dict[str, str]
    limit_names: dict[str, LimitName]
    # In catalog order: the order plans are listed and their prices are matched in.
    plans: dict[str, Plan]

    def plan(self, plan_id: str) -> Plan | None:
        return self.plans.get(plan_id)

    def monthly_value(self, plan_id: str | None, site_quantity: int) -> int:
        """What a plan with its add-ons lists for, from the catalog's amounts; -1 for no known plan."""
        plan = self.plans.get(plan_id) if plan_id else None
        if plan is None:
            return -1
        sites = plan.site_price.unit_amount * site_quantity if plan.site_price else 0
        return plan.base_price.unit_amount + sites

    def prices(self) -> list[tuple[str, PriceKind, BasePrice]]:
        """Every price of the catalog as (plan id, kind, price), in catalog order."""
        found: list[tuple[str, PriceKind, BasePrice]] = []
        for plan_id, plan in self.plans.items():
            found.append((plan_id, "base", plan.base_price))
            if plan.site_price:
                found.append((plan_id, "site", plan.site_price))
        return found

    def price_names(self) -> list[str]:
        return [price.name for _, _, price in self.prices()]

    def base_price_names(self) -> list[str]:
        return [plan.base_price.name for plan in self.plans.values()]

    def price_index(self, price_ids: Mapping[str, str]) -> dict[str, PriceRef]:
        """Map configured Stripe price ids to (plan, kind), given {price name: price id}."""
        return {
            price_ids[price.name]: PriceRef(plan_id, kind) for plan_id, kind, price in self.prices() if price_ids.get(price.name)
        }


@frozen
class PriceRef:
    plan: str
    kind: PriceKind


class _Invalid(ValueError):
    """The first fault found in the document: the path of the field at fault and why."""


def _at(path: str, key: str | int) -> str:
    """A member's path: `plans.pro`, `plans.pro.features[1]`; a top-level key is its own path."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


_KINDS: tuple[tuple[type[object], str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a decimal number"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)


def _kind(value: object) -> str:
    """The JSON type of a value, for messages."""
    return "null" if value is None else next((name for kind, name in _KINDS if isinstance(value, kind)), "a value")


def _object(value: object, path: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, object]:
    """A JSON object with the required keys and no key but those and the optional ones, at every
    level, so that a misspelt key is an error rather than a silently ignored setting."""
    if not isinstance(value, dict):
        raise _Invalid(f"{path}: must be an object, not {_kind(value)}" if path else "must be a JSON object")
    known = required + optional
    if (unknown := next((key for key in value if key not in known), None)) is not None:
        raise _Invalid(f"{_at(path, unknown)}: unknown field (expected {', '.join(known)})")
    if (missing := next((key for key in required if key not in value), None)) is not None:
        raise _Invalid(f"{_at(path, missing)}: required")
    return value


def _integer(value: object, path: str, *, ge: int, le: int | None = None) -> int:
    # Strictly a JSON integer: true, "5" and 5.0 are not 5.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"{path}: must be an integer, not {_kind(value)}")
    if value < ge or (le is not None and value > le):
        raise _Invalid(f"{path}: must be at least {ge}" + (f" and at most {le}" if le is not None else ""))
    return value


def _string(value: object, path: str, *, min_length: int = 0) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"{path}: must be a string, not {_kind(value)}")
    if len(value) < min_length:
        raise _Invalid(f"{path}: must not be empty")
    return value


def _matching(value: object, path: str, pattern: str, meaning: str) -> str:
    text = _string(value, path)
    # fullmatch: pattern's "$" alone would let a trailing newline through.
    if not re.fullmatch(pattern, text):
        raise _Invalid(f"{path}: {text!r} is not {meaning}")
    return text


def _price_fields(doc: dict[str, object], path: str) -> tuple[str, int]:
    name = _matching(doc["name"], f"{path}.name", PRICE_NAME_PATTERN, "a price name (a-z, then up to 63 of a-z, 0-9 and _)")
    return name, _integer(doc["unitAmount"], f"{path}.unitAmount", ge=0)


def _base_price(raw: object, path: str) -> BasePrice:
    name, unit_amount = _price_fields(_object(raw, path, ("name", "unitAmount")), path)
    return BasePrice(name=name, unit_amount=unit_amount)


def _site_price(raw: object, path: str) -> SitePrice:
    doc = _object(raw, path, ("name", "unitAmount"), ("limit",))
    name, unit_amount = _price_fields(doc, path)
    return SitePrice(name=name, unit_amount=unit_amount, limit=_string(doc.get("limit", "sites"), f"{path}.limit"))


def _plan(raw: object, path: str) -> Plan:
    doc = _object(raw, path, ("name", "basePrice", "features", "limits"), ("sitePrice", "trialDays"))
    name = _string(doc["name"], f"{path}.name", min_length=1)
    base_price = _base_price(doc["basePrice"], f"{path}.basePrice")
    raw_site = doc.get("sitePrice")
    site_price = None if raw_site is None else _site_price(raw_site, f"{path}.sitePrice")
    raw_trial = doc.get("trialDays")
    trial_days = None if raw_trial is None else _integer(raw_trial, f"{path}.trialDays", ge=1, le=730)

    raw_features = doc["features"]
    if not isinstance(raw_features, list):
        raise _Invalid(f"{path}.features: must be an array, not {_kind(raw_features)}")
    features = tuple(_string(feature, _at(f"{path}.features", i)) for i, feature in enumerate(raw_features))
    if (repeated := next((feature for i, feature in enumerate(features) if feature in features[:i]), None)) is not None:
        raise _Invalid(f"{path}.features: {repeated!r} is listed more than once")

    raw_limits = doc["limits"]
    if not isinstance(raw_limits, dict):
        raise _Invalid(f"{path}.limits: must be an object, not {_kind(raw_limits)}")
    limits = {key: _integer(value, _at(f"{path}.limits", key), ge=0) for key, value in raw_limits.items()}
    if site_price is not None and site_price.limit not in limits:
        raise _Invalid(f"{path}.sitePrice.limit: {site_price.limit!r} is not one of this plan's limits ({', '.join(limits)})")

    return Plan(name=name, base_price=base_price, site_price=site_price, trial_days=trial_days, features=features, limits=limits)


def _feature_names(raw: object) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise _Invalid(f"features: must be an object, not {_kind(raw)}")
    return {key: _string(name, _at("features", key), min_length=1) for key, name in raw.items()}


def _limit_names(raw: object) -> dict[str, LimitName]:
    if not isinstance(raw, dict):
        raise _Invalid(f"limits: must be an object, not {_kind(raw)}")
    names = {}
    for key, value in raw.items():
        path = _at("limits", key)
        doc = _object(value, path, ("name",), ("unit",))
        raw_unit = doc.get("unit")
        unit = None if raw_unit is None else _string(raw_unit, f"{path}.unit", min_length=1)
        names[key] = LimitName(name=_string(doc["name"], f"{path}.name", min_length=1), unit=unit)
    return names


def _require_display_names(plans: dict[str, Plan], feature_names: dict[str, str], limit_names: dict[str, LimitName]) -> None:
    """Every feature and limit a plan uses has a display name, so a page never shows a raw key."""
    for plan_id, plan in plans.items():
        path = _at("plans", plan_id)
        for i, feature in enumerate(plan.features):
            if feature not in feature_names:
                raise _Invalid(f"{_at(f'{path}.features', i)}: {feature!r} has no display name in features")
        for limit in plan.limits:
            if limit not in limit_names:
                raise _Invalid(f"{_at(f'{path}.limits', limit)}: {limit!r} has no display name in limits")


def _catalog(raw: object) -> Catalog:
    doc = _object(raw, "", ("currency", "fallbackPlan", "maxSiteQuantity", "features", "limits", "plans"), ("$comment",))
    raw_comment = doc.get("$comment")
    comment = None if raw_comment is None else _string(raw_comment, "$comment")
    currency = _matching(doc["currency"], "currency", r"^[a-z]{3}$", "a currency code (three lowercase letters)")
    fallback_plan = _string(doc["fallbackPlan"], "fallbackPlan")
    max_site_quantity = _integer(doc["maxSiteQuantity"], "maxSiteQuantity", ge=0, le=10_000)
    feature_names = _feature_names(doc["features"])
    limit_names = _limit_names(doc["limits"])

    raw_plans = doc["plans"]
    if not isinstance(raw_plans, dict):
        raise _Invalid(f"plans: must be an object, not {_kind(raw_plans)}")
    if not raw_plans:
        raise _Invalid("plans: must hold at least one plan")
    for plan_id in raw_plans:
        # A plan key is stored, shown and part of its Stripe product ids (plan_<key>_base).
        _matching(plan_id, _at("plans", plan_id), PRICE_NAME_PATTERN, "a plan key (a-z, then up to 63 of a-z, 0-9 and _)")
    plans = {plan_id: _plan(plan, _at("plans", plan_id)) for plan_id, plan in raw_plans.items()}

    if fallback_plan not in plans:
        raise _Invalid(f"fallbackPlan: {fallback_plan!r} is not a plan ({', '.join(plans)})")
    _require_display_names(plans, feature_names, limit_names)
    catalog = Catalog(
        comment=comment,
        currency=currency,
        fallback_plan=fallback_plan,
        max_site_quantity=max_site_quantity,
        feature_names=feature_names,
        limit_names=limit_names,
        plans=plans,
    )
    # STRIPE_PRICES gives each name one Stripe price, so a name may belong to one plan price only.
    first: dict[str, str] = {}
    for plan_id, kind, price in catalog.prices():
        path = f"plans.{plan_id}.{kind}Price"
        if price.name in first:
            raise _Invalid(f"{path}.name: {price.name!r} is already the name of {first[price.name]}")
        first[price.name] = path
    return catalog


def parse_catalog(raw: str | bytes) -> Catalog:
    """The catalog from its JSON. The error names the first field at fault by its path in the
    document (`plans.pro.basePrice.unitAmount`) and says what it should be."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ConfigurationError(f"invalid plan catalog: not JSON: {exc}") from None
    try:
        return _catalog(doc)
    except _Invalid as exc:
        raise ConfigurationError(f"invalid plan catalog: {exc}") from None


@lru_cache(maxsize=1)
def get_catalog() -> Catalog:
    return parse_catalog(CATALOG_PATH.read_bytes())

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
# How often a price bills: what checkout, preview and change take as `interval`.
Interval = Literal["month", "year"]
INTERVALS: tuple[Interval, ...] = ("month", "year")
DEFAULT_INTERVAL: Interval = "month"
# A price name: what STRIPE_PRICES keys its Stripe prices by.
PRICE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
# What Stripe does at a card-less trial's end when no payment method was added (trial_settings).
MissingPaymentMethod = Literal["cancel", "pause"]
TrialPaymentMethod = Literal["always", "if_required"]


@frozen(kw_only=True)
class BasePrice:
    name: str
    unit_amount: int


@frozen(kw_only=True)
class SitePrice(BasePrice):
    # The numeric limit that each add-on unit raises by one.
    limit: str = "sites"


@frozen(kw_only=True)
class IntervalPrices:
    """What one version of a plan costs at one billing interval."""

    base: BasePrice
    site: SitePrice | None = None


@frozen(kw_only=True)
class PlanVersion:
    """A plan as sold from one date: its prices by interval, and what a subscriber to them gets.
    A subscription keeps its version's features and limits until it is moved to another."""

    version: int
    # By interval, month first: every version bills monthly, yearly when it offers it.
    prices: dict[str, IntervalPrices]
    features: tuple[str, ...]
    limits: dict[str, int]

    def at(self, interval: str) -> IntervalPrices | None:
        return self.prices.get(interval)

    @property
    def site_limit(self) -> str | None:
        """The limit the per-site add-on raises (the same at every interval), or None without one."""
        site = self.prices[DEFAULT_INTERVAL].site
        return site.limit if site is not None else None


@frozen(kw_only=True)
class Trial:
    days: int
    # if_required: Checkout asks for no card when nothing is due (the trial), so the trial starts card-less.
    payment_method: TrialPaymentMethod = "always"
    # What Stripe does at the end of a trial that still has no payment method (if_required only).
    without_payment_method: MissingPaymentMethod | None = None

    @property
    def card_less(self) -> bool:
        return self.payment_method == "if_required"


@frozen(kw_only=True)
class Plan:
    name: str
    current_version: int
    # By version number, oldest first.
    versions: dict[int, PlanVersion]
    # Offered once per organization, with the plan's current version.
    trial: Trial | None = None

    @property
    def current(self) -> PlanVersion:
        """What new checkouts buy."""
        return self.versions[self.current_version]


@frozen(kw_only=True)
class LimitName:
    name: str
    # What the limit counts in ("GB"); None for a plain count ("Sites").
    unit: str | None = None


@frozen
class PriceRef:
    """Which catalog price a Stripe price is: its plan, version, billing interval and kind."""

    plan: str
    kind: PriceKind
    version: int = 1
    interval: str = DEFAULT_INTERVAL


@frozen
class CatalogPrice:
    ref: PriceRef
    price: BasePrice


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

    def version(self, plan_id: str | None, version: int | None) -> PlanVersion | None:
        """The plan's version, or None for an unknown plan or version."""
        plan = self.plans.get(plan_id) if plan_id else None
        return plan.versions.get(version) if plan is not None and version is not None else None

    def monthly_value(self, plan_id: str | None, site_quantity: int, version: int | None = None, interval: str = "month") -> int:
        """What a plan version (the current one by default) with its add-ons lists for a month, from
        the catalog's amounts (a yearly price counts a twelfth); -1 for no known plan or price."""
        plan = self.plans.get(plan_id) if plan_id else None
        found = self.version(plan_id, plan.current_version if version is None else version) if plan else None
        prices = found.at(interval) if found is not None else None
        if prices is None:
            return -1
        sites = prices.site.unit_amount * site_quantity if prices.site else 0
        total = prices.base.unit_amount + sites
        return total // 12 if interval == "year" else total

    def prices(self) -> list[CatalogPrice]:
        """Every price of the catalog, in catalog order (plan, version, interval, base then site)."""
        found: list[CatalogPrice] = []
        for plan_id, plan in self.plans.items():
            for number, version in plan.versions.items():
                for interval, prices in version.prices.items():
                    found.append(CatalogPrice(PriceRef(plan_id, "base", number, interval), prices.base))
                    if prices.site:
                        found.append(CatalogPrice(PriceRef(plan_id, "site", number, interval), prices.site))
        return found

    def price_names(self) -> list[str]:
        return [entry.price.name for entry in self.prices()]

    def base_price_names(self) -> list[str]:
        """The base price of every version at every interval: what billing needs configured, so that
        no subscriber of an older version or of a yearly price is ever unknown."""
        return [entry.price.name for entry in self.prices() if entry.ref.kind == "base"]

    def price_index(self, price_ids: Mapping[str, str]) -> dict[str, PriceRef]:
        """Map configured Stripe price ids to their catalog price, given {price name: price id}."""
        return {price_ids[entry.price.name]: entry.ref for entry in self.prices() if price_ids.get(entry.price.name)}


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


def _interval_prices(raw: object, path: str) -> IntervalPrices:
    doc = _object(raw, path, ("base",), ("site",))
    raw_site = doc.get("site")
    site = None if raw_site is None else _site_price(raw_site, f"{path}.site")
    return IntervalPrices(base=_base_price(doc["base"], f"{path}.base"), site=site)


def _version_prices(raw: object, path: str) -> dict[str, IntervalPrices]:
    doc = _object(raw, path, (), INTERVALS)
    if DEFAULT_INTERVAL not in doc:
        raise _Invalid(f"{_at(path, DEFAULT_INTERVAL)}: required (every version has a monthly base price)")
    prices: dict[str, IntervalPrices] = {
        interval: _interval_prices(doc[interval], _at(path, interval)) for interval in INTERVALS if interval in doc
    }
    # Stripe bills every item of a subscription at one interval: the add-on is sold at each or at none.
    monthly_site = prices[DEFAULT_INTERVAL].site
    for interval, found in prices.items():
        if (found.site is None) != (monthly_site is None):
            raise _Invalid(f"{_at(path, interval)}.site: a version sells its per-site add-on at every interval or at none")
        if found.site is not None and monthly_site is not None and found.site.limit != monthly_site.limit:
            raise _Invalid(f"{_at(path, interval)}.site.limit: must be {monthly_site.limit!r}, the limit of the monthly add-on")
    return prices


def _version(raw: object, path: str, number: int) -> PlanVersion:
    doc = _object(raw, path, ("prices", "features", "limits"))
    prices = _version_prices(doc["prices"], f"{path}.prices")

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
    version = PlanVersion(version=number, prices=prices, features=features, limits=limits)
    if version.site_limit is not None and version.site_limit not in limits:
        raise _Invalid(
            f"{path}.prices.month.site.limit: {version.site_limit!r} is not one of this version's limits ({', '.join(limits)})"
        )
    return version


def _trial(raw: object, path: str) -> Trial:
    doc = _object(raw, path, ("days",), ("paymentMethod", "withoutPaymentMethod"))
    days = _integer(doc["days"], f"{path}.days", ge=1, le=730)
    payment_method: TrialPaymentMethod
    match doc.get("paymentMethod", "always"):
        case "always" | "if_required" as payment_method:
            pass
        case other:
            raise _Invalid(f"{path}.paymentMethod: {other!r} is not always or if_required")
    ending: MissingPaymentMethod | None
    match doc.get("withoutPaymentMethod"):
        case None:
            if payment_method == "if_required":
                raise _Invalid(
                    f"{path}.withoutPaymentMethod: required for a card-less trial: what Stripe does when it ends "
                    "without a card (cancel or pause)"
                )
            ending = None
        case "cancel" | "pause" as ending:
            if payment_method == "always":
                raise _Invalid(f"{path}.withoutPaymentMethod: only for a card-less trial (paymentMethod if_required)")
        case other:
            raise _Invalid(f"{path}.withoutPaymentMethod: {other!r} is not cancel or pause")
    return Trial(days=days, payment_method=payment_method, without_payment_method=ending)


def _plan(raw: object, path: str) -> Plan:
    doc = _object(raw, path, ("name", "currentVersion", "versions"), ("trial",))
    name = _string(doc["name"], f"{path}.name", min_length=1)
    raw_versions = doc["versions"]
    if not isinstance(raw_versions, dict) or not raw_versions:
        raise _Invalid(f"{path}.versions: must be an object holding at least one version")
    versions: dict[int, PlanVersion] = {}
    for key, raw_version in raw_versions.items():
        # A version is stored and shown as its number: "1", "2", ... (no "01": one spelling each).
        _matching(key, _at(f"{path}.versions", key), r"^[1-9][0-9]{0,5}$", "a version number (1, 2, ...)")
        versions[int(key)] = _version(raw_version, _at(f"{path}.versions", key), int(key))
    if list(versions) != sorted(versions):
        raise _Invalid(f"{path}.versions: must be listed oldest first (by version number)")
    current = _integer(doc["currentVersion"], f"{path}.currentVersion", ge=1)
    if current not in versions:
        raise _Invalid(f"{path}.currentVersion: {current} is not one of its versions ({', '.join(map(str, versions))})")
    raw_trial = doc.get("trial")
    trial = None if raw_trial is None else _trial(raw_trial, f"{path}.trial")
    return Plan(name=name, current_version=current, versions=versions, trial=trial)


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
    """Every feature and limit a version uses has a display name, so a page never shows a raw key."""
    for plan_id, plan in plans.items():
        for number, version in plan.versions.items():
            path = f"plans.{plan_id}.versions.{number}"
            for i, feature in enumerate(version.features):
                if feature not in feature_names:
                    raise _Invalid(f"{_at(f'{path}.features', i)}: {feature!r} has no display name in features")
            for limit in version.limits:
                if limit not in limit_names:
                    raise _Invalid(f"{_at(f'{path}.limits', limit)}: {limit!r} has no display name in limits")


def _price_path(entry: CatalogPrice) -> str:
    ref = entry.ref
    return f"plans.{ref.plan}.versions.{ref.version}.prices.{ref.interval}.{ref.kind}"


def _require_unique_price_names(catalog: Catalog) -> None:
    """STRIPE_PRICES gives each name one Stripe price, so a name belongs to one plan price only: a
    name reused by another plan or version would sell one price as two things."""
    first: dict[str, str] = {}
    for entry in catalog.prices():
        path = _price_path(entry)
        if entry.price.name in first:
            raise _Invalid(f"{path}.name: {entry.price.name!r} is already the name of {first[entry.price.name]}")
        first[entry.price.name] = path


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
    _require_unique_price_names(catalog)
    return catalog


def _refuse_repeated_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """JSON keeps the last of two equal keys: a plan or version written twice would silently lose one."""
    doc: dict[str, object] = {}
    for key, value in pairs:
        if key in doc:
            raise _Invalid(f"{key!r} appears twice in one object")
        doc[key] = value
    return doc


def parse_catalog(raw: str | bytes) -> Catalog:
    """The catalog from its JSON. The error names the first field at fault by its path in the
    document (`plans.pro.basePrice.unitAmount`) and says what it should be."""
    try:
        doc = json.loads(raw, object_pairs_hook=_refuse_repeated_keys)
    except _Invalid as exc:
        raise ConfigurationError(f"invalid plan catalog: {exc}") from None
    except ValueError as exc:
        raise ConfigurationError(f"invalid plan catalog: not JSON: {exc}") from None
    try:
        return _catalog(doc)
    except _Invalid as exc:
        raise ConfigurationError(f"invalid plan catalog: {exc}") from None


@lru_cache(maxsize=1)
def get_catalog() -> Catalog:
    return parse_catalog(CATALOG_PATH.read_bytes())

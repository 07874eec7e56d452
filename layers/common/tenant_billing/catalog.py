"""The plan catalog: `plans.json` beside this module, validated once on first use.

The catalog names each of its prices ("pro_base") rather than holding Stripe's ids: the
STRIPE_PRICES variable (template parameter `StripePrices`) gives each name its Stripe price, so one
catalog serves test mode, live mode and the local emulator, and a plan is added by data alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tenant_billing.errors import ConfigurationError

CATALOG_PATH = Path(__file__).with_name("plans.json")

PriceKind = Literal["base", "site"]
# A price name: what STRIPE_PRICES keys its Stripe prices by.
PRICE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class BasePrice(_Strict):
    name: str = Field(pattern=PRICE_NAME_PATTERN)
    unit_amount: int = Field(alias="unitAmount", ge=0)


class SitePrice(BasePrice):
    # The numeric limit that each add-on unit raises by one.
    limit: str = "sites"


class Plan(_Strict):
    name: str = Field(min_length=1)
    base_price: BasePrice = Field(alias="basePrice")
    site_price: SitePrice | None = Field(default=None, alias="sitePrice")
    trial_days: int | None = Field(default=None, alias="trialDays", ge=1, le=730)
    features: tuple[str, ...]
    limits: dict[str, int]

    @model_validator(mode="after")
    def _check(self) -> Plan:
        if len(set(self.features)) != len(self.features):
            raise ValueError("features must not repeat")
        if any(value < 0 for value in self.limits.values()):
            raise ValueError("limits must not be negative")
        if self.site_price is not None and self.site_price.limit not in self.limits:
            raise ValueError(f"sitePrice.limit {self.site_price.limit!r} is not one of this plan's limits")
        return self


class Catalog(_Strict):
    comment: str | None = Field(default=None, alias="$comment")
    currency: str = Field(pattern=r"^[a-z]{3}$")
    fallback_plan: str = Field(alias="fallbackPlan")
    max_site_quantity: int = Field(alias="maxSiteQuantity", ge=0, le=10_000)
    plans: dict[str, Plan] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Catalog:
        if self.fallback_plan not in self.plans:
            raise ValueError(f"fallbackPlan {self.fallback_plan!r} is not a plan")
        names = [price.name for _, _, price in self.prices()]
        if len(set(names)) != len(names):
            raise ValueError("each price name may belong to one plan price only")
        return self

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


@dataclass(frozen=True, slots=True)
class PriceRef:
    plan: str
    kind: PriceKind


def parse_catalog(raw: str | bytes) -> Catalog:
    try:
        return Catalog.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise ConfigurationError(f"invalid plan catalog: {exc}") from None


@lru_cache(maxsize=1)
def get_catalog() -> Catalog:
    return parse_catalog(CATALOG_PATH.read_bytes())

"""The plan catalog: `plans.json` beside this module, validated once on first use.

The catalog names the environment variable that holds each Stripe price id rather than the id
itself, so one catalog serves test mode, live mode and the local emulator.
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


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class BasePrice(_Strict):
    env: str = Field(pattern=r"^STRIPE_PRICE_[A-Z0-9_]+$")
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
        envs = [plan.base_price.env for plan in self.plans.values()]
        envs += [plan.site_price.env for plan in self.plans.values() if plan.site_price]
        if len(set(envs)) != len(envs):
            raise ValueError("each price variable may belong to one plan price only")
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

    def base_price_envs(self) -> list[str]:
        return [plan.base_price.env for plan in self.plans.values()]

    def price_index(self, price_ids: Mapping[str, str]) -> dict[str, PriceRef]:
        """Map configured Stripe price ids to (plan, kind), given {env name: price id}."""
        index: dict[str, PriceRef] = {}
        for plan_id, plan in self.plans.items():
            if price_id := price_ids.get(plan.base_price.env):
                index[price_id] = PriceRef(plan_id, "base")
            if plan.site_price and (price_id := price_ids.get(plan.site_price.env)):
                index[price_id] = PriceRef(plan_id, "site")
        return index


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

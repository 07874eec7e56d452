from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tenant_billing.catalog import CATALOG_PATH, get_catalog, parse_catalog
from tenant_billing.errors import ConfigurationError


def shipped() -> dict[str, Any]:
    return copy.deepcopy(json.loads(CATALOG_PATH.read_text()))


def test_the_shipped_catalog_is_valid_and_matches_the_pricing() -> None:
    catalog = get_catalog()
    assert catalog.fallback_plan == "starter"
    assert catalog.max_site_quantity == 100
    amounts = {
        plan_id: (plan.base_price.unit_amount, plan.site_price and plan.site_price.unit_amount)
        for plan_id, plan in catalog.plans.items()
    }
    assert amounts == {"starter": (2900, None), "pro": (7900, 1900), "enterprise": (19900, 900)}
    assert catalog.base_price_names() == ["starter_base", "pro_base", "enterprise_base"]


def test_price_index_maps_configured_ids_to_plan_and_kind() -> None:
    index = get_catalog().price_index({"pro_base": "price_a", "pro_site": "price_b"})
    assert {price: (ref.plan, ref.kind) for price, ref in index.items()} == {
        "price_a": ("pro", "base"),
        "price_b": ("pro", "site"),
    }


def mutate_fallback(doc: dict[str, Any]) -> None:
    doc["fallbackPlan"] = "free"


def mutate_duplicate_feature(doc: dict[str, Any]) -> None:
    doc["plans"]["pro"]["features"].append("analytics")


def mutate_negative_limit(doc: dict[str, Any]) -> None:
    doc["plans"]["starter"]["limits"]["sites"] = -1


def mutate_addon_limit(doc: dict[str, Any]) -> None:
    doc["plans"]["pro"]["sitePrice"]["limit"] = "seats"


def mutate_unknown_field(doc: dict[str, Any]) -> None:
    doc["plans"]["pro"]["discount"] = 10


def mutate_shared_price_name(doc: dict[str, Any]) -> None:
    doc["plans"]["pro"]["sitePrice"]["name"] = "pro_base"


def mutate_bad_price_name(doc: dict[str, Any]) -> None:
    doc["plans"]["pro"]["basePrice"]["name"] = "STRIPE_PRICE_PRO_BASE"


def mutate_no_plans(doc: dict[str, Any]) -> None:
    doc["plans"] = {}
    doc["fallbackPlan"] = "starter"


def mutate_negative_max(doc: dict[str, Any]) -> None:
    doc["maxSiteQuantity"] = -5


def mutate_limit_not_integer(doc: dict[str, Any]) -> None:
    doc["plans"]["pro"]["limits"]["storage_gb"] = "ten"


@pytest.mark.parametrize(
    "mutate",
    [
        mutate_fallback,
        mutate_duplicate_feature,
        mutate_negative_limit,
        mutate_addon_limit,
        mutate_unknown_field,
        mutate_shared_price_name,
        mutate_bad_price_name,
        mutate_no_plans,
        mutate_negative_max,
        mutate_limit_not_integer,
    ],
)
def test_invalid_catalogs_are_rejected(mutate: Any) -> None:
    doc = shipped()
    mutate(doc)
    with pytest.raises(ConfigurationError, match="invalid plan catalog"):
        parse_catalog(json.dumps(doc))


def test_malformed_json_is_rejected() -> None:
    with pytest.raises(ConfigurationError):
        parse_catalog(b"{not json")


def test_an_operator_can_add_a_plan_without_code() -> None:
    doc = shipped()
    doc["plans"]["team"] = {
        "name": "Team",
        "basePrice": {"name": "team_base", "unitAmount": 4900},
        "sitePrice": None,
        "trialDays": 14,
        "features": ["page_builder"],
        "limits": {"sites": 3},
    }
    catalog = parse_catalog(json.dumps(doc))
    assert catalog.plans["team"].trial_days == 14

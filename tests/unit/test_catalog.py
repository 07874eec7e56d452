from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest

from tenant_billing.catalog import CATALOG_PATH, BasePrice, LimitName, SitePrice, get_catalog, parse_catalog
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


def test_every_feature_and_limit_of_the_shipped_catalog_has_a_display_name() -> None:
    catalog = get_catalog()
    used_features = {feature for plan in catalog.plans.values() for feature in plan.features}
    used_limits = {limit for plan in catalog.plans.values() for limit in plan.limits}
    assert used_features <= set(catalog.feature_names) and used_limits <= set(catalog.limit_names)
    assert catalog.feature_names["page_builder"] == "Page builder"
    assert catalog.limit_names["storage_gb"] == LimitName(name="Storage", unit="GB")
    assert catalog.limit_names["sites"] == LimitName(name="Sites", unit=None)


def test_an_operator_adds_a_feature_and_a_limit_as_data() -> None:
    doc = shipped()
    doc["features"]["live_chat"] = "Live chat"
    doc["limits"]["seats"] = {"name": "Team seats"}
    doc["plans"]["enterprise"]["features"].append("live_chat")
    doc["plans"]["enterprise"]["limits"]["seats"] = 25
    catalog = parse_catalog(json.dumps(doc))
    assert catalog.feature_names["live_chat"] == "Live chat" and catalog.limit_names["seats"].name == "Team seats"
    # A display name no plan uses yet is allowed: a feature can be named before a plan sells it.
    doc["features"]["video_hosting"] = "Video hosting"
    assert "video_hosting" in parse_catalog(json.dumps(doc)).feature_names


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


@pytest.mark.parametrize("key", ["pro bad/x", "Pro", "1pro", ""])
def test_a_plan_key_that_cannot_be_a_stripe_product_id_part_is_rejected(key: str) -> None:
    doc = shipped()
    doc["plans"][key] = doc["plans"].pop("enterprise")
    with pytest.raises(ConfigurationError) as raised:
        parse_catalog(json.dumps(doc))
    assert str(raised.value).startswith(f"invalid plan catalog: plans.{key}: {key!r} is not a plan key")


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


DELETE = object()


def edit(doc: dict[str, Any], where: tuple[str | int, ...], value: object) -> None:
    """Set the field at `where` to `value`, or remove it for DELETE."""
    parent: Any = doc
    for key in where[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[where[-1]]
    else:
        parent[where[-1]] = value


PRO = ("plans", "pro")
RULES: list[tuple[tuple[str | int, ...], object, str]] = [
    # Unknown keys are refused at every level (a misspelt key is not a setting silently ignored).
    (("currencies",), "usd", "currencies: unknown field"),
    ((*PRO, "discount"), 10, "plans.pro.discount: unknown field"),
    ((*PRO, "basePrice", "limit"), "sites", "plans.pro.basePrice.limit: unknown field"),
    ((*PRO, "sitePrice", "unit_amount"), 1900, "plans.pro.sitePrice.unit_amount: unknown field"),
    ((*PRO, "trial_days"), 14, "plans.pro.trial_days: unknown field"),
    # Required fields.
    (("currency",), DELETE, "currency: required"),
    (("fallbackPlan",), DELETE, "fallbackPlan: required"),
    (("maxSiteQuantity",), DELETE, "maxSiteQuantity: required"),
    (("features",), DELETE, "features: required"),
    (("limits",), DELETE, "limits: required"),
    (("plans",), DELETE, "plans: required"),
    ((*PRO, "name"), DELETE, "plans.pro.name: required"),
    ((*PRO, "basePrice"), DELETE, "plans.pro.basePrice: required"),
    ((*PRO, "features"), DELETE, "plans.pro.features: required"),
    ((*PRO, "limits"), DELETE, "plans.pro.limits: required"),
    ((*PRO, "basePrice", "name"), DELETE, "plans.pro.basePrice.name: required"),
    ((*PRO, "sitePrice", "unitAmount"), DELETE, "plans.pro.sitePrice.unitAmount: required"),
    # The top level.
    (("$comment",), 1, "$comment: must be a string, not an integer"),
    (("currency",), "USD", "currency: 'USD' is not a currency code"),
    (("currency",), "usd\n", "currency: 'usd\\n' is not a currency code"),
    (("currency",), "usdx", "currency: 'usdx' is not a currency code"),
    (("currency",), 840, "currency: must be a string, not an integer"),
    (("fallbackPlan",), "free", "fallbackPlan: 'free' is not a plan"),
    (("fallbackPlan",), None, "fallbackPlan: must be a string, not null"),
    (("maxSiteQuantity",), -5, "maxSiteQuantity: must be at least 0 and at most 10000"),
    (("maxSiteQuantity",), 10_001, "maxSiteQuantity: must be at least 0 and at most 10000"),
    (("plans",), {}, "plans: must hold at least one plan"),
    (("plans",), [], "plans: must be an object, not an array"),
    (PRO, None, "plans.pro: must be an object, not null"),
    # Display names: every feature and limit a plan uses has one.
    (("features",), [], "features: must be an object, not an array"),
    (("features", "crm"), "", "features.crm: must not be empty"),
    (("features", "crm"), None, "features.crm: must be a string, not null"),
    (("features", "analytics"), DELETE, "plans.pro.features[3]: 'analytics' has no display name in features"),
    (("limits",), ["sites"], "limits: must be an object, not an array"),
    (("limits", "sites"), "Sites", "limits.sites: must be an object, not a string"),
    (("limits", "sites", "name"), DELETE, "limits.sites.name: required"),
    (("limits", "sites", "name"), "", "limits.sites.name: must not be empty"),
    (("limits", "sites", "label"), "Sites", "limits.sites.label: unknown field"),
    (("limits", "storage_gb", "unit"), "", "limits.storage_gb.unit: must not be empty"),
    (("limits", "storage_gb", "unit"), 1, "limits.storage_gb.unit: must be a string, not an integer"),
    (("limits", "storage_gb"), DELETE, "plans.starter.limits.storage_gb: 'storage_gb' has no display name in limits"),
    # A plan.
    ((*PRO, "name"), "", "plans.pro.name: must not be empty"),
    ((*PRO, "name"), 7, "plans.pro.name: must be a string, not an integer"),
    ((*PRO, "trialDays"), 0, "plans.pro.trialDays: must be at least 1 and at most 730"),
    ((*PRO, "trialDays"), 731, "plans.pro.trialDays: must be at least 1 and at most 730"),
    ((*PRO, "features"), "analytics", "plans.pro.features: must be an array, not a string"),
    ((*PRO, "features", 1), 7, "plans.pro.features[1]: must be a string, not an integer"),
    ((*PRO, "limits"), [], "plans.pro.limits: must be an object, not an array"),
    (("plans", "starter", "limits", "sites"), -1, "plans.starter.limits.sites: must be at least 0"),
    ((*PRO, "limits", "storage_gb"), "ten", "plans.pro.limits.storage_gb: must be an integer, not a string"),
    # Its prices.
    ((*PRO, "basePrice"), None, "plans.pro.basePrice: must be an object, not null"),
    (
        (*PRO, "basePrice", "name"),
        "STRIPE_PRICE_PRO_BASE",
        "plans.pro.basePrice.name: 'STRIPE_PRICE_PRO_BASE' is not a price name",
    ),
    ((*PRO, "basePrice", "name"), "1pro", "plans.pro.basePrice.name: '1pro' is not a price name"),
    ((*PRO, "basePrice", "name"), "p" * 65, "plans.pro.basePrice.name: 'ppp"),
    ((*PRO, "basePrice", "name"), "pro_base\n", "plans.pro.basePrice.name: 'pro_base\\n' is not a price name"),
    ((*PRO, "basePrice", "unitAmount"), -1, "plans.pro.basePrice.unitAmount: must be at least 0"),
    ((*PRO, "sitePrice"), "pro_site", "plans.pro.sitePrice: must be an object, not a string"),
    ((*PRO, "sitePrice", "unitAmount"), -1, "plans.pro.sitePrice.unitAmount: must be at least 0"),
    ((*PRO, "sitePrice", "limit"), 5, "plans.pro.sitePrice.limit: must be a string, not an integer"),
    ((*PRO, "sitePrice", "limit"), "seats", "plans.pro.sitePrice.limit: 'seats' is not one of this plan's limits"),
    ((*PRO, "sitePrice", "name"), "pro_base", "plans.pro.sitePrice.name: 'pro_base' is already the name of plans.pro.basePrice"),
    (
        ("plans", "enterprise", "basePrice", "name"),
        "pro_site",
        "plans.enterprise.basePrice.name: 'pro_site' is already the name of plans.pro.sitePrice",
    ),
]


@pytest.mark.parametrize(("where", "value", "message"), RULES, ids=[message for _, _, message in RULES])
def test_each_rule_names_the_field_at_fault(where: tuple[str | int, ...], value: object, message: str) -> None:
    doc = shipped()
    edit(doc, where, value)
    with pytest.raises(ConfigurationError) as raised:
        parse_catalog(json.dumps(doc))
    assert str(raised.value).startswith(f"invalid plan catalog: {message}")


# Strict types: JSON has one integer type, and a catalog amount is never a quoted or rounded number.
INTEGER_FIELDS = [
    ("maxSiteQuantity",),
    (*PRO, "trialDays"),
    (*PRO, "basePrice", "unitAmount"),
    (*PRO, "sitePrice", "unitAmount"),
    (*PRO, "limits", "sites"),
]


@pytest.mark.parametrize("where", INTEGER_FIELDS, ids=".".join)
@pytest.mark.parametrize(
    ("value", "kind"), [(True, "a boolean"), ("5", "a string"), (5.0, "a decimal number"), (5.5, "a decimal number")]
)
def test_an_integer_field_takes_json_integers_only(where: tuple[str, ...], value: object, kind: str) -> None:
    doc = shipped()
    edit(doc, where, value)
    with pytest.raises(ConfigurationError) as raised:
        parse_catalog(json.dumps(doc))
    assert str(raised.value) == f"invalid plan catalog: {'.'.join(where)}: must be an integer, not {kind}"


def test_a_site_price_limit_left_out_is_sites_and_must_be_a_limit() -> None:
    doc = shipped()
    del doc["plans"]["pro"]["sitePrice"]["limit"]
    assert parse_catalog(json.dumps(doc)).plans["pro"].site_price == SitePrice(name="pro_site", unit_amount=1900, limit="sites")
    del doc["plans"]["pro"]["limits"]["sites"]
    with pytest.raises(ConfigurationError, match=r"plans\.pro\.sitePrice\.limit: 'sites' is not one of this plan's limits"):
        parse_catalog(json.dumps(doc))


def test_a_repeated_feature_is_named() -> None:
    doc = shipped()
    doc["plans"]["pro"]["features"].append("analytics")
    with pytest.raises(ConfigurationError, match=r"plans\.pro\.features: 'analytics' is listed more than once"):
        parse_catalog(json.dumps(doc))


@pytest.mark.parametrize("raw", ["[]", "null", '"plans"', "7"])
def test_the_document_must_be_an_object(raw: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^invalid plan catalog: must be a JSON object$"):
        parse_catalog(raw)


def test_bounds_and_optional_fields_are_accepted_at_their_limits() -> None:
    doc = shipped()
    doc["maxSiteQuantity"] = 10_000
    doc["$comment"] = None
    del doc["plans"]["starter"]["sitePrice"], doc["plans"]["starter"]["trialDays"]
    doc["plans"]["pro"]["trialDays"] = 730
    doc["plans"]["pro"]["basePrice"]["unitAmount"] = 0
    doc["plans"]["enterprise"]["trialDays"] = 1
    doc["plans"]["enterprise"]["limits"]["sites"] = 0
    catalog = parse_catalog(json.dumps(doc))
    assert (catalog.comment, catalog.max_site_quantity) == (None, 10_000)
    assert (catalog.plans["starter"].site_price, catalog.plans["starter"].trial_days) == (None, None)
    assert (catalog.plans["pro"].trial_days, catalog.plans["pro"].base_price.unit_amount) == (730, 0)
    assert catalog.plans["enterprise"].limits["sites"] == 0


def test_the_catalog_is_frozen_dataclasses_in_catalog_order() -> None:
    catalog = get_catalog()
    pro = catalog.plans["pro"]
    assert list(catalog.plans) == ["starter", "pro", "enterprise"]
    assert isinstance(pro.features, tuple) and pro.features[0] == "page_builder"
    assert pro.limits == {"sites": 2, "pages_per_site": 100, "storage_gb": 10}
    assert pro.site_price == SitePrice(name="pro_site", unit_amount=1900, limit="sites")
    assert isinstance(pro.site_price, BasePrice) and pro.base_price == BasePrice(name="pro_base", unit_amount=7900)
    assert catalog.comment and catalog.comment.startswith("The plan catalog.")
    with pytest.raises(dataclasses.FrozenInstanceError):
        pro.trial_days = 14  # type: ignore[misc]
    with_trial = dataclasses.replace(pro, trial_days=14)
    assert (with_trial.trial_days, pro.trial_days) == (14, None)
    assert catalog.plan("pro") is pro and catalog.plan("free") is None
    assert catalog.monthly_value("pro", 2) == 7900 + 2 * 1900
    assert catalog.monthly_value("starter", 3) == 2900
    assert catalog.monthly_value(None, 1) == catalog.monthly_value("free", 1) == -1
    assert catalog.price_names() == ["starter_base", "pro_base", "pro_site", "enterprise_base", "enterprise_site"]
    assert [(plan_id, kind) for plan_id, kind, _ in catalog.prices()][:3] == [
        ("starter", "base"),
        ("pro", "base"),
        ("pro", "site"),
    ]

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest

from tenant_billing.catalog import CATALOG_PATH, BasePrice, LimitName, PriceRef, SitePrice, Trial, get_catalog, parse_catalog
from tenant_billing.errors import ConfigurationError


def shipped() -> dict[str, Any]:
    return copy.deepcopy(json.loads(CATALOG_PATH.read_text()))


def test_the_shipped_catalog_is_valid_and_matches_the_pricing() -> None:
    catalog = get_catalog()
    assert catalog.fallback_plan == "starter"
    assert catalog.max_site_quantity == 100
    amounts = {
        (plan_id, interval): (prices.base.unit_amount, prices.site and prices.site.unit_amount)
        for plan_id, plan in catalog.plans.items()
        for interval, prices in plan.current.prices.items()
    }
    assert amounts == {
        ("starter", "month"): (2900, None),
        ("starter", "year"): (29000, None),
        ("pro", "month"): (7900, 1900),
        ("pro", "year"): (79000, 19000),
        ("enterprise", "month"): (19900, 900),
        ("enterprise", "year"): (199000, 9000),
    }
    assert catalog.base_price_names() == [
        "starter_base",
        "starter_base_yearly",
        "pro_base",
        "pro_base_yearly",
        "enterprise_base",
        "enterprise_base_yearly",
    ]


def test_every_feature_and_limit_of_the_shipped_catalog_has_a_display_name() -> None:
    catalog = get_catalog()
    used_features = {feature for plan in catalog.plans.values() for feature in plan.current.features}
    used_limits = {limit for plan in catalog.plans.values() for limit in plan.current.limits}
    assert used_features <= set(catalog.feature_names) and used_limits <= set(catalog.limit_names)
    assert catalog.feature_names["page_builder"] == "Page builder"
    assert catalog.limit_names["storage_gb"] == LimitName(name="Storage", unit="GB")
    assert catalog.limit_names["sites"] == LimitName(name="Sites", unit=None)


def test_an_operator_adds_a_feature_and_a_limit_as_data() -> None:
    doc = shipped()
    doc["features"]["live_chat"] = "Live chat"
    doc["limits"]["seats"] = {"name": "Team seats"}
    doc["plans"]["enterprise"]["versions"]["1"]["features"].append("live_chat")
    doc["plans"]["enterprise"]["versions"]["1"]["limits"]["seats"] = 25
    catalog = parse_catalog(json.dumps(doc))
    assert catalog.feature_names["live_chat"] == "Live chat" and catalog.limit_names["seats"].name == "Team seats"
    # A display name no plan uses yet is allowed: a feature can be named before a plan sells it.
    doc["features"]["video_hosting"] = "Video hosting"
    assert "video_hosting" in parse_catalog(json.dumps(doc)).feature_names


def test_price_index_maps_configured_ids_to_plan_kind_version_and_interval() -> None:
    catalog = parse_catalog(json.dumps(pro_version_2(shipped())))
    index = catalog.price_index({"pro_base": "price_a", "pro_site_yearly": "price_b", "pro_v2_base_month": "price_c"})
    assert index == {
        "price_a": PriceRef("pro", "base", 1, "month"),
        "price_b": PriceRef("pro", "site", 1, "year"),
        "price_c": PriceRef("pro", "base", 2, "month"),
    }


def test_versions_keep_their_own_prices_features_and_limits() -> None:
    catalog = parse_catalog(json.dumps(pro_version_2(shipped())))
    pro = catalog.plans["pro"]
    assert (pro.current_version, list(pro.versions)) == (2, [1, 2])
    assert pro.current.prices["month"].base == BasePrice(name="pro_v2_base_month", unit_amount=8900)
    assert "crm" in pro.current.features and "crm" not in pro.versions[1].features
    assert (pro.versions[1].limits["storage_gb"], pro.current.limits["storage_gb"]) == (10, 20)
    assert catalog.version("pro", 1) is pro.versions[1] and catalog.version("pro", 3) is None
    assert catalog.monthly_value("pro", 1, version=1) == 7900 + 1900
    assert catalog.monthly_value("pro", 1) == 8900 + 2900
    assert catalog.monthly_value("pro", 1, version=1, interval="year") == (79000 + 19000) // 12


def test_a_trial_is_plan_data_and_a_card_less_one_says_how_it_ends() -> None:
    doc = shipped()
    doc["plans"]["pro"]["trial"] = {"days": 14, "paymentMethod": "if_required", "withoutPaymentMethod": "pause"}
    doc["plans"]["enterprise"]["trial"] = {"days": 30}
    catalog = parse_catalog(json.dumps(doc))
    assert catalog.plans["pro"].trial == Trial(days=14, payment_method="if_required", without_payment_method="pause")
    assert catalog.plans["pro"].trial is not None and catalog.plans["pro"].trial.card_less
    assert catalog.plans["enterprise"].trial == Trial(days=30)
    assert catalog.plans["starter"].trial is None


def test_a_plan_or_version_written_twice_is_refused_not_silently_dropped() -> None:
    raw = CATALOG_PATH.read_text().replace('"plans": {', '"plans": {"pro": {},', 1)
    with pytest.raises(ConfigurationError, match="'pro' appears twice in one object"):
        parse_catalog(raw)


PRO = ("plans", "pro")
V1 = (*PRO, "versions", "1")
MONTH = (*V1, "prices", "month")
YEAR = (*V1, "prices", "year")


def pro_version_2(doc: dict[str, Any]) -> dict[str, Any]:
    """Pro's second version: dearer, one more feature, its own price names; current."""
    version = copy.deepcopy(doc["plans"]["pro"]["versions"]["1"])
    for interval, prices in version["prices"].items():
        for kind, price in prices.items():
            price["name"] = f"pro_v2_{kind}_{interval}"
            price["unitAmount"] += 1000
    version["features"].append("crm")
    version["limits"]["storage_gb"] = 20
    doc["plans"]["pro"]["versions"]["2"] = version
    doc["plans"]["pro"]["currentVersion"] = 2
    return doc


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
        "currentVersion": 1,
        "trial": {"days": 14},
        "versions": {
            "1": {
                "prices": {"month": {"base": {"name": "team_base", "unitAmount": 4900}}},
                "features": ["page_builder"],
                "limits": {"sites": 3},
            }
        },
    }
    catalog = parse_catalog(json.dumps(doc))
    assert catalog.plans["team"].trial == Trial(days=14)
    assert list(catalog.plans["team"].current.prices) == ["month"]


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


RULES: list[tuple[tuple[str | int, ...], object, str]] = [
    # Unknown keys are refused at every level (a misspelt key is not a setting silently ignored).
    (("currencies",), "usd", "currencies: unknown field"),
    ((*PRO, "discount"), 10, "plans.pro.discount: unknown field"),
    ((*PRO, "trialDays"), 14, "plans.pro.trialDays: unknown field"),
    ((*V1, "trial"), {"days": 3}, "plans.pro.versions.1.trial: unknown field"),
    ((*MONTH, "base", "limit"), "sites", "plans.pro.versions.1.prices.month.base.limit: unknown field"),
    ((*MONTH, "site", "unit_amount"), 1900, "plans.pro.versions.1.prices.month.site.unit_amount: unknown field"),
    ((*V1, "prices", "week"), {}, "plans.pro.versions.1.prices.week: unknown field (expected month, year)"),
    ((*PRO, "trial"), {"days": 3, "card": False}, "plans.pro.trial.card: unknown field"),
    # Required fields.
    (("currency",), DELETE, "currency: required"),
    (("fallbackPlan",), DELETE, "fallbackPlan: required"),
    (("maxSiteQuantity",), DELETE, "maxSiteQuantity: required"),
    (("features",), DELETE, "features: required"),
    (("limits",), DELETE, "limits: required"),
    (("plans",), DELETE, "plans: required"),
    ((*PRO, "name"), DELETE, "plans.pro.name: required"),
    ((*PRO, "currentVersion"), DELETE, "plans.pro.currentVersion: required"),
    ((*PRO, "versions"), DELETE, "plans.pro.versions: required"),
    ((*V1, "features"), DELETE, "plans.pro.versions.1.features: required"),
    ((*V1, "limits"), DELETE, "plans.pro.versions.1.limits: required"),
    ((*MONTH, "base", "name"), DELETE, "plans.pro.versions.1.prices.month.base.name: required"),
    ((*MONTH, "site", "unitAmount"), DELETE, "plans.pro.versions.1.prices.month.site.unitAmount: required"),
    ((*PRO, "trial"), {}, "plans.pro.trial.days: required"),
    # A version without a base price, or without the monthly one.
    ((*MONTH, "base"), DELETE, "plans.pro.versions.1.prices.month.base: required"),
    ((*YEAR, "base"), DELETE, "plans.pro.versions.1.prices.year.base: required"),
    ((*V1, "prices", "month"), DELETE, "plans.pro.versions.1.prices.month: required (every version has a monthly base price)"),
    ((*V1, "prices"), {}, "plans.pro.versions.1.prices.month: required"),
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
    # Display names: every feature and limit a version uses has one.
    (("features",), [], "features: must be an object, not an array"),
    (("features", "crm"), "", "features.crm: must not be empty"),
    (("features", "crm"), None, "features.crm: must be a string, not null"),
    (("features", "analytics"), DELETE, "plans.pro.versions.1.features[3]: 'analytics' has no display name in features"),
    (("limits",), ["sites"], "limits: must be an object, not an array"),
    (("limits", "sites"), "Sites", "limits.sites: must be an object, not a string"),
    (("limits", "sites", "name"), DELETE, "limits.sites.name: required"),
    (("limits", "sites", "name"), "", "limits.sites.name: must not be empty"),
    (("limits", "sites", "label"), "Sites", "limits.sites.label: unknown field"),
    (("limits", "storage_gb", "unit"), "", "limits.storage_gb.unit: must not be empty"),
    (("limits", "storage_gb", "unit"), 1, "limits.storage_gb.unit: must be a string, not an integer"),
    (
        ("limits", "storage_gb"),
        DELETE,
        "plans.starter.versions.1.limits.storage_gb: 'storage_gb' has no display name in limits",
    ),
    # A plan and its versions.
    ((*PRO, "name"), "", "plans.pro.name: must not be empty"),
    ((*PRO, "name"), 7, "plans.pro.name: must be a string, not an integer"),
    ((*PRO, "versions"), {}, "plans.pro.versions: must be an object holding at least one version"),
    ((*PRO, "versions"), [], "plans.pro.versions: must be an object holding at least one version"),
    ((*PRO, "currentVersion"), 2, "plans.pro.currentVersion: 2 is not one of its versions (1)"),
    ((*PRO, "currentVersion"), 0, "plans.pro.currentVersion: must be at least 1"),
    ((*PRO, "versions", "v2"), {}, "plans.pro.versions.v2: 'v2' is not a version number"),
    ((*PRO, "versions", "01"), {}, "plans.pro.versions.01: '01' is not a version number"),
    ((*V1, "features"), "analytics", "plans.pro.versions.1.features: must be an array, not a string"),
    ((*V1, "features", 1), 7, "plans.pro.versions.1.features[1]: must be a string, not an integer"),
    ((*V1, "limits"), [], "plans.pro.versions.1.limits: must be an object, not an array"),
    (("plans", "starter", "versions", "1", "limits", "sites"), -1, "plans.starter.versions.1.limits.sites: must be at least 0"),
    ((*V1, "limits", "storage_gb"), "ten", "plans.pro.versions.1.limits.storage_gb: must be an integer, not a string"),
    # Its trial.
    ((*PRO, "trial"), {"days": 0}, "plans.pro.trial.days: must be at least 1 and at most 730"),
    ((*PRO, "trial"), {"days": 731}, "plans.pro.trial.days: must be at least 1 and at most 730"),
    (
        (*PRO, "trial"),
        {"days": 7, "paymentMethod": "never"},
        "plans.pro.trial.paymentMethod: 'never' is not always or if_required",
    ),
    ((*PRO, "trial"), {"days": 7, "paymentMethod": "if_required"}, "plans.pro.trial.withoutPaymentMethod: required"),
    (
        (*PRO, "trial"),
        {"days": 7, "paymentMethod": "if_required", "withoutPaymentMethod": "create_invoice"},
        "plans.pro.trial.withoutPaymentMethod: 'create_invoice' is not cancel or pause",
    ),
    (
        (*PRO, "trial"),
        {"days": 7, "withoutPaymentMethod": "cancel"},
        "plans.pro.trial.withoutPaymentMethod: only for a card-less trial",
    ),
    # Its prices.
    ((*MONTH, "base"), None, "plans.pro.versions.1.prices.month.base: must be an object, not null"),
    (
        (*MONTH, "base", "name"),
        "STRIPE_PRICE_PRO_BASE",
        "plans.pro.versions.1.prices.month.base.name: 'STRIPE_PRICE_PRO_BASE' is not a price name",
    ),
    ((*MONTH, "base", "name"), "1pro", "plans.pro.versions.1.prices.month.base.name: '1pro' is not a price name"),
    ((*MONTH, "base", "name"), "p" * 65, "plans.pro.versions.1.prices.month.base.name: 'ppp"),
    ((*MONTH, "base", "name"), "pro_base\n", "plans.pro.versions.1.prices.month.base.name: 'pro_base\\n' is not a price name"),
    ((*MONTH, "base", "unitAmount"), -1, "plans.pro.versions.1.prices.month.base.unitAmount: must be at least 0"),
    ((*MONTH, "site"), "pro_site", "plans.pro.versions.1.prices.month.site: must be an object, not a string"),
    ((*MONTH, "site", "unitAmount"), -1, "plans.pro.versions.1.prices.month.site.unitAmount: must be at least 0"),
    ((*MONTH, "site", "limit"), 5, "plans.pro.versions.1.prices.month.site.limit: must be a string, not an integer"),
    (
        (*YEAR, "site", "limit"),
        "pages_per_site",
        "plans.pro.versions.1.prices.year.site.limit: must be 'sites', the limit of the monthly add-on",
    ),
    (
        (*YEAR, "site"),
        DELETE,
        "plans.pro.versions.1.prices.year.site: a version sells its per-site add-on at every interval or at none",
    ),
    # A price name belongs to one price: not reused across intervals, versions or plans.
    (
        (*MONTH, "site", "name"),
        "pro_base",
        "plans.pro.versions.1.prices.month.site.name: 'pro_base' is already the name of plans.pro.versions.1.prices.month.base",
    ),
    (
        (*YEAR, "base", "name"),
        "pro_base",
        "plans.pro.versions.1.prices.year.base.name: 'pro_base' is already the name of plans.pro.versions.1.prices.month.base",
    ),
    (
        ("plans", "enterprise", "versions", "1", "prices", "month", "base", "name"),
        "pro_site",
        "plans.enterprise.versions.1.prices.month.base.name: 'pro_site' is already the name of "
        "plans.pro.versions.1.prices.month.site",
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
    (*PRO, "currentVersion"),
    (*MONTH, "base", "unitAmount"),
    (*YEAR, "site", "unitAmount"),
    (*V1, "limits", "sites"),
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


def test_a_trial_days_field_takes_json_integers_only() -> None:
    doc = shipped()
    doc["plans"]["pro"]["trial"] = {"days": 5.0}
    with pytest.raises(ConfigurationError, match=r"plans\.pro\.trial\.days: must be an integer, not a decimal number"):
        parse_catalog(json.dumps(doc))


def test_a_version_with_a_new_price_name_is_accepted_beside_the_old_one() -> None:
    catalog = parse_catalog(json.dumps(pro_version_2(shipped())))
    names = catalog.price_names()
    assert "pro_base" in names and "pro_v2_base_month" in names and len(names) == len(set(names))
    # Reusing an old version's price name in the new one is the same price sold as two versions.
    doc = pro_version_2(shipped())
    doc["plans"]["pro"]["versions"]["2"]["prices"]["month"]["base"]["name"] = "pro_base"
    with pytest.raises(ConfigurationError, match=r"versions\.2\.prices\.month\.base\.name: 'pro_base' is already the name"):
        parse_catalog(json.dumps(doc))


def test_versions_are_listed_oldest_first() -> None:
    doc = pro_version_2(shipped())
    versions = doc["plans"]["pro"]["versions"]
    doc["plans"]["pro"]["versions"] = {"2": versions["2"], "1": versions["1"]}
    with pytest.raises(ConfigurationError, match=r"plans\.pro\.versions: must be listed oldest first"):
        parse_catalog(json.dumps(doc))


def test_a_site_price_limit_left_out_is_sites_and_must_be_a_limit() -> None:
    doc = shipped()
    del doc["plans"]["pro"]["versions"]["1"]["prices"]["month"]["site"]["limit"]
    assert parse_catalog(json.dumps(doc)).plans["pro"].current.prices["month"].site == SitePrice(
        name="pro_site", unit_amount=1900, limit="sites"
    )
    del doc["plans"]["pro"]["versions"]["1"]["limits"]["sites"]
    with pytest.raises(
        ConfigurationError,
        match=r"plans\.pro\.versions\.1\.prices\.month\.site\.limit: 'sites' is not one of this version's limits",
    ):
        parse_catalog(json.dumps(doc))


def test_a_repeated_feature_is_named() -> None:
    doc = shipped()
    doc["plans"]["pro"]["versions"]["1"]["features"].append("analytics")
    with pytest.raises(ConfigurationError, match=r"plans\.pro\.versions\.1\.features: 'analytics' is listed more than once"):
        parse_catalog(json.dumps(doc))


@pytest.mark.parametrize("raw", ["[]", "null", '"plans"', "7"])
def test_the_document_must_be_an_object(raw: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^invalid plan catalog: must be a JSON object$"):
        parse_catalog(raw)


def test_bounds_and_optional_fields_are_accepted_at_their_limits() -> None:
    doc = shipped()
    doc["maxSiteQuantity"] = 10_000
    doc["$comment"] = None
    del doc["plans"]["starter"]["trial"], doc["plans"]["starter"]["versions"]["1"]["prices"]["year"]
    doc["plans"]["pro"]["trial"] = {"days": 730}
    doc["plans"]["pro"]["versions"]["1"]["prices"]["month"]["base"]["unitAmount"] = 0
    doc["plans"]["enterprise"]["trial"] = {"days": 1, "paymentMethod": "always"}
    doc["plans"]["enterprise"]["versions"]["1"]["limits"]["sites"] = 0
    catalog = parse_catalog(json.dumps(doc))
    assert (catalog.comment, catalog.max_site_quantity) == (None, 10_000)
    assert (list(catalog.plans["starter"].current.prices), catalog.plans["starter"].trial) == (["month"], None)
    assert catalog.plans["pro"].trial == Trial(days=730)
    assert catalog.plans["pro"].current.prices["month"].base.unit_amount == 0
    assert catalog.plans["enterprise"].current.limits["sites"] == 0


def test_the_catalog_is_frozen_dataclasses_in_catalog_order() -> None:
    catalog = get_catalog()
    pro = catalog.plans["pro"]
    assert list(catalog.plans) == ["starter", "pro", "enterprise"]
    assert isinstance(pro.current.features, tuple) and pro.current.features[0] == "page_builder"
    assert pro.current.limits == {"sites": 2, "pages_per_site": 100, "storage_gb": 10}
    monthly = pro.current.prices["month"]
    assert monthly.site == SitePrice(name="pro_site", unit_amount=1900, limit="sites")
    assert isinstance(monthly.site, BasePrice) and monthly.base == BasePrice(name="pro_base", unit_amount=7900)
    assert pro.current.site_limit == "sites" and catalog.plans["starter"].current.site_limit is None
    assert catalog.comment and catalog.comment.startswith("The plan catalog.")
    with pytest.raises(dataclasses.FrozenInstanceError):
        pro.trial = Trial(days=14)  # type: ignore[misc]
    with_trial = dataclasses.replace(pro, trial=Trial(days=14))
    assert (with_trial.trial, pro.trial) == (Trial(days=14), None)
    assert catalog.plan("pro") is pro and catalog.plan("free") is None
    assert catalog.monthly_value("pro", 2) == 7900 + 2 * 1900
    assert catalog.monthly_value("starter", 3) == 2900
    assert catalog.monthly_value(None, 1) == catalog.monthly_value("free", 1) == -1
    assert catalog.price_names() == [
        "starter_base",
        "starter_base_yearly",
        "pro_base",
        "pro_site",
        "pro_base_yearly",
        "pro_site_yearly",
        "enterprise_base",
        "enterprise_site",
        "enterprise_base_yearly",
        "enterprise_site_yearly",
    ]
    assert [(entry.ref.plan, entry.ref.kind, entry.ref.interval) for entry in catalog.prices()][:4] == [
        ("starter", "base", "month"),
        ("starter", "base", "year"),
        ("pro", "base", "month"),
        ("pro", "site", "month"),
    ]

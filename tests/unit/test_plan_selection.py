"""A plan selection checked against the catalog and the configured prices (pure)."""

from __future__ import annotations

import pytest

from tenant_billing.api_models import PlanSelection
from tenant_billing.catalog import get_catalog
from tenant_billing.checkout_logic import PriceSelection, validate_plan_selection
from tenant_billing.errors import BillingNotConfiguredError, InvalidRequestError
from tenant_billing.settings import get_settings
from tests.conftest import configure_prices


def select(plan: str, site_quantity: int = 0) -> PriceSelection:
    return validate_plan_selection(PlanSelection(plan=plan, site_quantity=site_quantity), get_catalog(), get_settings())


def test_a_plan_with_sites_names_its_base_and_site_prices() -> None:
    assert select("pro", 3) == PriceSelection("pro", "pro_base", "pro_site", 3, "pro_site")


def test_no_sites_leaves_out_the_site_item_but_keeps_the_plans_site_price() -> None:
    assert select("enterprise") == PriceSelection("enterprise", "enterprise_base", None, 0, "enterprise_site")


def test_a_plan_without_a_site_add_on() -> None:
    assert select("starter") == PriceSelection("starter", "starter_base", None, 0, None)


@pytest.mark.parametrize("quantity", [0, 100])
def test_the_quantity_bounds_are_accepted(quantity: int) -> None:
    assert select("pro", quantity).site_quantity == quantity


def test_an_unknown_plan_lists_the_plans() -> None:
    with pytest.raises(InvalidRequestError) as raised:
        select("platinum")
    assert (raised.value.code, raised.value.field) == ("unknown_plan", "plan")
    assert str(raised.value) == "unknown plan; choose one of: starter, pro, enterprise"


@pytest.mark.parametrize("quantity", [-1, 101])
def test_a_quantity_out_of_bounds_is_refused(quantity: int) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        select("pro", quantity)
    assert (raised.value.code, raised.value.field) == ("invalid_site_quantity", "siteQuantity")
    assert str(raised.value) == "siteQuantity must be between 0 and 100"


def test_sites_on_a_plan_without_a_site_add_on_are_refused() -> None:
    with pytest.raises(InvalidRequestError) as raised:
        select("starter", 1)
    assert (raised.value.code, raised.value.field) == ("site_addon_unavailable", "siteQuantity")
    assert str(raised.value) == "the starter plan has no per-site add-on"


def test_an_unconfigured_site_price_is_no_add_on(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_prices(monkeypatch, without=("pro_site",))
    assert select("pro") == PriceSelection("pro", "pro_base", None, 0, None)
    with pytest.raises(InvalidRequestError) as raised:
        select("pro", 2)
    assert raised.value.code == "site_addon_unavailable"


def test_an_unconfigured_base_price_means_billing_is_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_prices(monkeypatch, without=("pro_base",))
    with pytest.raises(BillingNotConfiguredError):
        select("pro", 1)
    assert select("enterprise", 1).base_price == "enterprise_base"


def test_the_plan_is_checked_before_the_quantity() -> None:
    with pytest.raises(InvalidRequestError) as raised:
        select("platinum", -1)
    assert raised.value.code == "unknown_plan"

"""Lookup keys resolved through the Stripe port: ten a call, once per port, and a key no price has
is a misconfiguration."""

from __future__ import annotations

import pytest

from tenant_billing.errors import BillingMisconfiguredError
from tenant_billing.settings import get_settings
from tenant_billing.stripe_prices import price_ids
from tests.conftest import TEST_PRICES, configure_prices
from tests.unit.memory_stripe import MemoryStripe


def by_lookup_key(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every price given by a lookup key: {lookup key: price id}."""
    configure_prices(monkeypatch, {name: {"lookupKey": f"key_{name}"} for name in TEST_PRICES})
    return {f"key_{name}": price_id for name, price_id in TEST_PRICES.items()}


def test_lookup_keys_resolve_ten_a_call_and_once(monkeypatch: pytest.MonkeyPatch) -> None:
    stripe = MemoryStripe({}, by_lookup_key(monkeypatch))
    assert price_ids(get_settings(), stripe) == TEST_PRICES
    assert price_ids(get_settings(), stripe) == TEST_PRICES
    assert stripe.calls == ["prices.list"] * -(-len(TEST_PRICES) // 10)


def test_a_lookup_key_no_price_has_is_a_misconfiguration(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = by_lookup_key(monkeypatch)
    keys.pop("key_pro_site")
    with pytest.raises(BillingMisconfiguredError):
        price_ids(get_settings(), MemoryStripe({}, keys))

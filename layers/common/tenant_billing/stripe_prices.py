"""The Stripe price id of each catalog price: as STRIPE_PRICES gives it, or, for a price given by
its `lookup_key`, as Stripe resolves it. Lookup keys are resolved lazily, by the first request that
needs a price, in one `prices.list` call per ten keys, and kept for the execution environment's
life. Imported only by the functions that talk to Stripe: the status function only asks whether
prices are configured (`status_logic.is_billing_configured`), which needs no resolution.
"""

from __future__ import annotations

from functools import lru_cache

from tenant_billing.errors import BillingMisconfiguredError
from tenant_billing.observability import logger, metrics
from tenant_billing.settings import Settings
from tenant_billing.stripe_port import StripePort

# Stripe's limit on `lookup_keys` in one prices.list request.
LOOKUP_KEYS_PER_REQUEST = 10


def price_ids(settings: Settings, stripe: StripePort) -> dict[str, str]:
    """{price name: Stripe price id} for every configured price."""
    given = {name: price.price_id for name, price in settings.STRIPE_PRICES.items() if price.price_id}
    lookups = tuple(sorted((name, price.lookup_key) for name, price in settings.STRIPE_PRICES.items() if price.lookup_key))
    if not lookups:
        return given
    return given | resolve_lookup_keys(lookups, stripe)


@lru_cache(maxsize=4)
def resolve_lookup_keys(lookups: tuple[tuple[str, str], ...], stripe: StripePort) -> dict[str, str]:
    """{price name: price id} for (price name, lookup key) pairs. A failure is not cached; the port
    is cached per API key, so a rotated key resolves again."""
    keys = [key for _, key in lookups]
    found: dict[str, str] = {}
    for start in range(0, len(keys), LOOKUP_KEYS_PER_REQUEST):
        chunk = keys[start : start + LOOKUP_KEYS_PER_REQUEST]
        found |= stripe.price_ids_by_lookup_key(chunk)
    if missing := [f"{name} (lookup key {key})" for name, key in lookups if key not in found]:
        logger.error("STRIPE_PRICES names lookup keys that no Stripe price has", extra={"missing": missing})
        metrics.add_metric(name="StripeMisconfigured", unit="Count", value=1)
        raise BillingMisconfiguredError("billing is misconfigured")
    return {name: found[key] for name, key in lookups}

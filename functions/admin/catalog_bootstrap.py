"""Create or update the Stripe products and prices of plans.json, and print the StripePrices value.

    read -rsp 'Stripe secret key: ' STRIPE_SECRET_KEY && export STRIPE_SECRET_KEY
    PYTHONPATH=layers/common .venv/bin/python -m functions.admin.catalog_bootstrap [--live] [--api-base URL]

Every plan has a product for its base price and one for its per-site add-on; each catalog price (of
every version and interval) is one recurring price of its product, found again by names derived
from the catalog, so a second run changes nothing:
- the product's id is `plan_<plan key>_<kind>` (`plan_pro_base`, `plan_pro_site`; the two suffixes
  keep any two plan keys apart), its name the plan's ("Pro", "Pro extra site" for the per-site add-on);
- the price's lookup key is the catalog's price name (`pro_base`), unique in the catalog and in Stripe;
- metadata names the catalog plan, version and price (`catalog_plan`, `catalog_kind`,
  `catalog_version`, `catalog_price`).
Prices recur every month or every year (the catalog's interval), licensed, per unit. A new plan
version's prices are new names, so they are created beside the old ones, which keep their subscribers.

A price's amount, currency and recurrence cannot be changed in Stripe. When the price holding the
lookup key differs from the catalog (or is archived, or not on its product), a new price takes the
lookup key over (`transfer_lookup_key`); the old one is otherwise left as it is. Not while the old
price has live subscriptions: the functions know a plan only by the prices StripePrices resolves to,
so its subscribers would lose their plan while still paying (the run refuses, before any write).
A product's name is updated in place (and an archived one reactivated).

StripePrices is printed in its lookup-key form, which never changes: a price replaced later carries
its lookup key with it, so no redeploy is needed (functions resolve lookup keys once per execution
environment: new ones use the new price, a redeploy switches all at once).

The key is read from STRIPE_SECRET_KEY only (argv shows in shell history and `ps`) and never printed;
a live key needs `--live`. `--api-base` points it at a Stripe-compatible server, such as `make dev`'s
emulator at http://127.0.0.1:3002 (which accepts tests.stripe_fake's TEST_API_KEY).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import stripe

from tenant_billing.catalog import Catalog, PriceKind, get_catalog
from tenant_billing.entitlements import ENDED_STATUSES
from tenant_billing.errors import ConfigurationError
from tenant_billing.stripe_adapter import STRIPE_API_VERSION
from tenant_billing.stripe_prices import LOOKUP_KEYS_PER_REQUEST

if TYPE_CHECKING:
    from stripe.params import PriceCreateParams, ProductUpdateParams

KEY_VARIABLE = "STRIPE_SECRET_KEY"
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")
# Where the key may go over plain http: this machine (the emulator), never the network.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Every price bills each unit of its quantity once per interval.
INTERVAL_COUNT, USAGE_TYPE = 1, "licensed"

Action = Literal["created", "updated", "replaced", "unchanged"]


@dataclass(frozen=True)
class WantedPrice:
    """One price of plans.json as Stripe should hold it, with the product it belongs to."""

    plan_id: str
    kind: PriceKind
    version: int
    interval: str
    name: str
    unit_amount: int
    currency: str
    product_name: str

    @property
    def product_id(self) -> str:
        return f"plan_{self.plan_id}_{self.kind}"

    @property
    def lookup_key(self) -> str:
        return self.name

    @property
    def product_metadata(self) -> dict[str, str]:
        return {"catalog_plan": self.plan_id, "catalog_kind": self.kind}

    @property
    def price_metadata(self) -> dict[str, str]:
        return {"catalog_plan": self.plan_id, "catalog_version": str(self.version), "catalog_price": self.name}


@dataclass(frozen=True)
class Outcome:
    """What a run did to one Stripe object: a product (named by its id) or a price (by its catalog name)."""

    kind: Literal["product", "price"]
    name: str
    stripe_id: str
    action: Action
    detail: str


def catalog_prices(catalog: Catalog) -> list[WantedPrice]:
    return [
        WantedPrice(
            plan_id=entry.ref.plan,
            kind=entry.ref.kind,
            version=entry.ref.version,
            interval=entry.ref.interval,
            name=entry.price.name,
            unit_amount=entry.price.unit_amount,
            currency=catalog.currency,
            product_name=catalog.plans[entry.ref.plan].name + (" extra site" if entry.ref.kind == "site" else ""),
        )
        for entry in catalog.prices()
    ]


def stripe_prices_parameter(catalog: Catalog) -> dict[str, dict[str, str]]:
    """The StripePrices value: each catalog price by its lookup key."""
    return {price.name: {"lookupKey": price.lookup_key} for price in catalog_prices(catalog)}


class PriceInUseError(Exception):
    """A price the catalog would replace still has live subscriptions (nothing was written)."""


def bootstrap_catalog(client: stripe.StripeClient, catalog: Catalog) -> list[Outcome]:
    """Make Stripe hold the catalog's products and prices; what was done to each, in catalog order.
    A Stripe error stops the run; the next run picks up where it stopped. PriceInUseError, before
    any write, when a price to replace still has live subscriptions."""
    wanted = catalog_prices(catalog)
    holders = _prices_by_lookup_key(client, [price.lookup_key for price in wanted])
    _refuse_to_replace_subscribed_prices(client, wanted, holders)
    outcomes: list[Outcome] = []
    synced_products: set[str] = set()
    for price in wanted:
        # A plan's versions and intervals are prices of one product each for base and add-on.
        if price.product_id not in synced_products:
            outcomes.append(_sync_product(client, price))
            synced_products.add(price.product_id)
        outcomes.append(_sync_price(client, price, holders.get(price.lookup_key)))
    return outcomes


def _refuse_to_replace_subscribed_prices(
    client: stripe.StripeClient, wanted: list[WantedPrice], holders: dict[str, stripe.Price]
) -> None:
    """The functions know a plan only by the prices StripePrices resolves to: once a new price takes
    the lookup key, subscribers still on the old one would be entitled to the fallback plan while
    paying for theirs. Until they are moved (or the catalog keeps its amount), nothing is replaced."""
    in_use = []
    for price in wanted:
        holder = holders.get(price.lookup_key)
        if holder is None or not holder.active or not _differences(holder, price):
            continue
        # Without `status`, Stripe lists every subscription but the canceled ones.
        page = client.v1.subscriptions.list(params={"price": holder.id, "limit": 100})
        live = [s.id for s in page.data if s.status not in ENDED_STATUSES]
        if live:
            more = "+" if page.has_more else ""
            in_use.append(f"{price.name}: {holder.id} has {len(live)}{more} live subscription(s), e.g. {live[0]}")
    if in_use:
        raise PriceInUseError(
            "a new price would take the lookup key, and subscribers still on the old one would lose their plan: "
            + "; ".join(in_use)
            + ". Move them to a price the catalog sells, or keep the catalog's amount. Nothing was changed."
        )


def _prices_by_lookup_key(client: stripe.StripeClient, lookup_keys: list[str]) -> dict[str, stripe.Price]:
    """The price holding each lookup key, archived or not (a lookup key is unique among all prices)."""
    found: dict[str, stripe.Price] = {}
    for start in range(0, len(lookup_keys), LOOKUP_KEYS_PER_REQUEST):
        chunk = lookup_keys[start : start + LOOKUP_KEYS_PER_REQUEST]
        page = client.v1.prices.list(params={"lookup_keys": chunk, "limit": LOOKUP_KEYS_PER_REQUEST})
        found |= {price.lookup_key: price for price in page.data if price.lookup_key}
    return found


def _sync_product(client: stripe.StripeClient, wanted: WantedPrice) -> Outcome:
    try:
        product = client.v1.products.retrieve(wanted.product_id)
    except stripe.InvalidRequestError as exc:
        if exc.code != "resource_missing":
            raise
        client.v1.products.create(
            params={"id": wanted.product_id, "name": wanted.product_name, "metadata": wanted.product_metadata}
        )
        return Outcome("product", wanted.product_id, wanted.product_id, "created", repr(wanted.product_name))

    changes: ProductUpdateParams = {}
    notes: list[str] = []
    if product.name != wanted.product_name:
        changes["name"] = wanted.product_name
        notes.append(f"name {product.name!r} -> {wanted.product_name!r}")
    if not product.active:
        changes["active"] = True
        notes.append("reactivated (it was archived)")
    metadata = product.metadata.to_dict()
    if any(metadata.get(key) != value for key, value in wanted.product_metadata.items()):
        changes["metadata"] = wanted.product_metadata
        notes.append("catalog metadata set")
    if not changes:
        return Outcome("product", wanted.product_id, product.id, "unchanged", repr(product.name))
    client.v1.products.update(wanted.product_id, params=changes)
    return Outcome("product", wanted.product_id, product.id, "updated", "; ".join(notes))


def _recurrence(interval: str, interval_count: int, usage_type: str) -> str:
    return f"every {interval_count} {interval}, {usage_type}"


def _differences(price: stripe.Price, wanted: WantedPrice) -> list[str]:
    """How the price holding the lookup key differs from what the catalog sells; none means keep it.
    (A tiered or custom-amount price has no unit amount, so it differs in that.)"""
    product_id = price.product if isinstance(price.product, str) else price.product.id
    recurring = price.recurring
    found = [
        ("product", product_id, wanted.product_id),
        ("currency", price.currency, wanted.currency),
        ("unit amount", price.unit_amount, wanted.unit_amount),
        (
            "recurrence",
            _recurrence(recurring.interval, recurring.interval_count, recurring.usage_type) if recurring else "one-time",
            _recurrence(wanted.interval, INTERVAL_COUNT, USAGE_TYPE),
        ),
    ]
    differences = [f"{what} {have} -> {want}" for what, have, want in found if have != want]
    return differences + ([] if price.active else ["archived"])


def _sync_price(client: stripe.StripeClient, wanted: WantedPrice, holder: stripe.Price | None) -> Outcome:
    sells = f"{wanted.unit_amount} {wanted.currency} a {wanted.interval}, lookup key {wanted.lookup_key}"
    params: PriceCreateParams = {
        "product": wanted.product_id,
        "currency": wanted.currency,
        "unit_amount": wanted.unit_amount,
        "recurring": {"interval": wanted.interval, "interval_count": INTERVAL_COUNT, "usage_type": USAGE_TYPE},
        "billing_scheme": "per_unit",
        "lookup_key": wanted.lookup_key,
        "metadata": wanted.price_metadata,
    }
    if holder is None:
        return Outcome("price", wanted.name, client.v1.prices.create(params=params).id, "created", sells)
    differences = _differences(holder, wanted)
    if not differences:
        return Outcome("price", wanted.name, holder.id, "unchanged", sells)
    created = client.v1.prices.create(params={**params, "transfer_lookup_key": True})
    left = "stays active (it had no live subscription)" if holder.active else "stays archived"
    detail = f"{sells}; took the lookup key from {holder.id} ({', '.join(differences)}), which {left}"
    return Outcome("price", wanted.name, created.id, "replaced", detail)


def report(outcomes: list[Outcome], catalog: Catalog, mode: str, api_base: str) -> str:
    """The summary, then the StripePrices value as the last line (for `| tail -n 1`)."""
    lines = [f"Stripe products and prices of plans.json ({mode}, {api_base}):"]
    # A product is named by its id; a price by its catalog name, then its id.
    lines += [
        f"  {o.kind:<7} {o.name:<22} {o.action:<9} {'' if o.stripe_id == o.name else o.stripe_id + ': '}{o.detail}"
        for o in outcomes
    ]
    counts = {action: sum(o.action == action for o in outcomes) for action in ("created", "updated", "replaced", "unchanged")}
    lines.append(", ".join(f"{count} {action}" for action, count in counts.items() if count) + ".")
    if counts["replaced"]:
        lines.append(
            "Functions resolve lookup keys once per execution environment: new ones use the new prices; "
            "redeploy to switch them all at once."
        )
    lines.append("StripePrices, the same on every run (sam deploy --parameter-overrides \"StripePrices='<the line below>'\"):")
    lines.append(json.dumps(stripe_prices_parameter(catalog), separators=(",", ":")))
    return "\n".join(lines)


def _api_base(value: str) -> str:
    parts = urlsplit(value)
    if (parts.scheme == "https" and parts.hostname) or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS):
        return value.rstrip("/")
    raise argparse.ArgumentTypeError(f"{value!r}: an https:// URL, or http:// on this machine (127.0.0.1, localhost)")


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bootstrap-catalog",
        description="Create or update the Stripe products and prices of plans.json and print the StripePrices value. "
        f"The key is read from {KEY_VARIABLE}.",
    )
    parser.add_argument("--live", action="store_true", help="allow a live-mode key (sk_live_, rk_live_)")
    parser.add_argument(
        "--api-base",
        type=_api_base,
        default=stripe.DEFAULT_API_BASE,
        metavar="URL",
        help=f"a Stripe-compatible API, e.g. make dev's emulator http://127.0.0.1:3002 (default {stripe.DEFAULT_API_BASE})",
    )
    return parser


def _stripe_failure(exc: stripe.StripeError, api_key: str) -> str:
    """What went wrong, without the key (Stripe's 401 message quotes part of it)."""
    message = (exc.user_message or str(exc) or type(exc).__name__).replace(api_key, "<key>")
    if isinstance(exc, stripe.AuthenticationError):
        what = f"Stripe refused the key in {KEY_VARIABLE}"
    elif isinstance(exc, stripe.PermissionError):
        what = f"the key in {KEY_VARIABLE} may not write products and prices (a restricted key needs write access to both)"
    elif isinstance(exc, stripe.RateLimitError):
        what = "Stripe's rate limit was reached; wait a moment"
    elif isinstance(exc, stripe.APIConnectionError):
        what = f"Stripe could not be reached: {message}"
    else:
        what = f"Stripe refused a request ({type(exc).__name__}): {message}"
    context = [f"HTTP {exc.http_status}" if exc.http_status else "", exc.code or "", exc.request_id or ""]
    return f"{what} ({', '.join(filter(None, context)) or 'no answer'}). What was made is kept: run it again once fixed."


def main(argv: list[str] | None = None) -> int:
    args = _arguments().parse_args(argv)
    api_key = os.environ.get(KEY_VARIABLE, "").strip()
    if not api_key:
        print(f"bootstrap-catalog: set {KEY_VARIABLE} to a Stripe secret key (sk_test_... or rk_test_...)", file=sys.stderr)
        return 2
    live = api_key.startswith(LIVE_KEY_PREFIXES)
    if live and not args.live:
        print(f"bootstrap-catalog: {KEY_VARIABLE} holds a live-mode key: add --live to change live mode", file=sys.stderr)
        return 2
    try:
        catalog = get_catalog()
    except ConfigurationError as exc:
        print(f"bootstrap-catalog: {exc}", file=sys.stderr)
        return 2
    client = stripe.StripeClient(
        api_key,
        stripe_version=STRIPE_API_VERSION,
        base_addresses={"api": args.api_base},
        # Connection errors, 409 and 5xx are retried, POSTs with the same Idempotency-Key.
        max_network_retries=2,
    )
    try:
        outcomes = bootstrap_catalog(client, catalog)
    except stripe.StripeError as exc:
        print(f"bootstrap-catalog: {_stripe_failure(exc, api_key)}", file=sys.stderr)
        return 1
    except PriceInUseError as exc:
        print(f"bootstrap-catalog: {exc}", file=sys.stderr)
        return 1
    print(report(outcomes, catalog, "live mode" if live else "test mode", args.api_base))
    return 0


if __name__ == "__main__":
    sys.exit(main())

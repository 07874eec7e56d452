"""The demo page's view of the plan catalog (`/dev/plans.json`): what a pricing page needs, read
through the same `parse_catalog` as the functions, so the page never depends on the file's format."""

from __future__ import annotations

from typing import Any

from tenant_billing.catalog import Catalog, Plan


def _plan_view(plan: Plan) -> dict[str, Any]:
    current = plan.current
    return {
        "name": plan.name,
        "version": current.version,
        "trial": {"days": plan.trial.days, "cardLess": plan.trial.card_less} if plan.trial else None,
        # What new checkouts pay, by interval: {"month": {"base": 7900, "site": 1900}, "year": {...}}.
        "prices": {
            interval: {"base": prices.base.unit_amount, "site": prices.site.unit_amount if prices.site else None}
            for interval, prices in current.prices.items()
        },
        "siteLimit": current.site_limit,
        "features": list(current.features),
        "limits": dict(current.limits),
        # Every version's entitlements: a grandfathered subscriber's plan is recognised by its own.
        "versions": {
            str(number): {"features": list(version.features), "limits": dict(version.limits)}
            for number, version in plan.versions.items()
        },
    }


def page_catalog(catalog: Catalog) -> dict[str, Any]:
    return {
        "currency": catalog.currency,
        "fallbackPlan": catalog.fallback_plan,
        "maxSiteQuantity": catalog.max_site_quantity,
        "features": dict(catalog.feature_names),
        "limits": {
            key: {"name": name.name, **({"unit": name.unit} if name.unit else {})} for key, name in catalog.limit_names.items()
        },
        "plans": {plan_id: _plan_view(plan) for plan_id, plan in catalog.plans.items()},
    }

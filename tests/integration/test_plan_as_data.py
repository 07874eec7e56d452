"""A plan added by data only: a catalog with an extra `team` plan, loaded through the same code,
its price configured like the others, sold and run end to end through the real handlers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import checkout_handler
from tenant_billing import catalog as catalog_module
from tests.conftest import reset_caches
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event
from tests.support.flows import call

pytestmark = pytest.mark.usefixtures("billing")

TEAM = {
    "name": "Team",
    "basePrice": {"env": "STRIPE_PRICE_TEAM_BASE", "unitAmount": 4900},
    "sitePrice": None,
    "trialDays": None,
    "features": ["page_builder", "media_library", "seo_toolkit", "analytics"],
    "limits": {"sites": 3, "pages_per_site": 50, "storage_gb": 5},
}


@pytest.fixture
def team_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stripe_fake: FakeStripe) -> Any:
    doc = json.loads(catalog_module.CATALOG_PATH.read_text())
    doc["plans"]["team"] = TEAM
    path = tmp_path / "plans.json"
    path.write_text(json.dumps(doc))
    monkeypatch.setattr(catalog_module, "CATALOG_PATH", path)
    monkeypatch.setenv("STRIPE_PRICE_TEAM_BASE", "price_team_base")
    stripe_fake.add_price("price_team_base", product_name="Team", unit_amount=4900)
    reset_caches()
    return doc


@pytest.mark.xfail(strict=True, reason="issue 13: Settings.price_ids keeps only the five STRIPE_PRICE_* fields it declares")
def test_a_plan_added_by_data_only_can_be_bought(team_catalog: Any) -> None:
    status, body = call(checkout_handler, api_event("POST", "/billing/checkout", body={"plan": "team"}))
    assert status == 200, body

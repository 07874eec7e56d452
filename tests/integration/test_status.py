from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import status_handler
from tests.conftest import TEST_PRICES, FakeLambdaContext, configure_prices
from tests.support.api_events import api_event, load_event, response_json
from tests.support.aws_calls import count_dynamodb_calls
from tests.support.store import store_subscription
from tests.support.template import REPO_ROOT

STARTER = {
    "features": ["page_builder", "media_library", "seo_toolkit"],
    "limits": {"sites": 1, "pages_per_site": 25, "storage_gb": 2},
}


def call(event: dict[str, Any]) -> tuple[int, Any]:
    response = status_handler.lambda_handler(event, FakeLambdaContext())
    return response["statusCode"], response_json(response)


@pytest.mark.usefixtures("dynamodb")
def test_a_new_organization_gets_the_fallback_plan() -> None:
    status, body = call(load_event("status.json"))
    assert status == 200
    assert body == {"configured": True, "subscription": None, "entitlement": STARTER, "hasStripeCustomer": False}


@pytest.mark.usefixtures("dynamodb")
def test_a_subscribed_organization_sees_its_plan_in_the_exact_shape() -> None:
    store_subscription("org_demo", plan="pro", status="active", site_quantity=3, current_period_end=1773273600)
    status, body = call(load_event("status_member.json"))
    assert status == 200
    assert body == {
        "configured": True,
        "subscription": {
            "plan": "pro",
            "status": "active",
            "siteQuantity": 3,
            "interval": "month",
            "planVersion": 1,
            "trialEnd": None,
            "currentPeriodEnd": "2026-03-12T00:00:00Z",
            "cancelAtPeriodEnd": False,
            "cancelAt": None,
            "pendingChange": None,
        },
        "entitlement": {
            "features": ["page_builder", "media_library", "seo_toolkit", "analytics", "form_builder", "blog_engine"],
            "limits": {"sites": 5, "pages_per_site": 100, "storage_gb": 10},
        },
        "hasStripeCustomer": True,
    }


@pytest.mark.usefixtures("dynamodb")
def test_an_ended_subscription_shows_its_status_and_the_fallback() -> None:
    store_subscription("org_demo", plan="enterprise", status="canceled", site_quantity=4)
    _, body = call(load_event("status.json"))
    assert body["subscription"]["status"] == "canceled"
    assert body["subscription"]["plan"] == "enterprise"
    assert body["entitlement"] == STARTER


@pytest.mark.usefixtures("dynamodb")
def test_missing_claims_are_401_with_a_json_error() -> None:
    status, body = call(load_event("status_no_claims.json"))
    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    assert body["error"]["message"]
    status, _ = call(api_event("GET", "/billing/status", org_id=None))
    assert status == 401


@pytest.mark.usefixtures("dynamodb")
def test_a_member_of_another_organization_sees_only_its_own() -> None:
    store_subscription("org_a", plan="enterprise", status="active", site_quantity=7, customer_id="cus_a", subscription_id="sub_a")
    _, body_b = call(api_event("GET", "/billing/status", org_id="org_b", role="member"))
    assert body_b == {"configured": True, "subscription": None, "entitlement": STARTER, "hasStripeCustomer": False}
    assert "cus_a" not in str(body_b) and "sub_a" not in str(body_b)
    _, body_a = call(api_event("GET", "/billing/status", org_id="org_a", role="member"))
    assert body_a["subscription"]["plan"] == "enterprise"
    assert body_a["entitlement"]["limits"]["sites"] == 12


@pytest.mark.usefixtures("dynamodb")
def test_status_costs_exactly_one_dynamodb_query() -> None:
    store_subscription("org_demo")
    with count_dynamodb_calls() as calls:
        status, _ = call(load_event("status.json"))
    assert status == 200
    assert calls == {"Query": 1}


@pytest.mark.usefixtures("dynamodb")
@pytest.mark.parametrize("unset", ["STRIPE_SECRET_ARN", "pro_base"])
def test_configured_is_false_without_the_secret_or_a_base_price(monkeypatch: pytest.MonkeyPatch, unset: str) -> None:
    if unset in TEST_PRICES:
        configure_prices(monkeypatch, without=(unset,))
    else:
        monkeypatch.setenv(unset, "")
    with count_dynamodb_calls() as calls:
        status, body = call(load_event("status.json"))
    assert (status, body["configured"]) == (200, False)
    assert calls == {"Query": 1}


@pytest.mark.usefixtures("dynamodb")
def test_site_prices_are_optional_for_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_prices(monkeypatch, without=("pro_site", "enterprise_site"))
    assert call(load_event("status.json"))[1]["configured"] is True


@pytest.mark.usefixtures("dynamodb")
def test_the_response_carries_no_secret_or_stripe_key() -> None:
    store_subscription("org_demo")
    response = status_handler.lambda_handler(load_event("status.json"), FakeLambdaContext())
    text = response["body"]
    for forbidden in ("arn:aws:secretsmanager", "sk_", "whsec_", "price_", "cus_test", "sub_test"):
        assert forbidden not in text


@pytest.mark.usefixtures("dynamodb")
def test_dynamodb_throttling_is_a_retryable_503(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    from tenant_billing.aws_clients import dynamodb_client

    def throttled(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "Query")

    monkeypatch.setattr(dynamodb_client(), "query", throttled)
    status, body = call(load_event("status.json"))
    assert (status, body["error"]["code"]) == (503, "temporarily_unavailable")


def test_unknown_route_is_a_json_404() -> None:
    status, body = call(api_event("GET", "/billing/nowhere"))
    assert (status, body["error"]["code"]) == (404, "not_found")


def test_the_status_path_imports_neither_stripe_nor_boto3_nor_xray() -> None:
    # Stripe is not needed; botocore alone makes the DynamoDB client (boto3 would add s3transfer);
    # with tracing off, the X-Ray SDK (which builds clients on import) is not loaded at all.
    code = (
        "import sys, status_handler\n"
        "from tenant_billing.aws_clients import dynamodb_client\n"
        "dynamodb_client()\n"
        "heavy = ('stripe', 'boto3', 's3transfer', 'aws_xray_sdk.core')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(heavy))\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    paths = [str(REPO_ROOT / "layers/common"), str(REPO_ROOT / "functions/status")]
    env = {
        "PYTHONPATH": ":".join(paths),
        "PATH": "/usr/bin:/bin",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"

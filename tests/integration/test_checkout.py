from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import boto3
import pytest

import checkout_handler
from tenant_billing.catalog import Trial
from tests.conftest import TEST_PRICES, FakeLambdaContext, configure_prices
from tests.stripe_fake import TEST_API_KEY, FakeStripe
from tests.support.api_events import api_event, load_event, response_json
from tests.support.store import store_subscription

Items = Callable[[], list[dict[str, Any]]]


def checkout(body: Any, *, org_id: str | None = "org_demo", role: str | None = "admin") -> tuple[int, Any]:
    event = api_event("POST", "/billing/checkout", org_id=org_id, role=role, body=body if body is not None else None)
    response = checkout_handler.lambda_handler(event, FakeLambdaContext())
    return response["statusCode"], response_json(response)


def stripe_posts(fake: FakeStripe, path: str) -> list[Any]:
    return [request for request in fake.requests if request.method == "POST" and request.path == path]


@pytest.mark.usefixtures("billing")
def test_pro_with_three_sites_gets_a_checkout_url(stripe_fake: FakeStripe, table_items: Items) -> None:
    status, body = checkout({"plan": "pro", "siteQuantity": 3})
    assert status == 200
    assert body["url"].startswith("https://checkout.stripe.com/")
    (session,) = stripe_fake.checkout_sessions.values()
    (customer,) = stripe_fake.customers.values()
    assert customer["metadata"] == {"organization_id": "org_demo"}
    assert session["customer"] == customer["id"]
    assert session["mode"] == "subscription"
    assert session["client_reference_id"] == "org_demo"
    assert session["metadata"] == {"organization_id": "org_demo", "plan": "pro"}
    assert session["success_url"] == "https://app.example.com/app/settings?billing=success"
    assert session["cancel_url"] == "https://app.example.com/app/billing?billing=canceled"
    (request,) = stripe_posts(stripe_fake, "/v1/checkout/sessions")
    assert request.params["line_items"] == [
        {"price": "price_pro_base", "quantity": "1"},
        {"price": "price_pro_site", "quantity": "3"},
    ]
    assert request.params["subscription_data"] == {"metadata": {"organization_id": "org_demo", "plan": "pro"}}
    assert "allow_promotion_codes" not in request.params and "automatic_tax" not in request.params
    links = {(item["pk"]["S"], item["sk"]["S"]): item for item in table_items()}
    assert links[("ORG#org_demo", "CUSTOMER")]["customer_id"]["S"] == customer["id"]
    assert links[(f"CUSTOMER#{customer['id']}", "ORG")]["org_id"]["S"] == "org_demo"


@pytest.mark.usefixtures("billing")
def test_the_sam_event_works(stripe_fake: FakeStripe) -> None:
    response = checkout_handler.lambda_handler(load_event("checkout.json"), FakeLambdaContext())
    assert response["statusCode"] == 200
    member = checkout_handler.lambda_handler(load_event("checkout_member.json"), FakeLambdaContext())
    assert member["statusCode"] == 403


@pytest.mark.usefixtures("billing")
def test_zero_sites_sends_only_the_base_price(stripe_fake: FakeStripe) -> None:
    assert checkout({"plan": "starter"})[0] == 200
    assert checkout({"plan": "enterprise", "siteQuantity": 0})[0] == 200
    lines = [request.params["line_items"] for request in stripe_posts(stripe_fake, "/v1/checkout/sessions")]
    assert lines == [[{"price": "price_starter_base", "quantity": "1"}], [{"price": "price_enterprise_base", "quantity": "1"}]]


TOO_LARGE = json.dumps({"plan": "pro", "siteQuantity": 1, "padding": "x" * 17000})


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"plan": "platinum"}, 400, "unknown_plan", "plan"),
        ({"plan": "pro", "siteQuantity": "3"}, 400, "invalid_field", "siteQuantity"),
        ({"plan": "pro", "siteQuantity": 2.5}, 400, "invalid_field", "siteQuantity"),
        ({"plan": "pro", "siteQuantity": 3.0}, 400, "invalid_field", "siteQuantity"),
        ({"plan": "pro", "siteQuantity": True}, 400, "invalid_field", "siteQuantity"),
        ({"plan": "pro", "siteQuantity": None}, 400, "invalid_field", "siteQuantity"),
        ({"plan": "pro", "siteQuantity": -1}, 400, "invalid_site_quantity", "siteQuantity"),
        ({"plan": "pro", "siteQuantity": 101}, 400, "invalid_site_quantity", "siteQuantity"),
        ({"plan": "starter", "siteQuantity": 1}, 400, "site_addon_unavailable", "siteQuantity"),
        ({"plan": "pro", "siteQuantity": 1, "orgId": "org_other"}, 400, "unknown_field", "orgId"),
        ({"siteQuantity": 1}, 400, "missing_field", "plan"),
        ({"plan": 3}, 400, "invalid_field", "plan"),
        ([{"plan": "pro"}], 400, "invalid_body", None),
        ('"pro"', 400, "invalid_body", None),
        ("null", 400, "invalid_body", None),
        ("", 400, "invalid_body", None),
        ("{plan: pro}", 400, "invalid_json", None),
        (TOO_LARGE, 413, "payload_too_large", None),
    ],
)
def test_bad_requests_are_refused_with_nothing_written_or_sent(
    stripe_fake: FakeStripe, table_items: Items, body: Any, status: int, code: str, field: str | None
) -> None:
    got_status, got = checkout(body)
    assert got_status == status
    assert got["error"]["code"] == code
    assert got["error"].get("field") == field
    assert got["error"]["message"]
    assert table_items() == []
    assert stripe_fake.requests == []


@pytest.mark.usefixtures("billing")
def test_site_quantity_without_a_configured_add_on_price(monkeypatch: pytest.MonkeyPatch, table_items: Items) -> None:
    configure_prices(monkeypatch, without=("pro_site",))
    status, body = checkout({"plan": "pro", "siteQuantity": 2})
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "site_addon_unavailable", "siteQuantity")
    assert checkout({"plan": "pro"})[0] == 200


@pytest.mark.usefixtures("billing")
def test_a_member_is_forbidden_and_nothing_happens(stripe_fake: FakeStripe, table_items: Items) -> None:
    status, body = checkout({"plan": "pro"}, role="member")
    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert table_items() == [] and stripe_fake.requests == []


@pytest.mark.usefixtures("billing")
def test_no_claims_is_401(stripe_fake: FakeStripe) -> None:
    assert checkout({"plan": "pro"}, org_id=None)[0] == 401
    assert stripe_fake.requests == []


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize("status", ["active", "trialing", "past_due", "unpaid", "paused", "incomplete"])
def test_a_live_subscription_is_409(stripe_fake: FakeStripe, status: str) -> None:
    store_subscription("org_demo", status=status)
    got_status, body = checkout({"plan": "enterprise"})
    assert (got_status, body["error"]["code"]) == (409, "subscription_exists")
    assert stripe_fake.requests == []


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize("status", ["canceled", "incomplete_expired"])
def test_an_ended_subscription_may_subscribe_again(stripe_fake: FakeStripe, status: str) -> None:
    store_subscription("org_demo", status=status, customer_id="cus_old")
    stripe_fake.customers["cus_old"] = {"id": "cus_old", "object": "customer", "metadata": {}, "deleted": False}
    assert checkout({"plan": "pro"})[0] == 200


@pytest.mark.usefixtures("dynamodb", "stripe_fake")
@pytest.mark.parametrize("unset", ["STRIPE_SECRET_ARN", "starter_base"])
def test_not_configured_is_503(monkeypatch: pytest.MonkeyPatch, table_items: Items, unset: str) -> None:
    if unset in TEST_PRICES:
        configure_prices(monkeypatch, without=(unset,))
    else:
        monkeypatch.setenv(unset, "")
    status, body = checkout({"plan": "pro"})
    assert (status, body["error"]["code"]) == (503, "billing_not_configured")
    assert table_items() == []


@pytest.mark.usefixtures("dynamodb", "stripe_fake")
def test_an_empty_key_in_the_secret_is_not_configured(monkeypatch: pytest.MonkeyPatch, table_items: Items) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="empty", SecretString=json.dumps({"STRIPE_SECRET_KEY": "", "STRIPE_WEBHOOK_SECRET": ""}))[
        "ARN"
    ]
    monkeypatch.setenv("STRIPE_SECRET_ARN", arn)
    status, body = checkout({"plan": "pro"})
    assert (status, body["error"]["code"]) == (503, "billing_not_configured")


@pytest.mark.usefixtures("billing")
def test_stripe_5xx_is_retried_then_succeeds(stripe_fake: FakeStripe) -> None:
    stripe_fake.fail_next(1, status=500, path_prefix="/v1/checkout/sessions")
    status, body = checkout({"plan": "pro", "siteQuantity": 1})
    assert status == 200, body
    assert len(stripe_posts(stripe_fake, "/v1/checkout/sessions")) == 2
    assert len(stripe_fake.checkout_sessions) == 1


@pytest.mark.usefixtures("billing")
def test_a_connection_reset_is_retried(stripe_fake: FakeStripe) -> None:
    stripe_fake.fail_next(1, connection_error=True, path_prefix="/v1/customers")
    assert checkout({"plan": "pro"})[0] == 200
    assert len(stripe_fake.customers) == 1


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 503}, {"connection_error": True}])
def test_stripe_down_is_502_and_says_nothing_of_stripe(stripe_fake: FakeStripe, fault: dict[str, Any]) -> None:
    stripe_fake.fail_next(10, path_prefix="/v1/checkout/sessions", **fault)
    status, body = checkout({"plan": "pro"})
    assert (status, body["error"]["code"]) == (502, "stripe_unavailable")
    assert "stripe" not in body["error"]["message"].lower()
    # Three attempts (the first and two retries), then the caller is told to retry.
    assert len(stripe_posts(stripe_fake, "/v1/checkout/sessions")) == 3
    assert stripe_fake.checkout_sessions == {}


@pytest.mark.usefixtures("dynamodb", "stripe_fake")
def test_a_rejected_key_is_503_misconfigured(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    wrong_key = "sk_test_wrong_key_9876543210"
    arn = client.create_secret(Name="wrong", SecretString=json.dumps({"STRIPE_SECRET_KEY": wrong_key}))["ARN"]
    monkeypatch.setenv("STRIPE_SECRET_ARN", arn)
    status, body = checkout({"plan": "pro"})
    assert (status, body["error"]["code"]) == (503, "billing_misconfigured")
    output = capsys.readouterr()
    assert wrong_key not in output.out + output.err
    assert "9876" not in json.dumps(body)


@pytest.mark.usefixtures("billing")
def test_a_price_stripe_does_not_know_is_503_misconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_prices(monkeypatch, {"pro_base": "price_deleted_in_dashboard"})
    status, body = checkout({"plan": "pro"})
    assert (status, body["error"]["code"]) == (503, "billing_misconfigured")
    assert "price_deleted_in_dashboard" not in json.dumps(body)


@pytest.mark.usefixtures("billing")
def test_secrets_manager_unavailable_is_a_retryable_503(monkeypatch: pytest.MonkeyPatch, table_items: Items) -> None:
    from botocore.exceptions import ClientError

    from tenant_billing.aws_clients import secretsmanager_client

    def throttled(*args: Any, **kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetSecretValue")

    monkeypatch.setattr(secretsmanager_client(), "get_secret_value", throttled)
    status, body = checkout({"plan": "pro"})
    assert (status, body["error"]["code"]) == (503, "temporarily_unavailable")
    assert table_items() == []


@pytest.mark.usefixtures("billing")
def test_promotion_codes_and_automatic_tax_are_switched_by_parameters(
    monkeypatch: pytest.MonkeyPatch, stripe_fake: FakeStripe
) -> None:
    monkeypatch.setenv("ALLOW_PROMOTION_CODES", "true")
    monkeypatch.setenv("AUTOMATIC_TAX", "true")
    assert checkout({"plan": "pro"})[0] == 200
    (request,) = stripe_posts(stripe_fake, "/v1/checkout/sessions")
    assert request.params["allow_promotion_codes"] == "true"
    assert request.params["automatic_tax"] == {"enabled": "true"}


@pytest.mark.usefixtures("billing")
def test_a_catalog_trial_applies_to_the_first_subscription_only(monkeypatch: pytest.MonkeyPatch, stripe_fake: FakeStripe) -> None:
    from tenant_billing.catalog import get_catalog

    catalog = get_catalog()
    pro = replace(catalog.plans["pro"], trial=Trial(days=14))
    with_trial = replace(catalog, plans={**catalog.plans, "pro": pro})
    monkeypatch.setattr(checkout_handler, "get_catalog", lambda: with_trial)
    assert checkout({"plan": "pro"})[0] == 200
    store_subscription("org_again", status="canceled", customer_id="cus_again")
    stripe_fake.customers["cus_again"] = {"id": "cus_again", "object": "customer", "metadata": {}, "deleted": False}
    assert checkout({"plan": "pro"}, org_id="org_again")[0] == 200
    first, again = (request.params["subscription_data"] for request in stripe_posts(stripe_fake, "/v1/checkout/sessions"))
    assert first["trial_period_days"] == "14"
    assert "trial_period_days" not in again


@pytest.mark.usefixtures("billing")
def test_keys_never_reach_the_logs(capsys: pytest.CaptureFixture[str], stripe_fake: FakeStripe) -> None:
    checkout({"plan": "pro", "siteQuantity": 2})
    stripe_fake.fail_next(10, status=500)
    checkout({"plan": "pro"}, org_id="org_other")
    output = capsys.readouterr()
    assert TEST_API_KEY not in output.out + output.err
    assert "whsec_" not in output.out + output.err


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize(
    "content_type",
    ["text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data", "application/merge-patch+json"],
)
def test_a_body_that_is_not_labelled_json_is_415(stripe_fake: FakeStripe, table_items: Items, content_type: str) -> None:
    event = api_event("POST", "/billing/checkout", body={"plan": "pro"})
    event["headers"]["content-type"] = content_type
    response = checkout_handler.lambda_handler(event, FakeLambdaContext())
    assert (response["statusCode"], response_json(response)["error"]["code"]) == (415, "unsupported_media_type")
    assert table_items() == [] and stripe_fake.requests == []


@pytest.mark.usefixtures("billing")
def test_json_with_a_charset_or_in_capitals_is_accepted() -> None:
    for content_type in ("application/json; charset=utf-8", "Application/JSON"):
        event = api_event("POST", "/billing/checkout", org_id=f"org_{len(content_type)}", body={"plan": "pro"})
        event["headers"]["content-type"] = content_type
        assert checkout_handler.lambda_handler(event, FakeLambdaContext())["statusCode"] == 200

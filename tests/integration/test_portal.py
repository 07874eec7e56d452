from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import checkout_handler
import portal_handler
from tests.conftest import FakeLambdaContext
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event, load_event, response_json

Items = Callable[[], list[dict[str, Any]]]


def portal(*, role: str | None = "admin", org_id: str | None = "org_demo", body: Any = None) -> tuple[int, Any]:
    event = api_event("POST", "/billing/portal", org_id=org_id, role=role, body=body)
    response = portal_handler.lambda_handler(event, FakeLambdaContext())
    return response["statusCode"], response_json(response)


def first_checkout(org_id: str = "org_demo") -> None:
    event = api_event("POST", "/billing/checkout", org_id=org_id, body={"plan": "pro"})
    assert checkout_handler.lambda_handler(event, FakeLambdaContext())["statusCode"] == 200


@pytest.mark.usefixtures("billing")
def test_portal_for_the_organizations_customer(stripe_fake: FakeStripe) -> None:
    first_checkout()
    status, body = portal()
    assert status == 200
    assert body["url"].startswith("https://billing.stripe.com/")
    (session,) = stripe_fake.portal_sessions.values()
    (customer,) = stripe_fake.customers.values()
    assert session["customer"] == customer["id"]
    assert session["return_url"] == "https://app.example.com/app/billing"


@pytest.mark.usefixtures("billing")
def test_the_sam_event_works() -> None:
    first_checkout()
    response = portal_handler.lambda_handler(load_event("portal.json"), FakeLambdaContext())
    assert response["statusCode"] == 200


@pytest.mark.usefixtures("billing")
def test_without_a_customer_is_409_and_nothing_is_sent(stripe_fake: FakeStripe, table_items: Items) -> None:
    status, body = portal()
    assert (status, body["error"]["code"]) == (409, "no_billing_account")
    assert stripe_fake.requests == []
    assert table_items() == []


@pytest.mark.usefixtures("billing")
def test_another_organizations_customer_is_never_used(stripe_fake: FakeStripe) -> None:
    first_checkout("org_a")
    status, body = portal(org_id="org_b", body={})
    assert (status, body["error"]["code"]) == (409, "no_billing_account")
    assert stripe_fake.portal_sessions == {}


@pytest.mark.usefixtures("billing")
def test_members_are_forbidden(stripe_fake: FakeStripe) -> None:
    first_checkout()
    stripe_fake.reset_requests()
    assert portal(role="member")[0] == 403
    assert portal(org_id=None)[0] == 401
    assert stripe_fake.requests == []


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize(
    ("body", "code"), [({"customer": "cus_x"}, "unknown_field"), ("[]", "invalid_body"), ("{", "invalid_json")]
)
def test_the_body_takes_nothing(stripe_fake: FakeStripe, body: Any, code: str) -> None:
    first_checkout()
    stripe_fake.reset_requests()
    status, got = portal(body=body)
    assert (status, got["error"]["code"]) == (400, code)
    assert stripe_fake.requests == []


@pytest.mark.usefixtures("billing")
def test_the_portal_configuration_is_configurable(monkeypatch: pytest.MonkeyPatch, stripe_fake: FakeStripe) -> None:
    stripe_fake.add_portal_configuration("bpc_custom")
    monkeypatch.setenv("PORTAL_CONFIGURATION_ID", "bpc_custom")
    first_checkout()
    assert portal()[0] == 200
    (session,) = stripe_fake.portal_sessions.values()
    assert session["return_url"] == "https://app.example.com/app/billing"
    assert session["configuration"] == "bpc_custom"


@pytest.mark.usefixtures("billing")
def test_an_unknown_configuration_is_503_misconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_CONFIGURATION_ID", "bpc_missing")
    first_checkout()
    status, body = portal()
    assert (status, body["error"]["code"]) == (503, "billing_misconfigured")


@pytest.mark.usefixtures("billing")
def test_stripe_down_is_502(stripe_fake: FakeStripe) -> None:
    first_checkout()
    stripe_fake.fail_next(10, status=500, path_prefix="/v1/billing_portal")
    status, body = portal()
    assert (status, body["error"]["code"]) == (502, "stripe_unavailable")


@pytest.mark.usefixtures("dynamodb", "stripe_fake")
def test_not_configured_is_503(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_SECRET_ARN", "")
    status, body = portal()
    assert (status, body["error"]["code"]) == (503, "billing_not_configured")

"""Every route declares the role it needs (`BillingApi.operation`): the declarations, the OpenAPI
document and the real handlers' answers all agree with one table."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

import checkout_handler
import invoices_handler
import portal_handler
import status_handler
import subscription_handler
import sync_handler
from tenant_billing.auth import Role
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event
from tests.support.aws_calls import count_dynamodb_calls
from tests.support.flows import call
from tests.support.generate_openapi import OPENAPI_PATH, ROLE_EXTENSION
from tests.support.template import resources_of_type

EXPECTED_ROLES = {
    ("GET", "/billing/status"): Role.MEMBER,
    ("GET", "/billing/invoices"): Role.MEMBER,
    ("POST", "/billing/sync"): Role.MEMBER,
    ("POST", "/billing/checkout"): Role.BILLING_ADMIN,
    ("POST", "/billing/portal"): Role.BILLING_ADMIN,
    ("GET", "/billing/subscription/preview"): Role.BILLING_ADMIN,
    ("POST", "/billing/subscription"): Role.BILLING_ADMIN,
    ("POST", "/billing/subscription/cancel"): Role.BILLING_ADMIN,
    ("POST", "/billing/subscription/resume"): Role.BILLING_ADMIN,
}
HANDLERS: dict[str, ModuleType] = {
    "/billing/status": status_handler,
    "/billing/invoices": invoices_handler,
    "/billing/sync": sync_handler,
    "/billing/checkout": checkout_handler,
    "/billing/portal": portal_handler,
    "/billing/subscription/preview": subscription_handler,
    "/billing/subscription": subscription_handler,
    "/billing/subscription/cancel": subscription_handler,
    "/billing/subscription/resume": subscription_handler,
}
ADMIN_ROUTES = [route for route, role in EXPECTED_ROLES.items() if role is Role.BILLING_ADMIN]


def test_the_handlers_declare_the_expected_roles() -> None:
    declared = {tuple(key.split(" ", 1)): role for module in set(HANDLERS.values()) for key, role in module.app.roles.items()}
    assert declared == EXPECTED_ROLES


def test_the_table_has_every_route_of_the_template() -> None:
    routes = {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        for function in resources_of_type("AWS::Serverless::Function").values()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] == "HttpApi"
    }
    assert routes == set(EXPECTED_ROLES)


def test_the_openapi_document_names_each_role_and_a_403_only_where_it_is_asked() -> None:
    document = json.loads(OPENAPI_PATH.read_text())
    operations = {
        (method.upper(), path): operation
        for path, by_method in document["paths"].items()
        for method, operation in by_method.items()
    }
    assert {route: operation.get(ROLE_EXTENSION) for route, operation in operations.items()} == {
        route: role.value for route, role in EXPECTED_ROLES.items()
    }
    for route, operation in operations.items():
        assert ("403" in operation["responses"]) == (EXPECTED_ROLES[route] is Role.BILLING_ADMIN), route


def member_event(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """A member's request with a body (or query) no route accepts: the role is checked first."""
    if method == "POST":
        return api_event(method, path, role="member", body={"not a field": 1}, **kwargs)
    event = api_event(method, path, role="member", **kwargs)
    event["queryStringParameters"] = {"limit": "many", "not a parameter": "1"}
    return event


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_a_member_is_refused_an_admin_route_before_any_call(stripe_fake: FakeStripe, method: str, path: str) -> None:
    stripe_fake.reset_requests()
    with count_dynamodb_calls() as calls:
        status, body = call(HANDLERS[path], member_event(method, path))
    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert calls == {} and stripe_fake.requests == []


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize(("method", "path"), [route for route in EXPECTED_ROLES if route not in ADMIN_ROUTES])
def test_a_member_is_answered_on_a_member_route(method: str, path: str) -> None:
    status, _ = call(HANDLERS[path], api_event(method, path, role="member"))
    assert status == 200


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_an_admin_gets_past_the_role_check(method: str, path: str) -> None:
    # The same request an admin sends is refused for what it carries, never for who sends it.
    event = member_event(method, path)
    event["requestContext"]["authorizer"]["jwt"]["claims"]["org_role"] = "admin"
    status, body = call(HANDLERS[path], event)
    assert (status, body["error"]["code"]) != (403, "forbidden")
    assert status == 400, body


@pytest.mark.usefixtures("billing")
def test_only_a_route_that_takes_query_parameters_refuses_unknown_ones() -> None:
    event = api_event("GET", "/billing/status")
    event["queryStringParameters"] = {"utm_source": "mail"}
    assert call(status_handler, event)[0] == 200
    event = api_event("GET", "/billing/invoices")
    event["queryStringParameters"] = {"utm_source": "mail"}
    status, body = call(invoices_handler, event)
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "unknown_field", "utm_source")


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
@pytest.mark.parametrize("variant", ["trailing slash", "other method"])
def test_a_path_no_route_declares_is_not_found_and_reaches_nothing(
    stripe_fake: FakeStripe, method: str, path: str, variant: str
) -> None:
    # Whatever the resolver might match, only a declared "METHOD /path" is resolved with its role.
    event = api_event(method, path + "/", role="member", body={})
    if variant == "other method":
        event = api_event("PUT", path, role="member", body={})
    stripe_fake.reset_requests()
    with count_dynamodb_calls() as calls:
        status, body = call(HANDLERS[path], event)
    assert (status, body["error"]["code"]) == (404, "not_found")
    assert calls == {} and stripe_fake.requests == []

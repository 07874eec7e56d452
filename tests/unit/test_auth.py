from __future__ import annotations

from typing import Any

import pytest

from tenant_billing.auth import Role, authorize, caller_from_event
from tenant_billing.errors import ForbiddenError, UnauthorizedError
from tenant_billing.settings import get_settings
from tests.support.api_events import api_event


def test_tenant_and_role_come_from_the_jwt_claims() -> None:
    caller = caller_from_event(api_event("GET", "/billing/status", org_id="org_a", role="owner"), get_settings())
    assert (caller.org_id, caller.is_billing_admin) == ("org_a", True)


def test_a_member_is_not_a_billing_admin() -> None:
    caller = caller_from_event(api_event("GET", "/billing/status", role="member"), get_settings())
    assert not caller.is_billing_admin
    with pytest.raises(ForbiddenError):
        authorize(caller, Role.BILLING_ADMIN)


@pytest.mark.parametrize("claim", ["[member admin]", '["admin"]', '["viewer", "admin"]', ["viewer", "admin"], " admin "])
def test_role_claim_lists(claim: Any) -> None:
    event = api_event("GET", "/billing/status", role=None, extra_claims={"org_role": claim})
    assert caller_from_event(event, get_settings()).is_billing_admin


@pytest.mark.parametrize(
    "claim",
    [
        "not admin",
        "read-only admin",
        "admin member",
        "admin,owner",
        '"admin"',
        "[]",
        '["not admin"]',
        [["admin"]],
        1,
        "[not admin]x",
    ],
)
def test_only_real_lists_are_split(claim: Any) -> None:
    # One role whose name contains "admin" is not the role "admin".
    event = api_event("GET", "/billing/status", role=None, extra_claims={"org_role": claim})
    assert not caller_from_event(event, get_settings()).is_billing_admin


@pytest.mark.parametrize("org_id", [None, "", " ", "org#1 x", "a" * 200, 42, "../org"])
def test_missing_or_malformed_tenant_claim_is_unauthorized(org_id: Any) -> None:
    event = api_event("GET", "/billing/status", org_id=None, extra_claims={} if org_id is None else {"org_id": org_id})
    with pytest.raises(UnauthorizedError):
        caller_from_event(event, get_settings())


def test_no_authorizer_context_is_unauthorized() -> None:
    event = api_event("GET", "/billing/status")
    del event["requestContext"]["authorizer"]
    with pytest.raises(UnauthorizedError):
        caller_from_event(event, get_settings())


def test_claim_names_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANT_CLAIM", "custom:tenant")
    monkeypatch.setenv("ROLE_CLAIM", "custom:role")
    monkeypatch.setenv("ADMIN_ROLES", "billing")
    event = api_event(
        "GET", "/billing/status", org_id=None, role=None, extra_claims={"custom:tenant": "org_x", "custom:role": "billing"}
    )
    caller = caller_from_event(event, get_settings())
    assert (caller.org_id, caller.is_billing_admin) == ("org_x", True)


def test_body_can_never_choose_the_tenant() -> None:
    event = api_event("POST", "/billing/checkout", org_id="org_a", body={"org_id": "org_b", "orgId": "org_b"})
    assert caller_from_event(event, get_settings()).org_id == "org_a"

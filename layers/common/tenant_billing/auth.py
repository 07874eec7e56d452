"""The caller's organization and role, taken only from the JWT claims that API Gateway's JWT
authorizer verified (`requestContext.authorizer.jwt.claims`), never from the request body."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from tenant_billing.errors import ForbiddenError, UnauthorizedError
from tenant_billing.records import frozen
from tenant_billing.settings import Settings

# Organization ids become key components and Stripe metadata: keep them to a safe alphabet.
_ORG_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")


@frozen
class Caller:
    org_id: str
    roles: frozenset[str]
    is_billing_admin: bool


def _claims(event: Mapping[str, Any]) -> Mapping[str, Any]:
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, Mapping) else None
    jwt = authorizer.get("jwt") if isinstance(authorizer, Mapping) else None
    claims = jwt.get("claims") if isinstance(jwt, Mapping) else None
    return claims if isinstance(claims, Mapping) else {}


def _roles(value: Any) -> frozenset[str]:
    """The caller's roles. Only a real list is split: a list claim, a JSON array as text, or API
    Gateway's "[a b]" rendering of a list claim. Any other string is one role, whatever it holds:
    a role named "not admin" or "read-only admin" is not the role "admin"."""
    if isinstance(value, list):
        return frozenset(role for role in value if isinstance(role, str))
    if not isinstance(value, str):
        return frozenset()
    text = value.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return frozenset({text}) if text else frozenset()
    try:
        parsed = json.loads(text)
    except ValueError:
        return frozenset(text[1:-1].split())
    return frozenset(role for role in parsed if isinstance(role, str)) if isinstance(parsed, list) else frozenset()


def is_org_id(value: str) -> bool:
    """An organization id as the tenant claim carries one."""
    return bool(_ORG_ID.fullmatch(value))


def caller_from_event(event: Mapping[str, Any], settings: Settings) -> Caller:
    claims = _claims(event)
    org_id = claims.get(settings.TENANT_CLAIM)
    if not isinstance(org_id, str) or not is_org_id(org_id):
        raise UnauthorizedError("the token carries no valid organization claim")
    roles = _roles(claims.get(settings.ROLE_CLAIM))
    return Caller(org_id=org_id, roles=roles, is_billing_admin=bool(roles & settings.ADMIN_ROLES))


class Role(StrEnum):
    """What a route asks of its caller: to be a member of the organization (any valid token), or
    one of its billing admins (a role in ADMIN_ROLES)."""

    MEMBER = "member"
    BILLING_ADMIN = "billing_admin"


def authorize(caller: Caller, role: Role) -> None:
    if role is Role.BILLING_ADMIN and not caller.is_billing_admin:
        raise ForbiddenError("only an organization's billing admins may manage billing")

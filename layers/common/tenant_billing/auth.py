"""The caller's organization and role, taken only from the JWT claims that API Gateway's JWT
authorizer verified (`requestContext.authorizer.jwt.claims`), never from the request body."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tenant_billing.errors import ForbiddenError, UnauthorizedError
from tenant_billing.settings import Settings

# Organization ids become key components and Stripe metadata: keep them to a safe alphabet.
_ORG_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")


@dataclass(frozen=True, slots=True)
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
    """A role claim may be one string, a list, a JSON array as text, or API Gateway's "[a b]"
    rendering of a list claim."""
    if isinstance(value, list):
        return frozenset(str(role) for role in value)
    if isinstance(value, str):
        text = value.strip().removeprefix("[").removesuffix("]")
        return frozenset(role for role in re.split(r"[\s,\"']+", text) if role)
    return frozenset()


def caller_from_event(event: Mapping[str, Any], settings: Settings) -> Caller:
    claims = _claims(event)
    org_id = claims.get(settings.TENANT_CLAIM)
    if not isinstance(org_id, str) or not _ORG_ID.fullmatch(org_id):
        raise UnauthorizedError("the token carries no valid organization claim")
    roles = _roles(claims.get(settings.ROLE_CLAIM))
    return Caller(org_id=org_id, roles=roles, is_billing_admin=bool(roles & settings.ADMIN_ROLES))


def require_billing_admin(caller: Caller) -> None:
    if not caller.is_billing_admin:
        raise ForbiddenError("only an organization's billing admins may manage billing")

"""API Gateway HTTP API (v2.0) events for the handlers, built from the shared events/ files."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from tests.support.template import REPO_ROOT

EVENTS_DIR: Path = REPO_ROOT / "events"


@cache
def _load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return event


def load_event(name: str) -> dict[str, Any]:
    return copy.deepcopy(_load(name))


def api_event(
    method: str,
    path: str,
    *,
    org_id: str | None = "org_demo",
    role: str | None = "admin",
    body: str | dict[str, Any] | None = None,
    extra_claims: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An HTTP API event shaped like events/status.json for any route, caller and body."""
    event = load_event("status.json")
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    if claims is None:
        claims = dict(event["requestContext"]["authorizer"]["jwt"]["claims"])
        for name, value in (("org_id", org_id), ("org_role", role)):
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        claims.update(extra_claims or {})
    event["requestContext"]["authorizer"]["jwt"]["claims"] = claims
    if body is not None:
        event["headers"]["content-type"] = "application/json"
        event["body"] = body if isinstance(body, str) else json.dumps(body)
        event["isBase64Encoded"] = False
    return event


def response_json(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])

"""Generate the HTTP API's OpenAPI document from the handlers' own route declarations (Powertools'
OpenAPIMerge over every API function), into functions/openapi.json (the API the functions serve),
which `make dev` serves at /openapi.json. `make openapi` writes it; `make test` fails when it has drifted.

    make openapi
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.support.template import REPO_ROOT, resources_of_type

OPENAPI_PATH = REPO_ROOT / "functions" / "openapi.json"


def api_handler_files() -> list[Path]:
    """The handler file of every function that serves HttpApi routes, read from template.yaml."""
    files = []
    for function in resources_of_type("AWS::Serverless::Function").values():
        properties = function["Properties"]
        if any(event["Type"] == "HttpApi" for event in properties.get("Events", {}).values()):
            files.append(REPO_ROOT / properties["CodeUri"] / f"{properties['Handler'].rsplit('.', 1)[0]}.py")
    return sorted(files)


def build_document() -> dict[str, Any]:
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    merge = OpenAPIMerge(
        title="SaaS billing API",
        version="1.0.0",
        description=(
            "Organization-level Stripe billing. Every route needs a JWT (API Gateway's JWT authorizer); the "
            "organization and role come from its claims, never from the request. Errors: "
            '{"error": {"code", "message", "field"}} with a stable code.'
        ),
        security_schemes={"jwt": HTTPBearer(bearerFormat="JWT")},
        security=[{"jwt": []}],
        on_conflict="error",
    )
    for path in api_handler_files():
        merge.add_file(path, resolver_name="app")
    document: dict[str, Any] = json.loads(merge.get_openapi_json_schema())
    # Powertools documents its default 422 validation answer; ours is a 400 with our error body
    # (http_api.validation_error), already listed on every route.
    for operations in document["paths"].values():
        for operation in operations.values():
            operation["responses"].pop("422", None)
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        document["components"]["schemas"].pop(unused, None)
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main() -> int:
    OPENAPI_PATH.write_text(render(build_document()))
    print(f"wrote {OPENAPI_PATH.relative_to(REPO_ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

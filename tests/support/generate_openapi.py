"""Generate the HTTP API's OpenAPI document from the handlers' own route declarations (each API
function's `app`, handed to a Powertools resolver with the pydantic models of its dataclasses),
into functions/openapi.json (the API the functions serve),
which `make dev` serves at /openapi.json. `make openapi` writes it; `make test` fails when it has drifted.

    make openapi
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

from tenant_billing.api_models import ErrorResponse
from tenant_billing.auth import Role
from tenant_billing.http_api import BillingApi, Operation
from tenant_billing.records import record_fields
from tests.support.pydantic_models import pydantic_model
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


# The error answers of the routes (codes in the README).
ERROR_RESPONSES = {
    400: "Invalid request: error.code and error.field say what and where",
    401: "No valid organization claim in the token",
    402: "A plan change was not applied: its invoice is unpaid (payment_failed, payment_requires_action)",
    403: "The caller's role may not manage billing",
    409: (
        "Conflicts with the organization's billing state (subscription_exists, checkout_in_progress, no_subscription,"
        " no_billing_account, payment_outstanding, change_in_progress)"
    ),
    413: "The body is over 16 KiB",
    502: "Stripe is unavailable: retry later",
    503: "Billing is not configured or storage is unavailable: retry later",
}
# typing.Annotated, subscripted with types known only at run time.
ANNOTATED: Any = Annotated
# The OpenAPI extension that names an operation's role (the `Role` values).
ROLE_EXTENSION = "x-billing-role"


def api_modules() -> list[ModuleType]:
    """The handler module of every API function (each has its `app`), imported as Lambda does."""
    return [importlib.import_module(path.stem) for path in api_handler_files()]


def documented_endpoint(operation: Operation) -> Callable[..., Any]:
    """A function whose signature declares the operation's request as Powertools reads it: the
    body model as Body(), or each field of the query model as a Query() parameter."""
    from aws_lambda_powertools.event_handler.openapi.params import Body, Query

    parameters = []
    if operation.query is not None:
        hints = typing.get_type_hints(operation.query)
        for field in record_fields(operation.query):
            metadata = field.metadata
            constraints = {key: metadata[key] for key in ("max_length", "ge", "le") if key in metadata}
            default = inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default
            query = Query(alias=metadata.get("alias"), description=metadata.get("description"), **constraints)
            annotation = ANNOTATED[hints[field.name], query]
            parameters.append(
                inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
            )
    elif operation.body is not None:
        model: Any = pydantic_model(operation.body)
        if operation.body_required:
            parameters.append(inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=ANNOTATED[model, Body()]))
        else:
            optional = ANNOTATED[model | None, Body()]
            parameters.append(inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=optional, default=None))

    def endpoint(**_: Any) -> Any:
        raise NotImplementedError("documentation only")

    endpoint.__name__ = operation.function.__name__
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return endpoint


def responses(operation: Operation) -> dict[int, Any]:
    """Its 200 model and the error answers it may give (a 403 only where the role asks more than
    membership)."""
    error = {"application/json": {"model": pydantic_model(ErrorResponse)}}
    answer = {
        "description": operation.answer_description,
        "content": {"application/json": {"model": pydantic_model(operation.answer)}},
    }
    errors = {
        status: {"description": text, "content": error}
        for status, text in ERROR_RESPONSES.items()
        if status != 403 or operation.role is not Role.MEMBER
    }
    return {200: answer, **errors}


def build_document() -> dict[str, Any]:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    resolver = APIGatewayHttpResolver(enable_validation=True)
    for module in api_modules():
        app: BillingApi = module.app
        for operation in app.operations.values():
            summary, description = operation.docs
            resolver.route(
                operation.path,
                operation.method,
                summary=summary,
                description=description,
                tags=[app.tag],
                responses=responses(operation),
                openapi_extensions={ROLE_EXTENSION: operation.role.value},
            )(documented_endpoint(operation))
    document: dict[str, Any] = json.loads(
        resolver.get_openapi_json_schema(
            title="SaaS billing API",
            version="1.0.0",
            description=(
                "Organization-level Stripe billing. Every route needs a JWT (API Gateway's JWT authorizer); the "
                "organization and role come from its claims, never from the request. Errors: "
                '{"error": {"code", "message", "field"}} with a stable code.'
            ),
            security_schemes={"jwt": HTTPBearer(bearerFormat="JWT")},
            security=[{"jwt": []}],
        )
    )
    # Powertools documents its default 422 validation answer; ours is a 400 with our error body
    # (tenant_billing.wire), already listed on every route.
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

"""Wiring shared by the API Gateway functions: a Powertools resolver whose exception handlers
turn every domain error (and anything unexpected) into the one JSON error shape."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestUnsupportedContentType, RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_billing.api_models import ErrorResponse
from tenant_billing.auth import Caller, caller_from_event, require_billing_admin
from tenant_billing.errors import BillingError, InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError
from tenant_billing.http_responses import JSON_HEADERS, error_body, error_payload, error_response
from tenant_billing.observability import logger, metrics
from tenant_billing.request_body import MAX_BODY_BYTES, MAX_FIELD_NAME
from tenant_billing.settings import get_settings

# The error answers every route may give, for the OpenAPI document (codes in the README).
ERROR_RESPONSES: dict[int, OpenAPIResponse] = {
    status: {"description": description, "content": {"application/json": {"model": ErrorResponse}}}
    for status, description in (
        (400, "Invalid request: error.code and error.field say what and where"),
        (401, "No valid organization claim in the token"),
        (402, "A plan change was not applied: its invoice is unpaid (payment_failed, payment_requires_action)"),
        (403, "The caller's role may not manage billing"),
        (
            409,
            "Conflicts with the organization's billing state (subscription_exists, checkout_in_progress, no_subscription,"
            " no_billing_account, payment_outstanding, change_in_progress)",
        ),
        (413, "The body is over 16 KiB"),
        (502, "Stripe is unavailable: retry later"),
        (503, "Billing is not configured or storage is unavailable: retry later"),
    )
}


def documented(model: type[Any], description: str) -> dict[int, OpenAPIResponse]:
    """The OpenAPI responses of a route: its 200 model and the shared error answers."""
    success: OpenAPIResponse = {"description": description, "content": {"application/json": {"model": model}}}
    return {200: success, **ERROR_RESPONSES}


def json_response(status_code: int, body: dict[str, Any]) -> Response[str]:
    return Response(status_code=status_code, headers=dict(JSON_HEADERS), body=json.dumps(body, separators=(",", ":")))


def validation_error(errors: Any) -> InvalidRequestError:
    """Powertools' request validation errors as our stable codes and the field concerned."""
    error = errors[0] if errors else {"type": "", "loc": (), "msg": "invalid request"}
    location, *path = [str(part) for part in error.get("loc", ())] or ["body"]
    # The field name may be the caller's own (an unknown field): keep it bounded.
    field = ".".join(path)[:MAX_FIELD_NAME] or None
    kind = error.get("type", "")
    if kind == "json_invalid":
        return InvalidRequestError("the request body is not valid JSON", code="invalid_json")
    if field is None and location == "body":
        return InvalidRequestError("the request body must be a JSON object", code="invalid_body")
    if kind == "extra_forbidden":
        # The name is the caller's text: returned in `field`, kept out of the message.
        return InvalidRequestError("unknown field", field=field, code="unknown_field")
    if kind == "missing":
        return InvalidRequestError(f"{field}: required", field=field, code="missing_field")
    return InvalidRequestError(f"{field}: {error.get('msg', 'invalid value')}", field=field, code="invalid_field")


def refused(exc: BillingError) -> Response[str]:
    status, body = error_payload(exc)
    log = logger.warning if status >= 500 else logger.info
    # An unknown field's name is the caller's own text (it may be a card number or a key used as a
    # JSON key), so it is not logged; every other field name is one of our models'.
    field = "(not logged)" if exc.code == "unknown_field" else exc.field
    # The code is ours and the field is safe; the message may quote the caller's input: not logged.
    log("request refused", extra={"error_code": exc.code, "status": status, "field": field})
    if exc.retryable:
        metrics.add_metric(name="TransientFailure", unit="Count", value=1)
    return json_response(status, body)


def build_resolver() -> APIGatewayHttpResolver:
    # Validation on: bodies and query parameters are parsed into the pydantic models the routes
    # declare, and the OpenAPI document is generated from the same declarations.
    app = APIGatewayHttpResolver(enable_validation=True)

    @app.exception_handler(BillingError)  # type: ignore[untyped-decorator]
    def _billing_error(exc: BillingError) -> Response[str]:
        return refused(exc)

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid(exc: RequestValidationError) -> Response[str]:
        return refused(validation_error(exc.errors()))

    @app.exception_handler(RequestUnsupportedContentType)  # type: ignore[untyped-decorator]
    def _unsupported(exc: RequestUnsupportedContentType) -> Response[str]:
        return refused(UnsupportedMediaTypeError("send the body as application/json"))

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _unexpected(exc: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return json_response(500, error_body("internal_error", "an unexpected error occurred"))

    @app.not_found
    def _not_found(exc: Exception) -> Response[str]:
        return json_response(404, error_body("not_found", "no such route"))

    return app


def check_body(event: dict[str, Any]) -> None:
    """A body, when there is one, is at most 16 KiB of JSON whose top level is an object."""
    body = event.get("body") or ""
    if not body:
        return
    try:
        raw = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else str(body).encode()
    except (binascii.Error, ValueError):
        raise InvalidRequestError("the request body is not valid base64", code="invalid_body") from None
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"the request body exceeds {MAX_BODY_BYTES} bytes")
    headers = event.get("headers") or {}
    name = next((key for key in headers if str(key).lower() == "content-type"), None)
    media_type = str(headers[name] if name else "application/json").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaTypeError("send the body as application/json")
    if name:
        # Media types are case-insensitive; Powertools compares them as written.
        headers[name] = "application/json"
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequestError("the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(document, dict):
        raise InvalidRequestError("the request body must be a JSON object", code="invalid_body")


def resolve(
    app: APIGatewayHttpResolver, event: dict[str, Any], context: LambdaContext, admin_routes: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Authenticate, authorize and refuse oversized bodies before anything parses the request:
    an unauthenticated or non-admin caller learns nothing about what a valid body looks like."""
    try:
        caller = caller_from_event(event, get_settings())
        if event.get("routeKey") in admin_routes:
            require_billing_admin(caller)
    except BillingError as exc:
        return error_response(exc)
    logger.append_keys(org_id=caller.org_id)
    # The routing context (what append_context fills); Powertools clears it after every resolve.
    app.context["caller"] = caller
    try:
        check_body(event)
    except BillingError as exc:
        return error_response(exc)
    answer: dict[str, Any] = app.resolve(event, context)
    return answer


def current_caller(app: APIGatewayHttpResolver) -> Caller:
    """The caller of the request being routed, as `resolve` checked it (parsed once per request)."""
    caller = app.context.get("caller")
    return caller if isinstance(caller, Caller) else caller_from_event(app.current_event.raw_event, get_settings())

"""The HTTP edge of the API functions: a Powertools resolver whose routes each declare the role they
need, the checks every request passes before anything parses it, and the one Lambda entry point.

Errors become responses in `http_responses`; here they are only raised or routed there.
"""

from __future__ import annotations

import base64
import binascii
import functools
import inspect
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestUnsupportedContentType, RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_billing.api_models import ErrorResponse
from tenant_billing.auth import Caller, Role, authorize, caller_from_event
from tenant_billing.errors import BillingError, InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError
from tenant_billing.http_responses import internal_error, json_response, proxy_response, refused, route_not_found
from tenant_billing.observability import logger, metrics, tracer
from tenant_billing.settings import get_settings

MAX_BODY_BYTES = 16 * 1024
MAX_FIELD_NAME = 128
# The OpenAPI extension that names an operation's role (the `Role` values).
ROLE_EXTENSION = "x-billing-role"

RouteFunction = TypeVar("RouteFunction", bound=Callable[..., Any])
# The context is Lambda's LambdaContext; tests and the local stack pass a stand-in.
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]

# The error answers of the routes, for the OpenAPI document (codes in the README).
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


def documented(model: type[Any], description: str, role: Role) -> dict[int, OpenAPIResponse]:
    """The OpenAPI responses of a route: its 200 model and the error answers it may give (a 403
    only where the role asks more than membership)."""
    success: OpenAPIResponse = {"description": description, "content": {"application/json": {"model": model}}}
    errors = {status: answer for status, answer in ERROR_RESPONSES.items() if status != 403 or role is not Role.MEMBER}
    return {200: success, **errors}


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


def refuse_unknown_query(parameters: Mapping[str, str] | None, allowed: frozenset[str]) -> None:
    """Query string parameters a route does not take are refused like unknown body fields."""
    for name in parameters or {}:
        if name not in allowed:
            # The name is the caller's own text: it goes back in `field` (bounded), never into a
            # message, which tracebacks and traces may carry into logs.
            raise InvalidRequestError("unknown query parameter", field=name[:MAX_FIELD_NAME], code="unknown_field")


def route_key(event: Mapping[str, Any]) -> str:
    """ "METHOD /path" as the resolver routes the event (our routes are static paths)."""
    request = APIGatewayProxyEventV2(dict(event))
    return f"{request.http_method.upper()} {request.path}"


def summary_and_description(function: Callable[..., Any]) -> tuple[str, str | None]:
    """A route function's docstring as its OpenAPI summary (the first paragraph) and description
    (the rest), each on one line."""
    summary, _, description = inspect.cleandoc(function.__doc__ or "").partition("\n\n")
    return " ".join(summary.split()), " ".join(description.split()) or None


class BillingApi(APIGatewayHttpResolver):
    """The resolver of one API function. Routes are declared with `operation`, which records the
    role each needs; `handle` checks it, with the caller and the body, before the request is parsed."""

    def __init__(self, tag: str) -> None:
        # Validation on: bodies and query parameters are parsed into the pydantic models the routes
        # declare, and the OpenAPI document is generated from the same declarations.
        super().__init__(enable_validation=True)
        self.tag = tag
        self.roles: dict[str, Role] = {}
        self.exception_handler(BillingError)(lambda exc: json_response(*refused(exc)))
        self.exception_handler(RequestValidationError)(lambda exc: json_response(*refused(validation_error(exc.errors()))))
        self.exception_handler(RequestUnsupportedContentType)(
            lambda _: json_response(*refused(UnsupportedMediaTypeError("send the body as application/json")))
        )
        self.exception_handler(Exception)(_unexpected)
        self.not_found(lambda _: json_response(404, route_not_found()))

    def operation(
        self, route: str, role: Role, answer: type[Any], answer_description: str, *, query: frozenset[str] | None = None
    ) -> Callable[[RouteFunction], RouteFunction]:
        """Declare a traced route ("POST /billing/checkout"), the role it needs and its 200 answer;
        the function's docstring documents it. A route that takes query parameters names them in
        `query`: any other is refused once the declared ones are valid."""
        method, path = route.split(" ", 1)
        self.roles[route] = role

        def declare(function: RouteFunction) -> RouteFunction:
            summary, description = summary_and_description(function)
            routed = function if query is None else self._refusing_unknown_query(function, query)
            self.route(
                path,
                method,
                summary=summary,
                description=description,
                tags=[self.tag],
                responses=documented(answer, answer_description, role),
                openapi_extensions={ROLE_EXTENSION: role.value},
            )(tracer.capture_method(routed))
            return function

        return declare

    def _refusing_unknown_query(self, function: RouteFunction, allowed: frozenset[str]) -> Callable[..., Any]:
        # functools.wraps keeps the signature Powertools reads the route's parameters from.
        @functools.wraps(function)
        def checked(*args: Any, **kwargs: Any) -> Any:
            refuse_unknown_query(self.current_event.query_string_parameters, allowed)
            return function(*args, **kwargs)

        return checked

    @property
    def caller(self) -> Caller:
        """The caller of the request being routed, as `handle` authenticated it."""
        caller: Caller = self.context["caller"]
        return caller

    def handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """Authenticate, authorize and refuse bad bodies before anything parses the request:
        an unauthenticated or non-admin caller learns nothing about what a valid body looks like."""
        try:
            caller = caller_from_event(event, get_settings())
            logger.append_keys(org_id=caller.org_id)
            role = self.roles.get(route_key(event))
            if role is None:
                # Only a declared route is resolved, so no path the resolver might match is ever
                # reached without its role checked.
                return proxy_response(404, route_not_found())
            authorize(caller, role)
            check_body(event)
        except BillingError as exc:
            return proxy_response(*refused(exc))
        # The routing context (what append_context fills); Powertools clears it after every resolve.
        self.context["caller"] = caller
        answer: dict[str, Any] = self.resolve(event, context)
        return answer


def _unexpected(exc: Exception) -> Response[str]:
    logger.exception("unhandled error")
    return json_response(500, internal_error())


def api_lambda_handler(api: BillingApi) -> LambdaHandler:
    """The Lambda entry point of an API function: Powertools' logging, tracing and metrics around
    `api.handle`."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return api.handle(event, context)

    return lambda_handler

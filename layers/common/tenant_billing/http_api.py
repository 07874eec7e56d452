"""The HTTP edge of the API functions: routes that each declare the role they need and the models
they take and answer, the checks every request passes before anything parses it, and the one
Lambda entry point.

The routing is ours, a dictionary lookup: Powertools' resolver (with its OpenAPI validation)
would cost a cold start more than the function's own work. The declarations are still the API's
one description: tests/support/generate_openapi.py hands them to Powertools to generate the
OpenAPI document, and `wire` validates requests as that document says.

Errors become responses in `http_responses`; here they are only raised or routed there.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tenant_billing.auth import Caller, Role, authorize, caller_from_event
from tenant_billing.errors import BillingError, InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError
from tenant_billing.http_responses import internal_error, proxy_response, refused, route_not_found
from tenant_billing.observability import API_GATEWAY_HTTP_REQUEST_ID, logger, metrics, tracer
from tenant_billing.records import frozen
from tenant_billing.settings import get_settings
from tenant_billing.wire import read_model, resolve_models, to_wire

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

MAX_BODY_BYTES = 16 * 1024

# The context is Lambda's LambdaContext; tests and the local stack pass a stand-in.
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
RouteFunction = Callable[..., Any]


@frozen
class Operation:
    """One route: who may call it, what it takes (a body model, or a model of its query
    parameters) and what it answers. The function is called with the caller, then the request
    model when it takes one (None for an optional body that was not sent)."""

    method: str
    path: str
    role: Role
    function: RouteFunction
    answer: type[Any]
    answer_description: str
    body: type[Any] | None
    body_required: bool
    query: type[Any] | None

    @property
    def docs(self) -> tuple[str, str | None]:
        """The function's docstring as the OpenAPI summary (first paragraph) and description."""
        summary, _, description = inspect.cleandoc(self.function.__doc__ or "").partition("\n\n")
        return " ".join(summary.split()), " ".join(description.split()) or None

    def serve(self, caller: Caller, event: Mapping[str, Any], document: dict[str, Any] | None) -> Any:
        """The route's answer to a request whose caller may call it (`document` is its body)."""
        if self.query is not None:
            return self.function(caller, read_model(self.query, event.get("queryStringParameters") or {}, query=True))
        if self.body is None:
            return self.function(caller)
        if document is None:
            if self.body_required:
                raise InvalidRequestError("the request body must be a JSON object", code="invalid_body")
            return self.function(caller, None)
        return self.function(caller, read_model(self.body, document))


class BillingApi:
    """The routes of one API function, declared with `operation`; `handle` authenticates,
    authorizes and validates a request before its route runs."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.operations: dict[str, Operation] = {}

    def operation(
        self,
        route: str,
        role: Role,
        answer: type[Any],
        answer_description: str,
        *,
        body: type[Any] | None = None,
        body_required: bool = False,
        query: type[Any] | None = None,
    ) -> Callable[[RouteFunction], RouteFunction]:
        """Declare a traced route ("POST /billing/checkout"), the role it needs, its request model
        (a JSON body, or the query string: any parameter it does not declare is refused) and its
        200 answer; the function's docstring documents it. A route without a query model ignores
        the query string."""
        method, path = route.split(" ", 1)

        def declare(function: RouteFunction) -> RouteFunction:
            traced = tracer.capture_method(function)
            self.operations[route] = Operation(method, path, role, traced, answer, answer_description, body, body_required, query)
            return function

        return declare

    def warm(self) -> None:
        """Resolve the models of every route (SnapStart's priming: tenant_billing.snapstart)."""
        for operation in self.operations.values():
            for model in (operation.body, operation.query, operation.answer):
                if model is not None:
                    resolve_models(model)

    @property
    def roles(self) -> dict[str, Role]:
        return {route: operation.role for route, operation in self.operations.items()}

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        """Authenticate, authorize and refuse bad bodies before anything parses the request:
        an unauthenticated or non-admin caller learns nothing about what a valid body looks like."""
        try:
            caller = caller_from_event(event, get_settings())
            logger.append_keys(org_id=caller.org_id)
            operation = self.operations.get(route_key(event))
            if operation is None:
                return proxy_response(404, route_not_found())
            authorize(caller, operation.role)
            answer = operation.serve(caller, event, read_body(event))
        except BillingError as exc:
            return proxy_response(*refused(exc))
        except Exception:
            logger.exception("unhandled error")
            return proxy_response(500, internal_error())
        return proxy_response(200, to_wire(answer))


def read_body(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The body, when there is one: at most 16 KiB of JSON whose top level is an object."""
    body = event.get("body") or ""
    if not body:
        return None
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
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequestError("the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(document, dict):
        raise InvalidRequestError("the request body must be a JSON object", code="invalid_body")
    return document


def route_key(event: Mapping[str, Any]) -> str:
    """ "METHOD /path" of an HTTP API (payload 2.0) event; our routes are static paths."""
    http = (event.get("requestContext") or {}).get("http") or {}
    return f"{str(http.get('method', '')).upper()} {event.get('rawPath') or http.get('path', '')}"


def api_lambda_handler(api: BillingApi) -> LambdaHandler:
    """The Lambda entry point of an API function: Powertools' logging, tracing and metrics around
    `api.handle`."""

    @logger.inject_lambda_context(correlation_id_path=API_GATEWAY_HTTP_REQUEST_ID, clear_state=True)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return api.handle(event)

    return lambda_handler

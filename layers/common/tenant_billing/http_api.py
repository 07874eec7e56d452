"""Wiring shared by the API Gateway functions: a Powertools resolver whose exception handlers
turn every domain error (and anything unexpected) into the one JSON error shape."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from tenant_billing.errors import BillingError
from tenant_billing.http_responses import JSON_HEADERS, error_body, error_payload
from tenant_billing.observability import logger, metrics
from tenant_billing.repository import DynamoBillingRepository
from tenant_billing.settings import get_settings


def json_response(status_code: int, body: dict[str, Any]) -> Response[str]:
    return Response(status_code=status_code, headers=dict(JSON_HEADERS), body=json.dumps(body, separators=(",", ":")))


def build_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver()

    @app.exception_handler(BillingError)  # type: ignore[untyped-decorator]
    def _billing_error(exc: BillingError) -> Response[str]:
        status, body = error_payload(exc)
        log = logger.warning if status >= 500 else logger.info
        # The message is ours (never Stripe's or a secret), so it is safe to log.
        log("request refused", extra={"error_code": exc.code, "status": status, "field": exc.field})
        if exc.retryable:
            metrics.add_metric(name="TransientFailure", unit="Count", value=1)
        return json_response(status, body)

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _unexpected(exc: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return json_response(500, error_body("internal_error", "an unexpected error occurred"))

    @app.not_found
    def _not_found(exc: Exception) -> Response[str]:
        return json_response(404, error_body("not_found", "no such route"))

    return app


@cache
def get_repository() -> DynamoBillingRepository:
    return DynamoBillingRepository(get_settings().TABLE_NAME)

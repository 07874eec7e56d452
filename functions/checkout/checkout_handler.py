"""POST /billing/checkout: not implemented yet (arrives with the checkout and portal issue)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_billing.errors import NotImplementedYetError
from tenant_billing.http_responses import error_response


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return error_response(NotImplementedYetError("billing checkout is not available yet"))

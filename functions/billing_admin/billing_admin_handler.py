"""The operators' function: no route, no URL. Invoked with `lambda:InvokeFunction` by someone the
account allows to (`python -m functions.admin --stack <name> ...` uses the caller's own AWS
credentials), so the live Stripe key never leaves the account. See `tenant_billing.operator_logic`.

Event: {"command": "show" | "resync", "orgId": "..."}, {"command": "replay", "eventId": "evt_..."}
or {"command": "problems"}. Answer: {"result": ...}, or {"error": {"code", "message", "field",
"retryable"}} with the API's error codes (nothing is changed by a refused command).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tenant_billing.auth import is_org_id
from tenant_billing.aws_clients import dynamodb_client, secretsmanager_client
from tenant_billing.catalog import get_catalog
from tenant_billing.errors import BillingError, InvalidRequestError
from tenant_billing.event_sync_logic import BatchSync, read_pacer
from tenant_billing.observability import logger, metrics, tracer
from tenant_billing.operator_logic import COMMANDS, OperatorCommand, replay_event, resync_org, show_org, subscription_problems
from tenant_billing.repositories import get_reconcile_repository, get_webhook_repository
from tenant_billing.settings import get_settings
from tenant_billing.snapstart import prime_on_snapshot
from tenant_billing.stripe_adapter import get_stripe
from tenant_billing.wire import read_model

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        if not isinstance(event, dict):
            raise InvalidRequestError("the event must be a JSON object", code="invalid_json")
        command = read_model(OperatorCommand, event)
        logger.info(
            "operator command", extra={"command": command.command, "org_id": command.org_id, "event_id": command.event_id}
        )
        # How often operators step in (each command is also its log line above).
        metrics.add_metric(name="OperatorCommand", unit="Count", value=1)
        return {"result": run(command)}
    except BillingError as exc:
        logger.warning("operator command refused or failed", extra={"error_code": exc.code})
        return {"error": {"code": exc.code, "message": exc.message, "field": exc.field, "retryable": exc.retryable}}


def run(command: OperatorCommand) -> Any:
    if command.command not in COMMANDS:
        raise InvalidRequestError(f"command: one of {', '.join(COMMANDS)}", field="command", code="invalid_field")
    settings, catalog = get_settings(), get_catalog()
    if command.command == "problems":
        return subscription_problems(get_reconcile_repository())
    if command.command == "replay":
        event_id = required(command.event_id, "eventId")
        batch = BatchSync(get_webhook_repository(), get_stripe, settings, catalog, read_pacer(settings.consumer_reads_per_second))
        return replay_event(event_id, get_stripe(), batch)
    org_id = required(command.org_id, "orgId")
    if not is_org_id(org_id):
        raise InvalidRequestError("orgId: not an organization id", field="orgId", code="invalid_field")
    if command.command == "show":
        return show_org(org_id, get_webhook_repository(), get_stripe)
    return resync_org(org_id, get_webhook_repository(), get_stripe, settings, catalog)


def required(value: str | None, field: str) -> str:
    if not value:
        raise InvalidRequestError(f"{field}: required", field=field, code="missing_field")
    return value


prime_on_snapshot(dynamodb_client, secretsmanager_client, get_settings, get_catalog)

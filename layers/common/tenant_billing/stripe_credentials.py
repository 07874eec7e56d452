"""Stripe credentials from the Secrets Manager secret, through Powertools Parameters (cached
per execution environment for STRIPE_SECRET_MAX_AGE_SECONDS, so a rotated value is picked up).

The secret's SecretString is JSON: {"STRIPE_SECRET_KEY": "sk_...", "STRIPE_WEBHOOK_SECRET":
"whsec_a[,whsec_b]"} (several webhook secrets while one is being rolled). Values never reach a log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from tenant_billing.errors import BillingMisconfiguredError, BillingNotConfiguredError, TransientStoreError
from tenant_billing.observability import logger
from tenant_billing.settings import get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

# Secrets Manager answers that an operator must fix; anything else (throttling, 5xx, timeouts)
# is transient and the caller should retry.
_MISCONFIGURATION_CODES = frozenset(
    {"ResourceNotFoundException", "AccessDeniedException", "DecryptionFailure", "InvalidRequestException"}
)


@dataclass(frozen=True, slots=True)
class StripeCredentials:
    secret_key: str = field(repr=False)
    webhook_secrets: tuple[str, ...] = field(repr=False)


@cache
def _secrets_provider() -> SecretsProvider:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from tenant_billing.aws_clients import secretsmanager_client

    # Our botocore client rather than the provider's own: that one would come from a new boto3
    # session, loading botocore's endpoint data a second time (about 60 ms of a cold start).
    return SecretsProvider(boto3_client=secretsmanager_client())


def _error_code(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    response: Any = getattr(cause, "response", None) or {}
    return str(response.get("Error", {}).get("Code", type(cause).__name__ if cause else ""))


def get_stripe_credentials() -> StripeCredentials:
    """The current credentials; BillingNotConfiguredError when no secret or no key is set."""
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

    settings = get_settings()
    if not settings.STRIPE_SECRET_ARN:
        raise BillingNotConfiguredError("billing is not configured")
    try:
        value = _secrets_provider().get(
            settings.STRIPE_SECRET_ARN, transform="json", max_age=settings.STRIPE_SECRET_MAX_AGE_SECONDS
        )
    except TransformParameterError:
        logger.error("the Stripe secret is not a JSON object")
        raise BillingMisconfiguredError("billing is misconfigured") from None
    except GetParameterError as exc:
        code = _error_code(exc)
        logger.warning("reading the Stripe secret failed", extra={"error_code": code})
        if code in _MISCONFIGURATION_CODES:
            raise BillingMisconfiguredError("billing is misconfigured") from None
        raise TransientStoreError("billing credentials are temporarily unavailable, try again") from None
    if not isinstance(value, dict):
        raise BillingMisconfiguredError("billing is misconfigured")
    secret_key = str(value.get("STRIPE_SECRET_KEY") or "").strip()
    webhook = str(value.get("STRIPE_WEBHOOK_SECRET") or "")
    return StripeCredentials(
        secret_key=secret_key,
        webhook_secrets=tuple(secret.strip() for secret in webhook.split(",") if secret.strip()),
    )

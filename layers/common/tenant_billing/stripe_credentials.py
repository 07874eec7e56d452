"""Stripe credentials from the Secrets Manager secret, read with our shared botocore client and
cached per execution environment for STRIPE_SECRET_MAX_AGE_SECONDS (so a rotated value is picked up).

The secret's SecretString is JSON: {"STRIPE_SECRET_KEY": "sk_...", "STRIPE_WEBHOOK_SECRET":
"whsec_a[,whsec_b]"} (several webhook secrets while one is being rolled), and optionally a
restricted key per function group under the name the function's STRIPE_KEY_NAME gives
("STRIPE_SECRET_KEY_CHECKOUT": "rk_..."): a function uses its group's key when the secret has one,
else STRIPE_SECRET_KEY. Values never reach a log.

One GetSecretValue call, not Powertools Parameters: its module imports boto3, s3transfer and
multiprocessing (about 37 ms of a cold start) to do the same.
"""

from __future__ import annotations

import json
from dataclasses import field
from time import monotonic
from typing import Any

from tenant_billing.errors import BillingMisconfiguredError, BillingNotConfiguredError, TransientStoreError
from tenant_billing.observability import logger
from tenant_billing.records import frozen
from tenant_billing.settings import SHARED_KEY_NAME, get_settings

# Secrets Manager answers that an operator must fix; anything else (throttling, 5xx, timeouts)
# is transient and the caller should retry.
_MISCONFIGURATION_CODES = frozenset(
    {"ResourceNotFoundException", "AccessDeniedException", "DecryptionFailure", "InvalidRequestException"}
)


@frozen
class StripeCredentials:
    secret_key: str = field(repr=False)
    webhook_secrets: tuple[str, ...] = field(repr=False)


# (the secret's ARN, the key's name) -> (time.monotonic() deadline, its credentials). Only valid secrets are kept.
_cache: dict[tuple[str, str], tuple[float, StripeCredentials]] = {}


def forget_stripe_credentials() -> None:
    """Drop the cached credentials: the next get_stripe_credentials reads Secrets Manager again."""
    _cache.clear()


def _read_secret(secret_id: str) -> str | bytes:
    """The secret's value; BillingMisconfiguredError or TransientStoreError when it cannot be read."""
    from botocore.exceptions import ClientError

    from tenant_billing.aws_clients import secretsmanager_client

    client = secretsmanager_client()
    try:
        response = client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        logger.warning("reading the Stripe secret failed", extra={"error_code": code})
        if code in _MISCONFIGURATION_CODES:
            raise BillingMisconfiguredError("billing is misconfigured") from None
        raise TransientStoreError("billing credentials are temporarily unavailable, try again") from None
    except Exception as exc:  # botocore's connection errors and timeouts (BotoCoreError), or anything else
        logger.warning("reading the Stripe secret failed", extra={"error_code": type(exc).__name__})
        raise TransientStoreError("billing credentials are temporarily unavailable, try again") from None
    if "SecretString" in response:
        return response["SecretString"]
    return response["SecretBinary"]


def _parse(value: str | bytes, key_name: str) -> StripeCredentials:
    try:
        document: Any = json.loads(value.decode("utf-8") if isinstance(value, bytes) else value)
    except ValueError:  # not JSON, or binary that is not UTF-8 (UnicodeDecodeError is a ValueError)
        document = None
    if not isinstance(document, dict):
        logger.error("the Stripe secret is not a JSON object")
        raise BillingMisconfiguredError("billing is misconfigured")
    secret_key = str(document.get(key_name) or document.get(SHARED_KEY_NAME) or "").strip()
    webhook = str(document.get("STRIPE_WEBHOOK_SECRET") or "")
    return StripeCredentials(
        secret_key=secret_key,
        webhook_secrets=tuple(secret.strip() for secret in webhook.split(",") if secret.strip()),
    )


def get_stripe_credentials() -> StripeCredentials:
    """The current credentials; BillingNotConfiguredError when no secret or no key is set."""
    settings = get_settings()
    secret_id = settings.STRIPE_SECRET_ARN
    if not secret_id:
        raise BillingNotConfiguredError("billing is not configured")
    cache_key = (secret_id, settings.STRIPE_KEY_NAME)
    cached = _cache.get(cache_key)
    if cached is not None and monotonic() < cached[0]:
        return cached[1]
    credentials = _parse(_read_secret(secret_id), settings.STRIPE_KEY_NAME)
    max_age = settings.STRIPE_SECRET_MAX_AGE_SECONDS
    if max_age > 0:
        _cache[cache_key] = (monotonic() + max_age, credentials)
    else:
        _cache.pop(cache_key, None)
    return credentials

"""Stripe-Signature headers as Stripe builds them, for tests, tools and the local emulator (the
product only verifies them: tenant_billing.webhook_signature)."""

from __future__ import annotations

from collections.abc import Sequence

from tenant_billing.webhook_signature import compute_signature


def signature_header(secrets: Sequence[str], timestamp: int, raw_body: bytes) -> str:
    """One v1 signature per secret, as while a secret is being rolled."""
    return ",".join([f"t={timestamp}", *(f"v1={compute_signature(secret, timestamp, raw_body)}" for secret in secrets)])

"""Stripe webhook signature verification over the exact raw body, with every configured secret
and a two-sided timestamp tolerance. Pure: no SDK, no I/O, no clock of its own.

The signed string is "<t>.<raw body>", HMAC-SHA256 with the endpoint secret, lowercase hex. The
header carries one v1 signature per active secret while a secret is being rolled; any one match
is enough. stripe-python only rejects timestamps that are too old; we also reject the future.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from tenant_billing.records import frozen

DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """The request is not a genuine, fresh Stripe delivery. `code` is stable; no secret inside."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@frozen
class ParsedHeader:
    timestamp: int
    signatures: tuple[str, ...]


def parse_signature_header(header: str | None) -> ParsedHeader:
    if not header or len(header) > 4096:
        raise SignatureError("missing_signature", "the Stripe-Signature header is missing")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            # isascii: str.isdigit() also accepts digits like "²" that int() refuses.
            if not (value.isascii() and value.isdigit()) or len(value) > 12:
                raise SignatureError("malformed_signature", "the Stripe-Signature timestamp is malformed")
            timestamp = int(value)
        elif key == "v1" and value.strip():
            signatures.append(value.strip().lower())
    if timestamp is None or not signatures:
        raise SignatureError("malformed_signature", "the Stripe-Signature header has no timestamp or no v1 signature")
    return ParsedHeader(timestamp, tuple(signatures))


def compute_signature(secret: str, timestamp: int, raw_body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + raw_body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify_signature(
    raw_body: bytes,
    header: str | None,
    secrets: Sequence[str],
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """Return the signed timestamp, or raise SignatureError."""
    parsed = parse_signature_header(header)
    if not secrets:
        raise SignatureError("no_webhook_secret", "no webhook secret is configured")
    matched = False
    for secret in secrets:
        expected = compute_signature(secret, parsed.timestamp, raw_body)
        # Compare against every signature (no early exit on the first secret) in constant time.
        for candidate in parsed.signatures:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("invalid_signature", "no signature matches a configured webhook secret")
    if abs(now - parsed.timestamp) > tolerance:
        raise SignatureError("timestamp_out_of_tolerance", "the signature timestamp is outside the tolerance")
    return parsed.timestamp

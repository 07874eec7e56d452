"""Signature verification against the vectors computed with the real stripe-python 16.1.0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tenant_billing.webhook_signature import SignatureError, verify_signature
from tests.support.stripe_signature import signature_header
from tests.support.template import REPO_ROOT

REFERENCE = REPO_ROOT.parent / "shared" / "stripe-reference"
VECTORS: dict[str, Any] = json.loads((REFERENCE / "signature_vectors.stripe-16.1.0.json").read_text())
PAYLOAD: bytes = (REFERENCE / "legacy-events-api-2020-08-27" / "customer.subscription.updated.json").read_bytes()
SECRET: str = VECTORS["secret"]
T: int = VECTORS["timestamp"]


def verify(header: str | None, *, body: bytes = PAYLOAD, secrets: tuple[str, ...] = (SECRET,), now: float = T) -> int:
    return verify_signature(body, header, secrets, now=now)


def code_of(header: str | None, **kwargs: Any) -> str:
    with pytest.raises(SignatureError) as info:
        verify(header, **kwargs)
    return info.value.code


def test_our_hmac_equals_the_sdks() -> None:
    assert signature_header([SECRET], T, PAYLOAD) == VECTORS["header_single"]


@pytest.mark.parametrize("name", ["header_single", "header_multi_v1_first_bad", "header_with_v0"])
def test_the_vectors_the_sdk_accepts(name: str) -> None:
    assert verify(VECTORS[name]) == T


def test_wrong_secret() -> None:
    assert code_of(VECTORS["header_single"], secrets=("whsec_other",)) == "invalid_signature"


def test_a_rolled_secret_any_one_matching_is_enough() -> None:
    assert verify(VECTORS["header_single"], secrets=("whsec_new_secret", SECRET)) == T
    both = signature_header(["whsec_new_secret", SECRET], T, PAYLOAD)
    assert verify(both, secrets=("whsec_new_secret",)) == T


def test_a_re_serialized_body_fails() -> None:
    reserialized = json.dumps(json.loads(PAYLOAD)).encode()
    assert reserialized != PAYLOAD
    assert code_of(VECTORS["header_single"], body=reserialized) == "invalid_signature"
    assert code_of(VECTORS["header_single"], body=PAYLOAD + b" ") == "invalid_signature"


@pytest.mark.parametrize(("offset", "ok"), [(-301, False), (-300, True), (0, True), (300, True), (301, False), (3600, False)])
def test_tolerance_is_300_seconds_in_both_directions(offset: int, ok: bool) -> None:
    # now = T - offset: a positive offset is a timestamp in the future.
    if ok:
        assert verify(VECTORS["header_single"], now=T - offset) == T
    else:
        assert code_of(VECTORS["header_single"], now=T - offset) == "timestamp_out_of_tolerance"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_signature"),
        ("", "missing_signature"),
        ("garbage", "malformed_signature"),
        ("t=abc,v1=00", "malformed_signature"),
        (f"t={T}", "malformed_signature"),
        ("v1=" + "0" * 64, "malformed_signature"),
        (f"t={T},v0=" + "0" * 64, "malformed_signature"),
        (f"t={T},v1=" + "0" * 64, "invalid_signature"),
        ("t=" + "9" * 20 + ",v1=00", "malformed_signature"),
    ],
)
def test_missing_or_malformed_headers(header: str | None, code: str) -> None:
    assert code_of(header) == code


def test_no_secret_configured() -> None:
    assert code_of(VECTORS["header_single"], secrets=()) == "no_webhook_secret"


def test_errors_never_carry_a_secret_or_the_body() -> None:
    with pytest.raises(SignatureError) as info:
        verify(VECTORS["header_single"], secrets=("whsec_other",))
    assert "whsec" not in str(info.value) and "sub_" not in str(info.value)


def test_a_header_for_another_timestamp_fails() -> None:
    header = VECTORS["header_single"].replace(f"t={T}", f"t={T + 1}")
    assert code_of(header, now=T + 1) == "invalid_signature"


def test_reference_payload_is_the_exact_file() -> None:
    assert Path(REFERENCE / "legacy-events-api-2020-08-27" / "customer.subscription.updated.json").stat().st_size == len(PAYLOAD)

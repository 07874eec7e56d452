"""Secrets Manager faults (the Stripe secret) at the boundary of our Secrets Manager client.

Contract: throttling, Secrets Manager's own 5xx and network timeouts answer a retryable 503
`temporarily_unavailable` with nothing written and nothing sent to Stripe; an answer an operator must
fix (access denied, no such secret) is a 503 `billing_misconfigured`; the retry succeeds. GET
/billing/status never reads the secret, so it keeps working.
"""

from __future__ import annotations

from typing import Any

import pytest

from tenant_billing.aws_clients import secretsmanager_client
from tenant_billing.stripe_credentials import forget_stripe_credentials
from tests.robustness.aws_faults import AwsError, AwsFaultInjector, Fault, connect_timeout, read_timeout
from tests.robustness.support import ORG_A, Items, call_checkout, call_portal, call_status, deliver, linked_customer
from tests.stripe_fake import FakeStripe
from tests.support.flows import subscribe

FAULTS: dict[str, tuple[Fault, str]] = {
    "Throttling": (AwsError("ThrottlingException"), "temporarily_unavailable"),
    "InternalServiceError": (AwsError("InternalServiceError", status=500), "temporarily_unavailable"),
    "connect-timeout": (connect_timeout, "temporarily_unavailable"),
    "read-timeout": (read_timeout, "temporarily_unavailable"),
    "AccessDenied": (AwsError("AccessDeniedException"), "billing_misconfigured"),
}


def secrets_client() -> Any:
    forget_stripe_credentials()  # the next request reads Secrets Manager again
    return secretsmanager_client()


def assert_refused(reply: Any, code: str) -> None:
    assert (reply.status, reply.code) == (503, code), reply
    assert reply.retryable


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize(("fault", "code"), FAULTS.values(), ids=FAULTS.keys())
def test_checkout(fault: Fault, code: str, aws_faults: AwsFaultInjector, stripe_fake: FakeStripe, table_items: Items) -> None:
    aws_faults.fail(secrets_client(), "GetSecretValue", fault)
    assert_refused(call_checkout({"plan": "pro"}), code)
    assert table_items() == []
    assert stripe_fake.requests == []
    assert call_checkout({"plan": "pro"}).status == 200
    (customer_id,) = stripe_fake.customers
    assert linked_customer(table_items(), ORG_A) == customer_id
    assert aws_faults.fired == {"GetSecretValue": 1}


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize(("fault", "code"), FAULTS.values(), ids=FAULTS.keys())
def test_portal(fault: Fault, code: str, aws_faults: AwsFaultInjector, stripe_fake: FakeStripe, table_items: Items) -> None:
    assert call_checkout({"plan": "pro"}).status == 200
    before = table_items()
    stripe_fake.reset_requests()
    aws_faults.fail(secrets_client(), "GetSecretValue", fault)
    assert_refused(call_portal(), code)
    assert table_items() == before
    assert stripe_fake.requests == []
    assert call_portal().status == 200
    assert aws_faults.fired == {"GetSecretValue": 1}


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize(("fault", "code"), FAULTS.values(), ids=FAULTS.keys())
def test_webhook(fault: Fault, code: str, aws_faults: AwsFaultInjector, stripe_fake: FakeStripe, table_items: Items) -> None:
    tenant = subscribe(stripe_fake, ORG_A)
    stripe_event = tenant.event("invoice.paid")
    before = table_items()
    stripe_fake.reset_requests()
    aws_faults.fail(secrets_client(), "GetSecretValue", fault)
    assert_refused(deliver(stripe_event), code)
    assert table_items() == before
    assert stripe_fake.requests == []
    assert deliver(stripe_event).outcome == "synced"
    assert aws_faults.fired == {"GetSecretValue": 1}


@pytest.mark.usefixtures("billing")
def test_status_never_reads_the_secret(aws_faults: AwsFaultInjector, stripe_fake: FakeStripe) -> None:
    aws_faults.fail(secrets_client(), "GetSecretValue", AwsError("ThrottlingException"), times=1)
    reply = call_status()
    assert (reply.status, reply.body["configured"]) == (200, True)
    assert aws_faults.fired == {}
    assert stripe_fake.requests == []

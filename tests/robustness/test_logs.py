"""Log hygiene on the noisiest paths: errors, retries, misconfiguration, rejected and broken webhook
deliveries, with every logger the functions use at DEBUG. No Stripe key, no webhook secret, no card
number and no raw webhook body may reach a log line. (Every other test of this package is scanned
the same way by the autouse `log_capture` fixture; these drive the paths on purpose, check that the
lines were really captured, and assert on the scan themselves.)"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator

import pytest

from tenant_billing.aws_clients import dynamodb_client
from tenant_billing.observability import logger
from tests.robustness.aws_faults import AwsError, AwsFaultInjector, transaction_canceled
from tests.robustness.strategies import PLANTED
from tests.robustness.support import (
    ORG_A,
    WEBHOOK_SECRET,
    MotoEnvironment,
    assert_queued_for_retry,
    call_cancel,
    call_change,
    call_checkout,
    call_invoices,
    call_portal,
    call_preview,
    call_resume,
    call_webhook,
    deliver,
    fresh_id,
    retry_queued,
    signed_event,
    use_new_secret,
)
from tests.stripe_fake import TEST_API_KEY, FakeStripe
from tests.support.flows import subscribe
from tests.support.logscan import LogCapture, scan, sensitive_texts
from tests.support.queue import drain, send_to_queue
from tests.support.webhook_events import delivery_body, function_url_event

pytestmark = pytest.mark.usefixtures("billing")


@pytest.fixture
def debug_logging(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """LogLevel=DEBUG, the noisiest setting the template offers: it sets POWERTOOLS_LOG_LEVEL, the
    level of the functions' own logger. (Libraries keep theirs: the Stripe SDK's and botocore's
    DEBUG output includes whole request and response bodies, and nothing in the stack turns it on.)"""
    previous = logger.log_level
    logger.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger=logger.name)
    yield
    logger.setLevel(previous)


def assert_clean(capture: LogCapture, *expected_lines: str) -> str:
    text = capture.text()
    for line in expected_lines:
        assert line in text, f"the path logging {line!r} was not driven (or not captured)"
    problems = scan(text, sensitive_texts())
    assert not problems, "; ".join(problems)
    return text


@pytest.mark.usefixtures("debug_logging")
def test_api_errors_retries_and_misconfiguration(
    log_capture: LogCapture,
    stripe_fake: FakeStripe,
    aws_faults: AwsFaultInjector,
    aws: MotoEnvironment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Bad bodies carrying a card number and keys in their values.
    for body in (
        {"plan": "pro", "siteQuantity": "4242 4242 4242 4242"},
        {"plan": "sk_live_0123456789abcdefghijklmn"},
        {"plan": "pro", "siteQuantity": 4242424242424242},
        f"not json {PLANTED[0]} {PLANTED[2]}",
    ):
        assert call_checkout(body).status == 400
    # Stripe retries then gives up; DynamoDB throttles; an unexpected error (a 500 with a traceback).
    stripe_fake.fail_next(3, status=500, path_prefix="/v1/customers")
    assert call_checkout({"plan": "pro"}).status == 502
    aws_faults.fail(dynamodb_client(), "Query", AwsError("ProvisionedThroughputExceededException"))
    assert call_checkout({"plan": "pro"}).status == 503
    aws_faults.fail(dynamodb_client(), "TransactWriteItems", transaction_canceled("ConditionalCheckFailed", "None"))
    assert call_checkout({"plan": "pro"}).status >= 500
    # A DynamoDB error nobody expects (not transient): the 500 path, with its traceback logged.
    aws_faults.fail(dynamodb_client(), "Query", AwsError("ValidationException"))
    assert call_checkout({"plan": "pro"}).status == 500
    assert call_checkout({"plan": "pro", "siteQuantity": 2}).status == 200
    stripe_fake.fail_next(1, status=500, path_prefix="/v1/billing_portal")
    assert call_portal().status == 200
    # Misconfiguration: a key Stripe rejects, a secret that is not JSON, a secret without a key.
    use_new_secret(
        aws, monkeypatch, json.dumps({"STRIPE_SECRET_KEY": "sk_test_rejected_key_0000", "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET})
    )
    assert call_portal().code == "billing_misconfigured"
    use_new_secret(aws, monkeypatch, "sk_live_not_json_0123456789")
    assert call_portal().code == "billing_misconfigured"
    use_new_secret(aws, monkeypatch, json.dumps({"STRIPE_WEBHOOK_SECRET": "whsec_only_0123456789"}))
    assert call_portal().code == "billing_not_configured"
    assert_clean(
        log_capture,
        "request refused",
        "Stripe is unavailable",
        "unhandled error",
        "Stripe rejected our credentials",
        "the Stripe secret is not a JSON object",
    )


@pytest.mark.usefixtures("debug_logging")
def test_webhook_rejections_failures_and_retries(
    log_capture: LogCapture,
    stripe_fake: FakeStripe,
    aws_faults: AwsFaultInjector,
    aws: MotoEnvironment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = subscribe(stripe_fake, ORG_A)
    stripe_event = tenant.event("invoice.paid")
    stripe_event["data"]["object"]["description"] = " ".join(PLANTED)
    raw = delivery_body(stripe_event)
    # Unverified: a wrong secret, a tampered body, no header.
    assert deliver(stripe_event, secrets=["whsec_wrong_0123456789"]).status == 400
    tampered = signed_event(stripe_event)
    tampered["body"] = tampered["body"].replace("invoice", "invoicf", 1)
    assert call_webhook(tampered).status == 400
    assert call_webhook(function_url_event(raw, {})).status == 400
    # Transient failures (the message returns to the queue), then the queue's retry, then a duplicate.
    stripe_fake.fail_next(3, status=500, path_prefix="/v1/subscriptions")
    assert_queued_for_retry(deliver(stripe_event))
    aws_faults.fail(dynamodb_client(), "TransactWriteItems", AwsError("ThrottlingException"))
    assert_queued_for_retry(retry_queued(stripe_event))
    assert retry_queued(stripe_event).outcome == "synced"
    assert deliver(stripe_event).outcome == "duplicate"
    # Not ours; ignored; broken.
    foreign = json.loads(json.dumps(stripe_event)) | {"id": fresh_id("evt_foreign_")}
    foreign["data"]["object"]["customer"] = "cus_not_ours"
    assert deliver(foreign).outcome == "not_ours"
    broken = {
        "id": fresh_id("evt_broken_"),
        "object": "event",
        "type": "invoice.paid",
        "data": {"object": {"customer": tenant.customer_id, "parent": PLANTED[0]}},
    }
    assert deliver(broken).status in {200, 400, 500}
    # Misconfiguration: no webhook secret at all.
    use_new_secret(aws, monkeypatch, json.dumps({"STRIPE_SECRET_KEY": TEST_API_KEY}))
    assert deliver(stripe_event).status == 503
    # A poison message on the queue (its body is logged nowhere either).
    send_to_queue(json.dumps({"object": "event", "description": " ".join(PLANTED)}))
    assert drain().only_outcome() == "failed"
    text = assert_clean(
        log_capture,
        "webhook rejected",
        "Stripe is unavailable",
        "event returned to the queue",
        "queued message is not a Stripe event",
        "no webhook secret configured",
    )
    assert stripe_event["id"] in text  # the event id is logged (it is how an operator finds the delivery)


@pytest.mark.usefixtures("debug_logging")
def test_subscription_and_invoice_errors_and_retries(
    log_capture: LogCapture, stripe_fake: FakeStripe, aws_faults: AwsFaultInjector
) -> None:
    """The subscription and invoice endpoints: card numbers and keys in query values, cursors and
    bodies; Stripe giving up on an update; DynamoDB throttling; a change, a cancellation and a list."""
    tenant = subscribe(stripe_fake, ORG_A)
    assert deliver(tenant.event("customer.subscription.created")).outcome == "synced"
    planted_cursor = base64.urlsafe_b64encode(json.dumps({"o": ORG_A, "a": PLANTED[0], "k": PLANTED[2]}).encode()).decode()
    for query in (
        {"plan": PLANTED[0], "siteQuantity": PLANTED[1]},
        {"plan": "pro", "siteQuantity": PLANTED[3]},
        {"plan": "enterprise", "siteQuantity": "4242424242424242"},
    ):
        assert call_preview(query).status == 400
    for query in ({"cursor": planted_cursor}, {"cursor": PLANTED[2]}, {"limit": PLANTED[0]}):
        assert call_invoices(query).status == 400
    for body in (
        {"plan": "enterprise", "prorationDate": 4242424242424242},
        {"plan": PLANTED[2], "siteQuantity": 4},
        {"plan": "pro", "subscription": PLANTED[0]},
    ):
        assert call_change(body).status == 400
    assert call_cancel({"immediately": PLANTED[0]}).status == 400
    stripe_fake.fail_next(3, status=500, path_prefix=f"/v1/subscriptions/{tenant.subscription_id}")
    assert call_cancel({}).status == 502
    aws_faults.fail(dynamodb_client(), "Query", AwsError("ThrottlingException"))
    assert call_invoices().status == 503
    assert call_change({"plan": "enterprise", "siteQuantity": 4}).status == 200
    assert call_cancel({}).status == 200
    assert call_resume().status == 200
    assert call_invoices({"limit": "1"}).status == 200
    assert_clean(log_capture, "request refused", "Stripe is unavailable", "subscription stored")


def test_unknown_field_names_are_not_logged_verbatim(log_capture: LogCapture) -> None:
    """The name of an unknown body field is the caller's text: a card number or a key sent as a
    field name must not be written to the logs (nor echoed back)."""
    for name in ("4242 4242 4242 4242", "sk_live_0123456789abcdef"):
        reply = call_checkout({"plan": "pro", name: 1})
        assert (reply.status, reply.code) == (400, "unknown_field")
    problems = scan(log_capture.text())
    assert not problems, "; ".join(problems)


def test_unknown_query_parameter_names_are_not_logged_verbatim(log_capture: LogCapture) -> None:
    """The same for the name of an unknown query parameter (GET /billing/subscription/preview and
    GET /billing/invoices refuse them): the caller's own text, so not logged (nor in a traceback)."""
    for name in ("4242 4242 4242 4242", "sk_live_0123456789abcdef"):
        for reply in (call_preview({"plan": "pro", name: "1"}), call_invoices({name: "1"})):
            assert (reply.status, reply.code) == (400, "unknown_field")
    problems = scan(log_capture.text())
    assert not problems, "; ".join(problems)


def test_the_capture_sees_every_log_line(log_capture: LogCapture, caplog: pytest.LogCaptureFixture) -> None:
    """The scan is only as good as the capture: Powertools' own JSON lines (with extra keys), other
    loggers through caplog, and stdout (EMF metrics) all arrive."""
    logger.info("robustness marker one", extra={"marker_key": "robustness-marker-two"})
    logging.getLogger("stripe").warning("robustness marker three")
    print("robustness marker four")
    text = log_capture.text()
    for marker in ("robustness marker one", "robustness-marker-two", "robustness marker three", "robustness marker four"):
        assert marker in text
    (line,) = [line for line in log_capture.powertools_lines() if line["message"] == "robustness marker one"]
    assert line["marker_key"] == "robustness-marker-two"


@pytest.mark.parametrize(
    ("text", "finding"),
    [
        (f"key {TEST_API_KEY}", "forbidden text"),
        ("Bearer sk_live_abc", "forbidden text"),
        ('{"secret": "whsec_abc"}', "forbidden text"),
        ("card 4242 4242 4242 4242 used", "card-number-like"),
        ("card 4000-0566-5566-5556", "card-number-like"),
        ("pan=4242424242424242;", "card-number-like"),
        ("amex 378282246310005", "card-number-like"),
        ('{"object": "event", "id": "evt_1"}', "raw Stripe event"),
        ("{'data': {'object': {'id': 'sub_1'}}}", "raw Stripe event"),
    ],
)
def test_the_scan_finds_what_it_looks_for(text: str, finding: str) -> None:
    problems = scan(text)
    assert problems and all(finding in problem for problem in problems), problems


@pytest.mark.parametrize(
    "text",
    [
        '{"_aws":{"Timestamp":1795270951571,"CloudWatchMetrics":[]}}',
        '"timestamp":"2026-11-21 14:23:03,934+0000"',
        '"function_request_id":"52fdfc07-2182-154f-163f-5f0f9a621d72"',
        "sub_1NqXYZ created 1773342118 period_end 1776020518",
        "phone 555 0100",
    ],
)
def test_the_scan_passes_ordinary_log_lines(text: str) -> None:
    assert scan(text) == []


def test_a_registered_body_is_found() -> None:
    body = json.dumps({"customer": "cus_registered_body", "amount_due": 2900}, indent=2)
    (problem,) = scan(f"log: {body}", [body])
    assert "delivered body" in problem
    assert scan("log: nothing", [body]) == []

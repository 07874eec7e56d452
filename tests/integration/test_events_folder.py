"""Every event in events/ (what `sam local invoke -e` takes) is accepted by its function's real
handler, with the outcome its name promises."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import billing_admin_handler
import checkout_handler
import entitlement_events_handler
import event_sync_handler
import invoices_handler
import portal_handler
import reconcile_handler
import status_handler
import stripe_webhook_handler
import subscription_handler
import sync_handler
from tests.conftest import FakeLambdaContext
from tests.stripe_fake import FakeStripe
from tests.support.api_events import EVENTS_DIR, load_event, response_json
from tests.support.flows import subscribe, webhook_status
from tests.support.queue import drain
from tests.support.template import handler_modules, load_template
from tests.support.webhook_events import function_url_event

pytestmark = pytest.mark.usefixtures("billing")

API_EVENTS = {
    "status.json": (status_handler, 200),
    "status_member.json": (status_handler, 200),
    "status_no_claims.json": (status_handler, 401),
    "checkout_member.json": (checkout_handler, 403),
    "portal.json": (portal_handler, 200),
    "subscription_preview.json": (subscription_handler, 200),
    "subscription_change.json": (subscription_handler, 200),
    "subscription_cancel.json": (subscription_handler, 200),
    "subscription_resume.json": (subscription_handler, 200),
    "invoices.json": (invoices_handler, 200),
    "sync_member.json": (sync_handler, 200),
}


def test_every_event_file_is_covered() -> None:
    covered = set(API_EVENTS) | {"checkout.json", "reconcile_schedule.json", "entitlement_stream.json"}
    covered |= {path.name for path in EVENTS_DIR.glob("webhook_*.json")}
    covered |= {path.name for path in EVENTS_DIR.glob("eventbridge_*.json")}
    assert {path.name for path in EVENTS_DIR.glob("*.json")} == covered


def test_the_checkout_event_subscribes(stripe_fake: FakeStripe) -> None:
    response = checkout_handler.lambda_handler(load_event("checkout.json"), FakeLambdaContext())
    assert response["statusCode"] == 200
    assert response_json(response)["url"].startswith("https://checkout.stripe.com/")


@pytest.mark.parametrize("name", sorted(API_EVENTS))
def test_api_events(stripe_fake: FakeStripe, name: str) -> None:
    subscribe(stripe_fake, org_id="org_demo", plan="pro", sites=3, deliver_with=webhook_status)
    if name == "subscription_resume.json":
        subscription_handler.lambda_handler(load_event("subscription_cancel.json"), FakeLambdaContext())
    module, status = API_EVENTS[name]
    response: dict[str, Any] = module.lambda_handler(load_event(name), FakeLambdaContext())
    assert response["statusCode"] == status, response["body"]


@pytest.mark.parametrize("name", sorted(path.name for path in EVENTS_DIR.glob("webhook_*.json")))
def test_stored_webhook_events_are_genuine_but_expired(name: str) -> None:
    # Signed with the local development secret long ago: verified, then refused as stale.
    response = stripe_webhook_handler.lambda_handler(load_event(name), FakeLambdaContext())
    assert (response["statusCode"], response_json(response)["error"]["code"]) in {
        (400, "timestamp_out_of_tolerance"),
        (400, "invalid_signature"),  # this suite's secret differs from the local one
    }


def test_a_resigned_stored_event_is_accepted(stripe_fake: FakeStripe) -> None:
    import subprocess
    import sys

    from tests.support.flows import WEBHOOK_SECRET

    resigned = subprocess.run(
        [
            sys.executable,
            str(EVENTS_DIR / "resign_webhook_event.py"),
            str(EVENTS_DIR / "webhook_invoice_paid.json"),
            WEBHOOK_SECRET,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    event = json.loads(resigned)
    response = stripe_webhook_handler.lambda_handler(event, FakeLambdaContext())
    assert (response["statusCode"], response_json(response)["outcome"]) == (200, "queued")
    # The stored event's customer is not one of this test's: verified, then ignored as not ours.
    assert drain().outcome_of(json.loads(event["body"])["id"]) == "not_ours"
    assert function_url_event(b"{}", {})["requestContext"]["http"]["method"] == "POST"


def test_the_schedule_event_runs_a_reconciliation(stripe_fake: FakeStripe) -> None:
    subscribe(stripe_fake, org_id="org_demo")  # paid in Stripe, never delivered: reconciliation repairs it
    # The function's 900 s timeout, not the API functions' few seconds.
    result = reconcile_handler.lambda_handler(load_event("reconcile_schedule.json"), FakeLambdaContext(remaining_ms=900_000))
    assert result["outcome"] == "completed" and result["repaired"] == 1


def test_the_stream_event_publishes_one_entitlement_change(monkeypatch: pytest.MonkeyPatch) -> None:
    from tenant_billing.aws_clients import events_client

    published: list[dict[str, Any]] = []
    client: Any = events_client()  # typed by a small protocol without botocore's `meta`

    def record(params: dict[str, Any], **kwargs: Any) -> None:
        published.extend(params.get("Entries", []))

    client.meta.events.register("before-parameter-build.events.PutEvents", record)
    context = FakeLambdaContext(remaining_ms=60_000)  # the function's timeout in the template
    result = entitlement_events_handler.lambda_handler(load_event("entitlement_stream.json"), context)
    assert result == {"batchItemFailures": []}
    (entry,) = published
    assert entry["DetailType"] == "EntitlementsChanged"
    assert '"newPlan": "pro"' in entry["Detail"] or '"newPlan":"pro"' in entry["Detail"]


def test_function_handlers_in_the_template_match_these_modules() -> None:
    handlers = set(handler_modules())
    modules = {m.__name__ for m in (status_handler, checkout_handler, portal_handler, subscription_handler, invoices_handler,
                                    stripe_webhook_handler, reconcile_handler, entitlement_events_handler,
                                    sync_handler, event_sync_handler, billing_admin_handler)}  # fmt: skip
    assert handlers == modules


@pytest.mark.parametrize("name", sorted(path.name for path in EVENTS_DIR.glob("eventbridge_*.json")))
def test_stored_eventbridge_events_are_stripes_envelope_on_the_queue(name: str) -> None:
    """Each is the SQS event Lambda builds from the message StripeEventsRule puts on the queue: its
    body the EventBridge event Stripe's destination emits (docs.stripe.com/event-destinations/eventbridge),
    `detail` the whole snapshot event, the rule's pattern matching it."""
    from tenant_billing.webhook_logic import HANDLED_EVENTS

    (record,) = load_event(name)["Records"]
    assert record["eventSource"] == "aws:sqs" and record["attributes"]["ApproximateReceiveCount"] == "1"
    envelope = json.loads(record["body"])
    source = envelope["source"]
    assert re.fullmatch(load_template()["Parameters"]["StripeEventSourceName"]["AllowedPattern"], source)
    assert source.startswith("aws.partner/stripe.com/ed_")
    assert envelope["resources"] == [f"arn:aws:events:{envelope['region']}::event-source/{source}"]
    detail = envelope["detail"]
    assert envelope["detail-type"] == detail["type"] in HANDLED_EVENTS
    assert detail["object"] == "event" and detail["id"].startswith("evt_") and detail["api_version"]
    assert detail["data"]["object"]["object"] == "subscription"

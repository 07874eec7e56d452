"""Write events/webhook_*.json: Lambda Function URL events carrying Stripe deliveries in the
current API shape, produced by the Stripe fake's own lifecycle, signed with the local
development secret at a fixed time (re-sign with events/resign_webhook_event.py to use them);
and events/eventbridge_*.json: SQS events whose message is the EventBridge event Stripe's Amazon
EventBridge destination emits for one of them (as StripeEventsRule puts it on the queue).

    PYTHONPATH=layers/common:. .venv/bin/python -m tests.support.generate_webhook_events
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from functions.local_stack.eventbridge_delivery import eventbridge_event
from tests.stripe_fake import FakeStripe, make_stripe_client
from tests.support.stripe_signature import signature_header
from tests.support.template import REPO_ROOT

LOCAL_WEBHOOK_SECRET = "whsec_local_development_only"
SIGNED_AT = 1773342238
FUNCTION_URL_EVENT: dict[str, Any] = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": "/",
    "rawQueryString": "",
    "headers": {
        "content-type": "application/json; charset=utf-8",
        "host": "abcdefghijklmnopqrstuvwxyz123456.lambda-url.us-east-1.on.aws",
        "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "x-forwarded-proto": "https",
        "stripe-signature": "",
    },
    "requestContext": {
        "accountId": "anonymous",
        "apiId": "abcdefghijklmnopqrstuvwxyz123456",
        "domainName": "abcdefghijklmnopqrstuvwxyz123456.lambda-url.us-east-1.on.aws",
        "domainPrefix": "abcdefghijklmnopqrstuvwxyz123456",
        "http": {
            "method": "POST",
            "path": "/",
            "protocol": "HTTP/1.1",
            "sourceIp": "3.18.12.63",
            "userAgent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        },
        "requestId": "8d4e3a2b-5c6f-4e7d-9a1b-2c3d4e5f6a7b",
        "routeKey": "$default",
        "stage": "$default",
        "time": "12/Mar/2026:19:03:58 +0000",
        "timeEpoch": SIGNED_AT * 1000,
    },
    "body": "",
    "isBase64Encoded": False,
}


def function_url_event(stripe_event: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps(stripe_event, indent=2).encode()
    event = copy.deepcopy(FUNCTION_URL_EVENT)
    event["body"] = raw.decode()
    event["headers"]["stripe-signature"] = signature_header([LOCAL_WEBHOOK_SECRET], SIGNED_AT, raw)
    return event


# A sandbox event destination's partner event source, in the account and region of the examples.
EXAMPLE_EVENT_SOURCE = "aws.partner/stripe.com/ed_test_61RvBmSQ2xExampleDest16RvBmAbCdEfGhIjKlMnOpQr"
EXAMPLE_ACCOUNT = "123456789012"
EXAMPLE_QUEUE_ARN = f"arn:aws:sqs:us-east-1:{EXAMPLE_ACCOUNT}:billing-StripeEventsQueue-1A2B3C4D5E6F"


def sqs_eventbridge_event(stripe_event: dict[str, Any]) -> dict[str, Any]:
    """The SQS event Lambda builds from the message StripeEventsRule puts on the queue."""
    envelope = eventbridge_event(
        stripe_event,
        source=EXAMPLE_EVENT_SOURCE,
        account=EXAMPLE_ACCOUNT,
        region="us-east-1",
        event_id="5d3e8f2a-7b1c-4e9d-a6f0-3c2b1a098e7d",
        time=datetime.fromtimestamp(SIGNED_AT, UTC),
    )
    body = json.dumps(envelope)
    sent = str(SIGNED_AT * 1000)
    record = {
        "messageId": "2e1424d4-f796-459a-8184-9c92662be6da",
        "receiptHandle": "AQEBzWwaftRI0KuVm4tP+/7q1rGgNqicHq...",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": sent,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": sent,
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": EXAMPLE_QUEUE_ARN,
        "awsRegion": "us-east-1",
    }
    return {"Records": [record]}


def main() -> None:
    fake = FakeStripe(clock=lambda: float(SIGNED_AT - 120))
    fake.add_price("price_pro_base", product_name="Pro", unit_amount=7900)
    fake.add_price("price_pro_site", product_name="Pro extra site", unit_amount=1900)
    client = make_stripe_client(fake)
    customer = client.v1.customers.create(params={"metadata": {"organization_id": "org_demo"}})
    metadata = {"organization_id": "org_demo", "plan": "pro"}
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "client_reference_id": "org_demo",
            "line_items": [{"price": "price_pro_base", "quantity": 1}, {"price": "price_pro_site", "quantity": 3}],
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
            "success_url": "http://localhost:3000/app/settings?billing=success",
            "cancel_url": "http://localhost:3000/app/billing?billing=canceled",
        }
    )
    events = fake.complete_checkout(session.id)
    subscription_id = fake.checkout_sessions[session.id]["subscription"]
    events += fake.fail_payment(subscription_id)
    events += fake.cancel_subscription(subscription_id)
    wanted = {
        "checkout.session.completed": "webhook_checkout_completed.json",
        "customer.subscription.created": "webhook_subscription_created.json",
        "invoice.paid": "webhook_invoice_paid.json",
        "invoice.payment_failed": "webhook_invoice_payment_failed.json",
        "customer.subscription.deleted": "webhook_subscription_deleted.json",
    }
    via_eventbridge = {"customer.subscription.updated": "eventbridge_subscription_updated.json"}
    for stripe_event in events:
        if name := wanted.pop(stripe_event["type"], None):
            (REPO_ROOT / "events" / name).write_text(json.dumps(function_url_event(stripe_event), indent=2) + "\n")
        if name := via_eventbridge.pop(stripe_event["type"], None):
            (REPO_ROOT / "events" / name).write_text(json.dumps(sqs_eventbridge_event(stripe_event), indent=2) + "\n")
    assert not wanted and not via_eventbridge, f"the fake emitted no {sorted(wanted | via_eventbridge)}"


if __name__ == "__main__":
    main()

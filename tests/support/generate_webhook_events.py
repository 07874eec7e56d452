"""Write events/webhook_*.json: Lambda Function URL events carrying Stripe deliveries in the
current API shape, produced by the Stripe fake's own lifecycle, signed with the local
development secret at a fixed time (re-sign with events/resign_webhook_event.py to use them).

    PYTHONPATH=layers/common:. .venv/bin/python -m tests.support.generate_webhook_events
"""

from __future__ import annotations

import copy
import json
from typing import Any

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
    for stripe_event in events:
        name = wanted.pop(stripe_event["type"], None)
        if name:
            (REPO_ROOT / "events" / name).write_text(json.dumps(function_url_event(stripe_event), indent=2) + "\n")
    assert not wanted, f"the fake emitted no {sorted(wanted)}"


if __name__ == "__main__":
    main()

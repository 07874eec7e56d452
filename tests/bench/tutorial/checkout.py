"""POST /billing/checkout as the AWS and Stripe tutorials write it: the organization's customer
from the table (created in Stripe the first time), no second subscription, the previous open
Checkout Session expired, a new one created and recorded."""

import json
import os
from typing import Any

import boto3
import stripe
from boto3.dynamodb.conditions import Key

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])

secret = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["STRIPE_SECRET_ARN"])["SecretString"])
stripe.api_key = secret["STRIPE_SECRET_KEY"]
if os.environ.get("STRIPE_API_BASE"):
    stripe.api_base = os.environ["STRIPE_API_BASE"]

# {"pro_base": "price_...", "pro_site": "price_...", ...}: each plan's base price and per-site add-on.
PRICES = json.loads(os.environ["STRIPE_PRICES"])
APP_BASE_URL = os.environ["APP_BASE_URL"]
ADMIN_ROLES = ("owner", "admin")
LIVE_STATUSES = ("active", "trialing", "past_due", "unpaid", "incomplete", "paused")


def respond(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def get_customer_id(org_id: str, items: dict[str, Any]) -> str:
    customer = items.get("CUSTOMER")
    if customer and customer.get("customer_id"):
        return str(customer["customer_id"])
    created = stripe.Customer.create(metadata={"organization_id": org_id}, idempotency_key=f"customer-{org_id}")
    table.put_item(Item={"pk": f"ORG#{org_id}", "sk": "CUSTOMER", "customer_id": created.id})
    table.put_item(Item={"pk": f"CUSTOMER#{created.id}", "sk": "ORG", "org_id": org_id})
    return created.id


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    org_id = claims.get("org_id")
    if not org_id or claims.get("org_role") not in ADMIN_ROLES:
        return respond(403, {"message": "Forbidden"})
    try:
        body = json.loads(event.get("body") or "{}")
        plan = str(body["plan"])
        site_quantity = int(body.get("siteQuantity", 0))
    except (ValueError, KeyError, TypeError):
        return respond(400, {"message": 'expected {"plan": ..., "siteQuantity": ...}'})
    if f"{plan}_base" not in PRICES or site_quantity < 0 or (site_quantity and f"{plan}_site" not in PRICES):
        return respond(400, {"message": "unknown plan or site quantity"})

    result = table.query(KeyConditionExpression=Key("pk").eq(f"ORG#{org_id}"), ConsistentRead=True)
    items: dict[Any, Any] = {item["sk"]: item for item in result["Items"]}
    try:
        customer_id = get_customer_id(org_id, items)
        subscriptions = stripe.Subscription.list(customer=customer_id, status="all", limit=100)
        if any(subscription.status in LIVE_STATUSES for subscription in subscriptions.data):
            return respond(409, {"message": "already subscribed"})
        # Only one session may be paid: expire the one handed out before.
        for previous in stripe.checkout.Session.list(customer=customer_id, status="open", limit=100).data:
            stripe.checkout.Session.expire(previous.id)

        line_items: list[Any] = [{"price": PRICES[f"{plan}_base"], "quantity": 1}]
        if site_quantity:
            line_items.append({"price": PRICES[f"{plan}_site"], "quantity": site_quantity})
        metadata = {"organization_id": org_id, "plan": plan}
        session = stripe.checkout.Session.create(
            mode="subscription",
            customer=customer_id,
            client_reference_id=org_id,
            line_items=line_items,
            metadata=metadata,
            subscription_data={"metadata": metadata},
            success_url=f"{APP_BASE_URL}/app/settings?billing=success",
            cancel_url=f"{APP_BASE_URL}/app/billing?billing=canceled",
        )
    except stripe.StripeError as error:
        print(f"Stripe error: {error}")
        return respond(502, {"message": "payment provider error"})

    table.put_item(Item={"pk": f"ORG#{org_id}", "sk": "CHECKOUT", "session_id": session.id})
    return respond(200, {"url": session.url})

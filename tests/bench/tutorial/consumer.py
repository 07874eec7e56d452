"""The events queue's consumer as the AWS and Stripe tutorials write it: for each SQS record, skip
an event already processed, read the customer's subscriptions from Stripe (never trust the
payload), and store the subscription, the entitlements it gives and the event's marker in one
transaction, unless a later read was stored meanwhile."""

import json
import logging
import os
import time
from typing import Any

import boto3
import stripe

TABLE_NAME = os.environ["TABLE_NAME"]
dynamodb = boto3.resource("dynamodb")

secret = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["STRIPE_SECRET_ARN"])["SecretString"])
stripe.api_key = secret["STRIPE_SECRET_KEY"]
if os.environ.get("STRIPE_API_BASE"):
    stripe.api_base = os.environ["STRIPE_API_BASE"]

# {"pro_base": "price_...", "pro_site": "price_...", ...}, read back: price id -> (plan, base or site).
PRICE_NAMES = {price: name.rsplit("_", 1) for name, price in json.loads(os.environ["STRIPE_PRICES"]).items()}
PLANS: dict[str, dict[str, Any]] = {
    "starter": {
        "features": ["page_builder", "media_library", "seo_toolkit"],
        "limits": {"sites": 1, "pages_per_site": 25, "storage_gb": 2},
    },
    "pro": {
        "features": ["page_builder", "media_library", "seo_toolkit", "analytics", "form_builder", "blog_engine"],
        "limits": {"sites": 2, "pages_per_site": 100, "storage_gb": 10},
    },
    "enterprise": {
        "features": [
            "page_builder",
            "media_library",
            "seo_toolkit",
            "analytics",
            "form_builder",
            "blog_engine",
            "api_gateway",
            "crm",
            "notifications",
            "scheduling",
        ],
        "limits": {"sites": 5, "pages_per_site": 1000, "storage_gb": 100},
    },
}
EVENT_TTL_SECONDS = 30 * 24 * 3600

logger = logging.getLogger()


def process(stripe_event: dict[str, Any]) -> None:
    customer_id = stripe_event["data"]["object"].get("customer")
    if not customer_id:
        return
    event_key = {"pk": f"EVENT#{stripe_event['id']}", "sk": "EVENT"}
    found = dynamodb.batch_get_item(
        RequestItems={TABLE_NAME: {"Keys": [event_key, {"pk": f"CUSTOMER#{customer_id}", "sk": "ORG"}], "ConsistentRead": True}}
    )["Responses"][TABLE_NAME]
    if any(item["sk"] == "EVENT" for item in found):
        return  # processed already (Stripe and SQS may deliver an event more than once)
    org_id = next((str(item["org_id"]) for item in found if item["sk"] == "ORG"), None)
    if org_id is None:
        return  # not one of our customers

    read_at_ns = time.time_ns()
    subscriptions = stripe.Subscription.list(customer=customer_id, status="all", limit=100).data
    if not subscriptions:
        return
    subscription = max(subscriptions, key=lambda s: s.created)
    plan, site_quantity, period_end = "starter", 0, None
    for item in subscription["items"]["data"]:
        plan_id, kind = PRICE_NAMES.get(item["price"]["id"], ("starter", "base"))
        if kind == "site":
            site_quantity = item["quantity"]
        else:
            plan, period_end = plan_id, item["current_period_end"]
    limits = dict(PLANS[plan]["limits"])
    limits["sites"] += site_quantity

    now = int(time.time())
    org_key = f"ORG#{org_id}"
    try:
        dynamodb.meta.client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": TABLE_NAME,
                        "Item": {
                            "pk": org_key,
                            "sk": "SUBSCRIPTION",
                            "subscription_id": subscription.id,
                            "customer_id": customer_id,
                            "status": subscription.status,
                            "plan": plan,
                            "site_quantity": site_quantity,
                            "current_period_end": period_end,
                            "cancel_at_period_end": bool(subscription.cancel_at_period_end),
                            "sub_created": subscription.created,
                            "read_at_ns": read_at_ns,
                            "prices_known": True,
                            "other_live_ids": [],
                        },
                        # Stripe's events arrive out of order: only a later read replaces the stored one.
                        "ConditionExpression": "attribute_not_exists(pk) OR read_at_ns < :read",
                        "ExpressionAttributeValues": {":read": read_at_ns},
                    }
                },
                {
                    "Put": {
                        "TableName": TABLE_NAME,
                        "Item": {
                            "pk": org_key,
                            "sk": "ENTITLEMENT",
                            "plan": plan,
                            "status": subscription.status,
                            "features": PLANS[plan]["features"],
                            "limits": limits,
                            "updated_at": now,
                        },
                    }
                },
                {
                    "Put": {
                        "TableName": TABLE_NAME,
                        "Item": {
                            **event_key,
                            "event_type": stripe_event["type"],
                            "processed_at": now,
                            "expires_at": now + EVENT_TTL_SECONDS,
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    except dynamodb.meta.client.exceptions.TransactionCanceledException:
        logger.info("a later read was stored first: nothing to do")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = []
    for record in event["Records"]:
        try:
            process(json.loads(record["body"]))
        except Exception:
            logger.exception("event %s failed", record["messageId"])
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}

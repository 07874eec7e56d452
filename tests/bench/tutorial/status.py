"""GET /billing/status as the AWS tutorial writes it: the organization's items in one Query."""

import json
import os
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def to_json(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal."""
    if isinstance(value, Decimal):
        return int(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def respond(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body, default=to_json)}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    org_id = claims.get("org_id")
    if not org_id:
        return respond(403, {"message": "Forbidden"})

    result = table.query(KeyConditionExpression=Key("pk").eq(f"ORG#{org_id}"), ConsistentRead=True)
    items = {item["sk"]: item for item in result["Items"]}

    entitlement = items.get("ENTITLEMENT") or {"plan": "starter", "features": [], "limits": {}}
    subscription = items.get("SUBSCRIPTION")
    body: dict[str, Any] = {
        "plan": entitlement["plan"],
        "features": entitlement["features"],
        "limits": entitlement["limits"],
        "subscription": None,
    }
    if subscription:
        body["subscription"] = {
            "id": subscription["subscription_id"],
            "status": subscription["status"],
            "siteQuantity": subscription.get("site_quantity", 0),
            "currentPeriodEnd": subscription.get("current_period_end"),
            "cancelAtPeriodEnd": subscription.get("cancel_at_period_end", False),
        }
    return respond(200, body)

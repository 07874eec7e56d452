"""POST /billing/portal as the AWS and Stripe tutorials write it: the organization's customer from
the table, then a Customer Portal session."""

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

RETURN_URL = os.environ["APP_BASE_URL"] + "/app/billing"
ADMIN_ROLES = ("owner", "admin")


def respond(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    org_id = claims.get("org_id")
    if not org_id or claims.get("org_role") not in ADMIN_ROLES:
        return respond(403, {"message": "Forbidden"})

    result = table.query(KeyConditionExpression=Key("pk").eq(f"ORG#{org_id}"), ConsistentRead=True)
    customer = next((item for item in result["Items"] if item["sk"] == "CUSTOMER"), None)
    if not customer or not customer.get("customer_id"):
        return respond(409, {"message": "subscribe first"})

    try:
        session = stripe.billing_portal.Session.create(customer=str(customer["customer_id"]), return_url=RETURN_URL)
    except stripe.StripeError as error:
        print(f"Stripe error: {error}")
        return respond(502, {"message": "payment provider error"})
    return respond(200, {"url": session.url})

"""The Stripe webhook as the Stripe and AWS tutorials write it: `stripe.Webhook.construct_event`
checks the signature, then the event goes on the events queue for the consumer."""

import base64
import json
import os
from typing import Any

import boto3
import stripe

sqs = boto3.client("sqs")
QUEUE_URL = os.environ["EVENTS_QUEUE_URL"]

secret = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["STRIPE_SECRET_ARN"])["SecretString"])
WEBHOOK_SECRET = secret["STRIPE_WEBHOOK_SECRET"]


def respond(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    payload = event.get("body") or ""
    if event.get("isBase64Encoded"):
        payload = base64.b64decode(payload).decode()
    signature = (event.get("headers") or {}).get("stripe-signature", "")
    try:
        stripe_event = stripe.Webhook.construct_event(payload, signature, WEBHOOK_SECRET)
    except ValueError:
        return respond(400, {"message": "invalid payload"})
    except stripe.SignatureVerificationError:
        return respond(400, {"message": "invalid signature"})

    sqs.send_message(
        QueueUrl=QUEUE_URL,
        MessageBody=payload,
        MessageAttributes={
            "event_id": {"DataType": "String", "StringValue": stripe_event.id},
            "event_type": {"DataType": "String", "StringValue": stripe_event.type},
        },
    )
    return respond(200, {"received": True})

#!/usr/bin/env python3
"""Re-sign a stored webhook event with the current time, so `sam local invoke -e` accepts it
(a Stripe signature is only valid for 5 minutes).

    python3 events/resign_webhook_event.py events/webhook_invoice_paid.json whsec_... > /tmp/signed.json
    sam local invoke StripeWebhookFunction -e /tmp/signed.json

Takes a Lambda Function URL event, signs its exact body (decoded if base64) with the given secret
(several, comma-separated, give one v1 each, as Stripe does while a secret is rolled), and
prints the event with a fresh Stripe-Signature header. Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import time


def resign(event: dict, secrets: list[str], timestamp: int) -> dict:
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    signed = f"{timestamp}.".encode() + raw
    signatures = [hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest() for secret in secrets]
    headers = {key: value for key, value in (event.get("headers") or {}).items() if key.lower() != "stripe-signature"}
    headers["stripe-signature"] = ",".join([f"t={timestamp}", *(f"v1={signature}" for signature in signatures)])
    return {**event, "headers": headers}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as file:
        event = json.load(file)
    secrets = [secret.strip() for secret in argv[2].split(",") if secret.strip()]
    json.dump(resign(event, secrets, int(time.time())), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

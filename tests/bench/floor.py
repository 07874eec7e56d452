"""The floor: the same AWS and Stripe calls a function makes per request, made directly with no
handler around them and nothing of ours (no tenant_billing import, so neither pydantic nor
Powertools): a botocore session, `create_client` with the Config tenant_billing/aws_clients.py
gives each client (the values copied here), and for the Stripe functions a `stripe.StripeClient`
built as tenant_billing/stripe_adapter.py builds it, from the key in the Secrets Manager secret
(read once through botocore, on the first call: the functions read it on their first request too).

Its cold start (tests.bench.probe's floor mode, on the same shipped layout as the functions) is the
least any handler making these calls with these SDKs pays: the target the functions' cold starts
are held to. Its warm calls are the floor of the functions' warm latency. Everything a function
does beyond them (routing, validation, parsing, signature checks, logging, metrics, tracing, the
entitlement derivation) is the handler's overhead over this floor.

The Stripe parameters of Checkout and portal sessions are the ones the handler sends (recorded by
the Stripe fake), so the floor's requests are the same bytes; the consumer's items follow the table
layout (tenant_billing/items.py: the few key strings are written inline).

The benchmark lays this file out as a top-level module `floor` (tests.bench.shipped), compiled like
the shipped code; it imports only the SDKs and the standard library.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from typing import Any

from botocore.config import Config
from botocore.session import get_session

FUNCTIONS = ("status", "checkout", "portal", "ingest", "consumer")
STRIPE_FUNCTIONS = ("checkout", "portal", "consumer")
# tenant_billing/stripe_adapter.py's pinned API version.
STRIPE_API_VERSION = "2026-10-28.endive"
EVENT_MARKER_TTL_SECONDS = 30 * 24 * 3600
# What an entitlement item holds (the pro plan's features and limits): the same size as the handler's.
ENTITLEMENT_FEATURES = ("page_builder", "media_library", "seo_toolkit", "analytics", "form_builder", "blog_engine")
ENTITLEMENT_LIMITS = {"sites": 5, "pages_per_site": 100, "storage_gb": 10}
# The consumer's guard: the organization's stored subscription is only replaced by a later read (README).
SUBSCRIPTION_GUARD = "attribute_not_exists(pk) OR read_at_ns < :read"
# tenant_billing/aws_clients.py's client settings, service by service.
CLIENT_CONFIGS: dict[str, dict[str, Any]] = {
    "dynamodb": {"connect_timeout": 2, "read_timeout": 5, "retries": {"mode": "standard", "max_attempts": 3}},
    "sqs": {"connect_timeout": 1, "read_timeout": 2, "retries": {"mode": "standard", "max_attempts": 2}},
    "secretsmanager": {"connect_timeout": 2, "read_timeout": 3, "retries": {"mode": "standard", "max_attempts": 3}},
}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


class FloorTarget:
    """setup: {"org_id": ..., "stripe_params": {...}} for the API functions (the parameters the
    handler sends to Stripe; checkout also "previous_session": an open session of the customer for
    its first call to expire, as the handler expires the one it recorded); {"targets":
    [{"org_id", "customer_id", "subscription_id", "plan", "site_quantity"}, ...]} for the consumer.
    Items of the consumer's commands are such targets with a new "event_id" each, or
    {"duplicate_event_id", "customer_id"} for an event that already took effect (the duplicate path:
    the lookup alone); the ingest's are {"body", "event_id", "event_type"}."""

    def __init__(self, function: str, setup: dict[str, Any]) -> None:
        if function not in FUNCTIONS:
            raise ValueError(f"unknown function {function!r}")
        self.function = function
        self.table = os.environ["TABLE_NAME"]
        self.org_id: str = setup.get("org_id", "")
        self.stripe_params: dict[str, Any] = setup.get("stripe_params") or {}
        self.targets: list[dict[str, Any]] = setup.get("targets") or []
        self._open_session: str = setup.get("previous_session") or ""
        self._event_numbers = itertools.count()
        self._session = get_session()
        # Created on first use, as the functions create theirs; (service, client) for the call counter.
        self.aws_clients: list[tuple[str, Any]] = []
        self._clients: dict[str, Any] = {}
        self._stripe: Any = None
        self.queue_url = os.environ.get("EVENTS_QUEUE_URL", "")

    def client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            client = self._clients[service] = self._session.create_client(service, config=Config(**CLIENT_CONFIGS[service]))
            self.aws_clients.append((service, client))
        return client

    @property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")

    def _secret(self) -> dict[str, str]:
        value = self.client("secretsmanager").get_secret_value(SecretId=os.environ["STRIPE_SECRET_ARN"])
        secret: dict[str, str] = json.loads(value["SecretString"])
        return secret

    @property
    def stripe(self) -> Any:
        """The StripeClient, built once (its key read from the secret) as the functions build it."""
        if self._stripe is None:
            import stripe

            api_base = os.environ.get("STRIPE_API_BASE", "")
            self._stripe = stripe.StripeClient(
                self._secret()["STRIPE_SECRET_KEY"],
                stripe_version=STRIPE_API_VERSION,
                base_addresses={"api": api_base} if api_base else None,
                max_network_retries=int(os.environ.get("STRIPE_MAX_NETWORK_RETRIES", "2")),
                http_client=stripe.RequestsClient(timeout=(2.0, float(os.environ.get("STRIPE_TIMEOUT_SECONDS", "8")))),
            )
        return self._stripe

    def first_item(self) -> Any:
        if self.function == "ingest":
            return {"body": "{}", "event_id": "evt_floor_first", "event_type": "invoice.paid"}
        return self.targets[0] if self.targets else None

    def _ingest(self, item: dict[str, Any]) -> str:
        """The webhook's one call: the event, as received, on the queue (its id and type as
        attributes); on the first call the signing secret is read, as the webhook reads it."""
        if "secretsmanager" not in self._clients:
            self._secret()
        attributes = {
            "event_id": {"DataType": "String", "StringValue": item["event_id"]},
            "event_type": {"DataType": "String", "StringValue": item["event_type"]},
        }
        self.client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=item["body"], MessageAttributes=attributes)
        return "queued"

    def _query_org(self) -> Any:
        return self.dynamodb.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _s(f"ORG#{self.org_id}")},
            ConsistentRead=True,
        )

    def _lookup(self, event_id: str, customer_id: str) -> Any:
        keys: list[dict[str, Any]] = [
            {"pk": _s(f"EVENT#{event_id}"), "sk": _s("EVENT")},
            {"pk": _s(f"CUSTOMER#{customer_id}"), "sk": _s("ORG")},
        ]
        return self.dynamodb.batch_get_item(RequestItems={self.table: {"Keys": keys, "ConsistentRead": True}})

    def _consumer(self, item: dict[str, Any]) -> str:
        if "duplicate_event_id" in item:
            self._lookup(item["duplicate_event_id"], item["customer_id"])
            return "duplicate"
        stripe = self.stripe
        event_id = item.get("event_id") or f"evt_floor{os.getpid()}x{next(self._event_numbers)}"
        self._lookup(event_id, item["customer_id"])
        read_at_ns = time.time_ns()
        listed = stripe.v1.subscriptions.list(params={"customer": item["customer_id"], "status": "all", "limit": 100})
        subscription = next(s for s in listed.data if s.id == item["subscription_id"])
        now = int(time.time())
        org = _s(f"ORG#{item['org_id']}")
        stored: dict[str, Any] = {
            "pk": org,
            "sk": _s("SUBSCRIPTION"),
            "subscription_id": _s(subscription.id),
            "customer_id": _s(item["customer_id"]),
            "status": _s(subscription.status),
            "plan": _s(item["plan"]),
            "site_quantity": _n(item["site_quantity"]),
            "current_period_end": _n(now + 30 * 24 * 3600),
            "cancel_at_period_end": {"BOOL": bool(subscription.cancel_at_period_end)},
            "sub_created": _n(subscription.created),
            "read_at_ns": _n(read_at_ns),
            "prices_known": {"BOOL": True},
            "other_live_ids": {"L": []},
        }
        entitlement: dict[str, Any] = {
            "pk": org,
            "sk": _s("ENTITLEMENT"),
            "plan": _s(item["plan"]),
            "status": _s(subscription.status),
            "features": {"L": [_s(feature) for feature in ENTITLEMENT_FEATURES]},
            "limits": {"M": {name: _n(value) for name, value in ENTITLEMENT_LIMITS.items()}},
            "updated_at": _n(now),
        }
        marker: dict[str, Any] = {
            "pk": _s(f"EVENT#{event_id}"),
            "sk": _s("EVENT"),
            "event_type": _s("customer.subscription.updated"),
            "processed_at": _n(now),
            "expires_at": _n(now + EVENT_MARKER_TTL_SECONDS),
        }
        try:
            self.dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": stored,
                            "ConditionExpression": SUBSCRIPTION_GUARD,
                            "ExpressionAttributeValues": {":read": _n(read_at_ns)},
                        }
                    },
                    {"Put": {"TableName": self.table, "Item": entitlement}},
                    {"Put": {"TableName": self.table, "Item": marker, "ConditionExpression": "attribute_not_exists(pk)"}},
                ]
            )
        except self.dynamodb.exceptions.TransactionCanceledException:
            # A concurrent call stored a later read first (the handler's "superseded").
            return "superseded"
        return "synced"

    def _checkout(self) -> None:
        """Look for a subscription, expire the previous open session, create one and record it."""
        stripe = self.stripe
        self._query_org()
        customer = self.stripe_params["customer"]
        stripe.v1.checkout.sessions.list(params={"customer": customer, "status": "open", "limit": 100})
        if self._open_session:
            stripe.v1.checkout.sessions.expire(self._open_session)
        stripe.v1.subscriptions.list(params={"customer": customer, "status": "all", "limit": 100})
        session = stripe.v1.checkout.sessions.create(params=self.stripe_params)
        self._open_session = session.id
        self.dynamodb.put_item(
            TableName=self.table,
            # Its own item: the handler, interleaved with the floor, expires only the sessions it recorded.
            Item={"pk": _s(f"ORG#{self.org_id}_floor"), "sk": _s("CHECKOUT"), "session_id": _s(session.id)},
        )

    def call(self, item: Any) -> Any:
        if self.function == "status":
            self._query_org()
        elif self.function == "checkout":
            self._checkout()
        elif self.function == "portal":
            stripe = self.stripe
            self._query_org()
            stripe.v1.billing_portal.sessions.create(params=self.stripe_params)
        elif self.function == "ingest":
            return self._ingest(item)
        else:
            return self._consumer(item)
        return "ok"

    def result(self, raw: Any) -> tuple[int, str | None]:
        return 200, str(raw)

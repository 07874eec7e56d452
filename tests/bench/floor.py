"""The floor: the same AWS and Stripe calls a function makes per request, made directly with no
handler around them, through clients built exactly as the functions build theirs (botocore's
DynamoDB client from tenant_billing.aws_clients, the StripeClient from tenant_billing.stripe_adapter).

Everything else a request does (Powertools, routing, validation, parsing, signature checks, the
entitlement derivation) is the handler's overhead over this floor. The floor's own cold start is
measured too: it is what any handler making these calls with these SDKs pays at least, so the
status floor imports neither the Stripe SDK nor the settings model (the table name comes straight
from the environment); the Stripe floors build their StripeClient as the functions do. The Stripe parameters of
Checkout and portal sessions are the ones the handler sent (recorded by the Stripe fake), so the
floor's requests are the same bytes; the webhook's items follow the table layout (README).
"""

from __future__ import annotations

import itertools
import os
import time
from typing import TYPE_CHECKING, Any, cast

from tenant_billing.aws_clients import dynamodb_client
from tenant_billing.items import SK_CHECKOUT, SK_ENTITLEMENT, SK_EVENT, SK_ORG, SK_SUBSCRIPTION, customer_pk, event_pk, org_pk

if TYPE_CHECKING:
    from stripe import StripeClient
    from stripe.params.billing_portal import SessionCreateParams as PortalSessionParams
    from stripe.params.checkout import SessionCreateParams as CheckoutSessionParams

FUNCTIONS = ("status", "checkout", "portal", "ingest", "consumer")
EVENT_MARKER_TTL_SECONDS = 30 * 24 * 3600
# What an entitlement item holds (the pro plan's features and limits): the same size as the handler's.
ENTITLEMENT_FEATURES = ("page_builder", "media_library", "seo_toolkit", "analytics", "form_builder", "blog_engine")
ENTITLEMENT_LIMITS = {"sites": 5, "pages_per_site": 100, "storage_gb": 10}
# The webhook's guard: the organization's stored subscription is only replaced by a later read (README).
SUBSCRIPTION_GUARD = "attribute_not_exists(pk) OR read_at_ns < :read"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


class FloorTarget:
    """setup: {"org_id": ..., "stripe_params": {...}} for the API functions (the parameters the
    handler sent to Stripe); {"targets": [{"org_id", "customer_id", "subscription_id", "plan",
    "site_quantity"}, ...]} for the webhook. Items of the webhook's commands are such targets with
    a new "event_id" each, or {"duplicate_event_id", "customer_id"} for an event that already took
    effect (the duplicate path: the lookup alone)."""

    def __init__(self, function: str, setup: dict[str, Any]) -> None:
        if function not in FUNCTIONS:
            raise ValueError(f"unknown function {function!r}")
        self.function = function
        self.table = os.environ["TABLE_NAME"]
        self.dynamodb = dynamodb_client()
        self.org_id: str = setup.get("org_id", "")
        self.stripe_params: dict[str, Any] = setup.get("stripe_params") or {}
        self.targets: list[dict[str, Any]] = setup.get("targets") or []
        self._event_numbers = itertools.count()
        # The handlers cache the Stripe client (and the secret it comes from) per execution
        # environment; so does the floor: one Secrets Manager read, here.
        self._stripe: StripeClient | None = None
        self._open_session = ""
        if function == "ingest":
            from tenant_billing.aws_clients import sqs_client

            self.sqs: Any = sqs_client()
            self.queue_url = os.environ["EVENTS_QUEUE_URL"]
        elif function != "status":
            from tenant_billing.stripe_adapter import get_stripe

            self._stripe = get_stripe().client

    @property
    def stripe(self) -> StripeClient:
        assert self._stripe is not None
        return self._stripe

    def first_item(self) -> Any:
        if self.function == "ingest":
            return {"body": "{}", "event_id": "evt_floor_first", "event_type": "invoice.paid"}
        return self.targets[0] if self.targets else None

    def _ingest(self, item: dict[str, Any]) -> str:
        """The webhook's one call: the event, as received, on the queue (its id and type as attributes)."""
        attributes = {
            "event_id": {"DataType": "String", "StringValue": item["event_id"]},
            "event_type": {"DataType": "String", "StringValue": item["event_type"]},
        }
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=item["body"], MessageAttributes=attributes)
        return "queued"

    def _query_org(self) -> Any:
        return self.dynamodb.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _s(org_pk(self.org_id))},
            ConsistentRead=True,
        )

    def _lookup(self, event_id: str, customer_id: str) -> Any:
        keys: list[dict[str, Any]] = [
            {"pk": _s(event_pk(event_id)), "sk": _s(SK_EVENT)},
            {"pk": _s(customer_pk(customer_id)), "sk": _s(SK_ORG)},
        ]
        return self.dynamodb.batch_get_item(RequestItems={self.table: {"Keys": keys, "ConsistentRead": True}})

    def _webhook(self, item: dict[str, Any]) -> str:
        if "duplicate_event_id" in item:
            self._lookup(item["duplicate_event_id"], item["customer_id"])
            return "duplicate"
        event_id = item.get("event_id") or f"evt_floor{os.getpid()}x{next(self._event_numbers)}"
        self._lookup(event_id, item["customer_id"])
        read_at_ns = time.time_ns()
        listed = self.stripe.v1.subscriptions.list(params={"customer": item["customer_id"], "status": "all", "limit": 100})
        subscription = next(s for s in listed.data if s.id == item["subscription_id"])
        now = int(time.time())
        org = _s(org_pk(item["org_id"]))
        stored: dict[str, Any] = {
            "pk": org,
            "sk": _s(SK_SUBSCRIPTION),
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
            "sk": _s(SK_ENTITLEMENT),
            "plan": _s(item["plan"]),
            "status": _s(subscription.status),
            "features": {"L": [_s(feature) for feature in ENTITLEMENT_FEATURES]},
            "limits": {"M": {name: _n(value) for name, value in ENTITLEMENT_LIMITS.items()}},
            "updated_at": _n(now),
        }
        marker: dict[str, Any] = {
            "pk": _s(event_pk(event_id)),
            "sk": _s(SK_EVENT),
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
        self._query_org()
        customer = self.stripe_params["customer"]
        self.stripe.v1.subscriptions.list(params={"customer": customer, "status": "all", "limit": 100})
        self.stripe.v1.checkout.sessions.list(params={"customer": customer, "status": "open", "limit": 100})
        if self._open_session:
            self.stripe.v1.checkout.sessions.expire(self._open_session)
        session = self.stripe.v1.checkout.sessions.create(params=cast("CheckoutSessionParams", self.stripe_params))
        self._open_session = session.id
        self.dynamodb.put_item(
            TableName=self.table,
            # Its own item: the handler, interleaved with the floor, expires only the sessions it recorded.
            Item={
                "pk": _s(org_pk(f"{self.org_id}_floor")),
                "sk": _s(SK_CHECKOUT),
                "session_id": _s(session.id),
                "expires_at": _n(0),
            },
        )

    def call(self, item: Any) -> Any:
        if self.function == "status":
            self._query_org()
        elif self.function == "checkout":
            self._checkout()
        elif self.function == "portal":
            self._query_org()
            self.stripe.v1.billing_portal.sessions.create(params=cast("PortalSessionParams", self.stripe_params))
        elif self.function == "ingest":
            return self._ingest(item)
        else:
            return self._webhook(item)
        return "ok"

    def result(self, raw: Any) -> tuple[int, str | None]:
        return 200, str(raw)

"""Calling the real handlers, reading the table, and setting up organizations for the robustness tests."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, settings

import checkout_handler
import invoices_handler
import portal_handler
import status_handler
import stripe_webhook_handler
import subscription_handler
from tests.conftest import TABLE_NAME, FakeLambdaContext, reset_caches
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event
from tests.support.flows import Subscribed, subscribe
from tests.support.logscan import register_sensitive
from tests.support.queue import drain, return_failed_now
from tests.support.stripe_signature import signature_header
from tests.support.webhook_events import delivery_body, function_url_event

Item = dict[str, Any]
Key = tuple[str, str]
Items = Callable[[], list[Item]]

# The suite's own webhook signing secret (in the package's Stripe secret).
WEBHOOK_SECRET = "whsec_robustness_suite_secret"

ORG_A = "org_alpha"
ORG_B = "org_bravo"

# Shared hypothesis settings: no example database (nothing written into the repository), no
# deadline (moto's first calls are slow), reproducible runs, and fixtures shared by all examples
# of a test on purpose (each example compares the table before and after itself).
FUZZ_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    database=None,
    derandomize=True,
    print_blob=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any

    @property
    def code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            code = self.body["error"].get("code")
            return code if isinstance(code, str) else None
        return None

    @property
    def retryable(self) -> bool:
        """Whether Stripe (or a browser following our contract) would retry: 5xx yes, 4xx no."""
        return self.status >= 500

    @property
    def outcome(self) -> str | None:
        outcome = self.body.get("outcome") if isinstance(self.body, dict) else None
        return outcome if isinstance(outcome, str) else None


def invoke(handler: Callable[..., dict[str, Any]], event: dict[str, Any]) -> Reply:
    """Call a handler the way Lambda does and check the response is well-formed JSON in our one error shape."""
    response = handler(event, FakeLambdaContext())
    status = response["statusCode"]
    assert isinstance(status, int), response
    assert response["headers"]["Content-Type"] == "application/json", response
    body = json.loads(response["body"])
    if status >= 400:
        assert isinstance(body, dict) and set(body) == {"error"}, body
        assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str), body
    return Reply(status, body)


def call_status(org_id: str | None = ORG_A, role: str | None = "member", **changes: Any) -> Reply:
    return invoke(status_handler.lambda_handler, api_event("GET", "/billing/status", org_id=org_id, role=role, **changes))


def call_checkout(body: Any, org_id: str | None = ORG_A, role: str | None = "admin") -> Reply:
    event = api_event("POST", "/billing/checkout", org_id=org_id, role=role, body=body)
    return invoke(checkout_handler.lambda_handler, event)


def call_portal(body: Any = None, org_id: str | None = ORG_A, role: str | None = "admin") -> Reply:
    event = api_event("POST", "/billing/portal", org_id=org_id, role=role, body=body)
    return invoke(portal_handler.lambda_handler, event)


# --- the subscription and invoice endpoints ------------------------------------------------------

Query = Mapping[str, str] | Iterable[tuple[str, str]]


def with_query(event: dict[str, Any], query: Query | None) -> dict[str, Any]:
    """The query string as API Gateway's HTTP API (payload 2.0) delivers it: `rawQueryString` as sent,
    and `queryStringParameters` decoded, with the values of a repeated name joined by commas."""
    pairs = [(name, value) for name, value in (query.items() if isinstance(query, Mapping) else query or ())]
    event["rawQueryString"] = urlencode(pairs)
    parameters: dict[str, str] = {}
    for name, value in pairs:
        parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
    if parameters:
        event["queryStringParameters"] = parameters
    else:
        event.pop("queryStringParameters", None)
    return event


def call_preview(query: Query | None, org_id: str | None = ORG_A, role: str | None = "admin") -> Reply:
    event = with_query(api_event("GET", "/billing/subscription/preview", org_id=org_id, role=role), query)
    return invoke(subscription_handler.lambda_handler, event)


def call_change(body: Any, org_id: str | None = ORG_A, role: str | None = "admin") -> Reply:
    event = api_event("POST", "/billing/subscription", org_id=org_id, role=role, body=body)
    return invoke(subscription_handler.lambda_handler, event)


def call_cancel(body: Any = None, org_id: str | None = ORG_A, role: str | None = "admin") -> Reply:
    event = api_event("POST", "/billing/subscription/cancel", org_id=org_id, role=role, body=body)
    return invoke(subscription_handler.lambda_handler, event)


def call_resume(body: Any = None, org_id: str | None = ORG_A, role: str | None = "admin") -> Reply:
    event = api_event("POST", "/billing/subscription/resume", org_id=org_id, role=role, body=body)
    return invoke(subscription_handler.lambda_handler, event)


def call_invoices(query: Query | None = None, org_id: str | None = ORG_A, role: str | None = "member") -> Reply:
    event = with_query(api_event("GET", "/billing/invoices", org_id=org_id, role=role), query)
    return invoke(invoices_handler.lambda_handler, event)


def call_webhook(event: dict[str, Any]) -> Reply:
    return invoke(stripe_webhook_handler.lambda_handler, event)


def register_delivery(raw: bytes) -> None:
    """The raw body and its data object must never be logged (checked after every test)."""
    text = raw.decode("utf-8", errors="replace")
    register_sensitive(text)
    try:
        document = json.loads(raw)
    except ValueError:
        return
    data = document.get("data") if isinstance(document, dict) else None
    if isinstance(data, dict):
        for value in (data, data.get("object")):
            if isinstance(value, dict):
                register_sensitive(json.dumps(value), json.dumps(value, separators=(",", ":")), repr(value))


def signed_event(
    stripe_event: Mapping[str, Any] | bytes,
    *,
    secrets: Iterable[str] = (WEBHOOK_SECRET,),
    timestamp: int | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    raw = stripe_event if isinstance(stripe_event, bytes) else delivery_body(dict(stripe_event))
    register_delivery(raw)
    header = signature_header(list(secrets), int(time.time()) if timestamp is None else timestamp, raw)
    return function_url_event(raw, {"stripe-signature": header}, base64_body=base64_body)


def deliver(stripe_event: Mapping[str, Any] | bytes, **kwargs: Any) -> Reply:
    """The webhook's reply; an event it queued is then processed by the consumer at once, and the
    reply's outcome is the consumer's ("failed": its message stays queued), as in tests.support.flows."""
    reply = call_webhook(signed_event(stripe_event, **kwargs))
    if reply.status == 200 and reply.outcome == "queued":
        event_id = str(json.loads(stripe_event)["id"] if isinstance(stripe_event, bytes) else stripe_event["id"])
        return Reply(reply.status, {**reply.body, "outcome": drain().outcome_of(event_id)})
    return reply


def assert_queued_for_retry(reply: Reply) -> None:
    """Queued (200: Stripe does not retry), then failed by the consumer: the message returns to the
    queue after a backoff, the queue's retry."""
    assert (reply.status, reply.outcome) == (200, "failed"), reply


def retry_queued(stripe_event: Mapping[str, Any]) -> Reply:
    """The queue's retry of the messages the consumer failed, once their backoff passed."""
    assert return_failed_now() >= 1
    return Reply(200, {"received": True, "outcome": drain().outcome_of(str(stripe_event["id"]))})


def raw_function_url_event(raw: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """A Function URL event with an arbitrary body (base64 as Lambda sends binary) and headers."""
    register_delivery(raw)
    event = function_url_event(b"", {})
    event["headers"] = headers
    event["isBase64Encoded"] = True
    event["body"] = base64.b64encode(raw).decode()
    return event


_DIGITS_TO_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def fresh_id(prefix: str) -> str:
    """A unique id without digit runs (ids reach log lines, which are scanned for card numbers)."""
    return prefix + uuid.uuid4().hex.translate(_DIGITS_TO_LETTERS)


# --- the table ----------------------------------------------------------------------------------


def by_key(items: Iterable[Item]) -> dict[Key, Item]:
    return {(item["pk"]["S"], item["sk"]["S"]): item for item in items}


def changed_keys(before: Iterable[Item], after: Iterable[Item]) -> set[Key]:
    old, new = by_key(before), by_key(after)
    return {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}


def assert_links_consistent(items: Iterable[Item]) -> None:
    """No half-written customer link: an org's customer has its reverse item and vice versa."""
    table = by_key(items)
    for (pk, sk), item in table.items():
        if sk == "CUSTOMER" and "customer_id" in item:
            customer_id = item["customer_id"]["S"]
            reverse = table.get((f"CUSTOMER#{customer_id}", "ORG"))
            assert reverse is not None, f"{pk} is linked to {customer_id} without the reverse item"
            assert reverse["org_id"]["S"] == pk.removeprefix("ORG#")
        if sk == "ORG":
            org_item = table.get((f"ORG#{item['org_id']['S']}", "CUSTOMER"))
            assert org_item is not None and org_item.get("customer_id", {}).get("S") == pk.removeprefix("CUSTOMER#"), (
                f"{pk} points at {item['org_id']['S']}, which is not linked back"
            )


def org_items(items: Iterable[Item], org_id: str) -> dict[Key, Item]:
    """Everything stored for one organization: its partition and the reverse links naming it."""
    return {
        key: item
        for key, item in by_key(items).items()
        if key[0] == f"ORG#{org_id}" or (key[1] == "ORG" and item.get("org_id", {}).get("S") == org_id)
    }


def linked_customer(items: Iterable[Item], org_id: str) -> str | None:
    item = by_key(items).get((f"ORG#{org_id}", "CUSTOMER"))
    return item["customer_id"]["S"] if item and "customer_id" in item else None


def clear_table(dynamodb: Any) -> None:
    for item in dynamodb.scan(TableName=TABLE_NAME)["Items"]:
        dynamodb.delete_item(TableName=TABLE_NAME, Key={"pk": item["pk"], "sk": item["sk"]})


# --- the moto environment -----------------------------------------------------------------------


@dataclass(frozen=True)
class MotoEnvironment:
    dynamodb: Any
    secretsmanager: Any
    secret_arn: str


def use_new_secret(aws: MotoEnvironment, monkeypatch: pytest.MonkeyPatch, secret_string: str) -> str:
    """Another Stripe secret (a unique name: the moto environment outlives the test), made current."""
    arn: str = aws.secretsmanager.create_secret(Name=fresh_id("robustness-"), SecretString=secret_string)["ARN"]
    monkeypatch.setenv("STRIPE_SECRET_ARN", arn)
    reset_caches()
    return arn


# --- organizations ------------------------------------------------------------------------------


def delivery_status(stripe_event: dict[str, Any]) -> int:
    """Deliver one Stripe event with this suite's secret (for `subscribe`'s deliver_with): its HTTP status."""
    return deliver(stripe_event).status


def fail_from_next(fake: FakeStripe, method: str, path: str, count: int, **fault: Any) -> None:
    """Arm `fake.fail_next(count, ...)` on `path` when the next `method` request to it arrives: the
    fake matches faults by path only, and a plan change reads (GET) and then updates (POST) the same
    subscription path, so this is how the update alone fails."""

    def handle(
        request_method: str, request_path: str, query: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        if request_method.upper() == method and request_path == path:
            del fake.handle  # back to the class's method: armed once
            fake.fail_next(count, path_prefix=path, **fault)
        return type(fake).handle(fake, request_method, request_path, query, body, headers)

    fake.handle = handle  # type: ignore[method-assign,assignment]


def subscribe_synced(fake: FakeStripe, org_id: str, *, plan: str = "pro", sites: int = 3) -> Subscribed:
    """`subscribe`, delivering only the event that stores the subscription (the others' deliveries are
    duplicates of that state, and each costs a webhook call)."""
    tenant = subscribe(fake, org_id, plan=plan, sites=sites)
    assert deliver(tenant.event("customer.subscription.created")).outcome == "synced"
    return tenant


def stripe_fault_count(fake: FakeStripe, since: int) -> int:
    """How many of the fake's requests after index `since` were answered by an injected fault."""
    return sum(1 for request in fake.requests[since:] if request.fault is not None)

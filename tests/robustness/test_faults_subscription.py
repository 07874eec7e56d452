"""Faults on the subscription and invoice endpoints: GET /billing/subscription/preview, POST
/billing/subscription, POST /billing/subscription/cancel (at period end and now), POST
/billing/subscription/resume and GET /billing/invoices.

Contract, as for the other endpoints: DynamoDB throttling on the initial Query and Secrets Manager
failures answer a retryable 503 before anything reaches Stripe; Stripe failures on the subscription
read, on the invoice preview or list, and on the update or cancel (500s, 429, connection resets,
and resets after Stripe executed the request, i.e. lost responses) either vanish in the SDK's
retries or answer a retryable 502 `stripe_unavailable`; a failed change leaves the table (and, when
Stripe never executed it, Stripe's subscription) exactly as it was; and the caller's retry succeeds.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tenant_billing.aws_clients import dynamodb_client
from tests.robustness.aws_faults import AwsFaultInjector, Fault
from tests.robustness.counts import FAULTS, count
from tests.robustness.support import (
    ORG_A,
    Item,
    Items,
    Key,
    Reply,
    by_key,
    call_cancel,
    call_change,
    call_invoices,
    call_preview,
    call_resume,
    call_status,
    fail_from_next,
    stripe_fault_count,
    subscribe_synced,
)
from tests.robustness.test_faults_dynamodb import THROTTLES, assert_transient
from tests.robustness.test_faults_secrets import FAULTS as SECRETS_FAULTS
from tests.robustness.test_faults_secrets import assert_refused, secrets_client
from tests.robustness.test_faults_stripe import STRIPE_FAULTS, StripeFault
from tests.stripe_fake import FakeStripe
from tests.support.flows import Subscribed

pytestmark = pytest.mark.usefixtures("billing")

SUBSCRIPTION = "{subscription}"  # stands for A's subscription path in STRIPE_CALLS


@dataclass(frozen=True)
class Operation:
    """One endpoint call for A (pro, 3 sites, subscribed), how to set it up and what success looks like."""

    call: Callable[[], Reply]
    check: Callable[[Reply, FakeStripe, Subscribed], None]
    writes: bool = True
    prepare: Callable[[], None] = lambda: None


def _check_preview(reply: Reply, fake: FakeStripe, tenant: Subscribed) -> None:
    assert (reply.body["plan"], reply.body["siteQuantity"], reply.body["currency"]) == ("enterprise", 4, "usd"), reply
    assert reply.body["amountDueNow"] > 0 and reply.body["nextInvoiceTotal"] == 19900 + 4 * 900


def _check_change(reply: Reply, fake: FakeStripe, tenant: Subscribed) -> None:
    assert (reply.body["subscription"]["plan"], reply.body["subscription"]["siteQuantity"]) == ("enterprise", 4), reply
    prices = sorted(
        (item["price"]["id"], item["quantity"]) for item in fake.subscriptions[tenant.subscription_id]["items"]["data"]
    )
    assert prices == [("price_enterprise_base", 1), ("price_enterprise_site", 4)]


def _check_cancel(reply: Reply, fake: FakeStripe, tenant: Subscribed) -> None:
    assert (reply.body["subscription"]["status"], reply.body["subscription"]["cancelAtPeriodEnd"]) == ("active", True), reply
    assert fake.subscriptions[tenant.subscription_id]["cancel_at_period_end"] is True


def _check_cancel_now(reply: Reply, fake: FakeStripe, tenant: Subscribed) -> None:
    assert reply.body["subscription"]["status"] == "canceled", reply
    assert fake.subscriptions[tenant.subscription_id]["status"] == "canceled"


def _check_resume(reply: Reply, fake: FakeStripe, tenant: Subscribed) -> None:
    assert (reply.body["subscription"]["status"], reply.body["subscription"]["cancelAtPeriodEnd"]) == ("active", False), reply
    assert fake.subscriptions[tenant.subscription_id]["cancel_at_period_end"] is False


def _check_invoices(reply: Reply, fake: FakeStripe, tenant: Subscribed) -> None:
    ids = [invoice["id"] for invoice in reply.body["invoices"]]
    assert ids and all(fake.invoices[invoice_id]["customer"] == tenant.customer_id for invoice_id in ids), reply


def _pending_cancellation() -> None:
    assert call_cancel({}).status == 200


# In an order in which each succeeds after the one before (the change to enterprise comes after its
# preview; the immediate cancellation last).
OPERATIONS: dict[str, Operation] = {
    "preview": Operation(lambda: call_preview({"plan": "enterprise", "siteQuantity": "4"}), _check_preview, writes=False),
    "invoices": Operation(call_invoices, _check_invoices, writes=False),
    "change": Operation(lambda: call_change({"plan": "enterprise", "siteQuantity": 4}), _check_change),
    "cancel": Operation(lambda: call_cancel({}), _check_cancel),
    "resume": Operation(call_resume, _check_resume, prepare=_pending_cancellation),
    "cancel-now": Operation(lambda: call_cancel({"immediately": True}), _check_cancel_now),
}
# Every Stripe call each operation makes: (method, path, whether it changes the subscription).
STRIPE_CALLS: dict[str, list[tuple[str, str, bool]]] = {
    "preview": [("GET", SUBSCRIPTION, False), ("POST", "/v1/invoices/create_preview", False)],
    "invoices": [("GET", "/v1/invoices", False)],
    "change": [("GET", SUBSCRIPTION, False), ("POST", SUBSCRIPTION, True)],
    "cancel": [("POST", SUBSCRIPTION, True)],
    "resume": [("POST", SUBSCRIPTION, True)],
    "cancel-now": [("DELETE", SUBSCRIPTION, True)],
}
# Reads: outages (500s, a 429 Stripe does not mark retryable, resets). Writes: those, a blip the SDK
# absorbs, and responses lost after Stripe executed the request (a reset on the way back).
READ_FAULTS = ("500-x3", "429", "connection-reset-x3")
WRITE_FAULTS = (*READ_FAULTS, "connection-reset-x2", "response-lost-x3", "response-lost-once")
STRIPE_CASES = [
    pytest.param(
        name,
        method,
        path,
        STRIPE_FAULTS[fault_id],
        id=f"{name}-{method}-{'subscription' if path == SUBSCRIPTION else path}-{fault_id}",
    )
    for name, calls in STRIPE_CALLS.items()
    for method, path, writes in calls
    for fault_id in (WRITE_FAULTS if writes else READ_FAULTS)
]


@dataclass
class Scene:
    fake: FakeStripe
    table_items: Items
    tenant: Subscribed

    def stripe_subscription(self) -> dict[str, Any]:
        return copy.deepcopy(self.fake.subscriptions[self.tenant.subscription_id])

    def stored(self) -> dict[Key, Item]:
        return by_key(self.table_items())


@pytest.fixture
def scene(stripe_fake: FakeStripe, table_items: Items) -> Scene:
    return Scene(stripe_fake, table_items, subscribe_synced(stripe_fake, ORG_A, plan="pro", sites=3))


def run(scene: Scene, name: str, failed: Callable[[Reply], None], fault_call: Callable[[], None]) -> None:
    """Prepare, fail once (checked by `failed`), then the caller's retry must succeed."""
    operation = OPERATIONS[name]
    operation.prepare()
    table_before, stripe_before = scene.stored(), scene.stripe_subscription()
    scene.fake.reset_requests()
    fault_call()
    reply = operation.call()
    failed(reply)
    assert scene.stored() == table_before, f"{name}: a failed request changed the table"
    assert scene.stripe_subscription() == stripe_before, f"{name}: a failed request changed the Stripe subscription"
    retry = operation.call()
    assert retry.status == 200, f"{name}: the retry failed: {retry}"
    operation.check(retry, scene.fake, scene.tenant)
    assert_status_matches(retry, name)


def assert_status_matches(reply: Reply, name: str) -> None:
    """A change answers with the status body, already stored: the next status call shows it."""
    if OPERATIONS[name].writes:
        assert call_status().body == reply.body


# --- DynamoDB: the initial Query (each operation in turn, one scene) ----------------------------

DYNAMODB_THROTTLES = {name: THROTTLES[name] for name in ("ProvisionedThroughputExceeded", "Throttling")}


@pytest.mark.parametrize("fault", DYNAMODB_THROTTLES.values(), ids=DYNAMODB_THROTTLES.keys())
def test_query_throttled(fault: Fault, scene: Scene, aws_faults: AwsFaultInjector) -> None:
    def failed(reply: Reply) -> None:
        assert_transient(reply)
        assert scene.fake.requests == [], f"a request refused on the Query reached Stripe: {scene.fake.requests}"

    for name in OPERATIONS:
        run(scene, name, failed, lambda: aws_faults.fail(dynamodb_client(), "Query", fault))
    assert aws_faults.fired == {"Query": len(OPERATIONS)}


# --- Secrets Manager: the Stripe key (each operation in turn, one scene) --------------------------


@pytest.mark.parametrize(("fault", "code"), SECRETS_FAULTS.values(), ids=SECRETS_FAULTS.keys())
def test_secret_unavailable(fault: Fault, code: str, scene: Scene, aws_faults: AwsFaultInjector) -> None:
    def failed(reply: Reply) -> None:
        assert_refused(reply, code)
        assert scene.fake.requests == [], f"a request without the Stripe key reached Stripe: {scene.fake.requests}"

    for name in OPERATIONS:
        run(scene, name, failed, lambda: aws_faults.fail(secrets_client(), "GetSecretValue", fault))
    assert aws_faults.fired == {"GetSecretValue": len(OPERATIONS)}


# --- Stripe: every call of every operation -------------------------------------------------------


@pytest.mark.parametrize(("name", "method", "path", "fault"), STRIPE_CASES)
def test_stripe_fault(name: str, method: str, path: str, fault: StripeFault, scene: Scene) -> None:
    path = f"/v1/subscriptions/{scene.tenant.subscription_id}" if path == SUBSCRIPTION else path
    operation = OPERATIONS[name]
    operation.prepare()
    table_before, stripe_before = scene.stored(), scene.stripe_subscription()
    first = len(scene.fake.requests)
    fail_from_next(scene.fake, method, path, fault.count, **fault.kwargs)
    reply = operation.call()
    fired = stripe_fault_count(scene.fake, first)
    count(FAULTS, fired)
    assert fired == fault.count, f"{fired} of {fault.count} injected faults fired"
    if not fault.outage:
        assert reply.status == 200, reply
        operation.check(reply, scene.fake, scene.tenant)
        assert_status_matches(reply, name)
        return
    assert (reply.status, reply.code) == (502, "stripe_unavailable"), reply
    assert reply.retryable and "stripe" not in reply.body["error"]["message"].lower()
    assert scene.stored() == table_before, "a change Stripe failed changed the table"
    executed = fault.reached_stripe and method != "GET" and path != "/v1/invoices/create_preview"
    if not executed:
        assert scene.stripe_subscription() == stripe_before, "a request that failed in Stripe changed the subscription"
    retry = operation.call()
    assert retry.status == 200, f"the caller's retry after {reply.code} failed: {retry}"
    operation.check(retry, scene.fake, scene.tenant)
    assert_status_matches(retry, name)

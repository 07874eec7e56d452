"""The benchmark's data, set up once in the parent through the real handlers (in process) and the
Stripe fake's lifecycle: an organization with a subscription (status, portal), one with a Stripe
customer but no subscription (checkout: every call answers 200), a pool of distinct real
webhook events (new events for the webhook's cold starts, warm loop and throughput runs), and the
Stripe parameters the checkout (existing customer) and portal handlers send, for the floor."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from typing import Any

from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event, response_json

STATUS_ORG = "org_bench_status"
CHECKOUT_ORG = "org_bench_checkout"
POOL_ORG_PREFIX = "org_bench_pool_"
CHECKOUT_BODY: dict[str, Any] = {"plan": "pro", "siteQuantity": 3}
# Many events per organization keep the table small: moto deep-copies the whole table for every
# TransactWriteItems, so its size would otherwise dominate the webhook's latency.
RENEWALS_PER_ORG = 4

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class SetupError(RuntimeError):
    pass


class SetupContext:
    function_name = "bench-setup"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:bench-setup"
    aws_request_id = "00000000-0000-4000-8000-00000000beef"

    def get_remaining_time_in_millis(self) -> int:
        return 15_000


@dataclass
class Scenario:
    status_org: str
    checkout_org: str
    checkout_body: dict[str, Any]
    # Distinct handled events, organizations interleaved (consecutive events concern different ones).
    events: list[dict[str, Any]]
    # The webhook floor's inputs: one per pool subscription.
    targets: list[dict[str, Any]]
    # What the real handlers sent to Stripe for the benchmark's requests: "checkout" (the session
    # create of an existing customer's repeated checkout) and "portal" (the portal session create).
    stripe_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    _next: int = field(default=0, repr=False)

    def take(self, count: int) -> list[dict[str, Any]]:
        """`count` events never delivered before."""
        if self._next + count > len(self.events):
            raise SetupError(f"the event pool is exhausted ({len(self.events)} events)")
        taken = self.events[self._next : self._next + count]
        self._next += count
        return taken


def _interleave(groups: list[list[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    for index in range(max((len(group) for group in groups), default=0)):
        for group in groups:
            if index < len(group):
                yield group[index]


class ScenarioBuilder:
    """Needs the services' environment in os.environ before the handlers are imported."""

    def __init__(self, fake: FakeStripe, webhook_secret: str) -> None:
        self.fake = fake
        self.webhook_secret = webhook_secret
        self.context = SetupContext()
        self._sink = io.StringIO()  # Powertools' log lines and metrics of the setup calls
        import checkout_handler
        import portal_handler
        from tests.bench import storm_sync

        self._checkout: Handler = checkout_handler.lambda_handler
        self._portal: Handler = portal_handler.lambda_handler
        # The status organization's events synced at once (the webhook itself only queues them).
        self._webhook: Handler = storm_sync.lambda_handler

    def checkout(self, org_id: str, body: dict[str, Any]) -> str:
        """The real checkout handler; returns the Checkout Session id."""
        with redirect_stdout(self._sink):
            response = self._checkout(api_event("POST", "/billing/checkout", org_id=org_id, body=body), self.context)
        if response["statusCode"] != 200:
            raise SetupError(f"checkout for {org_id}: {response['statusCode']} {response['body']}")
        url = str(response_json(response)["url"])
        session_id = next(
            (sid for sid, session in self.fake.checkout_sessions.items() if session.get("url") == url),
            None,
        )
        if session_id is None:
            raise SetupError(f"no Checkout Session for {org_id}")
        return session_id

    def subscribe(self, org_id: str, body: dict[str, Any], *, renewals: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Checkout and payment, then `renewals` times a failed renewal payment that then gets
        paid: the handled events (about 3 + 5 per renewal)."""
        from tenant_billing.webhook_logic import HANDLED_EVENTS

        session_id = self.checkout(org_id, body)
        events = self.fake.complete_checkout(session_id)
        session = self.fake.checkout_sessions[session_id]
        subscription_id = str(session["subscription"])
        for _ in range(renewals):
            events += self.fake.fail_payment(subscription_id)
            events += self.fake.pay_latest_invoice(subscription_id)
        target = {
            "org_id": org_id,
            "customer_id": str(session["customer"]),
            "subscription_id": subscription_id,
            "plan": body["plan"],
            "site_quantity": body.get("siteQuantity", 0),
        }
        return [event for event in events if event["type"] in HANDLED_EVENTS], target

    def deliver(self, stripe_event: dict[str, Any]) -> dict[str, Any]:
        from tests.support.webhook_events import signed_delivery

        with redirect_stdout(self._sink):
            return self._webhook(signed_delivery(stripe_event, [self.webhook_secret]), self.context)

    def sent_params(self, path: str) -> dict[str, Any]:
        """The parameters of the last POST the fake received at `path`."""
        posts = [request for request in self.fake.requests if request.method == "POST" and request.path == path]
        if not posts:
            raise SetupError(f"no POST {path} was sent")
        return dict(posts[-1].params)

    def portal(self, org_id: str) -> None:
        with redirect_stdout(self._sink):
            response = self._portal(api_event("POST", "/billing/portal", org_id=org_id), self.context)
        if response["statusCode"] != 200:
            raise SetupError(f"portal for {org_id}: {response['statusCode']} {response['body']}")

    def build(self, pool_size: int) -> Scenario:
        # Status and portal: an organization with a live subscription, synced through the webhook.
        events, _ = self.subscribe(STATUS_ORG, {"plan": "enterprise", "siteQuantity": 2}, renewals=0)
        for stripe_event in events:
            response = self.deliver(stripe_event)
            if response["statusCode"] != 200:
                raise SetupError(f"webhook setup: {response['statusCode']} {response['body']}")
        # Checkout: an existing customer (created by the real handler) and no subscription; its
        # second checkout is the benchmark's request (2 lists, the expiry of the first, the create).
        self.checkout(CHECKOUT_ORG, CHECKOUT_BODY)
        self.checkout(CHECKOUT_ORG, CHECKOUT_BODY)
        self.portal(STATUS_ORG)
        stripe_params = {
            "checkout": self.sent_params("/v1/checkout/sessions"),
            "portal": self.sent_params("/v1/billing_portal/sessions"),
        }
        groups: list[list[dict[str, Any]]] = []
        targets: list[dict[str, Any]] = []
        total = 0
        while total < pool_size:
            n = len(groups)
            body = {"plan": "pro" if n % 2 else "enterprise", "siteQuantity": n % 5}
            org_events, target = self.subscribe(f"{POOL_ORG_PREFIX}{n}", body, renewals=RENEWALS_PER_ORG)
            groups.append(org_events)
            targets.append(target)
            total += len(org_events)
        return Scenario(STATUS_ORG, CHECKOUT_ORG, dict(CHECKOUT_BODY), list(_interleave(groups)), targets, stripe_params)


def setup_environment(env: dict[str, str]) -> None:
    """The parent's own environment for the in-process setup calls (before any handler import)."""
    os.environ.update(env)
    os.environ.update({"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_TRACE_DISABLED": "true"})
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "billing")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "SaaSBillingBench")

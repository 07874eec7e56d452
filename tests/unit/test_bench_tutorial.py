"""The benchmark's tutorial handlers (tests/bench/tutorial) are real handlers: against an in-process
table, secret and queue (moto) and the Stripe fake, they answer the benchmark's requests with a 200
and do the job (a checkout, the webhook's queueing, the consumer's sync, the status, the portal)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import stripe
from moto import mock_aws

from tenant_billing.catalog import get_catalog
from tests.bench import shipped
from tests.bench.storm import sqs_event
from tests.conftest import QUEUE_NAME, SECRET_NAME, TABLE_NAME, TEST_PRICES
from tests.stripe_fake import TEST_API_KEY, FakeStripe, FakeStripeHTTPClient
from tests.support.api_events import api_event, response_json
from tests.support.template import create_table_from_template
from tests.support.webhook_events import signed_delivery

WEBHOOK_SECRET = "whsec_tutorial_test"
ORG = "org_tutorial"


class Tutorials:
    def __init__(self, fake: FakeStripe) -> None:
        self.fake = fake
        self.modules: dict[str, ModuleType] = {}

    def handler(self, name: str) -> Any:
        """The tutorial's module, imported (its module-level set-up run) on first use, as Lambda does."""
        if name not in self.modules:
            path = shipped.TUTORIAL_SOURCES / f"{name}.py"
            spec = importlib.util.spec_from_file_location(f"bench_tutorial_{name}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self.modules[name] = module
        return self.modules[name].lambda_handler

    def call(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self.handler(name)(event, None)
        return response


@pytest.fixture
def tutorials(monkeypatch: pytest.MonkeyPatch) -> Iterator[Tutorials]:
    fake = FakeStripe()
    catalog = get_catalog()
    for entry in catalog.prices():
        price = entry.price
        fake.add_price(
            TEST_PRICES[price.name],
            product_name=price.name,
            unit_amount=price.unit_amount,
            currency=catalog.currency,
            interval=entry.ref.interval,
        )
    # The tutorials use Stripe's global configuration: restored after the test.
    monkeypatch.setattr(stripe, "default_http_client", FakeStripeHTTPClient(fake))
    monkeypatch.setattr(stripe, "api_key", None)
    monkeypatch.setattr(stripe, "api_base", stripe.api_base)
    with mock_aws():
        create_table_from_template(boto3.client("dynamodb", region_name="us-east-1"), TABLE_NAME)
        boto3.client("sqs", region_name="us-east-1").create_queue(QueueName=QUEUE_NAME)
        secret = {"STRIPE_SECRET_KEY": TEST_API_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}
        arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name=SECRET_NAME, SecretString=json.dumps(secret)
        )["ARN"]
        monkeypatch.setenv("STRIPE_SECRET_ARN", arn)
        yield Tutorials(fake)
    for name in list(sys.modules):
        if name.startswith("bench_tutorial_"):
            del sys.modules[name]


def _checkout(tutorials: Tutorials) -> dict[str, Any]:
    event = api_event("POST", "/billing/checkout", org_id=ORG, role="admin", body={"plan": "pro", "siteQuantity": 2})
    return tutorials.call("checkout", event)


def _queued_messages() -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=QUEUE_NAME)["QueueUrl"]
    messages: list[dict[str, Any]] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
        "Messages", []
    )
    return messages


def test_the_tutorial_handlers_do_the_job_of_the_functions(tutorials: Tutorials) -> None:
    fake = tutorials.fake
    first = _checkout(tutorials)
    assert first["statusCode"] == 200, first
    # An existing customer's second checkout: its open session expired, a new one recorded.
    second = _checkout(tutorials)
    assert second["statusCode"] == 200, second
    sessions = sorted(fake.checkout_sessions.values(), key=lambda session: session["created"])
    assert [session["status"] for session in sessions] == ["expired", "open"]
    assert response_json(second)["url"] == sessions[-1]["url"]

    events = fake.complete_checkout(sessions[-1]["id"])
    update = next(event for event in events if event["type"].startswith("customer.subscription."))
    delivered = tutorials.call("ingest", signed_delivery(update, [WEBHOOK_SECRET]))
    assert delivered["statusCode"] == 200, delivered
    (message,) = _queued_messages()
    assert json.loads(message["Body"])["id"] == update["id"]
    assert message["MessageAttributes"]["event_type"]["StringValue"] == update["type"]
    forged = tutorials.call("ingest", signed_delivery(update, ["whsec_someone_else"]))
    assert forged["statusCode"] == 400

    assert tutorials.call("consumer", sqs_event([update])) == {"batchItemFailures": []}
    # The same event again is a duplicate: no second Stripe read.
    fake.reset_requests()
    assert tutorials.call("consumer", sqs_event([update])) == {"batchItemFailures": []}
    assert not fake.requests

    status = tutorials.call("status", api_event("GET", "/billing/status", org_id=ORG, role="member"))
    assert status["statusCode"] == 200, status
    body = response_json(status)
    assert body["plan"] == "pro"
    assert body["limits"]["sites"] == 2 + 2
    assert body["subscription"]["status"] == "active"
    assert body["subscription"]["siteQuantity"] == 2

    portal = tutorials.call("portal", api_event("POST", "/billing/portal", org_id=ORG, role="admin"))
    assert portal["statusCode"] == 200, portal
    assert response_json(portal)["url"]

    # Subscribed now: no second subscription.
    assert _checkout(tutorials)["statusCode"] == 409


def test_the_tutorial_handlers_refuse_what_the_functions_refuse(tutorials: Tutorials) -> None:
    member = api_event("POST", "/billing/checkout", org_id=ORG, role="member", body={"plan": "pro"})
    assert tutorials.call("checkout", member)["statusCode"] == 403
    unknown = api_event("POST", "/billing/checkout", org_id=ORG, role="admin", body={"plan": "platinum"})
    assert tutorials.call("checkout", unknown)["statusCode"] == 400
    assert tutorials.call("portal", api_event("POST", "/billing/portal", org_id=ORG, role="admin"))["statusCode"] == 409
    never = response_json(tutorials.call("status", api_event("GET", "/billing/status", org_id=ORG, role="member")))
    assert never["subscription"] is None


# A traced tutorial's first lines in Lambda: what the X-Ray SDK patched once the handler was imported.
# Run in the function's folder: `python -c` imports from the working directory, as Lambda from its code folder.
PATCHED_AFTER_IMPORT = """
import traced_app
from aws_xray_sdk.core.patcher import _PATCHED_MODULES
print(sorted(_PATCHED_MODULES), traced_app.lambda_handler.__module__)
"""


@pytest.mark.parametrize(
    ("module_level", "patched"),
    [
        ("import boto3", "botocore"),
        ("import boto3, stripe", "botocore"),  # the webhook: Stripe's signature check only, no API call
        ("import boto3, stripe\nstripe.api_key = 'sk_test_x'", "botocore requests"),
    ],
)
def test_the_traced_tutorial_patches_what_the_product_traces(tmp_path: Path, module_level: str, patched: str) -> None:
    shutil.copy2(shipped.TUTORIAL_SOURCES / "traced.py", tmp_path / f"{shipped.TRACED_TUTORIAL_MODULE}.py")
    (tmp_path / f"{shipped.TUTORIAL_MODULE}.py").write_text(f"{module_level}\n\ndef lambda_handler(event, context):\n    pass\n")
    done = subprocess.run(
        [sys.executable, "-c", PATCHED_AFTER_IMPORT], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split("] ")[0] + "]" == repr(patched.split())
    assert done.stdout.split("] ")[1].strip() == shipped.TUTORIAL_MODULE

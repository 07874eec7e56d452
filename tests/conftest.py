"""Fixtures shared by every test: a clean, offline environment for the functions."""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass

import pytest

from tenant_billing.catalog import get_catalog
from tenant_billing.observability import logger
from tenant_billing.settings import get_settings
from tests import POWERTOOLS_ENV
from tests.support.logscan import LogCapture, clear_sensitive, scan, sensitive_texts

# Powertools' Logger is created on first use and its handler keeps the stdout it saw then: created
# now, that is the session's, never a test's capsys (closed when its test ends).
logger.powertools()

TABLE_NAME = "billing-test"
SECRET_NAME = "billing/stripe-test"
ACCOUNT = "123456789012"
QUEUE_NAME = "billing-events-test"
DEAD_LETTER_QUEUE_NAME = "billing-events-dlq-test"
# moto's URL of the queue tests.support.queue creates.
QUEUE_URL = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/{QUEUE_NAME}"
# Every price of the catalog, by name, as STRIPE_PRICES gives it: "pro_base" -> "price_pro_base".
TEST_PRICES = {name: f"price_{name}" for name in get_catalog().price_names()}


def prices_env(prices: Mapping[str, object]) -> dict[str, str]:
    """The environment the template gives the functions for these prices (StripePrices)."""
    return {"STRIPE_PRICES": json.dumps(dict(prices))}


def configure_prices(
    monkeypatch: pytest.MonkeyPatch, changed: Mapping[str, object] | None = None, *, without: tuple[str, ...] = ()
) -> dict[str, object]:
    """Set STRIPE_PRICES to TEST_PRICES with some names left out or changed, and forget cached settings."""
    prices: dict[str, object] = {name: value for name, value in TEST_PRICES.items() if name not in without}
    prices |= changed or {}
    for name, value in prices_env(prices).items():
        monkeypatch.setenv(name, value)
    reset_caches()
    return prices


@dataclass
class FakeLambdaContext:
    function_name: str = "billing-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:billing-test"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"
    remaining_ms: int = 10_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def reset_caches() -> None:
    """Forget everything cached per execution environment (settings, clients, secrets)."""
    get_settings.cache_clear()
    get_catalog.cache_clear()
    from tenant_billing import repositories
    from tenant_billing.org_billing_store import get_org_billing_store

    get_org_billing_store.cache_clear()
    for repository in (
        repositories.get_checkout_repository,
        repositories.get_plan_change_repository,
        repositories.get_webhook_repository,
        repositories.get_reconcile_repository,
    ):
        repository.cache_clear()
    from tenant_billing.aws_clients import _session, dynamodb_client, secretsmanager_client, sqs_client
    from tenant_billing.event_queue import get_event_queue
    from tenant_billing.event_sync_logic import forget_read_pacer
    from tenant_billing.stripe_adapter import _adapter_for_key
    from tenant_billing.stripe_credentials import forget_stripe_credentials
    from tenant_billing.stripe_prices import resolve_lookup_keys

    dynamodb_client.cache_clear()
    secretsmanager_client.cache_clear()
    sqs_client.cache_clear()
    get_event_queue.cache_clear()
    forget_read_pacer()
    _session.cache_clear()
    forget_stripe_credentials()
    _adapter_for_key.cache_clear()
    resolve_lookup_keys.cache_clear()


@pytest.fixture(autouse=True)
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment template.yaml gives the functions, with fake AWS credentials."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "STRIPE_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "TABLE_NAME": TABLE_NAME,
        "STRIPE_SECRET_ARN": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{SECRET_NAME}",
        "APP_BASE_URL": "https://app.example.com",
        "EVENTS_QUEUE_URL": QUEUE_URL,
        # The consumer's pacing (10 ms a sync here): the budget's arithmetic is tested on its own.
        "STRIPE_READS_PER_SECOND": "100",
        "CONSUMER_CONCURRENCY": "1",
        **POWERTOOLS_ENV,
        **prices_env(TEST_PRICES),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    reset_caches()
    yield
    reset_caches()


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


@pytest.fixture(autouse=True)
def log_capture(
    request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[LogCapture]:
    """Across the whole suite: fails a test whose logs hold a Stripe key, a webhook secret, a bearer
    URL (Checkout, portal, hosted invoice), a card number or a webhook body it delivered
    (tests.support.webhook_events registers those).

    Powertools writes to the stdout it saw when created (above), which capsys never sees: LogCapture points
    Powertools' own handler at a buffer for the test. (Not checked when the test already failed:
    its own report says why.)"""
    clear_sensitive()
    capture = LogCapture(capsys, caplog)
    try:
        yield capture
        problems = scan(capture.text(), sensitive_texts())
    finally:
        capture.close()
    if not request.node.stash.get(CALL_FAILED, False):
        assert not problems, "the logs of this test leak: " + "; ".join(problems)

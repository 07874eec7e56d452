"""Robustness and security suite: faults at the client boundaries, fuzzing, tenant isolation and log
hygiene, against the real handlers (moto + the Stripe fake, as in tests/integration).

After every test the autouse `log_capture` fixture scans everything the test logged for keys,
webhook secrets, card numbers and raw webhook bodies. The terminal summary prints the counts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.conftest import SECRET_NAME, TABLE_NAME, reset_caches
from tests.integration.conftest import new_stripe_fake, stripe_talks_to
from tests.robustness.aws_faults import AwsFaultInjector
from tests.robustness.counts import COUNTS, JSON_PATH_ENV, LOG_SCANS, count, summary_line, write_json
from tests.robustness.support import WEBHOOK_SECRET, MotoEnvironment, clear_table
from tests.stripe_fake import TEST_API_KEY, FakeStripe
from tests.support.logscan import LogCapture
from tests.support.queue import create_queues, recreate_queues
from tests.support.template import create_table_from_template

HERE = Path(__file__).resolve().parent


# The same fixtures as tests/integration/conftest.py (table from template.yaml, the Stripe secret,
# the Stripe fake through the real SDK), except that one moto environment serves the whole package
# and each test starts from an emptied table: starting moto resets boto3's default session, and
# reloading the service models cost more than the tests themselves.


@pytest.fixture(scope="package")
def shared_botocore_loader() -> Iterator[None]:
    """Every botocore session of this package shares one model loader (read-only JSON files): the
    functions build new clients after every cache reset, and re-parsing the models is slow."""
    import botocore.loaders
    import botocore.session

    loaders: dict[Any, Any] = {}

    def create_loader(search_path_string: Any = None) -> Any:
        if search_path_string not in loaders:
            loaders[search_path_string] = botocore.loaders.create_loader(search_path_string)
        return loaders[search_path_string]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", create_loader)
        yield


@pytest.fixture(scope="package")
def moto_environment(shared_botocore_loader: None) -> Iterator[MotoEnvironment]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_table_from_template(dynamodb, TABLE_NAME)
        secretsmanager = boto3.client("secretsmanager", region_name="us-east-1")
        value = {"STRIPE_SECRET_KEY": TEST_API_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}
        arn: str = secretsmanager.create_secret(Name=SECRET_NAME, SecretString=json.dumps(value))["ARN"]
        create_queues()
        yield MotoEnvironment(dynamodb, secretsmanager, arn)


@pytest.fixture
def aws(moto_environment: MotoEnvironment) -> MotoEnvironment:
    recreate_queues()
    return moto_environment


@pytest.fixture
def dynamodb(aws: MotoEnvironment) -> Any:
    clear_table(aws.dynamodb)
    return aws.dynamodb


def moto_table_items() -> list[dict[str, Any]]:
    """Every item of the table, read from moto's own state: the same attribute maps a Scan returns
    (test_meta checks that), without moto's response serialization, which costs more than the
    handler call under test and would limit the number of fuzz cases."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(TABLE_NAME)
    return [item.to_json()["Attributes"] for item in table.all_items()]


@pytest.fixture
def table_items(dynamodb: Any) -> Callable[[], list[dict[str, Any]]]:
    return moto_table_items


@pytest.fixture
def stripe_secret(aws: MotoEnvironment, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STRIPE_SECRET_ARN", aws.secret_arn)
    reset_caches()
    return aws.secret_arn


@pytest.fixture
def stripe_fake() -> Iterator[FakeStripe]:
    with stripe_talks_to(new_stripe_fake()) as fake:
        yield fake


@pytest.fixture
def billing(dynamodb: Any, stripe_secret: str, stripe_fake: FakeStripe) -> FakeStripe:
    return stripe_fake


@pytest.fixture(autouse=True)
def _count_log_scans(log_capture: LogCapture) -> Iterator[None]:
    """Every test's logs are scanned by the suite-wide `log_capture` fixture (tests/conftest.py)."""
    yield
    count(LOG_SCANS)


@pytest.fixture
def aws_faults() -> Iterator[AwsFaultInjector]:
    injector = AwsFaultInjector()
    yield injector
    injector.clear()


def _robustness_failures(terminalreporter: pytest.TerminalReporter, prefix: str) -> tuple[int, int]:
    """(robustness reports seen, distinct robustness tests that failed or errored)."""
    seen, failed = 0, set()
    for category in ("passed", "failed", "error", "skipped", "xfailed", "xpassed"):
        for report in terminalreporter.stats.get(category, []):
            nodeid = getattr(report, "nodeid", "")
            if nodeid.startswith(prefix):
                seen += 1
                if category in ("failed", "error", "skipped", "xfailed", "xpassed"):
                    failed.add(nodeid)
    return seen, len(failed)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    try:
        prefix = HERE.relative_to(config.rootpath).as_posix() + "/"
    except ValueError:
        prefix = "tests/robustness/"
    seen, failed = _robustness_failures(terminalreporter, prefix)
    if not seen:
        return
    terminalreporter.write_sep("-", "robustness")
    terminalreporter.write_line(summary_line(COUNTS, failed))
    if path := os.environ.get(JSON_PATH_ENV):
        write_json(Path(path), COUNTS, failed)

"""The suite's own instruments: the fast table read, the fault injector and the counters."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tenant_billing.aws_clients import dynamodb_client
from tests.conftest import TABLE_NAME
from tests.robustness.aws_faults import AwsError, AwsFaultInjector
from tests.robustness.counts import FAULTS, FUZZ, ISOLATION, JSON_PATH_ENV, LOG_SCANS, summary_line, write_json
from tests.robustness.support import ORG_A, Items, call_status, subscribe
from tests.stripe_fake import FakeStripe


@pytest.mark.usefixtures("billing")
def test_the_fast_table_read_equals_a_scan(stripe_fake: FakeStripe, dynamodb: Any, table_items: Items) -> None:
    subscribe(stripe_fake, ORG_A)
    scanned = dynamodb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
    key = lambda item: (item["pk"]["S"], item["sk"]["S"])  # noqa: E731
    assert len(scanned) >= 5
    assert sorted(table_items(), key=key) == sorted(scanned, key=key)


@pytest.mark.usefixtures("dynamodb")
def test_an_injected_fault_fires_once_is_counted_and_is_removed(aws_faults: AwsFaultInjector) -> None:
    aws_faults.fail(dynamodb_client(), "Query", AwsError("ThrottlingException"), times=2)
    assert [call_status().status for _ in range(3)] == [503, 503, 200]
    assert aws_faults.fired == Counter({"Query": 2})
    aws_faults.fail(dynamodb_client(), "Query", AwsError("ThrottlingException"), times=5)
    aws_faults.clear()
    assert call_status().status == 200


def test_the_summary_line_and_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counts = {FUZZ: 1234, FAULTS: 56, ISOLATION: 78, LOG_SCANS: 9}
    assert summary_line(counts, 0) == (
        "robustness: 1234 fuzz cases, 56 faults injected, 78 isolation checks, 9 log scans, all passing"
    )
    assert summary_line(counts, 2).endswith("2 not passing")
    target = tmp_path / "counts.json"
    write_json(target, counts, 0)
    assert json.loads(target.read_text()) == {
        "fuzz_cases": 1234,
        "faults_injected": 56,
        "isolation_checks": 78,
        "log_scans": 9,
        "failed": 0,
        "all_passing": True,
    }
    assert JSON_PATH_ENV == "ROBUSTNESS_COUNTS_JSON"

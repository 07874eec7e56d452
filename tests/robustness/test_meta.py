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
from tests.robustness.support import (
    ORG_A,
    Items,
    call_change,
    call_status,
    delivery_status,
    fail_from_next,
    stripe_fault_count,
    subscribe_synced,
    with_query,
)
from tests.stripe_fake import FakeStripe
from tests.support.flows import subscribe


@pytest.mark.usefixtures("billing")
def test_the_fast_table_read_equals_a_scan(stripe_fake: FakeStripe, dynamodb: Any, table_items: Items) -> None:
    subscribe(stripe_fake, ORG_A, deliver_with=delivery_status)
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


def test_a_query_string_arrives_as_api_gateway_delivers_it() -> None:
    """Payload 2.0: the raw string as sent, and the decoded parameters with repeated names joined."""
    event = with_query({}, [("plan", "pro"), ("siteQuantity", "1"), ("plan", "enterprise"), ("x y", "ü&")])
    assert event["rawQueryString"] == "plan=pro&siteQuantity=1&plan=enterprise&x+y=%C3%BC%26"
    assert event["queryStringParameters"] == {"plan": "pro,enterprise", "siteQuantity": "1", "x y": "ü&"}
    assert "queryStringParameters" not in with_query(event, [])


@pytest.mark.usefixtures("billing")
def test_a_stripe_fault_armed_for_one_method_spares_the_other(stripe_fake: FakeStripe) -> None:
    """fail_from_next: the read of a subscription goes through, its update fails (and is counted)."""
    tenant = subscribe_synced(stripe_fake, ORG_A)
    path = f"/v1/subscriptions/{tenant.subscription_id}"
    first = len(stripe_fake.requests)
    fail_from_next(stripe_fake, "POST", path, 3, status=500)
    assert call_change({"plan": "enterprise"}).code == "stripe_unavailable"
    assert [(r.method, r.fault) for r in stripe_fake.requests[first:]] == [("GET", None)] + [("POST", "status_500")] * 3
    assert stripe_fault_count(stripe_fake, first) == 3
    assert "handle" not in vars(stripe_fake)  # disarmed
    assert call_change({"plan": "enterprise"}).status == 200

"""tenant_billing.observability: Powertools' Logger, Metrics and Tracer created on first use, and
what they log, flush and trace once created is what Powertools' own decorators give."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging import correlation_paths

from tenant_billing.observability import (
    API_GATEWAY_HTTP_REQUEST_ID,
    LazyLogger,
    LazyMetrics,
    LazyTracer,
    _cold_start,
    tracing_disabled,
)
from tests.support.logscan import LogCapture
from tests.support.template import REPO_ROOT


class Context:
    function_name = "billing-status"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:billing-status"
    aws_request_id = "req-1"


EVENT = {"requestContext": {"requestId": "corr-1"}}


def run_isolated(code: str, **environment: str) -> list[str]:
    """`code` in a fresh interpreter (the layer on its path): what it prints, split."""
    env = {"PYTHONPATH": str(REPO_ROOT / "layers/common"), "PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run([sys.executable, "-c", code], env={**env, **environment}, capture_output=True, text=True, check=True)
    return done.stdout.split()


HANDLER = """
import sys
from tenant_billing.observability import logger, metrics, tracer

@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    logger.append_keys(org_id="org_1")
    return traced_step()

@tracer.capture_method
def traced_step():
    return "done"

class Context:
    function_name, function_version, memory_limit_in_mb = "f", "$LATEST", 128
    invoked_function_arn, aws_request_id = "arn:aws:lambda:us-east-1:1:function:f", "r"

loaded = lambda: ",".join(str(name in sys.modules) for name in ("aws_lambda_powertools", "aws_xray_sdk.core"))
"""


def test_a_request_that_logs_and_measures_nothing_with_tracing_off_never_imports_powertools() -> None:
    code = HANDLER + "print(loaded()); print(handler({}, Context())); print(loaded())"
    assert run_isolated(code, POWERTOOLS_TRACE_DISABLED="true") == ["False,False", "done", "False,False"]


def test_with_tracing_on_the_first_call_creates_powertools_tracer_with_the_xray_sdk() -> None:
    code = (
        HANDLER
        + "print(loaded()); handler({}, Context()); created = tracer._tracer.value\n"
        + "print(loaded(), type(created).__name__, created.disabled)"
    )
    # Lambda's environment: the X-Ray SDK then sends to the daemon's address (UDP, nothing listens).
    lambda_env = {
        "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_LAMBDA_FUNCTION_NAME": "f",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    }
    assert run_isolated(code, POWERTOOLS_TRACE_DISABLED="false", **lambda_env) == ["False,False", "True,True", "Tracer", "False"]


def test_the_first_log_line_creates_the_logger_with_what_inject_lambda_context_would_have_set(log_capture: LogCapture) -> None:
    lazy, reference = LazyLogger(), Logger()

    @lazy.inject_lambda_context(correlation_id_path=API_GATEWAY_HTTP_REQUEST_ID, clear_state=True)
    def ours(event: Any, context: Any) -> None:
        lazy.append_keys(org_id="org_1", dropped="x")
        lazy.remove_keys(["dropped"])
        assert not lazy.created
        lazy.info("hello", extra={"plan": "pro"})

    @reference.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
    def theirs(event: Any, context: Any) -> None:
        reference.append_keys(org_id="org_1")
        reference.info("hello", extra={"plan": "pro"})

    ours(EVENT, Context())
    theirs(EVENT, Context())
    mine, powertools = log_capture.powertools_lines()[-2:]
    # The same keys and values, but the time; the location is the caller's line in both.
    assert {k: v for k, v in mine.items() if k not in ("timestamp", "location", "cold_start")} == {
        k: v for k, v in powertools.items() if k not in ("timestamp", "location", "cold_start")
    }
    assert mine["correlation_id"] == "corr-1" and mine["org_id"] == "org_1" and "dropped" not in mine
    assert mine["location"].startswith("ours:") and powertools["location"].startswith("theirs:")
    assert API_GATEWAY_HTTP_REQUEST_ID == correlation_paths.API_GATEWAY_HTTP


def test_a_created_logger_gets_each_invocation_s_context_and_clears_the_last_one_s_keys(
    log_capture: LogCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_cold_start, "_first", True)
    lazy = LazyLogger()

    @lazy.inject_lambda_context(clear_state=True)
    def handler(event: Any, context: Any) -> None:
        lazy.info("call", extra={"n": event["n"]})
        lazy.append_keys(event_id=f"evt_{event['n']}")

    handler({"n": 1}, Context())
    handler({"n": 2}, Context())
    first, second = log_capture.powertools_lines()[-2:]
    assert (first["cold_start"], second["cold_start"]) == (True, False)
    assert second["function_request_id"] == "req-1" and "event_id" not in second


def test_metrics_are_flushed_only_when_one_was_added(capsys: pytest.CaptureFixture[str]) -> None:
    lazy = LazyMetrics()
    handler = lazy.log_metrics(lambda event, context: "ok")
    assert handler({}, Context()) == "ok" and not lazy.created

    def measured(event: Any, context: Any) -> str:
        lazy.add_metric(name="PortalSessionCreated", unit="Count", value=1)
        return "ok"

    capsys.readouterr()
    lazy.log_metrics(measured)({}, Context())
    (emf,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emf["PortalSessionCreated"] == [1.0] or emf["PortalSessionCreated"] == 1.0
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "SaaSBillingTest"


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"LAMBDA_TASK_ROOT": "/var/task"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false", "AWS_SAM_LOCAL": "true"},
    ],
)
def test_tracing_is_on_exactly_where_powertools_would_trace(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert tracing_disabled() == bool(Tracer._is_tracer_disabled())
    assert LazyTracer().enabled is not tracing_disabled()


def test_threads_logging_their_first_line_together_create_one_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    import logging
    import threading

    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "billing-threads")
    lazy = LazyLogger()
    barrier = threading.Barrier(8)
    created: list[object] = []

    def first_line() -> None:
        barrier.wait()
        created.append(lazy.powertools())

    threads = [threading.Thread(target=first_line) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(logger) for logger in created}) == 1
    assert len(logging.getLogger("billing-threads").handlers) == 1

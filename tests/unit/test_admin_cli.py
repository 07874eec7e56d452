"""`python -m functions.admin` against a deployed stack: it finds the stack's function, invokes it
once with the caller's credentials and prints its answer; refusals and failures exit 1."""

from __future__ import annotations

import io
import json
from typing import Any, cast

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from functions.admin import __main__ as admin


class StubbedSession:
    """boto3.Session whose clients answer from Stubbers (and record the Config the CLI gives)."""

    def __init__(self, answers: dict[str, list[tuple[str, dict[str, Any], dict[str, Any]]]]) -> None:
        self.stubbers: list[Stubber] = []
        self.configs: dict[str, Any] = {}
        self._clients: dict[str, Any] = {}
        for service, calls in answers.items():
            # Typed per service by boto3-stubs overloads; any service name is fine here.
            client = cast(Any, boto3).client(service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
            stubber = Stubber(client)
            for operation, response, expected in calls:
                stubber.add_response(operation, response, expected)
            stubber.activate()
            self.stubbers.append(stubber)
            self._clients[service] = client

    def __call__(self, region_name: str | None = None) -> StubbedSession:
        return self

    def client(self, service: str, config: Any = None) -> Any:
        self.configs[service] = config
        return self._clients[service]


def payload(body: Any) -> StreamingBody:
    raw = json.dumps(body).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def stack_resource(logical_id: str, physical_id: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    detail = {
        "LogicalResourceId": logical_id,
        "PhysicalResourceId": physical_id,
        "ResourceType": "AWS::Lambda::Function",
        "LastUpdatedTimestamp": "2026-12-01T00:00:00Z",
        "ResourceStatus": "UPDATE_COMPLETE",
    }
    return (
        "describe_stack_resource",
        {"StackResourceDetail": detail},
        {"StackName": "billing-prod", "LogicalResourceId": logical_id},
    )


def test_a_command_invokes_the_stacks_admin_function_once_and_prints_its_result(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent = json.dumps({"command": "show", "orgId": "org_acme"}).encode()
    session = StubbedSession(
        {
            "cloudformation": [stack_resource("BillingAdminFunction", "billing-prod-Admin-1")],
            "lambda": [
                (
                    "invoke",
                    {"StatusCode": 200, "Payload": payload({"result": {"org_id": "org_acme", "differences": []}})},
                    {"FunctionName": "billing-prod-Admin-1", "Payload": sent},
                )
            ],
        }
    )
    monkeypatch.setattr(boto3, "Session", session)
    assert admin.main(["--stack", "billing-prod", "show", "org_acme"]) == 0
    assert json.loads(capsys.readouterr().out) == {"org_id": "org_acme", "differences": []}
    for stubber in session.stubbers:
        stubber.assert_no_pending_responses()
    config = session.configs["lambda"]
    assert config.retries == {"total_max_attempts": 1}
    assert config.read_timeout >= 900


def test_reconcile_invokes_the_reconcile_function_itself(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    session = StubbedSession(
        {
            "cloudformation": [stack_resource("BillingReconcileFunction", "billing-prod-Reconcile-1")],
            "lambda": [
                (
                    "invoke",
                    {"StatusCode": 200, "Payload": payload({"outcome": "completed", "repaired": 2})},
                    {"FunctionName": "billing-prod-Reconcile-1", "Payload": b"{}"},
                )
            ],
        }
    )
    monkeypatch.setattr(boto3, "Session", session)
    assert admin.main(["--stack", "billing-prod", "reconcile"]) == 0
    assert json.loads(capsys.readouterr().out) == {"outcome": "completed", "repaired": 2}


def test_a_refused_command_prints_its_code_and_field_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    refusal = {"error": {"code": "not_linked", "message": "org_x has no Stripe customer", "field": "orgId", "retryable": False}}
    session = StubbedSession(
        {
            "cloudformation": [stack_resource("BillingAdminFunction", "fn")],
            "lambda": [
                (
                    "invoke",
                    {"StatusCode": 200, "Payload": payload(refusal)},
                    {"FunctionName": "fn", "Payload": b'{"command": "resync", "orgId": "org_x"}'},
                )
            ],
        }
    )
    monkeypatch.setattr(boto3, "Session", session)
    assert admin.main(["--stack", "billing-prod", "resync", "org_x"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "not_linked (orgId): org_x has no Stripe customer" in captured.err


def test_a_function_error_exits_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    crash = {"errorType": "Runtime.ExitError", "errorMessage": "exited"}
    session = StubbedSession(
        {
            "cloudformation": [stack_resource("BillingAdminFunction", "fn")],
            "lambda": [
                (
                    "invoke",
                    {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": payload(crash)},
                    {"FunctionName": "fn", "Payload": b'{"command": "problems"}'},
                )
            ],
        }
    )
    monkeypatch.setattr(boto3, "Session", session)
    assert admin.main(["--stack", "billing-prod", "problems"]) == 1
    assert "BillingAdminFunction failed: Runtime.ExitError" in capsys.readouterr().err

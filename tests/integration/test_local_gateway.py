"""The local gateway builds the events API Gateway and Function URLs build, checks tokens as the
JWT authorizer does, and applies the template's CORS settings."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from typing import Any

import pytest

from functions.local_stack.dev_tokens import (
    LOCAL_AUDIENCE,
    LOCAL_ISSUER,
    TokenError,
    Verifier,
    gateway_claims,
    load_signing_key,
    mint,
)
from functions.local_stack.function_process import FunctionProcess
from functions.local_stack.gateway import ApiGateway, http_api_event, lambda_result_to_http
from functions.local_stack.queue_poller import sqs_record
from functions.local_stack.template_model import load_local_stack
from tests.support.api_events import EVENTS_DIR, load_event
from tests.support.template import REPO_ROOT

SAM = REPO_ROOT / ".venv-sam" / "bin" / "sam"
# Present in sam's sample, absent from API Gateway's events for our routes: mutual TLS is not
# configured, the routes have no path parameters, and HTTP APIs with $default stage have no
# stage variables.
ABSENT_FOR_OUR_ROUTES = {"authentication", "pathParameters", "stageVariables"}


def key_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: key_tree(item) for key, item in value.items()}
    return None


# Maps whose keys are request data (header, claim and parameter names), not event structure.
DATA_MAPS = {"headers", "claims", "queryStringParameters"}


def compare_keys(ours: dict[str, Any], reference: dict[str, Any], allowed_missing: set[str], path: str = "") -> list[str]:
    problems = [f"extra {path}{key}" for key in ours if key not in reference]
    for key, item in reference.items():
        if key not in ours:
            if key not in allowed_missing:
                problems.append(f"missing {path}{key}")
        elif isinstance(item, dict) and isinstance(ours[key], dict) and key not in DATA_MAPS:
            problems += compare_keys(ours[key], item, allowed_missing, f"{path}{key}.")
    return problems


def sam_generated_event(service: str, kind: str) -> dict[str, Any]:
    sam = str(SAM) if SAM.exists() else shutil.which("sam")
    assert sam, "the SAM CLI is installed by `make test` (.venv-sam)"
    output = subprocess.run(
        [sam, "local", "generate-event", service, kind],
        capture_output=True,
        text=True,
        check=True,
        env={"SAM_CLI_TELEMETRY": "0", "PATH": "/usr/bin:/bin", "HOME": str(REPO_ROOT)},
    ).stdout
    event: dict[str, Any] = json.loads(output)
    return event


@pytest.fixture(scope="module")
def sam_http_api_event() -> dict[str, Any]:
    return sam_generated_event("apigateway", "http-api-proxy")


def test_queue_records_have_the_keys_sam_generates() -> None:
    """The local SQS event source mapping's records (queue_poller) and the stored EventBridge events."""
    (reference,) = sam_generated_event("sqs", "receive-message")["Records"]
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "r1",
        "Body": "{}",
        "MD5OfBody": "99914b932bd37a50b983c5e7c90ae93b",
        "Attributes": reference["attributes"],
    }
    ours = sqs_record(message, "arn:aws:sqs:us-east-1:123456789012:StripeEventsQueue")
    assert compare_keys(key_tree(ours), key_tree(reference), set()) == []
    for path in EVENTS_DIR.glob("eventbridge_*.json"):
        (record,) = load_event(path.name)["Records"]
        assert compare_keys(key_tree(record), key_tree(reference), set()) == [], path.name


def test_gateway_events_have_the_keys_sam_generates(sam_http_api_event: dict[str, Any]) -> None:
    ours = http_api_event(
        "POST",
        "/billing/checkout",
        "a=1&a=2&b=3",
        {"Host": "localhost:3000", "Cookie": "c1=1; c2=2", "Content-Type": "application/json", "User-Agent": "test"},
        b'{"plan": "pro"}',
        {"org_id": "org_1"},
        "127.0.0.1",
    )
    assert compare_keys(key_tree(ours), key_tree(sam_http_api_event), ABSENT_FOR_OUR_ROUTES) == []
    assert ours["queryStringParameters"] == {"a": "1,2", "b": "3"}
    assert ours["cookies"] == ["c1=1", "c2=2"]
    assert ours["routeKey"] == ours["requestContext"]["routeKey"] == "POST /billing/checkout"


def test_the_stored_events_have_the_same_keys(sam_http_api_event: dict[str, Any]) -> None:
    # API Gateway leaves out cookies, query parameters and the body when a request has none.
    absent_when_empty = ABSENT_FOR_OUR_ROUTES | {"cookies", "queryStringParameters", "body"}
    api_events = [
        "status.json",
        "status_member.json",
        "status_no_claims.json",
        "checkout.json",
        "checkout_member.json",
        "portal.json",
        "subscription_preview.json",
        "subscription_change.json",
        "subscription_cancel.json",
        "subscription_resume.json",
        "invoices.json",
    ]
    for name in api_events:
        allowed = absent_when_empty | ({"authorizer"} if name == "status_no_claims.json" else set())
        assert compare_keys(key_tree(load_event(name)), key_tree(sam_http_api_event), allowed) == [], name


def test_bodies_are_base64_encoded_only_when_binary() -> None:
    text = http_api_event("POST", "/x", "", {"content-type": "application/json"}, b"{}", {}, "127.0.0.1")
    binary = http_api_event("POST", "/x", "", {"content-type": "application/octet-stream"}, b"\x00\x01", {}, "127.0.0.1")
    assert (text["body"], text["isBase64Encoded"]) == ("{}", False)
    assert (binary["body"], binary["isBase64Encoded"]) == ("AAE=", True)


def test_claims_are_rendered_as_api_gateway_renders_them() -> None:
    assert gateway_claims({"exp": 1700000000, "roles": ["a", "b"], "admin": True, "org_id": "o"}) == {
        "exp": "1700000000",
        "roles": "[a b]",
        "admin": "true",
        "org_id": "o",
    }


def test_the_authorizer_checks_signature_issuer_audience_and_expiry(tmp_path: Any) -> None:
    key = load_signing_key(tmp_path / "key.pem")
    other = load_signing_key(tmp_path / "other.pem")
    verifier = Verifier(key.public_key(), LOCAL_ISSUER, (LOCAL_AUDIENCE,))
    assert verifier.verify(mint(key, {"org_id": "org_1"}))["org_id"] == "org_1"
    for token in (
        mint(other, {"org_id": "org_1"}),
        mint(key, {"iss": "https://evil.example"}),
        mint(key, {"aud": "another-api"}),
        mint(key, {}, lifetime=-10),
        mint(key, {"nbf": int(time.time()) + 600}),
        "not.a.token",
        mint(key, {}).rsplit(".", 1)[0] + ".c2lnbmF0dXJl",
    ):
        with pytest.raises(TokenError):
            verifier.verify(token)


def test_results_are_translated_like_payload_format_2() -> None:
    assert lambda_result_to_http({"response": {"statusCode": 201, "headers": {"X-A": "1"}, "body": "hi"}}) == (
        201,
        {"x-a": "1"},
        b"hi",
    )
    assert lambda_result_to_http({"response": {"ok": True}}) == (200, {"content-type": "application/json"}, b'{"ok": true}')
    assert lambda_result_to_http({"error": "ValueError"})[0] == 500
    encoded = lambda_result_to_http({"response": {"statusCode": 200, "body": "aGk=", "isBase64Encoded": True}})
    assert encoded[2] == b"hi"


def gateway(tmp_path: Any) -> tuple[ApiGateway, Any]:
    stack = load_local_stack(
        {
            "AppBaseUrl": "http://localhost:3000",
            "CorsAllowedOrigins": "http://localhost:3000",
            "JwtIssuer": LOCAL_ISSUER,
            "JwtAudience": LOCAL_AUDIENCE,
        },
        {
            "BillingTable": "t",
            "StripeSecret": "arn:aws:secretsmanager:us-east-1:000000000000:secret:s",
            "StripeEventsQueue": "http://127.0.0.1:1/000000000000/q",
            "CommonLayer": "l",
            "EntitlementsEventBus": "bus",
        },
    )
    key = load_signing_key(tmp_path / "key.pem")
    processes = {logical_id: FunctionProcess(spec, {}) for logical_id, spec in stack.functions.items()}
    return ApiGateway(stack, processes, Verifier(key.public_key(), LOCAL_ISSUER, (LOCAL_AUDIENCE,)), dict, REPO_ROOT / "x"), key


def test_routes_and_function_urls_come_from_the_template(tmp_path: Any) -> None:
    api, _ = gateway(tmp_path)
    assert api.stack.route("GET", "/billing/status") is not None
    assert api.stack.route("POST", "/billing/checkout") is not None
    assert api.stack.route("POST", "/billing/portal") is not None
    assert api.stack.route("GET", "/billing/checkout") is None
    assert [function.logical_id for function in api.stack.url_functions()] == ["StripeWebhookFunction"]
    status = api.stack.functions["BillingStatusFunction"]
    assert status.environment["TABLE_NAME"] == "t"
    assert status.environment["APP_BASE_URL"] == "http://localhost:3000"
    assert "ALLOW_PROMOTION_CODES" not in status.environment
    assert api.stack.functions["BillingCheckoutFunction"].environment["ALLOW_PROMOTION_CODES"] == "false"


def test_no_token_or_a_bad_token_is_401_before_any_function_runs(tmp_path: Any) -> None:
    api, _ = gateway(tmp_path)
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        status, _, body = api.handle("GET", "/billing/status", "", headers, b"", "127.0.0.1")
        assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})
    assert all(process._process is None for process in api.processes.values())


def test_cors_follows_the_template(tmp_path: Any) -> None:
    api, _ = gateway(tmp_path)
    preflight = {
        "Origin": "http://localhost:3000",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    status, headers, _ = api.handle("OPTIONS", "/billing/checkout", "", preflight, b"", "127.0.0.1")
    assert status == 204
    assert headers["access-control-allow-origin"] == "http://localhost:3000"
    assert set(headers["access-control-allow-headers"].split(",")) == {"authorization", "content-type"}
    assert "POST" in headers["access-control-allow-methods"]
    status, headers, _ = api.handle(
        "OPTIONS", "/billing/checkout", "", {**preflight, "Origin": "https://evil.example"}, b"", "127.0.0.1"
    )
    assert status == 204 and "access-control-allow-origin" not in headers
    _, headers, _ = api.handle("GET", "/billing/status", "", {"Origin": "http://localhost:3000"}, b"", "127.0.0.1")
    assert headers["access-control-allow-origin"] == "http://localhost:3000"


def test_the_demo_page_and_the_openapi_document_are_served(tmp_path: Any) -> None:
    api, _ = gateway(tmp_path)
    status, headers, body = api.handle("GET", "/openapi.json", "", {}, b"", "127.0.0.1")
    assert (status, headers["content-type"]) == (200, "application/json")
    assert body == (REPO_ROOT / "functions" / "openapi.json").read_bytes()
    status, headers, body = api.handle("GET", "/", "", {}, b"", "127.0.0.1")
    assert (status, headers["content-type"]) == (200, "text/html")
    assert b"/static/app.js" in body
    # The document is not among the demo page's static files any more.
    assert api.handle("GET", "/static/openapi.json", "", {}, b"", "127.0.0.1")[0] == 404


def test_the_local_invoke_runs_only_what_a_person_or_a_schedule_invokes_and_never_from_a_page(tmp_path: Any) -> None:
    api, _ = gateway(tmp_path)
    directly = {logical_id for logical_id, function in api.stack.functions.items() if function.directly_invoked}
    assert directly == {"BillingAdminFunction", "BillingReconcileFunction"}
    json_headers = {"Content-Type": "application/json"}
    # An API function (its authorizer would be skipped), the queue's consumer and the stream's
    # publisher (a made-up record would be a forged event), the webhook: none exists here.
    for logical_id in (
        "BillingCheckoutFunction",
        "EventSyncFunction",
        "EntitlementEventsFunction",
        "StripeWebhookFunction",
        "Nope",
    ):
        status, _, _ = api.handle("POST", f"/_local/invoke/{logical_id}", "", json_headers, b"{}", "127.0.0.1")
        assert status == 404, logical_id
    # A web page in the developer's browser: refused whatever it sends, before the function runs.
    page = {"Content-Type": "application/json", "Origin": "https://evil.example"}
    assert api.handle("POST", "/_local/invoke/BillingAdminFunction", "", page, b'{"command": "problems"}', "127.0.0.1")[0] == 403
    form = {"Content-Type": "text/plain"}
    assert api.handle("POST", "/_local/invoke/BillingAdminFunction", "", form, b'{"command": "problems"}', "127.0.0.1")[0] == 415
    assert api.handle("POST", "/_local/invoke/BillingAdminFunction", "", json_headers, b"{not json", "127.0.0.1")[0] == 400
    assert all(process._process is None for process in api.processes.values()), "no function process was started"


def test_a_function_process_is_out_of_reach_of_the_terminals_ctrl_c(tmp_path: Any) -> None:
    """The terminal's Ctrl-C goes to the stack's process group; a worker starting then (a webhook
    delivery) would die in its interpreter's start-up with a traceback. Workers have their own
    group, and the stack stops them."""
    import os
    import signal

    api, _ = gateway(tmp_path)
    process = api.processes["StripeWebhookFunction"]
    process.invoke({"requestContext": {"http": {"method": "GET"}}})
    worker = process._process
    assert worker is not None and os.getpgid(worker.pid) == worker.pid != os.getpgid(0)
    process.stop()
    assert worker.poll() is not None and worker.returncode == -signal.SIGTERM

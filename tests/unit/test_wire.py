"""`wire` reads requests without pydantic; here it is held to the pydantic models the OpenAPI
document is generated from: for any document, both accept it with the same values, or both
refuse it and the first error is the same code on the same field."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tenant_billing import api_models
from tenant_billing.errors import InvalidRequestError
from tenant_billing.records import is_record, record_fields
from tenant_billing.wire import read_model, to_wire, wire_fields
from tests.support.pydantic_models import pydantic_model
from tests.support.template import handler_modules

BODY_MODELS = [
    api_models.PlanSelection,
    api_models.PlanChange,
    api_models.CancelRequest,
    api_models.PortalRequest,
    api_models.SyncRequest,
    api_models.ResumeRequest,
]
QUERY_MODELS = [api_models.PlanSelection, api_models.InvoicesQuery]
NAMES = ["plan", "siteQuantity", "site_quantity", "previewId", "immediately", "limit", "cursor", "extra", ""]
# Lengths around every max_length of the models.
TEXTS = st.one_of(
    st.text(max_size=8),
    st.sampled_from([64, 65, 512, 513]).map(lambda n: "x" * n),
    st.sampled_from(["pro", "starter", "enterprise", "3", "true", ""]),
)
JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    TEXTS,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
QUERY_TEXTS = st.one_of(
    TEXTS,
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.sampled_from(["5.0", "5.", "5.5", " 7 ", "+3", "-0", "1_000", "1__0", "_1", "0x10", "1e3", "٣", "\u00a05", "\t5\n", "05"]),
)


def pydantic_verdict(model: type[Any], document: dict[str, Any], *, query: bool) -> tuple[str, Any]:
    """("ok", field values) or ("error", (code, field)) as the API answered pydantic's first error."""
    try:
        parsed = pydantic_model(model, strict=not query).model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])[:128]
        code = {"extra_forbidden": "unknown_field", "missing": "missing_field"}.get(error["type"], "invalid_field")
        return "error", (code, field)
    return "ok", parsed.model_dump()


def wire_verdict(model: type[Any], document: dict[str, Any], *, query: bool) -> tuple[str, Any]:
    try:
        parsed = read_model(model, document, query=query)
    except InvalidRequestError as exc:
        return "error", (exc.code, exc.field)
    return "ok", dataclasses.asdict(parsed)


@pytest.mark.parametrize("model", BODY_MODELS, ids=lambda model: model.__name__)
@settings(max_examples=300, deadline=None)
@given(document=st.dictionaries(st.one_of(st.sampled_from(NAMES), st.text(max_size=4)), JSON_VALUES, max_size=4))
@example(document={"plan": "pro", "siteQuantity": True})
@example(document={"plan": "pro", "siteQuantity": 2.0})
@example(document={"plan": "x" * 65})
@example(document={"site_quantity": 1})
@example(document={"immediately": 1})
@example(document={"previewId": None, "plan": "pro"})
def test_bodies_are_read_as_pydantic_reads_them(model: type[Any], document: dict[str, Any]) -> None:
    assert wire_verdict(model, document, query=False) == pydantic_verdict(model, document, query=False)


@pytest.mark.parametrize("model", QUERY_MODELS, ids=lambda model: model.__name__)
@settings(max_examples=300, deadline=None)
@given(parameters=st.dictionaries(st.sampled_from(NAMES), QUERY_TEXTS, max_size=3))
@example(parameters={"limit": "5.0"})
@example(parameters={"limit": " 100 "})
@example(parameters={"limit": "101"})
@example(parameters={"plan": "pro", "siteQuantity": "1_0"})
def test_query_strings_are_read_as_pydantic_reads_them(model: type[Any], parameters: dict[str, str]) -> None:
    assert wire_verdict(model, parameters, query=True) == pydantic_verdict(model, parameters, query=True)


def test_a_response_is_written_as_its_pydantic_model_serializes_it() -> None:
    status = api_models.BillingStatusResponse(
        configured=True,
        subscription=api_models.SubscriptionView(
            plan="pro",
            status="active",
            site_quantity=2,
            current_period_end="2026-12-31T00:00:00Z",
            cancel_at_period_end=False,
            pending_change=api_models.PendingChangeView(plan="enterprise", site_quantity=4, expires_at=None),
        ),
        entitlement=api_models.EntitlementView(features=["a", "b"], limits={"sites": 3}),
        has_stripe_customer=True,
    )
    written = to_wire(status)
    model = pydantic_model(api_models.BillingStatusResponse)
    assert model.model_validate(written).model_dump(mode="json") == written
    assert written["subscription"]["pendingChange"] == {"plan": "enterprise", "siteQuantity": 4, "expiresAt": None}


@pytest.mark.parametrize("model", [value for value in vars(api_models).values() if is_record(value)])
def test_every_field_has_a_type_wire_handles(model: type[Any]) -> None:
    # Resolving the annotations is what the first request of a route does.
    assert [field.name for field in wire_fields(model)] == [field.name for field in record_fields(model)]


HANDLER_MODULES = handler_modules()
# What importing a handler must not pay for: pydantic, Powertools (created on first use, by the
# first log line, metric or traced call: tenant_billing.observability), the asyncio its API resolver
# would import, boto3 (botocore is the floor), the X-Ray SDK when tracing is off.
NOT_ON_THE_REQUEST_PATH = [
    "pydantic",
    "aws_lambda_powertools",
    "boto3",
    "asyncio",
    "aws_xray_sdk.core",
]
# The Stripe SDK imports asyncio (for its async HTTP clients): the functions that call Stripe pay for
# it whatever handler they have.
ALLOWED = {
    module: {"asyncio"}
    for module in (
        "checkout_handler",
        "portal_handler",
        "sync_handler",
        "subscription_handler",
        "invoices_handler",
        "event_sync_handler",
        "reconcile_handler",
        "billing_admin_handler",
    )
}


@pytest.mark.parametrize("module", HANDLER_MODULES)
def test_a_handler_imports_nothing_heavy_beyond_botocore(module: str) -> None:
    unwanted = [name for name in NOT_ON_THE_REQUEST_PATH if name not in ALLOWED.get(module, set())]
    code = f"import sys; import {module}; print([name for name in {unwanted!r} if name in sys.modules])"
    environment = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true", "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True)
    assert result.stdout.strip() == "[]", result.stdout

"""`python -m functions.admin` against `make dev`, as an operator runs it: the local stack's own
functions answer, through its stand-in for `lambda:InvokeFunction`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tenant_billing.catalog import get_catalog
from tests.stripe_fake import TEST_API_KEY
from tests.support.template import REPO_ROOT


def admin(
    pytestconfig: pytest.Config, gateway: str | None, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**(env or os.environ), "PYTHONPATH": os.pathsep.join(str(root) for root in pytestconfig.getini("pythonpath"))}
    target = ["--local", gateway] if gateway else []
    return subprocess.run(
        [sys.executable, "-m", "functions.admin", *target, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_operator_commands_run_against_make_dev(pytestconfig: pytest.Config, dev_stack: dict[str, Any]) -> None:
    gateway = dev_stack["gateway"]
    problems = admin(pytestconfig, gateway, "problems")
    assert (problems.returncode, json.loads(problems.stdout)) == (0, []), problems.stderr
    shown = admin(pytestconfig, gateway, "show", "org_demo")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {
        "org_id": "org_demo",
        "customer_id": None,
        "stored": {"subscription": None, "entitlement": None},
        "stripe": None,
        "differences": [],
    }
    reconciled = admin(pytestconfig, gateway, "reconcile")
    assert reconciled.returncode == 0, reconciled.stderr
    assert json.loads(reconciled.stdout)["outcome"] == "completed"


def test_a_refused_operator_command_says_why_and_exits_1(pytestconfig: pytest.Config, dev_stack: dict[str, Any]) -> None:
    refused = admin(pytestconfig, dev_stack["gateway"], "resync", "org_demo")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert "error: not_linked (orgId): org_demo has no Stripe customer" in refused.stderr
    missing = admin(pytestconfig, dev_stack["gateway"], "replay", "evt_missing")
    assert missing.returncode == 1 and "event_not_found" in missing.stderr


def test_without_make_dev_the_command_says_to_start_it(pytestconfig: pytest.Config) -> None:
    result = admin(pytestconfig, "http://127.0.0.1:9", "problems")
    assert result.returncode == 1
    assert "start it with `make dev`" in result.stderr


def test_the_catalog_bootstrap_creates_the_catalog_in_the_emulator_once(
    pytestconfig: pytest.Config, dev_stack: dict[str, Any]
) -> None:
    env = {**os.environ, "STRIPE_SECRET_KEY": TEST_API_KEY}
    first = admin(pytestconfig, None, "bootstrap-catalog", "--api-base", dev_stack["stripe"], env=env)
    assert first.returncode == 0, first.stderr
    prices = json.loads(first.stdout.splitlines()[-1])
    assert set(prices) == set(get_catalog().price_names())
    assert all(set(value) == {"lookupKey"} for value in prices.values())
    again = admin(pytestconfig, None, "bootstrap-catalog", "--api-base", dev_stack["stripe"], env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == first.stdout.splitlines()[-1]
    assert "created" not in again.stdout and "replaced" not in again.stdout
    assert TEST_API_KEY not in first.stdout + first.stderr + again.stdout + again.stderr

from __future__ import annotations

import pytest

from tenant_billing.errors import ConfigurationError
from tenant_billing.settings import get_settings


def test_defaults_and_derived_urls() -> None:
    settings = get_settings()
    assert settings.TENANT_CLAIM == "org_id"
    assert settings.ROLE_CLAIM == "org_role"
    assert {"owner", "admin"} == settings.ADMIN_ROLES
    assert settings.success_url == "https://app.example.com/app/settings?billing=success"
    assert settings.cancel_url == "https://app.example.com/app/billing?billing=canceled"
    assert settings.portal_return_url == "https://app.example.com/app/billing"
    assert settings.price_ids["STRIPE_PRICE_PRO_SITE"] == "price_pro_site"


def test_validated_once_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_settings()
    monkeypatch.setenv("TABLE_NAME", "another-table")
    assert get_settings() is first


def test_missing_table_name_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TABLE_NAME")
    with pytest.raises(ConfigurationError, match="TABLE_NAME"):
        get_settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ALLOW_PROMOTION_CODES", "maybe"),
        ("APP_BASE_URL", "app.example.com"),
        ("PAST_DUE_ENTITLEMENTS", "sometimes"),
        ("STRIPE_MAX_NETWORK_RETRIES", "-1"),
        ("STRIPE_SECRET_MAX_AGE_SECONDS", "soon"),
    ],
)
def test_malformed_variables_are_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        get_settings()


def test_admin_roles_and_custom_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_ROLES", " billing , owner ,")
    monkeypatch.setenv("APP_BASE_URL", "https://app.example.com/")
    monkeypatch.setenv("CHECKOUT_SUCCESS_URL", "https://app.example.com/thanks")
    settings = get_settings()
    assert {"billing", "owner"} == settings.ADMIN_ROLES
    assert settings.portal_return_url == "https://app.example.com/app/billing"
    assert settings.success_url == "https://app.example.com/thanks"


def test_empty_price_variables_are_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_PRICE_PRO_SITE", "")
    assert "STRIPE_PRICE_PRO_SITE" not in get_settings().price_ids


def test_tracing_off_uses_the_noop_provider_and_on_uses_xray() -> None:
    import subprocess
    import sys

    from tests.support.template import REPO_ROOT

    code = (
        "import sys\n"
        "from tenant_billing.observability import tracer\n"
        "print(type(tracer.provider).__name__, 'aws_xray_sdk.core' in sys.modules)\n"
    )
    base = {"PYTHONPATH": str(REPO_ROOT / "layers/common"), "PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"}
    off = {**base, "POWERTOOLS_TRACE_DISABLED": "true"}
    on = {**base, "LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}
    results = [
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split()
        for env in (off, on)
    ]
    assert results[0] == ["NoopTracingProvider", "False"]
    assert results[1][1] == "True" and results[1][0] != "NoopTracingProvider"

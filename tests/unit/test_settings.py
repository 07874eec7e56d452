from __future__ import annotations

import pytest

from tenant_billing.errors import ConfigurationError
from tenant_billing.settings import get_settings
from tests.conftest import configure_prices


def test_defaults_and_derived_urls() -> None:
    settings = get_settings()
    assert settings.TENANT_CLAIM == "org_id"
    assert settings.ROLE_CLAIM == "org_role"
    assert {"owner", "admin"} == settings.ADMIN_ROLES
    assert settings.success_url == "https://app.example.com/app/settings?billing=success"
    assert settings.cancel_url == "https://app.example.com/app/billing?billing=canceled"
    assert settings.portal_return_url == "https://app.example.com/app/billing"
    assert settings.STRIPE_PRICES["pro_site"].price_id == "price_pro_site"


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


def test_admin_roles_and_a_base_url_with_a_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_ROLES", " billing , owner ,")
    monkeypatch.setenv("APP_BASE_URL", "https://app.example.com/")
    settings = get_settings()
    assert {"billing", "owner"} == settings.ADMIN_ROLES
    assert settings.portal_return_url == "https://app.example.com/app/billing"
    assert settings.success_url == "https://app.example.com/app/settings?billing=success"


def test_prices_left_out_are_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_prices(monkeypatch, without=("pro_site",))
    assert "pro_site" not in get_settings().STRIPE_PRICES


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


def test_prices_are_one_json_object_of_ids_and_lookup_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_prices(monkeypatch, {"pro_base": {"lookupKey": "pro_monthly"}})
    prices = get_settings().STRIPE_PRICES
    assert (prices["pro_base"].lookup_key, prices["pro_base"].price_id) == ("pro_monthly", "")
    assert (prices["starter_base"].price_id, prices["starter_base"].lookup_key) == ("price_starter_base", "")


@pytest.mark.parametrize("value", ["", "{}"])
def test_no_prices_is_empty(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("STRIPE_PRICES", value)
    assert get_settings().STRIPE_PRICES == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"pro_bsae": "price_1"}', "'pro_bsae' not in plans.json"),
        ('{"pro_base": "pro_monthly"}', "'pro_base': 'pro_monthly' is not a Stripe price id"),
        ('{"pro_base": {"lookupKey": ""}}', "'pro_base': expected a price id"),
        ('{"pro_base": {"lookup_key": "x"}}', "'pro_base': expected a price id"),
        ('{"pro_base": 7}', "'pro_base': expected a price id"),
        ('{"STRIPE_PRICE_PRO_BASE": "price_1"}', "'STRIPE_PRICE_PRO_BASE' is not a price name"),
        ('{"pro_base": "price_1", "pro_site": "price_1"}', "price_1 given to more than one price name"),
        ('["price_1"]', "expected a JSON object"),
        ("{pro_base: price_1}", "not JSON"),
    ],
)
def test_a_bad_price_entry_is_named(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    monkeypatch.setenv("STRIPE_PRICES", value)
    with pytest.raises(ConfigurationError, match="STRIPE_PRICES") as raised:
        get_settings()
    assert message in str(raised.value)


def test_lookup_keys_count_as_configured_without_the_stripe_sdk() -> None:
    """The status function decides `configured` from the environment: it never imports Stripe's SDK."""
    import subprocess
    import sys

    from tests.support.template import REPO_ROOT

    code = (
        "import sys\n"
        "from tenant_billing.catalog import get_catalog\n"
        "from tenant_billing.settings import get_settings\n"
        "from tenant_billing.status_logic import is_billing_configured\n"
        "print(is_billing_configured(get_settings(), get_catalog()), 'stripe' in sys.modules)\n"
    )
    prices = '{"starter_base": {"lookupKey": "s"}, "pro_base": {"lookupKey": "p"}, "enterprise_base": "price_e"}'
    env = {
        "PYTHONPATH": str(REPO_ROOT / "layers/common"),
        "PATH": "/usr/bin:/bin",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "TABLE_NAME": "billing",
        "STRIPE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s",
        "STRIPE_PRICES": prices,
    }
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "False"]

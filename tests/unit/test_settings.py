from __future__ import annotations

import dataclasses

import pytest

from tenant_billing.errors import ConfigurationError
from tenant_billing.settings import Settings, get_settings
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
    prices = (
        '{"starter_base": {"lookupKey": "s"}, "pro_base": {"lookupKey": "p"}, "enterprise_base": "price_e", '
        '"starter_base_yearly": {"lookupKey": "sy"}, "pro_base_yearly": "price_py", "enterprise_base_yearly": "price_ey"}'
    )
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


def settings_with(**variables: str) -> Settings:
    return Settings.from_environ({"TABLE_NAME": "billing", **variables})


def refusal(**variables: str) -> str:
    with pytest.raises(ConfigurationError) as raised:
        settings_with(**variables)
    return str(raised.value)


def test_every_bad_variable_is_named_at_once_and_the_rest_ignored() -> None:
    message = refusal(
        TABLE_NAME="ab",
        ALLOW_PROMOTION_CODES="maybe",
        APP_BASE_URL="app.example.com",
        CONSUMER_CONCURRENCY="0",
        STRIPE_TIMEOUT_SECONDS="soon",
        PAST_DUE_ENTITLEMENTS="sometimes",
        STRIPE_PRICES='{"pro_bsae": "price_1"}',
        ROLE_CLAIM="org_role",
        NOT_A_SETTING="whatever",
    )
    # In the order the fields are declared; a good or unknown variable is not mentioned.
    assert message.startswith("invalid environment: TABLE_NAME: must be at least 3 characters; STRIPE_TIMEOUT_SECONDS: ")
    named = [problem.split(":")[0] for problem in message.removeprefix("invalid environment: ").split("; ")]
    assert named == [
        "TABLE_NAME",
        "STRIPE_TIMEOUT_SECONDS",
        "STRIPE_PRICES",
        "APP_BASE_URL",
        "ALLOW_PROMOTION_CODES",
        "PAST_DUE_ENTITLEMENTS",
        "CONSUMER_CONCURRENCY",
    ]
    assert "STRIPE_PRICES: 'pro_bsae' not in plans.json" in message
    assert "ROLE_CLAIM" not in message and "NOT_A_SETTING" not in message


def test_a_missing_table_name_is_required_and_reported_with_the_others() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environ({"AUTOMATIC_TAX": "2"})
    assert str(raised.value) == (
        "invalid environment: TABLE_NAME: required; AUTOMATIC_TAX: must be true or false (also 1/0, yes/no, on/off)"
    )


def test_unset_variables_take_their_defaults() -> None:
    settings = settings_with()
    assert settings.STRIPE_SECRET_MAX_AGE_SECONDS == 300 and settings.STRIPE_TIMEOUT_SECONDS == 8.0
    assert settings.STRIPE_PRICES == {} and settings.APP_BASE_URL == "http://localhost:3000"
    assert frozenset({"owner", "admin"}) == settings.ADMIN_ROLES and settings.PAST_DUE_ENTITLEMENTS == "plan"
    assert (settings.ALLOW_PROMOTION_CODES, settings.AUTOMATIC_TAX) == (False, False)
    assert settings.consumer_reads_per_second == 10
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.TABLE_NAME = "another"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(word, True) for word in ("true", "TRUE", "True", "1", "yes", "Yes", "on", "ON", "t", "y")]
    + [(word, False) for word in ("false", "FALSE", "0", "no", "NO", "off", "Off", "f", "n")],
)
def test_booleans_take_the_usual_words_in_any_case(value: str, expected: bool) -> None:
    assert settings_with(ALLOW_PROMOTION_CODES=value, AUTOMATIC_TAX=value).AUTOMATIC_TAX is expected


@pytest.mark.parametrize("value", ["", " true", "true ", "2", "-1", "1.0", "maybe", "enabled", "tru"])
def test_other_booleans_are_refused(value: str) -> None:
    assert refusal(AUTOMATIC_TAX=value) == "invalid environment: AUTOMATIC_TAX: must be true or false (also 1/0, yes/no, on/off)"


@pytest.mark.parametrize(
    ("value", "expected"), [("3", 3), (" 4 ", 4), ("+5", 5), ("05", 5), ("5.0", 5), ("1_000", 1000), ("0", 0)]
)
def test_integers_are_read_as_pydantic_read_them(value: str, expected: int) -> None:
    assert expected == settings_with(RECONCILE_TIME_MARGIN_MS=value).RECONCILE_TIME_MARGIN_MS


@pytest.mark.parametrize("value", ["", "abc", "true", "False", "5.5", "5.", "1e3", "0x10", "1__0", "٣", "2 3"])
def test_anything_else_is_not_an_integer(value: str) -> None:
    assert refusal(STRIPE_MAX_NETWORK_RETRIES=value) == "invalid environment: STRIPE_MAX_NETWORK_RETRIES: must be an integer"


@pytest.mark.parametrize(("value", "expected"), [("2", 2.0), (" 2.5 ", 2.5), (".5", 0.5), ("1e1", 10.0), ("6_0", 60.0)])
def test_numbers_are_read_as_pydantic_read_them(value: str, expected: float) -> None:
    assert expected == settings_with(STRIPE_TIMEOUT_SECONDS=value).STRIPE_TIMEOUT_SECONDS


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "must be a number"),
        ("", "must be a number"),
        ("true", "must be a number"),
        ("٣", "must be a number"),
        ("0", "must be greater than 0"),
        ("-1", "must be greater than 0"),
        ("nan", "must be greater than 0"),
        ("60.5", "must be at most 60"),
        ("inf", "must be at most 60"),
    ],
)
def test_numbers_out_of_range_or_not_numbers_are_refused(value: str, message: str) -> None:
    assert refusal(STRIPE_TIMEOUT_SECONDS=value) == f"invalid environment: STRIPE_TIMEOUT_SECONDS: {message}"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TABLE_NAME", "x" * 256, "must be at most 255 characters"),
        ("TENANT_CLAIM", "", "must not be empty"),
        ("EVENT_BUS_NAME", "", "must not be empty"),
        ("STRIPE_SECRET_MAX_AGE_SECONDS", "86401", "must be at most 86400"),
        ("STRIPE_MAX_NETWORK_RETRIES", "6", "must be at most 5"),
        ("CONSUMER_CONCURRENCY", "1001", "must be at most 1000"),
        ("RECONCILE_TIME_MARGIN_MS", "-1", "must be at least 0"),
        ("RECONCILE_LEASE_SECONDS", "9", "must be at least 10"),
        ("RECONCILE_STRIPE_PAGE_SIZE", "101", "must be at most 100"),
        ("RECONCILE_SCAN_PAGE_SIZE", "0", "must be at least 1"),
        ("RECONCILE_SEEN_TTL_SECONDS", "3599", "must be at least 3600"),
        ("STRIPE_READS_PER_SECOND", "100.5", "must be at most 100"),
        ("PAST_DUE_ENTITLEMENTS", "Plan", "must be 'plan' or 'fallback'"),
        ("STRIPE_API_BASE", "ftp://stripe.example", "must be an http(s) URL"),
    ],
)
def test_each_bound_is_enforced(name: str, value: str, message: str) -> None:
    assert refusal(**{name: value}) == f"invalid environment: {name}: {message}"


def test_values_at_their_bounds_and_base_urls_are_read() -> None:
    settings = settings_with(
        STRIPE_SECRET_MAX_AGE_SECONDS="86400",
        RECONCILE_SEEN_TTL_SECONDS="3600",
        STRIPE_READS_PER_SECOND="100",
        PAST_DUE_ENTITLEMENTS="fallback",
        STRIPE_API_BASE="http://localhost:12111//",
        ADMIN_ROLES="",
    )
    assert (settings.STRIPE_SECRET_MAX_AGE_SECONDS, settings.RECONCILE_SEEN_TTL_SECONDS) == (86_400, 3600)
    assert (settings.STRIPE_READS_PER_SECOND, settings.PAST_DUE_ENTITLEMENTS) == (100.0, "fallback")
    assert settings.STRIPE_API_BASE == "http://localhost:12111"
    assert frozenset() == settings.ADMIN_ROLES


def test_settings_and_the_catalog_do_not_import_pydantic(pytestconfig: pytest.Config) -> None:
    """They are on every request path; pydantic would add tens of milliseconds to each cold start."""
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from tenant_billing.catalog import get_catalog\n"
        "from tenant_billing.settings import Settings\n"
        "get_catalog()\n"
        'settings = Settings.from_environ({"TABLE_NAME": "billing", "STRIPE_PRICES": \'{"pro_base": "price_1"}\'})\n'
        'assert settings.STRIPE_PRICES["pro_base"].price_id == "price_1"\n'
        "print('pydantic' in sys.modules)\n"
    )
    # The same import roots as pytest's: the layer, every function's folder and the repository.
    env = {"PYTHONPATH": os.pathsep.join(str(root) for root in pytestconfig.getini("pythonpath")), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False"]

"""The Stripe secret read through our shared botocore client: parsed, cached for
STRIPE_SECRET_MAX_AGE_SECONDS, its failures told apart (an operator's to fix, or retryable), its
values never logged, and the path never importing boto3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from moto import mock_aws

from tenant_billing import stripe_credentials
from tenant_billing.aws_clients import secretsmanager_client
from tenant_billing.errors import BillingMisconfiguredError, BillingNotConfiguredError, TransientStoreError
from tenant_billing.stripe_credentials import StripeCredentials, get_stripe_credentials
from tests.conftest import SECRET_NAME, reset_caches
from tests.support.template import REPO_ROOT

SECRET_KEY = "sk_test_unit_credentials_4242"
WEBHOOK_SECRETS = "whsec_first_1111, whsec_second_2222"

SecretWriter = Callable[..., str]


@pytest.fixture
def put_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretWriter]:
    """Store a Stripe secret in (in-process) Secrets Manager and make it the current one."""
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        created: dict[str, str] = {}

        def put(value: object = None, *, binary: bytes | None = None) -> str:
            text = value if isinstance(value, str) else json.dumps(value)
            content: dict[str, Any] = {"SecretBinary": binary} if binary is not None else {"SecretString": text}
            if SECRET_NAME in created:
                client.put_secret_value(SecretId=created[SECRET_NAME], **content)
            else:
                created[SECRET_NAME] = client.create_secret(Name=SECRET_NAME, **content)["ARN"]
                monkeypatch.setenv("STRIPE_SECRET_ARN", created[SECRET_NAME])
                reset_caches()
            return created[SECRET_NAME]

        yield put


def count_reads() -> Callable[[], int]:
    """How many GetSecretValue calls the current client makes from now on (after put_secret's
    first call, which resets the cached clients)."""
    count = [0]

    def counted(**_: Any) -> None:
        count[0] += 1

    secretsmanager_client().meta.events.register("before-call.secrets-manager.GetSecretValue", counted)
    return lambda: count[0]


def fail_with(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def raise_it(**_: Any) -> Any:
        raise error

    monkeypatch.setattr(secretsmanager_client(), "get_secret_value", raise_it)


def test_the_secret_is_parsed_and_its_values_kept_out_of_repr(put_secret: SecretWriter) -> None:
    put_secret({"STRIPE_SECRET_KEY": f" {SECRET_KEY} ", "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRETS})
    credentials = get_stripe_credentials()
    assert credentials == StripeCredentials(SECRET_KEY, ("whsec_first_1111", "whsec_second_2222"))
    assert SECRET_KEY not in repr(credentials) and "whsec" not in repr(credentials)


def test_a_binary_secret_holding_json_is_read_too(put_secret: SecretWriter) -> None:
    put_secret(binary=json.dumps({"STRIPE_SECRET_KEY": SECRET_KEY}).encode())
    assert get_stripe_credentials() == StripeCredentials(SECRET_KEY, ())


def test_empty_values_are_credentials_without_a_key(put_secret: SecretWriter) -> None:
    put_secret({"STRIPE_SECRET_KEY": "", "STRIPE_WEBHOOK_SECRET": ""})
    assert get_stripe_credentials() == StripeCredentials("", ())


RESTRICTED_KEY = "rk_test_unit_checkout_group_1234"


def test_a_function_uses_its_groups_restricted_key_when_the_secret_has_one(
    put_secret: SecretWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_secret({"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_SECRET_KEY_CHECKOUT": RESTRICTED_KEY, "STRIPE_WEBHOOK_SECRET": ""})
    assert get_stripe_credentials().secret_key == SECRET_KEY  # no STRIPE_KEY_NAME: the shared key
    monkeypatch.setenv("STRIPE_KEY_NAME", "STRIPE_SECRET_KEY_CHECKOUT")
    reset_caches()
    assert get_stripe_credentials().secret_key == RESTRICTED_KEY
    monkeypatch.setenv("STRIPE_KEY_NAME", "STRIPE_SECRET_KEY_PORTAL")  # a group without its own key
    reset_caches()
    assert get_stripe_credentials().secret_key == SECRET_KEY


@pytest.mark.parametrize(
    "name", ["stripe_secret_key", "STRIPE_WEBHOOK_SECRET", "STRIPE_SECRET_KEY_", "STRIPE_SECRET_KEY_checkout"]
)
def test_a_key_name_that_is_not_a_stripe_key_entry_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    from tenant_billing.errors import ConfigurationError
    from tenant_billing.settings import Settings

    with pytest.raises(ConfigurationError, match="STRIPE_KEY_NAME: must be STRIPE_SECRET_KEY or STRIPE_SECRET_KEY_<GROUP>"):
        Settings.from_environ({"TABLE_NAME": "t", "STRIPE_KEY_NAME": name})


def test_no_secret_arn_is_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_SECRET_ARN", "")
    reset_caches()
    with pytest.raises(BillingNotConfiguredError):
        get_stripe_credentials()


def test_the_value_is_cached_for_the_max_age_then_read_again(put_secret: SecretWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(stripe_credentials, "monotonic", lambda: clock[0])
    monkeypatch.setenv("STRIPE_SECRET_MAX_AGE_SECONDS", "300")
    put_secret({"STRIPE_SECRET_KEY": SECRET_KEY})
    reads = count_reads()
    assert get_stripe_credentials().secret_key == SECRET_KEY
    put_secret({"STRIPE_SECRET_KEY": "sk_test_rotated"})
    clock[0] += 299
    assert get_stripe_credentials().secret_key == SECRET_KEY  # still the cached value
    assert reads() == 1
    clock[0] += 2
    assert get_stripe_credentials().secret_key == "sk_test_rotated"
    assert reads() == 2


def test_a_max_age_of_zero_reads_every_time(put_secret: SecretWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_SECRET_MAX_AGE_SECONDS", "0")
    put_secret({"STRIPE_SECRET_KEY": SECRET_KEY})
    reads = count_reads()
    for _ in range(3):
        assert get_stripe_credentials().secret_key == SECRET_KEY
    assert reads() == 3


def test_forgetting_the_credentials_reads_again(put_secret: SecretWriter) -> None:
    put_secret({"STRIPE_SECRET_KEY": SECRET_KEY})
    reads = count_reads()
    get_stripe_credentials()
    get_stripe_credentials()
    stripe_credentials.forget_stripe_credentials()
    get_stripe_credentials()
    assert reads() == 2


@pytest.mark.parametrize(
    "value",
    ["sk_test_not_json_SEKRIT", json.dumps(["sk_test_in_a_list_SEKRIT"]), json.dumps("sk_test_a_string_SEKRIT"), "null"],
    ids=["not-json", "a-list", "a-string", "null"],
)
def test_a_secret_that_is_not_a_json_object_is_misconfigured_and_never_logged(
    put_secret: SecretWriter, value: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    put_secret(value)
    with pytest.raises(BillingMisconfiguredError) as raised:
        get_stripe_credentials()
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    assert [record.getMessage() for record in caplog.records] == ["the Stripe secret is not a JSON object"]
    output = capsys.readouterr()
    assert "SEKRIT" not in str([vars(record) for record in caplog.records]) + output.out + output.err


def test_a_binary_secret_that_is_not_utf8_is_misconfigured(put_secret: SecretWriter) -> None:
    put_secret(binary=b"\xff\xfe sk_test")
    with pytest.raises(BillingMisconfiguredError):
        get_stripe_credentials()


def test_a_missing_secret_is_misconfigured(put_secret: SecretWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    put_secret({"STRIPE_SECRET_KEY": SECRET_KEY})
    monkeypatch.setenv("STRIPE_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-secret")
    reset_caches()
    with pytest.raises(BillingMisconfiguredError):
        get_stripe_credentials()


@pytest.mark.parametrize(
    "code", ["ResourceNotFoundException", "AccessDeniedException", "DecryptionFailure", "InvalidRequestException"]
)
def test_answers_an_operator_must_fix_are_misconfigured(
    put_secret: SecretWriter, monkeypatch: pytest.MonkeyPatch, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    put_secret({"STRIPE_SECRET_KEY": SECRET_KEY})
    fail_with(monkeypatch, ClientError({"Error": {"Code": code, "Message": "no"}}, "GetSecretValue"))
    with pytest.raises(BillingMisconfiguredError) as raised:
        get_stripe_credentials()
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert [getattr(record, "error_code", None) for record in caplog.records] == [code]


@pytest.mark.parametrize(
    "error",
    [
        ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetSecretValue"),
        ClientError({"Error": {"Code": "InternalServiceError", "Message": "boom"}}, "GetSecretValue"),
        EndpointConnectionError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com/"),
        ReadTimeoutError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com/"),
        ConnectTimeoutError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com/"),
    ],
    ids=["throttled", "5xx", "connection", "read-timeout", "connect-timeout"],
)
def test_other_failures_are_transient_and_not_cached(
    put_secret: SecretWriter, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    put_secret({"STRIPE_SECRET_KEY": SECRET_KEY})
    with monkeypatch.context() as failing:
        fail_with(failing, error)
        with pytest.raises(TransientStoreError):
            get_stripe_credentials()
    assert get_stripe_credentials().secret_key == SECRET_KEY  # the retry reads it


# A fresh interpreter with the webhook function's import roots: import the handler, read the
# secret through the real botocore client (its answer canned in before-send: nothing leaves the
# process), then list what was imported.
_NO_BOTO3_PROBE = r"""
import json, sys
import stripe_webhook_handler
from botocore.awsrequest import AWSResponse
from tenant_billing.aws_clients import secretsmanager_client

class Body:
    def __init__(self, data):
        self.data = data
    def stream(self, **_):
        yield self.data

def answer(request, **_):
    body = json.dumps({"ARN": "arn", "Name": "n", "VersionId": "v", "SecretString": json.dumps(
        {"STRIPE_SECRET_KEY": "sk_test_probe", "STRIPE_WEBHOOK_SECRET": "whsec_probe"})}).encode()
    return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.1"}, Body(body))

secretsmanager_client().meta.events.register("before-send.secrets-manager.GetSecretValue", answer)
credentials = stripe_webhook_handler.get_stripe_credentials()
print(json.dumps({"webhook_secrets": list(credentials.webhook_secrets),
                  "imported": sorted(name for name in sys.modules if name.split(".")[0] in
                                     {"boto3", "s3transfer", "multiprocessing", "aws_lambda_powertools", "botocore"})}))
"""


def test_the_webhook_reads_the_secret_without_importing_boto3() -> None:
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("AWS_")},
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "functions/stripe_webhook"), str(REPO_ROOT / "layers/common")]),
    }
    result = subprocess.run([sys.executable, "-c", _NO_BOTO3_PROBE], env=env, capture_output=True, text=True, check=True)
    found = json.loads(result.stdout)
    assert found["webhook_secrets"] == ["whsec_probe"]
    imported = set(found["imported"])
    assert "botocore.client" in imported  # the real client made the call
    assert not {name for name in imported if name.split(".")[0] in {"boto3", "s3transfer", "multiprocessing"}}, imported
    assert not {name for name in imported if name.startswith("aws_lambda_powertools.utilities.parameters")}

"""Who may read the Stripe secret, who may put on the entitlements bus, how much of the account's
concurrency the public webhook may take, and how long every function's logs are kept."""

from __future__ import annotations

import re
from typing import Any

from tests.support.template import load_template, resource, resources_of_type
from tests.unit.test_template import statements

SECRET_READ = "secretsmanager:GetSecretValue"


def secret_readers() -> set[str]:
    """The functions whose own policy lets them read the Stripe secret."""
    return {
        logical_id
        for logical_id, function in resources_of_type("AWS::Serverless::Function").items()
        for statement in statements(function)
        if statement["Resource"] == {"Ref": "StripeSecret"} and SECRET_READ in _as_list(statement["Action"])
    }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_every_stripe_function_reads_the_secret_and_nothing_else_does() -> None:
    assert secret_readers() == set(resources_of_type("AWS::Serverless::Function")) - {
        "BillingStatusFunction",
        "EntitlementEventsFunction",
    }


def test_the_secret_denies_its_value_to_every_principal_but_its_readers() -> None:
    properties = resource("StripeSecretPolicy")["Properties"]
    assert properties["SecretId"] == {"Ref": "StripeSecret"}
    assert properties["BlockPublicPolicy"] is True
    (statement,) = properties["ResourcePolicy"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == SECRET_READ
    (condition,) = statement["Condition"].items()
    operator, keys = condition
    assert operator == "StringNotEquals"
    assert list(keys) == ["aws:PrincipalArn"]
    allowed = keys["aws:PrincipalArn"]
    assert sorted(allowed, key=str) == sorted(({"Fn::GetAtt": f"{name}Role.Arn"} for name in secret_readers()), key=str)


def test_a_customer_managed_key_is_optional_and_only_the_readers_may_decrypt_through_secrets_manager() -> None:
    template = load_template()
    parameter = template["Parameters"]["StripeSecretKmsKeyArn"]
    assert parameter["Default"] == ""
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch(
        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    assert not pattern.fullmatch("alias/aws/secretsmanager")
    assert template["Conditions"]["HasStripeSecretKmsKey"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "StripeSecretKmsKeyArn"}, ""]}]
    }
    assert resource("StripeSecret")["Properties"]["KmsKeyId"] == {
        "Fn::If": ["HasStripeSecretKmsKey", {"Ref": "StripeSecretKmsKeyArn"}, {"Ref": "AWS::NoValue"}]
    }
    decrypt = resource("StripeSecretKeyDecrypt")
    assert decrypt["Type"] == "AWS::IAM::ManagedPolicy"
    assert decrypt["Condition"] == "HasStripeSecretKmsKey"
    assert sorted(decrypt["Properties"]["Roles"], key=str) == sorted(
        ({"Ref": f"{name}Role"} for name in secret_readers()), key=str
    )
    (statement,) = decrypt["Properties"]["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Action"], statement["Resource"]) == (
        "Allow",
        "kms:Decrypt",
        {"Ref": "StripeSecretKmsKeyArn"},
    )
    assert "secretsmanager." in str(statement["Condition"]["StringEquals"]["kms:ViaService"])


def test_only_the_publisher_may_put_events_on_the_entitlements_bus() -> None:
    bus = resource("EntitlementsEventBus")
    assert bus["Type"] == "AWS::Events::EventBus"
    name = bus["Properties"]["Name"]
    (statement,) = bus["Properties"]["Policy"]["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == ("Deny", "*", "events:PutEvents")
    assert statement["Resource"]["Fn::Sub"].endswith(":event-bus/" + name["Fn::Sub"])
    assert statement["Condition"] == {
        "StringNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": "EntitlementEventsFunctionRole.Arn"}}
    }
    publisher = resource("EntitlementEventsFunction")["Properties"]
    assert publisher["Environment"]["Variables"]["EVENT_BUS_NAME"] == {"Ref": "EntitlementsEventBus"}
    (put,) = statements(resource("EntitlementEventsFunction"))
    # The bus's own ARN, spelled from its name (see the template: !GetAtt would be a circular dependency).
    assert put["Action"] == "events:PutEvents"
    assert put["Resource"] == statement["Resource"]
    # No other function may put events anywhere.
    for logical_id, function in resources_of_type("AWS::Serverless::Function").items():
        if logical_id != "EntitlementEventsFunction":
            assert not [s for s in statements(function) if any(a.startswith("events:") for a in _as_list(s["Action"]))]
    assert load_template()["Outputs"]["EntitlementsEventBusName"]["Value"] == {"Ref": "EntitlementsEventBus"}


def test_the_public_webhook_has_its_concurrency_bounded_unless_the_account_cannot_reserve_any() -> None:
    template = load_template()
    parameter = template["Parameters"]["WebhookConcurrency"]
    assert parameter["Type"] == "Number"
    assert parameter["Default"] >= 1 and parameter["MinValue"] == 0
    assert template["Conditions"]["HasWebhookConcurrency"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "WebhookConcurrency"}, 0]}]}
    webhook = resource("StripeWebhookFunction")["Properties"]
    assert webhook["FunctionUrlConfig"] == {"AuthType": "NONE"}
    assert webhook["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasWebhookConcurrency", {"Ref": "WebhookConcurrency"}, {"Ref": "AWS::NoValue"}]
    }


def test_every_function_logs_to_its_own_log_group_with_retention() -> None:
    log_groups = resources_of_type("AWS::Logs::LogGroup")
    used = []
    for logical_id, function in resources_of_type("AWS::Serverless::Function").items():
        reference = function["Properties"]["LoggingConfig"]["LogGroup"]
        assert set(reference) == {"Ref"}, logical_id
        assert reference["Ref"] in log_groups, logical_id
        used.append(reference["Ref"])
    assert len(used) == len(set(used)), "each function has its own log group"
    assert "LoggingConfig" not in load_template()["Globals"]["Function"]
    for logical_id, log_group in log_groups.items():
        assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, logical_id


def test_each_function_that_calls_stripe_names_its_groups_key_and_the_readme_documents_each() -> None:
    from tests.support.template import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    names = {}
    for logical_id in secret_readers():
        variables = resource(logical_id)["Properties"].get("Environment", {}).get("Variables", {})
        names[logical_id] = variables.get("STRIPE_KEY_NAME")
    # The webhook calls no Stripe API: it reads only the signing secret.
    assert names.pop("StripeWebhookFunction") is None
    for logical_id, name in names.items():
        assert re.fullmatch(r"STRIPE_SECRET_KEY_[A-Z]+", name or ""), logical_id
        assert f"`{name}`" in readme, f"the README's restricted key table lacks {name}"
    assert names["EventSyncFunction"] == names["BillingReconcileFunction"] == names["BillingSyncFunction"]

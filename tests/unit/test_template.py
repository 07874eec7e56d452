"""What template.yaml promises: runtime, routes, webhook URL, a table that cannot be dropped,
secrets only by reference, least privilege."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tenant_billing.items import SK_TRIAL_ENDING_PREFIX
from tests.support.template import REPO_ROOT, load_template, resource, resources_of_type

CHECKOV_CONFIG = REPO_ROOT / ".ci" / "checkov.yaml"

FUNCTIONS = {
    "BillingStatusFunction": ("functions/status/", "status_handler.lambda_handler", ("GET", "/billing/status")),
    "BillingCheckoutFunction": ("functions/checkout/", "checkout_handler.lambda_handler", ("POST", "/billing/checkout")),
    "BillingPortalFunction": ("functions/portal/", "portal_handler.lambda_handler", ("POST", "/billing/portal")),
    "StripeWebhookFunction": ("functions/stripe_webhook/", "stripe_webhook_handler.lambda_handler", None),
    "BillingInvoicesFunction": ("functions/invoices/", "invoices_handler.lambda_handler", ("GET", "/billing/invoices")),
}
SUBSCRIPTION_ROUTES = {
    ("GET", "/billing/subscription/preview"),
    ("POST", "/billing/subscription"),
    ("POST", "/billing/subscription/cancel"),
    ("POST", "/billing/subscription/resume"),
}


def statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    return [statement for policy in function["Properties"].get("Policies", []) for statement in policy["Statement"]]


def actions(function: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for statement in statements(function):
        value = statement["Action"]
        found.update([value] if isinstance(value, str) else value)
    return found


def test_globals_runtime_architecture_tracing_and_layer() -> None:
    function_globals = load_template()["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Tracing"] == "Active"
    assert function_globals["Layers"] == [{"Ref": "CommonLayer"}]
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"} <= set(
        function_globals["Environment"]["Variables"]
    )


def test_traces_carry_no_return_value() -> None:
    # Powertools records what a traced handler or method returns unless told not to: the API's
    # answers hold Checkout, portal and hosted invoice URLs, which must never reach a trace.
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    for function in resources_of_type("AWS::Serverless::Function").values():
        assert "POWERTOOLS_TRACER_CAPTURE_RESPONSE" not in function["Properties"].get("Environment", {}).get("Variables", {})


def test_layer_is_built_by_sam_for_python313_arm64() -> None:
    layer = resource("CommonLayer")
    assert layer["Properties"]["ContentUri"] == "layers/common/"
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    assert (REPO_ROOT / "layers/common/requirements.txt").is_file()
    assert not (REPO_ROOT / "layers/common/python").exists()
    packages = [
        path.name for path in (REPO_ROOT / "layers/common").iterdir() if path.is_dir() and (path / "__init__.py").is_file()
    ]
    assert packages == ["tenant_billing"]


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_each_function_has_its_own_folder_and_unique_handler(logical_id: str) -> None:
    code_uri, handler, route = FUNCTIONS[logical_id]
    properties = resource(logical_id)["Properties"]
    assert (properties["CodeUri"], properties["Handler"]) == (code_uri, handler)
    assert (REPO_ROOT / code_uri / f"{handler.split('.')[0]}.py").is_file()
    if route:
        (event,) = properties["Events"].values()
        assert event["Type"] == "HttpApi"
        assert (event["Properties"]["Method"], event["Properties"]["Path"]) == route
        assert event["Properties"]["ApiId"] == {"Ref": "BillingApi"}


def test_the_subscription_function_serves_its_four_routes() -> None:
    properties = resource("BillingSubscriptionFunction")["Properties"]
    assert (properties["CodeUri"], properties["Handler"]) == ("functions/subscription/", "subscription_handler.lambda_handler")
    routes = {(event["Properties"]["Method"], event["Properties"]["Path"]) for event in properties["Events"].values()}
    assert routes == SUBSCRIPTION_ROUTES


def test_handler_module_names_are_unique() -> None:
    handlers = [res["Properties"]["Handler"] for res in resources_of_type("AWS::Serverless::Function").values()]
    modules = [handler.split(".")[0] for handler in handlers]
    assert len(set(modules)) == len(modules)
    # Every folder with a handler is deployed (functions/local_stack, `make dev`'s, has none).
    folders = sorted(path.parent.name for path in (REPO_ROOT / "functions").glob("*/*_handler.py"))
    assert (
        sorted(res["Properties"]["CodeUri"].split("/")[1] for res in resources_of_type("AWS::Serverless::Function").values())
        == folders
    )


def test_http_api_has_a_jwt_authorizer_and_cors_from_parameters() -> None:
    api = resource("BillingApi")["Properties"]
    assert api["Auth"]["DefaultAuthorizer"] == "OrganizationJwt"
    jwt = api["Auth"]["Authorizers"]["OrganizationJwt"]["JwtConfiguration"]
    assert jwt == {"issuer": {"Ref": "JwtIssuer"}, "audience": {"Ref": "JwtAudience"}}
    assert api["CorsConfiguration"]["AllowOrigins"] == {"Ref": "CorsAllowedOrigins"}


def test_webhook_is_a_public_function_url() -> None:
    assert resource("StripeWebhookFunction")["Properties"]["FunctionUrlConfig"] == {"AuthType": "NONE"}


def test_the_table_can_never_be_dropped_and_is_built_as_required() -> None:
    table = resource("BillingTable")
    properties = table["Properties"]
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    assert properties["DeletionProtectionEnabled"] is True
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert {d["AttributeName"]: d["AttributeType"] for d in properties["AttributeDefinitions"]} == {"pk": "S", "sk": "S"}
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert len(resources_of_type("AWS::DynamoDB::Table")) == 1


def test_the_secret_holds_no_stripe_value_and_functions_get_only_its_arn() -> None:
    secret = resource("StripeSecret")["Properties"]
    template_json = json.loads(secret["GenerateSecretString"]["SecretStringTemplate"])
    assert template_json == {"STRIPE_SECRET_KEY": "", "STRIPE_WEBHOOK_SECRET": ""}
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["STRIPE_SECRET_ARN"] == {"Ref": "StripeSecret"}
    text = (REPO_ROOT / "template.yaml").read_text()
    assert "sk_live" not in text and "sk_test" not in text and "whsec_" not in text
    for function in resources_of_type("AWS::Serverless::Function").values():
        for name, value in function["Properties"].get("Environment", {}).get("Variables", {}).items():
            # STRIPE_KEY_NAME names the secret's entry holding the key, never the key itself.
            names_an_entry = name == "STRIPE_KEY_NAME" and re.fullmatch(r"STRIPE_SECRET_KEY_[A-Z]+", str(value))
            assert ("KEY" not in name or names_an_entry) and name != "STRIPE_WEBHOOK_SECRET"


def test_price_parameters_reach_the_functions() -> None:
    """One parameter configures every price of the catalog; no price has a variable of its own."""
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["STRIPE_PRICES"] == {"Ref": "StripePrices"}
    assert "StripePrices" in load_template()["Parameters"]
    assert load_template()["Parameters"]["StripePrices"]["Default"] == "{}"
    assert not [name for name in variables if name.startswith("STRIPE_PRICE_")]
    assert not [name for name in load_template()["Parameters"] if name.startswith("StripePrice") and name != "StripePrices"]


EXPECTED_ACTIONS = {
    "BillingStatusFunction": {"dynamodb:Query"},
    "BillingCheckoutFunction": {"dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "secretsmanager:GetSecretValue"},
    "BillingPortalFunction": {"dynamodb:Query", "secretsmanager:GetSecretValue"},
    "StripeWebhookFunction": {"sqs:SendMessage", "secretsmanager:GetSecretValue"},
    "EventSyncFunction": {
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "secretsmanager:GetSecretValue",
        "sqs:ChangeMessageVisibility",
    },
    "BillingSubscriptionFunction": {
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "secretsmanager:GetSecretValue",
    },
    "BillingSyncFunction": {"dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem", "secretsmanager:GetSecretValue"},
    "BillingInvoicesFunction": {"dynamodb:Query", "secretsmanager:GetSecretValue"},
    "EntitlementEventsFunction": {"events:PutEvents"},
    "BillingAdminFunction": {
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:Scan",
        "secretsmanager:GetSecretValue",
    },
    "BillingReconcileFunction": {
        "dynamodb:BatchGetItem",
        "dynamodb:Scan",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "secretsmanager:GetSecretValue",
    },
}
BUS_ARN = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${AWS::StackName}-entitlements"}


@pytest.mark.parametrize("logical_id", sorted(EXPECTED_ACTIONS))
def test_least_privilege(logical_id: str) -> None:
    function = resource(logical_id)
    assert actions(function) == EXPECTED_ACTIONS[logical_id]
    for statement in statements(function):
        assert "*" not in json.dumps(statement["Resource"])
        assert statement["Resource"] in (
            {"Fn::GetAtt": "BillingTable.Arn"},
            {"Ref": "StripeSecret"},
            BUS_ARN,
            {"Fn::GetAtt": "StripeEventsQueue.Arn"},
        )


def test_the_events_queue_feeds_the_consumer_within_the_stripe_read_budget() -> None:
    queue = resource("StripeEventsQueue")["Properties"]
    assert "FifoQueue" not in queue  # standard: see the template's comment
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": "StripeEventsDeadLetterQueue.Arn"}
    assert 8 <= queue["RedrivePolicy"]["maxReceiveCount"] <= 10
    consumer = resource("EventSyncFunction")["Properties"]
    # AWS: a queue's visibility timeout at least 6 times its consumer's timeout.
    assert queue["VisibilityTimeout"] >= 6 * consumer["Timeout"]
    (event,) = consumer["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": "StripeEventsQueue.Arn"}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # Each of at most MaximumConcurrency invocations paces itself to its share of the budget.
    variables = consumer["Environment"]["Variables"]
    assert variables["STRIPE_READS_PER_SECOND"] == {"Ref": "StripeReadsPerSecond"}
    assert int(variables["CONSUMER_CONCURRENCY"]) == event["Properties"]["ScalingConfig"]["MaximumConcurrency"] == 2
    assert load_template()["Parameters"]["StripeReadsPerSecond"]["Default"] < 25  # Stripe's test-mode limit
    webhook = resource("StripeWebhookFunction")["Properties"]
    assert webhook["Environment"]["Variables"]["EVENTS_QUEUE_URL"] == {"Ref": "StripeEventsQueue"}
    assert variables["EVENTS_QUEUE_URL"] == {"Ref": "StripeEventsQueue"}


def test_entitlement_changes_stream_to_the_publisher() -> None:
    assert resource("BillingTable")["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    (event,) = resource("EntitlementEventsFunction")["Properties"]["Events"].values()
    assert event["Type"] == "DynamoDB"
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["Properties"]["BisectBatchOnFunctionError"] is False
    pattern = json.loads(event["Properties"]["FilterCriteria"]["Filters"][0]["Pattern"])
    assert pattern == {
        "eventName": ["INSERT", "MODIFY"],
        "dynamodb": {"Keys": {"sk": {"S": ["ENTITLEMENT", {"prefix": "TRIAL_ENDING#"}]}}},
    }
    # The prefix is the one the notices are stored under.
    assert pattern["dynamodb"]["Keys"]["sk"]["S"][1]["prefix"] == SK_TRIAL_ENDING_PREFIX
    assert "OnFailure" in event["Properties"]["DestinationConfig"]


def test_reconciliation_runs_on_a_schedule_parameter() -> None:
    properties = resource("BillingReconcileFunction")["Properties"]
    (event,) = properties["Events"].values()
    assert event == {
        "Type": "Schedule",
        "Properties": {"Schedule": {"Ref": "ReconcileSchedule"}, "Description": event["Properties"]["Description"]},
    }
    assert load_template()["Parameters"]["ReconcileSchedule"]["Default"] == "rate(1 day)"
    assert properties["Timeout"] == 900


def test_outputs() -> None:
    assert set(load_template()["Outputs"]) == {
        "ApiUrl",
        "StripeWebhookUrl",
        "BillingTableName",
        "StripeSecretArn",
        "EntitlementsEventBusName",
        "AlarmNotificationTopic",
        "DashboardUrl",
        "BillingAdminFunctionName",
    }


def checkov_skips() -> dict[str, str]:
    """.ci/checkov.yaml's skipped rules, each with the comment line above it (its one reason)."""
    skips: dict[str, str] = {}
    reason = ""
    for line in CHECKOV_CONFIG.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("# "):
            reason = stripped.removeprefix("# ")
        elif stripped.startswith("- CKV"):
            skips[stripped.removeprefix("- ")] = reason
            reason = ""
    return skips


def test_every_checkov_suppression_says_why() -> None:
    skips = checkov_skips()
    assert skips, "the checkov config documents its suppressions"
    assert set(skips) == set(yaml.safe_load(CHECKOV_CONFIG.read_text())["skip-check"])
    for rule, reason in skips.items():
        assert rule.startswith("CKV"), rule
        assert len(reason) >= 40, f"{rule} needs a reason"


def test_the_template_leaves_checkov_suppressions_to_the_config() -> None:
    assert not [logical_id for logical_id, res in load_template()["Resources"].items() if "checkov" in res.get("Metadata", {})]


def test_the_api_is_throttled_and_access_logged_without_secrets() -> None:
    api = resource("BillingApi")["Properties"]
    assert api["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
    }
    log_format = api["AccessLogSettings"]["Format"]
    assert "$context.requestId" in log_format
    for leak in ("authorization", "$request.header", "claims", "body"):
        assert leak not in log_format.lower()


STRIPE_EVENTBRIDGE_RESOURCES = {
    "StripeEventBus": "AWS::Events::EventBus",
    "StripeEventsRule": "AWS::Events::Rule",
    "StripeEventBridgeDeadLetterQueue": "AWS::SQS::Queue",
    "StripeEventsQueuePolicy": "AWS::SQS::QueuePolicy",
}


def test_the_stripe_event_source_is_optional_and_turns_on_the_eventbridge_resources() -> None:
    template = load_template()
    parameter = template["Parameters"]["StripeEventSourceName"]
    assert parameter["Default"] == ""
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("aws.partner/stripe.com/ed_test_61Rc9ZIzCyVXIv5LR16Rc9WfUF9E")
    assert not pattern.fullmatch("aws.partner/example.com/ed_1")
    assert template["Conditions"]["HasStripeEventSource"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "StripeEventSourceName"}, ""]}]}
    for logical_id, resource_type in STRIPE_EVENTBRIDGE_RESOURCES.items():
        assert resource(logical_id)["Type"] == resource_type
        assert resource(logical_id)["Condition"] == "HasStripeEventSource"
    # The queue itself exists either way: the webhook enqueues on it too.
    assert "Condition" not in resource("StripeEventsQueue")


def test_the_bus_is_associated_with_the_partner_event_source() -> None:
    source = {"Ref": "StripeEventSourceName"}
    assert resource("StripeEventBus")["Properties"] == {"Name": source, "EventSourceName": source}


def test_the_rule_routes_the_handled_stripe_events_to_the_queue_with_a_dead_letter_queue() -> None:
    from tenant_billing.webhook_logic import HANDLED_EVENTS

    properties = resource("StripeEventsRule")["Properties"]
    assert properties["EventBusName"] == {"Ref": "StripeEventBus"}
    assert properties["State"] == "ENABLED"
    pattern = properties["EventPattern"]
    assert pattern["source"] == [{"Ref": "StripeEventSourceName"}]
    # Stripe sets detail-type to the event's type: the same list as the webhook endpoint's.
    assert sorted(pattern["detail-type"]) == sorted(HANDLED_EVENTS)
    (target,) = properties["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": "StripeEventsQueue.Arn"}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": "StripeEventBridgeDeadLetterQueue.Arn"}}
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 86400
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_only_the_rule_may_send_to_the_queues() -> None:
    properties = resource("StripeEventsQueuePolicy")["Properties"]
    assert properties["Queues"] == [{"Ref": "StripeEventsQueue"}, {"Ref": "StripeEventBridgeDeadLetterQueue"}]
    (statement,) = properties["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == [
        {"Fn::GetAtt": "StripeEventsQueue.Arn"},
        {"Fn::GetAtt": "StripeEventBridgeDeadLetterQueue.Arn"},
    ]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": "StripeEventsRule.Arn"}}}

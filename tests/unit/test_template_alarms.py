"""The alarms and the dashboard: each watches a metric the code really emits (or one AWS publishes
for a resource of this template), and every alarm reaches the team's topic."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

from tenant_billing.reconcile_result import METRIC_NAMES
from tenant_billing.webhook_logic import Outcome
from tests.support.template import REPO_ROOT, load_template, resource, resources_of_type

NAMESPACE = "SaaSBilling"
SOURCES = [*(REPO_ROOT / "layers/common/tenant_billing").glob("*.py"), *(REPO_ROOT / "functions").glob("*/*_handler.py")]
# The computed metric names the code has, by the expression that names them.
COMPUTED_NAMES = {
    "f'Webhook_{outcome.value}'": {f"Webhook_{outcome.value}" for outcome in Outcome},
    "metric": set(METRIC_NAMES.values()),
}
TOPIC = {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}


def emitted_metric_names() -> set[str]:
    """Every name an `add_metric(name=...)` call of the shipped code can emit."""
    names: set[str] = set()
    # observability's stand-in forwards the other modules' calls to Powertools.
    for path in (source for source in SOURCES if source.name != "observability.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_metric"):
                continue
            (name,) = [keyword.value for keyword in node.keywords if keyword.arg == "name"]
            names |= _names(name, path.name)
    return names


def _names(expression: ast.expr, where: str) -> set[str]:
    if isinstance(expression, ast.Constant) and isinstance(expression.value, str):
        return {expression.value}
    if isinstance(expression, ast.IfExp):
        return _names(expression.body, where) | _names(expression.orelse, where)
    source = ast.unparse(expression)
    assert source in COMPUTED_NAMES, f"{where}: teach this test the names of add_metric(name={source})"
    return COMPUTED_NAMES[source]


def alarm_metrics(alarm: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The metrics an alarm reads: its own, or those of its metric math."""
    properties = alarm["Properties"]
    if "MetricName" in properties:
        yield {key: properties[key] for key in ("Namespace", "MetricName", "Dimensions")}
    for query in properties.get("Metrics", []):
        if "MetricStat" in query:
            yield query["MetricStat"]["Metric"]


def alarms() -> dict[str, dict[str, Any]]:
    return resources_of_type("AWS::CloudWatch::Alarm")


def test_the_code_emits_its_metrics_under_the_namespace_and_service_the_alarms_watch() -> None:
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE
    service = variables["POWERTOOLS_SERVICE_NAME"]
    names = emitted_metric_names()
    assert {"WebhookRejected", "Webhook_ignored", "ReconcileRepaired", "DuplicateSubscription"} <= names
    watched = [metric for alarm in alarms().values() for metric in alarm_metrics(alarm) if metric["Namespace"] == NAMESPACE]
    assert watched
    for metric in watched:
        assert metric["MetricName"] in names, f"no code emits {metric['MetricName']}"
        assert metric["Dimensions"] == [{"Name": "service", "Value": service}]


def test_the_aws_metrics_are_those_of_this_stacks_resources() -> None:
    functions = set(resources_of_type("AWS::Serverless::Function"))
    queues = set(resources_of_type("AWS::SQS::Queue"))
    for logical_id, alarm in alarms().items():
        for metric in alarm_metrics(alarm):
            if metric["Namespace"] == NAMESPACE:
                continue
            (dimension,) = metric["Dimensions"]
            value = dimension["Value"]
            if metric["Namespace"] == "AWS/Lambda":
                assert dimension["Name"] == "FunctionName" and value["Ref"] in functions, logical_id
            elif metric["Namespace"] == "AWS/SQS":
                queue, attribute = value["Fn::GetAtt"].split(".")
                assert dimension["Name"] == "QueueName" and queue in queues and attribute == "QueueName", logical_id
            else:
                assert metric["Namespace"] == "AWS/ApiGateway", logical_id
                assert dimension == {"Name": "ApiId", "Value": {"Ref": "BillingApi"}}, logical_id


def watched(namespace: str, metric_name: str) -> list[Any]:
    """The dimension values under which alarms watch this metric."""
    return [
        metric["Dimensions"][0]["Value"]
        for alarm in alarms().values()
        for metric in alarm_metrics(alarm)
        if (metric["Namespace"], metric["MetricName"]) == (namespace, metric_name)
    ]


def test_the_alarms_cover_the_money_path() -> None:
    for name in (
        "WebhookRejected",
        "EventPoison",
        "EventRetried",
        "ReconcileRepaired",
        "DuplicateSubscription",
        "UnknownSubscriptionPrice",
    ):
        assert watched(NAMESPACE, name), name
    assert watched("AWS/Lambda", "Url5xxCount") == [{"Ref": "StripeWebhookFunction"}]
    queues = {value["Fn::GetAtt"].split(".")[0] for value in watched("AWS/SQS", "ApproximateNumberOfMessagesVisible")}
    # Every queue that holds what was given up on, and none that holds work in progress.
    assert queues == {"StripeEventsDeadLetterQueue", "EntitlementEventsFailureQueue", "StripeEventBridgeDeadLetterQueue"}
    assert resource("EventBridgeDeadLetterAlarm")["Condition"] == resource("StripeEventBridgeDeadLetterQueue")["Condition"]
    functions = {value["Ref"] for value in watched("AWS/Lambda", "Errors")}
    assert functions == set(resources_of_type("AWS::Serverless::Function"))
    api_functions = {
        logical_id
        for logical_id, function in resources_of_type("AWS::Serverless::Function").items()
        if "FunctionUrlConfig" in function["Properties"]
        or any(event["Type"] == "HttpApi" for event in function["Properties"].get("Events", {}).values())
    }
    assert {value["Ref"] for value in watched("AWS/Lambda", "Throttles")} == api_functions
    rate = resource("Api5xxRateAlarm")["Properties"]
    assert {metric["MetricStat"]["Metric"]["MetricName"] for metric in rate["Metrics"] if "MetricStat" in metric} == {
        "5xx",
        "Count",
    }


def test_a_metric_math_alarm_reads_at_most_ten_metrics_and_returns_one_series() -> None:
    for logical_id, alarm in alarms().items():
        queries = alarm["Properties"].get("Metrics", [])
        if queries:
            assert len(queries) <= 10, logical_id
            assert [query["Id"] for query in queries if query.get("ReturnData", True)] == [queries[-1]["Id"]], logical_id


def test_every_alarm_notifies_the_topic_given_or_created() -> None:
    template = load_template()
    assert template["Conditions"]["CreateAlarmTopic"] == {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}
    assert resource("AlarmTopic")["Condition"] == "CreateAlarmTopic"
    subscription = resource("AlarmEmailSubscription")
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["TopicArn"] == TOPIC
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    for logical_id, alarm in alarms().items():
        assert alarm["Properties"]["AlarmActions"] == [TOPIC], logical_id
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", logical_id
    email = re.compile(template["Parameters"]["AlarmEmail"]["AllowedPattern"])
    assert email.fullmatch("") and email.fullmatch("oncall@example.com") and not email.fullmatch("oncall")
    topic = re.compile(template["Parameters"]["AlarmTopicArn"]["AllowedPattern"])
    assert topic.fullmatch("") and topic.fullmatch("arn:aws:sns:eu-west-1:123456789012:oncall")
    assert template["Outputs"]["AlarmNotificationTopic"]["Value"] == TOPIC


_SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9:]+)(?:\.([A-Za-z]+))?\}")


def test_the_dashboard_is_json_over_this_stacks_resources_and_the_code_metrics() -> None:
    body = resource("BillingDashboard")["Properties"]["DashboardBody"]["Fn::Sub"]
    resources = load_template()["Resources"]
    referenced = set()
    for match in _SUBSTITUTION.finditer(body):
        name = match.group(1)
        assert name.startswith("AWS::") or name in resources, name
        referenced.add(name)
    # Each ${Resource.Attribute} stands in the JSON as "Resource.Attribute".
    dashboard = json.loads(_SUBSTITUTION.sub(lambda match: match.group(0)[2:-1], body))
    names = emitted_metric_names()
    alarm_widgets = []
    for widget in dashboard["widgets"]:
        if widget["type"] == "alarm":
            alarm_widgets.append(widget)
            continue
        for metric in widget["properties"]["metrics"]:
            if metric[0] == NAMESPACE:
                assert metric[1] in names, f"the dashboard shows {metric[1]}, which no code emits"
    (alarm_widget,) = alarm_widgets
    shown = {arn.removesuffix(".Arn") for arn in alarm_widget["properties"]["alarms"]}
    unconditional = {logical_id for logical_id, alarm in alarms().items() if "Condition" not in alarm}
    assert shown == unconditional
    assert {"StripeWebhookFunction", "StripeEventsQueue", "StripeEventsDeadLetterQueue", "BillingApi"} <= referenced

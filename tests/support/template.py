"""Read resource definitions out of template.yaml, so the test (and local) table and queues and
the real ones are built from the same lines and cannot drift."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags (!Ref, !GetAtt, ...) as plain data."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    assert isinstance(node, yaml.MappingNode)
    return {name: loader.construct_mapping(node, deep=True)}


_CfnLoader.add_multi_constructor("!", _tag)


@cache
def load_template() -> dict[str, Any]:
    template: dict[str, Any] = yaml.load(TEMPLATE_PATH.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return template


def resource(logical_id: str) -> dict[str, Any]:
    found: dict[str, Any] = load_template()["Resources"][logical_id]
    return found


def resources_of_type(resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in load_template()["Resources"].items() if res["Type"] == resource_type}


def create_table_from_template(client: Any, table_name: str, logical_id: str = "BillingTable") -> None:
    """Create the table exactly as template.yaml defines it (keys, billing mode, TTL)."""
    properties = resource(logical_id)["Properties"]
    client.create_table(
        TableName=table_name,
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        BillingMode=properties["BillingMode"],
        SSESpecification={"Enabled": bool(properties.get("SSESpecification", {}).get("SSEEnabled"))},
        DeletionProtectionEnabled=properties.get("DeletionProtectionEnabled", False),
    )
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        client.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)


def create_queues_from_template(client: Any, queue_name: str, dead_letter_queue_name: str) -> str:
    """StripeEventsQueue and its dead-letter queue as template.yaml defines them (visibility timeout,
    retention, redrive after maxReceiveCount): the queue's URL."""
    dlq = resource("StripeEventsDeadLetterQueue")["Properties"]
    dlq_url = client.create_queue(
        QueueName=dead_letter_queue_name, Attributes={"MessageRetentionPeriod": str(dlq["MessageRetentionPeriod"])}
    )["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    properties = resource("StripeEventsQueue")["Properties"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": properties["RedrivePolicy"]["maxReceiveCount"]}
    attributes = {
        "VisibilityTimeout": str(properties["VisibilityTimeout"]),
        "MessageRetentionPeriod": str(properties["MessageRetentionPeriod"]),
        "RedrivePolicy": json.dumps(redrive),
    }
    url: str = client.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]
    return url

"""Read resource definitions out of template.yaml, so the test (and local) table and queues and
the real ones are built from the same lines and cannot drift."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
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


def handler_modules() -> list[str]:
    """The handler module of every function in the template ("status_handler"), sorted."""
    functions = resources_of_type("AWS::Serverless::Function").values()
    return sorted(function["Properties"]["Handler"].rsplit(".", 1)[0] for function in functions)


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


@dataclass(frozen=True)
class LocalQueue:
    url: str
    arn: str


def _queue_attributes(properties: dict[str, Any], created: dict[str, LocalQueue]) -> dict[str, str]:
    """A queue's SQS attributes from its template properties (the names are the same), its
    dead-letter queue's !GetAtt resolved to the one created before it."""
    attributes: dict[str, str] = {}
    for name, value in properties.items():
        if name in ("QueueName", "Tags"):
            continue
        if name == "RedrivePolicy":
            target = value["deadLetterTargetArn"]["Fn::GetAtt"]
            dead_letter = (target if isinstance(target, str) else ".".join(target)).removesuffix(".Arn")
            value = json.dumps({**value, "deadLetterTargetArn": created[dead_letter].arn})
        attributes[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return attributes


def create_queues_from_template(client: Any, names: Mapping[str, str] | None = None) -> dict[str, LocalQueue]:
    """Create every SQS queue the template always deploys (not those under a Condition), named
    after its logical id (or as `names` maps it), with the template's attributes: {logical id: its
    URL and ARN}."""
    queues = {name: res["Properties"] for name, res in resources_of_type("AWS::SQS::Queue").items() if "Condition" not in res}
    created: dict[str, LocalQueue] = {}
    # Dead-letter queues (no redrive of their own) first, so a redrive policy can name one.
    for name, properties in sorted(queues.items(), key=lambda item: "RedrivePolicy" in item[1]):
        queue_name = (names or {}).get(name, name)
        queue_name = f"{queue_name}.fifo" if properties.get("FifoQueue") else queue_name
        url = client.create_queue(QueueName=queue_name, Attributes=_queue_attributes(properties, created))["QueueUrl"]
        arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        created[name] = LocalQueue(url, arn)
    return created

"""AWS clients, created on first use and cached for the life of the execution environment.

Clients come straight from botocore, which boto3 wraps: a DynamoDB-only path then never imports
boto3 and its s3transfer dependency (about half of boto3's import time), which matters most for
the status function's cold start. All clients share one botocore session, so the endpoint and
partition data it loads for the first client serve the others (a second client from the same
session costs about 5 ms, one from a new boto3 session about 65 ms). botocore honours
AWS_ENDPOINT_URL and the AWS_* variables itself, which is how tests and the local stack point it
at moto.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any, Protocol

    from botocore.session import Session
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    class EventBridgeClient(Protocol):
        """The part of botocore's EventBridge client we call (no EventBridge stubs are installed)."""

        def put_events(self, *, Entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]: ...

    class SQSClient(Protocol):
        """The part of botocore's SQS client we call (no SQS stubs are installed)."""

        def send_message(self, *, QueueUrl: str, MessageBody: str, MessageAttributes: Mapping[str, Any]) -> dict[str, Any]: ...

        def change_message_visibility(self, *, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> object: ...


@cache
def _session() -> Session:
    from botocore.session import get_session

    return get_session()


@cache
def dynamodb_client() -> DynamoDBClient:
    from botocore.config import Config

    # Short timeouts with botocore's standard retry mode: a throttled call is retried a few times
    # with backoff, then surfaces as a retryable error instead of hanging the request.
    config = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
    # botocore's stubs type every client as BaseClient; this one is DynamoDB's.
    return cast("DynamoDBClient", _session().create_client("dynamodb", config=config))


@cache
def events_client() -> EventBridgeClient:
    from botocore.config import Config

    # Same policy as DynamoDB: a throttled PutEvents is retried a few times, then surfaces.
    config = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
    return cast("EventBridgeClient", _session().create_client("events", config=config))


@cache
def sqs_client() -> SQSClient:
    from botocore.config import Config

    # The webhook answers Stripe within its timeout: one quick retry of a throttled SendMessage,
    # then a retryable 503 (Stripe delivers again), never a request held for seconds.
    config = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 2})
    return cast("SQSClient", _session().create_client("sqs", config=config))


@cache
def secretsmanager_client() -> SecretsManagerClient:
    from botocore.config import Config

    # The secret is read once per execution environment (then cached), on a request's path:
    # fail over to a retryable error quickly rather than hold the request.
    config = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 3})
    return cast("SecretsManagerClient", _session().create_client("secretsmanager", config=config))

"""boto3 clients, created on first use and cached for the life of the execution environment.

boto3 honours AWS_ENDPOINT_URL itself, which is how tests and the local runner point it at moto.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@cache
def dynamodb_client() -> DynamoDBClient:
    import boto3
    from botocore.config import Config

    # Short timeouts with botocore's standard retry mode: a throttled call is retried a few times
    # with backoff, then surfaces as a retryable error instead of hanging the request.
    config = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
    return boto3.client("dynamodb", config=config)

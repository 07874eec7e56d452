"""Count the AWS API calls a piece of code makes, through botocore's own event hooks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tenant_billing.aws_clients import dynamodb_client


@contextmanager
def count_dynamodb_calls() -> Iterator[Counter[str]]:
    """Counter of DynamoDB operation names called inside the block (each is one round trip)."""
    calls: Counter[str] = Counter()
    client = dynamodb_client()

    def record(model: Any, **kwargs: Any) -> None:
        calls[model.name] += 1

    client.meta.events.register("before-call.dynamodb", record)
    try:
        yield calls
    finally:
        client.meta.events.unregister("before-call.dynamodb", record)

"""Count the AWS API calls a piece of code makes, through botocore's own event hooks."""

from __future__ import annotations

import threading
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


@contextmanager
def atomic_dynamodb_requests() -> Iterator[None]:
    """For tests with threads: each DynamoDB request runs alone, as real DynamoDB executes each
    request atomically. moto's in-process backend is not thread-safe (it can fail a request with
    "dictionary changed size during iteration"); everything else still interleaves freely."""
    client: Any = dynamodb_client()  # botocore's private _make_api_call is not in the stubs
    lock = threading.Lock()
    original = client._make_api_call

    def locked(operation_name: str, api_params: Any) -> Any:
        with lock:
            return original(operation_name, api_params)

    client._make_api_call = locked
    try:
        yield
    finally:
        del client._make_api_call

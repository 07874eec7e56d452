"""What every store shares over the one DynamoDB table: attribute values, the translation of
DynamoDB's failures into domain errors, transactions and batch reads.

Stores take the low-level client from botocore (no resource layer), created on first use.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tenant_billing.aws_clients import dynamodb_client
from tenant_billing.errors import TransientStoreError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Error codes that mean "try again later": nothing was written, the caller gets a retryable 5xx.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "LimitExceededException",
    }
)
UNAVAILABLE = "billing storage is temporarily unavailable, try again"
CONDITION_FAILED = "ConditionalCheckFailed"
# BatchGetItem reads at most this many keys a call.
BATCH_GET_LIMIT = 100

AttributeMap = dict[str, Any]


def string(value: str) -> dict[str, str]:
    return {"S": value}


def number(value: int) -> dict[str, str]:
    return {"N": str(value)}


def read_str(item: AttributeMap, name: str, default: str = "") -> str:
    value = item.get(name)
    return str(value["S"]) if value and "S" in value else default


def read_int(item: AttributeMap, name: str) -> int | None:
    value = item.get(name)
    return int(value["N"]) if value and "N" in value else None


def read_bool(item: AttributeMap, name: str) -> bool:
    value = item.get(name)
    return bool(value and value.get("BOOL"))


def read_str_list(item: AttributeMap, name: str) -> tuple[str, ...]:
    return tuple(str(value["S"]) for value in item.get(name, {}).get("L", []))


@contextmanager
def translated_errors() -> Iterator[None]:
    """Throttling, timeouts and DynamoDB-side failures become TransientStoreError (a retryable 503)."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in TRANSIENT_ERROR_CODES:
            raise TransientStoreError(UNAVAILABLE) from exc
        raise
    except (ConnectionError, HTTPClientError) as exc:
        raise TransientStoreError(UNAVAILABLE) from exc


class DynamoTable:
    """One table and its client (created on first use): the base of every DynamoDB store."""

    def __init__(self, table_name: str, client_factory: Callable[[], DynamoDBClient] = dynamodb_client) -> None:
        self.table_name = table_name
        self.client_factory = client_factory

    @property
    def client(self) -> DynamoDBClient:
        return self.client_factory()

    def write_if(self, write: Callable[..., object], **request: Any) -> bool:
        """One conditional write: False, with nothing written, when its condition failed."""
        try:
            with translated_errors():
                write(TableName=self.table_name, **request)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def transact(self, items: list[AttributeMap]) -> list[str] | None:
        """TransactWriteItems with short retries of TransactionConflict (another transaction on the
        same items in flight). None when written; the cancellation reasons when a condition failed,
        for the caller to interpret; TransientStoreError for anything else."""
        for attempt in range(3):
            try:
                with translated_errors():
                    self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
                return None
            except self.client.exceptions.TransactionCanceledException as exc:
                reasons = [reason.get("Code", "None") for reason in exc.response.get("CancellationReasons", [])]
                if CONDITION_FAILED in reasons:
                    return reasons
                if "TransactionConflict" in reasons and attempt < 2:
                    time.sleep(0.05 * 2**attempt)
                    continue
                raise TransientStoreError(UNAVAILABLE) from exc
        raise TransientStoreError(UNAVAILABLE)

    def batch_get(self, keys: list[AttributeMap], attempts: int = 5) -> list[AttributeMap]:
        """Consistent BatchGetItem of any number of keys (100 a call), unprocessed keys retried."""
        found: list[AttributeMap] = []
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: AttributeMap = {self.table_name: {"Keys": keys[start : start + BATCH_GET_LIMIT], "ConsistentRead": True}}
            for attempt in range(attempts):
                with translated_errors():
                    response = self.client.batch_get_item(RequestItems=request)
                found.extend(response.get("Responses", {}).get(self.table_name, []))
                request = dict(response.get("UnprocessedKeys") or {})
                if not request:
                    break
                time.sleep(0.05 * 2**attempt)
            else:
                raise TransientStoreError(UNAVAILABLE)
        return found

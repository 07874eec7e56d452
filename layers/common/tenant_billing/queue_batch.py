"""An SQS event source's batch, answered with a partial batch response (ReportBatchItemFailures).

A loop over the records instead of Powertools' batch utility: importing that loads asyncio,
concurrent.futures and every event data class Powertools has, a large part of a cold start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypedDict

from tenant_billing.observability import logger
from tenant_billing.records import frozen


class BatchItemFailure(TypedDict):
    itemIdentifier: str


class PartialBatchResponse(TypedDict):
    batchItemFailures: list[BatchItemFailure]


@frozen
class QueueMessage:
    """What the consumer reads of one SQS record."""

    message_id: str
    body: str
    receipt_handle: str
    # ApproximateReceiveCount: 1 on the first delivery.
    receive_count: int


def read_message(record: Mapping[str, Any]) -> QueueMessage:
    """One SQS record as Lambda passes it (raises KeyError or ValueError when it is not one)."""
    return QueueMessage(
        message_id=str(record["messageId"]),
        body=str(record.get("body", "")),
        receipt_handle=str(record["receiptHandle"]),
        receive_count=int(record["attributes"]["ApproximateReceiveCount"]),
    )


def queue_records(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The records of an SQS event (ValueError when it is not one: the invocation fails, loudly)."""
    records = event.get("Records")
    if not isinstance(records, list):
        raise ValueError("not an SQS event: it has no Records list")
    return records


def partial_batch_response(
    records: Iterable[Mapping[str, Any]], handle: Callable[[QueueMessage], object]
) -> PartialBatchResponse:
    """Each record handled in order; the ones whose handling raised are named, to be received again
    (the others are deleted from the queue). Every record failing is a partial failure like any
    other: the answer lists them all. A record without a message id fails the whole invocation
    (there is nothing to name), so Lambda receives the whole batch again."""
    failures: list[BatchItemFailure] = []
    for record in records:
        message_id = str(record["messageId"])
        try:
            message = read_message(record)
        except (KeyError, TypeError, ValueError) as exc:
            # No message id in the line: SQS's UUIDs can pass for card numbers in a log scanner.
            logger.error("queue record unreadable", extra={"reason": type(exc).__name__})
            failures.append({"itemIdentifier": message_id})
            continue
        try:
            handle(message)
        except Exception:  # reported, not raised: the next records still run
            # With its traceback, whatever the handler logged: an error it did not expect says where.
            logger.warning("message left on the queue", exc_info=True)
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}

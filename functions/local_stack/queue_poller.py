"""Lambda's SQS event source mapping for the local stack: a thread that long-polls a queue, invokes
the consuming function with an SQS batch event (the records Lambda builds), and deletes the messages
the invocation succeeded for. With ReportBatchItemFailures, the messages named in the response's
`batchItemFailures` stay on the queue; an invocation that fails (or names a message not in the batch)
leaves the whole batch. Messages left reappear after the queue's visibility timeout, and the queue's
redrive policy moves them to its dead-letter queue after maxReceiveCount receives, as in AWS.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from functions.local_stack.template_model import QueueSource

# The reply of FunctionProcess.invoke: {"response": <the handler's return value>} or {"error": ...}.
Invoke = Callable[[dict[str, Any]], dict[str, Any]]
# Long polling, short enough for the stack to stop at once.
WAIT_SECONDS = 1


def _log(message: str) -> None:
    print(f"sqs-poller: {message}", file=sys.stderr, flush=True)


def _lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """SQS's MessageAttributes as Lambda's records spell them (stringValue, dataType, ...)."""
    return {
        name: {
            **({"stringValue": value["StringValue"]} if "StringValue" in value else {}),
            **({"binaryValue": value["BinaryValue"]} if "BinaryValue" in value else {}),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value["DataType"],
        }
        for name, value in attributes.items()
    }


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One received message as a record of Lambda's SQS event."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": _lambda_message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_message_ids(reply: dict[str, Any], message_ids: list[str], source: QueueSource) -> set[str]:
    """The messages an invocation did not process: all of them if it failed, else those its
    partial batch response names (when the mapping reports item failures)."""
    if "error" in reply:
        return set(message_ids)
    response = reply.get("response")
    if not source.report_batch_item_failures or not isinstance(response, dict):
        return set()
    failures = response.get("batchItemFailures") or []
    named = {item.get("itemIdentifier") if isinstance(item, dict) else None for item in failures}
    if not named <= set(message_ids):  # Lambda fails the whole batch on an unknown identifier
        return set(message_ids)
    return {str(message_id) for message_id in named}


class QueuePoller:
    """Feeds one queue to one function, one batch at a time, on a daemon thread (start, stop)."""

    def __init__(self, sqs: Any, queue_url: str, queue_arn: str, source: QueueSource, invoke: Invoke, name: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._source = source
        self._invoke = invoke
        self._name = name
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self, wait_seconds: int = WAIT_SECONDS) -> int:
        """Receive one batch, invoke the function with it, delete what it processed: the batch's size."""
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=min(self._source.batch_size, 10),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        reply = self._invoke({"Records": [sqs_record(message, self._queue_arn) for message in messages]})
        failed = failed_message_ids(reply, [message["MessageId"] for message in messages], self._source)
        done = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(messages)
            if message["MessageId"] not in failed
        ]
        if done:
            self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=done)
        if failed:
            _log(f"{self._name}: {len(failed)} of {len(messages)} messages left on the queue for a retry")
        return len(messages)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception as error:  # keep polling, as Lambda's poller does; one line, no traceback
                _log(f"{self._name}: polling failed: {type(error).__name__}")
                self._stopping.wait(WAIT_SECONDS)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"sqs-{self._name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=WAIT_SECONDS + 5)

"""Fault injection at the boto3 client boundary, through botocore's own event system.

A `before-call.<service>.<Operation>` handler that returns a response short-circuits the HTTP call,
and botocore then raises the modeled exception class for the error code (so the code under test
sees exactly what a real DynamoDB or Secrets Manager error looks like, e.g. a
TransactionCanceledException with CancellationReasons). A handler that raises surfaces as a
network failure. An `after-call` handler that raises simulates a response lost after the service
applied the request. botocore's own retries are bypassed: an injected fault stands for a failure
that outlasted them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from tests.robustness.counts import FAULTS, count

ENDPOINT = "https://injected.invalid/"


@dataclass(frozen=True)
class AwsError:
    """An error response of an AWS API: botocore raises the exception class modeled for `code`."""

    code: str
    status: int = 400
    extra: dict[str, Any] = field(default_factory=dict)

    def response(self) -> tuple[AWSResponse, dict[str, Any]]:
        parsed: dict[str, Any] = {
            "Error": {"Code": self.code, "Message": f"injected {self.code}"},
            "ResponseMetadata": {"HTTPStatusCode": self.status, "RequestId": "injected"},
            **self.extra,
        }
        return AWSResponse(ENDPOINT, self.status, HTTPHeaders(), None), parsed


def transaction_canceled(*reasons: str) -> AwsError:
    message = f"Transaction cancelled, please refer cancellation reasons for specific reasons [{', '.join(reasons)}]"
    return AwsError(
        "TransactionCanceledException",
        extra={
            "Error": {"Code": "TransactionCanceledException", "Message": message},
            "CancellationReasons": [{"Code": r} for r in reasons],
        },
    )


def connect_timeout() -> Exception:
    return ConnectTimeoutError(endpoint_url=ENDPOINT)


def read_timeout() -> Exception:
    return ReadTimeoutError(endpoint_url=ENDPOINT)


def connection_refused() -> Exception:
    return EndpointConnectionError(endpoint_url=ENDPOINT)


@dataclass(frozen=True)
class Respond:
    """A successful (HTTP 200) response computed from the serialized request."""

    build: Callable[[dict[str, Any]], dict[str, Any]]


# An error response, an exception to raise (a network failure), or a computed 200 response.
Fault = AwsError | Callable[[], Exception] | Respond


def unprocessed_batch_get(request: dict[str, Any]) -> dict[str, Any]:
    """BatchGetItem answering nothing and returning every key as unprocessed (throttled reads)."""
    items = json.loads(request["body"])["RequestItems"]
    return {"Responses": {name: [] for name in items}, "UnprocessedKeys": items}


class AwsFaultInjector:
    """Inject faults into boto3 clients; every fault that fires is counted (FAULTS)."""

    def __init__(self) -> None:
        self.fired: Counter[str] = Counter()
        self._registered: list[tuple[Any, str, Callable[..., Any]]] = []

    def _register(self, client: Any, event_name: str, handler: Callable[..., Any]) -> None:
        client.meta.events.register(event_name, handler)
        self._registered.append((client, event_name, handler))

    @staticmethod
    def _service(client: Any) -> str:
        service: str = client.meta.service_model.service_id.hyphenize()
        return service

    def fail(self, client: Any, operation: str, fault: Fault, *, times: int = 1) -> None:
        """The next `times` calls of `operation` on `client` fail with `fault` (later calls go through)."""
        remaining = [times]

        def before_call(params: dict[str, Any], **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
            if remaining[0] <= 0:
                return None
            remaining[0] -= 1
            self.fired[operation] += 1
            count(FAULTS)
            if isinstance(fault, AwsError):
                return fault.response()
            if isinstance(fault, Respond):
                parsed = {"ResponseMetadata": {"HTTPStatusCode": 200}, **fault.build(params)}
                return AWSResponse(ENDPOINT, 200, HTTPHeaders(), None), parsed
            raise fault()

        self._register(client, f"before-call.{self._service(client)}.{operation}", before_call)

    def lose_response(self, client: Any, operation: str, *, times: int = 1) -> None:
        """The next `times` successful calls of `operation` take effect, but the caller sees a read timeout."""
        remaining = [times]

        def after_call(http_response: AWSResponse, **kwargs: Any) -> None:
            if remaining[0] <= 0 or http_response.status_code >= 300:
                return
            remaining[0] -= 1
            self.fired[operation] += 1
            count(FAULTS)
            raise read_timeout()

        self._register(client, f"after-call.{self._service(client)}.{operation}", after_call)

    def clear(self) -> None:
        for client, event_name, handler in reversed(self._registered):
            client.meta.events.unregister(event_name, handler)
        self._registered.clear()

"""Powertools Logger, Tracer and Metrics shared by every function.

Service name, namespace and log level come from the POWERTOOLS_* variables the template sets in
Globals. Powertools' Tracer imports the X-Ray SDK on creation even when tracing is disabled, and
that import builds a recorder and two botocore clients (about as slow as importing boto3). Where
tracing is off (tests, `make dev`, benchmarks, `sam local`), the Tracer gets a no-op provider
instead, so only deployed functions, which do trace, pay for the SDK.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment


class _NoopSegment(BaseSegment):
    def close(self, end_time: int | None = None) -> None:
        return None

    def add_subsegment(self, subsegment: Any) -> None:
        return None

    def remove_subsegment(self, subsegment: Any) -> None:
        return None

    def put_annotation(self, key: str, value: Any) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        return None


class NoopTracingProvider(BaseProvider):
    """A tracing provider that records nothing and imports nothing."""

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Generator[BaseSegment]:
        yield _NoopSegment()

    @asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AsyncGenerator[BaseSegment]:
        yield _NoopSegment()

    def put_annotation(self, key: str, value: Any) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None

    def patch(self, modules: Sequence[str]) -> None:
        return None

    def patch_all(self) -> None:
        return None


# Traced from the start: botocore (every AWS call). Patching a library imports it, so Powertools'
# default (every library the X-Ray SDK knows: requests, sqlite3, httplib...) would load modules a
# function never uses; Stripe's HTTP library is patched when a Stripe client is built (`trace_library`).
TRACED_AT_START = ("botocore",)


def _create_tracer() -> Tracer:
    # Same rule as Powertools: disabled by POWERTOOLS_TRACE_DISABLED, outside Lambda, or under SAM local.
    if Tracer._is_tracer_disabled():
        return Tracer(provider=NoopTracingProvider(), disabled=True)
    return Tracer(patch_modules=TRACED_AT_START)


def trace_library(name: str) -> None:
    """Trace the calls of a library the function is about to use (the X-Ray SDK patches it once)."""
    tracer.patch([name])


logger = Logger()
tracer = _create_tracer()
metrics = Metrics()

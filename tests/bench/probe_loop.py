"""The child's command loop, imported only after the first request was served (its imports do not
count towards the cold start).

Commands (one JSON line each, one JSON line answered):
  {"cmd": "warm", "items": [...], "expect_status": 200, "expect_outcome": "synced" | null}
      one call per item, each timed; answers the times (ms), failures, the AWS calls made
      (counted through botocore's event system on the function's own clients) and the peak RSS.
  {"cmd": "throughput", "items": [...], "threads": 8, ...}
      all items through a thread pool (threads=1: sequentially); answers the wall time.
  {"cmd": "exit"} (or end of input)
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, Protocol

MAX_FAILURES_REPORTED = 5


class Target(Protocol):
    def call(self, item: Any) -> Any:
        """The timed part: one request (or one set of direct calls)."""

    def result(self, raw: Any) -> tuple[int, str | None]:
        """(HTTP status, outcome) of a call's return value; not timed."""


class HandlerTarget:
    """The function's real handler, called as Lambda calls it."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], dict[str, Any]], context: Any) -> None:
        self._handler = handler
        self._context = context

    def call(self, item: Any) -> Any:
        return self._handler(item, self._context)

    def result(self, raw: Any) -> tuple[int, str | None]:
        if isinstance(raw, dict) and "batchItemFailures" in raw:
            # An SQS consumer's partial batch response: 200 when no message failed.
            return (200, "batch_ok") if not raw["batchItemFailures"] else (500, "batch_item_failures")
        status = int(raw.get("statusCode", 0))
        outcome: str | None = None
        try:
            body = json.loads(raw.get("body") or "null")
        except ValueError:
            body = None
        if isinstance(body, dict):
            outcome = body.get("outcome") if isinstance(body.get("outcome"), str) else None
        return status, outcome


class AwsCallCounter:
    """Counts API calls (before-call) and HTTP attempts (before-send) per service.operation on the
    clients the function has created so far. Registered after the first request, when they exist."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.sends: Counter[str] = Counter()
        self.clients: list[str] = []

    def _on_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def _on_send(self, event_name: str, **_: Any) -> None:
        service, operation = event_name.split(".", 2)[1:]
        with self._lock:
            self.sends[f"{service}.{operation}"] += 1

    def attach(self, own: list[tuple[str, Any]] | None = None) -> None:
        """Count the calls of the function's clients, and of `own` (the floor's: (service, client))."""
        for name, client in [*self._existing_clients(), *(own or [])]:
            client.meta.events.register("before-call.*.*", self._on_call)
            client.meta.events.register("before-send.*.*", self._on_send)
            self.clients.append(name)

    @staticmethod
    def _existing_clients() -> list[tuple[str, Any]]:
        """The botocore clients the function has created: those cached by tenant_billing.aws_clients
        (DynamoDB, Secrets Manager, and any other it gains). Never creates one: only cached results
        are read back."""
        clients: list[tuple[str, Any]] = []
        aws_clients = sys.modules.get("tenant_billing.aws_clients")
        for name in sorted(vars(aws_clients) if aws_clients is not None else ()):
            factory = getattr(aws_clients, name)
            cache_info = getattr(factory, "cache_info", None)
            if callable(cache_info) and cache_info().currsize and cache_info().maxsize is None:
                try:
                    client = factory()
                except TypeError:  # a cached function with arguments: not a client factory
                    continue
                if hasattr(getattr(client, "meta", None), "events"):
                    clients.append((client.meta.service_model.service_name, client))
        return clients

    def take(self) -> tuple[dict[str, int], dict[str, int]]:
        with self._lock:
            calls, sends = dict(self.calls), dict(self.sends)
            self.calls.clear()
            self.sends.clear()
        return calls, sends


class CallFailed:
    """A call that raised (the handler itself never should: it answers 5xx instead)."""

    def __init__(self, exc: Exception) -> None:
        self.message = f"raised {type(exc).__name__}: {exc}"[:300]


def _peak_rss_kib() -> int:
    """getrusage's ru_maxrss (KiB on Linux) of this process."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _peak_rss_own_kib() -> int | None:
    """The peak RSS of this process's own memory (VmHWM). Linux carries ru_maxrss over execve, so
    a process spawned by a big parent reports at least the parent's peak there; VmHWM starts
    afresh with the new program, as it does for a Lambda runtime process."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Runner:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.counter = AwsCallCounter()
        self.counter.attach(getattr(target, "aws_clients", None))

    def _check(self, raw: Any, command: dict[str, Any], outcomes: Counter[str], failures: list[str]) -> None:
        if isinstance(raw, CallFailed):
            outcomes["raised"] += 1
            failures.append(raw.message)
            return
        status, outcome = self.target.result(raw)
        outcomes[outcome or str(status)] += 1
        expected_outcome = command.get("expect_outcome")
        if status != command.get("expect_status", 200) or (expected_outcome and outcome != expected_outcome):
            failures.append(f"status {status}, outcome {outcome}")

    def _call(self, item: Any) -> Any:
        try:
            return self.target.call(item)
        except Exception as exc:  # a failed request is reported, not fatal to the run
            return CallFailed(exc)

    def warm(self, command: dict[str, Any]) -> dict[str, Any]:
        self.counter.take()
        millis: list[float] = []
        raws: list[Any] = []
        for item in command["items"]:
            started = time.perf_counter()
            raw = self._call(item)
            millis.append((time.perf_counter() - started) * 1000)
            raws.append(raw)
        calls, sends = self.counter.take()
        return {"ms": millis, **self._summary(raws, command), "aws_calls": calls, "aws_sends": sends}

    def throughput(self, command: dict[str, Any]) -> dict[str, Any]:
        self.counter.take()
        items, threads = command["items"], int(command.get("threads", 1))
        if threads <= 1:
            started = time.perf_counter()
            raws = [self._call(item) for item in items]
            seconds = time.perf_counter() - started
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                started = time.perf_counter()
                raws = list(pool.map(self._call, items))
                seconds = time.perf_counter() - started
        calls, sends = self.counter.take()
        return {"seconds": seconds, "n": len(items), **self._summary(raws, command), "aws_calls": calls, "aws_sends": sends}

    def _summary(self, raws: list[Any], command: dict[str, Any]) -> dict[str, Any]:
        outcomes: Counter[str] = Counter()
        failures: list[str] = []
        for raw in raws:
            self._check(raw, command, outcomes, failures)
        return {
            "failed": len(failures),
            "failures": failures[:MAX_FAILURES_REPORTED],
            "outcomes": dict(outcomes),
            "maxrss_kib": _peak_rss_kib(),
            "vmhwm_kib": _peak_rss_own_kib(),
        }


def serve(target: Target, protocol: IO[str]) -> int:
    runner = Runner(target)
    for line in sys.stdin:
        command: dict[str, Any] = json.loads(line)
        name = command.get("cmd")
        if name == "exit":
            break
        if name == "warm":
            reply = runner.warm(command)
        elif name == "throughput":
            reply = runner.throughput(command)
        else:
            reply = {"error": f"unknown command {name!r}"}
        reply["clients"] = runner.counter.clients
        protocol.write(json.dumps(reply) + "\n")
        protocol.flush()
    return 0

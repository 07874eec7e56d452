"""Powertools' Logger, Tracer and Metrics shared by every function, each created on first use.

Importing Powertools costs a cold start about 15 ms (its package imports Logger, Metrics and Tracer
together), and a request that logs nothing and adds no metric, with tracing off, never needs it: a
successful status read. So `logger`, `metrics` and `tracer` are stand-ins that create Powertools'
object the first time it is really used and hand it every call; until then they keep what it
would have been told:

- the logger, the keys appended so far and the invocation in progress: when created mid-request it
  gets the Lambda context, cold start and correlation id as `inject_lambda_context` would have set
  them (Powertools' own `log_event`, sampling and buffering are not used here);
- the metrics, nothing: `log_metrics` flushes only metrics that were added;
- the tracer, whether tracing is on, decided on first use by Powertools' rule (off with
  POWERTOOLS_TRACE_DISABLED, outside Lambda or under SAM local). Off, the handlers run undecorated
  and neither Powertools nor the X-Ray SDK (whose import builds a recorder and two botocore
  clients) is imported.

Service name, namespace and log level come from the POWERTOOLS_* variables the template sets in
Globals, read when the object is created, never at import.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics, Tracer

# Powertools' correlation_paths.API_GATEWAY_HTTP (a test checks they agree): importing that module
# would import all of Powertools.
API_GATEWAY_HTTP_REQUEST_ID = "requestContext.requestId"
# Traced from the start: botocore (every AWS call). Patching a library imports it, so Powertools'
# default (every library the X-Ray SDK knows: requests, sqlite3, httplib...) would load modules a
# function never uses; Stripe's HTTP library is patched when a Stripe client is built (`trace_library`).
TRACED_AT_START = ("botocore",)
_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
# Two threads logging their first line together must not both set Powertools up (two handlers).
_CREATING = threading.RLock()

Handler = Callable[[Any, Any], Any]


class _Invocation:
    """The invocation in progress, for a logger created during it."""

    def __init__(self, event: Any, context: Any, correlation_id_path: str | None, clear_state: bool, cold_start: bool) -> None:
        self.event = event
        self.context = context
        self.correlation_id_path = correlation_id_path
        self.clear_state = clear_state
        self.cold_start = cold_start


class _ColdStart:
    """True for the process's first invocation (not under provisioned concurrency), as Powertools counts it."""

    def __init__(self) -> None:
        self._first = True

    def take(self) -> bool:
        first, self._first = self._first, False
        return first and os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") != "provisioned-concurrency"


_cold_start = _ColdStart()


class _OnFirstUse[T]:
    """A Powertools object made by `create` on the first `get`, once, whichever threads ask together."""

    def __init__(self, create: Callable[[], T]) -> None:
        self._create = create
        self.value: T | None = None

    def get(self) -> T:
        if self.value is None:
            with _CREATING:
                if self.value is None:
                    self.value = self._create()
        return self.value


class LazyLogger:
    """Powertools' Logger, created on the first log line (or any attribute not defined here)."""

    def __init__(self) -> None:
        self._logger = _OnFirstUse(self._create)
        self._keys: dict[str, object] = {}
        self._invocation: _Invocation | None = None

    @property
    def created(self) -> bool:
        return self._logger.value is not None

    def powertools(self) -> Logger:
        return self._logger.get()

    def _create(self) -> Logger:
        from aws_lambda_powertools import Logger

        logger = Logger()
        if self._invocation is not None:
            _inject(logger, self._invocation)
        logger.append_keys(**self._keys)
        self._keys = {}
        return logger

    # stacklevel: the caller's line, not this stand-in's, is the log line's location.
    def info(self, msg: object, *args: Any, stacklevel: int = 2, **kwargs: Any) -> None:
        self.powertools().info(msg, *args, stacklevel=stacklevel + 1, **kwargs)

    def warning(self, msg: object, *args: Any, stacklevel: int = 2, **kwargs: Any) -> None:
        self.powertools().warning(msg, *args, stacklevel=stacklevel + 1, **kwargs)

    def error(self, msg: object, *args: Any, stacklevel: int = 2, **kwargs: Any) -> None:
        self.powertools().error(msg, *args, stacklevel=stacklevel + 1, **kwargs)

    def exception(self, msg: object, *args: Any, stacklevel: int = 2, **kwargs: Any) -> None:
        self.powertools().exception(msg, *args, stacklevel=stacklevel + 1, **kwargs)

    def append_keys(self, **keys: object) -> None:
        if (logger := self._logger.value) is None:
            self._keys.update(keys)
        else:
            logger.append_keys(**keys)

    def remove_keys(self, keys: Iterable[str]) -> None:
        if (logger := self._logger.value) is None:
            for key in keys:
                self._keys.pop(key, None)
        else:
            logger.remove_keys(keys)

    def inject_lambda_context(
        self, correlation_id_path: str | None = None, clear_state: bool = False
    ) -> Callable[[Handler], Handler]:
        """Powertools' `inject_lambda_context`: the Lambda context, cold start and correlation id
        on every line the invocation logs (`clear_state`: and no key of an earlier invocation)."""

        def decorate(handler: Handler) -> Handler:
            @functools.wraps(handler)
            def injected(event: Any, context: Any) -> Any:
                invocation = _Invocation(event, context, correlation_id_path, clear_state, _cold_start.take())
                if (logger := self._logger.value) is None:
                    if clear_state:
                        self._keys = {}
                    self._invocation = invocation
                else:
                    _inject(logger, invocation)
                return handler(event, context)

            return injected

        return decorate

    def __getattr__(self, name: str) -> Any:
        return getattr(self.powertools(), name)


def _inject(logger: Logger, invocation: _Invocation) -> None:
    """What Powertools' inject_lambda_context does at the start of an invocation."""
    from aws_lambda_powertools.logging.lambda_context import build_lambda_context_model

    keys = {"cold_start": invocation.cold_start, **vars(build_lambda_context_model(invocation.context))}
    if invocation.clear_state:
        logger.structure_logs(**keys)
    else:
        logger.append_keys(**keys)
    if invocation.correlation_id_path:
        from aws_lambda_powertools.utilities import jmespath_utils

        logger.set_correlation_id(jmespath_utils.query(envelope=invocation.correlation_id_path, data=invocation.event))


class LazyMetrics:
    """Powertools' Metrics, created on the first metric added (or any attribute not defined here)."""

    def __init__(self) -> None:
        self._metrics = _OnFirstUse(_create_metrics)

    @property
    def created(self) -> bool:
        return self._metrics.value is not None

    def powertools(self) -> Metrics:
        return self._metrics.get()

    def add_metric(self, name: str, unit: str, value: float) -> None:
        self.powertools().add_metric(name=name, unit=unit, value=value)

    def log_metrics(self, handler: Handler) -> Handler:
        """Powertools' `log_metrics`: the invocation's metrics flushed when it ends (if any was added)."""

        @functools.wraps(handler)
        def flushed(event: Any, context: Any) -> Any:
            try:
                return handler(event, context)
            finally:
                if (metrics := self._metrics.value) is not None:
                    metrics.flush_metrics()

        return flushed

    def __getattr__(self, name: str) -> Any:
        return getattr(self.powertools(), name)


def _create_metrics() -> Metrics:
    from aws_lambda_powertools import Metrics

    return Metrics()


def _create_tracer() -> Tracer:
    from aws_lambda_powertools import Tracer

    return Tracer(patch_modules=TRACED_AT_START)


def tracing_disabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Powertools' rule: disabled by POWERTOOLS_TRACE_DISABLED, outside Lambda, or under SAM local."""
    if environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUE:
        return True
    return not environ.get("LAMBDA_TASK_ROOT") or bool(environ.get("AWS_SAM_LOCAL") or environ.get("AWS_CHALICE_CLI_MODE"))


class LazyTracer:
    """Powertools' Tracer where tracing is on, created on the first traced call; nothing where it is off."""

    def __init__(self) -> None:
        self._enabled: bool | None = None
        self._tracer = _OnFirstUse(_create_tracer)

    @property
    def enabled(self) -> bool:
        if self._enabled is None:
            self._enabled = not tracing_disabled()
        return self._enabled

    def powertools(self) -> Tracer:
        return self._tracer.get()

    def capture_lambda_handler(self, handler: Handler) -> Handler:
        return self._traced(handler, lambda: self.powertools().capture_lambda_handler(handler))

    def capture_method[**P, R](self, method: Callable[P, R]) -> Callable[P, R]:
        return self._traced(method, lambda: self.powertools().capture_method(method))

    def _traced[**P, R](self, function: Callable[P, R], trace: Callable[[], Callable[P, R]]) -> Callable[P, R]:
        """`function`, traced from its first call if tracing is on then."""
        chosen: list[Callable[P, R]] = []

        @functools.wraps(function)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            if not chosen:
                chosen.append(trace() if self.enabled else function)
            return chosen[0](*args, **kwargs)

        return call

    def patch(self, modules: Iterable[str]) -> None:
        if self.enabled:
            self.powertools().patch(list(modules))


def trace_library(name: str) -> None:
    """Trace the calls of a library the function is about to use (the X-Ray SDK patches it once)."""
    tracer.patch([name])


def prime() -> None:
    """Create what a request would create (SnapStart's priming: tenant_billing.snapstart)."""
    logger.powertools()
    metrics.powertools()
    if tracer.enabled:
        tracer.powertools()


logger = LazyLogger()
tracer = LazyTracer()
metrics = LazyMetrics()

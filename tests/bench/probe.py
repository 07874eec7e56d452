"""The benchmark's child process: one cold start, then warm requests on command.

    python -P tests/bench/probe.py baseline pass|boto3|boto3_stripe
    python -P tests/bench/probe.py handler <module> <handler> <function name>
    python -P tests/bench/probe.py floor <function>

The parent measures from just before spawning to the first line this process writes: after the
imports (baseline), or after the handler (a product function's, or a tutorial handler's) or the
floor (the same calls, no handler: the top-level module `floor`, tests/bench/floor.py as the
benchmark lays it out, first on the import path) served its first request. The first request
arrives as the first JSON line on stdin. Later lines are commands (tests.bench.probe_loop); each
gets one JSON line back. Stdout (fd 1) points at
/dev/null, so Powertools' log lines and metrics go nowhere; the protocol uses a duplicate of the
original stdout.

Only os, sys and time (already loaded by the interpreter) are imported before the code under
test, and no typing: anything else would be charged to the cold start. It runs as a script, not
`-m tests.bench.probe`: importing the `tests` package would set test defaults in the environment
(POWERTOOLS_TRACE_DISABLED among them) before the code under test reads it; `-P` keeps this
folder off the import path. tests.bench.probe_loop is imported once the first answer is written.
"""

from __future__ import annotations

import io
import os
import sys
import time


class ProbeContext:
    """The Lambda context attributes Powertools reads."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self.aws_request_id = "00000000-0000-4000-8000-000000000000"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 15_000


def _protocol() -> io.TextIOWrapper:
    """A line-buffered writer on the original stdout; fd 1 then goes to /dev/null."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    return protocol


def main() -> int:
    started = time.perf_counter()
    if "importtime" in sys._xoptions:
        sys.stderr.write("--- bench probe: started ---\n")
    mode = sys.argv[1]
    protocol = _protocol()
    write = protocol.write
    if mode == "baseline":
        kind = sys.argv[2]
        if kind in ("boto3", "boto3_stripe"):
            __import__("boto3")
        if kind == "boto3_stripe":
            __import__("stripe")
        imported = time.perf_counter()
        write(f'{{"started": {started!r}, "imported": {imported!r}}}\n')
        sys.stdin.buffer.read()  # the parent closes stdin when it has read the line
        return 0
    if mode == "handler":
        module_name, handler_name, function_name = sys.argv[2], sys.argv[3], sys.argv[4]
        __import__(module_name)
        handler = getattr(sys.modules[module_name], handler_name)
        imported = time.perf_counter()
        if "importtime" in sys._xoptions:
            sys.stderr.write("--- bench probe: handler imported ---\n")
        import json

        request = json.loads(sys.stdin.buffer.readline())
        context = ProbeContext(function_name)
        # As the Lambda runtime does per invocation (tests.bench.xray.INVOCATION_TRACE_VARIABLE).
        trace_id = os.environ.pop("BENCH_INVOCATION_TRACE_ID", None)
        if trace_id is not None:
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
        response = handler(request["event"], context)
        first = time.perf_counter()
        status = response.get("statusCode") if isinstance(response, dict) else None
        if isinstance(response, dict) and "batchItemFailures" in response:
            status = 500 if response["batchItemFailures"] else 200  # an SQS consumer's partial batch response
        write(json.dumps({"started": started, "imported": imported, "first": first, "status": status}) + "\n")
        if "importtime" in sys._xoptions:
            sys.stderr.write("--- bench probe: first request served ---\n")
        from tests.bench.probe_loop import HandlerTarget, serve

        return serve(HandlerTarget(handler, context), protocol)
    if mode == "floor":
        floor = __import__("floor")
        imported = time.perf_counter()
        import json

        target = floor.FloorTarget(sys.argv[2], json.loads(sys.stdin.buffer.readline()))
        status, _ = target.result(target.call(target.first_item()))
        first = time.perf_counter()
        write(json.dumps({"started": started, "imported": imported, "first": first, "status": status}) + "\n")
        from tests.bench.probe_loop import serve

        return serve(target, protocol)
    raise SystemExit(f"unknown probe mode {mode!r}")


if __name__ == "__main__":
    raise SystemExit(main())

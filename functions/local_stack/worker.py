"""One function's execution environment: a process with that function's environment variables
and import path (its code folder and the layer), invoking its handler once per request.

Protocol: one JSON line in on stdin ({"event": ..., "request_id": ...}), one JSON line out on the
original stdout ({"response": ...} or {"error": ...}). The handler's own output (Powertools logs)
goes to stderr, i.e. the `make dev` terminal, as it would go to CloudWatch.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any


@dataclass
class LocalContext:
    function_name: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline: float
    invoked_function_arn: str = ""
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def main() -> None:
    # In a process group of its own (function_process): the terminal's Ctrl-C is the stack's to handle.
    module_name, handler_name, function_name = sys.argv[1], sys.argv[2], sys.argv[3]
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    handler: Any = None
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if handler is None:
                handler = getattr(importlib.import_module(module_name), handler_name)
            context = LocalContext(
                function_name=function_name,
                memory_limit_in_mb=int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")),
                aws_request_id=request["request_id"],
                deadline=time.monotonic() + float(os.environ["LOCAL_FUNCTION_TIMEOUT"]),
                invoked_function_arn=f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}",
            )
            reply: dict[str, Any] = {"response": handler(request["event"], context)}
        except Exception as exc:  # the runtime reports any handler failure as an error
            traceback.print_exc()
            reply = {"error": type(exc).__name__}
        sys.stdout.flush()
        protocol.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()

"""A function's warm execution environment for the local stack: one worker process (worker.py) with
the function's environment from template.yaml, invoked one request at a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Mapping
from typing import IO, Any

from functions.local_stack.template_model import FunctionSpec
from tests.support.template import REPO_ROOT


class FunctionProcess:
    """A function's warm execution environment: one worker process, one request at a time."""

    def __init__(self, spec: FunctionSpec, extra_env: Mapping[str, str]) -> None:
        self.spec = spec
        self._env = {
            **{key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG", "TZ", "TMPDIR")},
            **spec.environment,
            **extra_env,
            "PYTHONPATH": os.pathsep.join([spec.code_dir, str(REPO_ROOT / "layers" / "common"), str(REPO_ROOT)]),
            "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
            "LOCAL_FUNCTION_TIMEOUT": str(spec.timeout),
            "PYTHONUNBUFFERED": "1",
        }
        self._lock = threading.Lock()  # one request at a time
        self._spawn_lock = threading.Lock()  # starting a process and stopping exclude each other
        self._process: subprocess.Popen[str] | None = None
        self._stopped = False

    def _start(self) -> subprocess.Popen[str]:
        module = "functions.local_stack.worker"
        args = [sys.executable, "-m", module, self.spec.handler_module, self.spec.handler_name, self.spec.logical_id]
        # A process group of its own: a Ctrl-C in the terminal reaches the whole foreground group,
        # and a worker started at that moment (a webhook delivery) would die in its interpreter's
        # start-up with a traceback. The stack stops its workers itself (stop), after its servers
        # and pollers, so none restarts them in between; a worker whose stack died ends at stdin's EOF.
        return subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=self._env,
            cwd=self.spec.code_dir,
            process_group=0,
        )

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            with self._spawn_lock:
                if self._stopped:
                    return {"error": "the local stack is stopping"}
                if self._process is None or self._process.poll() is not None:
                    self._process = self._start()
                process = self._process
            stdin: IO[str] | None = process.stdin
            stdout: IO[str] | None = process.stdout
            assert stdin is not None and stdout is not None
            try:
                stdin.write(json.dumps({"event": event, "request_id": str(uuid.uuid4())}) + "\n")
                stdin.flush()
                line = stdout.readline()
            except (BrokenPipeError, OSError):
                line = ""
            if not line:
                self._process = None
                return {"error": "the function process exited"}
            reply: dict[str, Any] = json.loads(line)
            return reply

    def stop(self) -> None:
        # Not behind the request lock: a request in flight (a page polling /billing/sync while the
        # stack stops) would hold it for as long as its own Stripe and AWS calls take. Ending the
        # process ends that request too (it answers "the function process exited"). The spawn lock
        # is held only while a process starts, so no request can start one this stop would miss.
        with self._spawn_lock:
            self._stopped = True
            process, self._process = self._process, None
        if process and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()

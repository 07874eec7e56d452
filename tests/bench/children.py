"""The parent's side of tests.bench.probe: spawn a child, time its cold start, send it commands."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

from tests.support.template import REPO_ROOT

PROBE_MODULE = "tests.bench.probe"
LAYER_DIR = REPO_ROOT / "layers" / "common"
# The child's only input before its first answer is this line, written before it reads:
# it must fit the pipe's buffer (64 KiB on Linux) so the write never waits for the child.
MAX_FIRST_LINE = 48 * 1024
CHILD_TIMEOUT_SECONDS = 120


class ProbeError(RuntimeError):
    pass


@dataclass(frozen=True)
class ProbeSpec:
    """How to start one child: `python [python_args] -m tests.bench.probe <args>`."""

    label: str
    args: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str
    python_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class ColdStart:
    """Milliseconds from just before spawning: to the probe's first line of code (interpreter
    startup), to the end of its imports, to its first answer (the cold start)."""

    total_ms: float
    startup_ms: float
    import_ms: float
    first_request_ms: float
    status: int | None


class Probe:
    def __init__(self, spec: ProbeSpec) -> None:
        self.spec = spec
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by discard()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, first_request: Any | None = None) -> ColdStart:
        """Spawn the child and wait for its first line: the cold start, measured from just before
        spawning to the moment the child reports."""
        line = b"" if first_request is None else json.dumps(first_request).encode() + b"\n"
        if len(line) > MAX_FIRST_LINE:
            raise ProbeError(f"{self.spec.label}: first request too large for the pipe ({len(line)} bytes)")
        args = spawn_args(self.spec)
        started = time.perf_counter()
        process = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=dict(self.spec.env),
            cwd=self.spec.cwd,
        )
        self._process = process
        assert process.stdin is not None and process.stdout is not None
        if line:
            process.stdin.write(line)
            process.stdin.flush()
        reply = process.stdout.readline()
        finished = time.perf_counter()
        if not reply:
            self._fail("exited before answering")
        report: dict[str, Any] = json.loads(reply)
        # Both clocks are CLOCK_MONOTONIC (perf_counter on Linux), so the child's are comparable.
        child_started, imported = float(report["started"]), float(report["imported"])
        first = float(report.get("first", imported))
        return ColdStart(
            total_ms=(finished - started) * 1000,
            startup_ms=(child_started - started) * 1000,
            import_ms=(imported - child_started) * 1000,
            first_request_ms=(first - imported) * 1000,
            status=report.get("status"),
        )

    def command(self, payload: dict[str, Any]) -> dict[str, Any]:
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise ProbeError(f"{self.spec.label}: not started")
        try:
            process.stdin.write(json.dumps(payload).encode() + b"\n")
            process.stdin.flush()
            reply = process.stdout.readline()
        except BrokenPipeError:
            reply = b""
        if not reply:
            self._fail(f"exited during {payload.get('cmd')!r}")
        result: dict[str, Any] = json.loads(reply)
        if "error" in result:
            raise ProbeError(f"{self.spec.label}: {result['error']}")
        return result

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                with contextlib.suppress(BrokenPipeError):
                    process.stdin.close()
            try:
                process.wait(timeout=CHILD_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def discard(self) -> None:
        self.close()
        self._stderr.close()

    def _fail(self, what: str) -> None:
        process = self._process
        if process is not None:
            process.kill()
            process.wait()
        tail = "\n".join(self.stderr_text().splitlines()[-25:])
        raise ProbeError(f"{self.spec.label}: the child {what}; its stderr ends with:\n{tail}")


def probe_env(base: Mapping[str, str], function_dir: str, layer_dir: str = str(LAYER_DIR)) -> dict[str, str]:
    """`base` plus the import path: the function's folder, the layer and (only for the probe
    module itself) the repository root."""
    return {**base, "PYTHONPATH": os.pathsep.join([function_dir, layer_dir, str(REPO_ROOT)])}


def spawn_args(spec: ProbeSpec) -> list[str]:
    return [sys.executable, *spec.python_args, "-m", PROBE_MODULE, *spec.args]

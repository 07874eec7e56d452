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

# Run as a script with -P (see its docstring), the repository root on PYTHONPATH for probe_loop.
PROBE_SCRIPT = REPO_ROOT / "tests" / "bench" / "probe.py"
# The child's only input before its first answer is this line, written before it reads:
# it must fit the pipe's buffer (64 KiB on Linux) so the write never waits for the child.
MAX_FIRST_LINE = 48 * 1024
CHILD_TIMEOUT_SECONDS = 120


class ProbeError(RuntimeError):
    pass


@dataclass(frozen=True)
class ProbeSpec:
    """How to start one child: `python [python_args] -P tests/bench/probe.py <args>`."""

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

    def close(self, *, kill: bool = False) -> None:
        """End the child: by closing its input (it exits when done), or at once (`kill`: a child
        whose cold start was all it was for need not load its command loop only to leave)."""
        process, self._process = self._process, None
        if process is not None:
            if kill:
                process.kill()
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

    def discard(self, *, kill: bool = False) -> None:
        self.close(kill=kill)
        self._stderr.close()

    def _fail(self, what: str) -> None:
        process = self._process
        if process is not None:
            process.kill()
            process.wait()
        tail = "\n".join(self.stderr_text().splitlines()[-25:])
        raise ProbeError(f"{self.spec.label}: the child {what}; its stderr ends with:\n{tail}")


def probe_env(base: Mapping[str, str], *import_roots: str) -> dict[str, str]:
    """`base` plus the import path: `import_roots` (the code's folder, then the layer's: Lambda puts
    /var/task before /opt/python, and both before the runtime's own packages, here the venv's,
    where boto3 comes from) and, only for the probe module itself, the repository root."""
    return {**base, "PYTHONPATH": os.pathsep.join([*import_roots, str(REPO_ROOT)])}


def spawn_args(spec: ProbeSpec) -> list[str]:
    return [sys.executable, *spec.python_args, "-P", str(PROBE_SCRIPT), *spec.args]

"""Where a cold start's import time goes: `python -X importtime` output of one probe child,
split at the probe's marker into the handler module's imports and the imports its first
request triggers lazily, and summed per top-level package (self time)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Written to stderr by tests.bench.probe (only under -X importtime) when it starts (after the
# interpreter's own imports), once the handler is imported and once its first request is served
# (the probe's command loop is imported after it: not the function's).
PROBE_STARTED_MARKER = "--- bench probe: started ---"
HANDLER_IMPORTED_MARKER = "--- bench probe: handler imported ---"
FIRST_REQUEST_SERVED_MARKER = "--- bench probe: first request served ---"
_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


@dataclass
class ImportProfile:
    handler_ms: float = 0.0
    first_request_ms: float = 0.0
    by_package_ms: dict[str, float] = field(default_factory=dict)
    first_request_packages_ms: dict[str, float] = field(default_factory=dict)
    slowest_modules: list[tuple[str, float]] = field(default_factory=list)

    def as_dict(self, top: int = 10) -> dict[str, object]:
        return {
            "handler_import_ms": round(self.handler_ms, 1),
            "first_request_imports_ms": round(self.first_request_ms, 1),
            "self_ms_by_package": _top(self.by_package_ms, top),
            "first_request_self_ms_by_package": _top(self.first_request_packages_ms, top),
            "slowest_modules_self_ms": [[name, round(ms, 1)] for name, ms in self.slowest_modules[:top]],
        }


def _top(values: dict[str, float], top: int) -> dict[str, float]:
    ordered = sorted(values.items(), key=lambda item: item[1], reverse=True)[:top]
    return {name: round(ms, 1) for name, ms in ordered}


def parse(stderr: str) -> ImportProfile:
    """Self times (ms), excluding what the interpreter imports before the probe runs."""
    profile = ImportProfile()
    after_handler = False
    started = False
    modules: list[tuple[str, float]] = []
    for line in stderr.splitlines():
        if line.strip() == PROBE_STARTED_MARKER:
            # Everything before is interpreter startup (site, encodings): the same in every child.
            started = True
            continue
        if line.strip() == HANDLER_IMPORTED_MARKER:
            after_handler = True
            continue
        if line.strip() == FIRST_REQUEST_SERVED_MARKER:
            break
        match = _LINE.match(line)
        if match is None or not started:
            continue
        self_us, name = int(match.group(1)), match.group(4)
        package = name.split(".")[0]
        ms = self_us / 1000
        profile.by_package_ms[package] = profile.by_package_ms.get(package, 0.0) + ms
        modules.append((name, ms))
        if after_handler:
            profile.first_request_ms += ms
            profile.first_request_packages_ms[package] = profile.first_request_packages_ms.get(package, 0.0) + ms
        else:
            profile.handler_ms += ms
    profile.slowest_modules = sorted(modules, key=lambda item: item[1], reverse=True)
    return profile

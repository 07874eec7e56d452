"""Session-wide tallies of what the robustness suite exercised.

Tests increment them; conftest's `pytest_terminal_summary` prints one line and, when the
ROBUSTNESS_COUNTS_JSON environment variable names a file, writes the same numbers there as JSON
(nothing is ever written into the repository).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FUZZ = "fuzz_cases"
FAULTS = "faults_injected"
ISOLATION = "isolation_checks"
LOG_SCANS = "log_scans"
KINDS = (FUZZ, FAULTS, ISOLATION, LOG_SCANS)
JSON_PATH_ENV = "ROBUSTNESS_COUNTS_JSON"

COUNTS: Counter[str] = Counter()


def count(kind: str, n: int = 1) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown count {kind!r}")
    COUNTS[kind] += n


def summary(counts: Mapping[str, int], failed: int) -> dict[str, Any]:
    return {**{kind: int(counts.get(kind, 0)) for kind in KINDS}, "failed": failed, "all_passing": failed == 0}


def summary_line(counts: Mapping[str, int], failed: int) -> str:
    numbers = summary(counts, failed)
    verdict = "all passing" if failed == 0 else f"{failed} not passing"
    return (
        f"robustness: {numbers[FUZZ]} fuzz cases, {numbers[FAULTS]} faults injected, "
        f"{numbers[ISOLATION]} isolation checks, {numbers[LOG_SCANS]} log scans, {verdict}"
    )


def write_json(path: Path, counts: Mapping[str, int], failed: int) -> None:
    path.write_text(json.dumps(summary(counts, failed), indent=2, sort_keys=True) + "\n")

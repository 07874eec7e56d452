"""Deployment package sizes: `sam build` of a copy of the project into a temporary directory (so
nothing under the repository is written, not even .aws-sam), or an existing .aws-sam/build."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench.shipped import finish_build
from tests.support.template import REPO_ROOT

SAM = REPO_ROOT / ".venv-sam" / "bin" / "sam"
EXISTING_BUILD = REPO_ROOT / ".aws-sam" / "build"
# Built folder (logical id) -> the name the report uses.
ARTIFACTS = {
    "BillingStatusFunction": "status",
    "BillingCheckoutFunction": "checkout",
    "BillingPortalFunction": "portal",
    "StripeWebhookFunction": "ingest",
    "EventSyncFunction": "consumer",
    "CommonLayer": "layer",
}
SAM_BUILD_TIMEOUT_SECONDS = 900


def apparent_size(path: Path) -> int:
    """Bytes as `du -sb` counts them: apparent sizes of every file, directory and link, each inode once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, dirs, files in os.walk(path):
        for name in [".", *dirs, *files]:
            stat = (Path(root) / name).lstat()
            key = (stat.st_dev, stat.st_ino)
            if key not in seen:
                seen.add(key)
                total += stat.st_size
    return total


def measure(build_dir: Path) -> dict[str, float | None]:
    return {
        name: round(apparent_size(build_dir / logical_id) / 1e6, 2) if (build_dir / logical_id).is_dir() else None
        for logical_id, name in ARTIFACTS.items()
    }


def python313_dir() -> str | None:
    """The folder to put first on PATH so `sam build` finds python3.13 (None: it already does)."""
    found = shutil.which("python3.13")
    if found:
        check = subprocess.run([found, "-c", "import sys; assert sys.version_info[:2] == (3, 13)"], capture_output=True)
        if check.returncode == 0:
            return None
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    for candidate in sorted(glob.glob(f"{pyenv_root}/versions/3.13*/bin/python3.13"), reverse=True):
        return str(Path(candidate).parent)
    raise RuntimeError("no python3.13 on PATH or in pyenv's versions folder (sam build needs one)")


def sam_build_sizes() -> dict[str, Any]:
    if not SAM.exists():
        return {"source": "not built", "error": f"{SAM} is missing (make install)", "mb": {}}
    with tempfile.TemporaryDirectory(prefix="bench-sam-") as tmp:
        project = Path(tmp) / "project"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        project.mkdir()
        for name in ("template.yaml", "samconfig.toml"):
            if (REPO_ROOT / name).exists():
                shutil.copy2(REPO_ROOT / name, project / name)
        for folder in ("functions", "layers"):
            shutil.copytree(REPO_ROOT / folder, project / folder, ignore=ignore)
        build_dir = Path(tmp) / "build"
        env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
        extra = python313_dir()
        if extra:
            env["PATH"] = f"{extra}{os.pathsep}{env.get('PATH', '')}"
        started = time.perf_counter()
        done = subprocess.run(
            [str(SAM), "build", "--build-dir", str(build_dir)],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=SAM_BUILD_TIMEOUT_SECONDS,
        )
        seconds = round(time.perf_counter() - started, 1)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
            return {"source": "sam build failed", "error": tail, "mb": {}, "build_seconds": seconds}
        without_bytecode = measure(build_dir)
        # As `make build` ships it: sam build, then the Makefile's bytecode target.
        finish_build(build_dir)
        return {
            "source": "make build: sam build (temporary --build-dir) + bytecode",
            "mb": measure(build_dir),
            "mb_without_bytecode": without_bytecode,
            "build_seconds": seconds,
        }


def existing_build_sizes() -> dict[str, Any]:
    if not EXISTING_BUILD.is_dir():
        return {"source": "not built", "mb": {}}
    return {"source": str(EXISTING_BUILD.relative_to(REPO_ROOT)), "mb": measure(EXISTING_BUILD)}

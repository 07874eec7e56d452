"""The code as Lambda gets it: the layer's packages and the function's folder in a fresh directory,
imported by a process that may not write bytecode (Lambda's code folders are read-only).

`sam build` unpacks wheels and copies sources: it ships no .pyc files, so every cold start in
Lambda compiles every module it imports. `make build` compiles them after `sam build` (see the
Makefile's `bytecode` target). This module lays out both variants from the packages installed in
.venv (the versions layers/common/requirements.txt pins; the build's are the arm64 wheels of the
same versions), so the benchmark can time a cold start of each.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import tempfile
from pathlib import Path

from packaging.requirements import Requirement

from tests.bench import report
from tests.support.template import REPO_ROOT

LAYER_DIR = REPO_ROOT / "layers" / "common"
LAYER_PACKAGE = "tenant_billing"
NO_BYTECODE = "sam build alone (no .pyc)"
BYTECODE = report.BYTECODE_VARIANT
LAYER_FOLDER = "layer"


def layer_distributions(requirements: Path = LAYER_DIR / "requirements.txt") -> list[importlib.metadata.Distribution]:
    """The installed distributions the layer's requirements resolve to, with their extras."""
    pending = [
        Requirement(line.split("#", 1)[0].strip())
        for line in requirements.read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    found: dict[str, importlib.metadata.Distribution] = {}
    while pending:
        requirement = pending.pop()
        name = requirement.name.lower().replace("_", "-")
        distribution = importlib.metadata.distribution(name)
        extras = requirement.extras
        if name in found and not extras:
            continue
        found[name] = distribution
        for text in distribution.requires or []:
            nested = Requirement(text)
            if nested.marker is None or any(nested.marker.evaluate({"extra": extra}) for extra in (*extras, "")):
                pending.append(nested)
    return list(found.values())


def _copy_distribution(distribution: importlib.metadata.Distribution, target: Path) -> None:
    """The distribution's installed files (not its bytecode) under `target`."""
    for file in distribution.files or []:
        path = Path(str(distribution.locate_file(file)))
        relative = Path(str(file))
        if relative.parts[0] == ".." or "__pycache__" in relative.parts or relative.suffix == ".pyc" or not path.is_file():
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)


def lay_out(root: Path, function_dirs: dict[str, Path]) -> Path:
    """The layer (its packages and tenant_billing) under root/LAYER_FOLDER and each function's
    folder under root/<name>, without bytecode. Returns root."""
    layer = root / LAYER_FOLDER
    layer.mkdir(parents=True)
    for distribution in layer_distributions():
        _copy_distribution(distribution, layer)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "requirements.txt")
    shutil.copytree(LAYER_DIR / LAYER_PACKAGE, layer / LAYER_PACKAGE, ignore=ignore)
    for name, function_dir in function_dirs.items():
        shutil.copytree(function_dir, root / name, ignore=ignore)
    return root


def finish_build(root: Path) -> None:
    """What `make build` does to .aws-sam/build after `sam build`, through the same Makefile target."""
    subprocess.run(
        ["make", "--no-print-directory", "-s", "-C", str(REPO_ROOT), "post-build", f"BUILD_DIR={root}"],
        check=True,
        capture_output=True,
    )


def count_files(root: Path) -> tuple[int, int]:
    """(.py files, .pyc files) under root."""
    return sum(1 for _ in root.rglob("*.py")), sum(1 for _ in root.rglob("*.pyc"))


def temporary_root() -> Path:
    return Path(tempfile.mkdtemp(prefix="bench-shipped-"))

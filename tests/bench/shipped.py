"""The code as Lambda gets it: the layer's packages and the function's folder in a fresh directory,
imported by a process that may not write bytecode (Lambda's code folders are read-only).

`sam build` unpacks wheels and copies sources: it ships no .pyc files, so every cold start in
Lambda compiles every module it imports. `make build` compiles them after `sam build` (see the
Makefile's `post-build` target, run here by `finish_build`). This module lays out both variants
from the packages installed in .venv (the versions layers/common/requirements.txt pins; the
build's are the arm64 wheels of the same versions), so the benchmark can time a cold start of each.

Every cold start of the benchmark runs on such a layout (`Layout`): the functions on what `make
build` ships, the tutorial handlers and the floor (tests.bench.tutorial, tests.bench.floor) on the
same layer's packages, from a folder of their own compiled the same way (they are not shipped, so
`make post-build` never sees them). Lambda's /opt/python is the layer's folder here: a variable of
the template that names a path under it (AWS_DATA_PATH) is mapped onto it (`lambda_paths`).
"""

from __future__ import annotations

import compileall
import importlib.metadata
import os
import py_compile
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

from tests.bench import report
from tests.support.template import REPO_ROOT

LAYER_DIR = REPO_ROOT / "layers" / "common"
LAYER_PACKAGE = "tenant_billing"
NO_BYTECODE = "sam build alone (no .pyc)"
BYTECODE = report.BYTECODE_VARIANT
LAYER_FOLDER = "layer"
# Where Lambda unpacks a Python layer's packages.
LAMBDA_LAYER_PATH = "/opt/python"
TUTORIAL_SOURCES = Path(__file__).parent / "tutorial"
FLOOR_SOURCE = Path(__file__).parent / "floor.py"
# A tutorial handler's module in its function folder, as `sam init` names it (handler app.lambda_handler).
TUTORIAL_MODULE = "app"
# Beside it, the same handler instrumented with the X-Ray SDK (tests.bench.tutorial.traced).
TRACED_TUTORIAL_MODULE = "traced_app"
FLOOR_MODULE = "floor"


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


def compile_bytecode(root: Path) -> None:
    """Compile what the benchmark lays out beside the build as the Makefile's bytecode target
    compiles the build (unchecked-hash .pyc for this Python)."""
    if not compileall.compile_dir(str(root), quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH):
        raise RuntimeError(f"compiling {root} failed")


def lay_out_bench(root: Path, functions: Iterable[str]) -> Path:
    """Each function's tutorial handler as root/tutorial/<name>/app.py (and its traced variant as
    traced_app.py) and the floor as root/floor/floor.py, compiled. Returns root."""
    for name in functions:
        folder = root / "tutorial" / name
        folder.mkdir(parents=True)
        shutil.copy2(TUTORIAL_SOURCES / f"{name}.py", folder / f"{TUTORIAL_MODULE}.py")
        shutil.copy2(TUTORIAL_SOURCES / "traced.py", folder / f"{TRACED_TUTORIAL_MODULE}.py")
    (root / "floor").mkdir(parents=True)
    shutil.copy2(FLOOR_SOURCE, root / "floor" / f"{FLOOR_MODULE}.py")
    compile_bytecode(root)
    return root


@dataclass(frozen=True)
class Layout:
    """One temporary folder: `build` as `make build` ships it (bytecode), `plain` as `sam build`
    alone ships it (no .pyc), `bench` the tutorial handlers and the floor (compiled)."""

    base: Path

    @property
    def build(self) -> Path:
        return self.base / "build"

    @property
    def plain(self) -> Path:
        return self.base / "plain"

    @property
    def bench(self) -> Path:
        return self.base / "bench"

    def layer(self, root: Path | None = None) -> Path:
        return (root or self.build) / LAYER_FOLDER

    def function_dir(self, name: str, root: Path | None = None) -> Path:
        return (root or self.build) / name

    def tutorial_dir(self, name: str) -> Path:
        return self.bench / "tutorial" / name

    @property
    def floor_dir(self) -> Path:
        return self.bench / "floor"

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def prepare_layout(function_dirs: dict[str, Path]) -> Layout:
    """Both shipped variants of the functions (`make post-build` run on one) and the bench's own code."""
    layout = Layout(temporary_root())
    try:
        lay_out(layout.plain, function_dirs)
        lay_out(layout.build, function_dirs)
        finish_build(layout.build)
        lay_out_bench(layout.bench, function_dirs)
    except BaseException:
        layout.remove()
        raise
    return layout


def lambda_paths(env: Mapping[str, str], layer: Path) -> dict[str, str]:
    """`env` with Lambda's layer folder (/opt/python) replaced by `layer` wherever a value names
    it or a path under it (AWS_DATA_PATH=/opt/python/aws_data, or one entry of a path list)."""
    pattern = re.compile(rf"(?<![^{os.pathsep}]){re.escape(LAMBDA_LAYER_PATH)}(?=/|{os.pathsep}|$)")
    return {name: pattern.sub(lambda _: str(layer), value) for name, value in env.items()}

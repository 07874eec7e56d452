"""`make build` compiles the built code to bytecode Python uses as is (the Makefile's bytecode
target), and the benchmark lays out the layer from the same distributions the build installs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from tests.bench import shipped

UNCHECKED_HASH_FLAGS = 0b01  # PEP 552: hash-based, check_source off


def test_the_bytecode_target_writes_unchecked_hash_pyc_for_this_python(tmp_path: Path) -> None:
    package = tmp_path / "StatusFunction" / "built_module.py"
    package.parent.mkdir()
    package.write_text("ANSWER = 1\n")

    shipped.finish_build(tmp_path)

    (compiled,) = (package.parent / "__pycache__").glob("built_module.*.pyc")
    header = compiled.read_bytes()[:16]
    # The magic number of the Python that runs the tests, which is the Lambda runtime's (3.13).
    assert header[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(header[4:8], "little") == UNCHECKED_HASH_FLAGS
    assert shipped.count_files(tmp_path) == (1, 1)


def test_unchecked_bytecode_is_used_without_reading_the_source_timestamp(tmp_path: Path) -> None:
    """What makes the .pyc useful in Lambda: a zip does not keep mtimes exactly, and with the
    default (timestamp) mode a mismatch would send Python back to compiling the source."""
    module = tmp_path / "built_module.py"
    module.write_text("ANSWER = 1\n")
    shipped.finish_build(tmp_path)
    module.write_text("ANSWER = 2\n")  # a new mtime and size: a timestamp .pyc would now be stale
    os.utime(module, (0, 0))

    answer = subprocess.run(
        [sys.executable, "-c", "import built_module; print(built_module.ANSWER)"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert answer.stdout.strip() == "1"


def test_the_layer_is_the_requirements_closure_with_extras() -> None:
    names = {distribution.metadata["Name"].lower().replace("_", "-") for distribution in shipped.layer_distributions()}
    assert {"aws-lambda-powertools", "stripe", "requests", "wrapt"} <= names
    # Powertools' [tracer] extra brings the X-Ray SDK, and with it botocore.
    assert {"aws-xray-sdk", "botocore"} <= names
    # The runtime provides boto3; test tools never reach the layer, nor pydantic (no function imports it).
    assert not names & {"boto3", "moto", "pytest", "hypothesis", "mypy", "pydantic"}

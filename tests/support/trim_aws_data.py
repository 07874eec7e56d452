"""botocore's data trimmed to the AWS services the functions create clients for, written by
`make build` (the Makefile's `aws-data` target) into each built layer's botocore.

botocore's first client parses endpoints.json (1.25 MB, every service of every partition: about
19 ms) and then each client's gzip'd service model. For each `botocore/data` under the build, this
writes:

- botocore/data/endpoints.json, in place: every partition with its regions and defaults, but only
  SERVICES' entries. In place, not in AWS_DATA_PATH: botocore treats an endpoints.json found
  outside its own data folder as a customer's override and passes what it resolves from it to
  every service's endpoint rule set as an explicit endpoint, which changes resolution (with
  AWS_USE_DUALSTACK_ENDPOINT, for one, every client then fails to resolve its endpoint). In its own
  folder the file only serves the legacy resolver, as before, with our services' entries unchanged.
- `aws_data` beside the botocore package, which template.yaml's AWS_DATA_PATH names (botocore
  searches it before its own folder; the first file found wins, API versions are the union): for
  each of SERVICES, its newest API version's service model (with its sdk-extras), endpoint rule set
  and paginators, decompressed and compact, so a cold start inflates no gzip stream.

Anything else (partitions.json, _retry.json, waiters, other services' models) is still read from
botocore's own folder. Standard library only: the Makefile runs it with the build's Python.

    python3.13 tests/support/trim_aws_data.py BUILD_DIR
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

# The services tenant_billing creates botocore clients for (`create_client("...")` in
# layers/common/tenant_billing/aws_clients.py); tests/unit/test_aws_data.py fails when a
# create_client call names a service that is missing here. A service missing from the trimmed
# endpoints.json would be resolved from its partition's defaults, not its own entry.
# No "xray": in Lambda the X-Ray SDK samples locally and creates no client.
SERVICES = ("dynamodb", "events", "secretsmanager", "sqs")

OUTPUT_FOLDER = "aws_data"
# The model files of a service's API version that a client loads (sdk-extras are merged into
# service-2 by botocore's loader).
MODEL_FILES = ("service-2", "service-2.sdk-extras", "endpoint-rule-set-1", "paginators-1")
EXTENSIONS = (".json", ".json.gz")  # botocore's order of preference


def _read(path_without_extension: Path) -> Any | None:
    """A botocore data file (plain or gzip'd), parsed; None when there is none."""
    for extension in EXTENSIONS:
        path = path_without_extension.with_name(path_without_extension.name + extension)
        if path.is_file():
            opener = gzip.open if extension == ".json.gz" else open
            with opener(path, "rb") as stream:
                return json.loads(stream.read().decode("utf-8"))
    return None


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, separators=(",", ":"), ensure_ascii=False), encoding="utf-8")


def newest_api_version(service_dir: Path) -> str:
    """The API version botocore picks without one asked: the greatest that has a service model."""
    versions = [
        child.name
        for child in service_dir.iterdir()
        if child.is_dir() and any((child / f"service-2{extension}").is_file() for extension in EXTENSIONS)
    ]
    if not versions:
        raise SystemExit(f"error: {service_dir} holds no service model")
    return max(versions)


def trimmed_endpoints(endpoints: dict[str, Any], services: tuple[str, ...] = SERVICES) -> dict[str, Any]:
    """endpoints.json with every partition intact except its services: only `services` are kept."""
    partitions = []
    for partition in endpoints["partitions"]:
        kept = {name: data for name, data in partition.get("services", {}).items() if name in services}
        partitions.append({**partition, "services": kept})
    return {**endpoints, "partitions": partitions}


def write_aws_data(botocore_data: Path, services: tuple[str, ...] = SERVICES) -> Path:
    """Trim `botocore_data`'s endpoints.json in place and write OUTPUT_FOLDER beside its botocore
    package (replacing any earlier one); returns the folder's path."""
    endpoints = _read(botocore_data / "endpoints")
    if endpoints is None:
        raise SystemExit(f"error: {botocore_data} has no endpoints.json")
    unknown = [name for name in services if not any(name in p.get("services", {}) for p in endpoints["partitions"])]
    if unknown:
        # Trimmed earlier for a shorter list: only a fresh `sam build` has every service again.
        raise SystemExit(f"error: {botocore_data}/endpoints.json has no entry for {', '.join(unknown)} (run sam build again)")
    output = botocore_data.parent.parent / OUTPUT_FOLDER
    staging = output.with_name(f".{OUTPUT_FOLDER}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    for service in services:
        service_dir = botocore_data / service
        if not service_dir.is_dir():
            raise SystemExit(f"error: botocore at {botocore_data} does not know the service {service!r}")
        version = newest_api_version(service_dir)
        for name in MODEL_FILES:
            data = _read(service_dir / version / name)
            if data is not None:
                _write(staging / service / version / f"{name}.json", data)
    shutil.rmtree(output, ignore_errors=True)
    staging.rename(output)
    trimmed = botocore_data / "endpoints.json.tmp"
    _write(trimmed, trimmed_endpoints(endpoints, services))
    trimmed.replace(botocore_data / "endpoints.json")
    return output


def botocore_data_folders(root: Path) -> list[Path]:
    """Every `botocore/data` folder under root (a built layer's, wherever `sam build` put it)."""
    found: list[Path] = []
    for folder, subfolders, _files in os.walk(root):
        path = Path(folder)
        if path.name == "botocore" and "data" in subfolders and (path / "__init__.py").is_file():
            found.append(path / "data")
            subfolders.clear()  # nothing to find inside botocore itself
    return sorted(found)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(f"usage: {Path(sys.argv[0]).name} BUILD_DIR", file=sys.stderr)
        return 2
    root = Path(argv[0])
    if not root.is_dir():
        print(f"error: {root} is not a folder", file=sys.stderr)
        return 1
    for data in botocore_data_folders(root):
        print(f"aws-data: {write_aws_data(data)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

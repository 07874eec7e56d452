"""`make build` trims botocore's data to the services we create clients for (the Makefile's
aws-data target, tests/support/trim_aws_data.py), and clients built from the trimmed data resolve
exactly the endpoints and signing they resolve from botocore's full data."""

from __future__ import annotations

import ast
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import botocore
import pytest

from tests.bench import shipped
from tests.support import trim_aws_data
from tests.support.template import REPO_ROOT, load_template

BOTOCORE_PACKAGE = Path(botocore.__file__).parent
SERVICES = trim_aws_data.SERVICES
REGIONS = ("us-east-1", "eu-west-1")
TIMING_RUNS = 10

# Run in a fresh interpreter: creates each client from a botocore session, then sends one request
# per client and region, stopped in before-send (nothing leaves the process), to read the URL and
# the SigV4 credential scope (signing region and name) the request was signed with.
PROBE = r"""
import json, sys, time
import botocore.session

class Sent(Exception):
    pass

services, regions = sys.argv[1].split(","), sys.argv[2].split(",")
credentials = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "not-a-secret"}
session = botocore.session.get_session()
started = time.perf_counter()
first = None
for service in services:
    session.create_client(service, region_name=regions[0], **credentials)
    first = first or (time.perf_counter() - started) * 1000
created_ms = (time.perf_counter() - started) * 1000
loader = session.get_component("data_loader")
resolver = session._get_internal_component("endpoint_resolver")
requests = {"dynamodb": "list_tables", "events": "list_event_buses", "sqs": "list_queues", "secretsmanager": "list_secrets"}
endpoints = {}
for region in regions:
    for service in services:
        client = session.create_client(service, region_name=region, **credentials)
        seen = {}

        def stop(request, seen=seen, **kwargs):
            authorization = request.headers["Authorization"]
            seen["url"] = request.url
            seen["scope"] = (authorization.decode() if isinstance(authorization, bytes) else authorization)
            raise Sent()

        client.meta.events.register("before-send", stop)
        try:
            getattr(client, requests[service])()
        except Sent:
            pass
        _, _, signing_region, signing_name, _ = seen["scope"].split("Credential=")[1].split(",")[0].split("/")
        endpoints[f"{service} {region}"] = {
            "endpoint_url": client.meta.endpoint_url,
            "request_url": seen["url"],
            "signing_region": signing_region,
            "signing_name": signing_name,
        }
models = {}
for service in services:
    version = loader.determine_latest_version(service, "service-2")
    models[service] = {
        name: loader.load_data_with_path(f"{service}/{version}/{name}")[1]
        for name in ("service-2", "endpoint-rule-set-1")
    }
print(json.dumps({
    "first_client_ms": first,
    "clients_ms": created_ms,
    "botocore": botocore.session.__file__,
    "endpoints_file": loader.load_data_with_path("endpoints")[1],
    "endpoints_builtin": resolver.uses_builtin_data,
    "endpoint_services": sorted({name for p in resolver._endpoint_data["partitions"] for name in p["services"]}),
    "models": models,
    "endpoints": endpoints,
}))
"""


def _read_json(path: Path) -> Any:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as stream:
        return json.loads(stream.read().decode("utf-8"))


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shipped layout (root/layer/botocore, as tests.bench.shipped lays it out) of the installed
    botocore, after the Makefile's aws-data target ran on it. Returns root/layer."""
    root = tmp_path_factory.mktemp("build")
    layer = root / shipped.LAYER_FOLDER
    shutil.copytree(BOTOCORE_PACKAGE, layer / "botocore")
    subprocess.run(
        ["make", "--no-print-directory", "-s", "-C", str(REPO_ROOT), "aws-data", f"BUILD_DIR={root}"],
        check=True,
        capture_output=True,
    )
    return layer


def probe(env: Mapping[str, str], pythonpath: Path | None = None, regions: tuple[str, ...] = REGIONS) -> dict[str, Any]:
    """The probe's findings in a fresh interpreter: no AWS configuration but `env`, and botocore
    imported from `pythonpath` (a trimmed copy) or else the installed one."""
    home = Path(os.environ.get("TMPDIR", "/tmp"))
    clean = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),  # no ~/.aws/models
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "PYTHONDONTWRITEBYTECODE": "1",
        **({"PYTHONPATH": str(pythonpath)} if pythonpath else {}),
        **env,
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(SERVICES), ",".join(regions)],
        env=clean,
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def create_client_calls(paths: list[Path]) -> dict[str, set[str]]:
    """{service: files} of every botocore `create_client(...)` (and boto3.client/resource) call."""
    calls: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            boto3_call = isinstance(node.func.value, ast.Name) and node.func.value.id == "boto3"
            if node.func.attr != "create_client" and not (boto3_call and node.func.attr in {"client", "resource"}):
                continue
            service = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "service_name"), None)
            where = f"{path.relative_to(REPO_ROOT)}:{node.lineno}"
            # A service named by a variable would escape this check: the code names each literally.
            assert isinstance(service, ast.Constant) and isinstance(service.value, str), f"{where}: not a literal service"
            calls.setdefault(service.value, set()).add(where)
    return calls


def test_the_services_are_every_service_the_shipped_code_creates_a_client_for() -> None:
    functions = {
        REPO_ROOT / resource["Properties"]["CodeUri"]
        for resource in load_template()["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    shipped_code = sorted((REPO_ROOT / "layers/common/tenant_billing").rglob("*.py"))
    shipped_code += sorted(path for folder in functions for path in folder.rglob("*.py"))
    calls = create_client_calls(shipped_code)
    assert {"dynamodb", "secretsmanager"} <= set(calls)  # the scan does find the calls
    missing = set(calls) - set(SERVICES)
    assert not missing, f"add {sorted(missing)} to SERVICES in tests/support/trim_aws_data.py: {calls}"
    assert set(SERVICES) == set(calls), f"SERVICES lists services nothing creates a client for: {set(SERVICES) - set(calls)}"


def test_post_build_trims_the_data_before_compiling() -> None:
    commands = subprocess.run(
        ["make", "--no-print-directory", "-n", "-C", str(REPO_ROOT), "post-build", "BUILD_DIR=/nonexistent"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert commands.index("tests/support/trim_aws_data.py /nonexistent") < commands.index("compileall")


def test_the_template_points_botocore_at_the_layers_aws_data() -> None:
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    # The layer's python/ folder is /opt/python in Lambda, where `aws_data` sits beside botocore.
    assert variables["AWS_DATA_PATH"] == f"/opt/python/{trim_aws_data.OUTPUT_FOLDER}"


def test_the_trimmed_data_is_our_services_decompressed(layer: Path) -> None:
    original = BOTOCORE_PACKAGE / "data"
    aws_data = layer / trim_aws_data.OUTPUT_FOLDER
    assert sorted(path.name for path in aws_data.iterdir()) == sorted(SERVICES)
    for service in SERVICES:
        version = trim_aws_data.newest_api_version(original / service)
        assert [path.name for path in (aws_data / service).iterdir()] == [version]
        written = {path.name for path in (aws_data / service / version).iterdir()}
        assert {"service-2.json", "endpoint-rule-set-1.json", "paginators-1.json"} <= written
        for name in written:
            text = (aws_data / service / version / name).read_text(encoding="utf-8")
            assert "\n" not in text  # compact
            (source,) = (original / service / version).glob(f"{name}*")  # the shipped .json or .json.gz
            assert json.loads(text) == _read_json(source), name

    full = _read_json(original / "endpoints.json")
    trimmed = _read_json(layer / "botocore" / "data" / "endpoints.json")
    assert not (aws_data / "endpoints.json").exists()  # in botocore's own folder: see trim_aws_data
    assert (layer / "botocore" / "data" / "endpoints.json").stat().st_size < 50_000
    assert [p["partition"] for p in trimmed["partitions"]] == [p["partition"] for p in full["partitions"]]
    assert trimmed["version"] == full["version"]
    for before, after in zip(full["partitions"], trimmed["partitions"], strict=True):
        assert {key: value for key, value in after.items() if key != "services"} == {
            key: value for key, value in before.items() if key != "services"
        }
        assert after["services"] == {name: before["services"][name] for name in SERVICES if name in before["services"]}
    # The rest of botocore's data is left as it was.
    assert (layer / "botocore" / "data" / "dynamodb").is_dir()
    assert (layer / "botocore" / "data" / "s3").is_dir()


def test_running_the_target_again_changes_nothing(layer: Path) -> None:
    before = {
        path: path.read_bytes()
        for path in sorted(layer.rglob("*.json"))
        if "aws_data" in path.parts or path.name == "endpoints.json"
    }
    trim_aws_data.main([str(layer.parent)])
    after = {
        path: path.read_bytes()
        for path in sorted(layer.rglob("*.json"))
        if "aws_data" in path.parts or path.name == "endpoints.json"
    }
    assert after == before


@pytest.mark.parametrize(
    "settings",
    [{}, {"AWS_USE_FIPS_ENDPOINT": "true"}, {"AWS_USE_DUALSTACK_ENDPOINT": "true"}],
    ids=["default", "fips", "dualstack"],
)
def test_clients_resolve_the_same_endpoints_and_signing_from_the_trimmed_data(layer: Path, settings: dict[str, str]) -> None:
    full = probe(settings)
    trimmed = probe({**settings, "AWS_DATA_PATH": str(layer / trim_aws_data.OUTPUT_FOLDER)}, pythonpath=layer)

    assert trimmed["botocore"].startswith(str(layer))
    assert trimmed["endpoints"] == full["endpoints"]
    assert len(full["endpoints"]) == len(SERVICES) * len(REGIONS)
    # The trimmed files were the ones loaded: endpoints.json without the services we dropped, still
    # botocore's own data (so its rule sets resolve as before), and the models from aws_data.
    assert "s3" in full["endpoint_services"]
    assert trimmed["endpoint_services"] == sorted(SERVICES)
    assert trimmed["endpoints_builtin"] is full["endpoints_builtin"] is True
    for service in SERVICES:
        for name, path in trimmed["models"][service].items():
            assert Path(path).parent.parent.parent == layer / trim_aws_data.OUTPUT_FOLDER, (service, name, path)
            assert Path(full["models"][service][name]).is_relative_to(BOTOCORE_PACKAGE / "data")


def test_create_client_time_with_and_without_the_trimmed_data(layer: Path) -> None:
    """Measured, not asserted (shared machines are noisy): the four clients of one session, created
    in a fresh interpreter, from botocore's full data and from the trimmed data."""
    runs: dict[str, list[tuple[float, float]]] = {"full data": [], "trimmed data": []}
    for _ in range(TIMING_RUNS):  # interleaved, so both see the same machine load
        full = probe({}, regions=REGIONS[:1])
        trimmed = probe({"AWS_DATA_PATH": str(layer / trim_aws_data.OUTPUT_FOLDER)}, pythonpath=layer, regions=REGIONS[:1])
        runs["full data"].append((full["first_client_ms"], full["clients_ms"]))
        runs["trimmed data"].append((trimmed["first_client_ms"], trimmed["clients_ms"]))
    print(f"\ncreate_client over {TIMING_RUNS} fresh interpreters (median, min-max ms):")
    for label, samples in runs.items():
        first = [sample[0] for sample in samples]
        every = [sample[1] for sample in samples]
        print(
            f"  {label:>12}: first client (dynamodb) {statistics.median(first):6.1f} ({min(first):.1f}-{max(first):.1f}),"
            f" all {len(SERVICES)} clients {statistics.median(every):6.1f} ({min(every):.1f}-{max(every):.1f})"
        )

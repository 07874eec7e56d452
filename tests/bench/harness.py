"""`make bench` / `make bench-short`: cold starts, warm latency, calls per request, memory, the
floor (the same AWS and Stripe calls without a handler) and the events consumer's throughput of
the functions (the webhook's ingest and the queue's consumer apart), then the renewal storm
(tests.bench.storm), each in its own fresh process with its environment from template.yaml (as `make dev`
builds it), against the embedded moto server and the Stripe fake over HTTP on 127.0.0.1 (both
started once, in this process). Prints one table and writes it as JSON.

    PYTHONPATH=... .venv/bin/python -m tests.bench.harness [--short] [--json PATH]

Exit status 1 when a deterministic target is missed (calls per request, a failed request);
latency, memory and ratio targets are reported, never enforced (machines are noisy).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import shutil
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions.local_stack.dev_tokens import LOCAL_AUDIENCE, LOCAL_ISSUER
from functions.local_stack.template_model import FunctionSpec, load_local_stack
from tests.bench import importtime, report, shipped, sizes, storm
from tests.bench.children import ColdStart, Probe, ProbeSpec, probe_env
from tests.bench.scenario import Scenario, ScenarioBuilder, setup_environment
from tests.stripe_fake import FakeStripe, RecordedRequest
from tests.support.api_events import api_event
from tests.support.local_services import (
    LOCAL_WEBHOOK_SECRET,
    LocalServices,
    StripeTarget,
    local_services,
    price_parameters,
)
from tests.support.template import REPO_ROOT, load_template
from tests.support.webhook_events import signed_delivery

# Handler module -> the name the report uses, in report order.
FUNCTIONS = {
    "status_handler": "status",
    "checkout_handler": "checkout",
    "portal_handler": "portal",
    "stripe_webhook_handler": "ingest",
    "event_sync_handler": "consumer",
}
BASELINES = ("pass", "boto3", "boto3_stripe")
BASELINE_OF = {
    "status": "boto3",
    "checkout": "boto3_stripe",
    "portal": "boto3_stripe",
    "ingest": "boto3",
    "consumer": "boto3_stripe",
}
# The function whose warm requests, duplicates and throughput are events to sync (the old webhook's work).
SYNC = "consumer"
# Variables a function's process inherits from ours (as the local stack's function processes do).
INHERITED = ("PATH", "HOME", "LANG", "TZ", "TMPDIR")
RESULTS_DIR = REPO_ROOT / "bench-results"
# A path segment (other than the API version) with a digit or a capital letter is an object id.
_STRIPE_ID = re.compile(r"/(?!v1(?:/|$))(?=[^/]*[0-9A-Z])[^/]+")


@dataclass(frozen=True)
class Run:
    """One side of an alternation: a child, its command and all its items."""

    probe: Probe
    where: str
    command: dict[str, Any]
    items: list[Any]


@dataclass(frozen=True)
class Mode:
    name: str
    reps: int
    requests: int
    threads: int
    # Slices of the warm requests, the function's and the floor's taking turns.
    warm_blocks: int
    # Events per webhook throughput run (sequential, then threaded; the function's and the floor's).
    throughput_events: int
    sam_build: bool
    importtime: bool
    # Cold starts per function of the code as Lambda gets it, with and without bytecode (tests.bench.shipped).
    shipped_reps: int
    # Organizations renewing at once in the storm (tests.bench.storm).
    storm_orgs: int


FULL = Mode(
    "full",
    15,
    requests=200,
    threads=8,
    warm_blocks=10,
    throughput_events=200,
    sam_build=True,
    importtime=True,
    shipped_reps=5,
    storm_orgs=2000,
)
SHORT = Mode(
    "short",
    3,
    requests=50,
    threads=8,
    warm_blocks=5,
    throughput_events=50,
    sam_build=False,
    importtime=False,
    shipped_reps=1,
    storm_orgs=60,
)
# Events per slice of a throughput run (each slice is timed on its own; the rates use the sums).
THROUGHPUT_BLOCK = 25


_STARTED = time.perf_counter()


def progress(message: str) -> None:
    print(f"bench [{time.perf_counter() - _STARTED:5.1f} s] {message}", file=sys.stderr, flush=True)


def serialize_moto() -> None:
    """moto (served from this process) is not thread-safe. A TransactWriteItems deep-copies the
    table for its rollback and fails with a 500 when another request changes the table meanwhile
    (the 8-thread runs); two concurrent ReceiveMessage calls can both take one message, and the
    first receipt then deletes nothing, so the message returns after the visibility timeout (the
    storm's two pollers). DynamoDB and SQS have no such failure, so every DynamoDB operation and
    every SQS operation of the embedded moto runs under its service's lock (moto holds the GIL
    anyway): the same for the function and its floor."""
    from moto.dynamodb.responses import DynamoHandler
    from moto.sqs.responses import SQSResponse

    for handler in (DynamoHandler, SQSResponse):
        original = handler.call_action
        if getattr(original, "_bench_serialized", False):
            continue
        handler.call_action = _under_lock(original, threading.Lock())  # type: ignore[method-assign]


def _under_lock(call_action: Callable[[Any], Any], lock: threading.Lock) -> Callable[[Any], Any]:
    def serialized(self: Any) -> Any:
        with lock:
            return call_action(self)

    serialized._bench_serialized = True  # type: ignore[attr-defined]
    return serialized


def stack_overrides(services: LocalServices) -> dict[str, str]:
    """The template parameters without a default, as `make dev` gives them, and the local prices."""
    target = StripeTarget(services.stripe_base)
    return {
        "AppBaseUrl": "http://localhost:3000",
        "CorsAllowedOrigins": "http://localhost:3000",
        "JwtIssuer": LOCAL_ISSUER,
        "JwtAudience": LOCAL_AUDIENCE,
        **price_parameters(target.prices),
    }


def function_environments(services: LocalServices) -> dict[str, tuple[FunctionSpec, dict[str, str]]]:
    """Each function's environment as `make dev` builds it (template Globals + the function's own
    variables, references resolved to the local table and secret, plus the local endpoints), with
    tracing off and WARNING logs; the import path is the function's folder, the layer and the
    repository root (for the probe module only)."""
    # The consumer paces its Stripe reads (a deliberate wait, the storm's subject); the single-event
    # figures measure its work, so they run with the largest budget the template allows.
    budget = {"StripeReadsPerSecond": str(load_template()["Parameters"]["StripeReadsPerSecond"]["MaxValue"])}
    stack = load_local_stack(stack_overrides(services) | budget, services.stack_resources())
    extra = {key: value for key, value in services.env.items() if key.startswith("AWS_") or key == "STRIPE_API_BASE"}
    extra |= {"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"}
    inherited = {key: value for key, value in os.environ.items() if key in INHERITED}
    found: dict[str, tuple[FunctionSpec, dict[str, str]]] = {}
    for spec in stack.functions.values():
        name = FUNCTIONS.get(spec.handler_module)
        if name is None:
            continue
        env = {
            **inherited,
            **spec.environment,
            **extra,
            "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
            "PYTHONUNBUFFERED": "1",
        }
        found[name] = (spec, probe_env(env, spec.code_dir))
    missing = set(FUNCTIONS.values()) - set(found)
    if missing:
        raise RuntimeError(f"template.yaml has no function for: {', '.join(sorted(missing))}")
    return {name: found[name] for name in FUNCTIONS.values()}


def handler_args(function: FunctionSpec) -> tuple[str, ...]:
    """tests.bench.probe's arguments to import the function's handler and serve with it."""
    return ("handler", function.handler_module, function.handler_name, function.logical_id)


def stripe_calls(requests: list[RecordedRequest]) -> Counter[str]:
    return Counter(f"{request.method} {_STRIPE_ID.sub('/{id}', request.path)}" for request in requests)


def per_request(counts: Mapping[str, int], n: int) -> dict[str, float]:
    return {name: round(count / n, 4) for name, count in sorted(counts.items())}


def by_service(counts: Mapping[str, int], n: int, services: list[str]) -> dict[str, float]:
    totals: Counter[str] = Counter(dict.fromkeys(services, 0))
    for name, count in counts.items():
        totals[name.split(".")[0]] += count
    return {service: round(count / n, 4) for service, count in sorted(totals.items())}


def cold_summary(samples: list[ColdStart]) -> dict[str, Any]:
    totals = [sample.total_ms for sample in samples]
    return {
        "n": len(samples),
        "median_ms": round(statistics.median(totals), 1),
        "min_ms": round(min(totals), 1),
        "max_ms": round(max(totals), 1),
        "startup_median_ms": round(statistics.median(sample.startup_ms for sample in samples), 1),
        "import_median_ms": round(statistics.median(sample.import_ms for sample in samples), 1),
        "first_request_median_ms": round(statistics.median(sample.first_request_ms for sample in samples), 1),
        "samples_ms": [round(total, 1) for total in totals],
    }


class Bench:
    def __init__(self, mode: Mode, services: LocalServices, scenario: Scenario) -> None:
        self.mode = mode
        self.fake: FakeStripe = services.stripe
        self.scenario = scenario
        self.functions = function_environments(services)
        self.cold: dict[str, list[ColdStart]] = {name: [] for name in (*BASELINES, *FUNCTIONS.values())}
        # The floor's cold starts: a fresh process making the function's first calls with no handler.
        self.cold_floor: dict[str, list[ColdStart]] = {name: [] for name in FUNCTIONS.values()}
        # Cold starts of the code laid out as Lambda gets it: variant -> function -> samples.
        self.cold_shipped: dict[str, dict[str, list[ColdStart]]] = {
            variant: {name: [] for name in FUNCTIONS.values()} for variant in (shipped.NO_BYTECODE, shipped.BYTECODE)
        }
        self.shipped_files: dict[str, dict[str, int]] = {}
        self.results: dict[str, dict[str, Any]] = {name: {} for name in FUNCTIONS.values()}
        self.failures: list[str] = []
        self.aws = services.aws_client("dynamodb")
        self._floor_events = 0

    # --- children -------------------------------------------------------------------------------

    def spec(self, name: str, *, floor: bool = False, python_args: tuple[str, ...] = ()) -> ProbeSpec:
        if name in BASELINES:
            function, env = self.functions["status"]
            return ProbeSpec(f"baseline {name}", ("baseline", name), env, function.code_dir, python_args)
        function, env = self.functions[name]
        if floor:
            return ProbeSpec(f"{name} floor", ("floor", name), env, function.code_dir, python_args)
        return ProbeSpec(name, handler_args(function), env, function.code_dir, python_args)

    def request(self, name: str, stripe_event: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request for the function (a webhook delivery is signed now: signatures expire)."""
        if name == "status":
            return {"event": api_event("GET", "/billing/status", org_id=self.scenario.status_org, role="member")}
        if name == "checkout":
            event = api_event("POST", "/billing/checkout", org_id=self.scenario.checkout_org, body=self.scenario.checkout_body)
            return {"event": event}
        if name == "portal":
            return {"event": api_event("POST", "/billing/portal", org_id=self.scenario.status_org)}
        stripe_event = stripe_event or self.scenario.take(1)[0]
        if name == SYNC:
            # Requests are built ahead of the run: created after any read the run stores, so each is
            # the path of an event no stored read has seen yet (a Stripe read). The late event whose
            # change a stored read saw is the storm's case.
            return {"event": storm.sqs_event([{**stripe_event, "created": int(time.time()) + 3600}])}
        return {"event": signed_delivery(stripe_event, [LOCAL_WEBHOOK_SECRET])}

    def _failed(self, where: str, reply: Mapping[str, Any]) -> None:
        if reply.get("failed"):
            self.failures.append(f"{where}: {reply['failed']} failed, e.g. {reply.get('failures')}")

    # --- 1. cold starts (interleaved), 2-4. warm in the last round's children, 5. the floor --------

    def run_cold_rounds(self) -> None:
        order = [*BASELINES, *FUNCTIONS.values()]
        for round_number in range(self.mode.reps):
            shift = round_number % len(order)
            last = round_number == self.mode.reps - 1
            for name in order[shift:] + order[:shift]:
                probe = Probe(self.spec(name))
                try:
                    sample = probe.start(None if name in BASELINES else self.request(name))
                    self.cold[name].append(sample)
                    if name in BASELINES:
                        continue
                    if sample.status != 200:
                        self.failures.append(f"{name}: first request of a cold start answered {sample.status}")
                    # Right after the function's own cold start, so machine noise hits both alike.
                    if last:
                        self.run_warm_and_floor(name, probe)
                        progress(f"{name}: warm requests and floor done")
                    else:
                        self.floor_cold_start(name)
                finally:
                    probe.discard()
            progress(f"cold-start round {round_number + 1}/{self.mode.reps} done")

    def shipped_spec(self, name: str, root: Path, variant: str) -> ProbeSpec:
        """The function's child importing its code from `root` (tests.bench.shipped), writing no
        bytecode, as in Lambda's read-only code folders; the repository root is only for the probe."""
        function, env = self.functions[name]
        env = probe_env({**env, "PYTHONDONTWRITEBYTECODE": "1"}, str(root / name), str(root / shipped.LAYER_FOLDER))
        return ProbeSpec(f"{name} ({variant})", handler_args(function), env, str(root / name))

    def run_shipped_cold_starts(self) -> None:
        """Cold starts of the code as `sam build` alone ships it (no .pyc) and as `make build` does
        (compiled by the Makefile's bytecode target), alternating, each function in turn."""
        code_dirs = {name: Path(function.code_dir) for name, (function, _) in self.functions.items()}
        roots = {variant: shipped.lay_out(shipped.temporary_root(), code_dirs) for variant in self.cold_shipped}
        try:
            shipped.finish_build(roots[shipped.BYTECODE])
            for variant, root in roots.items():
                python_files, bytecode_files = shipped.count_files(root)
                self.shipped_files[variant] = {"py": python_files, "pyc": bytecode_files}
            for _ in range(self.mode.shipped_reps):
                for name in FUNCTIONS.values():
                    for variant, root in roots.items():
                        probe = Probe(self.shipped_spec(name, root, variant))
                        try:
                            sample = probe.start(self.request(name))
                        finally:
                            probe.discard()
                        if sample.status != 200:
                            self.failures.append(f"{name} ({variant}): first request of a cold start answered {sample.status}")
                        self.cold_shipped[variant][name].append(sample)
        finally:
            for root in roots.values():
                shutil.rmtree(root, ignore_errors=True)

    def _measured(self, probe: Probe, command: dict[str, Any], where: str) -> dict[str, Any]:
        self.fake.reset_requests()
        reply = probe.command(command)
        reply["stripe_calls"] = stripe_calls(list(self.fake.requests))
        self._failed(where, reply)
        return reply

    def _latency(self, reply: Mapping[str, Any]) -> dict[str, Any]:
        millis: list[float] = reply["ms"]
        n = len(millis)
        stripe: Counter[str] = reply["stripe_calls"]
        return {
            "n": n,
            "p50_ms": round(statistics.median(millis), 2),
            "p99_ms": round(report.percentile(millis, 0.99), 2),
            "max_ms": round(max(millis), 2),
            "failed": reply["failed"],
            "outcomes": reply["outcomes"],
            "aws_calls_per_request": by_service(reply["aws_calls"], n, ["dynamodb", "secretsmanager"]),
            "aws_operations_per_request": per_request(reply["aws_calls"], n),
            "aws_http_attempts_per_request": per_request(reply["aws_sends"], n),
            "stripe_calls_per_request": round(sum(stripe.values()) / n, 4),
            "stripe_operations_per_request": per_request(stripe, n),
            **_memory(reply),
        }

    def purge_event_markers(self) -> None:
        """Delete every webhook event marker, so each measured phase starts from the same table:
        moto deep-copies the whole table for every TransactWriteItems (three times for three
        items), so a table that grew during an earlier phase would slow a later one down."""
        storm.purge_event_markers(self.aws)

    def alternate(self, runs: list[Run], blocks: int) -> list[dict[str, Any]]:
        """Each run's items in `blocks` slices, the runs taking turns slice by slice (function,
        floor, function, floor...): machine noise hits both alike. The event markers are purged
        before each round of slices. Returns each run's merged reply."""
        merged: list[dict[str, Any]] = [{} for _ in runs]
        for block in range(blocks):
            self.purge_event_markers()
            for run, total in zip(runs, merged, strict=True):
                size = len(run.items)
                chunk = run.items[block * size // blocks : (block + 1) * size // blocks]
                if chunk:
                    _merge(total, self._measured(run.probe, {**run.command, "items": chunk}, run.where))
        return merged

    def floor_setup(self, name: str) -> dict[str, Any]:
        """The floor's first line; for checkout and portal, the Stripe parameters of the function's
        request that was just served (the fake's last POST)."""
        posts = [request for request in self.fake.requests if request.method == "POST"]
        return {
            "org_id": self.scenario.checkout_org if name == "checkout" else self.scenario.status_org,
            "stripe_params": posts[-1].params if posts and name in ("checkout", "portal") else {},
            "targets": self.scenario.targets if name == SYNC else [],
        }

    def start_floor(self, name: str) -> Probe:
        """A floor child, started (its cold start recorded) and ready for commands."""
        setup = self.floor_setup(name)
        floor = Probe(self.spec(name, floor=True))
        try:
            first = floor.start(setup)
        except BaseException:
            floor.discard()
            raise
        self.cold_floor[name].append(first)
        if first.status != 200:
            self.failures.append(f"{name} floor: its first call answered {first.status}")
        return floor

    def floor_cold_start(self, name: str) -> None:
        already_open = self._open_sessions()
        self.start_floor(name).discard()
        # A checkout floor's session is nobody's: Stripe would expire it in time. Left open, it
        # ages past the handler's 60 s grace for unrecorded sessions during a later round's warm
        # requests, which would then expire it: a call no production request makes.
        for session_id in self._open_sessions() - already_open:
            self.fake.expire_checkout(session_id)

    def _open_sessions(self) -> set[str]:
        return {session_id for session_id, session in self.fake.checkout_sessions.items() if session["status"] == "open"}

    def run_warm_and_floor(self, name: str, probe: Probe) -> None:
        """The warm requests in the function's process (the last cold-start round's), alternating
        with the same calls on the floor; for the webhook also duplicates and throughput runs.
        Every phase starts from the same table (see purge_event_markers)."""
        n = self.mode.requests
        floor = self.start_floor(name)
        try:
            webhook = name == SYNC
            # The consumer syncs new events; ingest queues any (the consumer's events again).
            events = self.scenario.take(n) if webhook else self.scenario.events[:n] if name == "ingest" else []
            items = [self.request(name, event)["event"] for event in events]
            items = items or [self.request(name)["event"] for _ in range(n)]
            floor_items = self.floor_items(name, n)
            expect = {"expect_status": 200, "expect_outcome": "queued" if name == "ingest" else None}
            runs = [
                Run(probe, f"{name} warm", {"cmd": "warm", **expect}, items),
                Run(floor, f"{name} floor", {"cmd": "warm", **expect, "expect_outcome": None}, floor_items),
            ]
            if webhook:
                # Each slice of new events is delivered again right after it took effect.
                duplicate = {"cmd": "warm", "expect_status": 200, "expect_outcome": None}
                redelivered = [self.request(name, event)["event"] for event in events]
                floor_duplicates = [
                    {"duplicate_event_id": item["event_id"], "customer_id": item["customer_id"]} for item in floor_items
                ]
                runs.insert(1, Run(probe, f"{name} duplicate", duplicate, redelivered))
                runs.append(Run(floor, f"{name} duplicate floor", duplicate, floor_duplicates))
            replies = self.alternate(runs, self.mode.warm_blocks)
            own, base = replies[0], replies[2 if webhook else 1]
            self.results[name]["warm"] = self._latency(own)
            self.results[name]["floor"] = self._latency(base)
            self.results[name]["clients"] = own["clients"]
            if not webhook:
                return
            self.results[name]["duplicate"] = self._latency(replies[1])
            self.results[name]["duplicate_floor"] = self._latency(replies[3])
            own_runs: dict[str, Any] = {}
            floor_runs: dict[str, Any] = {}
            count = self.mode.throughput_events
            for threads in (1, self.mode.threads):
                command = {"cmd": "throughput", "threads": threads, "expect_status": 200}
                deliveries = [self.request(name, event)["event"] for event in self.scenario.take(count)]
                own, base = self.alternate(
                    [
                        Run(probe, f"{name} throughput ({threads} threads)", command, deliveries),
                        Run(floor, f"{name} floor throughput ({threads} threads)", command, self.floor_items(name, count)),
                    ],
                    max(1, count // THROUGHPUT_BLOCK),
                )
                own_runs[str(threads)] = self._throughput(own)
                floor_runs[str(threads)] = self._throughput(base)
            self.results[name]["throughput"] = own_runs
            self.results[name]["floor_throughput"] = floor_runs
        finally:
            floor.discard()

    @staticmethod
    def _throughput(reply: Mapping[str, Any]) -> dict[str, Any]:
        n, seconds = int(reply["n"]), float(reply["seconds"])
        stripe: Counter[str] = reply["stripe_calls"]
        return {
            "n": n,
            "seconds": round(seconds, 3),
            "events_per_second": round(n / seconds, 2),
            "failed": reply["failed"],
            "outcomes": reply["outcomes"],
            "aws_operations_per_request": per_request(reply["aws_calls"], n),
            "stripe_calls_per_request": round(sum(stripe.values()) / n, 4),
            "aws_retried_attempts": sum(reply["aws_sends"].values()) - sum(reply["aws_calls"].values()),
            **_memory(reply),
        }

    def floor_items(self, name: str, count: int) -> list[Any]:
        """The floor's inputs: nothing for the API functions; for the webhook, a new event of a
        pool subscription each (consecutive ones concern different organizations)."""
        if name == "ingest":
            return [
                {"body": storm.sqs_body(event), "event_id": event["id"], "event_type": event["type"]}
                for event in self.scenario.events[:count]
            ]
        if name != SYNC:
            return [None] * count
        targets = self.scenario.targets
        items = []
        for index in range(count):
            self._floor_events += 1
            items.append({**targets[index % len(targets)], "event_id": f"evt_floor_{self._floor_events}"})
        return items

    # --- diagnosis: where a cold start's imports go -----------------------------------------------

    def import_profile(self, name: str) -> dict[str, object]:
        probe = Probe(self.spec(name, python_args=("-X", "importtime")))
        try:
            probe.start(self.request(name))
            probe.close()
            return importtime.parse(probe.stderr_text()).as_dict()
        finally:
            probe.discard()

    def summary(self) -> dict[str, Any]:
        baselines = {name: cold_summary(self.cold[name]) for name in BASELINES}
        functions: dict[str, Any] = {}
        for name in FUNCTIONS.values():
            result = dict(self.results[name])
            cold = cold_summary(self.cold[name])
            baseline = BASELINE_OF[name]
            result["cold"] = cold
            result["baseline"] = baseline
            result["cold_ratio"] = round(cold["median_ms"] / baselines[baseline]["median_ms"], 2)
            if self.cold_floor[name]:
                floor_cold = cold_summary(self.cold_floor[name])
                result["floor_cold"] = floor_cold
                # What the calls alone cost cold, against the same baseline; and the function against them.
                result["floor_cold_ratio"] = round(floor_cold["median_ms"] / baselines[baseline]["median_ms"], 2)
                result["cold_vs_floor_cold"] = round(cold["median_ms"] / floor_cold["median_ms"], 2)
            if "warm" in result and "floor" in result:
                result["floor_ratio"] = round(result["warm"]["p50_ms"] / result["floor"]["p50_ms"], 2)
            if "duplicate" in result and "duplicate_floor" in result:
                result["duplicate_floor_ratio"] = round(result["duplicate"]["p50_ms"] / result["duplicate_floor"]["p50_ms"], 2)
            if "throughput" in result and "floor_throughput" in result:
                result["throughput_ratio"] = {
                    threads: round(run["events_per_second"] / result["floor_throughput"][threads]["events_per_second"], 2)
                    for threads, run in result["throughput"].items()
                }
            functions[name] = result
        as_shipped: dict[str, Any] = {"files": self.shipped_files, "functions": {}}
        for name in FUNCTIONS.values():
            plain, compiled = (self.cold_shipped[variant][name] for variant in (shipped.NO_BYTECODE, shipped.BYTECODE))
            if plain and compiled:
                row = {shipped.NO_BYTECODE: cold_summary(plain), shipped.BYTECODE: cold_summary(compiled)}
                ratio = row[shipped.NO_BYTECODE]["median_ms"] / row[shipped.BYTECODE]["median_ms"]
                as_shipped["functions"][name] = {**row, "no_bytecode_ratio": round(ratio, 2)}
        return {"baselines": baselines, "functions": functions, "as_shipped": as_shipped}


def _merge(total: dict[str, Any], reply: Mapping[str, Any]) -> None:
    """Add one block's reply to the run's total."""
    for key in ("ms", "failures"):
        total.setdefault(key, []).extend(reply.get(key, []))
    for key in ("seconds", "n", "failed"):
        if key in reply:
            total[key] = total.get(key, 0) + reply[key]
    for key in ("aws_calls", "aws_sends", "outcomes", "stripe_calls"):
        counter: Counter[str] = total.setdefault(key, Counter())
        counter.update(reply.get(key, {}))
    for key in ("maxrss_kib", "vmhwm_kib"):
        total[key] = max(total.get(key) or 0, reply.get(key) or 0)
    total["clients"] = reply.get("clients", [])


def _memory(reply: Mapping[str, Any]) -> dict[str, Any]:
    """Peak RSS in MB (MiB, as Lambda's memory size): the process's own (VmHWM), and getrusage's
    ru_maxrss, which on Linux also covers the spawning parent's peak (kept over execve)."""
    own = reply.get("vmhwm_kib")
    maxrss = round(reply["maxrss_kib"] / 1024, 1)
    return {"peak_rss_mb": round(own / 1024, 1) if own else maxrss, "ru_maxrss_mb": maxrss}


def run(mode: Mode, reps: int | None, requests: int | None, *, storm_only: bool = False) -> dict[str, Any]:
    mode = dataclasses.replace(mode, reps=reps or mode.reps, requests=requests or mode.requests)
    started = time.perf_counter()
    with local_services() as services:
        serialize_moto()
        # The storm's queues exist before any handler reads its settings.
        storm_queues = storm.prepare_queues(services)
        stack = load_local_stack(stack_overrides(services) | storm.STACK_PARAMETERS, services.stack_resources())
        services.env.update(storm.consumer_environment(stack.functions.values()))
        setup_environment(services.env)
        results: dict[str, Any] = {
            "mode": mode.name,
            "reps": mode.reps,
            "requests": mode.requests,
            "threads": mode.threads,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        }
        if not storm_only:
            progress(f"{mode.name} mode: setting up through the real handlers")
            # New webhook events: one per cold start, the warm loop, two throughput runs (+ spare).
            pool = mode.reps + mode.requests + 2 * mode.throughput_events + 2 * mode.shipped_reps + 10
            scenario = ScenarioBuilder(services.stripe, LOCAL_WEBHOOK_SECRET).build(pool)
            bench = Bench(mode, services, scenario)
            progress(f"set up ({len(scenario.events)} webhook events); cold starts, warm requests, floors")
            bench.run_cold_rounds()
            progress("cold starts of the code as Lambda gets it, without and with bytecode")
            bench.run_shipped_cold_starts()
            results.update(bench.summary())
            results["failures"] = bench.failures
            if mode.importtime:
                progress("import-time profiles of the functions whose cold start missed its target")
                results["import_profiles"] = {
                    name: bench.import_profile(name)
                    for name, result in results["functions"].items()
                    if result["cold_ratio"] > report.COLD_RATIO_TARGET
                }
        progress(f"renewal storm: {mode.storm_orgs} organizations")
        results["storm"] = storm.run_storms(services, mode.storm_orgs, storm_queues, progress)
    if storm_only:
        results["sizes"] = {}
    elif mode.sam_build:
        progress("sam build (temporary build dir)")
        results["sizes"] = sizes.sam_build_sizes()
    else:
        results["sizes"] = sizes.existing_build_sizes()
    results["targets"] = report.evaluate(results)
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="3 cold starts, 50 warm requests, no sam build (< 60 s)")
    parser.add_argument("--json", type=Path, help="write the results here (default: bench-results/bench-<mode>-<time>.json)")
    parser.add_argument("--reps", type=int, help="cold starts per function and baseline")
    parser.add_argument("--requests", type=int, help="warm requests per function")
    parser.add_argument("--storm-orgs", type=int, help="organizations in the renewal storm (full 2000, short 60)")
    parser.add_argument("--storm-only", action="store_true", help="only the renewal storm")
    args = parser.parse_args(argv)
    mode = SHORT if args.short else FULL
    if args.storm_orgs:
        mode = dataclasses.replace(mode, storm_orgs=args.storm_orgs)
    results = run(mode, args.reps, args.requests, storm_only=args.storm_only)
    print(report.render(results))
    path: Path = args.json or RESULTS_DIR / f"bench-{results['mode']}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {path}")
    progress("done")
    return 1 if report.enforced_missed(results["targets"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())

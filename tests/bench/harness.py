"""`make bench` / `make bench-short`: the functions' cold starts against the tutorial handlers a team
would otherwise write (tests.bench.tutorial) and against the floor (tests.bench.floor: the same
calls, nothing of ours), the product measured with tracing off and with tracing on as deployed;
then warm latency, calls per request, memory and the events consumer's throughput against the
floor, the code as Lambda gets it with and without bytecode, and the renewal storm
(tests.bench.storm). Every cold start is a fresh process on the shipped layout (tests.bench.shipped:
what `make build` ships, bytecode compiled on both sides), round by round, the order rotated,
with its environment from template.yaml (as `make dev` builds it), against the embedded moto
server and the Stripe fake over HTTP on 127.0.0.1 (both started once, in this process). Prints
one table and writes it as JSON.

    PYTHONPATH=... .venv/bin/python -m tests.bench.harness [--short] [--noise] [--json PATH]

Exit status 1 when an enforced target is missed: calls per request, a failed request, bytecode,
a traced cold start that sent no X-Ray segment, a function whose cold start loses to its
tutorial handler by more than the noise margin (report.TUTORIAL_NOISE_MARGIN), the storm's
organizations. The other latency, memory and ratio targets are reported only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import stripe

from functions.local_stack.dev_tokens import LOCAL_AUDIENCE, LOCAL_ISSUER
from functions.local_stack.template_model import FunctionSpec, load_local_stack
from tests.bench import importtime, report, shipped, sizes, storm
from tests.bench.children import ColdStart, Probe, ProbeSpec, probe_env
from tests.bench.report import AGAIN, BASELINE, FLOOR, OFF, ON, TRACED_TUTORIAL, TUTORIAL, VARIANT_LABELS
from tests.bench.scenario import Scenario, ScenarioBuilder, setup_environment
from tests.bench.xray import XRayDaemon, trace_header, trace_root, traced_environment
from tests.stripe_fake import TEST_API_KEY, FakeStripe, RecordedRequest
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

if TYPE_CHECKING:
    from stripe.params.checkout import SessionCreateParams as CheckoutSessionParams

# Handler module -> the name the report uses, in report order.
FUNCTIONS = {
    "status_handler": "status",
    "checkout_handler": "checkout",
    "portal_handler": "portal",
    "stripe_webhook_handler": "ingest",
    "event_sync_handler": "consumer",
}
# Import-only processes, for context: what the interpreter, boto3 and boto3 + stripe cost alone.
BASELINES = ("pass", "boto3", "boto3_stripe")
# The cold-start variants of each function, interleaved (AGAIN, the tutorial a second time, only
# with --noise: the spread of two identical probes, from which the noise margin was chosen).
VARIANTS = (TUTORIAL, TRACED_TUTORIAL, FLOOR, OFF, ON)
# The variants run with tracing on (Lambda's traced environment, a trace header per cold start).
TRACED = (TRACED_TUTORIAL, ON)
# Variables of the template that only the product's layer needs (its trimmed botocore data): the
# tutorial and the floor run on the same packages without them, as a team would ship them.
PRODUCT_ONLY_VARIABLES = ("AWS_DATA_PATH",)
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
    # The import-only baselines in every round (context only: the full mode's).
    baselines: bool = True
    # The tutorial handlers timed twice per round (--noise): the spread of two identical probes.
    noise: bool = False


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
    5,
    requests=50,
    threads=8,
    warm_blocks=5,
    throughput_events=50,
    sam_build=False,
    importtime=False,
    shipped_reps=1,
    storm_orgs=60,
    baselines=False,
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
    tracing off and WARNING logs; no import path yet (that is the layout's, see Bench.spec)."""
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
        found[name] = (spec, env)
    missing = set(FUNCTIONS.values()) - set(found)
    if missing:
        raise RuntimeError(f"template.yaml has no function for: {', '.join(sorted(missing))}")
    return {name: found[name] for name in FUNCTIONS.values()}


def handler_args(function: FunctionSpec) -> tuple[str, ...]:
    """tests.bench.probe's arguments to import the function's handler and serve with it."""
    return ("handler", function.handler_module, function.handler_name, function.logical_id)


def tutorial_args(function: FunctionSpec, *, traced: bool = False) -> tuple[str, ...]:
    """tests.bench.probe's arguments for the function's tutorial handler (app.lambda_handler, or
    traced_app.lambda_handler: the same traced with the X-Ray SDK)."""
    module = shipped.TRACED_TUTORIAL_MODULE if traced else shipped.TUTORIAL_MODULE
    return ("handler", module, "lambda_handler", f"Tutorial{function.logical_id}")


def round_order[T](round_number: int, groups: list[list[T]]) -> list[T]:
    """One round's cold starts: the groups (a function's variants; the baselines) one after the
    other, so machine noise hits a function's variants alike, the groups rotated by the round
    number and so are the members of each group, so no variant always goes first or last."""
    if not groups:
        return []
    shift = round_number % len(groups)
    ordered: list[T] = []
    for group in groups[shift:] + groups[:shift]:
        turn = round_number % len(group) if group else 0
        ordered += group[turn:] + group[:turn]
    return ordered


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
    def __init__(self, mode: Mode, services: LocalServices, scenario: Scenario, layout: shipped.Layout) -> None:
        self.mode = mode
        self.fake: FakeStripe = services.stripe
        self.scenario = scenario
        self.layout = layout
        self.functions = function_environments(services)
        self.variants: tuple[str, ...] = (*VARIANTS, AGAIN) if mode.noise else VARIANTS
        # Cold starts: function -> variant -> samples; the import-only baselines apart.
        self.cold: dict[str, dict[str, list[ColdStart]]] = {
            name: {variant: [] for variant in self.variants} for name in FUNCTIONS.values()
        }
        self.cold_baselines: dict[str, list[ColdStart]] = {name: [] for name in BASELINES}
        # X-Ray segment packets the daemon stand-in received from each traced cold start.
        self.xray = XRayDaemon()
        self.xray_packets: dict[str, dict[str, list[int]]] = {
            name: {variant: [] for variant in TRACED} for name in FUNCTIONS.values()
        }
        self.stray_xray_packets = 0
        # Cold starts of the code laid out as Lambda gets it: variant -> function -> samples.
        self.cold_shipped: dict[str, dict[str, list[ColdStart]]] = {
            variant: {name: [] for name in FUNCTIONS.values()} for variant in (shipped.NO_BYTECODE, shipped.BYTECODE)
        }
        self.shipped_files: dict[str, dict[str, int]] = {}
        self.results: dict[str, dict[str, Any]] = {name: {} for name in FUNCTIONS.values()}
        self.failures: list[str] = []
        self.aws = services.aws_client("dynamodb")
        self.table = services.env["TABLE_NAME"]
        # The parent's own Stripe client: the open session a checkout floor's first call expires.
        self.stripe = stripe.StripeClient(TEST_API_KEY, base_addresses={"api": services.stripe_base})
        self._floor_events = 0

    def close(self) -> None:
        self.xray.close()

    # --- children -------------------------------------------------------------------------------

    def _env(self, name: str, code_dir: Path, *, product: bool, root: Path | None = None) -> dict[str, str]:
        """The function's environment for a child on the layout: Lambda's code folder (read-only:
        no bytecode written), the layer's folder where the template names /opt/python (the
        product) or without the product's own variables (the tutorial, the floor)."""
        _, env = self.functions[name]
        layer = self.layout.layer(root)
        if product:
            env = shipped.lambda_paths(env, layer)
        else:
            env = {key: value for key, value in env.items() if key not in PRODUCT_ONLY_VARIABLES}
            env = {key: value for key, value in env.items() if shipped.LAMBDA_LAYER_PATH not in value}
        env = {**env, "PYTHONDONTWRITEBYTECODE": "1", "LAMBDA_TASK_ROOT": str(code_dir)}
        return probe_env(env, str(code_dir), str(layer))

    def spec(self, name: str, variant: str, *, trace: str | None = None, python_args: tuple[str, ...] = ()) -> ProbeSpec:
        """A child for one variant of the function's cold start (BASELINE: `name` is a baseline)."""
        if variant == BASELINE:
            folder = self.layout.tutorial_dir("status")
            return ProbeSpec(f"baseline {name}", ("baseline", name), self._env("status", folder, product=False), str(folder))
        function, _ = self.functions[name]
        label = f"{name} ({VARIANT_LABELS[variant]})"
        if variant in (TUTORIAL, AGAIN, TRACED_TUTORIAL):
            folder = self.layout.tutorial_dir(name)
            env = self._env(name, folder, product=False)
            traced = variant == TRACED_TUTORIAL
            if traced:
                env |= self._traced_environment(trace)
            return ProbeSpec(label, tutorial_args(function, traced=traced), env, str(folder), python_args)
        if variant == FLOOR:
            folder = self.layout.floor_dir
            return ProbeSpec(label, ("floor", name), self._env(name, folder, product=False), str(folder), python_args)
        folder = self.layout.function_dir(name)
        env = self._env(name, folder, product=True)
        if variant == ON:
            env.pop("POWERTOOLS_TRACE_DISABLED", None)
            env |= self._traced_environment(trace)
        return ProbeSpec(label, handler_args(function), env, str(folder), python_args)

    def _traced_environment(self, trace: str | None) -> dict[str, str]:
        """Tracing on as the template deploys it (Tracing: Active): what Lambda adds to the environment."""
        if trace is None:
            raise ValueError("a traced child needs its invocation's trace header")
        return traced_environment(self.xray.address, trace)

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
        """Round by round, every function's variants (tutorial, floor, tracing off, tracing on)
        and the baselines, each a fresh process; the warm requests in the last round's tracing-off
        child, right after its cold start."""
        groups: list[list[tuple[str, str]]] = [[(name, variant) for variant in self.variants] for name in FUNCTIONS.values()]
        if self.mode.baselines:
            groups.append([(name, BASELINE) for name in BASELINES])
        for round_number in range(self.mode.reps):
            last = round_number == self.mode.reps - 1
            for name, variant in round_order(round_number, groups):
                if variant == BASELINE:
                    self.baseline_cold_start(name)
                elif variant == FLOOR:
                    self.cold[name][FLOOR].append(self.floor_cold_start(name))
                else:
                    self.cold_start(name, variant, warm=last and variant == OFF)
            progress(f"cold-start round {round_number + 1}/{self.mode.reps} done")

    def baseline_cold_start(self, name: str) -> None:
        probe = Probe(self.spec(name, BASELINE))
        try:
            self.cold_baselines[name].append(probe.start(None))
        finally:
            probe.discard(kill=True)

    def cold_start(self, name: str, variant: str, *, warm: bool = False) -> None:
        """One cold start of the function's handler (or its tutorial's): a fresh process serving
        its first request; a traced one is checked to have sent X-Ray segments."""
        trace = trace_header() if variant in TRACED else None
        probe = Probe(self.spec(name, variant, trace=trace))
        try:
            sample = probe.start(self.request(name))
            self.cold[name][variant].append(sample)
            if sample.status != 200:
                self.failures.append(
                    f"{name} ({VARIANT_LABELS[variant]}): first request of a cold start answered {sample.status}"
                )
            # Right after the function's own cold start, so machine noise hits both alike.
            if warm:
                self.run_warm_and_floor(name, probe)
                progress(f"{name}: warm requests and floor done")
        finally:
            probe.discard(kill=not warm)
        if trace is not None:
            received = self.xray.take()
            self.xray_packets[name][variant].append(received.pop(trace_root(trace), 0))
            self.stray_xray_packets += sum(received.values())
            if self.xray.leaks:
                self.failures.append(f"{name}: a trace segment held {sorted(set(self.xray.leaks))}")
                self.xray.leaks.clear()

    def shipped_spec(self, name: str, root: Path, variant: str) -> ProbeSpec:
        """The function's child importing its code from `root` (a shipped variant, tracing off)."""
        function, _ = self.functions[name]
        folder = self.layout.function_dir(name, root)
        env = self._env(name, folder, product=True, root=root)
        return ProbeSpec(f"{name} ({variant})", handler_args(function), env, str(folder))

    def run_shipped_cold_starts(self) -> None:
        """Cold starts of the code as `sam build` alone ships it (no .pyc) and as `make build` does
        (compiled by the Makefile's post-build target), alternating, each function in turn."""
        roots = {shipped.NO_BYTECODE: self.layout.plain, shipped.BYTECODE: self.layout.build}
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
                        probe.discard(kill=True)
                    if sample.status != 200:
                        self.failures.append(f"{name} ({variant}): first request of a cold start answered {sample.status}")
                    self.cold_shipped[variant][name].append(sample)

    def _measured(self, probe: Probe, command: dict[str, Any], where: str) -> dict[str, Any]:
        self.fake.reset_requests()
        reply = probe.command(command)
        reply["stripe_calls"] = stripe_calls(list(self.fake.requests))
        self._failed(where, reply)
        return reply

    def _latency(self, reply: Mapping[str, Any]) -> dict[str, Any]:
        millis: list[float] = reply["ms"]
        n = len(millis)
        stripe_counts: Counter[str] = reply["stripe_calls"]
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
            "stripe_calls_per_request": round(sum(stripe_counts.values()) / n, 4),
            "stripe_operations_per_request": per_request(stripe_counts, n),
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
        """The floor's first line: the organization, the Stripe parameters the handler sends
        (recorded during the set-up), the consumer's targets; for checkout an open session of the
        customer, created just now, for the first call to expire (the handler expires the one it
        recorded: the same calls)."""
        setup: dict[str, Any] = {
            "org_id": self.scenario.checkout_org if name == "checkout" else self.scenario.status_org,
            "stripe_params": self.scenario.stripe_params.get(name, {}),
            "targets": self.scenario.targets if name == SYNC else [],
        }
        if name == "checkout":
            params = cast("CheckoutSessionParams", self.scenario.stripe_params["checkout"])
            setup["previous_session"] = self.stripe.v1.checkout.sessions.create(params=params).id
        return setup

    def start_floor(self, name: str) -> tuple[Probe, ColdStart]:
        """A floor child, started (its first call made) and ready for commands."""
        floor = Probe(self.spec(name, FLOOR))
        try:
            first = floor.start(self.floor_setup(name))
        except BaseException:
            floor.discard()
            raise
        if first.status != 200:
            self.failures.append(f"{name} floor: its first call answered {first.status}")
        return floor, first

    def floor_cold_start(self, name: str) -> ColdStart:
        already_open = self._open_sessions()
        try:
            floor, first = self.start_floor(name)
            floor.discard(kill=True)
        finally:
            self._expire_new_sessions(already_open)
        return first

    def _expire_new_sessions(self, already_open: set[str]) -> None:
        """A checkout floor's sessions are nobody's: Stripe would expire them in time. Left open,
        one would age past the handler's 60 s grace for unrecorded sessions (or meet a tutorial
        handler, which expires every open one) during a later request, which would then expire
        it: a call no production request makes."""
        for session_id in self._open_sessions() - already_open:
            self.fake.expire_checkout(session_id)

    def _open_sessions(self) -> set[str]:
        return {session_id for session_id, session in self.fake.checkout_sessions.items() if session["status"] == "open"}

    def run_warm_and_floor(self, name: str, probe: Probe) -> None:
        """The warm requests in the function's process (the last cold-start round's), alternating
        with the same calls on the floor (a child of its own, its cold start not counted); for the
        consumer also duplicates and throughput runs. Every phase starts from the same table (see
        purge_event_markers)."""
        n = self.mode.requests
        already_open = self._open_sessions()
        floor, _ = self.start_floor(name)
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
            # The floor's last session; the one the function recorded stays open for its next request.
            self._expire_new_sessions(already_open | {self._recorded_session()})

    def _recorded_session(self) -> str:
        """The checkout organization's recorded open session (the CHECKOUT item), if any."""
        key = {"pk": {"S": f"ORG#{self.scenario.checkout_org}"}, "sk": {"S": "CHECKOUT"}}
        item = self.aws.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item") or {}
        return str(item.get("session_id", {}).get("S", ""))

    @staticmethod
    def _throughput(reply: Mapping[str, Any]) -> dict[str, Any]:
        n, seconds = int(reply["n"]), float(reply["seconds"])
        stripe_counts: Counter[str] = reply["stripe_calls"]
        return {
            "n": n,
            "seconds": round(seconds, 3),
            "events_per_second": round(n / seconds, 2),
            "failed": reply["failed"],
            "outcomes": reply["outcomes"],
            "aws_operations_per_request": per_request(reply["aws_calls"], n),
            "stripe_calls_per_request": round(sum(stripe_counts.values()) / n, 4),
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
        probe = Probe(self.spec(name, OFF, python_args=("-X", "importtime")))
        try:
            probe.start(self.request(name))
            probe.close()
            return importtime.parse(probe.stderr_text()).as_dict()
        finally:
            probe.discard()

    def summary(self) -> dict[str, Any]:
        baselines = {name: cold_summary(samples) for name, samples in self.cold_baselines.items() if samples}
        functions: dict[str, Any] = {}
        for name in FUNCTIONS.values():
            result = dict(self.results[name])
            cold = {variant: cold_summary(samples) for variant, samples in self.cold[name].items() if samples}
            result["cold"] = cold
            result["cold_ratios"] = report.cold_ratios(cold)
            result["paired_ratios"] = report.paired_ratios(cold)
            result["xray_packets"] = self.xray_packets[name][ON]
            result["tutorial_xray_packets"] = self.xray_packets[name][TRACED_TUTORIAL]
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
        return {
            "baselines": baselines,
            "functions": functions,
            "as_shipped": as_shipped,
            "xray": {
                "daemon": self.xray.address,
                "stray_packets": self.stray_xray_packets,
                "unparsed_packets": self.xray.unparsed,
            },
        }


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


def pool_size(mode: Mode) -> int:
    """New webhook events the run delivers: one per cold start of ingest and of the consumer (each
    variant but the floor, every round), per shipped cold start of either, per import profile, the
    consumer's warm loop and its two throughput runs (+ spare)."""
    handlers_per_round = len(VARIANTS) - 1 + (1 if mode.noise else 0)
    profiles = 2 if mode.importtime else 0
    return 2 * handlers_per_round * mode.reps + 4 * mode.shipped_reps + profiles + mode.requests + 2 * mode.throughput_events + 10


def run_functions(mode: Mode, services: LocalServices, layout: shipped.Layout) -> dict[str, Any]:
    """Everything but the storm and the sizes, on `layout`."""
    progress(f"{mode.name} mode: setting up through the real handlers")
    scenario = ScenarioBuilder(services.stripe, LOCAL_WEBHOOK_SECRET).build(pool_size(mode))
    bench = Bench(mode, services, scenario, layout)
    try:
        progress(f"set up ({len(scenario.events)} webhook events); cold starts, warm requests, floors")
        bench.run_cold_rounds()
        progress("cold starts of the code as Lambda gets it, without and with bytecode")
        bench.run_shipped_cold_starts()
        results = bench.summary()
        results["failures"] = bench.failures
        if mode.importtime:
            progress("import-time profiles of the functions whose cold start lost to their tutorial handler")
            results["import_profiles"] = {
                name: bench.import_profile(name)
                for name, result in results["functions"].items()
                if result["cold_ratios"].get("off_vs_tutorial", 0) > report.TUTORIAL_TARGET
            }
    finally:
        bench.close()
    return results


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
            "noise": mode.noise,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        }
        if not storm_only:
            progress(f"{mode.name} mode: laying out the shipped code (make post-build), the tutorial handlers and the floor")
            code_dirs = {name: Path(function.code_dir) for name, (function, _) in function_environments(services).items()}
            layout = shipped.prepare_layout(code_dirs)
            try:
                results.update(run_functions(mode, services, layout))
            finally:
                layout.remove()
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
    parser.add_argument("--short", action="store_true", help="fewer cold starts and warm requests, no sam build (make test)")
    parser.add_argument(
        "--noise",
        action="store_true",
        help="also time each tutorial handler a second time every round (the spread of two identical probes)",
    )
    parser.add_argument("--json", type=Path, help="write the results here (default: bench-results/bench-<mode>-<time>.json)")
    parser.add_argument("--reps", type=int, help="cold starts per function, variant and baseline")
    parser.add_argument("--requests", type=int, help="warm requests per function")
    parser.add_argument("--storm-orgs", type=int, help="organizations in the renewal storm (full 2000, short 60)")
    parser.add_argument("--storm-only", action="store_true", help="only the renewal storm")
    args = parser.parse_args(argv)
    mode = SHORT if args.short else FULL
    if args.storm_orgs:
        mode = dataclasses.replace(mode, storm_orgs=args.storm_orgs)
    if args.noise:
        mode = dataclasses.replace(mode, noise=True)
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

"""`make dev`: the whole billing product on 127.0.0.1, with nothing but Python.

Starts an embedded AWS (moto, with the table and the secret from template.yaml), a Stripe
emulator (the Stripe fake with hosted Checkout and portal pages that deliver signed webhooks),
the local API gateway (every route of template.yaml, JWT authorizer, CORS) and the webhook's
Function URL, each function in its own process with its own environment from the template. The
template's queues live in the embedded AWS, and each function with an SQS event is fed its queue's
batches as Lambda feeds it (queue_poller). With `--stripe-delivery eventbridge` the emulator sends
its events as Stripe's Amazon EventBridge destination does, into the queue the template's rule
targets, instead of to the webhook URL.

With STRIPE_SECRET_KEY (a test-mode key), STRIPE_WEBHOOK_SECRET and STRIPE_PRICES (the catalog's
prices, in the format of the StripePrices parameter) in the environment, it talks to real Stripe
instead of the emulator.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import rsa

from functions.local_stack.dev_tokens import LOCAL_AUDIENCE, LOCAL_ISSUER, Verifier, load_signing_key, mint_for
from functions.local_stack.eventbridge_delivery import EventBridgeToQueue
from functions.local_stack.function_process import FunctionProcess
from functions.local_stack.gateway import ApiGateway, FunctionUrl, serve
from functions.local_stack.queue_poller import QueuePoller
from functions.local_stack.template_model import LocalStack, load_local_stack
from tenant_billing.catalog import CATALOG_PATH, get_catalog
from tenant_billing.settings import Settings, parse_prices
from tests.support.local_services import (
    LOCAL_TABLE,
    LOCAL_WEBHOOK_SECRET,
    LocalServices,
    PortInUseError,
    StripeTarget,
    add_local_prices,
    check_port_free,
    embedded_aws,
    price_parameters,
)

if TYPE_CHECKING:  # the emulator is imported only when it runs (not with real Stripe)
    from functions.local_stack.emulator_state import StripeEmulator

DEMO_ORG = "org_demo"
# Python runs signal handlers in the main thread only, and the kernel may hand Ctrl-C to any of the
# stack's threads: nothing then wakes a main thread blocked in an untimed wait (the handler runs at
# its next wake-up). So it waits in slices this long.
STOP_POLL_SECONDS = 0.2
# A stop slower than this (interpreter exit included) prints every thread's stack to stderr, so a
# hang says where it is.
SLOW_STOP_SECONDS = 20
Processes = dict[str, FunctionProcess]
# How the emulator's events reach the product: the webhook's Function URL, or the EventBridge rule's queue.
DELIVERIES = ("webhook", "eventbridge")


@dataclass(frozen=True)
class Ports:
    gateway: int
    webhook: int
    stripe: int
    aws: int


class DevError(Exception):
    pass


def parse_args(argv: list[str] | None = None) -> tuple[Ports, str]:
    """(the ports, how the emulator delivers its events)."""
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # 3000-3003: none is another local tool's default (LocalStack's 4566, stripe-mock's 12111).
    parser.add_argument("--port", type=int, default=int(env.get("DEV_PORT", 3000)), help="API gateway and demo page (DEV_PORT)")
    parser.add_argument(
        "--webhook-port", type=int, default=int(env.get("DEV_WEBHOOK_PORT", 3001)), help="webhook Function URL (DEV_WEBHOOK_PORT)"
    )
    parser.add_argument(
        "--stripe-port", type=int, default=int(env.get("DEV_STRIPE_PORT", 3002)), help="Stripe emulator (DEV_STRIPE_PORT)"
    )
    parser.add_argument(
        "--aws-port", type=int, default=int(env.get("DEV_AWS_PORT", 3003)), help="embedded AWS, moto (DEV_AWS_PORT)"
    )
    parser.add_argument(
        "--stripe-delivery",
        choices=DELIVERIES,
        default=env.get("DEV_STRIPE_DELIVERY", "webhook"),
        help="how the Stripe emulator delivers its events (DEV_STRIPE_DELIVERY): signed webhooks to the Function URL, "
        "or EventBridge events (as Stripe's Amazon EventBridge destination) to the queue the template's rule targets",
    )
    args = parser.parse_args(argv)
    return Ports(args.port, args.webhook_port, args.stripe_port, args.aws_port), args.stripe_delivery


def real_stripe_from_env() -> StripeTarget | None:
    """Real Stripe test mode when the environment carries its key, webhook secret and prices."""
    key = os.environ.get("STRIPE_SECRET_KEY", "").strip()
    if not key:
        return None
    if not key.startswith(("sk_test_", "rk_test_")):
        raise DevError("make dev only uses Stripe test-mode keys (sk_test_... or rk_test_...)")
    webhook_secret = os.environ.get("STRIPE_WEBHOOK_SECRET", "").strip()
    if not webhook_secret:
        raise DevError("set STRIPE_WEBHOOK_SECRET to the secret `stripe listen --print-secret` shows")
    raw = os.environ.get("STRIPE_PRICES", "")
    try:
        prices: dict[str, object] = json.loads(raw) if raw.strip() else {}
        parse_prices(prices)
    except ValueError as exc:
        raise DevError(f"STRIPE_PRICES: {exc}") from None
    if missing := [name for name in get_catalog().base_price_names() if name not in prices]:
        raise DevError(
            f"with real Stripe, also set {', '.join(missing)} in STRIPE_PRICES (your test-mode price ids or lookup keys)"
        )
    return StripeTarget(api_base="", secret_key=key, webhook_secret=webhook_secret, prices=prices)


def _start_stripe(stack: ExitStack, ports: Ports, webhook_url: str) -> tuple[StripeTarget, StripeEmulator | None]:
    """(where the functions reach Stripe, the emulator or None): the emulator unless the environment says otherwise."""
    real = real_stripe_from_env()
    if real is not None:
        return real, None
    from functions.local_stack.stripe_emulator import start_emulator

    check_port_free(ports.stripe, "Stripe emulator")
    emulator, stripe_base, fake = start_emulator(webhook_url=webhook_url, webhook_secret=LOCAL_WEBHOOK_SECRET, port=ports.stripe)
    stack.callback(emulator.server_close)
    stack.callback(emulator.shutdown)
    add_local_prices(fake)
    return StripeTarget(stripe_base), emulator.emulator


def _start_functions(
    stack: ExitStack, target: StripeTarget, gateway_url: str, aws_port: int
) -> tuple[LocalStack, Processes, LocalServices]:
    """Embedded AWS and one process per function of template.yaml: (the stack, its processes, the embedded AWS)."""
    services = stack.enter_context(embedded_aws(target, aws_port=aws_port))
    overrides = {
        "AppBaseUrl": gateway_url,
        "CorsAllowedOrigins": gateway_url,
        "JwtIssuer": LOCAL_ISSUER,
        "JwtAudience": LOCAL_AUDIENCE,
        **price_parameters(target.prices),
    }
    template_stack = load_local_stack(overrides, services.stack_resources())
    extra_env = {key: value for key, value in services.env.items() if key.startswith("AWS_") or key == "STRIPE_API_BASE"}
    extra_env |= {"POWERTOOLS_TRACE_DISABLED": "true", "STRIPE_SECRET_MAX_AGE_SECONDS": "5"}
    processes = {logical_id: FunctionProcess(spec, extra_env) for logical_id, spec in template_stack.functions.items()}
    for process in processes.values():
        stack.callback(process.stop)
    return template_stack, processes, services


def _start_queue_consumers(
    stack: ExitStack, template_stack: LocalStack, processes: Processes, services: LocalServices
) -> list[str]:
    """Feed each function with an SQS event its queue, as Lambda's event source mapping does: one line each for the banner."""
    started = []
    for function, source in template_stack.queue_consumers():
        queue = services.queues[source.queue]
        process = processes[function.logical_id]
        poller = QueuePoller(services.aws_client("sqs"), queue.url, queue.arn, source, process.invoke, function.logical_id)
        poller.start()
        stack.callback(poller.stop)
        started.append(f"{source.queue} -> {function.logical_id}")
    return started


def _deliver_by_eventbridge(emulator: StripeEmulator | None, template_stack: LocalStack, services: LocalServices) -> str:
    """Send the emulator's events to the queue the template's EventBridge rule targets: that queue."""
    if emulator is None:
        raise DevError("--stripe-delivery eventbridge needs the Stripe emulator (real Stripe delivers to real AWS)")
    if not template_stack.rule_queues:
        raise DevError("--stripe-delivery eventbridge: template.yaml has no EventBridge rule that targets a queue")
    (queue_name,) = set(template_stack.rule_queues.values())
    queue = services.queues[queue_name]
    emulator.send = EventBridgeToQueue(services.aws_client("sqs"), queue.url, queue.arn)
    return queue_name


def _demo_tokens(key: rsa.RSAPrivateKey) -> list[dict[str, str]]:
    """The tokens the demo page offers: an admin and a member of the demo org, an admin of another."""
    return [
        {"label": "Demo org admin", "orgId": DEMO_ORG, "role": "admin", "token": mint_for(key, DEMO_ORG, "admin")},
        {"label": "Demo org member", "orgId": DEMO_ORG, "role": "member", "token": mint_for(key, DEMO_ORG, "member")},
        {"label": "Other org admin", "orgId": "org_other", "role": "admin", "token": mint_for(key, "org_other", "admin")},
    ]


def _serve(stack: ExitStack, target: ApiGateway | FunctionUrl, port: int, name: str) -> None:
    server = serve(target, "127.0.0.1", port, name)
    stack.callback(server.server_close)
    stack.callback(server.shutdown)


@contextmanager
def running_stack(ports: Ports, out: Any = sys.stdout, *, stripe_delivery: str = "webhook") -> Iterator[dict[str, Any]]:
    """Start everything; yield what was started (URLs and tokens); stop everything on exit."""
    for port, what in ((ports.gateway, "API gateway"), (ports.webhook, "webhook Function URL")):
        check_port_free(port, what)
    gateway_url = f"http://localhost:{ports.gateway}"
    webhook_url = f"http://127.0.0.1:{ports.webhook}/"
    with ExitStack() as stack:
        target, emulator = _start_stripe(stack, ports, webhook_url)
        template_stack, processes, services = _start_functions(stack, target, gateway_url, ports.aws)
        consumers = _start_queue_consumers(stack, template_stack, processes, services)
        delivery = f"webhooks to {webhook_url}"
        if stripe_delivery == "eventbridge":
            delivery = f"EventBridge events to the queue {_deliver_by_eventbridge(emulator, template_stack, services)}"
        key = load_signing_key()
        verifier = Verifier(key.public_key(), LOCAL_ISSUER, (LOCAL_AUDIENCE,))
        tokens = _demo_tokens(key)
        page_config = {"tokens": tokens, "apiBase": "", **_role_settings(template_stack)}
        gateway = ApiGateway(template_stack, processes, verifier, lambda: page_config, CATALOG_PATH)
        _serve(stack, gateway, ports.gateway, "api")
        (webhook_function,) = template_stack.url_functions()
        _serve(stack, FunctionUrl(processes[webhook_function.logical_id]), ports.webhook, "webhook")
        info = {
            "gateway": gateway_url,
            "webhook": webhook_url,
            "stripe": target.api_base or "https://api.stripe.com (test mode)",
            "aws": services.aws_endpoint,
            "tokens": tokens,
            "real_stripe": emulator is None,
            "delivery": delivery,
            "consumers": consumers,
        }
        print_banner(info, out)
        yield info


def _role_settings(template_stack: LocalStack) -> dict[str, Any]:
    """Where the token names the caller's role and which roles manage billing, as the functions read
    them (RoleClaim, AdminRoles): the demo page offers admin actions by them (display only)."""
    settings = Settings.from_environ(next(iter(template_stack.functions.values())).environment)
    return {"roleClaim": settings.ROLE_CLAIM, "adminRoles": sorted(settings.ADMIN_ROLES)}


def print_banner(info: dict[str, Any], out: Any) -> None:
    admin, member = info["tokens"][0]["token"], info["tokens"][1]["token"]
    lines = [
        "",
        "Local billing stack (template.yaml's functions, each in its own process)",
        f"  Demo billing page     {info['gateway']}/",
        f"  Billing API           {info['gateway']}/billing/status | /billing/checkout | /billing/portal",
        f"  Stripe webhook URL    {info['webhook']}",
        f"  Stripe                {info['stripe']}",
        f"  Embedded AWS (moto)   {info['aws']}  (table {LOCAL_TABLE})",
        *(f"  Queue consumer        {consumer}" for consumer in info["consumers"]),
        "",
        f"  Admin token  (org {DEMO_ORG}, role admin):  {admin}",
        f"  Member token (org {DEMO_ORG}, role member): {member}",
        f"  Try: curl -H 'Authorization: Bearer {admin[:16]}...' {info['gateway']}/billing/status",
        "  More tokens: .venv/bin/python -m functions.local_stack.dev_tokens --org org_acme --role owner   (or make token)",
    ]
    if info["real_stripe"]:
        lines += ["", f"  Real Stripe (test mode): run  stripe listen --forward-to {info['webhook']}"]
    else:
        lines += [
            f"  Stripe emulator sends {info['delivery']}",
            "",
            "  Test cards: 4242 4242 4242 4242 pays; 4000 0000 0000 0002 is declined;",
            "  4000 0025 0000 3155 asks for 3-D Secure (complete or fail the challenge).",
        ]
    lines += ["", "local billing stack ready (Ctrl-C stops everything)", ""]
    print("\n".join(lines), file=out, flush=True)


def stop_on_signals() -> threading.Event:
    """An event set by the first Ctrl-C (or SIGTERM); a second one ends the process at once (its
    function processes exit when their stdin closes)."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    return stop


def wait_until_set(stop: threading.Event) -> None:
    while not stop.wait(STOP_POLL_SECONDS):
        pass


def main(argv: list[str] | None = None) -> int:
    ports, stripe_delivery = parse_args(argv)
    stop = stop_on_signals()
    try:
        with running_stack(ports, stripe_delivery=stripe_delivery):
            wait_until_set(stop)
            print("\nstopping...", flush=True)
            faulthandler.dump_traceback_later(SLOW_STOP_SECONDS)
    except (PortInUseError, DevError) as exc:
        print(f"make dev: {exc}", file=sys.stderr)
        return 2
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Local stand-ins for the cloud: moto in server mode (the table, the queues and the secret created
from template.yaml's own definitions) and the Stripe fake served over HTTP. The handlers reach them
through AWS_ENDPOINT_URL and STRIPE_API_BASE, exactly as a deployed function reaches AWS and
Stripe. Used by the benchmarks and the local stack; everything binds to 127.0.0.1."""

from __future__ import annotations

import json
import logging
import random
import socket
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import boto3
from moto.server import ThreadedMotoServer

from tenant_billing.catalog import Catalog, get_catalog
from tests.stripe_fake import TEST_API_KEY, FakeStripe
from tests.stripe_fake.server import serve_in_thread
from tests.support.template import (
    LocalQueue,
    create_queues_from_template,
    create_table_from_template,
    load_template,
    resource,
)

LOCAL_REGION = "us-east-1"
LOCAL_WEBHOOK_SECRET = "whsec_local_development_only"
LOCAL_TABLE = "billing-local"
LOCAL_SECRET_NAME = "billing/stripe-local"
LOCAL_EVENT_BUS = "billing-entitlements-local"
# The one template parameter that gives the catalog's prices their Stripe prices.
PRICES_PARAMETER = "StripePrices"


@dataclass(frozen=True)
class LocalPrice:
    price_id: str
    product_name: str
    unit_amount: int
    currency: str
    interval: str


def local_prices(catalog: Catalog) -> dict[str, LocalPrice]:
    """Every catalog price, by name, as the emulator holds it: its own id, the catalog's amount."""
    return {
        entry.price.name: LocalPrice(
            f"price_local_{entry.price.name}",
            catalog.plans[entry.ref.plan].name + (" extra site" if entry.ref.kind == "site" else ""),
            entry.price.unit_amount,
            catalog.currency,
            entry.ref.interval,
        )
        for entry in catalog.prices()
    }


def price_parameters(prices: Mapping[str, object]) -> dict[str, str]:
    """The template parameter for these prices ({price name: price id or {"lookupKey": ...}})."""
    if PRICES_PARAMETER not in load_template()["Parameters"]:
        raise KeyError(f"template.yaml has no {PRICES_PARAMETER} parameter")
    return {PRICES_PARAMETER: json.dumps(dict(prices), separators=(",", ":"))}


def price_environment(prices: Mapping[str, object]) -> dict[str, str]:
    """What the template gives the functions for these prices: each Globals variable that refers
    to the prices parameter (read from template.yaml, not named here)."""
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    value = price_parameters(prices)[PRICES_PARAMETER]
    return {name: value for name, ref in variables.items() if ref == {"Ref": PRICES_PARAMETER}}


class PortInUseError(RuntimeError):
    pass


# Where the kernel takes the local ports of outgoing connections (Linux's default range when it
# cannot be read). A port handed out for a server must lie outside it: the stack's own calls (to
# the embedded AWS, Stripe, the webhook) open connections from that range before its last server
# binds, and one of them could take the port.
EPHEMERAL_PORTS_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_EPHEMERAL_PORTS = (32768, 60999)
SERVER_PORTS = range(10000, 32768)
# Each port is handed out once per process: ports asked for together are bound only later.
_handed_out: set[int] = set()


def ephemeral_ports(source: Path = EPHEMERAL_PORTS_FILE) -> range:
    try:
        low, high = (int(value) for value in source.read_text().split())
    except (OSError, ValueError):
        low, high = DEFAULT_EPHEMERAL_PORTS
    return range(low, high + 1)


def free_port() -> int:
    """A port free on 127.0.0.1 now, outside the range of outgoing connections' ports."""
    outgoing = ephemeral_ports()
    candidates = [port for port in SERVER_PORTS if port not in outgoing and port not in _handed_out]
    for port in random.sample(candidates, min(50, len(candidates))):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    # A machine whose outgoing range covers every port: the kernel's pick, as good as it gets there.
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def check_port_free(port: int, what: str) -> None:
    """Refuse a port something listens on. With SO_REUSEADDR, as the servers themselves bind: the
    TIME_WAIT connections a stopped stack leaves for a minute do not count as in use."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise PortInUseError(f"port {port} ({what}) is already in use on 127.0.0.1; choose another") from None


@dataclass
class LocalServices:
    aws_endpoint: str
    stripe_base: str
    secret_arn: str
    stripe: FakeStripe
    # The environment a function gets (template Globals resolved for local use).
    env: dict[str, str] = field(default_factory=dict)
    # The template's SQS queues by logical id.
    queues: dict[str, LocalQueue] = field(default_factory=dict)

    def stack_resources(self) -> dict[str, str]:
        """What !Ref (and !GetAtt …Arn) of the template's resources stands for locally."""
        resources = {
            "BillingTable": LOCAL_TABLE,
            "StripeSecret": self.secret_arn,
            "CommonLayer": "local-layer",
            "EntitlementsEventBus": LOCAL_EVENT_BUS,
        }
        for name, queue in self.queues.items():
            resources |= {name: queue.url, f"{name}.Arn": queue.arn}
        return resources

    def aws_client(self, service: str) -> Any:
        # Typed per service by boto3-stubs overloads; any service name is fine here.
        return cast(Any, boto3).client(
            service,
            endpoint_url=self.aws_endpoint,
            region_name=LOCAL_REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )


@dataclass(frozen=True)
class StripeTarget:
    """Where the functions' Stripe calls go: an already running Stripe-compatible server
    (api_base), or real Stripe (api_base empty), with the credentials the secret will hold."""

    api_base: str
    secret_key: str = TEST_API_KEY
    webhook_secret: str = LOCAL_WEBHOOK_SECRET
    # {price name: price id or {"lookupKey": ...}}, as the StripePrices parameter takes them.
    prices: dict[str, object] = field(
        default_factory=lambda: {name: price.price_id for name, price in local_prices(get_catalog()).items()}
    )


def add_local_prices(fake: FakeStripe) -> FakeStripe:
    for price in local_prices(get_catalog()).values():
        if price.price_id not in fake.prices:
            fake.add_price(
                price.price_id,
                product_name=price.product_name,
                unit_amount=price.unit_amount,
                currency=price.currency,
                interval=price.interval,
            )
    return fake


@contextmanager
def embedded_aws(target: StripeTarget, *, aws_port: int = 0) -> Iterator[LocalServices]:
    """moto in server mode with the table, the queues, the entitlements bus and the Stripe secret created from template.yaml."""
    aws_port = aws_port or free_port()
    check_port_free(aws_port, "embedded AWS")
    # The embedded AWS answers quietly: one access-log line per call would drown everything else.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=aws_port, verbose=False)
    moto.start()
    try:
        services = LocalServices(f"http://127.0.0.1:{aws_port}", target.api_base, "", FakeStripe())
        # moto keeps its resources per process: start from none, whatever an earlier server created.
        reset = urllib.request.Request(f"{services.aws_endpoint}/moto-api/reset", data=b"", method="POST")
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(reset, timeout=10).close()
        create_table_from_template(services.aws_client("dynamodb"), LOCAL_TABLE)
        services.queues = create_queues_from_template(services.aws_client("sqs"))
        services.aws_client("events").create_event_bus(Name=LOCAL_EVENT_BUS)
        secret = {"STRIPE_SECRET_KEY": target.secret_key, "STRIPE_WEBHOOK_SECRET": target.webhook_secret}
        secret_resource = resource("StripeSecret")["Properties"]
        services.secret_arn = services.aws_client("secretsmanager").create_secret(
            Name=LOCAL_SECRET_NAME, Description=secret_resource["Description"], SecretString=json.dumps(secret)
        )["ARN"]
        services.env = {
            "AWS_ENDPOINT_URL": services.aws_endpoint,
            "AWS_REGION": LOCAL_REGION,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "TABLE_NAME": LOCAL_TABLE,
            "STRIPE_SECRET_ARN": services.secret_arn,
            "EVENTS_QUEUE_URL": services.queues["StripeEventsQueue"].url,
            **({"STRIPE_API_BASE": target.api_base} if target.api_base else {}),
            **price_environment(target.prices),
        }
        yield services
    finally:
        moto.stop()


@contextmanager
def local_services(*, aws_port: int = 0, stripe_port: int = 0, stripe: FakeStripe | None = None) -> Iterator[LocalServices]:
    """Embedded AWS plus the Stripe fake served over HTTP (the API only)."""
    if stripe_port:
        check_port_free(stripe_port, "Stripe emulator")
    fake = add_local_prices(stripe or FakeStripe())
    stripe_server, stripe_base = serve_in_thread(fake, port=stripe_port)
    try:
        with embedded_aws(StripeTarget(stripe_base), aws_port=aws_port) as services:
            services.stripe = fake
            yield services
    finally:
        stripe_server.shutdown()
        stripe_server.server_close()

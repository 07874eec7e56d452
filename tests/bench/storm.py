"""The renewal storm: N organizations renew at once and Stripe, rate-limited, must not fall over.

Each organization's renewal events (invoice.created, invoice.finalized, invoice.paid,
invoice.payment_succeeded, customer.subscription.updated, emitted by the Stripe fake's
renew_subscription) are shuffled with a fixed seed, 10% of them delivered twice, and delivered 32
at a time (threads) to the real webhook handler with valid signatures. The Stripe fake answers
reads (GETs) beyond 25 a second with Stripe's 429 and counts them. Measured per design:

- the webhook's answers (p50/p99 over every delivery attempt, how many were not 2xx);
- the time from the first delivery until every organization's stored subscription equals Stripe's,
  against the floor: the reads needed (one per organization) divided by the rate limit;
- Stripe reads per renewed subscription, 429s, messages retried, messages in the dead-letter queue,
  organizations wrong at the end.

Designs: "queue" (the webhook enqueues to SQS; the consumer runs as Lambda's event source mapping
would run it: see `QueueRunner`) and "synchronous" (tests.bench.storm_sync: the sync inline in the
webhook, answering 5xx on a Stripe error; Stripe delivers a failed event again, on a compressed
schedule, see `RETRY_DELAYS`).

Setup (not timed): the organizations are subscribed in the fake directly (customer, Checkout
Session, payment) and linked in the table with batch writes, not through the checkout handler,
which would take minutes for 2,000. Both designs run on the same organizations: each design's storm
is a fresh renewal of every subscription, with the event markers of the one before purged.

Runs in the benchmark's process, against its moto server and the Stripe fake over HTTP, with the
handlers in process (32 threads stand for 32 concurrent Lambda invocations).
"""

from __future__ import annotations

import copy
import hashlib
import heapq
import io
import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from typing import Any

from functions.local_stack.template_model import FunctionSpec
from tests.bench import report
from tests.bench.scenario import SetupContext
from tests.stripe_fake import FakeStripe, make_stripe_client
from tests.support.local_services import LOCAL_TABLE, LOCAL_WEBHOOK_SECRET, LocalServices, local_prices
from tests.support.template import load_template, resource
from tests.support.webhook_events import delivery_body, signed_delivery

STORM_EVENT_TYPES = (
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_succeeded",
    "customer.subscription.updated",
)
ORG_PREFIX = "org_storm_"
CONCURRENCY = 32
DUPLICATE_FRACTION = 0.10
READS_PER_SECOND = 25.0
# The consumer is given the whole limit as its budget: nothing else reads Stripe during the storm
# (a deployment beside live endpoints keeps the default, which leaves them room).
STACK_PARAMETERS = {"StripeReadsPerSecond": str(int(READS_PER_SECOND))}
SEED = 14
# Stripe delivers a failed event again with an exponential backoff over three days; compressed here
# to seconds (attempt n waits RETRY_DELAYS[n - 1], jittered +-25%), so the comparison ends.
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0, 16.0, 16.0, 16.0, 16.0, 16.0)
# The queue design gives up waiting after this long (a stuck message, a consumer that never
# finishes); the synchronous one when Stripe's retries are spent.
DRAIN_TIMEOUT_S = 900.0
CONSUMER_HANDLER = "event_sync_handler"

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class StormOrg:
    org_id: str
    customer_id: str
    subscription_id: str


# --- setup ------------------------------------------------------------------------------------------


def seed_orgs(services: LocalServices, count: int) -> list[StormOrg]:
    """`count` organizations, each a customer with a paid subscription in the fake (made through the
    SDK in process, unlimited) and both directions of the customer link in the table."""
    from tenant_billing.catalog import get_catalog

    fake = services.stripe
    client = make_stripe_client(fake, max_network_retries=0)
    catalog = get_catalog()
    prices = local_prices(catalog)
    plans = [plan_id for plan_id, plan in catalog.plans.items() if plan.current.site_limit]
    orgs: list[StormOrg] = []
    with _clock_paused(fake):
        for index in range(count):
            orgs.append(_subscribe(fake, client, index, plans, prices))
    _link(services, orgs)
    return orgs


@contextmanager
def _clock_paused(fake: FakeStripe) -> Iterator[None]:
    """Setup only: the fake's clock work on every request (expiring due sessions and pending updates,
    a scan of every session and subscription) would make subscribing N organizations take N^2 time;
    nothing falls due during the setup."""
    fake._run_clock = lambda: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        del fake._run_clock


def _subscribe(fake: FakeStripe, client: Any, index: int, plans: list[str], prices: dict[str, Any]) -> StormOrg:
    """One organization's customer and paid Checkout Session (plans alternate, 0-3 sites)."""
    from tenant_billing.catalog import get_catalog

    catalog = get_catalog()
    org_id = f"{ORG_PREFIX}{index}"
    monthly = catalog.plans[plans[index % len(plans)]].current.prices["month"]
    sites = index % 4
    line_items: list[dict[str, Any]] = [{"price": prices[monthly.base.name].price_id, "quantity": 1}]
    if sites and monthly.site:
        line_items.append({"price": prices[monthly.site.name].price_id, "quantity": sites})
    metadata = {"organization_id": org_id}
    params: Any = {"metadata": metadata}
    customer = client.v1.customers.create(params=params)
    session_params: Any = {
        "mode": "subscription",
        "customer": customer.id,
        "client_reference_id": org_id,
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
        "line_items": line_items,
        "success_url": "http://localhost:3000/billing?checkout=success",
        "cancel_url": "http://localhost:3000/billing?checkout=cancel",
    }
    session = client.v1.checkout.sessions.create(params=session_params)
    fake.complete_checkout(session.id)
    return StormOrg(org_id, customer.id, str(fake.checkout_sessions[session.id]["subscription"]))


def _link(services: LocalServices, orgs: list[StormOrg]) -> None:
    """Both directions of each organization's customer link, as checkout writes them."""
    aws = services.aws_client("dynamodb")
    requests = []
    for org in orgs:
        requests.append(
            {
                "pk": {"S": f"ORG#{org.org_id}"},
                "sk": {"S": "CUSTOMER"},
                "customer_id": {"S": org.customer_id},
                "idempotency_key": {"S": f"storm-{org.org_id}"},
                "claimed_at": {"N": str(int(time.time()))},
            }
        )
        requests.append({"pk": {"S": f"CUSTOMER#{org.customer_id}"}, "sk": {"S": "ORG"}, "org_id": {"S": org.org_id}})
    for start in range(0, len(requests), 25):
        pending: dict[str, Any] = {LOCAL_TABLE: [{"PutRequest": {"Item": item}} for item in requests[start : start + 25]]}
        while pending:
            pending = aws.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def renewal_events(fake: FakeStripe, orgs: list[StormOrg]) -> list[dict[str, Any]]:
    """Every organization renews: its events of STORM_EVENT_TYPES, in Stripe's order."""
    events: list[dict[str, Any]] = []
    for org in orgs:
        emitted = [event for event in fake.renew_subscription(org.subscription_id) if event["type"] in STORM_EVENT_TYPES]
        missing = set(STORM_EVENT_TYPES) - {event["type"] for event in emitted}
        if missing:
            raise RuntimeError(f"renewal of {org.subscription_id} emitted no {', '.join(sorted(missing))}")
        events += emitted
    return events


def storm_order(events: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """The events shuffled, DUPLICATE_FRACTION of them delivered a second time, anywhere."""
    deliveries = list(events) + rng.sample(events, round(DUPLICATE_FRACTION * len(events)))
    rng.shuffle(deliveries)
    return deliveries


def stored_mismatches(services: LocalServices, orgs: list[StormOrg]) -> list[str]:
    """Organizations whose stored subscription (id, status, period end, cancellation) or entitlement
    status differs from the subscription in the fake."""
    aws = services.aws_client("dynamodb")
    # One consistent scan (moto answers a Query by scanning the table: 2,000 of them would take minutes).
    stored_items: dict[str, dict[str, Any]] = {}
    request: dict[str, Any] = {
        "TableName": LOCAL_TABLE,
        "ConsistentRead": True,
        "FilterExpression": "begins_with(pk, :org)",
        "ExpressionAttributeValues": {":org": {"S": f"ORG#{ORG_PREFIX}"}},
    }
    while True:
        page = aws.scan(**request)
        for item in page.get("Items", []):
            stored_items.setdefault(item["pk"]["S"], {})[item["sk"]["S"]] = item
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    wrong: list[str] = []
    for org in orgs:
        by_sk = stored_items.get(f"ORG#{org.org_id}", {})
        stripe_sub = services.stripe.subscriptions[org.subscription_id]
        expected = {
            "subscription_id": org.subscription_id,
            "status": stripe_sub["status"],
            "current_period_end": str(stripe_sub["items"]["data"][0]["current_period_end"]),
        }
        stored = by_sk.get("SUBSCRIPTION", {})
        found = {
            "subscription_id": stored.get("subscription_id", {}).get("S"),
            "status": stored.get("status", {}).get("S"),
            "current_period_end": stored.get("current_period_end", {}).get("N"),
        }
        entitlement_status = by_sk.get("ENTITLEMENT", {}).get("status", {}).get("S")
        if found != expected or entitlement_status != stripe_sub["status"]:
            wrong.append(org.org_id)
    return wrong


# --- moto: a transaction's rollback without copying the whole table ---------------------------------


class _KeepTables:
    """Stands in for moto's `copy` module during a transaction: the table is not deep-copied."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type
        self.copy = copy.copy

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, self._table_type) else copy.deepcopy(value, memo)


@contextmanager
def item_level_transaction_backups() -> Iterator[None]:
    """moto backs up a TransactWriteItems by deep-copying every table it touches, so with 2,000
    organizations (about 14,000 items) each transaction costs about a second. While this is active,
    it backs up only the items the transaction writes, and restores them if it fails: the same
    all-or-nothing result. Safe only with every DynamoDB call serialized (harness's
    serialize_moto), which the storm requires."""
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    backend_type = models.DynamoDBBackend
    original = backend_type.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Any, Any, Any, Any]] = []
        for entry in transact_items:
            op = next(iter(entry.values()))
            table = self.get_table(op["TableName"])
            key = op.get("Key") or {name: op["Item"][name] for name in (table.hash_key_attr, table.range_key_attr) if name}
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        real_copy = vars(models)["copy"]
        setattr(models, "copy", _KeepTables(Table))  # noqa: B010 - the module's own `copy` global
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(saved):
                if item is None:
                    if table.get_item(hash_key, range_key) is not None:
                        table.delete_item(hash_key, range_key)
                elif range_key is not None:
                    table.items[hash_key][range_key] = item
                else:
                    table.items[hash_key] = item
            raise
        finally:
            setattr(models, "copy", real_copy)  # noqa: B010

    backend_type.transact_write_items = transact_write_items  # type: ignore[method-assign]
    try:
        yield
    finally:
        backend_type.transact_write_items = original  # type: ignore[method-assign]


_APPROXIMATE_COUNTS = frozenset(
    {"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible"}
)


@contextmanager
def sqs_without_needless_counts() -> Iterator[None]:
    """moto computes every attribute of a queue where it needs one: on each SendMessage (to read
    ContentBasedDeduplication) and, for each candidate message, on each ReceiveMessage (to read
    MessageRetentionPeriod). The approximate counts among them walk every message, so a send costs
    the queue's depth and a receive its square: seconds at a storm's depth. While this is active,
    those two calls compute the attributes without the counts (per thread: moto's server answers
    each request in its own): the same answers, and GetQueueAttributes still counts."""
    from moto.sqs import models

    skipping = threading.local()

    class BaseAttributes(list[str]):
        def __iter__(self) -> Iterator[str]:
            names = super().__iter__()
            if getattr(skipping, "on", False):
                return (name for name in names if name not in _APPROXIMATE_COUNTS)
            return names

    def without_counts(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            skipping.on = True
            try:
                return method(self, *args, **kwargs)
            finally:
                skipping.on = False

        return call

    queue_type, backend_type = models.Queue, models.SQSBackend
    originals = (queue_type.BASE_ATTRIBUTES, backend_type.send_message, backend_type.receive_message)
    queue_type.BASE_ATTRIBUTES = BaseAttributes(originals[0])
    backend_type.send_message = without_counts(originals[1])  # type: ignore[method-assign]
    backend_type.receive_message = without_counts(originals[2])  # type: ignore[method-assign]
    try:
        yield
    finally:
        queue_type.BASE_ATTRIBUTES = originals[0]
        backend_type.send_message, backend_type.receive_message = originals[1], originals[2]  # type: ignore[method-assign]


# --- deliveries ------------------------------------------------------------------------------------


@dataclass
class Deliveries:
    """Every attempt's answer; Stripe's own retries of the failed ones (when `retry`)."""

    ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    retried: int = 0
    gave_up: int = 0
    finished_at: float = 0.0


def deliver_all(
    deliveries: list[dict[str, Any]], webhook: Handler, *, concurrency: int, retry: bool, rng: random.Random
) -> Deliveries:
    """Deliver with `concurrency` threads, each taking the next due delivery; a non-2xx answer is
    delivered again after RETRY_DELAYS (when `retry`)."""
    result = Deliveries()
    lock = threading.Condition()
    # (due time, sequence, attempt, event)
    due: list[tuple[float, int, int, dict[str, Any]]] = [(0.0, n, 0, event) for n, event in enumerate(deliveries)]
    heapq.heapify(due)
    in_flight = 0
    sequence = len(deliveries)
    context = SetupContext()

    def worker() -> None:
        nonlocal in_flight, sequence
        while True:
            with lock:
                while True:
                    if not due and in_flight == 0:
                        lock.notify_all()
                        return
                    now = time.monotonic()
                    if due and due[0][0] <= now:
                        _, _, attempt, event = heapq.heappop(due)
                        in_flight += 1
                        break
                    lock.wait(timeout=(due[0][0] - now) if due else 0.5)
            request = signed_delivery(event, [LOCAL_WEBHOOK_SECRET])
            started = time.perf_counter()
            try:
                status = int(webhook(request, context)["statusCode"])
            except Exception:
                status = 599  # the invocation itself failed
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                in_flight -= 1
                result.ms.append(elapsed)
                result.statuses[status] += 1
                if not 200 <= status < 300:
                    if retry and attempt < len(RETRY_DELAYS):
                        delay = RETRY_DELAYS[attempt] * rng.uniform(0.75, 1.25)
                        heapq.heappush(due, (time.monotonic() + delay, sequence, attempt + 1, event))
                        sequence += 1
                        result.retried += 1
                    else:
                        result.gave_up += 1
                result.finished_at = time.monotonic()
                lock.notify_all()

    threads = [threading.Thread(target=worker, name=f"storm-delivery-{n}", daemon=True) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return result


# --- the queue, run as Lambda's event source mapping runs it ----------------------------------------

BENCH_QUEUE_ARN = "arn:aws:sqs:us-east-1:000000000000:bench-events"


def sqs_body(stripe_event: dict[str, Any]) -> str:
    """A message's body as the webhook queues it: the event exactly as Stripe delivered it."""
    return delivery_body(stripe_event).decode()


def sqs_event(stripe_events: list[dict[str, Any]], queue_arn: str = BENCH_QUEUE_ARN) -> dict[str, Any]:
    """Lambda's SQS event for messages the webhook queued, each received for the first time."""
    now_ms = str(int(time.time() * 1000))
    records = []
    for n, stripe_event in enumerate(stripe_events):
        body = sqs_body(stripe_event)
        records.append(
            {
                "messageId": f"00000000-0000-4000-8000-{n:012d}",
                "receiptHandle": f"bench-receipt-{stripe_event['id']}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": now_ms,
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": now_ms,
                },
                "messageAttributes": {
                    name: {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"}
                    for name, value in (("event_id", stripe_event["id"]), ("event_type", stripe_event["type"]))
                },
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": queue_arn.split(":")[3],
            }
        )
    return {"Records": records}


@dataclass(frozen=True)
class QueueSpec:
    """The consumer's queue, its dead-letter queue and the event source mapping, from template.yaml."""

    queue_id: str
    dlq_id: str | None
    queue_properties: dict[str, Any]
    dlq_properties: dict[str, Any]
    max_receive_count: int | None
    batch_size: int
    maximum_concurrency: int
    batching_window_s: float
    report_failures: bool
    function_id: str
    environment: dict[str, Any]


def _ref_id(value: Any) -> str | None:
    """The logical id of !GetAtt X.Arn / !Ref X."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else str(target).split(".")[0])
        if "Ref" in value:
            return str(value["Ref"])
    return None


def consumer_spec() -> QueueSpec:
    """The function whose handler is event_sync_handler and its SQS event."""
    resources = load_template()["Resources"]
    for logical_id, res in resources.items():
        properties = res.get("Properties", {})
        if res.get("Type") != "AWS::Serverless::Function" or not str(properties.get("Handler", "")).startswith(
            CONSUMER_HANDLER + "."
        ):
            continue
        for event in (properties.get("Events") or {}).values():
            if event.get("Type") != "SQS":
                continue
            sqs = event["Properties"]
            queue_id = _ref_id(sqs["Queue"])
            if queue_id is None:
                raise RuntimeError(f"{logical_id}: the SQS event's queue is not a resource of the template")
            queue_properties = dict(resource(queue_id).get("Properties", {}))
            redrive = queue_properties.get("RedrivePolicy") or {}
            dlq_id = _ref_id(redrive.get("deadLetterTargetArn"))
            environment = {
                **(load_template().get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})),
                **(properties.get("Environment", {}).get("Variables", {})),
            }
            return QueueSpec(
                queue_id=queue_id,
                dlq_id=dlq_id,
                queue_properties=queue_properties,
                dlq_properties=dict(resource(dlq_id).get("Properties", {})) if dlq_id else {},
                max_receive_count=int(redrive["maxReceiveCount"]) if "maxReceiveCount" in redrive else None,
                batch_size=int(sqs.get("BatchSize", 10)),
                maximum_concurrency=int((sqs.get("ScalingConfig") or {}).get("MaximumConcurrency", 1000)),
                batching_window_s=float(sqs.get("MaximumBatchingWindowInSeconds", 0)),
                report_failures="ReportBatchItemFailures" in (sqs.get("FunctionResponseTypes") or []),
                function_id=logical_id,
                environment=environment,
            )
    raise RuntimeError(f"template.yaml has no {CONSUMER_HANDLER} function with an SQS event")


@dataclass(frozen=True)
class StormQueues:
    url: str
    arn: str
    dlq_url: str | None
    spec: QueueSpec


def consumer_environment(functions: Iterable[FunctionSpec]) -> dict[str, str]:
    """The consumer's own variables (the queue's URL, its read budget, ...), resolved by the local
    stack's template model, for the handlers run in this process: the endpoints, credentials and
    log settings stay the benchmark's."""
    for function in functions:
        if function.handler_module == CONSUMER_HANDLER:
            return {
                name: value
                for name, value in function.environment.items()
                if not name.startswith(("AWS_", "POWERTOOLS_")) and name not in ("STRIPE_API_BASE", "LOG_LEVEL")
            }
    return {}


@dataclass
class QueueStats:
    invocations: int = 0
    received: int = 0
    redelivered: int = 0
    retried_ids: set[str] = field(default_factory=set)
    deleted: int = 0
    failed_items: int = 0
    invocation_errors: int = 0
    batch_sizes: list[int] = field(default_factory=list)


class QueueRunner:
    """Lambda's SQS event source mapping, in threads: up to MaximumConcurrency pollers, each
    gathering up to BatchSize messages (10 per ReceiveMessage, as SQS allows) within the batching
    window, invoking the consumer with Lambda's SQS event, deleting what succeeded (all of the batch
    unless its batchItemFailures name some; none when the invocation raised). A message not deleted
    comes back when its visibility timeout ends (or as the consumer set it); SQS's redrive moves it
    to the dead-letter queue after maxReceiveCount receives (moto implements both)."""

    def __init__(self, services: LocalServices, queues: StormQueues, consumer: Handler) -> None:
        self.sqs = services.aws_client("sqs")
        self.queues = queues
        self.consumer = consumer
        self.stats = QueueStats()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._busy = 0

    def start(self) -> None:
        concurrency = self.queues.spec.maximum_concurrency
        for n in range(concurrency):
            thread = threading.Thread(target=self._poll, name=f"storm-consumer-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def idle(self) -> bool:
        """No invocation running and no message visible, in flight or delayed."""
        with self._lock:
            if self._busy:
                return False
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queues.url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return all(int(value) == 0 for value in attributes.values())

    def dead_letters(self) -> int:
        if not self.queues.dlq_url:
            return 0
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queues.dlq_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def _receive_batch(self) -> list[dict[str, Any]]:
        """Up to BatchSize messages: the window opens with the first message and the batch goes
        when full or when the window closes (at once without a window)."""
        spec = self.queues.spec
        messages: list[dict[str, Any]] = []
        deadline: float | None = None
        while len(messages) < spec.batch_size and not self._stop.is_set():
            got = self.sqs.receive_message(
                QueueUrl=self.queues.url,
                MaxNumberOfMessages=min(10, spec.batch_size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if got and deadline is None:
                deadline = time.monotonic() + spec.batching_window_s
            messages += got
            if deadline is None or time.monotonic() >= deadline:
                break
            if not got:
                time.sleep(0.05)
        return messages

    def _event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        region = self.queues.arn.split(":")[3]
        return {
            "Records": [
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": message.get("Attributes", {}),
                    "messageAttributes": {
                        name: {
                            "stringValue": value.get("StringValue"),
                            "binaryValue": value.get("BinaryValue"),
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": value["DataType"],
                        }
                        for name, value in (message.get("MessageAttributes") or {}).items()
                    },
                    "md5OfBody": message["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queues.arn,
                    "awsRegion": region,
                }
                for message in messages
            ]
        }

    def _poll(self) -> None:
        context = SetupContext()
        while not self._stop.is_set():
            with self._lock:
                self._busy += 1
            try:
                messages = self._receive_batch()
                if messages:
                    self._invoke(messages, context)
            finally:
                with self._lock:
                    self._busy -= 1
            if not messages:
                time.sleep(0.1)  # Lambda's pollers poll an empty queue too, without holding a batch

    def _invoke(self, messages: list[dict[str, Any]], context: Any) -> None:
        with self._lock:
            stats = self.stats
            stats.invocations += 1
            stats.received += len(messages)
            stats.batch_sizes.append(len(messages))
            for message in messages:
                if int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")) > 1:
                    stats.redelivered += 1
                    stats.retried_ids.add(message["MessageId"])
        try:
            answer = self.consumer(self._event(messages), context)
        except Exception:
            with self._lock:
                self.stats.invocation_errors += 1
            return  # the whole batch comes back after its visibility timeout
        failed = {item["itemIdentifier"] for item in (answer or {}).get("batchItemFailures", [])}
        done = [message for message in messages if message["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queues.url,
                Entries=[{"Id": str(n), "ReceiptHandle": message["ReceiptHandle"]} for n, message in enumerate(chunk)],
            )
        with self._lock:
            self.stats.deleted += len(done)
            self.stats.failed_items += len(failed)


# --- one storm ---------------------------------------------------------------------------------------


def _latency(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(report.percentile(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
    }


def run_one(
    design: str,
    services: LocalServices,
    orgs: list[StormOrg],
    webhook: Handler,
    *,
    runner: QueueRunner | None,
    seed: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    fake = services.stripe
    rng = random.Random(seed)
    fake.limit_rate(None)
    events = renewal_events(fake, orgs)
    deliveries = storm_order(events, rng)
    reads_needed = len(orgs)
    floor_s = reads_needed / READS_PER_SECOND
    progress(f"storm ({design}): {len(orgs)} organizations, {len(deliveries)} deliveries, floor {floor_s:.1f} s")
    if runner is not None:
        # Whatever earlier phases of the benchmark queued (the ingest's warm requests) is not the storm's.
        runner.sqs.purge_queue(QueueUrl=runner.queues.url)
    fake.reset_requests()
    limiter = fake.limit_rate(READS_PER_SECOND)
    assert limiter is not None
    started = time.monotonic()
    if runner is not None:
        runner.start()
    try:
        # Stripe delivers an event again after a non-2xx answer, whichever the design.
        answers = deliver_all(deliveries, webhook, concurrency=CONCURRENCY, retry=True, rng=rng)
        delivered_s = answers.finished_at - started
        converged_at = answers.finished_at
        if runner is not None:
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while not runner.idle():
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            converged_at = time.monotonic()
    finally:
        if runner is not None:
            runner.stop()
        fake.limit_rate(None)
    elapsed_s = converged_at - started
    requests = list(fake.requests)
    reads = sum(1 for request in requests if request.method == "GET" and request.fault != "rate_limited")
    writes = sum(1 for request in requests if request.method != "GET")
    wrong = stored_mismatches(services, orgs)
    non_2xx = sum(count for status, count in answers.statuses.items() if not 200 <= status < 300)
    result: dict[str, Any] = {
        "design": design,
        "organizations": len(orgs),
        "events": len(events),
        "deliveries": len(deliveries),
        "delivery_attempts": len(answers.ms),
        "webhook": {**_latency(answers.ms), "non_2xx": non_2xx, "statuses": dict(sorted(answers.statuses.items()))},
        "delivered_s": round(delivered_s, 2),
        "consistent_s": round(elapsed_s, 2) if not wrong else None,
        "elapsed_s": round(elapsed_s, 2),
        "reads_needed": reads_needed,
        "rate_limit_per_s": READS_PER_SECOND,
        "floor_s": round(floor_s, 2),
        "floor_ratio": round(elapsed_s / floor_s, 2) if not wrong else None,
        "stripe_reads": reads,
        "stripe_writes": writes,
        "reads_per_subscription": round(reads / len(orgs), 3),
        "rate_limited": limiter.limited,
        "wrong_orgs": len(wrong),
        "wrong_examples": wrong[:5],
    }
    result["stripe_redeliveries"] = answers.retried
    result["stripe_gave_up"] = answers.gave_up
    if runner is None:
        result["retried"] = answers.retried
        result["dead_letters"] = answers.gave_up
    else:
        stats = runner.stats
        result["retried"] = len(stats.retried_ids)
        result["redeliveries"] = stats.redelivered
        result["dead_letters"] = runner.dead_letters()
        result["consumer"] = {
            "invocations": stats.invocations,
            "messages_received": stats.received,
            "deleted": stats.deleted,
            "batch_item_failures": stats.failed_items,
            "invocation_errors": stats.invocation_errors,
            "mean_batch": round(statistics.mean(stats.batch_sizes), 2) if stats.batch_sizes else 0,
            "batch_size": runner.queues.spec.batch_size,
            "maximum_concurrency": runner.queues.spec.maximum_concurrency,
            "max_receive_count": runner.queues.spec.max_receive_count,
        }
    progress(
        f"storm ({design}): consistent after {elapsed_s:.1f} s ({elapsed_s / floor_s:.2f}x floor), "
        f"{reads} reads, {limiter.limited} 429s, {non_2xx} non-2xx, {len(wrong)} wrong"
    )
    return result


def purge_event_markers(aws: Any) -> None:
    """Delete every webhook event marker in the local table (a scan, then batch deletes)."""
    request: dict[str, Any] = {
        "TableName": LOCAL_TABLE,
        "FilterExpression": "begins_with(pk, :event)",
        "ExpressionAttributeValues": {":event": {"S": "EVENT#"}},
        "ProjectionExpression": "pk, sk",
    }
    keys: list[dict[str, Any]] = []
    while True:
        page = aws.scan(**request)
        keys += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    for start in range(0, len(keys), 25):
        pending: dict[str, Any] = {LOCAL_TABLE: [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]}
        while pending:
            pending = aws.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def prepare_queues(services: LocalServices) -> StormQueues:
    """The consumer's queue and dead-letter queue (the local services made them from the template)."""
    spec = consumer_spec()
    queue = services.queues[spec.queue_id]
    return StormQueues(queue.url, queue.arn, services.queues[spec.dlq_id].url if spec.dlq_id else None, spec)


def run_storms(services: LocalServices, orgs_count: int, queues: StormQueues, progress: Callable[[str], None]) -> dict[str, Any]:
    """Both designs' storms on the same organizations, the queue's first."""
    import tests.bench.storm_sync as synchronous

    progress(f"storm: subscribing {orgs_count} organizations in the fake and linking them in the table")
    with redirect_stdout(io.StringIO()):
        orgs = seed_orgs(services, orgs_count)
    results: dict[str, Any] = {
        "organizations": orgs_count,
        "concurrency": CONCURRENCY,
        "duplicate_fraction": DUPLICATE_FRACTION,
        "rate_limit_per_s": READS_PER_SECOND,
        "rate_limited_requests": "GET (reads)",
        "designs": {},
    }
    sink = io.StringIO()
    with item_level_transaction_backups(), sqs_without_needless_counts(), redirect_stdout(sink), quiet_logs():
        import stripe_webhook_handler

        runner = QueueRunner(services, queues, _import_consumer())
        results["designs"]["queue"] = run_one(
            "queue", services, orgs, stripe_webhook_handler.lambda_handler, runner=runner, seed=SEED, progress=progress
        )
        purge_event_markers(services.aws_client("dynamodb"))
        results["designs"]["synchronous"] = run_one(
            "synchronous", services, orgs, synchronous.lambda_handler, runner=None, seed=SEED + 1, progress=progress
        )
        purge_event_markers(services.aws_client("dynamodb"))
    return results


@contextmanager
def quiet_logs() -> Iterator[None]:
    """Only errors from the handlers' logger during a storm (a 429 storm logs a warning per read)."""
    from tenant_billing.observability import logger

    level = logger.log_level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


def _import_consumer() -> Handler:
    import importlib

    module = importlib.import_module(CONSUMER_HANDLER)
    handler: Handler = module.lambda_handler
    return handler

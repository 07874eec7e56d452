"""Webhook latency against local services (moto server + the Stripe fake over HTTP), calling the
real handler as Lambda would. Prints latency percentiles and the calls made per event.

    make bench   (or: PYTHONPATH=... .venv/bin/python -m tests.bench.bench_webhook [--orgs 60] [--json out.json])

Latency is reported against the target (p99 < 1 s), never asserted in a unit test; the call
counts are deterministic, and a run that exceeds them exits non-zero.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import time
from collections import Counter
from contextlib import redirect_stdout
from typing import Any

from tests.support.local_services import LOCAL_WEBHOOK_SECRET, local_services


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(name: str, millis: list[float]) -> dict[str, Any]:
    return {
        "case": name,
        "n": len(millis),
        "p50_ms": round(statistics.median(millis), 2),
        "p95_ms": round(percentile(millis, 0.95), 2),
        "p99_ms": round(percentile(millis, 0.99), 2),
        "max_ms": round(max(millis), 2),
    }


def run(orgs: int) -> dict[str, Any]:
    with local_services() as services:
        os.environ.update(services.env)
        os.environ.update({"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_TRACE_DISABLED": "true"})
        os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "SaaSBillingBench")
        # Imported only now: Powertools and the settings read the environment on first use.
        import checkout_handler
        import stripe_webhook_handler
        from tenant_billing.aws_clients import dynamodb_client
        from tenant_billing.webhook_logic import HANDLED_EVENTS
        from tests.conftest import FakeLambdaContext
        from tests.support.api_events import api_event
        from tests.support.webhook_events import signed_delivery

        fake, context, sink = services.stripe, FakeLambdaContext(), io.StringIO()
        events: list[dict[str, Any]] = []
        with redirect_stdout(sink):
            for n in range(orgs):
                org_id = f"org_bench_{n}"
                body = {"plan": "pro" if n % 2 else "enterprise", "siteQuantity": n % 5}
                response = checkout_handler.lambda_handler(
                    api_event("POST", "/billing/checkout", org_id=org_id, body=body), context
                )
                assert response["statusCode"] == 200, response["body"]
                session_id = next(s for s, session in fake.checkout_sessions.items() if session["client_reference_id"] == org_id)
                events += fake.complete_checkout(session_id)
                subscription_id = fake.checkout_sessions[session_id]["subscription"]
                events += fake.fail_payment(subscription_id) + fake.pay_latest_invoice(subscription_id)

        handled = [event for event in events if event["type"] in HANDLED_EVENTS]
        random.Random(7).shuffle(handled)
        dynamo_calls: Counter[str] = Counter()
        dynamodb_client().meta.events.register("before-call.dynamodb", lambda model, **_: dynamo_calls.update([model.name]))

        def deliver(stripe_event: dict[str, Any]) -> float:
            delivery = signed_delivery(stripe_event, [LOCAL_WEBHOOK_SECRET])
            started = time.perf_counter()
            with redirect_stdout(sink):
                response = stripe_webhook_handler.lambda_handler(delivery, context)
            elapsed = (time.perf_counter() - started) * 1000
            assert response["statusCode"] == 200, response["body"]
            return elapsed

        first_ms = deliver(handled[0])
        fake.reset_requests()
        dynamo_calls.clear()
        firsts = [deliver(stripe_event) for stripe_event in handled[1:]]
        first_stripe, first_dynamo = len(fake.requests), sum(dynamo_calls.values())
        fake.reset_requests()
        dynamo_calls.clear()
        duplicates = [deliver(stripe_event) for stripe_event in handled[1 : 1 + len(handled) // 4]]
        duplicate_stripe, duplicate_dynamo = len(fake.requests), sum(dynamo_calls.values())

    return {
        "first_delivery_in_process_ms": round(first_ms, 2),
        "cases": [summary("new event", firsts), summary("duplicate", duplicates)],
        "per_event": {
            "new": {"stripe": first_stripe / len(firsts), "dynamodb": first_dynamo / len(firsts)},
            "duplicate": {"stripe": duplicate_stripe / len(duplicates), "dynamodb": duplicate_dynamo / len(duplicates)},
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orgs", type=int, default=60, help="subscriptions to create (each gives ~8 handled events)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    results = run(args.orgs)
    print("Stripe webhook, real handler, moto server + Stripe fake over HTTP on 127.0.0.1")
    print(f"{'case':<12}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for case in results["cases"]:
        print(f"{case['case']:<12}{case['n']:>6}{case['p50_ms']:>10}{case['p95_ms']:>10}{case['p99_ms']:>10}{case['max_ms']:>10}")
    per_event = results["per_event"]
    for kind in ("new", "duplicate"):
        calls = per_event[kind]
        print(f"calls per {kind} event: Stripe {calls['stripe']:.2f}, DynamoDB {calls['dynamodb']:.2f}")
    worst_p99 = max(case["p99_ms"] for case in results["cases"])
    print(f"target p99 < 1000 ms: {'met' if worst_p99 < 1000 else 'MISSED'} ({worst_p99} ms)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(results, file, indent=2)
    calls_ok = (
        per_event["new"]["stripe"] <= 1
        and per_event["new"]["dynamodb"] <= 2
        and per_event["duplicate"]["stripe"] == 0
        and per_event["duplicate"]["dynamodb"] <= 1
    )
    print(f"target calls (new: 1 Stripe, <= 2 DynamoDB; duplicate: 0 Stripe, 1 DynamoDB): {'met' if calls_ok else 'MISSED'}")
    return 0 if calls_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Operator commands, against `make dev` (the default) or a deployed stack (`--stack NAME`).

    python -m functions.admin show org_acme          the organization's stored billing beside Stripe's
    python -m functions.admin resync org_acme        read its subscriptions from Stripe now and store them
    python -m functions.admin replay evt_1Q...       fetch one event from Stripe's Events API, process it once
    python -m functions.admin problems               organizations with a duplicate or unknown-price subscription
    python -m functions.admin reconcile              run the reconciliation now
    python -m functions.admin bootstrap-catalog      create or update the catalog's Stripe products and prices

Against a deployed stack every command but bootstrap-catalog invokes the stack's own functions
(BillingAdminFunction, BillingReconcileFunction) with your AWS credentials (lambda:InvokeFunction
on them, cloudformation:DescribeStackResource on the stack): the Stripe key stays in the account.
Against `make dev` it calls the local stack's stand-in for that invoke. The answer is printed as
JSON; a refused command prints its error code and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

ADMIN_FUNCTION = "BillingAdminFunction"
RECONCILE_FUNCTION = "BillingReconcileFunction"
# The reconciliation may run for its whole timeout (900 s); the answer comes at its end.
INVOKE_READ_TIMEOUT_SECONDS = 910
LOCAL_GATEWAY = f"http://127.0.0.1:{os.environ.get('DEV_PORT', '3000')}"


class InvokeError(Exception):
    pass


def invoke_local(gateway: str, logical_id: str, payload: dict[str, Any]) -> Any:
    if not gateway.startswith(("http://", "https://")):
        raise InvokeError(f"--local takes the gateway's http:// URL, not {gateway!r}")
    url = f"{gateway}/_local/invoke/{logical_id}"
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST")  # noqa: S310 - http(s) only, checked above
    request.add_header("content-type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=INVOKE_READ_TIMEOUT_SECONDS) as response:
            reply = json.loads(response.read())
    except urllib.error.URLError as exc:
        raise InvokeError(f"no local stack at {gateway} ({exc.reason}); start it with `make dev`") from None
    if "error" in reply:
        raise InvokeError(f"{logical_id} failed: {reply['error']}")
    return reply["response"]


def invoke_deployed(stack: str, logical_id: str, payload: dict[str, Any], region: str | None) -> Any:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.Session(region_name=region)
    try:
        function = session.client("cloudformation").describe_stack_resource(StackName=stack, LogicalResourceId=logical_id)[
            "StackResourceDetail"
        ]["PhysicalResourceId"]
        # One attempt: a command is not retried behind the operator's back (resync, replay write).
        config = Config(read_timeout=INVOKE_READ_TIMEOUT_SECONDS, retries={"total_max_attempts": 1})
        answer = session.client("lambda", config=config).invoke(FunctionName=function, Payload=json.dumps(payload).encode())
    except (BotoCoreError, ClientError) as exc:
        raise InvokeError(f"could not invoke {logical_id} of {stack}: {exc}") from None
    body = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError"):
        raise InvokeError(f"{logical_id} failed: {body.get('errorType') if isinstance(body, dict) else body}")
    return body


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m functions.admin", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--stack", help="a deployed stack's name (default: the local stack of `make dev`)")
    target.add_argument("--local", default=LOCAL_GATEWAY, help=f"the local stack's gateway (default {LOCAL_GATEWAY}, DEV_PORT)")
    parser.add_argument("--region", help="the deployed stack's region (default: your AWS configuration's)")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, what in (("show", "stored billing beside Stripe's"), ("resync", "read Stripe now and store it")):
        commands.add_parser(name, help=f"one organization: {what}").add_argument("org_id")
    commands.add_parser("replay", help="one Stripe event, fetched from the Events API, processed once").add_argument("event_id")
    commands.add_parser("problems", help="organizations with a duplicate or unknown-price subscription")
    commands.add_parser("reconcile", help="run the reconciliation now")
    commands.add_parser(
        "bootstrap-catalog", help="the catalog's Stripe products and prices (its own options: --help)", add_help=False
    )
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> int:
    args, rest = parse_args(argv)
    if args.command == "bootstrap-catalog":
        from functions.admin.catalog_bootstrap import main as bootstrap

        return bootstrap(rest)
    if rest:
        print(f"unrecognized arguments: {' '.join(rest)}", file=sys.stderr)
        return 2
    if args.command == "reconcile":
        logical_id, payload = RECONCILE_FUNCTION, {}
    else:
        logical_id = ADMIN_FUNCTION
        payload = {"command": args.command}
        if args.command in ("show", "resync"):
            payload["orgId"] = args.org_id
        elif args.command == "replay":
            payload["eventId"] = args.event_id
    try:
        if args.stack:
            answer = invoke_deployed(args.stack, logical_id, payload, args.region)
        else:
            answer = invoke_local(args.local, logical_id, payload)
    except InvokeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if isinstance(answer, dict) and "error" in answer:
        error = answer["error"]
        field = f" ({error['field']})" if error.get("field") else ""
        print(f"error: {error['code']}{field}: {error['message']}", file=sys.stderr)
        return 1
    print(json.dumps(answer.get("result", answer) if isinstance(answer, dict) else answer, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

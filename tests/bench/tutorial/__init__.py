"""What a team would write by hand, following the AWS and Stripe tutorials, for each benchmarked
function: the benchmark's "tutorial" handlers (tests.bench.harness times their cold starts against
the product's). One self-contained module per function, each laid out by the benchmark as its own
function folder (`<name>/app.py`, handler `app.lambda_handler`, as `sam init` writes it):

- module level: `import boto3` (and `import stripe`), `boto3.resource("dynamodb").Table(...)`, the
  Stripe key read from Secrets Manager with `boto3.client("secretsmanager").get_secret_value(...)`;
- Stripe's legacy global API (`stripe.api_key`, `stripe.checkout.Session.create(...)`, ...);
- the caller from the HTTP API's JWT authorizer claims, `json.dumps` answers.

They make the same calls as the product's functions for the benchmark's requests (the same table
layout, see tenant_billing/items.py), and nothing more: no validation framework, no structured
logging or metrics, no OpenAPI. They import nothing of ours: the table keys and the plans are
written inline. With tracing on they run instrumented as the X-Ray SDK's guide shows (traced.py:
the same libraries patched as the product traces), so both sides send the same kind of trace.
"""

"""A tutorial handler with tracing on, instrumented as the AWS X-Ray SDK's guide shows for Lambda:
the SDK patches the libraries the handler calls through before the handler imports them. The
benchmark lays this module out as traced_app.py beside each tutorial's app.py (handler
traced_app.lambda_handler): the tutorials' tracing-on cold starts.

It patches what the product traces and no more: botocore, and requests (the Stripe SDK's HTTP
client) when the handler calls Stripe's API (it set its key; the webhook only verifies
signatures). patch_all() would import every library the SDK knows.
"""

import sys

from aws_xray_sdk.core import patch  # type: ignore[import-untyped]

patch(("botocore",))

# After the patch, so its clients are traced; app.py is the tutorial beside it in the benchmark's layout.
from app import lambda_handler  # type: ignore[import-not-found]  # noqa: E402

if getattr(sys.modules.get("stripe"), "api_key", None):
    patch(("requests",))

__all__ = ["lambda_handler"]

"""Powertools Logger, Tracer and Metrics shared by every function.

Service name, namespace and log level come from the POWERTOOLS_* variables the template sets in
Globals. Tracer imports the X-Ray SDK only when tracing is enabled, so tests and the local
runner (POWERTOOLS_TRACE_DISABLED=true) do not pay for it.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()

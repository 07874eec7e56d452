"""Tests. Imported by pytest before any conftest or test module."""

import os

# Powertools reads these when Logger, Metrics and Tracer are created (on first use, tenant_billing.observability):
# set them before anything is imported.
POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME": "billing",
    "POWERTOOLS_METRICS_NAMESPACE": "SaaSBillingTest",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
for _name, _value in POWERTOOLS_ENV.items():
    os.environ.setdefault(_name, _value)

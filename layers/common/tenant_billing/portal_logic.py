"""POST /billing/portal: a Stripe Customer Portal URL for the organization's customer."""

from __future__ import annotations

from collections.abc import Callable

from tenant_billing.api_models import UrlResponse
from tenant_billing.auth import Caller
from tenant_billing.catalog import Catalog
from tenant_billing.checkout_logic import require_configured
from tenant_billing.errors import ConflictError, StripeUnavailableError
from tenant_billing.observability import metrics
from tenant_billing.org_billing_store import OrgBillingStore
from tenant_billing.settings import Settings
from tenant_billing.stripe_port import StripePort


def create_portal(
    caller: Caller,
    repository: OrgBillingStore,
    settings: Settings,
    catalog: Catalog,
    stripe_factory: Callable[[], StripePort],
) -> UrlResponse:
    require_configured(settings, catalog)
    billing = repository.get_org_billing(caller.org_id)
    if billing.customer is None or not billing.customer.is_linked:
        raise ConflictError("the organization has no billing account yet; subscribe first", code="no_billing_account")
    url = stripe_factory().create_portal_session(
        billing.customer.customer_id, settings.portal_return_url, settings.PORTAL_CONFIGURATION_ID or None
    )
    if not url:
        raise StripeUnavailableError("the payment provider returned no portal URL")
    metrics.add_metric(name="PortalSessionCreated", unit="Count", value=1)
    return UrlResponse(url=url)

"""POST /billing/portal: a Stripe Customer Portal URL for the organization's customer."""

from __future__ import annotations

from collections.abc import Callable

import stripe
from stripe.params.billing_portal import SessionCreateParams

from tenant_billing.api_models import UrlResponse
from tenant_billing.auth import Caller, require_billing_admin
from tenant_billing.catalog import Catalog
from tenant_billing.checkout_logic import require_configured
from tenant_billing.errors import ConflictError, StripeUnavailableError
from tenant_billing.observability import metrics
from tenant_billing.org_billing_store import OrgBillingStore
from tenant_billing.settings import Settings
from tenant_billing.stripe_gateway import stripe_errors


def create_portal(
    caller: Caller,
    repository: OrgBillingStore,
    settings: Settings,
    catalog: Catalog,
    stripe_client: Callable[[], stripe.StripeClient],
) -> UrlResponse:
    require_billing_admin(caller)
    require_configured(settings, catalog)
    billing = repository.get_org_billing(caller.org_id)
    if billing.customer is None or not billing.customer.is_linked:
        raise ConflictError("the organization has no billing account yet; subscribe first", code="no_billing_account")
    params: SessionCreateParams = {"customer": billing.customer.customer_id, "return_url": settings.portal_return_url}
    if settings.PORTAL_CONFIGURATION_ID:
        params["configuration"] = settings.PORTAL_CONFIGURATION_ID
    client = stripe_client()
    with stripe_errors("billing_portal.sessions.create"):
        session = client.v1.billing_portal.sessions.create(params=params)
    if not session.url:
        raise StripeUnavailableError("the payment provider returned no portal URL")
    metrics.add_metric(name="PortalSessionCreated", unit="Count", value=1)
    return UrlResponse(url=session.url)

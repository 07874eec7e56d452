"""Stored item models of the single table, kept apart from the API's input/output models.

Layout (every item of one organization shares its partition, so one Query reads them all):

| pk                  | sk             | item                                            |
| ------------------- | -------------- | ----------------------------------------------- |
| ORG#<org id>        | CUSTOMER       | the organization's Stripe customer (or a claim) |
| ORG#<org id>        | SUBSCRIPTION   | the subscription as last read from Stripe       |
| ORG#<org id>        | ENTITLEMENT    | features and limits derived from it             |
| ORG#<org id>        | CHECKOUT       | the one Checkout Session that may still be paid |
| ORG#<org id>        | SYNC           | when the last on-demand sync read Stripe        |
| ORG#<org id>        | CHANGE_LOCK    | a plan change in flight (one at a time)         |
| ORG#<org id>        | TRIAL_ENDING#<sub id>#<trial end> | a trial's end notice (published once) |
| QUOTE#<preview id>  | QUOTE          | what a preview priced (expires by TTL)          |
| CUSTOMER#<cus id>   | ORG            | reverse link: Stripe customer -> organization   |
| EVENT#<evt id>      | EVENT          | a processed webhook event (expires by TTL)      |
"""

from __future__ import annotations

from dataclasses import field

from tenant_billing.records import frozen

ORG_PREFIX = "ORG#"
CUSTOMER_PREFIX = "CUSTOMER#"
EVENT_PREFIX = "EVENT#"
QUOTE_PREFIX = "QUOTE#"
SK_CUSTOMER = "CUSTOMER"
SK_SUBSCRIPTION = "SUBSCRIPTION"
SK_ENTITLEMENT = "ENTITLEMENT"
SK_CHECKOUT = "CHECKOUT"
SK_SYNC = "SYNC"
SK_CHANGE_LOCK = "CHANGE_LOCK"
SK_QUOTE = "QUOTE"
SK_ORG = "ORG"
SK_EVENT = "EVENT"
SK_TRIAL_ENDING_PREFIX = "TRIAL_ENDING#"
TTL_ATTRIBUTE = "expires_at"


def org_pk(org_id: str) -> str:
    return f"{ORG_PREFIX}{org_id}"


def customer_pk(customer_id: str) -> str:
    return f"{CUSTOMER_PREFIX}{customer_id}"


def event_pk(event_id: str) -> str:
    return f"{EVENT_PREFIX}{event_id}"


@frozen
class CustomerLink:
    """The organization's Stripe customer. `customer_id` is empty while a creation is claimed."""

    org_id: str
    customer_id: str
    # The Stripe idempotency key the claim holder uses; concurrent callers reuse it.
    idempotency_key: str
    claimed_at: int

    @property
    def is_linked(self) -> bool:
        return bool(self.customer_id)


@frozen
class SubscriptionRecord:
    org_id: str
    subscription_id: str
    customer_id: str
    status: str
    plan: str | None
    site_quantity: int
    current_period_end: int | None
    cancel_at_period_end: bool
    # Stripe's `created` of the subscription: decides between two subscriptions of one org.
    created: int
    # When the Stripe read that produced this record started (ns): older reads never overwrite.
    read_at_ns: int
    # False when a price of the subscription is not in the catalog.
    prices_known: bool = True
    # The customer's other subscriptions that have not ended: a duplicate an operator must resolve.
    other_live_ids: tuple[str, ...] = ()
    # A cancellation Stripe has scheduled (however it was set: cancel_at or cancel_at_period_end).
    cancel_at: int | None = None
    # A change Stripe applies only once its invoice is paid (`pending_update`); it grants nothing yet.
    pending_plan: str | None = None
    pending_site_quantity: int = 0
    pending_expires_at: int | None = None
    # The catalog version and billing interval of the subscription's prices (None: prices unknown).
    plan_version: int | None = None
    interval: str | None = None
    # When the trial ends (Stripe's trial_end), while the subscription is trialing.
    trial_end: int | None = None


@frozen
class EntitlementRecord:
    org_id: str
    plan: str
    status: str | None
    features: tuple[str, ...]
    limits: dict[str, int] = field(hash=False)
    updated_at: int = 0


@frozen
class CheckoutRecord:
    """The organization's most recent Checkout Session: the only one that may still be open."""

    org_id: str
    session_id: str


@frozen
class TrialEndingRecord:
    """Stripe's notice that a trial ends soon, stored once per trial (subscription and end); the table's stream
    publishes it as a `TrialEnding` event so the product can remind the customer."""

    org_id: str
    subscription_id: str
    trial_end: int
    days_left: int
    # Whether Stripe can charge the subscription when the trial ends (a card on file).
    has_payment_method: bool
    # The Stripe event that told us.
    event_id: str


@frozen
class OrgBilling:
    """Everything stored for one organization, read in a single Query."""

    customer: CustomerLink | None = None
    subscription: SubscriptionRecord | None = None
    entitlement: EntitlementRecord | None = None
    checkout: CheckoutRecord | None = None

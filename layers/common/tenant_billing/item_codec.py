"""The DynamoDB attribute form of the organization's stored items (see `items`), both ways."""

from __future__ import annotations

from tenant_billing.dynamo import AttributeMap, number, read_bool, read_int, read_str, read_str_list, string
from tenant_billing.items import (
    SK_ENTITLEMENT,
    SK_SUBSCRIPTION,
    SK_TRIAL_ENDING_PREFIX,
    TTL_ATTRIBUTE,
    CustomerLink,
    EntitlementRecord,
    SubscriptionRecord,
    TrialEndingRecord,
    org_pk,
)

# A trial's end notice is kept a month past the trial's end, then DynamoDB deletes it.
TRIAL_NOTICE_TTL_SECONDS = 30 * 86400


def customer_from_item(org_id: str, item: AttributeMap) -> CustomerLink:
    return CustomerLink(
        org_id=org_id,
        customer_id=read_str(item, "customer_id"),
        idempotency_key=read_str(item, "idempotency_key"),
        claimed_at=read_int(item, "claimed_at") or 0,
    )


def subscription_to_item(record: SubscriptionRecord) -> AttributeMap:
    item: AttributeMap = {
        "pk": string(org_pk(record.org_id)),
        "sk": string(SK_SUBSCRIPTION),
        "subscription_id": string(record.subscription_id),
        "customer_id": string(record.customer_id),
        "status": string(record.status),
        "site_quantity": number(record.site_quantity),
        "cancel_at_period_end": {"BOOL": record.cancel_at_period_end},
        "sub_created": number(record.created),
        "read_at_ns": number(record.read_at_ns),
        "prices_known": {"BOOL": record.prices_known},
        "other_live_ids": {"L": [string(other) for other in record.other_live_ids]},
        "pending_site_quantity": number(record.pending_site_quantity),
    }
    optional = {
        "plan": record.plan and string(record.plan),
        "pending_plan": record.pending_plan and string(record.pending_plan),
        "cancel_at": record.cancel_at is not None and number(record.cancel_at),
        "pending_expires_at": record.pending_expires_at is not None and number(record.pending_expires_at),
        "plan_version": record.plan_version is not None and number(record.plan_version),
        "billing_interval": record.interval and string(record.interval),
        "trial_end": record.trial_end is not None and number(record.trial_end),
    }
    item.update({name: value for name, value in optional.items() if value})
    if record.current_period_end is not None:
        item["current_period_end"] = number(record.current_period_end)
    return item


def subscription_from_item(org_id: str, item: AttributeMap) -> SubscriptionRecord:
    return SubscriptionRecord(
        org_id=org_id,
        subscription_id=read_str(item, "subscription_id"),
        customer_id=read_str(item, "customer_id"),
        status=read_str(item, "status"),
        plan=read_str(item, "plan") or None,
        site_quantity=read_int(item, "site_quantity") or 0,
        current_period_end=read_int(item, "current_period_end"),
        cancel_at_period_end=read_bool(item, "cancel_at_period_end"),
        created=read_int(item, "sub_created") or 0,
        read_at_ns=read_int(item, "read_at_ns") or 0,
        prices_known=read_bool(item, "prices_known"),
        other_live_ids=read_str_list(item, "other_live_ids"),
        cancel_at=read_int(item, "cancel_at"),
        pending_plan=read_str(item, "pending_plan") or None,
        pending_site_quantity=read_int(item, "pending_site_quantity") or 0,
        pending_expires_at=read_int(item, "pending_expires_at"),
        plan_version=read_int(item, "plan_version"),
        interval=read_str(item, "billing_interval") or None,
        trial_end=read_int(item, "trial_end"),
    )


def entitlement_to_item(record: EntitlementRecord) -> AttributeMap:
    item: AttributeMap = {
        "pk": string(org_pk(record.org_id)),
        "sk": string(SK_ENTITLEMENT),
        "plan": string(record.plan),
        "features": {"L": [string(feature) for feature in record.features]},
        "limits": {"M": {name: number(value) for name, value in record.limits.items()}},
        "updated_at": number(record.updated_at),
    }
    if record.status is not None:
        item["status"] = string(record.status)
    return item


def entitlement_from_item(org_id: str, item: AttributeMap) -> EntitlementRecord:
    return EntitlementRecord(
        org_id=org_id,
        plan=read_str(item, "plan"),
        status=read_str(item, "status") or None,
        features=read_str_list(item, "features"),
        limits={name: int(value["N"]) for name, value in item.get("limits", {}).get("M", {}).items()},
        updated_at=read_int(item, "updated_at") or 0,
    )


def trial_ending_to_item(record: TrialEndingRecord) -> AttributeMap:
    return {
        "pk": string(org_pk(record.org_id)),
        # One per trial: a trial Stripe extends ends again, and is announced again.
        "sk": string(f"{SK_TRIAL_ENDING_PREFIX}{record.subscription_id}#{record.trial_end}"),
        "subscription_id": string(record.subscription_id),
        "trial_end": number(record.trial_end),
        "days_left": number(record.days_left),
        "has_payment_method": {"BOOL": record.has_payment_method},
        "event_id": string(record.event_id),
        TTL_ATTRIBUTE: number(record.trial_end + TRIAL_NOTICE_TTL_SECONDS),
    }


def trial_ending_from_item(org_id: str, item: AttributeMap) -> TrialEndingRecord:
    return TrialEndingRecord(
        org_id=org_id,
        subscription_id=read_str(item, "subscription_id"),
        trial_end=read_int(item, "trial_end") or 0,
        days_left=read_int(item, "days_left") or 0,
        has_payment_method=read_bool(item, "has_payment_method"),
        event_id=read_str(item, "event_id"),
    )

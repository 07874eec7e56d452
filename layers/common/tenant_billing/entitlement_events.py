"""`EntitlementsChanged` events, published to EventBridge from the table's DynamoDB stream.

Every write of an organization's ENTITLEMENT item reaches the stream (NEW_AND_OLD_IMAGES). A record
becomes one event when the entitlements themselves differ between the old and the new image:
plan, status, features (as a set) or limits. `updated_at` changes on every sync and is ignored, so
a sync that rewrote identical entitlements publishes nothing.

Exactly once per change: records are published in stream order, one PutEvents entry per call.
When a call fails (a failed entry, a throttled or failed request, or too little time left to try),
processing stops and the batch answers `{"batchItemFailures": [<that record's SequenceNumber>]}`:
Lambda checkpoints before that record and retries from it, so what was already published is never
sent again and what follows is not skipped. The one gap is a crash (timeout, out of memory)
between PutEvents succeeding and the batch answer, which makes Lambda send the batch again; every
event therefore carries `changeId`, the stream record's eventID, which is stable across retries:
consumers that must not act twice dedupe on it.

The same stream publishes `TrialEnding`: the insert of a trial's end notice (`TRIAL_ENDING#<sub id>`,
written once per subscription when Stripe says its trial ends soon) becomes one event with the
days left and whether a card is on file, in the same order and with the same retry rules.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from tenant_billing.item_codec import entitlement_from_item, trial_ending_from_item
from tenant_billing.items import ORG_PREFIX, SK_ENTITLEMENT, SK_TRIAL_ENDING_PREFIX, EntitlementRecord, TrialEndingRecord
from tenant_billing.observability import logger, metrics
from tenant_billing.records import frozen
from tenant_billing.subscription_sync import entitlement_differs

DETAIL_TYPE = "EntitlementsChanged"
TRIAL_ENDING_DETAIL_TYPE = "TrialEnding"
# Below this much time left in the invocation, the next PutEvents is not attempted: a timeout
# mid-batch would make Lambda send the whole batch again, re-publishing what was already sent.
# A PutEvents takes at most about 3 attempts x (2 s connect + 5 s read) plus backoff.
DEFAULT_RESERVE_MS = 25_000
_PUBLISHED_EVENT_NAMES = frozenset({"INSERT", "MODIFY"})


class EventsPublisher(Protocol):
    def put_events(self, *, Entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]: ...


class StreamRecordError(ValueError):
    """A stream record that cannot be read as an entitlement change (reported, then retried)."""


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@frozen
class EntitlementChange:
    org_id: str
    old: EntitlementRecord | None
    new: EntitlementRecord
    # The stream record's eventID: the same on every delivery of the record.
    change_id: str
    changed_at: datetime

    def detail(self) -> dict[str, Any]:
        return {
            "organizationId": self.org_id,
            "oldPlan": self.old.plan if self.old else None,
            "newPlan": self.new.plan,
            "oldStatus": self.old.status if self.old else None,
            "status": self.new.status,
            "features": list(self.new.features),
            "limits": dict(self.new.limits),
            "changeId": self.change_id,
            "changedAt": _iso(self.changed_at),
        }

    def entry(self, *, bus_name: str, source: str) -> dict[str, Any]:
        return _entry(DETAIL_TYPE, self.detail(), self.changed_at, bus_name=bus_name, source=source)

    def log_keys(self) -> dict[str, Any]:
        return {
            "old_plan": self.old.plan if self.old else None,
            "new_plan": self.new.plan,
            "status": self.new.status,
        }


@frozen
class TrialEndingNotice:
    org_id: str
    notice: TrialEndingRecord
    change_id: str
    changed_at: datetime

    def detail(self) -> dict[str, Any]:
        return {
            "organizationId": self.org_id,
            "subscriptionId": self.notice.subscription_id,
            "trialEnd": _iso(datetime.fromtimestamp(self.notice.trial_end, UTC)),
            "daysLeft": self.notice.days_left,
            "hasPaymentMethod": self.notice.has_payment_method,
            "changeId": self.change_id,
            "changedAt": _iso(self.changed_at),
        }

    def entry(self, *, bus_name: str, source: str) -> dict[str, Any]:
        return _entry(TRIAL_ENDING_DETAIL_TYPE, self.detail(), self.changed_at, bus_name=bus_name, source=source)

    def log_keys(self) -> dict[str, Any]:
        return {"days_left": self.notice.days_left, "has_payment_method": self.notice.has_payment_method}


def _entry(detail_type: str, detail: dict[str, Any], at: datetime, *, bus_name: str, source: str) -> dict[str, Any]:
    return {
        "EventBusName": bus_name,
        "Source": source,
        "DetailType": detail_type,
        "Detail": json.dumps(detail, separators=(",", ":")),
        "Time": at,
    }


@frozen
class BatchOutcome:
    published: int = 0
    # Records with nothing to publish: unchanged entitlements, REMOVEs, other items.
    skipped: int = 0
    # The first record that was not published; it and every later record are retried.
    failed_sequence_number: str | None = None

    def response(self) -> dict[str, list[dict[str, str]]]:
        """The answer of a stream handler with ReportBatchItemFailures."""
        if self.failed_sequence_number is None:
            return {"batchItemFailures": []}
        return {"batchItemFailures": [{"itemIdentifier": self.failed_sequence_number}]}


def _state(org_id: str, image: Mapping[str, Any]) -> EntitlementRecord:
    try:
        record = entitlement_from_item(org_id, dict(image))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StreamRecordError(f"malformed entitlement image: {type(exc).__name__}") from None
    if not record.plan:
        raise StreamRecordError("entitlement image without a plan")
    return record


def _changed_at(stream: Mapping[str, Any]) -> datetime:
    value = stream.get("ApproximateCreationDateTime")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return datetime.now(UTC)
    seconds = float(value)
    # DynamoDB Streams gives seconds; a stream configured for finer precision gives ms or us.
    if seconds > 1e14:
        seconds /= 1e6
    elif seconds > 1e11:
        seconds /= 1e3
    return datetime.fromtimestamp(seconds, UTC)


def _trial_notice(org_id: str, record: Mapping[str, Any], stream: Mapping[str, Any]) -> TrialEndingNotice | None:
    """Published once, when the notice is stored (an INSERT): a rewrite or its expiry is no news."""
    if record.get("eventName") != "INSERT":
        return None
    new_image = stream.get("NewImage")
    if not new_image:
        raise StreamRecordError("no NewImage: the stream must use NEW_AND_OLD_IMAGES")
    try:
        notice = trial_ending_from_item(org_id, dict(new_image))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StreamRecordError(f"malformed trial notice image: {type(exc).__name__}") from None
    if not notice.subscription_id or not notice.trial_end:
        raise StreamRecordError("trial notice image without a subscription or a trial end")
    return TrialEndingNotice(org_id, notice, change_id=str(record.get("eventID") or ""), changed_at=_changed_at(stream))


def change_from_record(record: Mapping[str, Any]) -> EntitlementChange | TrialEndingNotice | None:
    """The event a stream record carries; None when there is nothing to publish: a REMOVE, another
    item, a rewrite with identical entitlements, or a trial notice that was not just stored."""
    if record.get("eventName") not in _PUBLISHED_EVENT_NAMES:
        return None
    stream = record.get("dynamodb") or {}
    keys = stream.get("Keys") or {}
    pk = str((keys.get("pk") or {}).get("S", ""))
    sk = str((keys.get("sk") or {}).get("S", ""))
    if not pk.startswith(ORG_PREFIX) or pk == ORG_PREFIX:
        return None
    org_id = pk.removeprefix(ORG_PREFIX)
    if sk.startswith(SK_TRIAL_ENDING_PREFIX):
        return _trial_notice(org_id, record, stream)
    if sk != SK_ENTITLEMENT:
        return None
    new_image = stream.get("NewImage")
    if not new_image:
        raise StreamRecordError("no NewImage: the stream must use NEW_AND_OLD_IMAGES")
    new = _state(org_id, new_image)
    old_image = stream.get("OldImage")
    old = _state(org_id, old_image) if old_image else None
    if not entitlement_differs(old, new):
        return None
    return EntitlementChange(
        org_id=org_id,
        old=old,
        new=new,
        change_id=str(record.get("eventID") or ""),
        changed_at=_changed_at(stream),
    )


def _sequence_number(record: Mapping[str, Any]) -> str:
    sequence_number = (record.get("dynamodb") or {}).get("SequenceNumber")
    if not sequence_number:
        # Lambda always sends one; without it no failure can be reported, so the invocation fails.
        raise StreamRecordError("stream record without a SequenceNumber")
    return str(sequence_number)


def _publish(client: EventsPublisher, change: EntitlementChange | TrialEndingNotice, *, bus_name: str, source: str) -> str | None:
    """Send one event; None on success, otherwise the reason (an error code, never a payload)."""
    from botocore.exceptions import ClientError

    try:
        response = client.put_events(Entries=[change.entry(bus_name=bus_name, source=source)])
    except ClientError as exc:
        return str(exc.response.get("Error", {}).get("Code") or "ClientError")
    except Exception as exc:
        # Connection errors, timeouts, anything else: the event may not have been accepted.
        return type(exc).__name__
    if int(response.get("FailedEntryCount") or 0) > 0:
        entries = response.get("Entries") or [{}]
        return str(entries[0].get("ErrorCode") or "FailedEntry")
    return None


def publish_entitlement_changes(
    records: Iterable[Mapping[str, Any]],
    client_factory: Callable[[], EventsPublisher],
    *,
    bus_name: str,
    source: str,
    remaining_ms: Callable[[], int] | None = None,
    reserve_ms: int = DEFAULT_RESERVE_MS,
) -> BatchOutcome:
    """Publish one `EntitlementsChanged` per changed record (and one `TrialEnding` per stored trial
    notice), in order, stopping at the first failure.

    The client comes from a factory, so a batch without a change never creates an EventBridge client.
    """
    published = skipped = 0
    publisher: EventsPublisher | None = None

    def stop(sequence_number: str) -> BatchOutcome:
        return BatchOutcome(published, skipped, sequence_number)

    for record in records:
        sequence_number = _sequence_number(record)
        try:
            change = change_from_record(record)
        except StreamRecordError as exc:
            logger.error("unreadable entitlement stream record", extra={"reason": str(exc), "sequence_number": sequence_number})
            metrics.add_metric(name="EntitlementsPublishFailed", unit="Count", value=1)
            return stop(sequence_number)
        if change is None:
            skipped += 1
            continue
        if remaining_ms is not None and remaining_ms() < reserve_ms:
            logger.warning("too little time left to publish; the rest of the batch is retried", extra={"published": published})
            return stop(sequence_number)
        if publisher is None:
            publisher = client_factory()
        failure = _publish(publisher, change, bus_name=bus_name, source=source)
        detail_type = TRIAL_ENDING_DETAIL_TYPE if isinstance(change, TrialEndingNotice) else DETAIL_TYPE
        if failure is not None:
            logger.warning(
                f"{detail_type} not published; retrying from this record",
                extra={"org_id": change.org_id, "change_id": change.change_id, "reason": failure},
            )
            metrics.add_metric(name="EntitlementsPublishFailed", unit="Count", value=1)
            return stop(sequence_number)
        published += 1
        if isinstance(change, TrialEndingNotice):
            metrics.add_metric(name="TrialEndingPublished", unit="Count", value=1)
        else:
            metrics.add_metric(name="EntitlementsChangedPublished", unit="Count", value=1)
        logger.info(
            f"{detail_type} published", extra={"org_id": change.org_id, "change_id": change.change_id, **change.log_keys()}
        )
    return BatchOutcome(published, skipped, None)

"""Hypothesis strategies for hostile or broken input: bodies, headers, JWT claims, Stripe events."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tenant_billing.invoices_logic import encode_cursor
from tenant_billing.webhook_logic import HANDLED_EVENTS
from tests.support.logscan import CARD_NUMBER

# --- JSON ---------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)

# Fields an attacker might hope we read: another organization, customer or subscription, URLs.
FOREIGN_FIELDS = (
    "orgId",
    "org_id",
    "organizationId",
    "organization_id",
    "tenantId",
    "customer",
    "customerId",
    "customer_id",
    "subscription",
    "subscriptionId",
    "clientReferenceId",
    "client_reference_id",
    "metadata",
    "successUrl",
    "success_url",
    "returnUrl",
    "priceId",
    "price",
    "quantity",
)
plans = st.one_of(st.sampled_from(["starter", "pro", "enterprise", "PRO", " pro", "", "platinum", "pro\x00"]), json_scalars)
site_quantities = st.one_of(
    st.integers(min_value=-3, max_value=104), st.sampled_from([2**63, -(2**63), 1.0, 2.5, "3", True]), json_values
)
checkout_objects = st.fixed_dictionaries(
    {"plan": plans},
    optional={
        "siteQuantity": site_quantities,
        **dict.fromkeys(FOREIGN_FIELDS[:6], json_values),
        "site_quantity": site_quantities,
    },
)
oversized = st.integers(min_value=16 * 1024 - 16, max_value=16 * 1024 + 64).map(
    lambda n: json.dumps({"plan": "pro", "pad": "x" * n})
)


@dataclass(frozen=True)
class Body:
    """A request body as API Gateway hands it over: text, or base64 with isBase64Encoded."""

    body: str | None
    is_base64: bool

    def apply(self, event: dict[str, Any]) -> dict[str, Any]:
        if self.body is None:
            event.pop("body", None)
        else:
            event["body"] = self.body
        event["isBase64Encoded"] = self.is_base64
        return event


def _text(text: str) -> Body:
    return Body(text, False)


def _base64_of(text: str) -> Body:
    return Body(base64.b64encode(text.encode()).decode(), True)


json_texts = st.one_of(json_values, checkout_objects).map(lambda value: json.dumps(value))
# Bodies API Gateway can really deliver as text (or as base64 of UTF-8 text, for other content types).
text_bodies = st.one_of(
    json_texts.map(_text),
    json_texts.map(_base64_of),
    st.text(max_size=200).map(_text),
    st.sampled_from(["", " ", "{}", "[]", "null", "{", '{"plan":"pro"}{}', '{"plan": "pro", "plan": 3}']).map(_text),
    oversized.map(_text),
    st.none().map(lambda _: Body(None, False)),
)
# Arbitrary bytes (API Gateway base64-encodes a body it cannot pass as text).
binary_bodies = st.binary(max_size=300).map(lambda raw: Body(base64.b64encode(raw).decode(), True))
# isBase64Encoded with a body that is not base64 at all.
junk_base64_bodies = st.text(max_size=120).map(lambda text: Body(text, True))

# --- the subscription endpoints' bodies ------------------------------------------------------------

# prorationDate in bodies: far off, and every wrong type (around now: well_typed_changes).


@dataclass(frozen=True)
class NowOffset:
    """A timestamp `seconds` from the moment the request is made (resolved then, not when drawn, so
    that a case replayed while Hypothesis shrinks means the same thing)."""

    seconds: int

    def resolve(self) -> int:
        return int(time.time()) + self.seconds


def resolve_now_offsets(value: Any) -> Any:
    if isinstance(value, NowOffset):
        return value.resolve()
    if isinstance(value, dict):
        return {key: resolve_now_offsets(item) for key, item in value.items()}
    return value


# Around now: inside and outside the hour for which a preview's prorationDate may be reused.
near_now = st.integers(min_value=-4000, max_value=200).map(NowOffset)
proration_dates = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**31, 2**63, 1.5, "1795271234", True]),
    json_values,
)
foreign_fields = st.dictionaries(st.sampled_from(FOREIGN_FIELDS), json_values, max_size=2)
catalog_plans = st.sampled_from(["starter", "pro", "enterprise"])
# Every field with every value, and foreign fields.
change_objects = st.tuples(
    st.fixed_dictionaries({"plan": plans}, optional={"siteQuantity": site_quantities, "prorationDate": proration_dates}),
    st.one_of(st.just({}), foreign_fields),
).map(lambda parts: {**parts[1], **parts[0]})
cancel_objects = st.tuples(
    st.fixed_dictionaries({}, optional={"immediately": st.one_of(st.booleans(), json_values)}),
    st.one_of(st.just({}), foreign_fields),
).map(lambda parts: {**parts[1], **parts[0]})
# Well-typed plan changes (most get past validation and reach Stripe): catalog plans, quantities
# across the catalog's bounds, prorationDate around now (NowOffset: resolve before sending) and far off.
well_typed_changes = st.fixed_dictionaries(
    {"plan": st.one_of(catalog_plans, st.sampled_from(["PRO", "platinum", ""]))},
    optional={
        "siteQuantity": st.integers(min_value=-2, max_value=102),
        "prorationDate": st.one_of(near_now, st.integers(min_value=-(2**70), max_value=2**70)),
    },
)
subscription_json_texts = st.one_of(change_objects, cancel_objects).map(lambda value: json.dumps(value))
# Every body of text_bodies, and objects shaped like a plan change or a cancellation.
subscription_bodies = st.one_of(text_bodies, subscription_json_texts.map(_text), subscription_json_texts.map(_base64_of))
undecodable_bodies = st.one_of(binary_bodies, junk_base64_bodies)

# --- query strings ------------------------------------------------------------------------------


def _urlsafe_b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


number_texts = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.integers(min_value=-3, max_value=104).map(str),
    st.floats().map(repr),
    st.sampled_from(
        ["", "-0", "+1", " 1", "1 ", "0x10", "1e2", "1_000", "2.0", "2.5", "nan", "inf", "-inf", "99999999999999999999999"]
    ),
    # Digits Python's int() takes but that are not ASCII.
    st.text(alphabet="0123456789\u0661\u0662\u09e8\uff11\u00b2", min_size=1, max_size=6),
)
# Cursors: junk, base64 of anything, the cursor's own shape with every value, another organization's,
# and this organization's own (org_alpha) naming an invoice that Stripe does not have.
cursors = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=60).map(_urlsafe_b64),
    json_values.map(lambda value: _urlsafe_b64(json.dumps(value).encode())),
    st.fixed_dictionaries(
        {"o": st.one_of(st.sampled_from(["org_alpha", "org_bravo"]), json_values)},
        optional={"a": st.one_of(st.text(max_size=24).map(lambda text: "in_" + text), json_values)},
    ).map(lambda value: _urlsafe_b64(json.dumps(value).encode())),
    st.text(max_size=24).map(lambda text: encode_cursor("org_bravo", "in_" + text)),
    st.text(max_size=24).map(lambda text: encode_cursor("org_alpha", "in_" + text)),
    st.just("Q" * 600),
)
query_names = st.one_of(
    st.sampled_from(
        [
            *("plan", "siteQuantity", "sitequantity", "site_quantity", "limit", "cursor", "prorationDate", "immediately"),
            *("orgId", "org_id", "customer", "subscription", "starting_after", "expand[]", "limit[]", "plan[0]"),
        ]
    ),
    st.text(min_size=1, max_size=16),
)
query_values = st.one_of(number_texts, plans.map(str), cursors, st.text(max_size=40))
# The values the routes' own parameters take, and every other kind.
_OWN_PARAMETER_VALUES = {
    "plan": st.one_of(catalog_plans, plans.map(str), number_texts),
    "siteQuantity": st.one_of(st.integers(min_value=0, max_value=5).map(str), number_texts, plans.map(str)),
    "limit": st.one_of(st.integers(min_value=1, max_value=100).map(str), number_texts, plans.map(str)),
    "cursor": st.one_of(cursors, number_texts),
}


def own_parameter_pairs(*names: str) -> st.SearchStrategy[tuple[str, str]]:
    """A (name, value) pair of one of the route's own parameters."""
    return st.sampled_from(names).flatmap(lambda name: st.tuples(st.just(name), _OWN_PARAMETER_VALUES[name]))


_any_own_pair = own_parameter_pairs(*sorted(_OWN_PARAMETER_VALUES))
# Name/value pairs in order; a name may repeat (API Gateway joins the values with commas).
query_pairs = st.one_of(
    st.lists(st.tuples(query_names, query_values), max_size=5),
    st.lists(st.one_of(_any_own_pair, st.tuples(query_names, query_values)), max_size=4),
)

# --- headers ------------------------------------------------------------------------------------

header_names = st.one_of(
    st.sampled_from(
        [
            "content-type",
            "Content-Type",
            "content-encoding",
            "content-length",
            "transfer-encoding",
            "accept-encoding",
            "authorization",
            "cookie",
            "origin",
            "host",
            "x-forwarded-for",
            "x-org-id",
            "x-tenant-id",
            "stripe-signature",
        ]
    ),
    st.text(min_size=1, max_size=24),
)
header_values = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-16",
            "text/plain",
            "application/octet-stream",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
            "gzip",
            "br",
            "deflate",
            "identity",
            "chunked",
            "0",
            "-1",
            "99999999999999999999",
            "org_bravo",
        ]
    ),
    st.text(max_size=80),
)
headers = st.dictionaries(header_names, header_values, max_size=8)

# --- JWT claims ---------------------------------------------------------------------------------

ORG_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}"
valid_org_ids = st.from_regex(ORG_ID_PATTERN, fullmatch=True).filter(lambda text: not CARD_NUMBER.search(text))
org_values = st.one_of(
    valid_org_ids,
    st.sampled_from(["org_alpha", "org_bravo", "org_alpha ", "ORG#org_bravo", "org_bravo#x", "", "*", "../org_bravo"]),
    st.text(max_size=200),
    st.text(alphabet=st.characters(min_codepoint=0x80), min_size=1, max_size=30),
    st.text(alphabet="a", min_size=128, max_size=400),
    json_values,
)
role_values = st.one_of(
    st.sampled_from(
        ["admin", "owner", "member", "[admin member]", '["owner"]', "admin,member", "ADMIN", " admin ", "billing-admin"]
    ),
    st.lists(st.one_of(st.sampled_from(["admin", "owner", "member"]), st.text(max_size=8)), max_size=3),
    json_values,
)
claim_names = st.one_of(
    st.sampled_from(["sub", "iss", "aud", "scope", "custom:org_id", "org", "tenant", "exp"]), st.text(max_size=16)
)
claims = st.tuples(
    st.fixed_dictionaries({}, optional={"org_id": org_values, "org_role": role_values}),
    st.dictionaries(claim_names, json_values, max_size=4),
).map(lambda parts: {**parts[1], **parts[0]})

# --- Stripe-Signature headers and webhook bodies -------------------------------------------------

hex_signatures = st.text(alphabet="0123456789abcdef", min_size=0, max_size=70)
ascii_timestamps = st.one_of(
    st.integers(min_value=0, max_value=10**13).map(str),
    st.sampled_from(["", "-1", "+1", "1e9", "1.5", " 1", "0x10", "99999999999", "999999999999", "9999999999999"]),
)
# Digits that str.isdigit() accepts but int() does not (superscripts), or that are not ASCII.
unicode_timestamps = st.text(alphabet="0123456789\u00b2\u00b3\u00b9\u0661\u0662\u09e8\uff11", min_size=1, max_size=12)


def _header(parts: list[tuple[str, str]]) -> str:
    return ",".join(f"{key}={value}" for key, value in parts)


ascii_signature_headers = st.one_of(
    st.lists(
        st.tuples(st.sampled_from(["t", "v1", "v0", "T", "V1", " t", "v1 "]), st.one_of(ascii_timestamps, hex_signatures)),
        max_size=6,
    ).map(_header),
    st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=120),
    st.just("t=1," + "v1=ab," * 700),
)
any_signature_headers = st.one_of(
    ascii_signature_headers,
    st.tuples(unicode_timestamps, hex_signatures).map(lambda parts: f"t={parts[0]},v1={parts[1]}"),
    st.text(max_size=120),
)

event_types = st.one_of(
    st.sampled_from(sorted(HANDLED_EVENTS)), st.sampled_from(["customer.created", "charge.succeeded", ""]), st.text(max_size=30)
)
event_ids = st.one_of(
    st.builds(
        lambda suffix: f"evt_{suffix}", st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=24)
    ).filter(lambda text: not CARD_NUMBER.search(text)),
    st.sampled_from(["", "evt_", "evt_" + "x" * 300, "cus_123"]),
    json_scalars,
)

# Text that must never come back in a log line, planted in event payloads.
PLANTED = ("4242 4242 4242 4242", "4000-0566-5566-5556", "sk_live_planted_in_payload", "whsec_planted_in_payload")
planted = st.sampled_from(PLANTED)

"""Which of a customer's subscriptions decides the organization's plan (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from tenant_billing.catalog import get_catalog
from tenant_billing.entitlements import PastDuePolicy
from tenant_billing.stripe_objects import read_subscription
from tenant_billing.subscription_sync import choose_subscription

PRICES = {"starter_base": "price_s", "pro_base": "price_p", "pro_site": "price_ps",
          "enterprise_base": "price_e", "enterprise_site": "price_es"}  # fmt: skip


def sub(sub_id: str, status: str, created: int, plan_price: str = "price_p", sites: int = 0, site_price: str = "price_ps") -> Any:
    items: list[dict[str, Any]] = [{"price": {"id": plan_price}, "quantity": 1}]
    if sites:
        items.append({"price": {"id": site_price}, "quantity": sites})
    return read_subscription({"id": sub_id, "status": status, "created": created, "items": {"data": items}})


def choose(*subscriptions: Any, policy: PastDuePolicy = "plan") -> tuple[str, tuple[str, ...]]:
    choice = choose_subscription(list(subscriptions), get_catalog(), PRICES, policy)
    assert choice is not None
    return choice.chosen.id, choice.other_live_ids


def test_no_subscription_no_choice() -> None:
    assert choose_subscription([], get_catalog(), PRICES, "plan") is None


@pytest.mark.parametrize(
    ("a", "b", "winner"),
    [
        (("active", 100), ("active", 200), "b"),  # same plan: the newer
        (("active", 200), ("active", 100), "a"),
        (("canceled", 200), ("active", 100), "b"),  # a live one beats an ended one
        (("active", 100), ("canceled", 200), "a"),
        (("canceled", 100), ("canceled", 200), "b"),  # both ended: the newer shows
        (("canceled", 200), ("incomplete_expired", 100), "a"),
        (("past_due", 100), ("trialing", 200), "b"),
        (("unpaid", 200), ("incomplete", 100), "a"),  # neither pays: the live newer one
        (("active", 100), ("unpaid", 200), "a"),  # one that pays beats a newer one that does not
    ],
)
def test_precedence(a: tuple[str, int], b: tuple[str, int], winner: str) -> None:
    chosen, _ = choose(sub("a", *a), sub("b", *b))
    assert chosen == winner


def test_the_better_plan_wins_over_the_newer_one() -> None:
    # Enterprise ($199) over Pro with 3 sites ($79 + 3 x $19 = $136), whichever is newer.
    assert choose(sub("pro", "active", 200, sites=3), sub("ent", "active", 100, "price_e"))[0] == "ent"
    # Pro with 7 sites ($212) over bare Enterprise.
    assert choose(sub("pro", "active", 100, sites=7), sub("ent", "active", 200, "price_e"))[0] == "pro"
    # A price outside the catalog never outranks a known plan.
    assert choose(sub("odd", "active", 300, "price_unknown"), sub("starter", "active", 100, "price_s"))[0] == "starter"


def test_a_paid_subscription_beats_a_past_due_one_whatever_its_plan() -> None:
    subs = (sub("ent_past_due", "past_due", 200, "price_e"), sub("starter", "active", 100, "price_s"))
    assert choose(*subs, policy="plan")[0] == "starter"
    assert choose(*subs, policy="fallback")[0] == "starter"
    # Under the "plan" policy a past_due subscription still grants its plan: it beats an unpaid one.
    unpaid = (sub("ent_unpaid", "unpaid", 300, "price_e"), sub("pro_past_due", "past_due", 100))
    assert choose(*unpaid, policy="plan")[0] == "pro_past_due"


def test_the_other_live_subscriptions_are_named() -> None:
    chosen, others = choose(
        sub("a", "active", 100), sub("b", "active", 300), sub("c", "canceled", 400), sub("d", "past_due", 200)
    )
    assert (chosen, others) == ("b", ("a", "d"))
    assert choose(sub("a", "active", 100), sub("c", "canceled", 400))[1] == ()

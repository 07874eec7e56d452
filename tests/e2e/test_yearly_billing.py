"""Monthly and yearly billing in a real browser against `make dev`: the plans' interval switch shows
yearly prices and what they save, a yearly checkout bills the yearly prices, and a monthly
subscription moved to yearly is charged exactly what its preview showed."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.helpers import (
    item_amounts,
    org_subscriptions,
    paid_invoices,
    preview_and_confirm,
    shot,
    stripe_get,
    subscribe,
    use_token,
    wait_for_webhooks,
)

PRO_YEARLY_1_SITE = {79000: 1, 19000: 1}  # the yearly base and per-site prices (cents) -> quantity
STARTER_YEARLY = {29000: 1}


def intervals(subscription: dict[str, Any]) -> set[str]:
    return {str(item["price"]["recurring"]["interval"]) for item in subscription["items"]["data"]}


def test_the_interval_switch_and_a_yearly_checkout(page: Page, dev_stack: dict[str, Any]) -> None:
    stripe = dev_stack["stripe"]
    page.goto(f"{dev_stack['gateway']}/")
    use_token(page, "Demo org admin")
    pro = page.locator('article.plan[data-plan="pro"]')
    expect(pro.locator(".plan-price")).to_have_text("$79 / month")
    expect(pro.locator(".plan-saving")).to_have_count(0)

    # Yearly: the yearly prices, and what they save against twelve monthly invoices.
    page.check('input[name="interval"][value="year"]')
    expect(page.locator("#yearly-saving")).to_have_text("Save up to 17%")
    expect(pro.locator(".plan-price")).to_have_text("$790 / year")
    expect(pro.locator(".plan-saving")).to_have_text("Save $158 a year")
    expect(pro.locator(".site-price")).to_have_text("+ $190 / year per extra site")
    pro.locator(".site-quantity").fill("1")
    expect(pro.locator(".plan-total")).to_have_text("Total: $980 / year")
    shot(page, "yearly-01-switch")

    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/billing/checkout")) as sent:
        subscribe(page, "pro", 1)
    assert sent.value.post_data_json == {"plan": "pro", "interval": "year", "siteQuantity": 1}
    expect(page.locator("#period")).to_contain_text("(billed yearly)")
    wait_for_webhooks(stripe)
    (subscription,) = org_subscriptions(stripe, "org_demo")
    assert (item_amounts(subscription), intervals(subscription)) == (PRO_YEARLY_1_SITE, {"year"})
    shot(page, "yearly-02-subscribed")

    # Back to monthly on the switch: the cards show monthly prices again.
    page.check('input[name="interval"][value="month"]')
    expect(pro.locator(".plan-price")).to_have_text("$79 / month")


def test_a_monthly_subscription_moved_to_yearly_is_charged_its_preview(page: Page, dev_stack: dict[str, Any]) -> None:
    stripe = dev_stack["stripe"]
    page.goto(f"{dev_stack['gateway']}/")
    use_token(page, "Other org admin")
    subscribe(page, "starter", 0)
    expect(page.locator("#period")).to_contain_text("Renews on")
    expect(page.locator("#period")).not_to_contain_text("yearly")
    wait_for_webhooks(stripe)
    (subscription,) = org_subscriptions(stripe, "org_other")
    customer = str(subscription["customer"])
    before = {invoice["id"] for invoice in paid_invoices(stripe, customer)}

    due_now = preview_and_confirm(page, "starter", 0, interval="year")
    expect(page.locator("#period")).to_contain_text("(billed yearly)")
    wait_for_webhooks(stripe)
    (charged,) = [invoice for invoice in paid_invoices(stripe, customer) if invoice["id"] not in before]
    assert charged["amount_paid"] == due_now
    assert 29000 - 2900 <= due_now < 29000  # the year, less the month's unused part
    subscription = stripe_get(stripe, f"/v1/subscriptions/{subscription['id']}")
    assert (item_amounts(subscription), intervals(subscription)) == (STARTER_YEARLY, {"year"})
    shot(page, "yearly-03-changed")

"""Managing a live subscription from the demo page against `make dev`: invoices, a previewed plan
change, cancel at period end, resume, cancel now; a member is offered no change; a cancellation
scheduled as `cancel_at` (the portal, the API) shows and resumes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.helpers import org_subscriptions, stripe_get, stripe_post, subscribe, wait_for_webhooks


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


CALLERS = {"Demo org admin": "0", "Demo org member": "1", "Other org admin": "2"}  # make dev's token order


def use_token(page: Page, label: str) -> None:
    page.select_option("#token-select", value=CALLERS[label])
    page.click("#refresh")


def test_change_cancel_resume_and_invoices(page: Page, dev_stack: dict[str, Any]) -> None:
    page.on("dialog", lambda dialog: dialog.accept())  # "Cancel now" asks with confirm()
    page.goto(f"{dev_stack['gateway']}/")
    use_token(page, "Demo org admin")  # this module's own stack: org_demo starts without a subscription
    expect(page.locator("#status-state")).to_have_text("none")
    expect(page.locator("#change-plan")).to_be_hidden()
    expect(page.locator("#invoices")).to_contain_text("No invoices yet")

    # Subscribe to Pro with 3 extra sites through Checkout.
    pro = page.locator('article.plan[data-plan="pro"]')
    pro.locator(".site-quantity").fill("3")
    pro.locator(".choose-plan").click()
    page.wait_for_url("**/c/pay/**")
    page.fill("#card-number", "4242 4242 4242 4242")
    page.click("#pay")
    page.wait_for_url("**/app/settings?billing=success")
    expect(page.locator("#status-state")).to_have_text("active")
    expect(page.locator("#limit-sites")).to_have_text("5")
    invoices = page.locator("#invoices tr.invoice")
    expect(invoices).to_have_count(1)
    expect(invoices.first.locator(".invoice-status")).to_have_text("paid")
    expect(invoices.first.get_by_role("link", name="View")).to_have_attribute("target", "_blank")
    expect(page.locator("#invoices-more")).to_be_hidden()

    # The change form starts from the current plan; preview Enterprise with 4 sites, then confirm.
    expect(page.locator("#change-plan")).to_be_visible()
    expect(page.locator("#change-plan-select")).to_have_value("pro")
    expect(page.locator("#change-sites")).to_have_value("3")
    expect(page.locator("#confirm-change")).to_be_disabled()
    page.select_option("#change-plan-select", "enterprise")
    page.fill("#change-sites", "4")
    page.click("#preview-change")
    result = page.locator("#preview-result")
    expect(result).to_contain_text("Next invoice: $235.00 on ")
    due_now = result.inner_text().split("Due now: $", 1)[1].split(" ", 1)[0]
    assert float(due_now.replace(",", "")) > 0, result.inner_text()
    expect(page.locator("#confirm-change")).to_be_enabled()
    shot(page, "11-change-preview")
    page.fill("#change-sites", "5")  # an edit needs a new preview
    expect(page.locator("#confirm-change")).to_be_disabled()
    page.fill("#change-sites", "4")
    page.click("#preview-change")
    expect(page.locator("#confirm-change")).to_be_enabled()
    page.click("#confirm-change")
    expect(page.locator("#status-plan")).to_have_attribute("data-plan", "enterprise")
    expect(page.locator("#limit-sites")).to_have_text("9")
    expect(invoices).to_have_count(2)
    shot(page, "12-changed")

    # A member sees the subscription but is offered no change (the API refuses one anyway).
    use_token(page, "Demo org member")
    expect(page.locator("#status-plan")).to_have_attribute("data-plan", "enterprise")
    expect(page.locator("#change-plan")).to_be_hidden()
    expect(invoices).to_have_count(2)  # any member may read the invoices

    # The admin cancels at period end, resumes, then cancels at once.
    use_token(page, "Demo org admin")
    expect(page.locator("#error")).to_be_empty()
    page.click("#cancel-at-period-end")
    expect(page.locator("#period")).to_contain_text("Cancels on ")
    expect(page.locator("#resume")).to_be_visible()
    expect(page.locator("#cancel-now")).to_be_hidden()
    shot(page, "13-cancels-at-period-end")
    page.click("#resume")
    expect(page.locator("#cancel-at-period-end")).to_be_visible()
    expect(page.locator("#period")).to_contain_text("Renews on ")
    page.click("#cancel-now")
    expect(page.locator("#status-state")).to_have_text("canceled")
    expect(page.locator("#limit-sites")).to_have_text("1")
    expect(page.locator("#change-plan")).to_be_hidden()
    expect(page.locator("#resume")).to_be_hidden()
    expect(page.locator("#error")).to_be_empty()
    shot(page, "14-canceled-now")


def cancellation(stripe: str, subscription_id: str) -> tuple[int | None, bool]:
    """(cancel_at, cancel_at_period_end) as Stripe has them."""
    subscription = stripe_get(stripe, f"/v1/subscriptions/{subscription_id}")
    return subscription["cancel_at"], subscription["cancel_at_period_end"]


def day(timestamp: int) -> str:
    """A timestamp as the page writes dates: "January 1, 2027" (UTC)."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return f"{moment:%B} {moment.day}, {moment.year}"


def test_a_scheduled_cancel_at_shows_and_resumes(page: Page, dev_stack: dict[str, Any]) -> None:
    gateway, stripe = dev_stack["gateway"], dev_stack["stripe"]
    page.goto(f"{gateway}/")
    use_token(page, "Other org admin")
    expect(page.locator("#status-state")).to_have_text("none")
    subscribe(page, "pro", 2)
    (subscription,) = org_subscriptions(stripe, "org_other")
    subscription_id = str(subscription["id"])
    period_end = max(int(item["current_period_end"]) for item in subscription["items"]["data"])
    expect(page.locator("#period")).to_have_text(f"Renews on {day(period_end)}")

    # The portal schedules the cancellation as Stripe's does in flexible billing mode: cancel_at, not
    # cancel_at_period_end.
    page.click("#manage-subscription")
    page.wait_for_url("**/p/session/**")
    page.click("#cancel-at-period-end")
    expect(page.locator(".cancels-on")).to_have_text(f"Cancels on {day(period_end)}")
    assert cancellation(stripe, subscription_id) == (period_end, False)
    page.click("#return")
    page.wait_for_url("**/app/billing")
    wait_for_webhooks(stripe)  # the page's sync on return may answer inside its 5 s window, before the webhook
    use_token(page, "Other org admin")
    expect(page.locator("#period")).to_have_text(f"Cancels on {day(period_end)}")
    expect(page.locator("#status-state")).to_have_text("active")
    expect(page.locator("#resume")).to_be_visible()
    expect(page.locator("#cancel-at-period-end")).to_be_hidden()
    expect(page.locator("#cancel-now")).to_be_hidden()
    shot(page, "15-cancel-at-from-the-portal")

    # Resume clears it in Stripe.
    page.click("#resume")
    expect(page.locator("#period")).to_have_text(f"Renews on {day(period_end)}")
    expect(page.locator("#cancel-at-period-end")).to_be_visible()
    expect(page.locator("#resume")).to_be_hidden()
    expect(page.locator("#error")).to_be_empty()
    assert cancellation(stripe, subscription_id) == (None, False)

    # A cancel_at set some other way (the Dashboard, the API), before the period ends: that date shows.
    cancel_at = period_end - 7 * 86_400
    stripe_post(stripe, f"/v1/subscriptions/{subscription_id}", cancel_at=str(cancel_at), proration_behavior="none")
    wait_for_webhooks(stripe)
    use_token(page, "Other org admin")
    expect(page.locator("#period")).to_have_text(f"Cancels on {day(cancel_at)}")
    expect(page.locator("#resume")).to_be_visible()
    page.click("#resume")
    expect(page.locator("#period")).to_have_text(f"Renews on {day(period_end)}")
    assert cancellation(stripe, subscription_id) == (None, False)

    # The portal agrees: nothing is scheduled any more.
    page.click("#manage-subscription")
    page.wait_for_url("**/p/session/**")
    expect(page.locator(f"#subscription-{subscription_id} .cancels-on")).to_have_count(0)
    expect(page.locator("#cancel-at-period-end")).to_be_visible()

"""The whole billing flow in a real browser against `make dev`: choose a plan, pay with a test
card, come back to an active plan; a declined card changes nothing; cancel in the portal."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.helpers import wait_for_webhooks


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


CALLERS = {"Demo org admin": "0", "Demo org member": "1", "Other org admin": "2"}  # make dev's token order


def use_token(page: Page, label: str) -> None:
    page.select_option("#token-select", value=CALLERS[label])
    page.click("#refresh")


def test_subscribe_decline_and_cancel(page: Page, dev_stack: dict[str, Any]) -> None:
    gateway = dev_stack["gateway"]
    page.goto(f"{gateway}/")
    use_token(page, "Demo org admin")
    expect(page.locator("#status-state")).to_have_text("none")
    expect(page.locator("#limit-sites")).to_have_text("1")
    shot(page, "01-demo-page")

    # Choose Pro with 3 extra sites and pay with the card that succeeds.
    pro = page.locator('article.plan[data-plan="pro"]')
    pro.locator(".site-quantity").fill("3")
    expect(pro.locator(".plan-total")).to_contain_text("136")
    pro.locator(".choose-plan").click()
    page.wait_for_url("**/c/pay/**")
    expect(page.locator("body")).to_contain_text("Pro")
    shot(page, "02-checkout")
    page.fill("#card-number", "4242 4242 4242 4242")
    page.click("#pay")
    page.wait_for_url("**/app/settings?billing=success")
    expect(page.locator("#return-banner")).to_be_visible()
    expect(page.locator("#status-state")).to_have_text("active")
    expect(page.locator("#status-plan")).to_have_attribute("data-plan", "pro")
    expect(page.locator("#limit-sites")).to_have_text("5")
    expect(page.locator('#features [data-feature="analytics"]')).to_have_text("Analytics")
    shot(page, "03-subscribed")

    # Another organization's admin is declined: nothing changes for it.
    use_token(page, "Other org admin")
    expect(page.locator("#status-state")).to_have_text("none")
    page.locator('article.plan[data-plan="enterprise"] .choose-plan').click()
    page.wait_for_url("**/c/pay/**")
    page.fill("#card-number", "4000 0000 0000 0002")
    page.click("#pay")
    expect(page.locator("#error")).to_contain_text("Your card was declined.")
    shot(page, "04-declined")
    page.click("#cancel")
    page.wait_for_url("**/app/billing?billing=canceled")
    use_token(page, "Other org admin")
    expect(page.locator("#status-state")).to_have_text("none")
    expect(page.locator("#limit-sites")).to_have_text("1")

    # A plain member sees the plan but is offered no way to manage billing (the API refuses it anyway).
    use_token(page, "Demo org member")
    expect(page.locator("#status-state")).to_have_text("active")
    expect(page.locator("#manage-subscription")).to_be_hidden()

    # The admin cancels in the portal: at period end first, then immediately.
    use_token(page, "Demo org admin")
    expect(page.locator("#manage-subscription")).to_be_enabled()
    page.click("#manage-subscription")
    page.wait_for_url("**/p/session/**")
    page.click("#cancel-at-period-end")
    expect(page.locator("#resume")).to_be_visible()
    shot(page, "05-portal")
    page.click("#return")
    # The portal's changes reach the backend by webhook, after the redirect; the page's POST /billing/sync
    # reads Stripe at most every 5 s per organization, and this test returns faster than that.
    wait_for_webhooks(dev_stack["stripe"])
    use_token(page, "Demo org admin")
    expect(page.locator("#period")).to_contain_text("Cancels")
    expect(page.locator("#status-state")).to_have_text("active")
    page.click("#manage-subscription")
    page.wait_for_url("**/p/session/**")
    page.click("#cancel-now")
    page.click("#return")
    wait_for_webhooks(dev_stack["stripe"])
    use_token(page, "Demo org admin")
    expect(page.locator("#status-state")).to_have_text("canceled")
    expect(page.locator("#limit-sites")).to_have_text("1")
    expect(page.locator("#status-plan")).to_have_attribute("data-plan", "starter")
    shot(page, "06-canceled")

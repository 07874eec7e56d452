"""Money safety in a real browser against `make dev`: two Checkout tabs for one organization (only the
newer one can be paid, the older one says it expired), and 3-D Secure (a failed challenge charges
nothing and leaves the session payable, a completed one subscribes)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.helpers import (
    PAY,
    THREE_D_SECURE,
    deliveries,
    org_subscriptions,
    paid_invoices,
    session_id,
    shot,
    use_token,
    wait_for,
)


def test_two_checkout_tabs_only_the_newer_can_be_paid(page: Page, dev_stack: dict[str, Any]) -> None:
    gateway, stripe = dev_stack["gateway"], dev_stack["stripe"]
    page.goto(f"{gateway}/")
    use_token(page, "Demo org admin")
    expect(page.locator("#status-state")).to_have_text("none")

    # Tab 1 opens Checkout for Pro and is left open.
    page.locator('article.plan[data-plan="pro"] .choose-plan').click()
    page.wait_for_url("**/c/pay/**")
    first_url = page.url
    expect(page.locator("#pay")).to_be_visible()

    # Tab 2, same organization, opens Checkout for Enterprise: the first session is expired in Stripe.
    second = page.context.new_page()
    second.set_default_timeout(15_000)
    second.goto(f"{gateway}/")
    use_token(second, "Demo org admin")
    expect(second.locator("#status-state")).to_have_text("none")
    second.locator('article.plan[data-plan="enterprise"] .choose-plan').click()
    second.wait_for_url("**/c/pay/**")
    assert session_id(second.url) != session_id(first_url)

    # Tab 1's page is stale: paying it is refused, and it now says it expired, with no way to pay.
    page.fill("#card-number", PAY)
    page.click("#pay")
    expect(page.locator("#message-title")).to_have_text("This checkout session has expired")
    expect(page.locator("#pay")).to_have_count(0)
    page.goto(first_url)
    expect(page.locator("#message-title")).to_have_text("This checkout session has expired")
    expect(page.locator("#card-number")).to_have_count(0)
    shot(page, "21-first-tab-expired")
    # Stripe tells the webhook, as it does for every expiry.
    first_id = session_id(first_url)
    wait_for(
        lambda: any(
            d["type"] == "checkout.session.expired" and d["object_id"] == first_id and d["delivered"] for d in deliveries(stripe)
        ),
        timeout=15,
        what="checkout.session.expired delivered for the first session",
    )

    # Tab 2 pays and comes back to the paid plan.
    second.fill("#card-number", PAY)
    second.click("#pay")
    second.wait_for_url("**/app/settings?billing=success")
    expect(second.locator("#status-state")).to_have_text("active")
    expect(second.locator("#status-plan")).to_have_attribute("data-plan", "enterprise")
    expect(second.locator(".choose-plan").first).to_be_disabled()
    shot(second, "22-second-tab-paid")

    # One subscription, one charge.
    (subscription,) = org_subscriptions(stripe, "org_demo")
    assert subscription["status"] == "active"
    (invoice,) = paid_invoices(stripe, subscription["customer"])
    assert invoice["amount_paid"] == 19900
    second.close()


def test_three_d_secure_failed_then_completed(page: Page, dev_stack: dict[str, Any]) -> None:
    gateway, stripe = dev_stack["gateway"], dev_stack["stripe"]
    page.goto(f"{gateway}/")
    use_token(page, "Other org admin")
    expect(page.locator("#status-state")).to_have_text("none")
    pro = page.locator('article.plan[data-plan="pro"]')
    pro.locator(".site-quantity").fill("1")
    pro.locator(".choose-plan").click()
    page.wait_for_url("**/c/pay/**")
    checkout_url = page.url

    # The card needs 3-D Secure: the challenge page comes first, nothing is charged yet.
    page.fill("#email", "sca@example.com")
    page.fill("#card-number", THREE_D_SECURE)
    page.click("#pay")
    page.wait_for_url("**/3ds")
    expect(page.locator("#challenge-title")).to_have_text("3D Secure 2 Test Page")
    expect(page.locator("#challenge-amount")).to_have_text("$98.00 / month")
    expect(page.locator("#challenge-card")).to_contain_text("3155")
    expect(page.get_by_role("button", name="Complete")).to_be_visible()
    shot(page, "23-3ds-challenge")
    assert org_subscriptions(stripe, "org_other") == []

    # Fail: back on Checkout with the authentication error; the session is still open.
    page.get_by_role("button", name="Fail").click()
    expect(page.locator("#error")).to_have_text(
        "We are unable to authenticate your payment method. Please choose a different payment method and try again."
    )
    expect(page.locator("#pay")).to_be_visible()
    expect(page.locator("#email")).to_have_value("sca@example.com")
    shot(page, "24-3ds-failed")
    assert org_subscriptions(stripe, "org_other") == []
    page.goto(checkout_url)  # still payable
    expect(page.locator("#pay")).to_be_visible()

    # Try again and complete the challenge: subscribed, back on the app.
    page.fill("#card-number", THREE_D_SECURE)
    page.click("#pay")
    page.wait_for_url("**/3ds")
    page.get_by_role("button", name="Complete").click()
    page.wait_for_url("**/app/settings?billing=success")
    expect(page.locator("#status-state")).to_have_text("active")
    expect(page.locator("#status-plan")).to_have_attribute("data-plan", "pro")
    expect(page.locator("#limit-sites")).to_have_text("3")
    shot(page, "25-3ds-completed")
    (subscription,) = org_subscriptions(stripe, "org_other")
    assert subscription["status"] == "active"
    (invoice,) = paid_invoices(stripe, subscription["customer"])
    assert invoice["amount_paid"] == 9800

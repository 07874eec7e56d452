"""The return from Checkout against `make dev` with Stripe's webhook held back for 10 seconds: the page
asks the backend to read Stripe (POST /billing/sync) and shows the paid plan on its first render."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.helpers import (
    PAY,
    deliveries,
    hold_webhooks,
    record_status_history,
    session_id,
    shot,
    status_history,
    use_token,
    wait_for,
)

# Long enough that a plan shown before it ends cannot have come from the webhook, even on a busy
# machine where the first request to a function starts its process.
HOLD_SECONDS = 20


def test_a_held_webhook_does_not_delay_the_paid_plan(page: Page, dev_stack: dict[str, Any]) -> None:
    gateway, stripe = dev_stack["gateway"], dev_stack["stripe"]
    record_status_history(page.context)
    page.goto(f"{gateway}/")
    use_token(page, "Demo org admin")
    expect(page.locator("#status-state")).to_have_text("none")
    page.locator('article.plan[data-plan="pro"] .choose-plan').click()
    page.wait_for_url("**/c/pay/**")
    checkout = session_id(page.url)

    hold_webhooks(stripe, HOLD_SECONDS)
    held_at = time.monotonic()
    page.fill("#card-number", PAY)
    page.click("#pay")
    page.wait_for_url("**/app/settings?billing=success")
    # The paid plan, long before the held webhook could have brought it...
    expect(page.locator("#status-state")).to_have_text("active", timeout=12_000)
    expect(page.locator("#status-plan")).to_have_attribute("data-plan", "pro")
    expect(page.locator("#limit-sites")).to_have_text("2")
    expect(page.locator("#return-banner")).to_contain_text("It is active now.")
    assert time.monotonic() - held_at < HOLD_SECONDS - 2
    # ...while Stripe has not delivered a single event of this checkout yet.
    (completed,) = [d for d in deliveries(stripe) if d["type"] == "checkout.session.completed" and d["object_id"] == checkout]
    assert (completed["attempts"], completed["pending"]) == (0, True)
    # The first plan this page ever rendered was the paid one.
    assert status_history(page) == ["active"]
    shot(page, "31-paid-before-the-webhook")

    # Once the hold ends the webhook arrives, and changes nothing visible.
    wait_for(
        lambda: all(d["delivered"] for d in deliveries(stripe)),
        timeout=HOLD_SECONDS + 20,
        what="every held webhook delivered",
    )
    assert time.monotonic() - held_at >= HOLD_SECONDS
    use_token(page, "Demo org admin")
    expect(page.locator("#status-state")).to_have_text("active")
    expect(page.locator("#status-plan")).to_have_attribute("data-plan", "pro")

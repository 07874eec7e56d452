"""Plan changes are paid first, in a real browser against `make dev`: an upgrade on a card that declines
leaves the plan and entitlements as they were and says why (then paying the invoice with another card
applies it); an upgrade on a card that needs 3-D Secure applies once the challenge on Stripe's hosted
invoice page is completed, and the page shows it by asking the backend to read Stripe, webhook or not
(while one that removes the per-site add-on, which Stripe makes only if paid at once, is not made at all,
and the page says so)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.helpers import (
    ALWAYS_THREE_D_SECURE,
    DECLINES_LATER,
    PAY,
    change_card_in_portal,
    deliveries,
    hold_webhooks,
    item_amounts,
    org_subscriptions,
    preview_and_confirm,
    shot,
    stripe_get,
    subscribe,
    use_token,
    wait_for_webhooks,
)

PRO_3_SITES = {7900: 1, 1900: 3}  # base price and per-site price (cents) -> quantity
ENTERPRISE_4_SITES = {19900: 1, 900: 4}
ENTERPRISE_1_SITE = {19900: 1, 900: 1}
PRO_1_SITE = {7900: 1, 1900: 1}
HOLD_SECONDS = 60


def invoice_state(stripe: str, invoice_id: str) -> tuple[str, int, int]:
    """(status, amount_due, amount_paid): only these fields, so a failed assert prints no hosted URL."""
    invoice = stripe_get(stripe, f"/v1/invoices/{invoice_id}")
    return str(invoice["status"]), int(invoice["amount_due"]), int(invoice["amount_paid"])


def stripe_state(stripe: str, org: str) -> tuple[str, dict[int, int], bool, str]:
    """(status, what its items bill, whether an update waits for payment, latest invoice id)."""
    (subscription,) = org_subscriptions(stripe, org)
    pending = subscription["pending_update"] is not None
    return str(subscription["status"]), item_amounts(subscription), pending, str(subscription["latest_invoice"])


def test_a_declined_upgrade_changes_nothing_and_says_why(page: Page, dev_stack: dict[str, Any]) -> None:
    gateway, stripe = dev_stack["gateway"], dev_stack["stripe"]
    page.goto(f"{gateway}/")
    use_token(page, "Demo org admin")
    expect(page.locator("#status-state")).to_have_text("none")
    subscribe(page, "pro", 3)
    expect(page.locator("#limit-sites")).to_have_text("5")

    # The card on file becomes one that saves fine but declines every charge.
    change_card_in_portal(page, DECLINES_LATER)

    # Upgrade: declined. The page says so and why; plan and entitlements are as before.
    due_now = preview_and_confirm(page, "enterprise", 4)
    assert due_now > 0
    payment = page.locator("#payment")
    expect(payment).to_be_visible()
    expect(page.locator("#payment-message")).to_have_text(
        "Your card was declined, so your plan has not changed. Pay the invoice with another card: "
        "the change applies once it is paid. (payment_failed)"
    )
    pay_link = page.locator("#pay-invoice")
    expect(pay_link).to_have_text("Pay the invoice")
    expect(pay_link).to_have_attribute("target", "_blank")
    expect(page.locator("#pending-change")).to_contain_text(
        "Upgrade to Enterprise with 4 extra sites pending payment: your plan stays Pro until its invoice is paid"
    )
    expect(page.locator("#status-plan")).to_have_attribute("data-plan", "pro")
    expect(page.locator("#status-state")).to_have_text("active")
    expect(page.locator("#limit-sites")).to_have_text("5")
    expect(page.locator('#features [data-feature="analytics"]')).to_have_text("Analytics")
    expect(page.locator('#features [data-feature="api_gateway"]')).to_have_count(0)
    expect(page.locator('#limits [data-limit="storage_gb"]')).to_have_text("10 GB")
    expect(page.locator("#error")).to_be_empty()
    expect(page.locator('#invoices tr.invoice .invoice-status[data-status="open"]')).to_have_count(1)
    shot(page, "41-upgrade-declined")

    # Stripe agrees: the subscription still bills Pro with 3 sites; the upgrade waits for its invoice.
    status, items, pending, invoice_id = stripe_state(stripe, "org_demo")
    assert (status, items, pending) == ("active", PRO_3_SITES, True)
    assert invoice_state(stripe, invoice_id) == ("open", due_now, 0)

    # A reload still shows it as pending, not granted.
    page.reload()
    expect(page.locator("#pending-change")).to_contain_text("Upgrade to Enterprise with 4 extra sites pending payment")
    expect(page.locator("#status-plan")).to_have_attribute("data-plan", "pro")
    expect(page.locator("#limit-sites")).to_have_text("5")

    # Another change while that invoice is unpaid is refused, with the invoice to pay.
    page.select_option("#change-plan-select", "enterprise")
    page.fill("#change-sites", "1")
    page.click("#preview-change")
    expect(page.locator("#payment-message")).to_contain_text("An invoice of this subscription is unpaid")
    expect(page.locator("#payment-message")).to_contain_text("(payment_outstanding)")
    expect(pay_link).to_have_text("Pay the open invoice")
    expect(page.locator("#preview-result")).to_be_empty()

    # Pay the invoice with another card on Stripe's hosted page (a new tab): the upgrade applies.
    with page.context.expect_page() as opened:
        pay_link.click()
    invoice_page = opened.value
    invoice_page.set_default_timeout(15_000)
    expect(invoice_page.locator("#invoice-status")).to_have_text("Open")
    expect(invoice_page.locator("#error")).to_have_text("Your card was declined.")
    invoice_page.fill("#card-number", PAY)
    invoice_page.click("#pay-card")
    expect(invoice_page.locator("#invoice-status")).to_have_text("Paid")
    invoice_page.close()
    page.bring_to_front()
    expect(page.locator("#status-plan")).to_have_attribute("data-plan", "enterprise", timeout=15_000)
    expect(page.locator("#limit-sites")).to_have_text("9")
    expect(page.locator('#features [data-feature="api_gateway"]')).to_have_count(1)
    expect(page.locator("#pending-change")).to_be_hidden()
    expect(payment).to_be_hidden()
    expect(page.locator("#return-banner")).to_have_text("Payment received: your plan is now Enterprise with 4 extra sites.")
    shot(page, "42-declined-then-paid")
    status, items, pending, paid_invoice = stripe_state(stripe, "org_demo")
    assert (status, items, pending, paid_invoice) == ("active", ENTERPRISE_4_SITES, False, invoice_id)
    assert invoice_state(stripe, invoice_id) == ("paid", due_now, due_now)  # exactly what the preview said


def test_an_upgrade_needing_3d_secure_completes_after_the_challenge(page: Page, dev_stack: dict[str, Any]) -> None:
    gateway, stripe = dev_stack["gateway"], dev_stack["stripe"]
    page.goto(f"{gateway}/")
    use_token(page, "Other org admin")
    expect(page.locator("#status-state")).to_have_text("none")
    subscribe(page, "pro", 1)
    change_card_in_portal(page, ALWAYS_THREE_D_SECURE)
    _, _, _, first_invoice = stripe_state(stripe, "org_other")
    (subscription_id,) = [sub["id"] for sub in org_subscriptions(stripe, "org_other")]

    # Enterprise with its extra site: the bank wants 3-D Secure, the change waits for it. Nothing is granted yet.
    due_now = preview_and_confirm(page, "enterprise", 1)
    expect(page.locator("#payment-message")).to_have_text(
        "Your bank asks you to confirm this payment (3-D Secure). Your plan has not changed yet: "
        "it changes once the payment is confirmed. (payment_requires_action)"
    )
    pay_link = page.locator("#pay-invoice")
    expect(pay_link).to_have_text("Confirm the payment")
    expect(page.locator("#check-payment")).to_be_visible()
    expect(page.locator("#pending-change")).to_contain_text("Upgrade to Enterprise with 1 extra site pending payment")
    expect(page.locator("#status-plan")).to_have_attribute("data-plan", "pro")
    expect(page.locator("#limit-sites")).to_have_text("3")
    expect(page.locator('#features [data-feature="api_gateway"]')).to_have_count(0)
    expect(page.locator("#error")).to_be_empty()
    shot(page, "43-upgrade-needs-3ds")
    status, items, pending, invoice_id = stripe_state(stripe, "org_other")
    assert (status, items, pending) == ("active", PRO_1_SITE, True)
    assert invoice_id != first_invoice
    assert invoice_state(stripe, invoice_id) == ("open", due_now, 0)

    # From here on Stripe's webhooks are held back: only the page's POST /billing/sync can bring the change.
    hold_webhooks(stripe, HOLD_SECONDS)
    try:
        # The hosted invoice page (a new tab): pay with the saved card, pass the challenge.
        with page.context.expect_page() as opened:
            pay_link.click()
        invoice_page = opened.value
        invoice_page.set_default_timeout(15_000)
        expect(invoice_page.locator("#action-required")).to_have_text("Your bank asks you to confirm this payment.")
        expect(invoice_page.locator("#saved-card")).to_contain_text("3184")
        invoice_page.click("#pay-saved")
        invoice_page.wait_for_url("**/3ds")
        expect(invoice_page.locator("#challenge-title")).to_have_text("3D Secure 2 Test Page")
        expect(invoice_page.locator("#challenge-card")).to_contain_text("3184")
        shot(invoice_page, "44-upgrade-3ds-challenge")
        invoice_page.get_by_role("button", name="Complete").click()
        expect(invoice_page.locator("#invoice-status")).to_have_text("Paid")
        invoice_page.close()

        # Back on the app: the new plan shows, with every webhook of the payment still held.
        page.bring_to_front()
        expect(page.locator("#status-plan")).to_have_attribute("data-plan", "enterprise", timeout=15_000)
        expect(page.locator("#limit-sites")).to_have_text("6")
        expect(page.locator('#features [data-feature="api_gateway"]')).to_have_count(1)
        expect(page.locator("#pending-change")).to_be_hidden()
        expect(page.locator("#payment")).to_be_hidden()
        expect(page.locator("#return-banner")).to_have_text("Payment received: your plan is now Enterprise with 1 extra site.")
        applied = [
            d
            for d in deliveries(stripe)
            if d["type"] == "customer.subscription.pending_update_applied" and d["object_id"] == subscription_id
        ]
        assert [(d["attempts"], d["pending"]) for d in applied] == [(0, True)]
        shot(page, "45-upgrade-3ds-completed")
    finally:
        hold_webhooks(stripe, 0)
    status, items, pending, paid_invoice = stripe_state(stripe, "org_other")
    assert (status, items, pending, paid_invoice) == ("active", ENTERPRISE_1_SITE, False, invoice_id)
    assert invoice_state(stripe, invoice_id) == ("paid", due_now, due_now)

    # The webhooks arrive once released, and change nothing visible.
    wait_for_webhooks(stripe, timeout=30)
    use_token(page, "Other org admin")
    expect(page.locator("#status-plan")).to_have_attribute("data-plan", "enterprise")
    expect(page.locator("#limit-sites")).to_have_text("6")
    expect(page.locator("#pending-change")).to_be_hidden()

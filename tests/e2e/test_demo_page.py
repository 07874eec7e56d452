"""The demo page in a real browser against `make dev`: the free tier is not the paid Starter plan,
features and limits show the catalog's display names, a member is offered no action only billing
admins may take, and each invoice shows its service period, with links that open the emulator's
hosted invoice page and PDF."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect

from tenant_billing.catalog import get_catalog
from tests.e2e.helpers import org_subscriptions, page_date, shot, subscribe, use_token

# Every control only a billing admin may use, while the subscription runs (Resume: while it is cancelling).
ADMIN_CONTROLS = ("#manage-subscription", "#cancel-at-period-end", "#cancel-now", "#change-plan", ".choose-plan")


def test_without_a_subscription_the_page_shows_the_free_tier_by_display_names(page: Page, dev_stack: dict[str, Any]) -> None:
    catalog = get_catalog()
    page.goto(f"{dev_stack['gateway']}/")
    use_token(page, "Demo org admin")  # this module's own stack: org_demo starts without a subscription
    expect(page.locator("#status-state")).to_have_text("none")

    # The free tier: the fallback plan's entitlements at no charge, not its paid plan marked current.
    expect(page.locator("#status-plan")).to_have_text("Free")
    expect(page.locator("#free-tier-note")).to_contain_text("No paid subscription")
    expect(page.locator("#plans .plan.current")).to_have_count(0)
    fallback = page.locator(f'article.plan[data-plan="{catalog.fallback_plan}"] .choose-plan')
    expect(fallback).to_be_enabled()
    expect(fallback).to_have_text(f"Choose {catalog.plans[catalog.fallback_plan].name}")

    # Features and limits by the catalog's display names (and units), in the status and on every plan card.
    expect(page.locator("#features li")).to_have_count(len(catalog.plans[catalog.fallback_plan].current.features))
    for item in page.locator("#features li, #plans li").all():
        expect(item).to_have_text(catalog.feature_names[str(item.get_attribute("data-feature"))])
    storage = catalog.limit_names["storage_gb"]
    expect(page.locator('#limits dd[data-limit="storage_gb"]')).to_have_text(
        f"{catalog.plans[catalog.fallback_plan].current.limits['storage_gb']} {storage.unit}"
    )
    expect(page.locator("#limits dt").first).to_have_text(catalog.limit_names["sites"].name)
    for key in (*catalog.feature_names, *catalog.limit_names):
        if "_" in key:  # a raw key ("storage_gb"), not a word the page also uses ("sites")
            expect(page.locator("main")).not_to_contain_text(key)
    shot(page, "51-free-tier")

    # A member sees the same, and no Choose button.
    use_token(page, "Demo org member")
    expect(page.locator("#status-plan")).to_have_text("Free")
    expect(page.locator(".choose-plan:visible")).to_have_count(0)
    expect(page.locator("#manage-subscription")).to_be_hidden()
    expect(page.locator("#member-note")).to_be_visible()


def test_a_paid_invoice_shows_its_period_and_opens_on_the_emulator(page: Page, dev_stack: dict[str, Any]) -> None:
    gateway, stripe = dev_stack["gateway"], dev_stack["stripe"]
    page.goto(f"{gateway}/")
    use_token(page, "Demo org admin")
    expect(page.locator("#status-state")).to_have_text("none")
    subscribe(page, "pro", 0)

    # Now a subscribed plan is current, and only that one.
    expect(page.locator("#status-plan")).to_have_text("Pro")
    expect(page.locator("#free-tier-note")).to_be_hidden()
    expect(page.locator("#plans .plan.current")).to_have_attribute("data-plan", "pro")

    # The invoice's service period is its subscription item's period: start - end, not one date.
    (subscription,) = org_subscriptions(stripe, "org_demo")
    item = subscription["items"]["data"][0]
    row = page.locator("#invoices tr.invoice")
    expect(row).to_have_count(1)
    expect(row.locator(".invoice-period")).to_have_text(
        f"{page_date(item['current_period_start'])} \N{EN DASH} {page_date(item['current_period_end'])}"
    )
    number = row.locator("td").first.inner_text()
    shot(page, "52-invoice-period")

    # Its links are the emulator's (bearer URLs: compared by host and path, never printed).
    view, pdf = row.get_by_role("link", name="View"), row.get_by_role("link", name="PDF")
    for link in (view, pdf):
        parts = urlsplit(str(link.get_attribute("href")))
        assert f"{parts.scheme}://{parts.netloc}" == stripe and parts.hostname == "127.0.0.1", parts.netloc
        assert parts.path.startswith("/i/"), "an invoice link outside the emulator's invoice pages"
    with page.expect_popup() as opened:
        view.click()
    hosted = opened.value
    expect(hosted.locator("#invoice-number")).to_have_text(number)
    expect(hosted.locator("#invoice-status")).to_have_text("Paid")
    assert urlsplit(hosted.url).hostname == "127.0.0.1"
    hosted.close()
    document = page.request.get(str(pdf.get_attribute("href")))
    assert (document.status, document.headers["content-type"]) == (200, "application/pdf")
    assert document.body().startswith(b"%PDF-") and f"(Invoice {number})".encode() in document.body()


def test_a_member_is_offered_no_action_only_billing_admins_may_take(page: Page, dev_stack: dict[str, Any]) -> None:
    page.goto(f"{dev_stack['gateway']}/")
    use_token(page, "Demo org admin")
    expect(page.locator("#status-state")).to_have_text("active")  # the subscription of the test above
    for control in ADMIN_CONTROLS:
        expect(page.locator(control).first).to_be_visible()

    use_token(page, "Demo org member")
    expect(page.locator("#status-state")).to_have_text("active")
    expect(page.locator("#invoices tr.invoice")).to_have_count(1)  # any member may read the plan and invoices
    expect(page.locator("#member-note")).to_be_visible()
    for control in ADMIN_CONTROLS:
        expect(page.locator(f"{control}:visible")).to_have_count(0)
    shot(page, "53-member")

    # While a cancellation is scheduled, Resume is the admin's alone too.
    use_token(page, "Demo org admin")
    page.click("#cancel-at-period-end")
    expect(page.locator("#resume")).to_be_visible()
    use_token(page, "Demo org member")
    expect(page.locator("#period")).to_contain_text("Cancels on ")
    expect(page.locator("#resume")).to_be_hidden()
    use_token(page, "Demo org admin")
    page.click("#resume")
    expect(page.locator("#cancel-at-period-end")).to_be_visible()

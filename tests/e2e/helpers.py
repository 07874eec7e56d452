"""What the browser tests share: the callers, screenshots, and the Stripe emulator behind `make dev`
(its API, read with the fake's test key, and its /_emulator hooks)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.conftest import SCREENSHOTS
from tests.stripe_fake import TEST_API_KEY

CALLERS = {"Demo org admin": "0", "Demo org member": "1", "Other org admin": "2"}  # make dev's token order
ORG_METADATA_KEY = "organization_id"  # what checkout puts on the subscription's metadata
PAY = "4242 4242 4242 4242"
THREE_D_SECURE = "4000 0025 0000 3155"
DECLINES_LATER = "4000 0000 0000 0341"  # saves fine (the portal's "Update payment method"), every charge declines
ALWAYS_THREE_D_SECURE = "4000 0027 6000 3184"  # every charge asks for 3-D Secure, saved or not

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# Records every text #status-state shows on a page, from the first one on: the first render included.
STATUS_HISTORY_SCRIPT = """
(() => {
  const seen = [];
  window.__statusHistory = seen;
  const record = () => {
    const text = document.getElementById("status-state")?.textContent;
    if (text && text !== "\u2026" && seen[seen.length - 1] !== text) seen.push(text);
  };
  new MutationObserver(record).observe(document, { subtree: true, childList: true, characterData: true });
})();
"""


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def use_token(page: Page, label: str) -> None:
    page.select_option("#token-select", value=CALLERS[label])
    page.click("#refresh")


def page_date(timestamp: int) -> str:
    """A timestamp as the demo page writes dates: "January 1, 2027" (UTC)."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return f"{moment:%B} {moment.day}, {moment.year}"


def record_status_history(context: BrowserContext) -> None:
    context.add_init_script(STATUS_HISTORY_SCRIPT)


def status_history(page: Page) -> list[str]:
    history: list[str] = page.evaluate("window.__statusHistory")
    return history


def _json(request: urllib.request.Request) -> Any:
    with _OPENER.open(request, timeout=10) as response:
        return json.loads(response.read())


def stripe_list(stripe: str, path: str, **params: str) -> list[dict[str, Any]]:
    """Every object of a Stripe list endpoint of the emulator (one page of 100 is enough here)."""
    request = urllib.request.Request(f"{stripe}{path}?{urlencode({'limit': '100', **params})}")
    request.add_header("Authorization", f"Bearer {TEST_API_KEY}")
    data: list[dict[str, Any]] = _json(request)["data"]
    return data


def stripe_get(stripe: str, path: str) -> dict[str, Any]:
    """One object of the emulator's Stripe API, e.g. /v1/subscriptions/sub_... (read it field by field in
    asserts: invoices carry bearer URLs that a failed assert must not print)."""
    request = urllib.request.Request(f"{stripe}{path}")
    request.add_header("Authorization", f"Bearer {TEST_API_KEY}")
    obj: dict[str, Any] = _json(request)
    return obj


def stripe_post(stripe: str, path: str, **params: str) -> dict[str, Any]:
    """A write to the emulator's Stripe API with the test key, as the Dashboard or a script would make it."""
    request = urllib.request.Request(f"{stripe}{path}", data=urlencode(params).encode(), method="POST")
    request.add_header("Authorization", f"Bearer {TEST_API_KEY}")
    obj: dict[str, Any] = _json(request)
    return obj


def org_subscriptions(stripe: str, org: str) -> list[dict[str, Any]]:
    """The organization's subscriptions in Stripe, ended ones included."""
    return [sub for sub in stripe_list(stripe, "/v1/subscriptions", status="all") if sub["metadata"].get(ORG_METADATA_KEY) == org]


def paid_invoices(stripe: str, customer: str) -> list[dict[str, Any]]:
    return [invoice for invoice in stripe_list(stripe, "/v1/invoices", customer=customer) if invoice["amount_paid"] > 0]


def deliveries(stripe: str) -> list[dict[str, Any]]:
    """The emulator's webhook deliveries: event_id, type, object_id, status, attempts, delivered, pending, error."""
    listed: list[dict[str, Any]] = _json(urllib.request.Request(f"{stripe}/_emulator/deliveries"))
    return listed


def hold_webhooks(stripe: str, seconds: float) -> None:
    request = urllib.request.Request(f"{stripe}/_emulator/hold-webhooks?seconds={seconds}", data=b"", method="POST")
    # The answer is what is left of the hold when it is written: a busy machine takes a moment.
    answer = _json(request)
    assert set(answer) == {"held_for_seconds"} and seconds - 1 < answer["held_for_seconds"] <= seconds


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def session_id(checkout_url: str) -> str:
    return checkout_url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def wait_for_webhooks(stripe: str, timeout: float = 15) -> None:
    """Wait until the emulator has delivered every webhook so far (it delivers them after the redirect)."""
    wait_for(lambda: not any(d["pending"] for d in deliveries(stripe)), timeout, "every webhook delivered")


def subscribe(page: Page, plan: str, sites: int, card: str = PAY) -> None:
    """From the demo page, through the emulator's Checkout with `card`, back to the paid plan."""
    card_el = page.locator(f'article.plan[data-plan="{plan}"]')
    if sites:
        card_el.locator(".site-quantity").fill(str(sites))
    card_el.locator(".choose-plan").click()
    page.wait_for_url("**/c/pay/**")
    page.fill("#card-number", card)
    page.click("#pay")
    page.wait_for_url("**/app/settings?billing=success")
    expect(page.locator("#status-state")).to_have_text("active")
    expect(page.locator("#status-plan")).to_have_attribute("data-plan", plan)


def change_card_in_portal(page: Page, card: str) -> None:
    """Manage subscription -> the emulated portal's "Update payment method" -> back on the demo page."""
    page.click("#manage-subscription")
    page.wait_for_url("**/p/session/**")
    page.fill("#card-number", card)
    page.click("#update-card")
    expect(page.locator("#payment-method")).to_contain_text(card.replace(" ", "")[-4:])
    page.click("#return")
    page.wait_for_url("**/app/billing")
    expect(page.locator("#status-state")).to_have_text("active")


def preview_and_confirm(page: Page, plan: str, sites: int, interval: str = "month") -> int:
    """Preview a change on the demo page, confirm it; returns the previewed amount due now, in cents."""
    page.select_option("#change-plan-select", plan)
    page.select_option("#change-interval", interval)
    if page.locator("#change-sites").is_enabled():
        page.fill("#change-sites", str(sites))
    page.click("#preview-change")
    result = page.locator("#preview-result")
    expect(result).to_contain_text("Due now: $")
    due_now = result.inner_text().split("Due now: $", 1)[1].split(" ", 1)[0]
    expect(page.locator("#confirm-change")).to_be_enabled()
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/billing/subscription")) as sent:
        page.click("#confirm-change")
    # The preview's quote and nothing the server should price itself (no amount, no prorationDate).
    body = sent.value.post_data_json
    assert isinstance(body, dict)
    assert sorted(body) == ["interval", "plan", "previewId", "siteQuantity"], sorted(body)
    assert (body["plan"], body["siteQuantity"], body["interval"]) == (plan, sites, interval)
    return round(float(due_now.replace(",", "")) * 100)


def item_amounts(subscription: dict[str, Any]) -> dict[int, int]:
    """{unit amount: quantity} of a subscription's items: which plan and how many sites it bills."""
    return {int(item["price"]["unit_amount"]): int(item["quantity"]) for item in subscription["items"]["data"]}

"""A local Stripe: the fake's API, hosted Checkout and Customer Portal pages, and signed webhooks.

One HTTP server (127.0.0.1 by default) serves
- `/v1/...`: the Stripe API (FakeStripe.handle), for STRIPE_API_BASE / StripeClient(base_addresses=...);
- `/c/pay/{checkout_session_id}`: a hosted Checkout page (pay with a test card; 4000 0025 0000 3155
  and 4000 0027 6000 3184 first go through a 3-D Secure challenge at `/c/pay/{id}/3ds`);
- `/p/session/{token}`: a hosted Customer Portal page (cancel at period end, renew, cancel now,
  update the card, invoice history); its "cancel at period end" is Stripe's for flexible billing
  mode: `cancel_at` set to the period end, `cancel_at_period_end` false;
- `/i/{token}`: the hosted invoice page of each finalized invoice (`hosted_invoice_url`): the invoice,
  a Pay button (saved card) and a card form; a card that needs 3-D Secure goes through the challenge
  at `/i/{token}/3ds` (Complete pays it, applying a pending update; Fail leaves it open);
- `/i/{token}/pdf`: the invoice's PDF (`invoice_pdf`), a one-page document of the same invoice;
- `/3d_secure_2/hosted?payment_intent=...&payment_intent_client_secret=...[&return_url=...]`: the
  challenge of a PaymentIntent in `requires_action` (its `next_action.use_stripe_sdk.stripe_js`), what
  Stripe.js shows when a frontend confirms the payment in place; it redirects to `return_url` with
  `payment_intent`, `payment_intent_client_secret` and `redirect_status` (succeeded / failed);
- `/_emulator/deliveries`: every webhook delivery so far, pending ones included (JSON), for tests;
- `POST /_emulator/hold-webhooks?seconds=10`: start no delivery attempt for that long (0 releases).

Every event the fake emits, whether a page action (paying, cancelling in the portal), an API call
(`POST /v1/checkout/sessions/{id}/expire`, a subscription update) or Stripe's own clock (a session
reaching `expires_at`) caused it, is POSTed to the webhook URL, signed like Stripe signs it, by a
background worker: as with Stripe, after the browser was redirected, not before, and retried with
Stripe's backoff scaled down (webhook_delivery). Plain HTML, no JavaScript, no assets.

The modules: emulator_server (HTTP and routing), emulator_state (the fake's views, open challenges),
webhook_delivery; checkout_requests, portal_requests and payment_requests (what each page does);
checkout_pages, portal_page, invoice_page and hosted_page_layout (their HTML).

    server, base_url, fake = start_emulator(webhook_url="http://127.0.0.1:3001/webhook", webhook_secret="whsec_...")
    ...
    server.shutdown(); server.server_close()   # stops the delivery worker too (pending deliveries are dropped)
"""

from __future__ import annotations

import threading

from functions.local_stack.emulator_server import EmulatorRequestHandler, EmulatorServer
from functions.local_stack.emulator_state import StripeEmulator
from functions.local_stack.hosted_page_layout import CHECKOUT_PATH, INVOICE_PATH, PORTAL_PATH
from tests.stripe_fake import FakeStripe


def _bind(host: str, port: int) -> tuple[EmulatorServer, str]:
    server = EmulatorServer((host, port), EmulatorRequestHandler)
    bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
    if bound_host in ("0.0.0.0", ""):  # noqa: S104 - the URL browsers use for a wildcard bind
        bound_host = "127.0.0.1"
    return server, f"http://{bound_host}:{bound_port}"


def _start(server: EmulatorServer, emulator: StripeEmulator) -> None:
    server.emulator = emulator
    emulator.start()
    # A short poll interval makes shutdown() quick (tests start and stop many servers).
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="stripe-emulator", daemon=True)
    thread.start()


def serve_emulator(
    fake: FakeStripe, *, webhook_url: str, webhook_secret: str, host: str = "127.0.0.1", port: int = 0
) -> tuple[EmulatorServer, str]:
    """Serve `fake` (API, hosted pages, webhooks) in a daemon thread: (server, base URL).

    Stop with server.shutdown() and server.server_close(). The fake's URL bases should point at
    `{base}/c/pay/`, `{base}/p/session/`, `{base}/i/` (hosted invoices and their PDFs) and `{base}/`
    (hooks, for 3-D Secure): start_emulator does that for you.
    """
    server, base_url = _bind(host, port)
    _start(server, StripeEmulator(fake, webhook_url=webhook_url, webhook_secret=webhook_secret, base_url=base_url))
    return server, base_url


def start_emulator(
    *,
    webhook_url: str,
    webhook_secret: str,
    host: str = "127.0.0.1",
    port: int = 0,
    fake: FakeStripe | None = None,
) -> tuple[EmulatorServer, str, FakeStripe]:
    """Bind, point the fake's Checkout, portal, hosted invoice, invoice PDF and 3-D Secure URLs at
    this server (creating the fake if none), serve."""
    server, base_url = _bind(host, port)
    try:
        if fake is None:
            fake = FakeStripe()
        with fake._lock:
            fake.checkout_url_base = f"{base_url}{CHECKOUT_PATH}"
            fake.portal_url_base = f"{base_url}{PORTAL_PATH}"
            fake.invoice_url_base = f"{base_url}{INVOICE_PATH}"
            fake.invoice_pdf_url_base = f"{base_url}{INVOICE_PATH}"
            fake.hooks_url_base = f"{base_url}/"
        _start(server, StripeEmulator(fake, webhook_url=webhook_url, webhook_secret=webhook_secret, base_url=base_url))
    except BaseException:
        server.server_close()
        raise
    return server, base_url, fake

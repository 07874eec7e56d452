"""The Stripe emulator's HTTP server: the fake's API under /v1/, the hosted pages, and /_emulator/.

Every request may emit events (an API call, a page action), so each one ends by waking the
webhook worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from functools import partial
from http.server import BaseHTTPRequestHandler
from typing import cast
from urllib.parse import unquote, urlsplit

from functions.local_stack import checkout_requests, payment_requests, portal_requests
from functions.local_stack.emulator_log import log
from functions.local_stack.emulator_responses import EarlyResponse, Response, get_or_post, json_value, message, post_only
from functions.local_stack.emulator_state import StripeEmulator
from functions.local_stack.hosted_page_layout import CHECKOUT_PATH, INVOICE_PATH, PORTAL_PATH, THREE_D_SECURE_PATH
from functions.local_stack.invoice_page import invoice_pdf
from functions.local_stack.page_forms import parse_form
from functions.local_stack.quiet_server import QuietThreadingHTTPServer
from functions.local_stack.webhook_delivery import MAX_HOLD_SECONDS
from tests.stripe_fake import SimulatedConnectionError

MAX_FORM_BYTES = 64 * 1024


class EmulatorServer(QuietThreadingHTTPServer):
    """The local stack's server that also carries its emulator (`server.emulator.deliveries`).

    shutdown() also stops the emulator's webhook worker.
    """

    emulator: StripeEmulator

    def shutdown(self) -> None:
        emulator = getattr(self, "emulator", None)
        if emulator is not None:
            emulator.stop()
        super().shutdown()


def _loggable(path: str) -> str:
    """A request path for a log line: Checkout, portal and invoice paths are bearer URLs, so their ids are cut."""
    for prefix in (CHECKOUT_PATH, PORTAL_PATH, INVOICE_PATH):
        if path.startswith(prefix):
            return prefix + "..."
    return path if path.startswith(("/_emulator/", "/v1/")) else "(a page)"


def _invoice_pdf(emulator: StripeEmulator, token: str) -> Response:
    """The invoice's PDF (`invoice_pdf`): shown in the browser, as Stripe's opens."""
    view = emulator.invoice_view(token)
    if view is None:
        return message(404, "Invoice not found", "This invoice link is invalid.")
    headers = {"Content-Type": "application/pdf", "Content-Disposition": "inline", "Cache-Control": "no-store"}
    return 200, headers, invoice_pdf(view[0])


def _hosted_page(emulator: StripeEmulator, method: str, path: str, body: bytes) -> Response | None:
    """The Checkout, portal or hosted invoice page (or action, or PDF) at `path`, or None when there is none."""
    if not path.startswith((CHECKOUT_PATH, PORTAL_PATH, INVOICE_PATH)):
        return None
    segments = [unquote(segment) for segment in path.strip("/").split("/")]
    form = partial(parse_form, body)  # parsed only by the actions that read it
    match segments:
        case ["c", "pay", session_id]:
            return get_or_post(
                method,
                lambda: checkout_requests.show_checkout(emulator, session_id),
                lambda: checkout_requests.pay_checkout(emulator, session_id, form()),
            )
        case ["c", "pay", session_id, "3ds"]:
            return get_or_post(
                method,
                lambda: checkout_requests.show_checkout_challenge(emulator, session_id),
                lambda: checkout_requests.end_checkout_challenge(emulator, session_id, form().get("action", "")),
            )
        case ["p", "session", token] if method in ("GET", "HEAD"):
            return portal_requests.show_portal(emulator, token)
        case ["p", "session", token, "subscriptions", subscription_id, action]:
            return post_only(method, lambda: portal_requests.change_subscription(emulator, token, subscription_id, action))
        case ["p", "session", token, "payment-method"]:
            return post_only(method, lambda: portal_requests.update_card(emulator, token, form()))
        case ["i", token]:
            return get_or_post(
                method,
                lambda: payment_requests.show_invoice(emulator, token),
                lambda: payment_requests.pay_invoice(emulator, token, form()),
            )
        case ["i", token, "pdf"] if method in ("GET", "HEAD"):
            return _invoice_pdf(emulator, token)
        case ["i", token, "3ds"]:
            return get_or_post(
                method,
                lambda: payment_requests.show_invoice_challenge(emulator, token),
                lambda: payment_requests.end_invoice_challenge(emulator, token, form().get("action", "")),
            )
    return None


def _route(emulator: StripeEmulator, method: str, path: str, query: str, body: bytes) -> Response:
    try:
        page = _hosted_page(emulator, method, path, body)
        if page is not None:
            return page
        if path == THREE_D_SECURE_PATH:
            params = parse_form(query.encode())
            return get_or_post(
                method,
                lambda: payment_requests.show_intent_challenge(emulator, params),
                lambda: payment_requests.end_intent_challenge(emulator, params, parse_form(body).get("action", "")),
            )
    except EarlyResponse as early:
        return early.response
    if path == "/_emulator/deliveries" and method in ("GET", "HEAD"):
        emulator.collect()  # what the fake emitted so far is listed, if only as pending
        return json_value(200, [asdict(delivery) for delivery in emulator.deliveries_snapshot()])
    if path == "/_emulator/hold-webhooks":
        return _hold(emulator, method, query, body)
    return message(404, "Page not found", "The Stripe emulator has no page at this address.")


def _hold(emulator: StripeEmulator, method: str, query: str, body: bytes) -> Response:
    """POST ?seconds=N (or a form field): no delivery attempt starts for N seconds; 0 releases."""
    if method == "POST":
        values = {**parse_form(body), **parse_form(query.encode())}
        try:
            emulator.hold(float(values.get("seconds", "")))
        except ValueError:
            reason = f"seconds must be a number between 0 and {MAX_HOLD_SECONDS:g}"
            return json_value(400, {"error": {"message": reason, "param": "seconds"}})
    elif method not in ("GET", "HEAD"):
        return json_value(405, {"error": {"message": "Use GET or POST."}})
    return json_value(200, {"held_for_seconds": round(emulator.held_for(), 3)})


class EmulatorRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Separate header and body writes: without this, Nagle's algorithm stalls each response ~40 ms.
    disable_nagle_algorithm = True
    server_version = "StripeEmulator/1.0"

    @property
    def emulator(self) -> StripeEmulator:
        return cast(EmulatorServer, self.server).emulator

    def _serve(self) -> None:
        try:
            self._serve_request()
        finally:
            # An API call or a page action may have emitted events: the worker picks them up now.
            self.emulator.notify()

    def _serve_request(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        parts = urlsplit(self.path)
        if parts.path.startswith("/v1/"):
            self._serve_api(parts.path, parts.query, self.rfile.read(length) if length else b"")
            return
        if length > MAX_FORM_BYTES:
            self.close_connection = True
            self._send(*message(413, "Request too large", "The form is too large."))
            return
        body = self.rfile.read(length) if length else b""
        try:
            response = _route(self.emulator, self.command, parts.path, parts.query, body)
        except Exception as error:
            log(f"error serving {self.command} {_loggable(parts.path)}: {type(error).__name__}")
            response = message(500, "Something went wrong", "The Stripe emulator failed on this request.")
        self._send(*response)

    def _serve_api(self, path: str, query: str, body: bytes) -> None:
        try:
            status, headers, payload = self.emulator.fake.handle(self.command, path, query, body, dict(self.headers))
        except SimulatedConnectionError:
            # Drop the connection without a response, as a network failure would.
            self.close_connection = True
            return
        self._send(status, headers, payload)

    def _send(self, status: int, headers: Mapping[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = _serve
    do_HEAD = _serve
    do_POST = _serve
    do_DELETE = _serve

    def log_message(self, format: str, *args: object) -> None:
        return None

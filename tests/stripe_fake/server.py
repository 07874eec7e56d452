"""Serve a FakeStripe over real HTTP (for STRIPE_API_BASE / StripeClient(base_addresses={"api": url}))."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.stripe_fake.errors import SimulatedConnectionError
from tests.stripe_fake.state import FakeStripe


def make_handler(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeStripe/1.0"
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every response.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            try:
                status, headers, payload = fake.handle(self.command, parts.path, parts.query, body, dict(self.headers))
            except SimulatedConnectionError:
                # Drop the connection without a response, as a network failure would.
                self.close_connection = True
                return
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _serve
        do_POST = _serve
        do_DELETE = _serve

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


def serve_in_thread(fake: FakeStripe, host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start serving `fake` in a daemon thread; returns the server (call shutdown() and server_close()) and its base URL."""
    server = ThreadingHTTPServer((host, port), make_handler(fake))
    server.daemon_threads = True
    # A short poll interval makes shutdown() quick (tests start and stop many servers).
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-stripe-server", daemon=True)
    thread.start()
    bound_host, bound_port = server.server_address[0], server.server_address[1]
    return server, f"http://{bound_host!s}:{bound_port}"

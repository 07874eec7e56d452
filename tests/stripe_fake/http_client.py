"""stripe-python adapters: an in-process HTTP client that serves requests from a FakeStripe."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import stripe

from tests.stripe_fake.constants import API_VERSION, TEST_API_KEY
from tests.stripe_fake.errors import SimulatedConnectionError
from tests.stripe_fake.state import FakeStripe


class CaseInsensitiveHeaders(dict[str, str]):
    """Response headers keyed in lower case and looked up case-insensitively (like requests' CaseInsensitiveDict)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__((name.lower(), value) for name, value in headers.items())

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class FakeStripeHTTPClient(stripe.HTTPClient):
    """Serves stripe-python's requests from `fake` in-process (any host; only the path and query count).

    Injected connection faults surface as stripe.APIConnectionError(should_retry=True), as with the real
    clients, so StripeClient(max_network_retries=...) retries them. Retry back-off sleeps are skipped
    unless `sleep=True`.
    """

    name = "fake"

    def __init__(self, fake: FakeStripe, *, sleep: bool = False) -> None:
        super().__init__()
        self.fake = fake
        self.sleep = sleep

    def _sleep_time_seconds(self, num_retries: int) -> float:
        return super()._sleep_time_seconds(num_retries) if self.sleep else 0.0

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        parts = urlsplit(url)
        if isinstance(post_data, str):
            body = post_data.encode("utf-8")
        elif isinstance(post_data, bytes):
            body = post_data
        else:
            body = b""
        try:
            status, response_headers, payload = self.fake.handle(method, parts.path, parts.query, body, headers or {})
        except SimulatedConnectionError as error:
            connection_error: Callable[..., stripe.APIConnectionError] = stripe.APIConnectionError
            raise connection_error(
                "Unexpected error communicating with Stripe. If this problem persists, let us know at "
                f"support@stripe.com.\n\n(Network error: {error})",
                should_retry=True,
            ) from error
        return payload.decode("utf-8"), status, CaseInsensitiveHeaders(response_headers)

    def request_stream(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[Any, int, Mapping[str, str]]:
        raise NotImplementedError("the Stripe fake serves no streaming endpoints")

    def close(self) -> None:
        return None

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        content, status, response_headers = self.request(method, url, headers, post_data)
        return content.encode("utf-8"), status, response_headers

    async def close_async(self) -> None:
        return None

    def sleep_async(self, secs: float) -> Awaitable[None]:
        return asyncio.sleep(secs if self.sleep else 0)


def make_stripe_client(
    fake: FakeStripe,
    *,
    api_key: str = TEST_API_KEY,
    max_network_retries: int = 2,
    sleep: bool = False,
) -> stripe.StripeClient:
    """A real stripe.StripeClient (pinned to API_VERSION) whose HTTP goes to `fake` in-process."""
    return stripe.StripeClient(
        api_key,
        http_client=FakeStripeHTTPClient(fake, sleep=sleep),
        max_network_retries=max_network_retries,
        stripe_version=API_VERSION,
    )

"""The Stripe fake served over real HTTP on 127.0.0.1, reached by a default StripeClient."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe

from tests.stripe_fake import API_VERSION, TEST_API_KEY, FakeStripe
from tests.stripe_fake.server import serve_in_thread


@pytest.fixture
def served() -> Iterator[tuple[FakeStripe, str]]:
    fake = FakeStripe()
    server, base_url = serve_in_thread(fake)
    try:
        yield fake, base_url
    finally:
        server.shutdown()
        server.server_close()


def test_stripe_client_over_http(served: tuple[FakeStripe, str]) -> None:
    fake, base_url = served
    client = stripe.StripeClient(
        TEST_API_KEY, base_addresses={"api": base_url}, stripe_version=API_VERSION, max_network_retries=1
    )
    fake.fail_next(1, connection_error=True)
    customer = client.v1.customers.create(params={"email": "a@example.com", "metadata": {"org_id": "org_demo"}})
    assert client.v1.customers.retrieve(customer.id).email == "a@example.com"
    assert [(r.method, r.status) for r in fake.requests] == [("POST", None), ("POST", 200), ("GET", 200)]
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.subscriptions.retrieve("sub_missing")
    assert raised.value.http_status == 404

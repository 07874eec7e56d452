"""`make dev` stopped with Ctrl-C after webhook traffic starts again at once on the same ports, and
neither stop prints a traceback."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.e2e.conftest import SCREENSHOTS, DevStack, assert_stopped_cleanly, dev_ports
from tests.stripe_fake import TEST_API_KEY

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _webhook_traffic(stripe: str) -> None:
    """A customer created in the emulator, its webhook delivered to the stack's webhook port."""
    create = urllib.request.Request(f"{stripe}/v1/customers", data=b"email=restart%40example.com", method="POST")
    create.add_header("Authorization", f"Bearer {TEST_API_KEY}")
    with OPENER.open(create, timeout=10) as response:
        assert response.status == 200
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with OPENER.open(f"{stripe}/_emulator/deliveries", timeout=10) as response:
            deliveries = json.loads(response.read())
        if deliveries and not any(delivery["pending"] for delivery in deliveries):
            assert {delivery["status"] for delivery in deliveries} == {200}
            return
        time.sleep(0.2)
    raise AssertionError(f"the webhook was not delivered: {deliveries}")


def test_make_dev_starts_again_at_once_after_ctrl_c(pytestconfig: pytest.Config) -> None:
    ports = dev_ports()
    first = DevStack(pytestconfig, ports, SCREENSHOTS.parent / "dev-stack-restart-first.log")
    try:
        _webhook_traffic(first.urls()["stripe"])
        with OPENER.open(first.urls()["gateway"] + "/", timeout=10) as page:
            assert page.status == 200
    finally:
        stopped = first.ctrl_c()
    assert_stopped_cleanly(stopped)
    again = DevStack(pytestconfig, ports, SCREENSHOTS.parent / "dev-stack-restart-again.log")
    try:
        _webhook_traffic(again.urls()["stripe"])
    finally:
        stopped = again.ctrl_c()
    assert_stopped_cleanly(stopped)

"""Start the local stack exactly as `make dev` does (its own process, its own ports) and a
headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support.local_services import free_port
from tests.support.template import REPO_ROOT

# Playwright's 5 s default for `expect` is shorter than a function's first request on a busy 2-core
# machine (the local stack starts a function's process on its first request, as Lambda does).
expect.set_options(timeout=15_000)

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).with_name("screenshots")


class DevStack:
    """`make dev` in its own process group, as a terminal runs it: Ctrl-C reaches every process of it."""

    def __init__(self, pytestconfig: pytest.Config, ports: dict[str, int], log_path: Path) -> None:
        self.ports = ports
        self.log_path = log_path
        args = [sys.executable, "-m", "functions.local_stack.dev"] + [f"--{name}={port}" for name, port in ports.items()]
        env = {key: value for key, value in os.environ.items() if not key.startswith("STRIPE_")}
        # The same import roots as `make dev` and these tests: pytest's pythonpath.
        env["PYTHONPATH"] = os.pathsep.join(str(root) for root in pytestconfig.getini("pythonpath"))
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=self._log, text=True, start_new_session=True
        )
        self.banner = self._wait_until_ready()

    def log_text(self) -> str:
        self._log.close()
        return self.log_path.read_text(errors="replace")

    def _wait_until_ready(self) -> str:
        assert self.process.stdout is not None
        banner: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                raise AssertionError(
                    f"make dev exited ({self.process.returncode}):\n{''.join(banner)}\nits log:\n{self.log_text()[-20000:]}"
                )
            banner.append(line)
            if "local billing stack ready" in line:
                return "".join(banner)
        self.process.kill()
        raise AssertionError(f"make dev did not become ready in 90 s; its log:\n{self.log_text()[-20000:]}")

    def urls(self) -> dict[str, Any]:
        return {
            "gateway": f"http://localhost:{self.ports['port']}",
            "stripe": f"http://127.0.0.1:{self.ports['stripe-port']}",  # the emulator: /v1 API and /_emulator hooks
            "webhook": f"http://127.0.0.1:{self.ports['webhook-port']}",
            "banner": self.banner,
        }

    def ctrl_c(self) -> str:
        """Ctrl-C as a terminal sends it (to the whole process group); wait for the stop; what the
        stack printed from then on."""
        self._log.flush()
        stopping_at = self.log_path.stat().st_size
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            # It stops its function processes, pollers and servers one by one (a few seconds).
            self.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"make dev did not stop in 90 s after Ctrl-C; the end of its log:\n{self.log_text()[-20000:]}"
            ) from None
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
            self._log.close()  # (closing twice is harmless)
        return self.log_path.read_bytes()[stopping_at:].decode("utf-8", "replace")


def dev_ports() -> dict[str, int]:
    return {name: free_port() for name in ("port", "webhook-port", "stripe-port", "aws-port")}


def assert_stopped_cleanly(log: str) -> None:
    """What the terminal shows after Ctrl-C: no traceback, no KeyboardInterrupt from any process."""
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-5000:]


@pytest.fixture(scope="module")
def dev_stack(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    # One log per test module, kept after the run: a failure says what the stack printed.
    log_path = SCREENSHOTS.parent / f"dev-stack-{request.module.__name__.rsplit('.', 1)[-1]}.log"
    stack = DevStack(pytestconfig, dev_ports(), log_path)
    try:
        yield stack.urls()
    finally:
        log = stack.ctrl_c()
    assert_stopped_cleanly(log)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "make test installs Debian's chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    new_page = context.new_page()
    new_page.set_default_timeout(15_000)
    yield new_page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{request.node.name}-failure.png"
        new_page.screenshot(path=str(path), full_page=True)
        print(f"screenshot of the failure: {path}")
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report

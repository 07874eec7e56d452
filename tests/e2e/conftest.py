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


@pytest.fixture(scope="module")
def dev_stack(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    ports = {name: free_port() for name in ("port", "webhook-port", "stripe-port", "aws-port")}
    args = [sys.executable, "-m", "functions.local_stack.dev"] + [f"--{name}={port}" for name, port in ports.items()]
    env = {key: value for key, value in os.environ.items() if not key.startswith("STRIPE_")}
    # The same import roots as `make dev` and these tests: pytest's pythonpath.
    env["PYTHONPATH"] = os.pathsep.join(str(root) for root in pytestconfig.getini("pythonpath"))
    # One log per test module, kept after the run: a failure says what the stack printed.
    log_path = SCREENSHOTS.parent / f"dev-stack-{request.module.__name__.rsplit('.', 1)[-1]}.log"
    log = log_path.open("w")

    def log_tail() -> str:
        log.close()
        return log_path.read_text(errors="replace")[-20000:]

    process = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    assert process.stdout is not None
    banner: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            raise AssertionError(f"make dev exited ({process.returncode}):\n{''.join(banner)}\nits log:\n{log_tail()}")
        banner.append(line)
        if "local billing stack ready" in line:
            break
    else:
        process.kill()
        raise AssertionError(f"make dev did not become ready in 90 s; its log:\n{log_tail()}")
    try:
        yield {
            "gateway": f"http://localhost:{ports['port']}",
            "stripe": f"http://127.0.0.1:{ports['stripe-port']}",  # the emulator: /v1 API and /_emulator hooks
            "banner": "".join(banner),
        }
    finally:
        process.send_signal(signal.SIGINT)
        try:
            # It stops its function processes, pollers and servers one by one (a few seconds).
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"make dev did not stop in 90 s after Ctrl-C; the end of its log:\n{log_tail()}") from None
        finally:
            if process.poll() is None:
                process.kill()
            log.close()  # (closing twice is harmless)


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

"""`make dev`'s own choices: real Stripe only in test mode and only when fully configured, a
clear error when a port is taken (and none when it was only just freed), quiet servers, and Ctrl-C
stopping it whichever thread the kernel hands it to."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from functions.local_stack.dev import DevError, Ports, parse_args, real_stripe_from_env, running_stack
from functions.local_stack.quiet_server import QuietThreadingHTTPServer
from tests.stripe_fake import TEST_API_KEY
from tests.support import local_services
from tests.support.local_services import PortInUseError, ephemeral_ports, free_port, price_parameters

PRICES = {
    "starter_base": "price_s",
    "pro_base": "price_p",
    "enterprise_base": {"lookupKey": "enterprise_monthly"},
    "starter_base_yearly": "price_sy",
    "pro_base_yearly": "price_py",
    "enterprise_base_yearly": {"lookupKey": "enterprise_yearly"},
}


@pytest.fixture(autouse=True)
def _no_stripe_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_PRICES"):
        monkeypatch.delenv(name, raising=False)


def test_without_a_key_the_emulator_is_used() -> None:
    assert real_stripe_from_env() is None


def test_real_stripe_in_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_abc")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_from_stripe_listen")
    monkeypatch.setenv("STRIPE_PRICES", json.dumps(PRICES))
    target = real_stripe_from_env()
    assert target is not None
    assert target.api_base == ""
    assert target.prices == PRICES
    assert {name: json.loads(value) for name, value in price_parameters(target.prices).items()} == {"StripePrices": PRICES}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STRIPE_SECRET_KEY": "sk_live_abc"}, "test-mode"),
        ({"STRIPE_SECRET_KEY": "sk_test_abc"}, "STRIPE_WEBHOOK_SECRET"),
        ({"STRIPE_SECRET_KEY": "sk_test_abc", "STRIPE_WEBHOOK_SECRET": "whsec_x"}, "starter_base"),
        (
            {"STRIPE_SECRET_KEY": "sk_test_abc", "STRIPE_WEBHOOK_SECRET": "whsec_x", "STRIPE_PRICES": '{"starter": "price_s"}'},
            "'starter' not in plans.json",
        ),
        (
            {"STRIPE_SECRET_KEY": "sk_test_abc", "STRIPE_WEBHOOK_SECRET": "whsec_x", "STRIPE_PRICES": '{"pro_base": "pro"}'},
            "'pro_base': 'pro' is not a Stripe price id",
        ),
    ],
)
def test_real_stripe_refuses_live_keys_and_half_configurations(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(DevError, match=message):
        real_stripe_from_env()


def test_the_default_ports_are_no_other_local_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DEV_PORT", "DEV_WEBHOOK_PORT", "DEV_STRIPE_PORT", "DEV_AWS_PORT"):
        monkeypatch.delenv(name, raising=False)
    ports, delivery = parse_args([])
    assert (ports.gateway, ports.webhook, ports.stripe, ports.aws, delivery) == (3000, 3001, 3002, 3003, "webhook")
    assert not {4566, 4510, 12111, 12112, 8000} & {
        ports.gateway,
        ports.webhook,
        ports.stripe,
        ports.aws,
    }  # LocalStack, stripe-mock, DynamoDB Local
    monkeypatch.setenv("DEV_AWS_PORT", "4999")
    assert parse_args(["--stripe-port", "5000"])[0] == Ports(3000, 3001, 5000, 4999)


def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = Ports(gateway=port, webhook=free_port(), stripe=free_port(), aws=free_port())
        with (
            pytest.raises(PortInUseError, match=f"port {port} \\(API gateway\\) is already in use"),
            running_stack(ports, io.StringIO()),
        ):
            pass


def test_a_port_a_stopped_stack_left_in_time_wait_is_free_at_once() -> None:
    """A restart right after webhook traffic: the stopped servers' side of each closed connection
    waits a minute in TIME_WAIT on their port. The servers bind with SO_REUSEADDR, so the check does too."""
    port = free_port()
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            served, _ = listener.accept()
            served.close()  # the server closes first, as an HTTP server does: its end waits in TIME_WAIT
            assert client.recv(1) == b""
    with socket.socket() as plain, pytest.raises(OSError, match="in use"):
        plain.bind(("127.0.0.1", port))  # the state the old check refused
    local_services.check_port_free(port, "API gateway")
    with socket.socket() as listening:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(("127.0.0.1", port))
        listening.listen()
        with pytest.raises(PortInUseError):
            local_services.check_port_free(port, "API gateway")


class _Answers(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/gone":
            raise BrokenPipeError(32, "Broken pipe")  # what writing to a closed tab raises
        raise ValueError("a real fault")

    def log_message(self, format: str, *args: object) -> None:
        return None


def test_a_client_gone_mid_answer_is_no_traceback_but_a_fault_still_is(capsys: pytest.CaptureFixture[str]) -> None:
    server = QuietThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        for path in ("/gone", "/fault"):
            with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
                opener.open(base + path, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert err.count("Traceback") == 1
    assert "ValueError: a real fault" in err and "BrokenPipeError" not in err


def test_the_stack_stops_at_once_and_quietly_with_webhooks_pending(capsys: pytest.CaptureFixture[str]) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    ports = Ports(gateway=free_port(), webhook=free_port(), stripe=free_port(), aws=free_port())
    with running_stack(ports, io.StringIO()) as info:
        stripe = info["stripe"]
        hold = urllib.request.Request(f"{stripe}/_emulator/hold-webhooks?seconds=60", data=b"", method="POST")
        with opener.open(hold, timeout=10) as response:
            # What is left of the hold when the answer is written: a moment under 60 s on a busy machine.
            assert json.loads(response.read())["held_for_seconds"] == pytest.approx(60, abs=1)
        create = urllib.request.Request(f"{stripe}/v1/customers", data=b"email=held%40example.com", method="POST")
        create.add_header("Authorization", f"Bearer {TEST_API_KEY}")
        with opener.open(create, timeout=10) as response:
            assert response.status == 200
        with opener.open(f"{stripe}/_emulator/deliveries", timeout=10) as response:
            (delivery,) = json.loads(response.read())
        assert (delivery["type"], delivery["pending"], delivery["attempts"]) == ("customer.created", True, 0)
        # The demo page offers admin actions by the stack's own RoleClaim and AdminRoles (display only).
        with opener.open(f"{info['gateway']}/dev/config.json", timeout=10) as response:
            page_config = json.loads(response.read())
        assert (page_config["roleClaim"], page_config["adminRoles"]) == ("org_role", ["admin", "owner"])
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 10
    err = capsys.readouterr().err
    assert "1 webhook deliveries still pending at shutdown were dropped" in err
    assert "Traceback" not in err
    assert TEST_API_KEY not in err


def test_the_emulator_can_deliver_as_stripes_eventbridge_destination() -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    ports = Ports(gateway=free_port(), webhook=free_port(), stripe=free_port(), aws=free_port())
    out = io.StringIO()
    with running_stack(ports, out, stripe_delivery="eventbridge") as info:
        stripe = info["stripe"]
        create = urllib.request.Request(f"{stripe}/v1/customers", data=b"email=eb%40example.com", method="POST")
        create.add_header("Authorization", f"Bearer {TEST_API_KEY}")
        with opener.open(create, timeout=10) as response:
            assert response.status == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with opener.open(f"{stripe}/_emulator/deliveries", timeout=10) as response:
                (delivery,) = json.loads(response.read())
            if not delivery["pending"]:
                break
            time.sleep(0.1)
        # Sent to the queue the template's rule targets, not POSTed to the Function URL.
        assert (delivery["type"], delivery["delivered"], delivery["attempts"]) == ("customer.created", True, 1)
    assert "Stripe emulator sends EventBridge events to the queue StripeEventsQueue" in out.getvalue()


# Ctrl-C handed to a thread other than the main one (the kernel may pick any thread of the process):
# an untimed wait in the main thread would never see it. Then a second signal, with the first one's
# handler gone, ends the process.
SIGNAL_ON_ANOTHER_THREAD = """
import signal, threading, time
from functions.local_stack.dev import stop_on_signals, wait_until_set
stop = stop_on_signals()
def interrupt_from_here():
    time.sleep(0.5)  # once the main thread waits
    signal.pthread_kill(threading.get_ident(), signal.SIGINT)
threading.Thread(target=interrupt_from_here).start()
wait_until_set(stop)
print("stopping", flush=True)
assert signal.getsignal(signal.SIGINT) is signal.SIG_DFL
assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # whichever signal comes second ends it
"""


def run_python(script: str, pytestconfig: pytest.Config) -> subprocess.CompletedProcess[str]:
    """`script` in a fresh interpreter with `make dev`'s import roots (pytest's pythonpath)."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join(str(root) for root in pytestconfig.getini("pythonpath"))}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=30, check=False)


def test_ctrl_c_stops_the_stack_whichever_thread_receives_it(pytestconfig: pytest.Config) -> None:
    done = run_python(SIGNAL_ON_ANOTHER_THREAD, pytestconfig)
    assert (done.returncode, done.stdout, done.stderr) == (0, "stopping\n", "")


def test_a_second_ctrl_c_ends_the_stack_at_once(pytestconfig: pytest.Config) -> None:
    script = "from functions.local_stack.dev import stop_on_signals\nimport os, signal, time\nstop_on_signals()\n"
    script += "os.kill(os.getpid(), signal.SIGINT)\ntime.sleep(0.5)\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(30)\n"
    assert run_python(script, pytestconfig).returncode == -signal.SIGINT


def test_server_ports_lie_outside_the_range_of_outgoing_connections(tmp_path: Path) -> None:
    # The stack's own calls open connections before its last server binds: a port from the kernel's
    # range for those could be taken in between.
    outgoing = ephemeral_ports()
    ports = [free_port() for _ in range(20)]
    assert not set(ports) & set(outgoing)
    assert len(set(ports)) == len(ports)  # never the same twice: ports asked for together are bound later
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text("20000\t40000\n")
    assert ephemeral_ports(ranges) == range(20000, 40001)
    assert ephemeral_ports(tmp_path / "missing") == range(32768, 61000)


def test_a_machine_with_every_port_outgoing_still_gets_distinct_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_services, "ephemeral_ports", lambda: range(1024, 65536))
    ports = [free_port() for _ in range(5)]
    assert len(set(ports)) == 5

"""Tracing on, as deployed: what Lambda gives a function with `Tracing: Active`, and a stand-in for
the X-Ray daemon that counts what the function sends.

Lambda sets `_X_AMZN_TRACE_ID` for each invocation (the trace header of the segment Lambda itself
records), `AWS_XRAY_DAEMON_ADDRESS` (the daemon's UDP address) and `AWS_XRAY_CONTEXT_MISSING`, and
`LAMBDA_TASK_ROOT` for every function (the X-Ray SDK runs in its Lambda mode when it is set: a facade
segment from the header, each finished subsegment sent at once). The daemon here is one UDP socket
on 127.0.0.1 the benchmark reads after each traced cold start: every packet is a JSON header line
and a segment document, which names its trace.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections import Counter
from collections.abc import Callable

# What no trace may hold: the Stripe fake's bearer URLs (Checkout, portal, hosted invoices) and the
# Stripe credentials' prefixes.
SECRET_MARKERS = (
    b"https://checkout.stripe.com/",
    b"https://billing.stripe.com/",
    b"https://invoice.stripe.com/",
    b"sk_test_",
    b"whsec_",
)
# Enough for every packet of a cold start (a few kB each) until the benchmark reads them.
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024
MAX_PACKET_BYTES = 65_535


def trace_header(now: float | None = None, random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A sampled trace header as Lambda sets it for an invocation: `Root=1-<epoch, 8 hex
    digits>-<24 hex digits>;Parent=<16 hex digits>;Sampled=1`."""
    epoch = int(time.time() if now is None else now)
    return f"Root=1-{epoch:08x}-{random_bytes(12).hex()};Parent={random_bytes(8).hex()};Sampled=1"


def trace_root(header: str) -> str:
    """The header's trace id (its Root)."""
    for part in header.split(";"):
        key, _, value = part.partition("=")
        if key.strip() == "Root":
            return value.strip()
    raise ValueError(f"no Root in trace header {header!r}")


def segment_trace_id(packet: bytes) -> str | None:
    """The trace id of one daemon packet (`{"format": "json", "version": 1}` newline, then the
    segment or subsegment document); None when the packet is not one."""
    header, _, document = packet.partition(b"\n")
    try:
        if json.loads(header).get("format") != "json":
            return None
        entity = json.loads(document)
    except ValueError:
        return None
    trace_id = entity.get("trace_id") if isinstance(entity, dict) else None
    return trace_id if isinstance(trace_id, str) else None


class XRayDaemon:
    """A UDP socket standing in for the daemon; `take()` counts the packets received so far by
    trace id (and forgets them), and records any that holds a secret (`leaks`)."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.setblocking(False)
        self.unparsed = 0
        # Packets that held a secret marker (the marker found), whoever sent them.
        self.leaks: list[str] = []

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()
        return f"{host}:{port}"

    def take(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        while True:
            try:
                packet = self._socket.recv(MAX_PACKET_BYTES)
            except BlockingIOError:
                return counts
            self.leaks.extend(marker.decode() for marker in SECRET_MARKERS if marker in packet)
            trace_id = segment_trace_id(packet)
            if trace_id is None:
                self.unparsed += 1
            else:
                counts[trace_id] += 1

    def close(self) -> None:
        self._socket.close()


# Lambda sets _X_AMZN_TRACE_ID for each invocation, not during init (the X-Ray SDK drops what a
# module does at import). The probe gets the header in this variable and sets _X_AMZN_TRACE_ID
# from it just before it invokes the handler.
INVOCATION_TRACE_VARIABLE = "BENCH_INVOCATION_TRACE_ID"


def traced_environment(daemon_address: str, header: str) -> dict[str, str]:
    """The variables Lambda adds for an actively traced function (LAMBDA_TASK_ROOT aside), the
    invocation's trace header for the probe to set when it invokes."""
    return {
        INVOCATION_TRACE_VARIABLE: header,
        "AWS_XRAY_DAEMON_ADDRESS": daemon_address,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }

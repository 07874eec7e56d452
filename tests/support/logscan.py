"""What must never reach a log line, and the capture of everything a test logged.

Powertools' Logger writes to the `sys.stdout` it saw when it was created (at import time), so
capsys alone does not see its JSON lines: `LogCapture` points Powertools' own handler (and so its
own formatter: message, extra keys, exception text) at a buffer for the duration of a test, and
adds capsys's stdout/stderr (EMF metrics are printed there) and every record caplog saw, rendered
with its extra attributes.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterable
from typing import Any, TextIO

import pytest

from tests.stripe_fake import TEST_API_KEY

# Bearer URLs: whoever holds one pays, manages the subscription or reads the invoice (Checkout,
# the Customer Portal, hosted invoices and their PDFs, 3-D Secure pages), as Stripe and the fake form them.
BEARER_URL_PREFIXES = (
    "checkout.stripe.com/c/pay/",
    "billing.stripe.com/p/session/",
    "invoice.stripe.com/i/",
    "pay.stripe.com/invoice/",
    "hooks.stripe.com/",
)
FORBIDDEN_SUBSTRINGS = (TEST_API_KEY, "sk_test_", "sk_live_", "rk_test_", "rk_live_", "whsec_", *BEARER_URL_PREFIXES)
# 13 to 19 digits, optionally separated by single spaces or dashes (4242 4242 4242 4242, 4242-4242-...).
CARD_NUMBER = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])")
# A whole Stripe event or its data object, in JSON or in Python's repr.
RAW_EVENT = re.compile(r"""["']object["']\s*:\s*["']event["']|["']data["']\s*:\s*\{\s*["']object["']""")
# Numbers that are ours and not card data: CloudWatch EMF metric timestamps (epoch milliseconds).
_EMF_TIMESTAMP = re.compile(r'"Timestamp"\s*:\s*[0-9]+')

# Texts a test delivered (raw webhook bodies, their data objects) that must not be logged back.
_SENSITIVE: list[str] = []


def register_sensitive(*texts: str) -> None:
    """Remember request bodies of this test; distinctive ones only (short or uniform texts such as
    "{}" or a run of spaces occur in logs by chance)."""
    for text in texts:
        stripped = text.strip()
        if len(stripped) >= 24 and len(set(stripped)) >= 8:
            _SENSITIVE.append(stripped)


def clear_sensitive() -> None:
    _SENSITIVE.clear()


def sensitive_texts() -> tuple[str, ...]:
    return tuple(_SENSITIVE)


def _mask(text: str) -> str:
    return text if len(text) <= 8 else f"{text[:4]}...{text[-2:]} ({len(text)} chars)"


def _where(text: str, start: int, end: int) -> str:
    """Some context around a finding, the finding itself masked."""
    before, after = text[max(0, start - 60) : start], text[end : end + 30]
    return f"...{before}<{_mask(text[start:end])}>{after}...".replace("\n", " ")


def scan(text: str, sensitive: Iterable[str] = ()) -> list[str]:
    """Every distinct problem found in `text` (described without repeating the secret itself)."""
    problems: dict[str, None] = {}
    for needle in FORBIDDEN_SUBSTRINGS:
        if (at := text.find(needle)) >= 0:
            problems[f"forbidden text {_mask(needle)!r} in {_where(text, at, at + len(needle))}"] = None
    numbers = _EMF_TIMESTAMP.sub(lambda m: "#" * len(m.group()), text)
    for match in CARD_NUMBER.finditer(numbers):
        problems[f"card-number-like digits {_where(text, match.start(), match.end())}"] = None
    for match in RAW_EVENT.finditer(text):
        problems[f"raw Stripe event marker {_where(text, match.start(), match.end())}"] = None
    for body in set(sensitive):
        if (at := text.find(body)) >= 0:
            problems[f"a delivered body or its data object {_where(text, at, at + len(body))}"] = None
    return list(problems)


# Attributes every LogRecord has: only the extra ones (what a log call adds) are rendered.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def _render_record(record: logging.LogRecord) -> str:
    extra: dict[str, Any] = {name: value for name, value in vars(record).items() if name not in _STANDARD_ATTRIBUTES}
    return f"{record.getMessage()} {json.dumps(extra, default=repr)} {record.exc_text or ''}"


class LogCapture:
    """Everything logged during one test: Powertools' formatted output, capsys, caplog."""

    def __init__(self, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
        from tenant_billing.observability import logger

        handler = logger.registered_handler
        if not isinstance(handler, logging.StreamHandler):
            raise TypeError(f"Powertools' handler is a {type(handler).__name__}, not a StreamHandler")
        self._handler: logging.StreamHandler[TextIO] = handler
        self._buffer = io.StringIO()
        self._previous = handler.setStream(self._buffer)
        self._capsys = capsys
        self._caplog = caplog
        self._drained: list[str] = []

    def text(self) -> str:
        captured = self._capsys.readouterr()
        self._drained += [captured.out, captured.err]
        records = [_render_record(record) for record in self._caplog.records]
        return "\n".join([*self._drained, self._buffer.getvalue(), self._caplog.text, *records])

    def powertools_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._buffer.getvalue().splitlines() if line.startswith("{")]

    def close(self) -> None:
        if self._previous is not None:
            self._handler.setStream(self._previous)
        self._previous = None

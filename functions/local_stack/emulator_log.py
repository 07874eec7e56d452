"""The Stripe emulator's log: one line per notable thing on stderr."""

from __future__ import annotations

import sys


def log(message: str) -> None:
    """One line on stderr: never a key, a webhook secret, a body or a bearer URL (checkout/portal)."""
    try:
        sys.stderr.write(f"stripe-emulator: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed at interpreter shutdown
        pass

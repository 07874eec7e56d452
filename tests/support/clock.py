"""A clock a test moves by hand, for the Stripe fake's `clock=`."""

from __future__ import annotations


class ManualClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

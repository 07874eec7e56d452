"""Errors of the fake: Stripe's JSON error bodies, and the exceptions of the simulation helpers."""

from __future__ import annotations

from typing import Any

DOC_URL = "https://stripe.com/docs/error-codes/"


class StripeAPIError(Exception):
    """An error response in Stripe's format: {"error": {"type", "code", "message", "param", ...}}.

    `stored` says whether an idempotent request that ended with this error keeps it as its result
    (Stripe saves results only once an endpoint began executing: not for parameter validation errors).
    `keep_changes` says the request's changes stand despite the error (a failed payment attempt of
    POST /v1/invoices/{id}/pay is recorded); by default a failed request changes nothing.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        stored: bool = True,
        extra: dict[str, Any] | None = None,
        keep_changes: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.stored = stored
        self.extra = extra or {}
        self.keep_changes = keep_changes

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = DOC_URL + self.code.replace("_", "-")
        error["message"] = self.message
        if self.param is not None:
            error["param"] = self.param
        error.update(self.extra)
        error["type"] = self.type
        return {"error": error}


class ParamError(StripeAPIError):
    """A 400 raised while validating parameters, before the endpoint runs: never stored for idempotency."""

    def __init__(self, message: str, *, param: str | None, code: str | None = None) -> None:
        super().__init__(400, message, code=code, param=param, stored=False)


def resource_missing(kind: str, object_id: str, *, param: str, status: int = 400) -> StripeAPIError:
    """Stripe's "No such <kind>": 404 for the object named by the URL, 400 for one named by a parameter."""
    return StripeAPIError(status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> StripeAPIError:
    """A 400 invalid_request_error raised while the endpoint runs (stored for idempotency)."""
    return StripeAPIError(400, message, code=code, param=param)


def exclusive(*params: str) -> StripeAPIError:
    names = ", ".join(params)
    return StripeAPIError(
        400,
        f"You may only specify one of these parameters: {names}.",
        code="parameters_exclusive",
        param=params[-1],
        stored=False,
    )


class FakeStripeError(Exception):
    """A simulation helper (complete_checkout, fail_payment, ...) was used in a way Stripe would not allow."""


class CardDeclined(FakeStripeError):
    """The test card was declined: nothing changed (the Checkout Session stays open)."""

    def __init__(self, card_number: str, decline_code: str = "generic_decline") -> None:
        super().__init__(f"Your card was declined ({decline_code}); card ending in {card_number[-4:]}")
        self.card_number = card_number
        self.decline_code = decline_code


class SimulatedConnectionError(Exception):
    """Raised by FakeStripe.handle when an injected fault asks for a broken connection instead of a response."""

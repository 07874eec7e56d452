"""The Stripe emulator's HTTP responses (status, headers, body) and the forms its pages post."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from urllib.parse import parse_qs

from functions.local_stack.hosted_page_layout import message_page

Response = tuple[int, dict[str, str], bytes]
# The challenge pages' two buttons (field `action`).
CHALLENGE_ACTIONS = ("complete", "fail")
AUTHENTICATION_FAILED = (
    "We are unable to authenticate your payment method. Please choose a different payment method and try again."
)

_HTML = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
_JSON = {"Content-Type": "application/json", "Cache-Control": "no-store"}


def html_response(status: int, page: bytes) -> Response:
    return status, dict(_HTML), page


def json_response(status: int, value: object) -> Response:
    return status, dict(_JSON), json.dumps(value, indent=2).encode()


def redirect(location: str) -> Response:
    return 303, {"Location": location, "Cache-Control": "no-store"}, b""


def message_response(status: int, title: str, message: str, link: tuple[str, str] | None = None) -> Response:
    return html_response(status, message_page(title, message, link))


def unknown_challenge_action() -> Response:
    return message_response(400, "Unknown action", "Choose Complete or Fail.")


def get_or_post(method: str, on_get: Callable[[], Response], on_post: Callable[[], Response]) -> Response:
    """A page that shows itself on GET (and HEAD) and acts on POST."""
    if method in ("GET", "HEAD"):
        return on_get()
    if method == "POST":
        return on_post()
    return message_response(405, "Method not allowed", "Use GET or POST.")


def post_only(method: str, on_post: Callable[[], Response]) -> Response:
    """An action a page's form posts to."""
    return on_post() if method == "POST" else message_response(405, "Method not allowed", "Use POST.")


def parse_form(body: bytes) -> dict[str, str]:
    """A form (or a query string): each field's first value."""
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items() if values}


def card_number(form: Mapping[str, str]) -> str:
    """The card number typed in, without the spaces and dashes people type."""
    return re.sub(r"[\s-]+", "", form.get("card_number", ""))


class EarlyResponse(Exception):
    """A request that ends before its action with this response (an unknown link, a closed session)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response[0])
        self.response = response

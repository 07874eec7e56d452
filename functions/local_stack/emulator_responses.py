"""The Stripe emulator's HTTP responses: (status, headers, body)."""

from __future__ import annotations

import json
from collections.abc import Callable

from functions.local_stack.hosted_page_layout import message_page

Response = tuple[int, dict[str, str], bytes]

_HTML = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
_JSON = {"Content-Type": "application/json", "Cache-Control": "no-store"}


def html_page(status: int, page: bytes) -> Response:
    return status, dict(_HTML), page


def json_value(status: int, value: object) -> Response:
    return status, dict(_JSON), json.dumps(value, indent=2).encode()


def redirect(location: str) -> Response:
    return 303, {"Location": location, "Cache-Control": "no-store"}, b""


def message(status: int, title: str, text: str, link: tuple[str, str] | None = None) -> Response:
    """A page that only says something (an unknown link, an expired session, an error)."""
    return html_page(status, message_page(title, text, link))


def unknown_challenge_action() -> Response:
    """A challenge page posted something other than Complete or Fail."""
    return message(400, "Unknown action", "Choose Complete or Fail.")


def get_or_post(method: str, on_get: Callable[[], Response], on_post: Callable[[], Response]) -> Response:
    """A page that shows itself on GET (and HEAD) and acts on POST."""
    if method in ("GET", "HEAD"):
        return on_get()
    if method == "POST":
        return on_post()
    return message(405, "Method not allowed", "Use GET or POST.")


def post_only(method: str, on_post: Callable[[], Response]) -> Response:
    """An action a page's form posts to."""
    return on_post() if method == "POST" else message(405, "Method not allowed", "Use POST.")


class EarlyResponse(Exception):
    """A request that ends before its action with this response (an unknown link, a closed session)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response[0])
        self.response = response

"""A local stand-in for API Gateway (HTTP API) and Lambda Function URLs.

Every route and Function URL declared in template.yaml is served by invoking the real handler
in its own worker process, with events shaped exactly as API Gateway's payload 2.0 and Function
URL events are, after the JWT authorizer has checked the bearer token as API Gateway would. CORS
follows the template's CorsConfiguration. The demo page and its static files are served at "/".
"""

from __future__ import annotations

import base64
import json
import mimetypes
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from functions.local_stack.dev_tokens import TokenError, Verifier, gateway_claims
from functions.local_stack.function_process import FunctionProcess
from functions.local_stack.page_catalog import page_catalog
from functions.local_stack.quiet_server import QuietThreadingHTTPServer
from functions.local_stack.template_model import ApiSpec, LocalStack
from tenant_billing.catalog import parse_catalog
from tests.support.generate_openapi import OPENAPI_PATH

STATIC_DIR = Path(__file__).with_name("static")
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml", "application/javascript")

Response = tuple[int, dict[str, str], bytes]


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    return merged


def _body_fields(body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    if not body:
        return {"isBase64Encoded": False}
    content_type = headers.get("content-type", "")
    if content_type.startswith(TEXT_TYPES):
        try:
            return {"body": body.decode(), "isBase64Encoded": False}
        except UnicodeDecodeError:
            pass
    return {"body": base64.b64encode(body).decode(), "isBase64Encoded": True}


def _query_fields(query: str) -> dict[str, Any]:
    if not query:
        return {}
    values: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        values.setdefault(name, []).append(value)
    return {"queryStringParameters": {name: ",".join(items) for name, items in values.items()}}


def _request_context(
    method: str, path: str, headers: Mapping[str, str], source_ip: str, host: str, api_id: str
) -> dict[str, Any]:
    now = time.time()
    return {
        "accountId": "000000000000" if api_id != "lambda-url" else "anonymous",
        "apiId": api_id,
        "domainName": host,
        "domainPrefix": host.split(".")[0].split(":")[0],
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": "$default",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }


def _payload_event(
    route_key: str, path: str, query: str, headers: dict[str, str], body: bytes, context: dict[str, Any]
) -> dict[str, Any]:
    """A payload format 2.0 event: API Gateway's and Function URLs' differ only in routeKey and context."""
    event: dict[str, Any] = {"version": "2.0", "routeKey": route_key, "rawPath": path, "rawQueryString": query}
    if "cookie" in headers:
        event["cookies"] = [cookie.strip() for cookie in headers.pop("cookie").split(";") if cookie.strip()]
    event["headers"] = headers
    event.update(_query_fields(query))
    event["requestContext"] = context
    event.update(_body_fields(body, headers))
    return event


def http_api_event(
    method: str, path: str, query: str, headers: Mapping[str, str], body: bytes, claims: dict[str, str], source_ip: str
) -> dict[str, Any]:
    """An API Gateway HTTP API payload 2.0 event, as the JWT-authorized route receives it."""
    lowered = _lower_headers(headers)
    route_key = f"{method} {path}"
    context = _request_context(method, path, lowered, source_ip, lowered.get("host", "localhost"), "local")
    context["routeKey"] = route_key
    context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return _payload_event(route_key, path, query, lowered, body, context)


def function_url_event(
    method: str, path: str, query: str, headers: Mapping[str, str], body: bytes, source_ip: str
) -> dict[str, Any]:
    """A Lambda Function URL payload 2.0 event."""
    lowered = _lower_headers(headers)
    context = _request_context(method, path, lowered, source_ip, lowered.get("host", "localhost"), "lambda-url")
    return _payload_event("$default", path, query, lowered, body, context)


def lambda_result_to_http(result: dict[str, Any]) -> Response:
    """Translate a handler's result as API Gateway / Function URLs do (payload format 2.0)."""
    if "error" in result:
        return 500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}'
    response = result.get("response")
    if not isinstance(response, dict) or "statusCode" not in response:
        # Format 2.0 infers a 200 JSON response from any other return value.
        return 200, {"content-type": "application/json"}, json.dumps(response).encode()
    headers = {str(name).lower(): str(value) for name, value in (response.get("headers") or {}).items()}
    body = response.get("body") or ""
    raw = base64.b64decode(body) if response.get("isBase64Encoded") else str(body).encode()
    if response.get("cookies"):
        headers["set-cookie"] = "\n".join(response["cookies"])
    return int(response["statusCode"]), headers, raw


# POST {gateway}/_local/invoke/<logical id>: a function invoked directly, as `aws lambda invoke` does.
LOCAL_INVOKE_PREFIX = "/_local/invoke/"


@dataclass
class ApiGateway:
    """The HTTP API: template.yaml's routes behind its JWT authorizer and CORS, and the demo page."""

    stack: LocalStack
    processes: Mapping[str, FunctionProcess]
    verifier: Verifier
    dev_config: Callable[[], dict[str, Any]]
    catalog_path: Path

    # --- CORS, as API Gateway applies the template's CorsConfiguration ---------------------

    def _allowed_origin(self, origin: str | None, api: ApiSpec) -> str | None:
        if not origin:
            return None
        if "*" in api.cors_origins:
            return "*"
        return origin if origin in api.cors_origins else None

    def preflight(self, headers: Mapping[str, str]) -> Response:
        api = self.stack.api
        lowered = _lower_headers(headers)
        origin = self._allowed_origin(lowered.get("origin"), api)
        method = lowered.get("access-control-request-method", "").upper()
        if origin is None or method not in api.cors_methods:
            return 204, {}, b""
        requested = [
            item.strip().lower() for item in lowered.get("access-control-request-headers", "").split(",") if item.strip()
        ]
        allowed_headers = [header for header in requested if header in api.cors_headers or "*" in api.cors_headers]
        response_headers = {
            "access-control-allow-origin": origin,
            "access-control-allow-methods": ",".join(api.cors_methods),
            "access-control-allow-headers": ",".join(allowed_headers),
            "access-control-max-age": str(api.cors_max_age),
            "vary": "origin",
        }
        return 204, response_headers, b""

    def with_cors(self, response: Response, headers: Mapping[str, str]) -> Response:
        status, response_headers, body = response
        origin = self._allowed_origin(_lower_headers(headers).get("origin"), self.stack.api)
        if origin:
            response_headers = {**response_headers, "access-control-allow-origin": origin, "vary": "origin"}
        return status, response_headers, body

    # --- the JWT authorizer -------------------------------------------------------------------

    def authorize(self, headers: Mapping[str, str]) -> dict[str, str] | None:
        header_name = self.stack.api.identity_source.rsplit(".", 1)[-1].lower()
        value = _lower_headers(headers).get(header_name, "")
        token = value[7:].strip() if value[:7].lower() == "bearer " else value.strip()
        if not token:
            return None
        try:
            return gateway_claims(self.verifier.verify(token))
        except TokenError:
            return None

    # --- routing ------------------------------------------------------------------------------

    def _static(self, path: str) -> Response:
        if path == "/dev/config.json":
            return 200, {"content-type": "application/json", "cache-control": "no-store"}, json.dumps(self.dev_config()).encode()
        if path == "/dev/plans.json":
            # Read on every request: an edited plans.json shows at the next reload.
            view = page_catalog(parse_catalog(self.catalog_path.read_bytes()))
            return 200, {"content-type": "application/json"}, json.dumps(view).encode()
        if path == "/openapi.json":
            return 200, {"content-type": "application/json", "cache-control": "no-cache"}, OPENAPI_PATH.read_bytes()
        if path == "/" or path == "/app" or path.startswith("/app/"):
            path = "/static/index.html"
        if path.startswith("/static/"):
            target = (STATIC_DIR / path.removeprefix("/static/")).resolve()
            if target.is_file() and STATIC_DIR.resolve() in target.parents:
                content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
                return 200, {"content-type": content_type, "cache-control": "no-cache"}, target.read_bytes()
        return 404, {"content-type": "application/json"}, b'{"message":"Not Found"}'

    def invoke(self, logical_id: str, headers: Mapping[str, str], body: bytes) -> Response:
        """The local stand-in for `lambda:InvokeFunction` (what `python -m functions.admin` calls), only
        for the functions a person or a schedule invokes: the API's go through the authorizer, and a
        made-up queue or stream record would be a forged event. Never from a web page: a request
        with an Origin is refused, and only JSON is taken (a form post cannot send it cross-origin)."""
        function = self.stack.functions.get(logical_id)
        if function is None or not function.directly_invoked:
            return 404, {"content-type": "application/json"}, b'{"message":"no such directly invoked function"}'
        lowered = _lower_headers(headers)
        if "origin" in lowered:
            return 403, {"content-type": "application/json"}, b'{"message":"not from a browser"}'
        if lowered.get("content-type", "").split(";")[0].strip() != "application/json":
            return 415, {"content-type": "application/json"}, b'{"message":"the payload must be application/json"}'
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return 400, {"content-type": "application/json"}, b'{"message":"the payload is not JSON"}'
        result = self.processes[logical_id].invoke(payload)
        return 200, {"content-type": "application/json"}, json.dumps(result).encode()

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes, source_ip: str) -> Response:
        if method == "POST" and path.startswith(LOCAL_INVOKE_PREFIX):
            return self.invoke(path.removeprefix(LOCAL_INVOKE_PREFIX), headers, body)
        function = self.stack.route(method, path)
        if method == "OPTIONS" and _lower_headers(headers).get("access-control-request-method"):
            return self.preflight(headers)
        if function is None:
            if method == "GET":
                return self._static(path)
            return self.with_cors((404, {"content-type": "application/json"}, b'{"message":"Not Found"}'), headers)
        claims = self.authorize(headers)
        if claims is None:
            unauthorized = (
                401,
                {"content-type": "application/json", "www-authenticate": "Bearer"},
                b'{"message":"Unauthorized"}',
            )
            return self.with_cors(unauthorized, headers)
        event = http_api_event(method, path, query, headers, body, claims, source_ip)
        return self.with_cors(lambda_result_to_http(self.processes[function.logical_id].invoke(event)), headers)


@dataclass
class FunctionUrl:
    """A function's Lambda Function URL (the webhook's)."""

    process: FunctionProcess

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes, source_ip: str) -> Response:
        return lambda_result_to_http(self.process.invoke(function_url_event(method, path, query, headers, body, source_ip)))


def serve(target: ApiGateway | FunctionUrl, host: str, port: int, name: str) -> QuietThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Separate header and body writes: without this, Nagle's algorithm stalls each response ~40 ms.
        disable_nagle_algorithm = True
        server_version = f"local-{name}"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._send(413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}')
                self.close_connection = True
                return
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            headers = dict(self.headers.items())
            status, response_headers, payload = target.handle(
                self.command, parts.path, parts.query, headers, body, self.client_address[0]
            )
            self._send(status, response_headers, payload)

        def _send(self, status: int, headers: Mapping[str, str], payload: bytes) -> None:
            self.send_response(status)
            for header, value in headers.items():
                for line in value.split("\n") if header == "set-cookie" else [value]:
                    self.send_header(header, line)
            self.send_header("Date", formatdate(usegmt=True))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

        def log_message(self, format: str, *args: object) -> None:
            # One short access line per API call (never bodies or tokens).
            if not self.path.startswith(("/static/", "/dev/", "/favicon")):
                sys.stderr.write(f"[{name}] {self.command} {urlsplit(self.path).path} -> {args[1] if len(args) > 1 else ''}\n")

    server = QuietThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name=f"local-{name}", daemon=True).start()
    return server

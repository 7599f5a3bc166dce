"""The little HTTP layer the simulator needs on top of raw ASGI: a request, a response, errors, a router.

Plain ASGI keeps the test double fast and lets it send what a framework would refuse to: a JSON body cut in the
middle, a response that never comes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from devstack.simulator.state import Credential

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_encode = msgspec.json.Encoder().encode


class HttpError(Exception):
    """An error answer in Laravel's shape: `{"message": ..., "errors": {field: [..]}}`."""

    def __init__(self, status: int, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors

    def response(self) -> Response:
        body: dict[str, Any] = {"message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return json_response(self.status, body)


def invalid(field_name: str, message: str) -> HttpError:
    return HttpError(422, message, {field_name: [message]})


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    #: scheme://host[:port] as the client addressed us (Laravel builds page links from its own URL)
    origin: str
    params: dict[str, str] = field(default_factory=dict)
    #: who is calling (set once the bearer token is authenticated)
    credential: Credential | None = None

    @classmethod
    async def read(cls, scope: Scope, receive: Receive) -> Request:
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host") or "{}:{}".format(*scope.get("server") or ("127.0.0.1", 80))
        return cls(
            method=scope["method"],
            path=scope["path"],
            query=parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True),
            headers=headers,
            body=b"".join(chunks),
            origin=f"{scope.get('scheme', 'http')}://{host}",
        )

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def int_arg(self, name: str, default: int) -> int:
        try:
            return int(self.arg(name) or default)
        except ValueError:
            return default

    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return (auth[7:].strip() or None) if auth[:7].lower() == "bearer " else None

    def json(self) -> dict[str, Any]:
        try:
            body = msgspec.json.decode(self.body) if self.body else {}
        except msgspec.DecodeError as exc:
            raise HttpError(400, f"invalid JSON body: {exc}") from exc
        if not isinstance(body, dict):
            raise HttpError(422, "the body must be a JSON object")
        return body


@dataclass
class Response:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)

    async def send(self, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(self.body)).encode())]
        headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def json_response(status: int, body: object, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, _encode(body), headers or [])


Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Route:
    method: str
    template: str
    handler: Handler
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self.pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template) + "$")

    @property
    def name(self) -> str:
        return f"{self.method} {self.template}"


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        self.routes.append(Route(method, template, handler))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = False
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict()
            allowed = True
        raise HttpError(405, "Method not allowed.") if allowed else HttpError(404, "Not found.")


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def is_loopback_url(url: str) -> bool:
    """True for http(s) URLs on 127.0.0.0/8, ::1 or localhost: the only places the simulator ever POSTs to."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False

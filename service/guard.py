"""Slow and aborted clients: header and body read deadlines, a connection cap, aborted uploads logged as such.

Two small parts around the Litestar app, wired by `service.server` (so by both `bisonsync serve` and `bisonsync run`):

- `guarded_protocol(limits)`: uvicorn's own HTTP protocol (httptools, else h11) with
  - a **connection cap**: past `max_connections` open connections a new one gets `503` and is closed at once;
  - a **header deadline**: a request's head (request line and headers) must be complete within `header_timeout_s`
    of the connection opening or of the previous response (else `408` if anything was sent, and closed). uvicorn's
    keep-alive timer alone is reset by every byte, so a client trickling one byte a second kept its slot forever.
- `BodyGuard`: ASGI middleware that reads the request body before the app runs, within `body_timeout_s` of the
  head (else `408` and the connection closed), and replays it to the app. A client that disconnects mid-upload is
  logged once, at INFO, as `aborted` (the app never runs, so no 500 is logged or counted for it). A body announced
  larger than the app accepts is left to the app (it answers 413 without reading it).

`STATS` (a `GuardStats`) counts what was cut off in this process. The log says it too, rate-limited since clients
trigger it at will: refused connections one WARNING per 5 s, head/body timeouts and aborts up to 10 INFO lines per
5 s each; the next line out gives the number suppressed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from bisonsync.logs import escape_control

log = logging.getLogger("bisonsync.service.guard")

_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 21\r\nconnection: close\r\nretry-after: 1\r\n\r\ntoo many connections\n"
)
_HEAD_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 22\r\nconnection: close\r\n\r\nrequest head too slow\n"
)


@dataclass(frozen=True, slots=True)
class GuardLimits:
    """The limits the service runs with (BISONSYNC_HEADER_TIMEOUT_S, _BODY_TIMEOUT_S, _MAX_CONNECTIONS)."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 500
    #: bodies up to this size are read (and timed) by the guard; larger ones are the app's to refuse (413)
    max_body_bytes: int = 262_144


@dataclass
class GuardStats:
    refused: int = 0
    head_timeouts: int = 0
    body_timeouts: int = 0
    aborted: int = 0


STATS = GuardStats()


class _RateLimitedLog:
    """At most `burst` lines per `every_s` for what a client can trigger at will; the next line that gets out says
    how many were suppressed, so a flood of slow or aborting clients cannot flood the log."""

    def __init__(self, level: int, *, every_s: float = 5.0, burst: int = 10) -> None:
        self.level = level
        self.every_s = every_s
        self.burst = burst
        self.window = -every_s
        self.used = 0
        self.suppressed = 0

    def __call__(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self.window >= self.every_s:
            self.window, self.used = now, 0
        if self.used >= self.burst:
            self.suppressed += 1
            return
        self.used += 1
        if self.suppressed:
            message += f" ({self.suppressed} similar lines suppressed)"
            self.suppressed = 0
        log.log(self.level, message, *args)


_refused_log = _RateLimitedLog(logging.WARNING, burst=1)
_head_log = _RateLimitedLog(logging.INFO)
_body_log = _RateLimitedLog(logging.INFO)
_aborted_log = _RateLimitedLog(logging.INFO)


class _GuardMixin(asyncio.Protocol):
    """Connection cap and header deadline on top of a uvicorn HTTP protocol (which follows in the MRO)."""

    limits: GuardLimits = GuardLimits()
    # set by the uvicorn protocol this is mixed into
    server_state: Any
    cycle: Any
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._guard_refused = False
        self._guard_timer: asyncio.TimerHandle | None = None
        self._guard_cycle: Any = None
        self._guard_bytes = 0
        if len(self.server_state.connections) >= self.limits.max_connections:
            self._guard_refused = True
            STATS.refused += 1
            _refused_log("connection refused: %d connections open (503)", self.limits.max_connections)
            transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport
            transport.write(_REFUSED)
            # half-close and drop what the client still sends (closing at once would answer it with a reset,
            # which can destroy the 503 before the client reads it), then close for good
            if transport.can_write_eof():
                transport.write_eof()
            asyncio.get_running_loop().call_later(1.0, transport.close)
            return
        super().connection_made(transport)
        self._guard_arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._guard_refused:
            return
        self._guard_disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._guard_refused:
            return
        self._guard_bytes += len(data)
        super().data_received(data)
        if self._guard_timer is not None and self.cycle is not self._guard_cycle:
            self._guard_disarm()  # the head is complete: the body has its own deadline (BodyGuard)

    def handle_websocket_upgrade(self, *args: Any) -> None:
        self._guard_disarm()  # the connection now belongs to the websocket protocol
        super().handle_websocket_upgrade(*args)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._guard_arm()  # the next request's head has the same deadline

    def _guard_arm(self) -> None:
        self._guard_disarm()
        self._guard_cycle = self.cycle
        self._guard_bytes = 0
        self._guard_timer = self.loop.call_later(self.limits.header_timeout_s, self._guard_head_timeout)

    def _guard_disarm(self) -> None:
        if self._guard_timer is not None:
            self._guard_timer.cancel()
            self._guard_timer = None

    def _guard_head_timeout(self) -> None:
        self._guard_timer = None
        if self.cycle is not self._guard_cycle or self.transport.is_closing():
            return
        if self._guard_bytes:
            STATS.head_timeouts += 1
            _head_log(
                "request head not complete within %.0fs (%d bytes): 408, connection closed",
                self.limits.header_timeout_s,
                self._guard_bytes,
            )
            self.transport.write(_HEAD_TIMEOUT)
        self.transport.close()


def guarded_protocol(limits: GuardLimits) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol (h11 when httptools is missing) with the cap and the header deadline."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:  # pragma: no cover - httptools is a dependency of uvicorn[standard]
        from uvicorn.protocols.http.h11_impl import H11Protocol as base  # type: ignore[assignment]
    return type("GuardedHTTPProtocol", (_GuardMixin, base), {"limits": limits})


class BodyGuard:
    """ASGI middleware: the request body within `body_timeout_s`, client aborts logged as aborted."""

    def __init__(self, app: ASGIApp, limits: GuardLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or self._announced_too_large(scope):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.body_timeout_s
        buffered: deque[Any] = deque()
        size = 0
        while True:
            try:
                async with asyncio.timeout_at(deadline):  # no extra task per read, unlike wait_for
                    message: Any = await receive()
            except TimeoutError:
                STATS.body_timeouts += 1
                _body_log(
                    "%s %s: body not complete within %.0fs (%d bytes): 408, connection closed",
                    scope.get("method"),
                    escape_control(scope.get("path", "")),
                    self.limits.body_timeout_s,
                    size,
                )
                await _send_408(send)
                return
            if message["type"] == "http.disconnect":
                STATS.aborted += 1
                _aborted_log(
                    "%s %s aborted by the client after %d body bytes (nothing applied)",
                    scope.get("method"),
                    escape_control(scope.get("path", "")),
                    size,
                )
                return
            buffered.append(message)
            size += len(message.get("body", b""))
            if not message.get("more_body", False) or size > self.limits.max_body_bytes:
                break

        async def replay() -> Any:
            if buffered:
                return buffered.popleft()
            # past the buffered part (a body over the limit the app is refusing, or waiting for a disconnect)
            try:
                async with asyncio.timeout_at(deadline):
                    return await receive()
            except TimeoutError:
                return {"type": "http.disconnect"}

        await self.app(scope, replay, send)

    def _announced_too_large(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                with contextlib.suppress(ValueError):
                    return int(value) > self.limits.max_body_bytes
        return False


async def _send_408(send: Send) -> None:
    body = b"request body too slow\n"
    start: Any = {
        "type": "http.response.start",
        "status": 408,
        "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)

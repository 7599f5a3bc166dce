"""The `/realtime/v1/websocket` endpoint: handshake, the per-socket reader and writer, and frame routing.

Handshake: the token comes from header `x-api-key`, else the `apikey` query parameter; `sb_` keys are translated
as Kong does; it must be a stack-signed JWT with `role` and `exp`, otherwise the upgrade is refused with HTTP 401
and `{"error": "..."}`. `vsn` picks the serializer (1.0.0 objects, 2.0.0 arrays).

Every socket has a bounded queue drained by its own writer task: producers (the poller's dispatcher, the reader)
only enqueue, so a slow client never stalls anyone else. A socket whose queue overflows is closed (1013) and its
client reconnects, as it would after losing frames anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from litestar import WebSocket, websocket
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect

from devstack.auth import TokenError
from devstack.realtime.channel import TOPIC_PREFIX, RealtimeChannel, check_token
from devstack.realtime.protocol import (
    PHOENIX_TOPIC,
    SUPPORTED_VSN,
    VSN_1,
    ClientFrame,
    FrameError,
    decode_frame,
    encode_frame,
    encode_json,
    reply_payload,
)

if TYPE_CHECKING:
    from devstack.realtime.hub import RealtimeHub

log = logging.getLogger("devstack.realtime")

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN_LATER = 1013


class RealtimeConnection:
    def __init__(self, hub: RealtimeHub, vsn: str, token: str, queue_size: int) -> None:
        self.hub = hub
        self.vsn = vsn
        #: the connection's (translated) token: the fallback for joins without a usable `access_token`
        self.token = token
        self.channels: dict[str, RealtimeChannel] = {}
        self.closed = False
        self.dropped = False
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=queue_size)
        self._close_code = CLOSE_NORMAL
        self._close_reason = ""
        self._writer_task: asyncio.Task[None] | None = None

    # -- output ---------------------------------------------------------------------------------------------
    def send_text(self, text: str) -> None:
        if self.closed:
            return
        try:
            self._queue.put_nowait(text)
        except asyncio.QueueFull:
            log.warning("realtime socket send queue overflowed (%d frames); closing it", self._queue.maxsize)
            self.dropped = True
            self.hub.stats_overflows += 1
            self.close(CLOSE_TRY_AGAIN_LATER, "send queue overflow")

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Stop sending. Normally the queued frames go out before the close frame; after an overflow they are
        discarded and a send blocked on the slow client is abandoned, so the socket is torn down now."""
        if self.closed:
            return
        self.closed = True
        self._close_code, self._close_reason = code, reason
        if self.dropped:
            while not self._queue.empty():
                self._queue.get_nowait()
            if self._writer_task is not None:
                self._writer_task.cancel()
        self._queue.put_nowait(None)
        self._drop_channels()

    async def _writer(self, socket: WebSocket[object, object, State]) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                await self._send_close(socket)
                return
            await socket.send({"type": "websocket.send", "text": item, "bytes": None})

    async def _send_close(self, socket: WebSocket[object, object, State]) -> None:
        # uvicorn waits for the client's close reply, up to its close timeout, then aborts the connection
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                socket.send({"type": "websocket.close", "code": self._close_code, "reason": self._close_reason}),
                15,
            )

    # -- input ----------------------------------------------------------------------------------------------
    async def run(self, socket: WebSocket[object, object, State]) -> None:
        writer = self._writer_task = asyncio.create_task(self._writer(socket), name="realtime-socket-writer")
        try:
            while not writer.done():
                receiving = asyncio.ensure_future(socket.receive())
                done, _ = await asyncio.wait({receiving, writer}, return_when=asyncio.FIRST_COMPLETED)
                if receiving not in done:
                    receiving.cancel()
                    with contextlib.suppress(BaseException):
                        await receiving
                    break
                message = receiving.result()
                if message["type"] == "websocket.disconnect":
                    break
                if message["type"] != "websocket.receive":
                    continue
                data = message.get("text")
                if data is None:
                    raw = message.get("bytes")
                    if raw is None:
                        continue
                    data = raw.decode("utf-8", "replace")
                self.handle_text(data)
        except WebSocketDisconnect:
            pass
        finally:
            self.closed = True
            self._drop_channels()
            if not writer.done():
                writer.cancel()
            with contextlib.suppress(BaseException):
                await writer
            if self.dropped:
                await self._send_close(socket)

    def handle_text(self, text: str) -> None:
        try:
            frame = decode_frame(text)
        except FrameError as exc:
            log.debug("realtime: ignoring malformed frame: %s", exc)
            return
        self.handle(frame)

    def handle(self, frame: ClientFrame) -> None:
        if frame.topic == PHOENIX_TOPIC:
            if frame.event == "heartbeat":
                self._reply(frame, "ok", {})
            return
        channel = self.channels.get(frame.topic)
        if frame.event == "phx_join":
            self._join(frame)
        elif channel is None:
            if frame.event == "phx_leave":
                self._reply(frame, "ok", {})
            else:
                self._reply(frame, "error", {"reason": "unmatched topic"})
        elif frame.event == "phx_leave":
            channel.leave(frame)
            self.forget(channel)
        elif frame.event == "access_token":
            channel.refresh_token(frame)
        elif frame.event == "broadcast":
            channel.on_broadcast(frame)
        elif frame.event == "presence":
            channel.on_presence(frame)

    def _join(self, frame: ClientFrame) -> None:
        if not frame.topic.startswith(TOPIC_PREFIX):
            self._reply(frame, "error", {"reason": "unmatched topic"})
            return
        previous = self.channels.pop(frame.topic, None)
        if previous is not None:  # Phoenix closes a duplicate join's channel silently
            previous.close()
        channel = RealtimeChannel(self, frame.topic, frame.join_ref or frame.ref)
        if channel.join(frame):
            self.channels[frame.topic] = channel

    def forget(self, channel: RealtimeChannel) -> None:
        if self.channels.get(channel.topic) is channel:
            del self.channels[channel.topic]

    def _reply(self, frame: ClientFrame, status: str, response: object) -> None:
        self.send_text(
            encode_frame(
                self.vsn,
                topic=frame.topic,
                event="phx_reply",
                payload_json=reply_payload(status, response),
                ref=frame.ref,
                join_ref=frame.join_ref,
            )
        )

    def _drop_channels(self) -> None:
        channels, self.channels = list(self.channels.values()), {}
        for channel in channels:
            channel.close()


async def _refuse(socket: WebSocket[object, object, State], status: int, error: str) -> None:
    """Answer the upgrade request with a plain HTTP error (ASGI websocket denial response), as Realtime does."""
    message = await socket.receive()
    if message["type"] != "websocket.connect":
        return
    extensions = socket.scope.get("extensions") or {}
    if "websocket.http.response" not in extensions:
        await socket.close(code=1008, reason=error[:120])
        return
    await socket.send(
        {"type": "websocket.http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await socket.send(
        {"type": "websocket.http.response.body", "body": encode_json({"error": error}).encode(), "more_body": False}
    )


@websocket("/websocket", name="realtime-websocket", include_in_schema=False)
async def realtime_websocket(socket: WebSocket[object, object, State]) -> None:
    """Phoenix socket for postgres_changes (Realtime `/socket/websocket` behind Kong's `/realtime/v1`)."""
    hub: RealtimeHub = socket.app.state.gateway.realtime
    raw = socket.headers.get("x-api-key") or socket.query_params.get("apikey")
    if not raw:
        await _refuse(socket, 401, "No api key provided")
        return
    token = hub.keys.translate(raw)
    try:
        check_token(token, hub.keys)
    except TokenError as exc:
        await _refuse(socket, 401, str(exc))
        return
    vsn = socket.query_params.get("vsn") or VSN_1
    if vsn not in SUPPORTED_VSN:
        await _refuse(socket, 400, f"Unsupported serializer version: {vsn}")
        return
    await socket.accept()
    conn = RealtimeConnection(hub, vsn, token, hub.settings.queue_size)
    hub.connections.add(conn)
    try:
        await conn.run(socket)
    finally:
        hub.connections.discard(conn)

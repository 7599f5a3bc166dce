"""`service/guard.py` around a small ASGI app in-process (real uvicorn, real sockets): a websocket outlives the
head deadline, and a request answered normally keeps its connection."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
import websockets

from service.guard import BodyGuard, GuardLimits, guarded_protocol

LIMITS = GuardLimits(header_timeout_s=1, body_timeout_s=1, max_connections=10, max_body_bytes=1024)


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()  # connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            await send({"type": "websocket.send", "text": "echo:" + message["text"]})
    elif scope["type"] == "http":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"got %d" % len(body)})


@pytest.fixture
async def port() -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(BodyGuard(app, LIMITS), http=guarded_protocol(LIMITS), lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
        await asyncio.sleep(0.01)
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task


async def test_a_websocket_outlives_the_head_deadline(port: int) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await asyncio.sleep(LIMITS.header_timeout_s * 2.5)
        await ws.send("still here")
        assert await ws.recv() == "echo:still here"


async def test_a_kept_alive_connection_serves_requests_within_the_deadlines(port: int) -> None:
    async with httpx.AsyncClient() as http:
        for i in range(3):
            r = await http.post(f"http://127.0.0.1:{port}/", content=b"x" * (100 * i))
            assert r.status_code == 200 and r.text == f"got {100 * i}"
            await asyncio.sleep(0.4)  # idle between requests, under the head deadline


def test_what_clients_trigger_is_logged_at_a_bounded_rate(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import time

    from service import guard

    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])  # the clock the guard's rate limiter reads
    limited = guard._RateLimitedLog(logging.INFO, every_s=5.0, burst=10)
    with caplog.at_level(logging.INFO, logger="bisonsync.service.guard"):
        for i in range(100):
            limited("aborted %d", i)
        now[0] += 5.0
        limited("aborted %d", 100)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[:10] == [f"aborted {i}" for i in range(10)]
    assert lines[10:] == ["aborted 100 (90 similar lines suppressed)"]

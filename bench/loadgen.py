"""A small async HTTP/1.1 load generator for loopback benchmarks: open loop (fixed offered rate) and closed loop.

Hand-rolled over asyncio streams (keep-alive, one request in flight per connection) rather than httpx, so the load
generator spends a few microseconds per request and leaves the CPU to the server under test: on a 2-core machine
the client's own cost would otherwise show up as server latency.

Open loop: request i is *due* at `start + i / rate`, whether or not earlier ones have been answered; its latency is
measured from that due time to the end of its response, so time spent waiting for a free connection counts
(no coordinated omission, as in wrk2). Closed loop: N workers send back to back; latency from send to response.
Both are bounded in count and in time; requests still queued at the hard deadline are *shed* (never sent) and
reported as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.common import LOOPBACK

#: status recorded for a request that got no HTTP answer (connection error or timeout)
NO_ANSWER = 0
#: status recorded for a request that was scheduled but never sent (shed at the hard deadline)
SHED = -1


class HttpError(Exception):
    """The server closed the connection or answered something that is not HTTP/1.1."""


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1; `post` sends one request and reads the whole answer."""

    def __init__(self, port: int, path: str, headers: dict[str, str], timeout_s: float) -> None:
        self.port = port
        self.timeout_s = timeout_s
        head = [f"POST {path} HTTP/1.1", f"Host: {LOOPBACK}:{port}", "Content-Type: application/json"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self._head = ("\r\n".join(head) + "\r\nContent-Length: ").encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(LOOPBACK, self.port)
        return self._reader, self._writer

    async def open(self) -> None:
        """Connect now, so the first request's latency does not include the TCP handshake."""
        await self._connect()

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def post(self, body: bytes) -> int:
        """POST `body`; the HTTP status, or NO_ANSWER on a connection error or timeout (the connection is reset)."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._exchange(body)
        except (OSError, TimeoutError, HttpError, asyncio.IncompleteReadError, ValueError):
            await self.close()
            return NO_ANSWER

    async def _exchange(self, body: bytes) -> int:
        reader, writer = await self._connect()
        writer.write(self._head + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HttpError(f"not an HTTP/1.x status line: {status_line[:60]!r}")
        status = int(parts[1])
        length, chunked, close = 0, False, parts[0] == "HTTP/1.0"
        for line in header_lines:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and "close" in value.lower():
                close = True
        if chunked:
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await reader.readexactly(length)
        if close:
            await self.close()
        return status


@dataclass
class LoadResult:
    """What one run did: per request its status and latency (ms), and when it started and ended."""

    mode: str
    #: requests per second offered (open loop) or 0 (closed loop)
    offered_rate: float
    concurrency: int
    started: float = 0.0
    ended: float = 0.0
    #: status per request index, for requests that were taken (sent or shed); SHED / NO_ANSWER as above
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: dict[int, float] = field(default_factory=dict)

    @property
    def answered(self) -> list[int]:
        return [i for i, s in self.statuses.items() if s > 0]

    @property
    def ok(self) -> list[int]:
        return [i for i, s in self.statuses.items() if 200 <= s < 300]

    @property
    def no_answer(self) -> list[int]:
        return [i for i, s in self.statuses.items() if s == NO_ANSWER]

    @property
    def shed(self) -> int:
        return sum(1 for s in self.statuses.values() if s == SHED)

    @property
    def http_errors(self) -> int:
        return sum(1 for s in self.statuses.values() if s >= 300)

    @property
    def sent(self) -> int:
        return sum(1 for s in self.statuses.values() if s != SHED)

    @property
    def elapsed_s(self) -> float:
        return self.ended - self.started

    @property
    def throughput(self) -> float:
        """2xx answers per second over the run (from the first due time to the last answer)."""
        return len(self.ok) / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def ok_latencies(self) -> list[float]:
        return [self.latencies_ms[i] for i in self.ok]


async def open_loop(
    make: Callable[[], Connection],
    bodies: Sequence[bytes],
    rate: float,
    duration_s: float,
    connections: int,
    drain_s: float = 5.0,
) -> LoadResult:
    """Offer `rate` requests/s for `duration_s` (bodies[0], bodies[1], ... in order) over `connections` keep-alive
    connections; after the schedule ends, wait up to `drain_s` for the backlog, then shed what was never sent."""
    count = min(len(bodies), int(rate * duration_s))
    result = LoadResult("open", rate, connections)
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    pool = [make() for _ in range(connections)]
    await asyncio.gather(*(c.open() for c in pool))
    start = time.perf_counter() + 0.05
    hard_deadline = start + duration_s + drain_s
    result.started = start

    async def worker(conn: Connection) -> None:
        while True:
            index, due = await queue.get()
            try:
                if time.perf_counter() > hard_deadline:
                    result.statuses[index] = SHED
                    continue
                status = await conn.post(bodies[index])
                done = time.perf_counter()
                result.statuses[index] = status
                result.latencies_ms[index] = (done - due) * 1000
                result.ended = max(result.ended, done)
            finally:
                queue.task_done()

    workers = [asyncio.create_task(worker(c)) for c in pool]
    try:
        for index in range(count):
            due = start + index / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            queue.put_nowait((index, due))
        await queue.join()
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for conn in pool:
            await conn.close()
    result.ended = max(result.ended, start + duration_s)
    return result


async def closed_loop(
    make: Callable[[], Connection],
    bodies: Sequence[bytes],
    concurrency: int,
    duration_s: float,
) -> LoadResult:
    """`concurrency` workers send bodies[0], bodies[1], ... back to back for `duration_s` (or until none are left)."""
    result = LoadResult("closed", 0.0, concurrency)
    pool = [make() for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for c in pool))
    next_index = 0
    result.started = time.perf_counter()
    deadline = result.started + duration_s

    async def worker(conn: Connection) -> None:
        nonlocal next_index
        while next_index < len(bodies) and time.perf_counter() < deadline:
            index = next_index
            next_index += 1
            sent = time.perf_counter()
            status = await conn.post(bodies[index])
            done = time.perf_counter()
            result.statuses[index] = status
            result.latencies_ms[index] = (done - sent) * 1000

    try:
        await asyncio.gather(*(worker(c) for c in pool))
    finally:
        for conn in pool:
            await conn.close()
    result.ended = time.perf_counter()
    return result

"""Serve a `SimulatedBison` over a real socket with uvicorn, on 127.0.0.1 only, in the running event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Self

import uvicorn

from devstack.simulator.app import create_simulator_app
from devstack.simulator.asgi import ASGIApp
from devstack.simulator.state import SimulatedBison

HOST = "127.0.0.1"


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers (the caller owns shutdown: tests, or the CLI's own handling)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class LoopbackServer:
    """`async with LoopbackServer(app) as server:` serves an ASGI app on `server.base_url` until the block ends."""

    def __init__(self, app: ASGIApp, *, port: int = 0, log_level: str = "warning", lifespan: bool = False) -> None:
        self.port = port
        config = uvicorn.Config(
            app,
            host=HOST,
            port=port,
            log_level=log_level,
            access_log=False,
            lifespan="on" if lifespan else "off",
            timeout_graceful_shutdown=1,
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self) -> None:
        # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then (else 40 ms delayed-ACK stalls)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, self.port))
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                await self._task  # re-raises what stopped it
                raise RuntimeError("the server stopped before it started")
            await asyncio.sleep(0.01)

    def _before_stop(self) -> None:
        """Hook: let in-flight requests finish quickly."""

    async def stop(self) -> None:
        if self._task is None:
            return
        self._before_stop()
        self._server.should_exit = True
        await self._task
        self._task = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class SimulatorServer(LoopbackServer):
    """`async with SimulatorServer(sim) as server:` serves `sim` on `server.base_url` until the block ends."""

    def __init__(self, sim: SimulatedBison, *, port: int = 0, log_level: str = "warning") -> None:
        super().__init__(create_simulator_app(sim), port=port, log_level=log_level)
        self.sim = sim

    def _before_stop(self) -> None:
        self.sim.release_hangs()  # hanging requests would otherwise hold shutdown for `hang_s`

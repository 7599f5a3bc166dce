"""How the service is served: the app under uvicorn, behind the slow-client guard (`service.guard`), one way for
both `bisonsync serve` (`serve()`, blocking, uvicorn's own signal handling) and `bisonsync run` (`ServiceServer`,
started and stopped in a running event loop whose owner handles the signals).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Self

import uvicorn
from litestar.types import ASGIApp

from bisonsync.settings import Settings
from service.guard import BodyGuard, GuardLimits, guarded_protocol


def guard_limits(settings: Settings) -> GuardLimits:
    """Slow clients are cut off (header/body deadlines, connection cap); bodies up to the webhook limit are timed."""
    return GuardLimits(
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        max_connections=settings.max_connections,
        max_body_bytes=settings.webhook_max_bytes,
    )


def server_config(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    log_level: str,
    limits: GuardLimits,
    graceful_shutdown_s: int | None = None,
) -> uvicorn.Config:
    """uvicorn serving `app` behind the guard, logging through the process's handler (bisonsync.logs)."""
    return uvicorn.Config(
        BodyGuard(app, limits),
        host=host,
        port=port,
        log_level=log_level,
        # uvicorn's access log prints query strings (tokens): ours (service.access_log) strips them
        access_log=False,
        # uvicorn's own records go through the root handler (bisonsync.logs: redaction, escaped values)
        log_config=None,
        lifespan="on",
        http=guarded_protocol(limits),
        timeout_keep_alive=5,
        timeout_graceful_shutdown=graceful_shutdown_s,
    )


def serve(app: ASGIApp, settings: Settings, *, host: str, port: int, log_level: str) -> None:
    """Run `app` in the foreground until SIGINT/SIGTERM (what `bisonsync serve` does)."""
    config = server_config(app, host=host, port=port, log_level=log_level, limits=guard_limits(settings))
    uvicorn.Server(config).run()


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the caller owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class InLoopServer:
    """A uvicorn `config` served in the running event loop until `stop()`; the caller owns the signals. Port 0 in
    the config: a free one, in `port` once started. The service (`ServiceServer`) and the devstack's loopback
    servers (the Email Bison simulator, test receivers) are both this."""

    def __init__(self, config: uvicorn.Config) -> None:
        self.host = config.host
        self.port = config.port
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then (else 40 ms delayed-ACK stalls)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                await self._task  # re-raises what stopped it
                raise RuntimeError(f"the server on {self.base_url} stopped before it started")
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


class ServiceServer(InLoopServer):
    """`app` served on `host:port` in the running event loop, guarded as `serve()` guards it, until `stop()`
    (what `bisonsync run` does)."""

    def __init__(
        self, app: ASGIApp, settings: Settings, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
    ) -> None:
        super().__init__(
            server_config(
                app, host=host, port=port, log_level=log_level, limits=guard_limits(settings), graceful_shutdown_s=1
            )
        )

"""Serve a `SimulatedBison` over a real socket with uvicorn, on 127.0.0.1 only, in the running event loop."""

from __future__ import annotations

import uvicorn

from devstack.simulator.app import create_simulator_app
from devstack.simulator.asgi import ASGIApp
from devstack.simulator.state import SimulatedBison
from service.server import InLoopServer

HOST = "127.0.0.1"


class LoopbackServer(InLoopServer):
    """`async with LoopbackServer(app) as server:` serves an ASGI app on `server.base_url` until the block ends."""

    def __init__(self, app: ASGIApp, *, port: int = 0, log_level: str = "warning", lifespan: bool = False) -> None:
        super().__init__(
            uvicorn.Config(
                app,
                host=HOST,
                port=port,
                log_level=log_level,
                access_log=False,
                lifespan="on" if lifespan else "off",
                timeout_graceful_shutdown=1,
            )
        )


class SimulatorServer(LoopbackServer):
    """`async with SimulatorServer(sim) as server:` serves `sim` on `server.base_url` until the block ends."""

    def __init__(self, sim: SimulatedBison, *, port: int = 0, log_level: str = "warning") -> None:
        super().__init__(create_simulator_app(sim), port=port, log_level=log_level)
        self.sim = sim

    def _before_stop(self) -> None:
        self.sim.release_hangs()  # hanging requests would otherwise hold shutdown for `hang_s`

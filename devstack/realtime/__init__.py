"""Realtime subset served under `/realtime/v1` (placeholder until the emulator lands)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import Router

if TYPE_CHECKING:
    from devstack.gateway import GatewayConfig


class RealtimeHub:
    """Owns the logical slot poller and the connected sockets."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def build_realtime_router() -> Router:
    return Router(path="/realtime/v1", route_handlers=[])

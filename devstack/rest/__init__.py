"""PostgREST subset served under `/rest/v1` (placeholder until the emulator lands)."""

from __future__ import annotations

from litestar import Router


def build_rest_router() -> Router:
    return Router(path="/rest/v1", route_handlers=[])

"""Realtime subset served under `/realtime/v1`: Phoenix channels with `postgres_changes`, Broadcast (also from the
database and through the REST broadcast API), Presence and private channels, as supabase/realtime.

Changes come from logical decoding of publication `supabase_realtime` (a temporary `pgoutput` slot polled through
SQL), are filtered per binding, authorized per subscriber role (column privileges, RLS for INSERT/UPDATE) and
pushed to the joined channels. Modules:

- `pgoutput`: the binary protocol decoder; `values`: text values -> JSON and typed comparison keys;
- `poller`: the slot; `subscriptions` + `filters`: bindings, filter parsing/checks/evaluation;
- `authz`: privileges and RLS checks; `dispatch`: changes -> frames;
- `protocol`, `channel`, `socket`: the Phoenix side; `broadcast`: topics, presence, private-channel checks,
  messages from the database; `rest`: the REST broadcast API; `hub`: lifecycle.
"""

from __future__ import annotations

from litestar import Router

from devstack.realtime.hub import RealtimeHub, RealtimeSettings
from devstack.realtime.rest import broadcast_api, broadcast_event_api
from devstack.realtime.socket import realtime_websocket

__all__ = ["RealtimeHub", "RealtimeSettings", "build_realtime_router"]


def build_realtime_router() -> Router:
    return Router(path="/realtime/v1", route_handlers=[realtime_websocket, broadcast_api, broadcast_event_api])

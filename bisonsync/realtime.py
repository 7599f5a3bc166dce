"""Typed Realtime subscriptions to what bisonsync writes, over the official `realtime` client.

    async with Watcher(url, anon_key, access_token=user_jwt) as watcher:
        async for event in watcher.watch("client_metrics_daily", workspace_id=ws_id):
            match event:
                case ChangeEvent(type="UPDATE", record=MetricDay() as row): ...
                case ConnectionEvent(state="error"): ...

The realtime client already reconnects with backoff and rejoins channels; the watcher surfaces those transitions
as `ConnectionEvent`s instead of re-implementing them. RLS decides what a watcher sees (use a member's token).

Two sources, one event type:

- `watch(table, ...)`: Realtime **postgres_changes** (no setup; the server checks RLS for every change and every
  subscriber, which costs one query per change per distinct subscriber claims).
- `watch_workspace(workspace_id)` / `watch_broadcast(topic)`: **Broadcast from the database** (Supabase's path for
  many subscribers). Needs the opt-in triggers: `select public.set_realtime_broadcast(true)`. Each change is
  sent once to the private topic `bisonsync:<workspace id>`; Realtime checks membership once, when the channel
  joins. Payloads from any `realtime.broadcast_changes()` trigger decode the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal

import msgspec
from realtime import AsyncRealtimeChannel, AsyncRealtimeClient, RealtimeSubscribeStates
from realtime.types import RealtimeChannelOptions


class MailboxRow(msgspec.Struct, kw_only=True):
    workspace_id: str
    bison_sender_id: int
    email_address: str
    status: str
    email_provider: str | None = None
    reseller: str | None = None
    emails_sent_count: int | None = None
    reply_rate_percentage: float | None = None
    deleted_at: str | None = None


class MetricDayRow(msgspec.Struct, kw_only=True):
    workspace_id: str
    day: str
    emails_sent: int = 0
    replies: int = 0
    interested: int = 0
    bounced: int = 0
    unsubscribed: int = 0


class LeadRow(msgspec.Struct, kw_only=True):
    id: str
    workspace_id: str
    lead_email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    pipeline_stage: str | None = None
    interested_at: str | None = None


class MailboxStatusChangeRow(msgspec.Struct, kw_only=True):
    workspace_id: str
    bison_sender_id: int | None = None
    email_address: str | None = None
    old_status: str | None = None
    new_status: str
    source: str
    event_at: str | None = None


class WebhookActivityRow(msgspec.Struct, kw_only=True):
    workspace_id: str
    last_delivery_at: str | None = None
    last_event_type: str | None = None
    last_status: str | None = None
    last_error: str | None = None
    deliveries_total: int = 0


#: the tables bisonsync publishes for consumers, and the row type each decodes to
ROW_TYPES: dict[str, type[msgspec.Struct]] = {
    "sender_emails_cache": MailboxRow,
    "client_metrics_daily": MetricDayRow,
    "client_leads": LeadRow,
    "mailbox_status_history": MailboxStatusChangeRow,
    "webhook_activity": WebhookActivityRow,
}

ChangeType = Literal["INSERT", "UPDATE", "DELETE"]


class ChangeEvent(msgspec.Struct, kw_only=True):
    table: str
    type: ChangeType
    commit_timestamp: datetime
    #: the new row, typed when the table is known (dict otherwise); None for DELETE
    record: Any = None
    #: the old row (full with REPLICA IDENTITY FULL; primary key only when RLS is on); None for INSERT
    old_record: dict[str, Any] | None = None
    errors: list[str] | None = None


class ConnectionEvent(msgspec.Struct, kw_only=True):
    #: live: subscribed to PostgreSQL; error: channel errored (the client rejoins); closed; timed_out
    state: Literal["live", "joined", "error", "closed", "timed_out"]
    detail: str | None = None


WatchEvent = ChangeEvent | ConnectionEvent


def decode_change(payload: dict[str, Any]) -> ChangeEvent:
    """A realtime `postgres_changes` payload (`{"data": {...}, "ids": [...]}`) as a typed ChangeEvent."""
    data = payload["data"]
    table = str(data["table"])
    row_type = ROW_TYPES.get(table)
    record = data.get("record")
    if record is not None and row_type is not None:
        record = msgspec.convert(record, row_type, strict=False)
    return ChangeEvent(
        table=table,
        type=data["type"],
        commit_timestamp=msgspec.convert(data["commit_timestamp"], datetime, strict=False),
        record=record,
        old_record=data.get("old_record"),
        errors=data.get("errors"),
    )


#: the private Realtime topic the opt-in database triggers broadcast a workspace's changes to
def workspace_topic(workspace_id: str) -> str:
    return f"bisonsync:{workspace_id}"


def decode_broadcast(message: dict[str, Any]) -> ChangeEvent | None:
    """A Broadcast-from-the-database message (`{"event", "payload": {operation, table, schema, record,
    old_record[, commit_timestamp]}}`, as `realtime.broadcast_changes()` and bisonsync's triggers send) as a typed
    ChangeEvent; None for a message of another shape. Without `commit_timestamp` the receive time is used."""
    payload = message.get("payload")
    if not isinstance(payload, dict):
        return None
    operation, table = payload.get("operation"), payload.get("table")
    if operation not in ("INSERT", "UPDATE", "DELETE") or not isinstance(table, str):
        return None
    record = payload.get("record")
    row_type = ROW_TYPES.get(table)
    if record is not None and row_type is not None:
        record = msgspec.convert(record, row_type, strict=False)
    stamp = payload.get("commit_timestamp")
    return ChangeEvent(
        table=table,
        type=operation,
        commit_timestamp=msgspec.convert(stamp, datetime, strict=False) if stamp else datetime.now(UTC),
        record=record,
        old_record=payload.get("old_record"),
    )


class Watcher:
    """One realtime connection; each `watch()` is one channel with one postgres_changes binding."""

    def __init__(
        self, supabase_url: str, api_key: str, *, access_token: str | None = None, queue_size: int = 10_000
    ) -> None:
        self._client = AsyncRealtimeClient(
            supabase_url.rstrip("/") + "/realtime/v1", api_key, auto_reconnect=True, initial_backoff=0.5
        )
        self._access_token = access_token
        self._queue_size = queue_size
        self._channels: list[AsyncRealtimeChannel] = []
        self._counter = 0

    async def __aenter__(self) -> Watcher:
        await self._client.connect()
        if self._access_token:
            await self._client.set_auth(self._access_token)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        for channel in self._channels:
            with contextlib.suppress(Exception):
                await self._client.remove_channel(channel)
        self._channels.clear()
        with contextlib.suppress(Exception):
            await self._client.close()

    async def watch(
        self,
        table: str,
        *,
        workspace_id: str | None = None,
        event: Literal["*", "INSERT", "UPDATE", "DELETE"] = "*",
        filter: str | None = None,
        schema: str = "public",
    ) -> AsyncIterator[WatchEvent]:
        """Yield changes of `table` (optionally one workspace's) and connection transitions, until closed."""
        queue: asyncio.Queue[WatchEvent] = asyncio.Queue(self._queue_size)
        filters = [f for f in (filter, f"workspace_id=eq.{workspace_id}" if workspace_id else None) if f]

        def put(item: WatchEvent) -> None:
            with contextlib.suppress(asyncio.QueueFull):  # a consumer this slow loses events, never the socket
                queue.put_nowait(item)

        def on_change(payload: Any) -> None:
            put(decode_change(payload))

        def on_system(payload: Any) -> None:
            # realtime-py hands over a pydantic model (older versions: a dict)
            status = payload.get("status") if isinstance(payload, dict) else getattr(payload, "status", None)
            message = payload.get("message") if isinstance(payload, dict) else getattr(payload, "message", None)
            if status == "ok":
                put(ConnectionEvent(state="live", detail=str(message)))

        self._counter += 1
        channel = self._client.channel(f"bisonsync-{table}-{self._counter}")
        channel.on_postgres_changes(
            event,  # type: ignore[arg-type]
            on_change,
            table=table,
            schema=schema,
            filter=",".join(filters) or None,
        )
        channel.on_system(on_system)
        await self._run_channel(channel, put, live_on_join=False)
        async for item in self._stream(channel, queue):
            yield item

    async def watch_workspace(
        self, workspace_id: str, *, tables: Iterable[str] | None = None
    ) -> AsyncIterator[WatchEvent]:
        """Yield one workspace's KPI and mailbox changes from its private broadcast topic (see the module doc)."""
        async for item in self.watch_broadcast(workspace_topic(workspace_id), tables=tables):
            yield item

    async def watch_broadcast(
        self, topic: str, *, private: bool = True, tables: Iterable[str] | None = None
    ) -> AsyncIterator[WatchEvent]:
        """Yield the row changes broadcast to `topic` by the database (`realtime.broadcast_changes()`-shaped
        payloads), optionally only those of `tables`, and connection transitions, until closed. A refused join
        (not a member) shows as `ConnectionEvent(state="error")`. One stream per topic per Watcher (the realtime
        client keeps one channel per topic)."""
        queue: asyncio.Queue[WatchEvent] = asyncio.Queue(self._queue_size)
        wanted = frozenset(tables) if tables is not None else None

        def put(item: WatchEvent) -> None:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(item)

        def on_message(message: Any) -> None:
            event = decode_broadcast(dict(message))
            if event is not None and (wanted is None or event.table in wanted):
                put(event)

        options: RealtimeChannelOptions = {
            "config": {
                "broadcast": {"ack": False, "self": False},
                "presence": {"key": "", "enabled": False},
                "private": private,
            }
        }
        channel = self._client.channel(topic, params=options)
        channel.on_broadcast("*", on_message)
        # A broadcast channel is live as soon as it is joined (there is no database subscription to wait for).
        await self._run_channel(channel, put, live_on_join=True)
        async for item in self._stream(channel, queue):
            yield item

    async def _run_channel(
        self, channel: AsyncRealtimeChannel, put: Callable[[WatchEvent], None], *, live_on_join: bool
    ) -> None:
        def on_state(state: RealtimeSubscribeStates, err: Exception | None) -> None:
            put(ConnectionEvent(state=_STATES[state], detail=str(err) if err else None))
            if live_on_join and state == RealtimeSubscribeStates.SUBSCRIBED:
                put(ConnectionEvent(state="live", detail="joined"))

        self._channels.append(channel)
        await channel.subscribe(on_state)

    async def _stream(
        self, channel: AsyncRealtimeChannel, queue: asyncio.Queue[WatchEvent]
    ) -> AsyncIterator[WatchEvent]:
        """What `channel` puts on `queue`, until it closes; the channel is removed when the consumer stops."""
        try:
            while True:
                item = await queue.get()
                yield item
                if isinstance(item, ConnectionEvent) and item.state == "closed":
                    return
        finally:
            await self._drop(channel)

    async def _drop(self, channel: AsyncRealtimeChannel) -> None:
        if channel in self._channels:
            self._channels.remove(channel)
            with contextlib.suppress(Exception):
                await self._client.remove_channel(channel)


_STATES: dict[RealtimeSubscribeStates, Literal["joined", "error", "closed", "timed_out"]] = {
    RealtimeSubscribeStates.SUBSCRIBED: "joined",
    RealtimeSubscribeStates.CHANNEL_ERROR: "error",
    RealtimeSubscribeStates.CLOSED: "closed",
    RealtimeSubscribeStates.TIMED_OUT: "timed_out",
}

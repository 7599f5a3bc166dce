"""`RealtimeHub`: what the gateway starts and stops — the slot poller, the subscriptions, the open sockets.

The hub opens its own small asyncpg pool as `authenticator` (subscription checks and RLS queries switch role per
transaction, as PostgREST does), and the poller's dedicated replication connection (`postgres`). Settings come
from the environment so the gateway command line stays unchanged:

- `DEVSTACK_REALTIME_POLL_MS` (default 50): slot poll interval; a full batch is re-polled at once.
- `DEVSTACK_REALTIME_MAX_CHANGES` (default 1000): messages per poll.
- `DEVSTACK_REALTIME_QUEUE` (default 10000): frames buffered per socket before it is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

from devstack.realtime.authz import Authorizer, prepare_connection
from devstack.realtime.broadcast import Permissions, TopicRegistry, authorize, is_message_change, relay_messages
from devstack.realtime.dispatch import Dispatcher
from devstack.realtime.pgoutput import RowChange
from devstack.realtime.poller import SlotPoller
from devstack.realtime.subscriptions import (
    BindingRequest,
    ChangeSink,
    ChannelSubscription,
    SubscribeError,
    SubscriptionRegistry,
    create_subscription,
)
from devstack.realtime.values import TypeCache

if TYPE_CHECKING:
    from devstack.gateway import GatewayConfig
    from devstack.keys import StackKeys
    from devstack.realtime.socket import RealtimeConnection

log = logging.getLogger("devstack.realtime")

SLOT_READY_TIMEOUT = 15.0
POOL_SETTINGS = {"application_name": "devstack-realtime", "timezone": "UTC"}


@dataclass(frozen=True)
class RealtimeSettings:
    poll_interval: float = 0.05
    max_changes: int = 1000
    queue_size: int = 10_000
    pool_max: int = 10

    @classmethod
    def from_env(cls) -> RealtimeSettings:
        env = os.environ
        return cls(
            poll_interval=int(env.get("DEVSTACK_REALTIME_POLL_MS", "50")) / 1000,
            max_changes=int(env.get("DEVSTACK_REALTIME_MAX_CHANGES", "1000")),
            queue_size=int(env.get("DEVSTACK_REALTIME_QUEUE", "10000")),
        )


class RealtimeHub:
    """Owns the logical slot poller and the connected sockets."""

    def __init__(self, config: GatewayConfig, settings: RealtimeSettings | None = None) -> None:
        self.config = config
        self.settings = settings or RealtimeSettings.from_env()
        self.registry = SubscriptionRegistry()
        self.types = TypeCache()
        self.connections: set[RealtimeConnection] = set()
        self.topics = TopicRegistry()
        self.stats_overflows = 0
        self._pool: asyncpg.Pool | None = None
        #: as the database owner (`postgres`): private-channel checks insert probe rows into realtime.messages
        self._owner_pool: asyncpg.Pool | None = None
        self._poller: SlotPoller | None = None
        self._dispatcher: Dispatcher | None = None

    @property
    def keys(self) -> StackKeys:
        return self.config.keys

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("RealtimeHub is not started")
        return self._pool

    @property
    def poller(self) -> SlotPoller:
        if self._poller is None:
            raise RuntimeError("RealtimeHub is not started")
        return self._poller

    async def start(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.config.db_url,
            min_size=1,
            max_size=self.settings.pool_max,
            server_settings=POOL_SETTINGS,
            init=prepare_connection,
        )
        self._owner_pool = await asyncpg.create_pool(
            self.config.replication_db_url,
            min_size=0,
            max_size=2,
            server_settings=POOL_SETTINGS,
        )
        self._dispatcher = Dispatcher(self.registry, Authorizer(self._pool), self.types)
        await self._purge_old_messages()
        self._poller = SlotPoller(
            self.config.replication_db_url,
            self._on_changes,
            interval=self.settings.poll_interval,
            max_changes=self.settings.max_changes,
        )
        await self._poller.start()

    async def stop(self) -> None:
        for conn in list(self.connections):
            conn.close(1001, "server shutting down")
        if self._poller is not None:
            await self._poller.stop()
            self._poller = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._owner_pool is not None:
            await self._owner_pool.close()
            self._owner_pool = None

    async def _purge_old_messages(self) -> None:
        """Supabase drops `realtime.messages` partitions after a few days; the devstack deletes the rows."""
        if self._owner_pool is None:
            return
        try:
            await self._owner_pool.execute(
                "delete from realtime.messages where inserted_at < now() - interval '3 days'"
            )
        except (OSError, asyncpg.PostgresError) as exc:
            log.debug("realtime.messages purge skipped: %s", exc)

    async def authorize(self, topic: str, role: str, claims_json: str) -> Permissions:
        """A private channel's permissions from RLS on realtime.messages."""
        if self._owner_pool is None:
            raise RuntimeError("RealtimeHub is not started")
        return await authorize(self._owner_pool, topic, role, claims_json)

    async def _on_changes(self, changes: list[RowChange]) -> None:
        if self._dispatcher is None:
            return
        # Keep commit order between postgres_changes and broadcasts from the database.
        pending: list[RowChange] = []
        for change in changes:
            if is_message_change(change):
                if pending:
                    await self._dispatch_rows(pending)
                    pending = []
                relay_messages(self.topics, [change])
            else:
                pending.append(change)
        if pending:
            await self._dispatch_rows(pending)

    async def _dispatch_rows(self, changes: list[RowChange]) -> None:
        assert self._dispatcher is not None
        relation_types = {c.type_oid for change in changes for c in change.relation.columns}
        await self.types.ensure(self.pool, relation_types)
        await self._dispatcher.dispatch(changes)

    async def subscribe(
        self,
        sink: ChangeSink,
        bindings: list[BindingRequest],
        role: str,
        claims_json: str,
        start_lsn: int | None,
    ) -> ChannelSubscription:
        """Check and build a channel's subscription once the slot exists (so nothing after `start_lsn` is lost)."""
        try:
            await asyncio.wait_for(self.poller.ready.wait(), SLOT_READY_TIMEOUT)
        except TimeoutError:
            raise SubscribeError("Realtime was unable to connect to the project database") from None
        async with self.pool.acquire() as conn:
            return await create_subscription(
                conn, self.types, bindings, sink=sink, role=role, claims_json=claims_json, start_lsn=start_lsn
            )

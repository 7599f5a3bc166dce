"""The logical replication slot the Realtime emulator reads, polled through SQL like the real server's poller.

One temporary `pgoutput` slot per gateway process (`devstack_rt_<pid>_<random>`) lives on a dedicated connection
as a role with REPLICATION. Temporary slots vanish with their session, so a killed gateway pins no WAL; slots of
that name pattern left inactive (e.g. by an older, non-temporary build) are dropped at start. The slot is polled
every `interval` seconds with `pg_logical_slot_get_binary_changes(..., 'publication_names', <publications>)`
(`supabase_realtime`, and `supabase_realtime_messages_publication` for Broadcast from the database when it exists),
which consumes (advances) it whether or not anyone is subscribed; a full batch is followed by an immediate re-poll.
Logical decoding only reads WAL that is flushed. The devstack runs with `synchronous_commit = off`, where the WAL
writer may flush a commit up to `wal_writer_delay` (200 ms) later; so when a poll sees unflushed WAL it first commits
a tiny synchronous transaction (flushing everything before it), keeping latency what it is on a Supabase database.
(A transaction with only an xid writes no WAL before its commit record and would commit asynchronously too.)
If polling keeps failing (e.g. the publication was dropped and re-created under the slot), the slot is re-created.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Awaitable, Callable

import asyncpg

from devstack.realtime.broadcast import MESSAGES_PUBLICATION
from devstack.realtime.pgoutput import PgOutputDecoder, RowChange
from devstack.realtime.subscriptions import PUBLICATION

log = logging.getLogger("devstack.realtime")

SLOT_PREFIX = "devstack_rt_"
#: session settings fixing the text form of values in the decoded output
SESSION_SETTINGS = {
    "application_name": "devstack-realtime-slot",
    "timezone": "UTC",
    "datestyle": "ISO, MDY",
    "intervalstyle": "postgres",
    "bytea_output": "hex",
    # our own (empty) commits flush the WAL up to them, see `_flush_wal`
    "synchronous_commit": "local",
}
_RECREATE_AFTER_FAILURES = 3

ChangeHandler = Callable[[list[RowChange]], Awaitable[None]]


def new_slot_name() -> str:
    return f"{SLOT_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"


class SlotPoller:
    def __init__(
        self,
        dsn: str,
        handler: ChangeHandler,
        *,
        interval: float = 0.05,
        max_changes: int = 1000,
    ) -> None:
        self.dsn = dsn
        self.handler = handler
        self.interval = interval
        self.max_changes = max_changes
        self.slot_name = new_slot_name()
        #: set while a slot exists and is being polled
        self.ready = asyncio.Event()
        self.polls = 0
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._decoder = PgOutputDecoder()
        self._wake = asyncio.Event()
        #: the publications decoded: `supabase_realtime`, plus the messages one when the database has it
        self.publications = PUBLICATION

    async def start(self) -> None:
        """Create the slot now if the database is reachable, else keep trying in the background."""
        try:
            await self._open()
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("realtime slot not created yet (%s); retrying in the background", exc)
        self._task = asyncio.create_task(self._run(), name="devstack-realtime-poller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await self._close(drop=True)

    def wake(self) -> None:
        """Poll now instead of at the next tick."""
        self._wake.set()

    # -- slot lifecycle -------------------------------------------------------------------------------------
    async def _open(self) -> None:
        conn = await asyncpg.connect(self.dsn, server_settings=SESSION_SETTINGS, timeout=10)
        try:
            await self._drop_stale(conn)
            self.publications = await conn.fetchval(
                "select coalesce(string_agg(pubname, ',' order by pubname), $1) from pg_catalog.pg_publication "
                "where pubname = any($2::text[])",
                PUBLICATION,
                [PUBLICATION, MESSAGES_PUBLICATION],
            )
            self.slot_name = new_slot_name()
            await conn.execute(
                "select pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput', true)", self.slot_name
            )
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self._decoder = PgOutputDecoder()
        self.ready.set()
        log.info("realtime slot %s created", self.slot_name)

    async def _drop_stale(self, conn: asyncpg.Connection) -> None:
        rows = await conn.fetch(
            "select slot_name::text as name from pg_catalog.pg_replication_slots "
            "where slot_name like $1 and not active and database = current_database()",
            SLOT_PREFIX.replace("_", r"\_") + "%",
        )
        for row in rows:
            try:
                await conn.execute("select pg_catalog.pg_drop_replication_slot($1)", row["name"])
                log.info("dropped stale realtime slot %s", row["name"])
            except asyncpg.PostgresError as exc:  # taken meanwhile by a live gateway, or already gone
                log.debug("could not drop stale slot %s: %s", row["name"], exc)

    async def _close(self, *, drop: bool) -> None:
        self.ready.clear()
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if drop and not conn.is_closed():
                await asyncio.wait_for(
                    conn.execute("select pg_catalog.pg_drop_replication_slot($1)", self.slot_name), 5
                )
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.debug("dropping realtime slot %s: %s", self.slot_name, exc)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 5)

    # -- polling --------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        backoff = self.interval
        while True:
            try:
                if self._conn is None or self._conn.is_closed():
                    await self._close(drop=False)
                    await self._open()
                full = await self.poll_once()
                failures, backoff = 0, self.interval
                if full:
                    continue
                await self._sleep(self.interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database restarts, dropped publication, protocol surprises: retry
                failures += 1
                log.warning("realtime poll failed (%d): %s", failures, exc)
                if failures >= _RECREATE_AFTER_FAILURES:
                    await self._close(drop=True)
                    failures = 0
                await self._sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def poll_once(self) -> bool:
        """Consume up to `max_changes` messages; hand whole transactions to the handler. True if the batch was full."""
        conn = self._conn
        if conn is None:
            return False
        await self._flush_wal(conn)
        rows = await conn.fetch(
            "select data from pg_catalog.pg_logical_slot_get_binary_changes("
            "$1, null, $2, 'proto_version', '1', 'publication_names', $3)",
            self.slot_name,
            self.max_changes,
            self.publications,
        )
        self.polls += 1
        changes: list[RowChange] = []
        for row in rows:
            changes.extend(self._decoder.feed(bytes(row["data"])))
        if changes:
            try:
                await self.handler(changes)
            except Exception:  # the batch is consumed either way; keep the poller alive
                log.exception("realtime dispatch of %d changes failed", len(changes))
        return len(rows) >= self.max_changes

    async def _flush_wal(self, conn: asyncpg.Connection) -> None:
        """Flush WAL that asynchronous commits left in memory, so decoding sees those commits now."""
        if await conn.fetchval("select pg_catalog.pg_current_wal_insert_lsn() > pg_catalog.pg_current_wal_flush_lsn()"):
            # A transaction that wrote WAL commits synchronously (`synchronous_commit = local`), which flushes all
            # WAL before it. pgoutput ignores the message itself (its `messages` option is off).
            await conn.execute("select pg_catalog.pg_logical_emit_message(true, 'devstack_rt_flush', '')")

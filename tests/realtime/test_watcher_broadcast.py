"""The scalable path: opt-in database triggers broadcast KPI and mailbox changes to the private topic
`bisonsync:<workspace>`, guarded by membership RLS on realtime.messages, consumed by `Watcher.watch_workspace`."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from bisonsync.realtime import (
    ChangeEvent,
    ConnectionEvent,
    MailboxRow,
    MetricDayRow,
    Watcher,
    WatchEvent,
    decode_broadcast,
    workspace_topic,
)
from tests.conftest import StackHandle
from tests.schema.support import add_member, create_user

pytestmark = pytest.mark.timeout(120)


async def _collect(stream: AsyncIterator[WatchEvent], sink: list[WatchEvent]) -> None:
    async for event in stream:
        sink.append(event)


async def _wait(predicate: Any, what: str, timeout: float = 10) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():  # noqa: ASYNC110 - polling a plain list filled by another task
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def _changes(events: list[WatchEvent]) -> list[ChangeEvent]:
    return [e for e in events if isinstance(e, ChangeEvent)]


def _states(events: list[WatchEvent]) -> list[str]:
    return [e.state for e in events if isinstance(e, ConnectionEvent)]


async def _messages(db: asyncpg.Connection, ws: object) -> int:
    return int(await db.fetchval("select count(*) from realtime.messages where topic = $1", workspace_topic(str(ws))))


@pytest.fixture
async def broadcast_on(db: asyncpg.Connection) -> AsyncIterator[None]:
    await db.execute("select public.set_realtime_broadcast(true)")
    try:
        yield
    finally:
        await db.execute("select public.set_realtime_broadcast(false)")


async def test_broadcast_is_off_by_default_and_switches(db: asyncpg.Connection, unique_ws: int) -> None:
    ws = await db.fetchval("select public.upsert_workspace('bison.example.com', $1::bigint, 'Quiet')", unique_ws)
    assert await db.fetchval("select public.realtime_broadcast_enabled()") is False
    await db.execute("select public.increment_metric($1::uuid, 'emails_sent')", ws)
    assert await _messages(db, ws) == 0
    # where Realtime created realtime.messages after the migrations, switching on adds the membership policy
    policy = (
        "select count(*) from pg_policies where schemaname = 'realtime' and tablename = 'messages' "
        "and policyname = 'bisonsync_members_receive'"
    )
    await db.execute("drop policy bisonsync_members_receive on realtime.messages")
    try:
        assert await db.fetchval("select public.set_realtime_broadcast(true)") is True
        assert await db.fetchval(policy) == 1
        assert await db.fetchval("select public.realtime_broadcast_enabled()") is True
        await db.execute("select public.increment_metric($1::uuid, 'emails_sent')", ws)
        assert await _messages(db, ws) == 1
    finally:
        await db.execute("select public.set_realtime_broadcast(false)")
        await db.execute("select bisonsync_private._ensure_realtime_broadcast_policy()")
    await db.execute("select public.increment_metric($1::uuid, 'emails_sent')", ws)
    assert await _messages(db, ws) == 1
    assert await db.fetchval("select value from public.bisonsync_settings where key = 'realtime_broadcast'") == "false"


async def test_members_receive_their_workspace_changes_by_broadcast(
    devstack: StackHandle, db: asyncpg.Connection, unique_ws: int, broadcast_on: None
) -> None:
    mine = await db.fetchval("select public.upsert_workspace('bison.example.com', $1::bigint, 'Mine')", unique_ws)
    theirs = await db.fetchval(
        "select public.upsert_workspace('bison.example.com', $1::bigint, 'Theirs')", unique_ws + 1
    )
    member, outsider = await create_user(db), await create_user(db)
    await add_member(db, member, mine)
    env = devstack.env
    seen: dict[str, list[WatchEvent]] = {"member": [], "member-theirs": [], "outsider": [], "kpis-only": []}
    async with (
        Watcher(env.supabase_url, env.anon_key, access_token=devstack.user_token(member)) as w_member,
        Watcher(env.supabase_url, env.anon_key, access_token=devstack.user_token(member)) as w_member2,
        Watcher(env.supabase_url, env.anon_key, access_token=devstack.user_token(outsider)) as w_outsider,
    ):
        tasks = [
            asyncio.create_task(_collect(w_member.watch_workspace(str(mine)), seen["member"])),
            asyncio.create_task(_collect(w_member.watch_workspace(str(theirs)), seen["member-theirs"])),
            asyncio.create_task(_collect(w_outsider.watch_workspace(str(mine)), seen["outsider"])),
            asyncio.create_task(
                _collect(w_member2.watch_workspace(str(mine), tables=["client_metrics_daily"]), seen["kpis-only"])
            ),
        ]
        try:
            for name in ("member", "kpis-only"):
                await _wait(lambda n=name: "live" in _states(seen[n]), f"{name} live")
            for name in ("member-theirs", "outsider"):
                await _wait(lambda n=name: "error" in _states(seen[n]), f"{name} refused")
            for ws in (mine, theirs):
                await db.execute("select public.increment_metric($1::uuid, 'emails_sent')", ws)
                await db.execute("select public.increment_metric($1::uuid, 'replies')", ws)
            await db.execute(
                "insert into public.sender_emails_cache (workspace_id, instance, bison_sender_id, email_address) "
                "values ($1, 'bison.example.com', 42, 'box@example.com')",
                mine,
            )
            await db.execute("delete from public.sender_emails_cache where workspace_id = $1", mine)
            await _wait(lambda: len(_changes(seen["member"])) >= 4, "the member's four changes")
            got = _changes(seen["member"])
            assert [(c.table, c.type) for c in got] == [
                ("client_metrics_daily", "INSERT"),
                ("client_metrics_daily", "UPDATE"),
                ("sender_emails_cache", "INSERT"),
                ("sender_emails_cache", "DELETE"),
            ]
            kpis = [c.record for c in got[:2]]
            assert all(isinstance(r, MetricDayRow) and r.workspace_id == str(mine) for r in kpis)
            assert [(r.emails_sent, r.replies) for r in kpis] == [(1, 0), (1, 1)]
            assert isinstance(got[2].record, MailboxRow) and got[2].record.email_address == "box@example.com"
            # a member's broadcast carries the whole old row, even for a DELETE
            assert got[3].record is None and got[3].old_record is not None
            assert got[3].old_record["email_address"] == "box@example.com"
            await _wait(lambda: len(_changes(seen["kpis-only"])) >= 2, "the KPI-only stream")
            assert {c.table for c in _changes(seen["kpis-only"])} == {"client_metrics_daily"}
            assert _changes(seen["outsider"]) == [] and _changes(seen["member-theirs"]) == []
        finally:
            for task in tasks:
                task.cancel()


def test_decode_broadcast_shapes() -> None:
    message = {
        "event": "INSERT",
        "payload": {
            "operation": "INSERT",
            "table": "client_metrics_daily",
            "schema": "public",
            "old_record": None,
            "record": {"workspace_id": "w", "day": "2026-12-05", "replies": 2},
        },
    }
    event = decode_broadcast(message)
    assert event is not None and isinstance(event.record, MetricDayRow) and event.record.replies == 2
    assert event.commit_timestamp.tzinfo is not None  # receive time when the payload has none
    assert decode_broadcast({"event": "x", "payload": {"hello": 1}}) is None
    assert decode_broadcast({"event": "x", "payload": None}) is None
    assert workspace_topic("abc") == "bisonsync:abc"


async def test_watch_command_broadcast(
    devstack: StackHandle, db: asyncpg.Connection, unique_ws: int, broadcast_on: None
) -> None:
    ws = await db.fetchval("select public.upsert_workspace('bison.example.com', $1::bigint, 'CLI-B')", unique_ws)
    env = {**os.environ, "SUPABASE_URL": devstack.env.supabase_url, "SUPABASE_ANON_KEY": devstack.env.service_role_key}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bisonsync.cli",
        "watch",
        "client_metrics_daily",
        "--workspace",
        str(ws),
        "--broadcast",
        "--count",
        "2",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        async with asyncio.timeout(20):
            while b"[live]" not in (await proc.stderr.readline()):
                pass
        for _ in range(2):
            await db.execute("select public.increment_metric($1::uuid, 'emails_sent')", ws)
        async with asyncio.timeout(20):
            out, _ = await proc.communicate()
        lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
        assert [(x["type"], x["record"]["emails_sent"]) for x in lines] == [("INSERT", 1), ("UPDATE", 2)]
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

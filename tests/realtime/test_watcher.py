"""`bisonsync.realtime.Watcher` over the real schema: webhooks through the service become typed change events,
in commit order, for members of the workspace only; `bisonsync watch` prints them."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from bisonsync.realtime import ChangeEvent, ConnectionEvent, MetricDayRow, Watcher, WatchEvent
from service.app import create_app
from tests.conftest import StackHandle
from tests.schema.support import add_member, create_user
from tests.service.conftest import TOKEN, load_fixture, make_store, settings_for


async def _collect(stream: AsyncIterator[WatchEvent], sink: list[WatchEvent], live: asyncio.Event) -> None:
    async for event in stream:
        sink.append(event)
        if isinstance(event, ConnectionEvent) and event.state == "live":
            live.set()


async def _wait(predicate: Any, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polling a plain list filled by another task
            await asyncio.sleep(0.02)


async def test_member_sees_its_workspace_counters_in_commit_order(
    devstack: StackHandle, db: asyncpg.Connection, unique_ws: int
) -> None:
    mine = await db.fetchval("select public.upsert_workspace('bison.example.com', $1::bigint, 'Watched')", unique_ws)
    theirs = await db.fetchval(
        "select public.upsert_workspace('bison.example.com', $1::bigint, 'Other')", unique_ws + 1
    )
    member = await create_user(db)
    outsider = await create_user(db)
    await add_member(db, member, mine)
    env = devstack.env
    seen: dict[str, list[WatchEvent]] = {"member": [], "outsider": [], "service": []}
    tasks = []
    watchers = [
        ("member", Watcher(env.supabase_url, env.anon_key, access_token=devstack.user_token(member))),
        ("outsider", Watcher(env.supabase_url, env.anon_key, access_token=devstack.user_token(outsider))),
        ("service", Watcher(env.supabase_url, env.service_role_key)),
    ]
    lives = []
    for name, watcher in watchers:
        await watcher.__aenter__()
        live = asyncio.Event()
        lives.append(live)
        tasks.append(asyncio.create_task(_collect(watcher.watch("client_metrics_daily"), seen[name], live)))
    try:
        async with asyncio.timeout(10):
            for live in lives:
                await live.wait()
        app = create_app(settings_for(), store=make_store("postgres", devstack))
        async with AsyncTestClient(app=app) as client:
            second_send = load_fixture("email_sent", unique_ws)
            second_send["data"]["scheduled_email"]["id"] += 7  # a different send than the first email_sent
            docs = [
                load_fixture("email_sent", unique_ws),
                load_fixture("lead_replied", unique_ws),
                second_send,
                load_fixture("lead_interested", unique_ws),
                load_fixture("email_sent", unique_ws + 1),  # the other workspace
            ]
            for doc in docs:
                r = await client.post("/webhooks/bison", content=json.dumps(doc), params={"token": TOKEN})
                assert r.json()["status"] == "applied", r.text

        def changes(name: str) -> list[ChangeEvent]:
            return [e for e in seen[name] if isinstance(e, ChangeEvent)]

        await _wait(lambda: len([c for c in changes("member")]) >= 4 and len(changes("service")) >= 5)
        await asyncio.sleep(0.3)  # anything extra would have arrived by now
        rows = [c.record for c in changes("member")]
        assert all(isinstance(r, MetricDayRow) and r.workspace_id == str(mine) for r in rows)
        # one INSERT then UPDATEs; running totals in commit order
        assert [c.type for c in changes("member")] == ["INSERT", "UPDATE", "UPDATE", "UPDATE"]
        assert [(r.emails_sent, r.replies, r.interested) for r in rows] == [(1, 0, 0), (1, 1, 0), (2, 1, 0), (2, 1, 1)]
        assert changes("outsider") == []
        assert {c.record.workspace_id for c in changes("service")} == {str(mine), str(theirs)}
    finally:
        for task in tasks:
            task.cancel()
        for _, watcher in watchers:
            await watcher.close()


async def test_watch_command_prints_changes(devstack: StackHandle, db: asyncpg.Connection, unique_ws: int) -> None:
    ws = await db.fetchval("select public.upsert_workspace('bison.example.com', $1::bigint, 'CLI')", unique_ws)
    env = {**os.environ, "SUPABASE_URL": devstack.env.supabase_url, "SUPABASE_ANON_KEY": devstack.env.service_role_key}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bisonsync.cli",
        "watch",
        "client_metrics_daily",
        "--workspace",
        str(ws),
        "--count",
        "2",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None and proc.stdout is not None
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

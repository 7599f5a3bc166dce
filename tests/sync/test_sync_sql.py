"""The SQL side on its own: price and capacity rules, access, realtime publication, stalled runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from bisonsync.store import Store
from bisonsync.sync.mailboxes import mailbox_job, poll_mailboxes
from bisonsync.sync.runs import SyncRunStore
from bisonsync.sync.workspaces import sync_workspaces
from devstack.simulator import SimulatedBison
from tests.schema.support import acting_as, add_member, create_user
from tests.sync.support import workspace_uuid

PRICES = [
    # provider, reseller, n, price, volume (spec §5.2, checked in order)
    ("Google", "CheapInboxes", 10, "3.00", 20),
    ("Microsoft", "Zapmail", 10, "3.00", 20),
    ("Microsoft", "Mailr", 10, "0.91", 49),
    ("Google", "Mailr", 1, "0.91", 495),
    (None, "ScaledMail", 16, "3.13", 5),
    (None, "ScaledMail", 25, "2.00", 8),
    (None, "ScaledMail", 49, "1.02", 5),
    ("Gmail", None, 3, "3.00", 20),
    ("Outlook", None, 3, "0.00", 20),
    ("Yahoo", None, 3, "0.00", 0),
    (None, None, 3, "0.00", 0),
]


@pytest.mark.parametrize(("provider", "reseller", "n", "price", "volume"), PRICES)
async def test_price_and_capacity_rules(
    db: asyncpg.Connection, provider: str | None, reseller: str | None, n: int, price: str, volume: int
) -> None:
    got = await db.fetchrow(
        "select public.mailbox_price($1, $2, $3)::numeric(10, 2) as price,"
        " public.mailbox_daily_volume($1, $2, $3) as volume",
        provider,
        reseller,
        n,
    )
    assert got is not None and (got["price"], got["volume"]) == (Decimal(price), volume)


async def test_api_roles_cannot_run_the_sync_and_members_read_their_own_progress(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=3, mailboxes=60, seed=51)
    client, _ = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    report = await poll_mailboxes(pg_store, client, instance=instance)
    mine = next(t for t in sim.teams if not sim.teams[t].main)
    user = await create_user(db)
    await add_member(db, user, await workspace_uuid(db, instance, mine))

    for role in ("anon", "authenticated"):
        for call in (
            "select public.start_sync_run('x', 'y', 10, 'z.local')",
            "select public.heartbeat_sync_run(gen_random_uuid(), 'y', 10)",
            "select public.finish_sync_run(gen_random_uuid(), 'y')",
            "select public.sync_mailbox_page(gen_random_uuid(), gen_random_uuid(), 1, null, '[]')",
            "select public.finish_workspace_sync(gen_random_uuid(), gen_random_uuid(), true)",
            "select public.release_sync_lease('x', 'y')",
            "select * from public.workspace_api_key_refs('z.local')",
            "select * from public.sync_leases",
            "select * from public.sync_run_mailboxes",
        ):
            async with acting_as(db, role, user if role == "authenticated" else None):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await db.fetch(call)

    async with acting_as(db, "authenticated", user):
        runs = await db.fetch("select id, status from public.sync_runs where instance = $1", instance)
        progress = await db.fetch(
            "select workspace_id from public.sync_run_workspaces where run_id = $1", report.run_id
        )
        freshness = await db.fetch("select * from public.workspace_mailbox_sync where instance = $1", instance)
        price = await db.fetchval("select public.mailbox_price('Google', null, 1)")
    assert [(str(r["id"]), r["status"]) for r in runs] == [(report.run_id, "completed")]
    assert [r["workspace_id"] for r in progress] == [await workspace_uuid(db, instance, mine)]
    assert [(r["bison_workspace_id"], r["last_status"]) for r in freshness] == [(mine, "done")]
    assert freshness[0]["last_synced_at"] is not None and price == Decimal("3.00")
    async with acting_as(db, "anon"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await db.fetch("select * from public.sync_runs")


async def test_sync_runs_are_published_for_realtime_with_full_old_rows(db: asyncpg.Connection) -> None:
    rows = await db.fetch(
        "select c.relname, c.relreplident::text from pg_publication_tables p"
        " join pg_class c on c.relname = p.tablename and c.relnamespace = 'public'::regnamespace"
        " where p.pubname = 'supabase_realtime' and p.tablename in ('sync_runs', 'sync_run_workspaces')"
    )
    assert {r["relname"]: r["relreplident"] for r in rows} == {"sync_runs": "f", "sync_run_workspaces": "f"}


async def test_a_run_unfinished_past_the_resume_age_is_closed_as_stalled(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=3, mailboxes=60, seed=52)
    client, _ = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    ghost = SyncRunStore(pg_store, job=mailbox_job(instance), holder="ghost", lease_seconds=1)
    old = await ghost.start(instance)
    await db.execute(
        "update public.sync_runs set started_at = $2 where id = $1::uuid",
        old.run_id,
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=2),
    )
    await db.execute("update public.sync_leases set expires_at = now() where job = $1", mailbox_job(instance))
    report = await poll_mailboxes(pg_store, client, instance=instance, max_resume_age_s=3600)
    assert report.status == "completed" and not report.resumed and report.run_id != old.run_id
    stalled = await db.fetchrow(
        "select status, error, finished_at from public.sync_runs where id = $1::uuid", old.run_id
    )
    assert stalled is not None and stalled["status"] == "failed" and stalled["error"].startswith("stalled")
    assert await db.fetchval("select count(*) from public.sync_run_mailboxes where run_id = $1::uuid", old.run_id) == 0

"""Webhook health over a true rolling 24 h window, ledger retention, and the realtime publication."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import asyncpg

from tests.schema.support import TEST_INSTANCE, ingest, workspace_id

PUBLISHED = {
    "workspaces",
    "client_metrics_daily",
    "client_leads",
    "lead_replies",
    "sender_emails_cache",
    "mailbox_status_history",
    "webhook_activity",
    "provider_performance_history",
    # 20261129000600_mailbox_sync.sql: poll progress for dashboards
    "sync_runs",
    "sync_run_workspaces",
}


async def add_rows(conn: asyncpg.Connection, ws: object, status: str, age: str, n: int) -> None:
    await conn.execute(
        "insert into public.webhook_deliveries (workspace_id, event_type, status, received_at, duplicate_of) "
        "select $1, 'email_sent', $2, now() - $3::text::interval, "
        "  case when $2 = 'duplicate' then (select min(id) from public.webhook_deliveries) end "
        "from generate_series(1, $4)",
        ws,
        status,
        age,
        n,
    )


async def health(conn: asyncpg.Connection, ws: object) -> asyncpg.Record:
    row = await conn.fetchrow("select * from public.webhook_health where workspace_id = $1", ws)
    assert row is not None
    return row


async def test_health_is_a_rolling_24h_window(conn: asyncpg.Connection, unique_ws: int) -> None:
    await conn.execute("select public.upsert_workspace($1, $2, 'Health')", TEST_INSTANCE, unique_ws)
    ws = await workspace_id(conn, unique_ws)
    empty = await health(conn, ws)
    assert (empty["deliveries_24h"], empty["success_rate_24h"], empty["is_healthy"], empty["last_delivery_at"]) == (
        0,
        100,
        True,
        None,
    )

    await add_rows(conn, ws, "failed", "30 hours", 50)  # outside the window
    await add_rows(conn, ws, "applied", "23 hours", 15)
    await add_rows(conn, ws, "ignored", "2 hours", 2)
    await add_rows(conn, ws, "duplicate", "1 hour", 2)
    await add_rows(conn, ws, "failed", "10 minutes", 1)
    row = await health(conn, ws)
    assert (
        row["deliveries_24h"],
        row["applied_24h"],
        row["ignored_24h"],
        row["duplicate_24h"],
        row["failed_24h"],
        row["rejected_24h"],
        row["success_rate_24h"],
        row["is_healthy"],
    ) == (20, 15, 2, 2, 1, 0, 95, True)

    # the predecessor's column names, same figures
    assert (row["webhook_count_24h"], row["last_webhook_at"]) == (20, row["last_delivery_at"])
    assert row["last_webhook_at"] is not None and row["last_error_message"] == row["last_error"]

    # a refused delivery is shown apart and never counts against health (nor touches the activity row)
    await conn.execute("select public.record_rejected_delivery('email_sent', $1, 'bad token')", ws)
    row = await health(conn, ws)
    assert (row["deliveries_24h"], row["rejected_24h"], row["success_rate_24h"], row["is_healthy"]) == (
        20,
        1,
        Decimal("95"),
        True,
    )
    assert row["last_status"] is None and row["last_error"] is None

    # the window moves: once the 23 h old successes age out, only the recent rows count
    await conn.execute(
        "update public.webhook_deliveries set received_at = received_at - interval '2 hours' "
        "where workspace_id = $1 and status = 'applied'",
        ws,
    )
    row = await health(conn, ws)
    assert (row["deliveries_24h"], row["applied_24h"], row["success_rate_24h"]) == (5, 0, Decimal("80"))


async def test_activity_row_follows_every_delivery(conn: asyncpg.Connection, unique_ws: int) -> None:
    await ingest(conn, f"a-{unique_ws}", unique_ws, "email_sent", {})
    await ingest(conn, f"b-{unique_ws}", unique_ws, "tag_attached", {})
    ws = await workspace_id(conn, unique_ws)
    row = await conn.fetchrow("select * from public.webhook_activity where workspace_id = $1", ws)
    assert row is not None
    assert (row["deliveries_total"], row["last_event_type"], row["last_status"]) == (2, "tag_attached", "ignored")


async def test_prune_ledger_nulls_old_payloads_only(conn: asyncpg.Connection, unique_ws: int) -> None:
    await conn.execute("select public.upsert_workspace($1, $2, 'Prune')", TEST_INSTANCE, unique_ws)
    ws = await workspace_id(conn, unique_ws)
    ids = [
        await conn.fetchval(
            "insert into public.webhook_deliveries (workspace_id, event_type, status, received_at, payload) "
            "values ($1, 'email_sent', 'applied', $2, '{}') returning id",
            ws,
            when,
        )
        for when in (dt.datetime(1989, 12, 1, tzinfo=dt.UTC), dt.datetime(1990, 3, 20, tzinfo=dt.UTC))
    ]
    pruned = await conn.fetchval("select public.prune_ledger($1)", dt.datetime(1990, 4, 1, tzinfo=dt.UTC))
    assert pruned == 1
    rows = await conn.fetch("select id, payload from public.webhook_deliveries where id = any($1) order by id", ids)
    assert [r["payload"] for r in rows] == [None, {}]
    assert (
        await conn.fetchval("select value from public.bisonsync_settings where key = 'ledger_payload_retention_days'")
        == 90
    )


async def test_publication_has_exactly_the_watched_tables(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "select schemaname, tablename from pg_publication_tables where pubname = 'supabase_realtime'"
    )
    assert {r["schemaname"] for r in rows} == {"public"}
    assert {r["tablename"] for r in rows} == PUBLISHED
    identities = await conn.fetch(
        "select relname, relreplident::text from pg_class where oid = any($1::regclass[])",
        [f"public.{t}" for t in PUBLISHED],
    )
    assert {r["relname"]: r["relreplident"] for r in identities} == dict.fromkeys(PUBLISHED, "f")
    pubs = await conn.fetchrow(
        "select pubinsert, pubupdate, pubdelete from pg_publication where pubname = 'supabase_realtime'"
    )
    assert pubs is not None and all(pubs.values())

"""Mailbox status ordering (webhooks out of order, ties), history, stats functions, provider snapshots."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from decimal import Decimal
from typing import Any

import asyncpg

from tests.schema.support import WorkspaceFactory, ingest, workspace_id

T0 = dt.datetime(2026, 11, 20, 12, 0, 0, tzinfo=dt.UTC)
TYPE_FOR = {"Disconnected": "email_account_disconnected", "Connected": "email_account_reconnected"}


async def mailbox(conn: asyncpg.Connection, ws: uuid.UUID, sender_id: int) -> asyncpg.Record:
    row = await conn.fetchrow(
        "select * from public.sender_emails_cache where workspace_id = $1 and bison_sender_id = $2", ws, sender_id
    )
    assert row is not None
    return row


async def test_status_events_in_any_order_give_the_same_result(conn: asyncpg.Connection, unique_ws: int) -> None:
    # (event time offset s, status): the newest time (t+2) has a tie: Disconnected wins it (more severe)
    events = [(0, "Connected"), (1, "Disconnected"), (2, "Connected"), (2, "Disconnected")]
    finals: set[tuple[str, dt.datetime]] = set()
    for n, order in enumerate(itertools.permutations(events)):
        sender = 500 + n
        for i, (offset, status) in enumerate(order):
            res = await ingest(
                conn,
                f"mbx-{unique_ws}-{n}-{i}",
                unique_ws,
                TYPE_FOR[status],
                {"sender_email": {"id": sender, "email": f"rep{sender}@mail.example.com"}},
                received_at=T0 + dt.timedelta(seconds=offset),
            )
            assert res["status"] == "applied"
        row = await mailbox(conn, await workspace_id(conn, unique_ws), sender)
        finals.add((row["status"], row["status_observed_at"]))
    assert finals == {("Disconnected", T0 + dt.timedelta(seconds=2))}


async def test_older_event_never_overwrites_newer_status(conn: asyncpg.Connection, unique_ws: int) -> None:
    sender = {"sender_email": {"id": 11, "email": "Rep@Mail.Example.com", "name": "Rep"}}
    await ingest(conn, f"d-{unique_ws}", unique_ws, "email_account_disconnected", sender, received_at=T0)
    res = await ingest(
        conn, f"c-{unique_ws}", unique_ws, "email_account_reconnected", sender, received_at=T0 - dt.timedelta(minutes=5)
    )
    assert res["effects"][0]["action"] == "stale"
    ws = await workspace_id(conn, unique_ws)
    row = await mailbox(conn, ws, 11)
    assert (row["status"], row["status_changed_at"], row["email_address"], row["domain"], row["account_name"]) == (
        "Disconnected",
        T0,
        "rep@mail.example.com",
        "mail.example.com",
        "Rep",
    )
    # reconnect later, then a late copy of an intermediate disconnect: still Connected
    await ingest(
        conn,
        f"c2-{unique_ws}",
        unique_ws,
        "email_account_reconnected",
        sender,
        received_at=T0 + dt.timedelta(minutes=10),
    )
    await ingest(
        conn,
        f"d2-{unique_ws}",
        unique_ws,
        "email_account_disconnected",
        sender,
        received_at=T0 + dt.timedelta(minutes=5),
    )
    assert (await mailbox(conn, ws, 11))["status"] == "Connected"
    history = await conn.fetch(
        "select old_status, new_status, source, event_at from public.mailbox_status_history "
        "where workspace_id = $1 order by event_at",
        ws,
    )
    assert [tuple(r) for r in history] == [
        (None, "Disconnected", "webhook", T0),
        ("Disconnected", "Connected", "webhook", T0 + dt.timedelta(minutes=10)),
    ]


async def test_same_second_tie_prefers_the_poll(conn: asyncpg.Connection, unique_ws: int) -> None:
    sender = {"sender_email": {"id": 12, "email": "tie@mail.example.com"}}
    await ingest(conn, f"d-{unique_ws}", unique_ws, "email_account_disconnected", sender, received_at=T0)
    ws = await workspace_id(conn, unique_ws)
    mailbox_id = (await mailbox(conn, ws, 12))["id"]
    res = await conn.fetchval("select public.apply_mailbox_status($1, 'Connected', 'poll', $2)", mailbox_id, T0)
    assert (res["action"], res["status"]) == ("changed", "Connected")
    # the webhook's view of the same moment no longer wins
    res = await ingest(conn, f"d2-{unique_ws}", unique_ws, "email_account_disconnected", sender, received_at=T0)
    assert res["effects"][0]["action"] == "stale"
    row = await mailbox(conn, ws, 12)
    assert (row["status"], row["status_source"]) == ("Connected", "poll")


async def test_status_order_rule_is_a_function(conn: asyncpg.Connection) -> None:
    async def wins(old: tuple[Any, ...], new: tuple[Any, ...]) -> bool:
        result: bool = await conn.fetchval("select public.mailbox_status_wins($1, $2, $3, $4, $5, $6)", *old, *new)
        return result

    later = T0 + dt.timedelta(seconds=1)
    assert await wins((None, None, "Connected"), (T0, "webhook", "Connected"))
    assert await wins((T0, "poll", "Disconnected"), (later, "webhook", "Connected"))
    assert not await wins((later, "webhook", "Connected"), (T0, "poll", "Disconnected"))
    assert await wins((T0, "webhook", "Disconnected"), (T0, "poll", "Connected"))
    assert await wins((T0, "webhook", "Connected"), (T0, "webhook", "Failed"))
    assert not await wins((T0, "webhook", "Failed"), (T0, "webhook", "Connected"))
    assert not await wins((T0, "poll", "Failed"), (T0, "poll", "Failed"))


async def test_added_and_removed(conn: asyncpg.Connection, unique_ws: int) -> None:
    sender = {"sender_email": {"id": 13, "email": "new@mail.example.com", "name": "New"}}
    res = await ingest(conn, f"add-{unique_ws}", unique_ws, "email_account_added", sender, received_at=T0)
    assert res["effects"][0]["action"] == "inserted"
    ws = await workspace_id(conn, unique_ws)
    assert (await mailbox(conn, ws, 13))["status"] == "Connected"
    res = await ingest(
        conn,
        f"rm-{unique_ws}",
        unique_ws,
        "email_account_removed",
        {"sender_email": {"email": "NEW@mail.example.com"}},
        received_at=T0 + dt.timedelta(hours=1),
    )
    assert res["effects"][0]["action"] == "deleted"
    assert (await mailbox(conn, ws, 13))["deleted_at"] == T0 + dt.timedelta(hours=1)
    # re-added later: undeleted
    res = await ingest(
        conn, f"add2-{unique_ws}", unique_ws, "email_account_added", sender, received_at=T0 + dt.timedelta(hours=2)
    )
    assert res["effects"][0]["undeleted"] is True
    assert (await mailbox(conn, ws, 13))["deleted_at"] is None


async def test_shared_mailbox_is_one_row_per_workspace(conn: asyncpg.Connection, unique_ws: int) -> None:
    sender = {"sender_email": {"id": 14, "email": "shared@mail.example.com"}}
    for bison_ws in (unique_ws, unique_ws + 1):
        await ingest(conn, f"s-{bison_ws}", bison_ws, "email_account_disconnected", sender, received_at=T0)
    for bison_ws in (unique_ws, unique_ws + 1):
        assert (await mailbox(conn, await workspace_id(conn, bison_ws), 14))["status"] == "Disconnected"


async def insert_mailbox(conn: asyncpg.Connection, ws: uuid.UUID, sender_id: int, **cols: Any) -> None:
    values = {"email_address": f"m{sender_id}@d{sender_id % 3}.example.com", **cols}
    names = ", ".join(values)
    params = ", ".join(f"${i + 3}" for i in range(len(values)))
    await conn.execute(
        f"insert into public.sender_emails_cache (workspace_id, bison_sender_id, {names}) values ($1, $2, {params})",
        ws,
        sender_id,
        *values.values(),
    )


async def test_stats_functions(conn: asyncpg.Connection, make_workspace: WorkspaceFactory) -> None:
    instance = f"stats-{uuid.uuid4().hex[:8]}.bison.local"
    a = await make_workspace(instance=instance)
    b = await make_workspace(instance=instance)
    await insert_mailbox(
        conn,
        a,
        1,
        email_provider="Google",
        status="Connected",
        emails_sent_count=1000,
        unique_replied_count=20,
        total_replied_count=25,
        bounced_count=5,
        daily_limit=20,
        volume_per_account=20,
    )
    await insert_mailbox(
        conn,
        a,
        2,
        email_provider="Google",
        status="Disconnected",
        emails_sent_count=0,
        daily_limit=10,
        volume_per_account=20,
    )
    await insert_mailbox(
        conn, a, 3, email_provider="Microsoft", status="Not connected", daily_limit=5, volume_per_account=0
    )
    await insert_mailbox(
        conn, a, 4, email_provider="Google", status="Failed", emails_sent_count=999, deleted_at=T0
    )  # deleted: excluded
    # mailbox 1 is shared with workspace b (same bison sender id): counted once across the instance
    await insert_mailbox(
        conn,
        b,
        1,
        email_provider="Google",
        status="Connected",
        emails_sent_count=1000,
        unique_replied_count=20,
        total_replied_count=25,
        bounced_count=5,
        daily_limit=20,
        volume_per_account=20,
    )
    await insert_mailbox(conn, b, 5, status="Failed")  # no provider: in status stats, not in provider stats

    rows = await conn.fetch(
        "select * from public.aggregate_provider_stats() where instance = $1 order by email_provider", instance
    )
    google, microsoft = (dict(r) for r in rows)
    assert google == {
        "email_provider": "Google",
        "instance": instance,
        "total_accounts": 2,
        "active_accounts": 1,
        "total_sent": 1000,
        "total_replies": 25,
        "unique_replies": 20,
        "total_bounces": 5,
        "avg_reply_rate": 2,
        "avg_emails_per_account": 500,
        "total_daily_limit": 30,
        "total_volume_capacity": 40,
        "utilization_percentage": 75,
    }
    assert (microsoft["total_accounts"], microsoft["avg_reply_rate"], microsoft["utilization_percentage"]) == (1, 0, 0)
    only_b = await conn.fetch("select * from public.aggregate_provider_stats($1)", b)
    assert [(r["email_provider"], r["total_accounts"]) for r in only_b] == [("Google", 1)]

    stats = await conn.fetchrow("select * from public.get_account_status_stats($1)", a)
    assert stats is not None and dict(stats) == {
        "total": 3,
        "connected": 1,
        "disconnected": 1,
        "failed": 0,
        "not_connected": 1,
        "disconnect_rate": Decimal("33.33"),
        "pending_move": 0,
        "pending_deletion": 0,
        "other": 0,
    }
    stats = await conn.fetchrow("select * from public.get_account_status_stats($1)", b)
    assert stats is not None and (stats["total"], stats["failed"], stats["disconnect_rate"]) == (2, 1, 50)
    reply_rate = await conn.fetchval(
        "select reply_rate_percentage from public.sender_emails_cache where workspace_id = $1 and bison_sender_id = 1",
        a,
    )
    assert reply_rate == 2


async def test_snapshot_is_idempotent_and_drops_are_detected(
    conn: asyncpg.Connection, make_workspace: WorkspaceFactory
) -> None:
    instance = f"snap-{uuid.uuid4().hex[:8]}.bison.local"
    ws = await make_workspace(instance=instance)
    await insert_mailbox(conn, ws, 1, email_provider="Outlook", emails_sent_count=200, unique_replied_count=4)
    day = dt.date(2031, 1, 10)
    n1 = await conn.fetchval("select public.snapshot_provider_performance($1)", day)
    await conn.execute("update public.sender_emails_cache set unique_replied_count = 3 where workspace_id = $1", ws)
    n2 = await conn.fetchval("select public.snapshot_provider_performance($1)", day)
    assert n1 == n2 and n1 >= 1
    rows = await conn.fetch(
        "select avg_reply_rate from public.provider_performance_history where instance = $1 and snapshot_date = $2",
        instance,
        day,
    )
    assert [r["avg_reply_rate"] for r in rows] == [1.5]

    async def history(provider: str, date: dt.date, rate: float) -> None:
        await conn.execute(
            "insert into public.provider_performance_history (email_provider, instance, avg_reply_rate, snapshot_date) "
            "values ($1, $2, $3, $4)",
            provider,
            instance,
            rate,
            date,
        )

    # Outlook: 2.0 on Jan 7 (no snapshot Jan 8-9), 1.5 on Jan 10 -> 25 % drop against the most recent earlier one
    await history("Outlook", dt.date(2031, 1, 7), 2.0)
    await history("Google", dt.date(2031, 1, 9), 2.0)
    await history("Google", day, 1.6)  # exactly 20 %: not strictly greater
    await history("Yahoo", dt.date(2031, 1, 9), 0)
    await history("Yahoo", day, 0)
    drops = await conn.fetch(
        "select * from public.check_provider_reply_rate_drop(20, $1) where instance = $2", day, instance
    )
    assert [
        (r["email_provider"], r["current_rate"], r["previous_rate"], r["previous_snapshot_date"], r["drop_percentage"])
        for r in drops
    ] == [("Outlook", 1.5, 2.0, dt.date(2031, 1, 7), 25)]
    lower = await conn.fetch(
        "select email_provider from public.check_provider_reply_rate_drop(19.9, $1) where instance = $2 order by 1",
        day,
        instance,
    )
    assert [r["email_provider"] for r in lower] == ["Google", "Outlook"]

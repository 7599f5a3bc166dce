"""Provider snapshots (idempotent), reply-rate drop detection and mailbox status statistics."""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg

from bisonsync.analytics import (
    ProviderSnapshot,
    account_status_by_workspace,
    account_status_stats,
    detect_reply_rate_drops,
    run_daily_snapshot,
    snapshot_providers,
)
from bisonsync.store import Store

from .conftest import MailboxMaker, WorkspaceMaker


def day0(unique_ws: int) -> date:
    """Snapshot dates no other test uses (a snapshot replaces its whole day, every instance)."""
    return date(2100, 1, 1) + timedelta(days=(unique_ws % 50_000) * 4)


def mine(snaps: list[ProviderSnapshot], instance: str) -> dict[str, ProviderSnapshot]:
    return {s.email_provider: s for s in snaps if s.instance == instance}


async def set_replies(db: asyncpg.Connection, workspace_id: str, unique_replied: int) -> None:
    await db.execute(
        "update public.sender_emails_cache set unique_replied_count = $2 where workspace_id = $1::uuid",
        workspace_id,
        unique_replied,
    )


async def test_snapshot_is_idempotent(
    any_store: Store, make_workspace: WorkspaceMaker, make_mailbox: MailboxMaker, instance: str, unique_ws: int
) -> None:
    ws = await make_workspace()
    for _ in range(3):
        await make_mailbox(ws, provider="Google", sent=1000, unique_replied=25)
    await make_mailbox(ws, provider="Microsoft", sent=500, unique_replied=5, status="Disconnected")
    day = day0(unique_ws)

    first = await snapshot_providers(any_store, day)
    assert first.snapshot_date == day and first.rows_written >= 2
    got = mine(first.providers, instance)
    assert set(got) == {"Google", "Microsoft"}
    google = got["Google"]
    assert (google.total_accounts, google.active_accounts, google.total_sent, google.unique_replies) == (3, 3, 3000, 75)
    assert google.avg_reply_rate == 2.5
    assert got["Microsoft"].active_accounts == 0 and got["Microsoft"].avg_reply_rate == 1.0

    again = await snapshot_providers(any_store, day)
    assert mine(again.providers, instance) == got
    rows = await any_store.select("provider_performance_history", filters={"snapshot_date": day})
    assert len([r for r in rows if r["instance"] == instance]) == 2  # replaced, not duplicated

    # a re-run the same day reflects the current cache
    await set_replies_for(any_store, ws)
    third = mine((await snapshot_providers(any_store, day)).providers, instance)
    assert third["Google"].unique_replies == 30 and third["Google"].avg_reply_rate == 1.0


async def set_replies_for(store: Store, workspace_id: str) -> None:
    # through the service role, like the poller (one upsert per mailbox row)
    rows = await store.select("sender_emails_cache", filters={"workspace_id": workspace_id})
    await store.upsert(
        "sender_emails_cache",
        [
            {
                "workspace_id": workspace_id,
                "bison_sender_id": r["bison_sender_id"],
                "email_address": r["email_address"],
                "unique_replied_count": 10,
            }
            for r in rows
            if r["email_provider"] == "Google"
        ],
        "workspace_id,bison_sender_id",
    )


async def test_reply_rate_drop_rules(
    store: Store,
    db: asyncpg.Connection,
    make_workspace: WorkspaceMaker,
    make_mailbox: MailboxMaker,
    instance: str,
    unique_ws: int,
) -> None:
    google_ws = await make_workspace()
    await make_mailbox(google_ws, provider="Google", sent=1000, unique_replied=100)  # 10.00 %
    zero_ws = await make_workspace()
    await make_mailbox(zero_ws, provider="Yahoo", sent=1000, unique_replied=0)  # 0 %: never a drop base
    d0 = day0(unique_ws)
    await snapshot_providers(store, d0)

    async def drops(day: date, threshold: float = 20.0) -> dict[str, float]:
        return {
            d.email_provider: d.drop_percentage
            for d in await detect_reply_rate_drops(store, day, threshold)
            if d.instance == instance
        }

    # exactly 20 % lower: not reported (strictly greater)
    await set_replies(db, google_ws, 80)
    await snapshot_providers(store, d0 + timedelta(days=1))
    assert await drops(d0 + timedelta(days=1)) == {}
    assert await drops(d0 + timedelta(days=1), threshold=19.99) == {"Google": 20.0}

    # 8.00 -> 6.30: 21.25 % below the most recent earlier snapshot (d0+1, not d0), after a 2-day gap
    await set_replies(db, google_ws, 63)
    await set_replies(db, zero_ws, 0)
    report = await run_daily_snapshot(store, d0 + timedelta(days=3))
    assert {d.email_provider for d in report.drops if d.instance == instance} == {"Google"}
    [drop] = [d for d in report.drops if d.instance == instance]
    assert drop.previous_snapshot_date == d0 + timedelta(days=1)
    assert (drop.previous_rate, drop.current_rate, drop.drop_percentage) == (8.0, 6.3, 21.25)


async def test_drop_is_relative_to_most_recent_earlier_snapshot(
    store: Store,
    db: asyncpg.Connection,
    make_workspace: WorkspaceMaker,
    make_mailbox: MailboxMaker,
    instance: str,
    unique_ws: int,
) -> None:
    ws = await make_workspace()
    await make_mailbox(ws, provider="Outlook", sent=10_000, unique_replied=500)  # 5.00 %
    d0 = day0(unique_ws)
    await snapshot_providers(store, d0)
    await set_replies(db, ws, 300)  # 3.00 %: 40 % below d0
    await snapshot_providers(store, d0 + timedelta(days=2))
    [drop] = [d for d in await detect_reply_rate_drops(store, d0 + timedelta(days=2)) if d.instance == instance]
    assert (drop.previous_snapshot_date, drop.previous_rate, drop.current_rate) == (d0, 5.0, 3.0)
    assert drop.drop_percentage == 40.0 and drop.threshold_pct == 20.0
    # no earlier snapshot -> nothing; a rise -> nothing
    assert [d for d in await detect_reply_rate_drops(store, d0) if d.instance == instance] == []
    await set_replies(db, ws, 900)
    await snapshot_providers(store, d0 + timedelta(days=3))
    assert [d for d in await detect_reply_rate_drops(store, d0 + timedelta(days=3)) if d.instance == instance] == []


async def test_disconnect_stats(any_store: Store, make_workspace: WorkspaceMaker, make_mailbox: MailboxMaker) -> None:
    ws = await make_workspace(name="Stats Client")
    for status, n in (("Connected", 5), ("Disconnected", 2), ("Failed", 1), ("Not connected", 2)):
        for _ in range(n):
            await make_mailbox(ws, status=status)
    stats = await account_status_stats(any_store, ws)
    assert (stats.total, stats.connected, stats.disconnected, stats.failed, stats.not_connected) == (10, 5, 2, 1, 2)
    assert stats.disconnect_rate == 30.0 and stats.workspace_id == ws

    empty = await make_workspace(name="Empty Client")
    assert (await account_status_stats(any_store, empty)).disconnect_rate == 0

    overall = await account_status_stats(any_store)
    assert overall.workspace_id is None and overall.total >= 10

    by_ws = {s.workspace_id: s for s in await account_status_by_workspace(any_store)}
    assert by_ws[ws].disconnect_rate == 30.0 and by_ws[ws].workspace_name == "Stats Client"
    assert by_ws[ws].not_connected == 2 and by_ws[empty].total == 0

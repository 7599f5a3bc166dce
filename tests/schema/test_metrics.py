"""KPI counters: atomic increments, metric names, workspace-local days, month-to-date across month ends."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg
import pytest

from tests.schema.support import WorkspaceFactory

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


async def daily(conn: asyncpg.Connection, ws: uuid.UUID) -> dict[dt.date, dict[str, int]]:
    rows = await conn.fetch(
        "select day, emails_sent, replies, interested, bounced, unsubscribed "
        "from public.client_metrics_daily where workspace_id = $1",
        ws,
    )
    return {
        r["day"]: {k: r[k] for k in ("emails_sent", "replies", "interested", "bounced", "unsubscribed")} for r in rows
    }


async def test_fifty_concurrent_increments_sum_exactly(
    pool: asyncpg.Pool, conn: asyncpg.Connection, make_workspace: WorkspaceFactory
) -> None:
    ws = await make_workspace()
    moment = at("2026-11-10T15:00:00+00:00")

    async def bump() -> int:
        value: int = await pool.fetchval(
            "select public.increment_metric($1::uuid, 'emails_sent', 1, $2::timestamptz)", ws, moment
        )
        return value

    values = await asyncio.gather(*(bump() for _ in range(50)))
    assert sorted(values) == list(range(1, 51)), "each call must see its own increment applied atomically"
    assert (await daily(conn, ws))[dt.date(2026, 11, 10)]["emails_sent"] == 50


async def test_both_overloads_and_all_metric_names(conn: asyncpg.Connection, make_workspace: WorkspaceFactory) -> None:
    name = f"Metrics {uuid.uuid4().hex[:8]}"
    ws = await make_workspace(name=name, timezone="UTC")
    today = await conn.fetchval("select (now() at time zone 'UTC')::date")
    for metric, column in [
        ("emails_sent", "emails_sent"),
        ("emails_sent_mtd", "emails_sent"),
        ("replies", "replies"),
        ("replies_mtd", "replies"),
        ("interested", "interested"),
        ("interested_mtd", "interested"),
        ("bounced", "bounced"),
        ("bounces_mtd", "bounced"),
        ("unsubscribed", "unsubscribed"),
        ("unsubscribes_mtd", "unsubscribed"),
    ]:
        await conn.execute("select public.increment_metric($1::uuid, $2, 2)", ws, metric)
        # predecessor overload: the name as Email Bison sends it, trailing space and all
        value = await conn.fetchval("select public.increment_metric($1::text, $2, 1)", name + " ", metric)
        assert value == (await daily(conn, ws))[today][column], metric
    assert (await daily(conn, ws))[today] == {
        "emails_sent": 6,
        "replies": 6,
        "interested": 6,
        "bounced": 6,
        "unsubscribed": 6,
    }


async def test_unknown_metric_is_22023_naming_the_accepted_ones(
    conn: asyncpg.Connection, make_workspace: WorkspaceFactory
) -> None:
    ws = await make_workspace()
    for call, arg in [
        ("select public.increment_metric($1::uuid, 'opens', 1)", ws),
        ("select public.increment_metric($1::text, 'opens', 1)", "whatever name"),
    ]:
        with pytest.raises(asyncpg.PostgresError) as exc:
            await conn.execute(call, arg)
        assert exc.value.sqlstate == "22023"
        assert "emails_sent" in str(exc.value) and "unsubscribes_mtd" in str(exc.value)
    assert await daily(conn, ws) == {}


async def test_unknown_or_ambiguous_workspace_name_is_an_error(
    conn: asyncpg.Connection, make_workspace: WorkspaceFactory
) -> None:
    missing = f"No Such Workspace {uuid.uuid4()}"
    with pytest.raises(asyncpg.PostgresError) as exc:
        await conn.execute("select public.increment_metric($1::text, 'emails_sent', 1)", missing)
    assert exc.value.sqlstate == "P0002"
    with pytest.raises(asyncpg.PostgresError) as exc:
        await conn.execute("select public.increment_metric(gen_random_uuid(), 'emails_sent', 1, now())")
    assert exc.value.sqlstate == "P0002"

    twin = f"Twin {uuid.uuid4().hex[:8]}"
    a = await make_workspace(name=twin)
    b = await make_workspace(name=twin, instance="other.bison.local")
    with pytest.raises(asyncpg.PostgresError) as exc:
        await conn.execute("select public.increment_metric($1::text, 'emails_sent', 1)", twin)
    assert exc.value.sqlstate == "P0003"
    assert await daily(conn, a) == {} and await daily(conn, b) == {}


async def test_old_name_still_resolves_after_rename(
    conn: asyncpg.Connection, make_workspace: WorkspaceFactory, unique_ws: int
) -> None:
    old, new = f"Old {uuid.uuid4().hex[:8]}", f"New {uuid.uuid4().hex[:8]}"
    ws = await make_workspace(name=old)
    assert (
        await conn.fetchval("select public.upsert_workspace('schema-tests.bison.local', $1, $2)", unique_ws, new) == ws
    )
    await conn.execute("select public.increment_metric($1::text, 'replies', 1)", old)
    await conn.execute("select public.increment_metric($1::text, 'replies', 1)", new)
    assert sum(d["replies"] for d in (await daily(conn, ws)).values()) == 2


async def test_day_bucket_is_workspace_local(conn: asyncpg.Connection, make_workspace: WorkspaceFactory) -> None:
    chicago = await make_workspace(timezone="America/Chicago")
    utc = await make_workspace(timezone="UTC")
    moment = at("2026-12-01T03:00:00+00:00")  # 21:00 on Nov 30 in Chicago
    for ws in (chicago, utc):
        await conn.execute("select public.increment_metric($1::uuid, 'emails_sent', 1, $2)", ws, moment)
    assert list(await daily(conn, chicago)) == [dt.date(2026, 11, 30)]
    assert list(await daily(conn, utc)) == [dt.date(2026, 12, 1)]


async def test_month_to_date_rolls_over_in_workspace_timezone(
    conn: asyncpg.Connection, make_workspace: WorkspaceFactory
) -> None:
    ws = await make_workspace(timezone="America/Chicago")
    for moment, n in [
        ("2026-10-31T12:00:00+00:00", 100),  # October
        ("2026-11-15T12:00:00+00:00", 5),
        ("2026-12-01T03:00:00+00:00", 2),  # still Nov 30 in Chicago
        ("2026-12-01T07:00:00+00:00", 3),  # Dec 1, 01:00 in Chicago
    ]:
        await conn.execute("select public.increment_metric($1::uuid, 'emails_sent', $2, $3)", ws, n, at(moment))

    async def mtd(as_of: str) -> tuple[dt.date, dt.date, int, int]:
        r = await conn.fetchrow(
            "select metric_date, month_start, emails_sent_mtd, emails_sent "
            "from public.client_metrics_mtd($1) where workspace_id = $2",
            at(as_of),
            ws,
        )
        assert r is not None
        return r["metric_date"], r["month_start"], r["emails_sent_mtd"], r["emails_sent"]

    assert await mtd("2026-12-01T03:30:00+00:00") == (dt.date(2026, 11, 30), dt.date(2026, 11, 1), 7, 2)
    # Dec 1 12:00 in Chicago: December only, November's counts are not carried over, and no reset job ran
    assert await mtd("2026-12-01T18:00:00+00:00") == (dt.date(2026, 12, 1), dt.date(2026, 12, 1), 3, 3)
    assert await mtd("2027-01-05T18:00:00+00:00") == (dt.date(2027, 1, 5), dt.date(2027, 1, 1), 0, 0)

    rows = await conn.fetch(
        "select metric_date, emails_sent, emails_sent_mtd from public.client_metrics "
        "where metric_type = 'daily' and workspace_id = $1 order by metric_date",
        ws,
    )
    assert [(r["metric_date"], r["emails_sent"], r["emails_sent_mtd"]) for r in rows] == [
        (dt.date(2026, 10, 31), 100, 100),
        (dt.date(2026, 11, 15), 5, 5),
        (dt.date(2026, 11, 30), 2, 7),
        (dt.date(2026, 12, 1), 3, 3),
    ]


async def test_mtd_view_has_a_row_per_workspace_matching_the_function(
    conn: asyncpg.Connection, make_workspace: WorkspaceFactory
) -> None:
    idle = await make_workspace(timezone="Europe/London")
    busy = await make_workspace(timezone="UTC")
    await conn.execute("select public.increment_metric($1::uuid, 'interested', 4)", busy)
    await conn.execute("select public.increment_metric($1::uuid, 'replies', 2)", busy)
    rows = await conn.fetch(
        "select workspace_id, workspace_name, emails_sent_mtd, positive_replies_mtd, replies_mtd, bounced_mtd, "
        "unsubscribed_mtd from public.client_metrics where metric_type = 'mtd' and workspace_id = any($1)",
        [idle, busy],
    )
    got = {r["workspace_id"]: tuple(r)[2:] for r in rows}
    assert got == {idle: (0, 0, 0, 0, 0), busy: (0, 4, 2, 0, 0)}
    assert await conn.fetchval(
        "select count(*) from public.client_metrics where metric_type = 'mtd'"
    ) == await conn.fetchval("select count(*) from public.workspaces")

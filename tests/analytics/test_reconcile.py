"""Reconciliation against the simulator: drift recorded per workspace and metric, counters never touched."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import pytest

from bisonsync.bison import BisonClient, WorkspaceStats
from bisonsync.reconcile import METRIC_MAP, bison_values, month_period, parse_month, reconcile
from bisonsync.store import Store
from bisonsync.store import api as store_api
from devstack.simulator import SimulatedBison

from .conftest import WorkspaceMaker

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


async def counter_rows(db: asyncpg.Connection, workspace_ids: list[str]) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "select * from public.client_metrics_daily where workspace_id = any($1::uuid[]) order by workspace_id, day",
        workspace_ids,
    )
    return [dict(r) for r in rows]


async def drift_rows(db: asyncpg.Connection, workspace_id: str) -> dict[str, dict[str, Any]]:
    rows = await db.fetch("select * from public.metric_drift where workspace_id = $1::uuid", workspace_id)
    return {r["metric"]: dict(r) for r in rows}


def bison_events(sim: SimulatedBison, team: int, day: date, counts: dict[str, int], replied_leads: list[int]) -> None:
    for event_type, n in counts.items():
        for _ in range(n):
            sim.record_event(team, event_type, day=day)
    for lead in replied_leads:
        sim.record_event(team, "lead_replied", lead_id=lead, day=day)


def test_month_period() -> None:
    assert month_period(None, "UTC", NOW) == (date(2026, 11, 1), date(2026, 11, 20))
    assert month_period(date(2026, 10, 1), "UTC", NOW) == (date(2026, 10, 1), date(2026, 10, 31))
    assert month_period(date(2026, 12, 1), "UTC", NOW) is None
    # Dec 1 03:00 UTC is still November 30 in Chicago
    early = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    assert month_period(None, "America/Chicago", early) == (date(2026, 11, 1), date(2026, 11, 30))
    assert parse_month("2026-02") == date(2026, 2, 1)
    with pytest.raises(ValueError):
        parse_month("Feb 2026")
    assert set(METRIC_MAP) == {"emails_sent", "replies", "replies_total", "interested", "bounced", "unsubscribed"}


def test_stats_as_real_instances_send_them() -> None:
    # values as strings, no `replied`, a field we do not know, a value we cannot read
    raw = {
        "emails_sent": "123",
        "unique_replies_per_contact": "9",
        "unique_replies_per_contact_percentage": "7.32",
        "interested": 4,
        "interested_percentage": "3.25",
        "bounced": "1,204",
        "unsubscribed": None,
        "opened": "n/a",
        "positive_reply_rate": "0.5",
    }
    stats = WorkspaceStats.from_mapping(raw)
    assert (stats.emails_sent, stats.unique_replies_per_contact, stats.bounced) == (123, 9, 1204)
    assert stats.interested_percentage == 3.25 and stats.unique_replies_per_contact_percentage == 7.32
    assert stats.replied is None and stats.unsubscribed is None and stats.opened is None
    assert stats.extra == {"positive_reply_rate": "0.5"}
    # only what Email Bison reported is compared: no replies_total, no unsubscribed
    assert bison_values(stats) == {"emails_sent": 123, "replies": 9, "interested": 4, "bounced": 1204}
    # an instance that does report `replied` gets the like-for-like check
    assert bison_values(WorkspaceStats.from_mapping({**raw, "replied": "11"}))["replies_total"] == 11


async def test_reconcile_records_drift_without_touching_counters(
    any_store: Store,
    store: Store,
    db: asyncpg.Connection,
    sim: SimulatedBison,
    bison: BisonClient,
    make_workspace: WorkspaceMaker,
    instance: str,
) -> None:
    team_a, team_b = [t for t in sim.teams if t != sim.parent_id][:2]
    ws_a = await make_workspace(name="Client A", bison_id=team_a)
    ws_b = await make_workspace(name="Client B", bison_id=team_b)
    ghost = await make_workspace(name="Gone from Bison", bison_id=9_999_999)

    # Email Bison's truth: A sent 10, 4 replies from 3 leads, 2 interested, 1 bounce, 1 unsubscribe (plus October)
    bison_events(
        sim, team_a, date(2026, 11, 3), {"email_sent": 10, "lead_interested": 2, "email_bounced": 1}, [1, 2, 2, 3]
    )
    bison_events(sim, team_a, date(2026, 11, 19), {"lead_unsubscribed": 1}, [])
    bison_events(sim, team_a, date(2026, 10, 30), {"email_sent": 7}, [])
    bison_events(sim, team_b, date(2026, 11, 5), {"email_sent": 3}, [])
    # the webhooks missed 2 sends and the unsubscribe of A; B matches
    for metric, n, day in (
        ("emails_sent", 8, 3),
        ("replies", 4, 3),
        ("interested", 2, 3),
        ("bounced", 1, 3),
    ):
        await store_api.increment_metric(store, ws_a, metric, n, datetime(2026, 11, day, 12, tzinfo=UTC))
    await store_api.increment_metric(store, ws_a, "emails_sent", 7, datetime(2026, 10, 30, 12, tzinfo=UTC))
    await store_api.increment_metric(store, ws_b, "emails_sent", 3, datetime(2026, 11, 5, 12, tzinfo=UTC))
    before = await counter_rows(db, [ws_a, ws_b])

    report = await reconcile(any_store, bison, instance=instance, now=NOW)
    assert report.instance == instance and report.month is None
    by_ws = {w.workspace_id: w for w in report.workspaces}
    assert set(by_ws) == {ws_a, ws_b, ghost}
    assert by_ws[ghost].error is not None and by_ws[ghost].metrics == []
    a = {m.metric: m for m in by_ws[ws_a].metrics}
    assert (by_ws[ws_a].period_start, by_ws[ws_a].period_end) == (date(2026, 11, 1), date(2026, 11, 20))
    assert {k: (m.webhook_value, m.bison_value, m.drift) for k, m in a.items()} == {
        "emails_sent": (8, 10, -2),
        "replies": (4, 3, 1),  # unique_replies_per_contact counts lead 2 once
        # no replies_total: real instances report no `replied`, and nothing is compared with a missing field
        "interested": (2, 2, 0),
        "bounced": (1, 1, 0),
        "unsubscribed": (0, 1, -1),
    }
    assert a["emails_sent"].drift_pct == -20.0 and a["interested"].drift_pct == 0.0
    assert all(m.drift == 0 for m in by_ws[ws_b].metrics if m.metric == "emails_sent")

    stored = await drift_rows(db, ws_a)
    assert stored["emails_sent"]["drift"] == -2 and stored["unsubscribed"]["bison_value"] == 1
    assert stored["emails_sent"]["checked_on"] == date(2026, 11, 20)
    # bug 6: the webhook counters are untouched (values and updated_at)
    assert await counter_rows(db, [ws_a, ws_b]) == before

    # the same day again, after the webhooks caught up: the day's rows are updated, not duplicated
    await store_api.increment_metric(store, ws_a, "emails_sent", 2, datetime(2026, 11, 20, 9, tzinfo=UTC))
    later = NOW.replace(hour=18)
    await reconcile(any_store, bison, instance=instance, now=later, bison_workspace_ids=[team_a])
    stored = await drift_rows(db, ws_a)
    assert len(await db.fetch("select 1 from public.metric_drift where workspace_id = $1::uuid", ws_a)) == 5
    assert "replies_total" not in stored
    assert stored["emails_sent"]["drift"] == 0 and stored["emails_sent"]["checked_at"] == later

    # a past month is its own period; the next day is a new row
    october = await reconcile(any_store, bison, instance=instance, month=date(2026, 10, 1), now=NOW)
    [oct_a] = [w for w in october.workspaces if w.workspace_id == ws_a]
    assert (oct_a.period_start, oct_a.period_end) == (date(2026, 10, 1), date(2026, 10, 31))
    assert {m.metric: m.drift for m in oct_a.metrics}["emails_sent"] == 0
    await reconcile(any_store, bison, instance=instance, now=NOW.replace(day=21), bison_workspace_ids=[team_a])
    days = await db.fetch(
        "select checked_on from public.metric_drift where workspace_id = $1::uuid and metric = 'emails_sent' "
        "order by checked_on",
        ws_a,
    )
    assert [r["checked_on"] for r in days] == [date(2026, 11, 20), date(2026, 11, 20), date(2026, 11, 21)]
    latest = await any_store.select("metric_drift_latest", filters={"workspace_id": ws_a, "metric": "emails_sent"})
    assert len(latest) == 2  # one per period start

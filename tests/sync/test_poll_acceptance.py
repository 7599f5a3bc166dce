"""Acceptance: 24 workspaces, ~4,000 mailboxes, both stores. The cache equals the simulator's truth, and a second
poll over unchanged data writes nothing at all (no row version changes: no realtime event)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import asyncpg

from bisonsync.store import Store
from bisonsync.sync.mailboxes import poll_mailboxes
from bisonsync.sync.report import PollProgress
from bisonsync.sync.workspaces import sync_workspaces
from devstack.simulator import SimulatedBison
from tests.sync.support import assert_cache_matches, cache, history

IGNORED_ON_RERUN = {"last_synced_at", "last_seen_run"}


async def test_poll_fills_the_cache_exactly_and_a_second_poll_changes_nothing(
    any_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=24, mailboxes=4000, seed=11)
    client, _ = make_client(sim)
    registry = await sync_workspaces(any_store, client, instance)
    assert len(registry.workspaces) == 24 and len(registry.created) == 24

    seen: list[PollProgress] = []
    started = time.perf_counter()
    report = await poll_mailboxes(any_store, client, instance=instance, progress=seen.append)
    elapsed = time.perf_counter() - started
    print(f"\nfirst poll, {type(any_store).__name__}: {report.totals['mailboxes_seen']} mailboxes in {elapsed:.2f}s")

    assert report.status == "completed", report.summary()
    rows = await cache(db, instance)
    assert len(rows) == sum(len(ids) for ids in sim.team_mailboxes.values())  # shared mailboxes: once per workspace
    assert_cache_matches(sim, rows)
    assert report.totals["inserted"] == len(rows) and report.totals["deleted"] == 0
    # one history row per new mailbox (its first observed status), as for mailboxes webhooks insert
    assert len(await history(db, instance)) == len(rows)
    assert seen[-1].fraction == 1.0 and seen[-1].workspaces_done == 24 and seen[-1].mailboxes == len(rows)

    started = time.perf_counter()
    again = await poll_mailboxes(any_store, client, instance=instance)
    print(f"second poll: {time.perf_counter() - started:.2f}s")
    assert again.status == "completed"
    assert {
        k: again.totals[k] for k in ("inserted", "updated", "status_changes", "deleted", "undeleted")
    } == dict.fromkeys(("inserted", "updated", "status_changes", "deleted", "undeleted"), 0)
    after = await cache(db, instance)
    assert after.keys() == rows.keys()
    for key, row in rows.items():
        assert {k: v for k, v in after[key].items() if k not in IGNORED_ON_RERUN} == {
            k: v for k, v in row.items() if k not in IGNORED_ON_RERUN
        }, key
    # not even rewritten: same row versions, so realtime consumers saw no UPDATE
    assert {k: r["row_version"] for k, r in after.items()} == {k: r["row_version"] for k, r in rows.items()}
    assert len(await history(db, instance)) == len(rows)

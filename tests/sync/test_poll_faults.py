"""Email Bison misbehaving during a poll: pagination traps, 429/500 bursts, a workspace that hangs."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest

from bisonsync.bison import RetryPolicy
from bisonsync.store import Store
from bisonsync.sync.mailboxes import poll_mailboxes
from bisonsync.sync.workspaces import sync_workspaces
from devstack.simulator import SimulatedBison
from devstack.simulator.faults import Target
from tests.sync.support import assert_cache_matches, cache, truth


def biggest_teams(sim: SimulatedBison, n: int) -> list[int]:
    return sorted(sim.team_mailboxes, key=lambda t: -len(sim.team_mailboxes[t]))[:n]


async def test_pagination_traps_null_next_and_per_page_ignored(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=6, mailboxes=600, seed=5)
    big = biggest_teams(sim, 1)[0]
    # every page of the biggest workspace says links.next = null although pages remain (meta tells the truth)
    sim.set_faults(null_next=[Target(workspace_id=big)])
    client, transport = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    report = await poll_mailboxes(pg_store, client, instance=instance)
    assert report.status == "completed", report.summary()
    assert_cache_matches(sim, await cache(db, instance))
    pages = {w.bison_workspace_id: w.pages for w in report.workspaces}
    # 15 per page whatever per_page=15... asked: never stopped at a short page, never one page too few
    assert pages[big] == math.ceil(len(sim.team_mailboxes[big]) / 15) > 1
    assert all(r.url.params["per_page"] == "15" for r in transport.requests if r.url.path == "/api/sender-emails")


async def test_an_empty_page_before_the_end_is_unverified_and_sweeps_nothing(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=6, mailboxes=600, seed=5)
    big, other = biggest_teams(sim, 2)
    client, _ = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    assert (await poll_mailboxes(pg_store, client, instance=instance)).status == "completed"

    sim.set_faults(empty_page=[Target(workspace_id=big, page=2)])
    gone = sim.team_mailboxes[other][0]
    sim.remove_mailbox(gone, other)
    report = await poll_mailboxes(pg_store, client, instance=instance)
    assert report.status == "completed" and not report.failed_workspaces
    unverified = {w.bison_workspace_id: w for w in report.unverified_workspaces}
    assert set(unverified) == {big}
    assert unverified[big].sweep is not None and "ended at page 2" in unverified[big].sweep
    assert report.totals["unverified"] == 1 and "1 unverified" in report.summary()
    rows = await cache(db, instance)
    assert all(r["deleted_at"] is None for (team, _), r in rows.items() if team == big)  # the predecessor's pitfall
    assert rows[(other, gone)]["deleted_at"] is not None  # the others are swept as usual

    sim.reset_faults()
    again = await poll_mailboxes(pg_store, client, instance=instance)
    assert again.status == "completed" and not again.unverified_workspaces
    assert all(w.verified for w in again.workspaces)
    assert_cache_matches(sim, await cache(db, instance, live_only=True))


async def test_an_empty_page_after_the_last_one_ends_the_listing(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=4, mailboxes=300, seed=8)
    client, transport = make_client(sim)

    def next_past_the_end(request: httpx.Request, doc: dict[str, Any]) -> dict[str, Any]:
        meta = doc["meta"]
        if doc["links"]["next"] is None and meta["current_page"] >= meta["last_page"]:
            doc["links"]["next"] = str(request.url.copy_set_param("page", meta["current_page"] + 1))
        return doc

    transport.rewrite = next_past_the_end
    await sync_workspaces(pg_store, client, instance)
    report = await poll_mailboxes(pg_store, client, instance=instance)
    assert report.status == "completed", report.summary()
    assert_cache_matches(sim, await cache(db, instance))
    assert all(w.sweep == "swept" for w in report.workspaces)


async def test_429_with_retry_after_and_500_bursts_still_converge(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=8, mailboxes=900, seed=9)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    retry = RetryPolicy(max_attempts=8, backoff_base_s=0.001, backoff_max_s=0.004, retry_after_cap_s=5.0)
    client, _ = make_client(sim, retry=retry, sleep=sleep)
    await sync_workspaces(pg_store, client, instance)
    sim.set_faults(rate_429=0.15, retry_after="0.25", next_500=4, rate_500=0.1)
    report = await poll_mailboxes(pg_store, client, instance=instance)
    assert report.status == "completed", report.summary()
    assert_cache_matches(sim, await cache(db, instance))
    assert sim.counters.statuses[429] > 0 and sim.counters.statuses[500] >= 4
    assert waits.count(0.25) == sim.counters.statuses[429]  # every 429 waited what Retry-After said


@pytest.mark.parametrize("budget", ["attempt_timeout", "workspace_timeout"])
async def test_a_workspace_that_times_out_mid_listing_is_failed_and_not_swept(
    budget: str, pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=6, mailboxes=600, seed=12)
    stuck, other = biggest_teams(sim, 2)
    if budget == "attempt_timeout":  # the client gives up on the page
        client, _ = make_client(sim, retry=RetryPolicy(max_attempts=2, backoff_base_s=0.001, attempt_timeout_s=0.2))
        timeout = None
    else:  # the poller's own budget for one workspace
        client, _ = make_client(sim)
        timeout = 0.5
    await sync_workspaces(pg_store, client, instance)
    assert (await poll_mailboxes(pg_store, client, instance=instance)).status == "completed"

    for team in (stuck, other):  # vanish from Bison: only the complete listing may sweep them
        sim.remove_mailbox(sim.team_mailboxes[team][-1], team)
    sim.set_faults(hang=[Target(workspace_id=stuck, page=3)], hang_s=30)
    try:
        report = await poll_mailboxes(pg_store, client, instance=instance, workspace_timeout_s=timeout)
    finally:
        sim.release_hangs()
    assert report.status == "partial", report.summary()
    (failed,) = report.failed_workspaces
    assert failed.bison_workspace_id == stuck and failed.pages == 2
    assert failed.error is not None and ("Timeout" in failed.error or "timed out" in failed.error)
    rows = await cache(db, instance)
    assert [k for k, r in rows.items() if r["deleted_at"] is not None] == [
        k for k in rows if k[0] == other and k not in truth(sim)
    ]
    assert (
        sum(1 for k, r in rows.items() if k[0] == stuck and r["deleted_at"] is None)
        == len(sim.team_mailboxes[stuck]) + 1
    )

    sim.reset_faults()
    report = await poll_mailboxes(pg_store, client, instance=instance)
    assert report.status == "completed"
    assert_cache_matches(sim, await cache(db, instance, live_only=True))

"""Run records: a killed poll resumes at its cursor, single flight across pollers, takeover after lease expiry,
idempotent pages, fencing of a poller that lost its lease."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from bisonsync.bison import SenderEmail, Tag
from bisonsync.store import Store, StoreError, StoreInvalidInput
from bisonsync.sync.mailboxes import mailbox_job, poll_mailboxes
from bisonsync.sync.pages import rows_json
from bisonsync.sync.runs import SyncRunStore
from bisonsync.sync.workspaces import sync_workspaces
from devstack.simulator import SimulatedBison
from tests.sync.support import RULES, assert_cache_matches, cache, history, workspace_uuid


async def use_workspace_keys(db: asyncpg.Connection, sim: SimulatedBison, instance: str) -> dict[str, str]:
    """Register every workspace's key as an env var ref; returns the environment to resolve them from."""
    environ = {}
    for team, key in sim.workspace_keys.items():
        ref = f"BISON_KEY_TEST_{team}"
        environ[ref] = key
        await db.execute(
            "insert into public.workspace_credentials (workspace_id, bison_api_key_ref) values ($1, $2)"
            " on conflict (workspace_id) do update set bison_api_key_ref = excluded.bison_api_key_ref",
            await workspace_uuid(db, instance, team),
            ref,
        )
    return environ


async def test_a_killed_poll_resumes_at_the_page_after_the_last_committed_one(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=5, mailboxes=700, seed=21)
    sim.set_faults(latency_ms=2)
    client, transport = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    environ = await use_workspace_keys(db, sim, instance)
    team_of_token = {key: team for team, key in sim.workspace_keys.items()}

    kill_after = 12
    enough = asyncio.Event()

    async def count(request: httpx.Request, response: httpx.Response) -> None:
        if len(transport.page_requests()) >= kill_after:
            enough.set()

    transport.hook = count
    first = asyncio.create_task(
        poll_mailboxes(pg_store, client, instance=instance, concurrency=2, environ=environ, holder="killed")
    )
    await enough.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    fetched_before = len(transport.page_requests())
    assert kill_after <= fetched_before <= kill_after + 2  # at most one more request in flight per lane

    progress = {
        r["team"]: (r["status"], r["pages_done"])
        for r in await db.fetch(
            "select w.bison_workspace_id as team, p.status, p.pages_done from public.sync_run_workspaces p"
            " join public.sync_runs r on r.id = p.run_id join public.workspaces w on w.id = p.workspace_id"
            " where r.job = $1 and r.status = 'running'",
            mailbox_job(instance),
        )
    }
    assert sum(pages for _, pages in progress.values()) >= kill_after - 4  # committed (≤ 1 in flight per lane)
    assert any(status == "running" and pages > 0 for status, pages in progress.values()), progress
    transport.requests.clear()
    transport.hook = None

    report = await poll_mailboxes(pg_store, client, instance=instance, concurrency=2, environ=environ, holder="next")
    assert report.status == "completed" and report.resumed, report.summary()
    requested: dict[int, list[int]] = defaultdict(list)
    for token, page in transport.page_requests():
        requested[team_of_token[token]].append(page)
    for team, (status, pages_done) in progress.items():
        if status == "done":
            assert team not in requested  # finished workspaces are not fetched again
        elif pages_done:
            assert min(requested[team]) == pages_done + 1, (team, pages_done, requested[team])
    resumed_after = {w.bison_workspace_id: w.resumed_after_page for w in report.workspaces}
    assert resumed_after == {team: pages for team, (_, pages) in progress.items()}
    assert sum(pages for _, pages in progress.values()) > 0
    rows = await cache(db, instance)
    assert_cache_matches(sim, rows)
    assert len(await history(db, instance)) == len(rows)  # nothing doubled by the resume


async def test_two_pollers_at_once_one_runs_the_other_skips(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str, devstack: Any
) -> None:
    from tests.simulated import make_store

    sim = SimulatedBison(workspaces=6, mailboxes=500, seed=4)
    sim.set_faults(latency_ms=1)
    client, _ = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    other_store = make_store("supabase", devstack)  # the other replica talks REST: same lease
    await other_store.open()
    try:
        a, b = await asyncio.gather(
            poll_mailboxes(pg_store, client, instance=instance, holder="replica-a"),
            poll_mailboxes(other_store, client, instance=instance, holder="replica-b"),
        )
    finally:
        await other_store.close()
    assert sorted([a.status, b.status]) == ["completed", "skipped"]
    ran, skipped = (a, b) if a.status == "completed" else (b, a)
    assert skipped.held_by == ran.holder
    assert sim.counters.requests["GET /api/sender-emails"] == ran.totals["pages"]  # polled once, not twice
    assert_cache_matches(sim, await cache(db, instance))
    # the lease was released at the end: the next poll runs
    assert (await poll_mailboxes(pg_store, client, instance=instance, holder="replica-b")).status == "completed"


async def test_a_dead_holder_is_taken_over_after_its_lease_expires(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=3, mailboxes=200, seed=2)
    client, _ = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    ghost = SyncRunStore(pg_store, job=mailbox_job(instance), holder="ghost", lease_seconds=1)
    started = await ghost.start(instance)
    assert started.status == "started" and started.run_id is not None

    blocked = await poll_mailboxes(pg_store, client, instance=instance, holder="heir")
    assert (blocked.status, blocked.held_by, blocked.run_id) == ("skipped", "ghost", started.run_id)
    await asyncio.sleep(1.1)
    report = await poll_mailboxes(pg_store, client, instance=instance, holder="heir")
    assert (report.status, report.run_id, report.resumed) == ("completed", started.run_id, True)
    assert_cache_matches(sim, await cache(db, instance))

    # the ghost, back from the dead, is fenced off
    assert await ghost.heartbeat(started.run_id) is False
    with pytest.raises(StoreError) as err:
        await ghost.commit_page(
            started.run_id, started.workspaces[0].workspace_id, 1, None, b"[]", observed_at=_now(), listing_total=0
        )
    assert err.value.code in ("55000", "55006")


async def test_pages_are_idempotent_in_order_and_fenced(
    any_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=2, mailboxes=60, seed=1)
    client, _ = make_client(sim)
    await sync_workspaces(any_store, client, instance)
    runs = SyncRunStore(any_store, job=mailbox_job(instance), holder="manual", lease_seconds=30)
    start = await runs.start(instance)
    assert start.run_id is not None
    ws = next(w for w in start.workspaces if w.bison_workspace_id != sim.parent_id)
    mailboxes = sim.mailboxes_of(ws.bison_workspace_id)[:15]
    body = rows_json([SenderEmail(**_builtins(m)) for m in mailboxes], RULES)
    first = await runs.commit_page(
        start.run_id, ws.workspace_id, 1, "/api/sender-emails?page=2", body, observed_at=_now(), listing_total=40
    )
    again = await runs.commit_page(
        start.run_id, ws.workspace_id, 1, "/api/sender-emails?page=2", body, observed_at=_now(), listing_total=40
    )
    assert (first.replayed, first.inserted, first.pages_done) == (False, 15, 1)
    assert (again.replayed, again.inserted, again.updated, again.pages_done, again.mailboxes_seen) == (
        True,
        0,
        0,
        1,
        15,
    )
    assert len(await history(db, instance)) == 15
    with pytest.raises(StoreInvalidInput):  # page 3 before page 2
        await runs.commit_page(start.run_id, ws.workspace_id, 3, None, b"[]", observed_at=_now(), listing_total=40)
    with pytest.raises(StoreInvalidInput):  # finishing as complete while a next page is pending
        await runs.finish_workspace(start.run_id, ws.workspace_id, ok=True)
    intruder = SyncRunStore(any_store, job=mailbox_job(instance), holder="intruder", lease_seconds=30)
    assert (await intruder.start(instance)).status == "skipped"
    with pytest.raises(StoreError) as err:
        await intruder.commit_page(start.run_id, ws.workspace_id, 2, None, b"[]", observed_at=_now(), listing_total=40)
    assert err.value.code == "55006"
    done = await runs.finish_workspace(start.run_id, ws.workspace_id, ok=False, error="stopped by the test")
    assert (done.status, done.error) == ("failed", "stopped by the test")
    result = await runs.finish(start.run_id)
    assert result.status == "failed" and result.totals["failed"] == 2  # the other workspace never ran
    assert (await runs.finish(start.run_id)).already_finished


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _builtins(record: Any) -> dict[str, Any]:
    doc: dict[str, Any] = msgspec.to_builtins(record)
    doc["tags"] = [Tag(**t) for t in doc["tags"]]
    return doc


class FailingKeyRefs:
    """A store whose key-ref lookup fails after the run started (an unexpected error mid-poll)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def rpc_rows(self, function: str, args: Any) -> list[dict[str, Any]]:
        raise StoreError("boom", code="XX000")


async def test_an_unexpected_error_releases_the_lease_and_the_next_poll_resumes(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=3, mailboxes=120, seed=22)
    client, _ = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    with pytest.raises(StoreError, match="boom"):
        await poll_mailboxes(FailingKeyRefs(pg_store), client, instance=instance, lease_seconds=300)  # type: ignore[arg-type]
    assert await db.fetchval("select count(*) from public.sync_leases where job = $1", mailbox_job(instance)) == 0
    report = await poll_mailboxes(pg_store, client, instance=instance)
    assert (report.status, report.resumed) == ("completed", True)
    assert_cache_matches(sim, await cache(db, instance))

"""Nothing is deleted on a listing that cannot be proven complete: a bare `{"data": [...]}` answer, counts that
disagree with `meta.total`; a complete listing still sweeps; a listing unverified run after run raises an alert."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import msgspec

from bisonsync.bison import Page, SenderEmail
from bisonsync.store import Store
from bisonsync.sync.mailboxes import poll_mailboxes
from bisonsync.sync.pages import FetchedPage
from bisonsync.sync.workspaces import sync_workspaces
from devstack.simulator import SimulatedBison
from devstack.simulator.faults import Target
from tests.sync.support import assert_cache_matches, cache, workspace_uuid


def biggest(sim: SimulatedBison) -> int:
    return max(sim.team_mailboxes, key=lambda t: len(sim.team_mailboxes[t]))


async def test_a_bare_data_listing_deletes_nothing(
    any_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=4, mailboxes=300, seed=21)
    team = biggest(sim)
    client, _ = make_client(sim)
    await sync_workspaces(any_store, client, instance)
    assert (await poll_mailboxes(any_store, client, instance=instance)).status == "completed"
    before = await cache(db, instance, live_only=True)
    assert sum(1 for t, _ in before if t == team) > 15

    # the API reference's own example: {"data": [...]} with no links and no meta (one page of 15)
    sim.set_faults(bare_data=[Target(workspace_id=team)])
    first = sim.mailboxes[sim.team_mailboxes[team][0]]
    first.name = "Renamed In Bison"
    report = await poll_mailboxes(any_store, client, instance=instance)
    assert report.status == "completed", report.summary()
    ws = next(w for w in report.workspaces if w.bison_workspace_id == team)
    assert ws.verified is False and ws.deleted == 0 and ws.pages == 1 and ws.mailboxes == 15
    assert ws.sweep is not None and ws.sweep.startswith("unverified") and "bare {data}" in ws.sweep
    after = await cache(db, instance, live_only=True)
    assert set(after) == set(before)  # nothing deleted
    assert after[(team, first.id)]["account_name"] == "Renamed In Bison"  # what was seen is upserted
    assert all(w.verified for w in report.workspaces if w.bison_workspace_id != team)

    run = await db.fetchrow("select unverified, totals, status from public.sync_runs where id = $1", report.run_id)
    assert run is not None and run["unverified"] == 1 and run["status"] == "completed"
    view = await db.fetchrow(
        "select last_verified, unverified_runs from public.workspace_mailbox_sync where workspace_id = $1",
        await workspace_uuid(db, instance, team),
    )
    assert view is not None and (view["last_verified"], view["unverified_runs"]) == (False, 1)


async def test_counts_that_disagree_with_meta_total_delete_nothing(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=4, mailboxes=300, seed=22)
    team = biggest(sim)
    client, transport = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    assert (await poll_mailboxes(pg_store, client, instance=instance)).status == "completed"
    gone = sim.team_mailboxes[team][3]
    sim.remove_mailbox(gone, team)

    def total_too_high(request: httpx.Request, doc: dict[str, Any]) -> dict[str, Any]:
        if request.headers.get("authorization") and doc.get("meta"):
            doc["meta"]["total"] = doc["meta"]["total"] + 7  # every page agrees, the count does not
        return doc

    transport.rewrite = total_too_high
    report = await poll_mailboxes(pg_store, client, instance=instance)
    assert report.status == "completed", report.summary()
    assert {w.bison_workspace_id for w in report.unverified_workspaces} == set(sim.teams)
    assert all(w.deleted == 0 and w.sweep and "meta.total says" in w.sweep for w in report.workspaces)
    rows = await cache(db, instance)
    assert rows[(team, gone)]["deleted_at"] is None  # vanished from Bison, but the listing is not proven

    transport.rewrite = None
    report = await poll_mailboxes(pg_store, client, instance=instance)
    assert all(w.verified and w.sweep == "swept" for w in report.workspaces)
    assert (await cache(db, instance))[(team, gone)]["deleted_at"] is not None  # the complete listing sweeps
    assert_cache_matches(sim, await cache(db, instance, live_only=True))


async def test_a_listing_unverified_run_after_run_raises_a_sync_alert(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=3, mailboxes=120, seed=23)
    team = biggest(sim)
    client, _ = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    ws_id = await workspace_uuid(db, instance, team)
    since = datetime.now(UTC) - timedelta(minutes=1)
    sim.set_faults(bare_data=[Target(workspace_id=team)])

    async def unverified_alerts() -> list[Any]:
        rows = await pg_store.rpc_rows(
            "alert_sync_failures",
            {"p_since": since, "p_until": datetime.now(UTC) + timedelta(minutes=1), "p_workspace_ids": None},
        )
        return [r for r in rows if r["run_status"] == "unverified" and str(r["workspace_id"]) == str(ws_id)]

    for _ in range(2):
        await poll_mailboxes(pg_store, client, instance=instance)
    assert await unverified_alerts() == []  # twice is not yet "persists" (sync_unverified_alert_runs = 3)
    await poll_mailboxes(pg_store, client, instance=instance)
    alerts = await unverified_alerts()
    assert len(alerts) == 1 and "unverified for 3 runs" in alerts[0]["error"]

    sim.reset_faults()
    await poll_mailboxes(pg_store, client, instance=instance)
    streak = await db.fetchval(
        "select unverified_runs from public.workspace_mailbox_sync where workspace_id = $1", ws_id
    )
    assert streak == 0


def test_which_pages_leave_a_listing_unproven() -> None:
    url = httpx.URL("http://bison.test/api/sender-emails?page=2")
    at = datetime.now(UTC)

    def page(doc: dict[str, Any], next_url: httpx.URL | None = None) -> FetchedPage:
        return FetchedPage(url=url, page=msgspec.convert(doc, Page[SenderEmail]), next_url=next_url, observed_at=at)

    rows = [{"id": n, "email": f"m{n}@example.com"} for n in range(15)]
    meta = {"current_page": 2, "last_page": 3, "total": 40}
    assert page({"data": rows}).unverified == "a bare {data} answer (15 items): the listing cannot be proven complete"
    assert "links but no meta" in (page({"data": rows, "links": {"next": None}}).unverified or "")
    assert page({"data": rows, "meta": meta}, next_url=url.copy_set_param("page", 3)).unverified is None
    assert page({"data": rows, "meta": {**meta, "current_page": 3}}).unverified is None  # the last page
    assert "ended at page 2 of 3 (an empty page)" in (page({"data": [], "meta": meta}).unverified or "")
    assert "without a next link" in (page({"data": rows, "meta": meta}).unverified or "")
    assert page({"data": [], "meta": {"current_page": 4, "last_page": 3, "total": 40}}).unverified is None

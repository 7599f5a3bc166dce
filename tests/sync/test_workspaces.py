"""The workspace registry from GET /api/workspaces/v1.1: new workspaces, trimmed names, renames by id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import msgspec

from bisonsync.store import Store
from bisonsync.sync.mailboxes import poll_mailboxes
from bisonsync.sync.workspaces import sync_workspaces
from devstack.simulator import SimulatedBison


async def registry(db: asyncpg.Connection, instance: str) -> dict[int, asyncpg.Record]:
    rows = await db.fetch("select * from public.workspaces where instance = $1", instance)
    return {r["bison_workspace_id"]: r for r in rows}


async def test_workspaces_appear_trimmed_and_renames_are_tracked_by_id(
    any_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=7, mailboxes=100, seed=41)
    client, _ = make_client(sim)
    report = await sync_workspaces(any_store, client, instance)
    assert {w.bison_workspace_id for w in report.created} == set(sim.teams)
    assert any(w.main for w in report.workspaces)  # the parent team is registered too (docs/sync.md)
    rows = await registry(db, instance)
    assert {t: r["name"] for t, r in rows.items()} == {t: team.name.strip() for t, team in sim.teams.items()}
    assert any(team.name != team.name.strip() for team in sim.teams.values())  # the data did have stray spaces

    team = next(t for t in sim.teams if not sim.teams[t].main)
    old_name = rows[team]["name"]
    sim.rename_workspace(team, "  Renamed Client Co  ")
    new_team = msgspec.structs.replace(sim.teams[team], id=999_001, name="Brand New Client ")
    sim.teams[new_team.id] = new_team
    sim.team_mailboxes[new_team.id] = []
    again = await sync_workspaces(any_store, client, instance)
    assert [(w.bison_workspace_id, w.renamed_from, w.name) for w in again.renamed] == [
        (team, old_name, "Renamed Client Co")
    ]
    assert [w.bison_workspace_id for w in again.created] == [new_team.id]
    after = await registry(db, instance)
    assert after[team]["id"] == rows[team]["id"] and after[team]["name"] == "Renamed Client Co"
    assert after[new_team.id]["name"] == "Brand New Client"
    assert await db.fetchval(
        "select array_agg(name) from public.workspace_name_history where workspace_id = $1", rows[team]["id"]
    ) == [old_name]

    # unchanged names: nothing written (workspaces is published to realtime)
    versions = await db.fetch("select id, xmin::text as v from public.workspaces where instance = $1", instance)
    third = await sync_workspaces(any_store, client, instance)
    assert not third.created and not third.renamed
    assert await db.fetch("select id, xmin::text as v from public.workspaces where instance = $1", instance) == versions

    del sim.teams[new_team.id]
    assert (await sync_workspaces(any_store, client, instance)).missing == [new_team.id]


async def test_the_parent_team_can_be_left_out_and_is_then_not_polled(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=4, mailboxes=100, seed=42)
    client, _ = make_client(sim)
    report = await sync_workspaces(pg_store, client, instance, include_main=False)
    assert sim.parent_id not in {w.bison_workspace_id for w in report.workspaces}
    assert set(await registry(db, instance)) == set(sim.teams) - {sim.parent_id}
    polled = await poll_mailboxes(pg_store, client, instance=instance)
    assert {w.bison_workspace_id for w in polled.workspaces} == set(sim.teams) - {sim.parent_id}


async def test_inactive_workspaces_are_not_polled(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=4, mailboxes=100, seed=43)
    client, _ = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    off = next(t for t in sim.teams if not sim.teams[t].main)
    await db.execute(
        "update public.workspaces set active = false where instance = $1 and bison_workspace_id = $2", instance, off
    )
    report = await poll_mailboxes(pg_store, client, instance=instance)
    assert report.status == "completed"
    assert off not in {w.bison_workspace_id for w in report.workspaces}

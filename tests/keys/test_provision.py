"""`keys provision` / `keys verify` against the simulator and both stores: idempotent, rotation revokes where the
API allows, new workspaces get keys on the next run, refused keys are found and recorded."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from bisonsync.keys import key_status, provision_keys, stored_keys, verify_keys
from bisonsync.store import Store
from bisonsync.sync.workspaces import sync_workspaces
from devstack.simulator import SimulatedBison
from devstack.simulator.tokens import tokens_of

pytestmark = pytest.mark.asyncio


async def test_provision_is_idempotent_and_keys_work_for_their_workspace(
    any_store: Store, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=4, mailboxes=40, seed=151)
    client, _ = make_client(sim)
    await sync_workspaces(any_store, client, instance)

    first = await provision_keys(any_store, client, instance)
    assert first.ok and first.count("created") == len(sim.teams) == 4
    keys = await stored_keys(any_store, instance)
    assert {k.bison_workspace_id for k in keys} == set(sim.teams)
    for k in keys:
        cred = sim.credential(k.token)
        assert cred is not None and not cred.super_admin and cred.team_id == k.bison_workspace_id
        assert k.token_id == k.token.split("|")[0]

    second = await provision_keys(any_store, client, instance)
    assert second.ok and second.count("kept") == 4 and second.count("created") == 0
    assert tokens_of(sim).created == 4  # nothing created the second time
    assert [k.token for k in await stored_keys(any_store, instance)] == [k.token for k in keys]


async def test_rotate_replaces_and_revokes_the_old_keys(
    pg_store: Store, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=3, mailboxes=30, seed=152)
    client, _ = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    await provision_keys(pg_store, client, instance)
    old = {k.bison_workspace_id: k.token for k in await stored_keys(pg_store, instance)}

    report = await provision_keys(pg_store, client, instance, rotate=True)
    assert report.count("rotated") == 3 and all(o.revoked_previous is True for o in report.outcomes)
    new = {k.bison_workspace_id: k.token for k in await stored_keys(pg_store, instance)}
    for team, token in old.items():
        assert sim.credential(token) is None  # revoked at Email Bison
        assert new[team] != token and sim.credential(new[team]) is not None


async def test_rotate_without_revocation_endpoint_reports_the_old_keys(
    pg_store: Store, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=2, mailboxes=20, seed=153)
    client, _ = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    await provision_keys(pg_store, client, instance)
    old = [k.token for k in await stored_keys(pg_store, instance)]
    tokens_of(sim).management_endpoints = False  # an instance without the (undocumented) revocation endpoint

    report = await provision_keys(pg_store, client, instance, rotate=True)
    assert report.ok and report.count("rotated") == 2
    assert len(report.unrevoked) == 2 and "could not be revoked" in report.summary()
    assert all(sim.credential(t) is not None for t in old)  # still valid: the operator deletes them by hand


async def test_new_workspaces_get_keys_on_the_next_provision(
    any_store: Store, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=4, mailboxes=40, seed=154)
    client, _ = make_client(sim)
    await sync_workspaces(any_store, client, instance, include_main=False)
    first = await provision_keys(any_store, client, instance)
    assert first.count("created") == 3

    await sync_workspaces(any_store, client, instance)  # the registry finds the parent workspace
    second = await provision_keys(any_store, client, instance)
    assert second.count("created") == 1 and second.count("kept") == 3
    created = next(o for o in second.outcomes if o.action == "created")
    assert created.bison_workspace_id == sim.parent_id


async def test_provision_needs_the_super_admin_key(
    pg_store: Store, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=2, mailboxes=10, seed=155)
    team = next(iter(sim.workspace_keys))
    client, _ = make_client(sim, api_key=None, workspace_keys={team: sim.workspace_keys[team]})
    with pytest.raises(ValueError, match="super-admin"):
        await provision_keys(pg_store, client, instance)


async def test_creation_failure_is_reported_and_stores_nothing(
    pg_store: Store, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=2, mailboxes=10, seed=156)
    client, _ = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    sim.set_faults(next_500=1)  # creation is not retried after the request went out
    report = await provision_keys(pg_store, client, instance, concurrency=1)
    assert report.count("failed") == 1 and report.count("created") == 1 and not report.ok
    failed = next(o for o in report.outcomes if o.action == "failed")
    assert "creating the key" in failed.detail and "HTTP 500" in failed.detail
    status = {s.bison_workspace_id: s for s in await key_status(pg_store, instance)}
    assert not status[failed.bison_workspace_id].has_key
    again = await provision_keys(pg_store, client, instance)  # the next run finishes the job
    assert again.ok and again.count("created") == 1 and again.count("kept") == 1


async def test_verify_reports_refused_and_missing_keys_and_records_them(
    any_store: Store, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=4, mailboxes=40, seed=157)
    client, _ = make_client(sim)
    await sync_workspaces(any_store, client, instance, include_main=False)
    await provision_keys(any_store, client, instance)
    await sync_workspaces(any_store, client, instance)  # parent: registered, no key yet
    victim = next(t for t in sim.teams if t != sim.parent_id)
    tokens_of(sim).revoke_team(victim)

    report = await verify_keys(any_store, client, instance)
    states = {o.bison_workspace_id: o.state for o in report.outcomes}
    assert states[victim] == "refused" and states[sim.parent_id] == "missing"
    assert sum(1 for s in states.values() if s == "ok") == 2 and not report.ok
    status = {s.bison_workspace_id: s for s in await key_status(any_store, instance)}
    assert status[victim].failed_at is not None and "401" in (status[victim].error or "")

    fixed = await provision_keys(any_store, client, instance)  # failed key replaced, missing one created
    assert fixed.count("replaced") == 1 and fixed.count("created") == 1
    assert (await verify_keys(any_store, client, instance)).ok


async def test_keys_never_reach_the_logs(
    pg_store: Store,
    make_client: Callable[..., Any],
    instance: str,
    caplog: pytest.LogCaptureFixture,
    db: asyncpg.Connection,
) -> None:
    caplog.set_level(logging.DEBUG)
    sim = SimulatedBison(workspaces=3, mailboxes=30, seed=158)
    client, _ = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    await provision_keys(pg_store, client, instance)
    await provision_keys(pg_store, client, instance, rotate=True)
    tokens_of(sim).revoke_team(next(iter(sim.teams)))
    await verify_keys(pg_store, client, instance)
    seen = [r.token for r in tokens_of(sim).tokens.values()]
    seen += [k.token for k in await stored_keys(pg_store, instance)]
    assert seen
    for token in seen:
        assert token.split("|")[1] not in caplog.text
    # and nothing readable by the API roles holds them: the credentials table keeps only references
    row = await db.fetchrow(
        "select c.* from public.workspace_credentials c join public.workspaces w on w.id = c.workspace_id "
        "where w.instance = $1 limit 1",
        instance,
    )
    assert row is not None and row["bison_api_key_secret_id"] is not None
    assert not any(token.split("|")[1] in str(dict(row)) for token in seen)

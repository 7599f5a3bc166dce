"""The poller with keys from Vault: a super-admin-only setup polls in parallel after one provision; a revoked key
falls back to the super-admin key for its workspace (same cycle), is counted, warned about and recorded."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from bisonsync.bison import BisonAuthError, BisonClient, KeyKind
from bisonsync.keys import key_fallback_counts, key_status, provision_keys, stored_keys
from bisonsync.settings import Settings
from bisonsync.store import Store
from bisonsync.sync.scheduled import run_sync_cycle
from bisonsync.sync.workspaces import sync_workspaces
from devstack.simulator import SimulatedBison
from devstack.simulator.tokens import tokens_of
from tests.simulated import BASE_URL, FAST_RETRY, RecordingTransport

pytestmark = pytest.mark.asyncio


def settings_for(sim: SimulatedBison, instance: str) -> Settings:
    return Settings(bison_base_url=BASE_URL, bison_api_key=sim.super_admin_key, bison_instance=instance)


async def assert_cache_matches(sim: SimulatedBison, db: asyncpg.Connection, instance: str) -> None:
    """Every workspace's live cached mailboxes are the simulator's listing of it."""
    rows = await db.fetch(
        "select w.bison_workspace_id as team, array_agg(s.bison_sender_id order by s.bison_sender_id) as ids"
        " from public.sender_emails_cache s join public.workspaces w on w.id = s.workspace_id"
        " where w.instance = $1 and s.deleted_at is null group by 1",
        instance,
    )
    expected = {team: sorted(ids) for team, ids in sim.team_mailboxes.items() if ids}
    assert {r["team"]: list(r["ids"]) for r in rows} == expected


async def provisioned(store: Store, client: BisonClient, instance: str) -> dict[int, str]:
    await sync_workspaces(store, client, instance)
    assert (await provision_keys(store, client, instance)).ok
    return {k.bison_workspace_id: k.token for k in await stored_keys(store, instance)}


async def test_poll_uses_the_stored_keys_in_parallel(
    any_store: Store, make_client: Callable[..., Any], instance: str, db: asyncpg.Connection
) -> None:
    sim = SimulatedBison(workspaces=5, mailboxes=300, seed=171)
    sim.set_faults(latency_ms=5)
    client, transport = make_client(sim)
    keys = await provisioned(any_store, client, instance)
    sim.reset_counters()
    transport.requests.clear()

    cycle = await run_sync_cycle(settings_for(sim, instance), any_store, client, concurrency=5, environ={})
    assert cycle.mailboxes.status == "completed"
    await assert_cache_matches(sim, db, instance)
    used = {token for token, _ in transport.page_requests()}
    assert used == set(keys.values())  # every page read with its workspace's own key, none with the super-admin key
    assert sim.counters.switches == 0
    assert sim.counters.max_in_flight > 1  # workspaces really ran at the same time


async def test_env_var_keys_win_over_stored_ones(
    pg_store: Store, make_client: Callable[..., Any], instance: str, db: asyncpg.Connection
) -> None:
    sim = SimulatedBison(workspaces=3, mailboxes=60, seed=172)
    client, transport = make_client(sim)
    keys = await provisioned(pg_store, client, instance)
    team = next(iter(keys))
    await db.execute(
        "update public.workspace_credentials c set bison_api_key_ref = 'KEYS_TEST_WS_KEY' from public.workspaces w "
        "where w.id = c.workspace_id and w.instance = $1 and w.bison_workspace_id = $2",
        instance,
        team,
    )
    transport.requests.clear()
    env = {"KEYS_TEST_WS_KEY": sim.workspace_keys[team]}
    cycle = await run_sync_cycle(settings_for(sim, instance), pg_store, client, environ=env)
    assert cycle.mailboxes.status == "completed"
    used = {token for token, _ in transport.page_requests()}
    assert sim.workspace_keys[team] in used and keys[team] not in used


async def test_revoked_key_falls_back_to_the_super_admin_key_and_is_reported(
    any_store: Store,
    make_client: Callable[..., Any],
    instance: str,
    db: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = SimulatedBison(workspaces=4, mailboxes=200, seed=173)
    client, transport = make_client(sim)
    keys = await provisioned(any_store, client, instance)
    victim = next(t for t in keys if t != sim.parent_id)
    tokens_of(sim).revoke_team(victim)  # an admin deleted the key in Email Bison
    before = key_fallback_counts().get(instance, 0)
    transport.requests.clear()
    caplog.set_level(logging.WARNING)

    cycle = await run_sync_cycle(settings_for(sim, instance), any_store, client, environ={})
    assert cycle.mailboxes.status == "completed"  # the victim's workspace was synced with the super-admin key
    await assert_cache_matches(sim, db, instance)
    assert key_fallback_counts()[instance] == before + 1
    assert f"workspace {victim}: workspace key" in caplog.text and "refused" in caplog.text
    assert keys[victim].split("|")[1] not in caplog.text
    pages = transport.page_requests()
    assert (keys[victim], 1) in pages and (sim.super_admin_key, 1) in pages
    status = {s.bison_workspace_id: s for s in await key_status(any_store, instance)}
    assert status[victim].failed_at is not None
    assert all(s.failed_at is None for t, s in status.items() if t != victim)

    # the next cycle does not try the failed key again; the next provision replaces it
    transport.requests.clear()
    cycle = await run_sync_cycle(settings_for(sim, instance), any_store, client, environ={})
    assert cycle.mailboxes.status == "completed"
    assert keys[victim] not in {t for t, _ in transport.page_requests()}
    assert key_fallback_counts()[instance] == before + 1
    report = await provision_keys(any_store, client, instance)
    assert report.count("replaced") == 1 and report.count("kept") == len(keys) - 1
    transport.requests.clear()
    await run_sync_cycle(settings_for(sim, instance), any_store, client, environ={})
    assert sim.super_admin_key not in {t for t, _ in transport.page_requests()}


async def test_a_rotation_elsewhere_is_picked_up_without_marking_the_new_key_failed(
    pg_store: Store, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=3, mailboxes=60, seed=174)
    service_client, _ = make_client(sim)  # the service's long-lived client
    await provisioned(pg_store, service_client, instance)
    await run_sync_cycle(settings_for(sim, instance), pg_store, service_client, environ={})
    cli_client, _ = make_client(sim)  # `keys provision --rotate` from another process
    await provision_keys(pg_store, cli_client, instance, rotate=True)

    cycle = await run_sync_cycle(settings_for(sim, instance), pg_store, service_client, environ={})
    assert cycle.mailboxes.status == "completed"
    assert all(s.failed_at is None for s in await key_status(pg_store, instance))
    new = {k.bison_workspace_id: k.token for k in await stored_keys(pg_store, instance)}
    assert all(service_client.key_for(t).token == token for t, token in new.items())


async def test_without_a_super_admin_key_a_refused_key_still_fails_its_workspace() -> None:
    sim = SimulatedBison(workspaces=2, mailboxes=20, seed=175)
    team = next(iter(sim.workspace_keys))
    refused: list[int] = []
    async with BisonClient(
        BASE_URL,
        None,
        workspace_keys={team: sim.workspace_keys[team]},
        transport=RecordingTransport(sim),
        retry=FAST_RETRY,
    ) as client:
        client.on_key_refused(lambda t, key, exc: refused.append(t))
        tokens_of(sim).revoke_team(team)
        with pytest.raises(BisonAuthError):
            async with client.workspace(team) as session:
                await session.list_workspaces()
        assert refused == [team]
        with pytest.raises(ValueError, match="no Email Bison key"):
            client.key_for(team)


async def test_fallback_releases_the_super_admin_lock_when_the_session_ends() -> None:
    sim = SimulatedBison(workspaces=3, mailboxes=30, seed=176)
    teams = sorted(t for t in sim.workspace_keys)
    async with BisonClient(
        BASE_URL,
        sim.super_admin_key,
        workspace_keys={teams[0]: sim.workspace_keys[teams[0]]},
        transport=RecordingTransport(sim),
        retry=FAST_RETRY,
    ) as client:
        tokens_of(sim).revoke_team(teams[0])
        async with client.workspace(teams[0]) as session:
            before = session.key_kind
            listed = await session.list_workspaces()
            assert (before, session.key_kind) == (KeyKind.WORKSPACE, KeyKind.SUPER_ADMIN) and listed
        async with client.workspace(teams[1]) as other:  # would deadlock if the lock were still held
            assert other.key_kind is KeyKind.SUPER_ADMIN
            await other.list_workspaces()

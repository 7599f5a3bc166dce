"""Changes between polls: removed and returning mailboxes, status transitions, webhooks racing a poll, keys."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx

from bisonsync.store import Store
from bisonsync.store.api import ingest
from bisonsync.store.base import IngestRequest
from bisonsync.sync.mailboxes import poll_mailboxes
from bisonsync.sync.workspaces import sync_workspaces
from devstack.simulator import SimulatedBison
from tests.sync.support import assert_cache_matches, cache, history
from tests.sync.test_poll_runs import use_workspace_keys


def unshared(sim: SimulatedBison, team: int) -> int:
    return next(m for m in sim.team_mailboxes[team] if sim.teams_of(m) == [team])


def client_team(sim: SimulatedBison) -> int:
    return max((t for t in sim.team_mailboxes if t != sim.parent_id), key=lambda t: len(sim.team_mailboxes[t]))


async def test_removed_mailbox_is_deleted_after_a_full_run_and_undeleted_when_it_returns(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=4, mailboxes=300, seed=31)
    client, _ = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    await poll_mailboxes(pg_store, client, instance=instance)
    team = client_team(sim)
    gone = unshared(sim, team)
    record, status = sim.mailboxes[gone], sim.mailboxes[gone].status
    sim.remove_mailbox(gone, team)
    added = sim.add_mailboxes(team, 2)

    report = await poll_mailboxes(pg_store, client, instance=instance)
    assert (report.totals["deleted"], report.totals["inserted"]) == (1, 2)
    rows = await cache(db, instance)
    assert rows[(team, gone)]["deleted_at"] is not None
    assert all(rows[(team, m.id)]["deleted_at"] is None for m in added)
    assert_cache_matches(sim, await cache(db, instance, live_only=True))
    last = (await history(db, instance))[-1]
    assert (last["bison_sender_id"], last["old_status"], last["new_status"], last["source"]) == (
        gone,
        status,
        "Deleted",
        "poll",
    )

    sim.mailboxes[gone] = record
    sim.team_mailboxes[team].append(gone)
    report = await poll_mailboxes(pg_store, client, instance=instance)
    assert (report.totals["undeleted"], report.totals["deleted"]) == (1, 0)
    rows = await cache(db, instance)
    assert rows[(team, gone)]["deleted_at"] is None
    assert_cache_matches(sim, rows)
    last = (await history(db, instance))[-1]
    assert (last["bison_sender_id"], last["old_status"], last["new_status"]) == (gone, "Deleted", status)


async def test_status_transitions_are_recorded_in_history(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=4, mailboxes=300, seed=32)
    client, _ = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    await poll_mailboxes(pg_store, client, instance=instance)
    team = client_team(sim)
    connected = [
        m for m in sim.team_mailboxes[team] if sim.mailboxes[m].status == "Connected" and sim.teams_of(m) == [team]
    ][:3]
    for m in connected:
        sim.set_mailbox_status(m, "Disconnected")
    before = len(await history(db, instance))
    start = dt.datetime.now(dt.UTC)

    report = await poll_mailboxes(pg_store, client, instance=instance)
    assert report.totals["status_changes"] == len(connected) == report.totals["updated"]
    new = (await history(db, instance))[before:]
    assert sorted((h["bison_sender_id"], h["old_status"], h["new_status"], h["source"]) for h in new) == sorted(
        (m, "Connected", "Disconnected", "poll") for m in connected
    )
    rows = await cache(db, instance)
    for m in connected:
        row = rows[(team, m)]
        assert (row["status"], row["status_source"]) == ("Disconnected", "poll")
        assert start <= row["status_changed_at"] == row["status_observed_at"] <= dt.datetime.now(dt.UTC)


async def test_a_webhook_newer_than_the_page_is_not_overwritten_by_the_poll(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=4, mailboxes=300, seed=33)
    client, transport = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    await poll_mailboxes(pg_store, client, instance=instance)
    team = client_team(sim)
    target = next(m for m in sim.team_mailboxes[team] if sim.mailboxes[m].status == "Connected")
    delivered: list[str] = []

    async def webhook_while_the_page_is_in_flight(request: httpx.Request, response: httpx.Response) -> None:
        if request.url.path != "/api/sender-emails" or delivered:
            return
        ids = {m["id"] for m in json.loads(await response.aread())["data"]}
        if target not in ids:
            return
        # Bison says Connected in this page; a disconnect arrives after the request was sent, before the commit
        envelope = {
            "event": {
                "type": "email_account_disconnected",
                "workspace_id": team,
                "instance_url": f"https://{instance}",
                "workspace_name": sim.teams[team].name,
            },
            "data": {"sender_email": {"id": target, "email": sim.mailboxes[target].email}},
        }
        outcome = await ingest(
            pg_store,
            IngestRequest(
                dedup_key=f"race-{instance}-{target}",
                instance=instance,
                bison_workspace_id=team,
                workspace_name=sim.teams[team].name,
                event_type="email_account_disconnected",
                payload_json=json.dumps(envelope).encode(),
                received_at=dt.datetime.now(dt.UTC),
            ),
        )
        delivered.append(outcome.status)

    transport.hook = webhook_while_the_page_is_in_flight
    await poll_mailboxes(pg_store, client, instance=instance)
    assert delivered == ["applied"]
    row = (await cache(db, instance))[(team, target)]
    assert (row["status"], row["status_source"]) == ("Disconnected", "webhook")
    last = (await history(db, instance))[-1]
    assert (last["bison_sender_id"], last["new_status"], last["source"]) == (target, "Disconnected", "webhook")

    transport.hook = None  # a later poll is newer than the webhook: Bison's word wins again
    await poll_mailboxes(pg_store, client, instance=instance)
    row = (await cache(db, instance))[(team, target)]
    assert (row["status"], row["status_source"]) == ("Connected", "poll")


async def test_super_admin_switching_never_mixes_workspaces(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=10, mailboxes=900, seed=34)
    sim.set_faults(latency_ms=1, jitter_ms=3)
    client, _ = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    # half the workspaces on their own keys (parallel), half on the shared super-admin key (serialized)
    environ = await use_workspace_keys(db, sim, instance)
    keyed = sorted(sim.workspace_keys)[::2]
    environ = {ref: key for ref, key in environ.items() if int(ref.rsplit("_", 1)[1]) in keyed}
    report = await poll_mailboxes(pg_store, client, instance=instance, concurrency=8, environ=environ)
    assert report.status == "completed", report.summary()
    rows = await cache(db, instance)
    assert_cache_matches(sim, rows)  # every row's workspace is the one that lists it
    assert sim.counters.max_in_flight_by_key["super_admin"] == 1
    assert sim.counters.max_in_flight > 1  # the keyed workspaces ran alongside
    assert sim.counters.switches == len(sim.team_mailboxes) - len([t for t in keyed if t in sim.team_mailboxes])


async def test_workspace_keys_from_env_refs_poll_in_parallel_without_switching(
    any_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=8, mailboxes=800, seed=35)
    sim.set_faults(latency_ms=2)
    client, _ = make_client(sim)
    await sync_workspaces(any_store, client, instance)
    environ = await use_workspace_keys(db, sim, instance)
    report = await poll_mailboxes(any_store, client, instance=instance, concurrency=4, environ=environ)
    assert report.status == "completed"
    assert_cache_matches(sim, await cache(db, instance))
    assert sim.counters.switches == 0
    assert 1 < sim.counters.max_in_flight <= 4


def first_page_of(sim: SimulatedBison, team: int, request: httpx.Request, body: dict[str, Any]) -> bool:
    ids = {m["id"] for m in body.get("data", [])}
    return request.url.params.get("page") == "1" and sim.team_mailboxes[team][0] in ids


async def test_a_listing_that_shifts_while_it_is_paged_is_not_swept_until_a_stable_run(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=4, mailboxes=300, seed=36)
    client, transport = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    await poll_mailboxes(pg_store, client, instance=instance)
    team = client_team(sim)
    assert len(sim.team_mailboxes[team]) > 45
    late = next(m for m in sim.team_mailboxes[team][40:] if sim.teams_of(m) == [team])

    async def remove_behind_the_cursor(request: httpx.Request, response: httpx.Response) -> None:
        if (
            request.url.path == "/api/sender-emails"
            and late in sim.mailboxes
            and first_page_of(sim, team, request, json.loads(await response.aread()))
        ):
            sim.remove_mailbox(late, team)  # later pages shift by one: one live mailbox would be skipped

    transport.hook = remove_behind_the_cursor
    report = await poll_mailboxes(pg_store, client, instance=instance)
    assert report.status == "completed"
    ws = next(w for w in report.workspaces if w.bison_workspace_id == team)
    assert ws.sweep is not None and ws.sweep.startswith("unverified") and ws.deleted == 0 and ws.verified is False
    rows = await cache(db, instance)
    assert all(r["deleted_at"] is None for (t, _), r in rows.items() if t == team)

    transport.hook = None
    report = await poll_mailboxes(pg_store, client, instance=instance)
    assert report.totals["deleted"] == 1
    assert_cache_matches(sim, await cache(db, instance, live_only=True))


async def test_a_mailbox_a_webhook_adds_during_the_listing_is_not_swept_by_that_run(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=4, mailboxes=300, seed=37)
    client, transport = make_client(sim)
    await sync_workspaces(pg_store, client, instance)
    await poll_mailboxes(pg_store, client, instance=instance)
    team = client_team(sim)
    added: list[str] = []

    async def webhook_adds_a_mailbox(request: httpx.Request, response: httpx.Response) -> None:
        if request.url.path != "/api/sender-emails" or added:
            return
        if first_page_of(sim, team, request, json.loads(await response.aread())):
            envelope = {
                "event": {"type": "email_account_added", "workspace_id": team, "instance_url": f"https://{instance}"},
                "data": {"sender_email": {"id": 990_001, "email": "fresh@new-domain.test", "status": "Connected"}},
            }
            outcome = await ingest(
                pg_store,
                IngestRequest(
                    dedup_key=f"added-{instance}",
                    instance=instance,
                    bison_workspace_id=team,
                    workspace_name=None,
                    event_type="email_account_added",
                    payload_json=json.dumps(envelope).encode(),
                    received_at=dt.datetime.now(dt.UTC),
                ),
            )
            added.append(outcome.status)

    transport.hook = webhook_adds_a_mailbox
    report = await poll_mailboxes(pg_store, client, instance=instance)
    assert added == ["applied"] and report.totals["deleted"] == 0
    assert (await cache(db, instance))[(team, 990_001)]["deleted_at"] is None

    transport.hook = None  # Bison never listed it: a run whose listing began after it existed sweeps it
    report = await poll_mailboxes(pg_store, client, instance=instance)
    assert report.totals["deleted"] == 1
    assert (await cache(db, instance))[(team, 990_001)]["deleted_at"] is not None

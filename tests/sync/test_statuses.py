"""Mailbox statuses as real instances send them: any case, `pending_move` / `pending_deletion`, and statuses not
known yet. Stored in one spelling (unknown ones as sent), counted in their own buckets, never a crash."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from bisonsync.analytics import account_status_stats
from bisonsync.bison import canonical_status
from bisonsync.store import Store
from bisonsync.sync.mailboxes import poll_mailboxes
from bisonsync.sync.workspaces import sync_workspaces
from devstack.simulator import SimulatedBison
from tests.sync.support import cache, workspace_uuid

#: what the REST answer says for a mailbox -> what is stored
SPELLINGS = {
    "connected": "Connected",
    "DISCONNECTED": "Disconnected",
    "not_connected": "Not connected",
    "pending_move": "pending_move",
    "Pending Deletion": "pending_deletion",
    "Warming up": "Warming up",  # not known yet: kept as sent
}


def test_canonical_status() -> None:
    for raw, stored in SPELLINGS.items():
        assert canonical_status(raw) == stored
    assert canonical_status("  failed ") == "Failed"
    assert canonical_status(" ") is None and canonical_status(None) is None


async def test_statuses_in_any_spelling_are_stored_and_counted(
    any_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=3, mailboxes=60, seed=31)
    team = max(sim.team_mailboxes, key=lambda t: len(sim.team_mailboxes[t]))
    ids = [m for m in sim.team_mailboxes[team] if sim.teams_of(m) == [team]][: len(SPELLINGS) + 1]
    client, transport = make_client(sim)
    await sync_workspaces(any_store, client, instance)
    for mailbox_id in ids:
        sim.set_mailbox_status(mailbox_id, "Connected")
    spelled = dict(zip(ids, SPELLINGS, strict=False))

    def respell(request: httpx.Request, doc: dict[str, Any]) -> dict[str, Any]:
        for row in doc["data"]:
            row["status"] = spelled.get(row["id"], row["status"])
        return doc

    transport.rewrite = respell
    report = await poll_mailboxes(any_store, client, instance=instance)
    assert report.status == "completed", report.summary()
    rows = await cache(db, instance)
    for mailbox_id, raw in spelled.items():
        assert rows[(team, mailbox_id)]["status"] == SPELLINGS[raw], raw

    ws = await workspace_uuid(db, instance, team)
    stats = await account_status_stats(any_store, ws)
    live = [r for (t, _), r in rows.items() if t == team and r["deleted_at"] is None]
    assert stats.total == len(live)
    assert (stats.pending_move, stats.pending_deletion, stats.other) == (1, 1, 1)
    assert stats.not_connected == sum(r["status"] == "Not connected" for r in live)
    assert stats.connected + stats.disconnected + stats.failed + stats.not_connected + 3 == stats.total
    assert float(stats.disconnect_rate) == round((stats.disconnected + stats.failed) / stats.total * 100, 2)

    # a webhook's lower-case status lands in the same spelling (no new row, no second history entry on a repeat)
    target = await db.fetchval(
        "select id from public.sender_emails_cache where workspace_id = $1 and bison_sender_id = $2", ws, ids[0]
    )
    at = datetime.now(UTC)
    first = await any_store.rpc(
        "apply_mailbox_status",
        {"p_mailbox_id": str(target), "p_status": "disconnected", "p_source": "webhook", "p_event_at": at},
    )
    assert first["action"] == "changed" and first["status"] == "Disconnected"
    again = await any_store.rpc(
        "apply_mailbox_status",
        {"p_mailbox_id": str(target), "p_status": "DISCONNECTED", "p_source": "webhook", "p_event_at": at},
    )
    assert again["action"] in ("stale", "confirmed") and again["status"] == "Disconnected"
    count = await db.fetchval(
        "select count(*) from public.sender_emails_cache where workspace_id = $1 and bison_sender_id = $2", ws, ids[0]
    )
    assert count == 1

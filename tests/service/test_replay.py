"""`bisonsync replay`: ledger entries re-applied idempotently, on both stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg

from bisonsync.commands.replay import replay
from bisonsync.events import decode_delivery
from bisonsync.settings import Settings
from bisonsync.store import IngestRequest, Store, SupabaseStore
from bisonsync.store import api as store_api
from tests.conftest import StackHandle
from tests.service.conftest import load_fixture


def settings_of(store: Store, devstack: StackHandle) -> Settings:
    if isinstance(store, SupabaseStore):
        return Settings(supabase_url=devstack.env.supabase_url, supabase_service_role_key=devstack.env.service_role_key)
    return Settings(database_url=devstack.env.database_url)


async def test_failed_delivery_is_replayed_once(
    store: Store, devstack: StackHandle, db: asyncpg.Connection, unique_ws: int
) -> None:
    delivery = decode_delivery(json.dumps(load_fixture("lead_unsubscribed", unique_ws)).encode())
    started = datetime.now(UTC)
    await store.open()
    try:
        await store_api.record_failed(
            store,
            IngestRequest(
                dedup_key=delivery.dedup_key,
                instance=delivery.instance,
                bison_workspace_id=delivery.workspace_id,
                workspace_name=delivery.workspace_name,
                event_type=delivery.event_type,
                payload_json=delivery.payload_json,
                received_at=started,
            ),
            "simulated failure",
        )
    finally:
        await store.close()
    window = {"since": started - timedelta(seconds=1), "until": datetime.now(UTC) + timedelta(seconds=1)}
    assert await replay(
        settings_of(store, devstack), "failed", event_type="lead_unsubscribed", limit=100, dry_run=True, **window
    ) == {"candidates": 1}
    first = await replay(settings_of(store, devstack), "failed", event_type="lead_unsubscribed", limit=100, **window)
    assert first == {"candidates": 1, "applied": 1}
    again = await replay(settings_of(store, devstack), "failed", event_type="lead_unsubscribed", limit=100, **window)
    assert again == {"candidates": 0}  # nothing failed any more
    n = await db.fetchval(
        "select coalesce(sum(d.unsubscribed), 0) from public.client_metrics_daily d "
        "join public.workspaces w on w.id = d.workspace_id where w.bison_workspace_id = $1",
        unique_ws,
    )
    assert n == 1

"""Per-workspace webhook tokens: stored hashed, checked inside the single ingest call, scoped to one workspace."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from bisonsync.ingest import hash_token
from bisonsync.store import Store
from service.app import create_app
from tests.service.conftest import load_fixture, settings_for


async def test_workspace_token_is_scoped_to_its_workspace(store: Store, db: asyncpg.Connection, unique_ws: int) -> None:
    other_ws = unique_ws + 1
    ws_a = await db.fetchval("select public.upsert_workspace('bison.example.com', $1::bigint, 'Token A')", unique_ws)
    await db.fetchval("select public.upsert_workspace('bison.example.com', $1::bigint, 'Token B')", other_ws)
    token_a = f"tok-{unique_ws}-a"
    await db.execute("select public.set_webhook_token($1::uuid, $2)", ws_a, hash_token(token_a))
    stored = await db.fetchval(
        "select webhook_token_hash from public.workspace_credentials where workspace_id = $1", ws_a
    )
    assert stored == hash_token(token_a) and token_a not in stored  # only the hash is kept

    app = create_app(settings_for(webhook_token=None), store=store)  # no global token: per-workspace only
    async with AsyncTestClient(app=app) as client:

        async def send(doc: dict[str, Any], token: str) -> Any:
            return await client.post("/webhooks/bison", content=json.dumps(doc), params={"token": token})

        ok = await send(load_fixture("email_sent", unique_ws), token_a)
        assert ok.status_code == 200 and ok.json()["status"] == "applied"
        wrong = await send(load_fixture("lead_replied", unique_ws), "tok-guess")
        assert wrong.status_code == 401
        cross = await send(load_fixture("email_sent", other_ws), token_a)  # A's token for B's events
        assert cross.status_code == 401
        unknown = await send(load_fixture("email_sent", unique_ws + 2), token_a)  # not a registered workspace
        assert unknown.status_code == 401
    counts = await db.fetch(
        "select w.bison_workspace_id, coalesce(sum(d.emails_sent + d.replies), 0) as n from public.workspaces w "
        "left join public.client_metrics_daily d on d.workspace_id = w.id "
        "where w.instance = 'bison.example.com' and w.bison_workspace_id = any($1::bigint[]) group by 1",
        [unique_ws, other_ws, unique_ws + 2],
    )
    assert {r["bison_workspace_id"]: r["n"] for r in counts} == {unique_ws: 1, other_ws: 0}

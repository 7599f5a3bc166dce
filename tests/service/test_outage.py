"""A database that goes away mid-test: every delivery is answered 503 with nothing applied, and Email Bison's
retries complete the counts once it is back. Runs on a disposable stack of its own (it stops PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from tests.conftest import StackHandle, private_stack
from tests.service.conftest import TOKEN, load_fixture, make_store, settings_for


@pytest.fixture(scope="module")
def own_stack() -> Iterator[StackHandle]:
    with private_stack() as stack:
        yield StackHandle(env=stack.env(), stack=stack)


async def emails_sent(database_url: str, bison_ws: int) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval(
                "select coalesce(sum(d.emails_sent), 0) from public.client_metrics_daily d "
                "join public.workspaces w on w.id = d.workspace_id where w.bison_workspace_id = $1",
                bison_ws,
            )
        )
    finally:
        await conn.close()


@pytest.mark.parametrize("kind", ["postgres", "supabase"])
async def test_database_stopped_mid_test(own_stack: StackHandle, unique_ws: int, kind: str) -> None:
    assert own_stack.stack is not None
    cluster = own_stack.stack.cluster
    docs: list[dict[str, Any]] = []
    for i in range(6):
        doc = load_fixture("email_sent", unique_ws)
        doc["data"]["scheduled_email"]["id"] = 1000 + i  # one send per scheduled email
        docs.append(doc)
    app = create_app(settings_for(), store=make_store(kind, own_stack))
    async with AsyncTestClient(app=app) as client:

        async def send(doc: dict[str, Any]) -> int:
            r = await client.post("/webhooks/bison", content=json.dumps(doc), params={"token": TOKEN})
            return r.status_code

        assert [await send(d) for d in docs[:3]] == [200, 200, 200]
        await asyncio.to_thread(cluster.stop)
        try:
            during = [await send(d) for d in docs]
            assert during == [503] * 6, during
            assert (await client.get("/readyz")).status_code == 503
        finally:
            await asyncio.to_thread(cluster.start)
        assert await emails_sent(own_stack.env.database_url, unique_ws) == 3
        # Email Bison retries everything it got a 503 for; the first three come back as duplicates
        retried: list[int] = []
        for d in docs:
            for _ in range(60):  # the pool and gateway reconnect on their own
                code = await send(d)
                if code != 503:
                    break
                await asyncio.sleep(0.25)
            retried.append(code)
        assert retried == [200] * 6
        assert (await client.get("/readyz")).status_code == 200
    assert await emails_sent(own_stack.env.database_url, unique_ws) == 6

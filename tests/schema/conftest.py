"""Fixtures for the schema tests: a JSON-aware connection, a pool for concurrency, workspace factory."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.schema.support import TEST_INSTANCE, WorkspaceFactory, use_json


@pytest.fixture
async def conn(db: asyncpg.Connection) -> asyncpg.Connection:
    """The `db` connection (as postgres, the migration owner) with json/jsonb as Python objects."""
    await use_json(db)
    return db


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(database_url, min_size=0, max_size=50, init=use_json)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def make_workspace(conn: asyncpg.Connection, unique_ws: int) -> WorkspaceFactory:
    """Create workspaces with bison ids no other test uses: unique_ws, unique_ws + 1, ..."""
    counter = iter(range(1_000))

    async def make(
        timezone: str = "America/Chicago", name: str | None = None, instance: str = TEST_INSTANCE
    ) -> uuid.UUID:
        bison_id = unique_ws + next(counter)
        ws: uuid.UUID = await conn.fetchval(
            "select public.upsert_workspace($1, $2, $3, $4)",
            instance,
            bison_id,
            name or f"Schema Test {bison_id}",
            timezone,
        )
        return ws

    return make

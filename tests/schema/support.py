"""Helpers for the schema tests: JSON codecs, acting as an API role, users, workspaces, deliveries."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

TEST_INSTANCE = "schema-tests.bison.local"


async def use_json(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


@asynccontextmanager
async def acting_as(conn: asyncpg.Connection, role: str, sub: str | None = None) -> AsyncIterator[None]:
    """One transaction as PostgREST runs a request: `role` and `request.jwt.claims` set locally, rolled back."""
    claims: dict[str, str] = {"role": role}
    if sub is not None:
        claims["sub"] = sub
    tr = conn.transaction()
    await tr.start()
    try:
        await conn.execute(
            "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
            role,
            json.dumps(claims),
        )
        yield
    finally:
        await tr.rollback()


async def create_user(conn: asyncpg.Connection) -> str:
    """A row in auth.users (owned by supabase_auth_admin; service_role may write it, postgres may not)."""
    user_id = str(uuid.uuid4())
    async with conn.transaction():
        await conn.execute("set local role service_role")
        await conn.execute(
            "insert into auth.users (id, email, role, aud) values ($1, $2, 'authenticated', 'authenticated')",
            uuid.UUID(user_id),
            f"{user_id}@example.com",
        )
    return user_id


async def add_member(conn: asyncpg.Connection, user_id: str, workspace_id: uuid.UUID) -> None:
    await conn.execute(
        "insert into public.workspace_members (user_id, workspace_id) values ($1, $2)",
        uuid.UUID(user_id),
        workspace_id,
    )


WorkspaceFactory = Callable[..., Awaitable[uuid.UUID]]


def envelope(event_type: str, bison_ws: int, data: dict[str, Any], name: str = "Client A") -> dict[str, Any]:
    return {
        "event": {
            "type": event_type,
            "name": event_type.replace("_", " ").title(),
            "instance_url": f"https://{TEST_INSTANCE}",
            "workspace_id": bison_ws,
            "workspace_name": name,
        },
        "data": data,
    }


async def ingest(
    conn: asyncpg.Connection | asyncpg.Pool,
    key: str,
    bison_ws: int,
    event_type: str,
    data: dict[str, Any],
    *,
    name: str = "Client A",
    received_at: Any = None,
) -> dict[str, Any]:
    result: dict[str, Any] = await conn.fetchval(
        "select public.ingest_delivery($1, $2, $3, $4, $5, $6, coalesce($7::timestamptz, now()))",
        key,
        TEST_INSTANCE,
        bison_ws,
        name,
        event_type,
        envelope(event_type, bison_ws, data, name),
        received_at,
    )
    return result


async def workspace_id(conn: asyncpg.Connection, bison_ws: int) -> uuid.UUID:
    ws: uuid.UUID = await conn.fetchval(
        "select id from public.workspaces where instance = $1 and bison_workspace_id = $2", TEST_INSTANCE, bison_ws
    )
    return ws

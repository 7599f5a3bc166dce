"""Tenants: keyed by (instance, bison id), names trimmed and renames kept, time zones validated, token lookup."""

from __future__ import annotations

import hashlib

import asyncpg
import pytest

from tests.schema.support import TEST_INSTANCE


async def test_upsert_trims_and_tracks_renames(conn: asyncpg.Connection, unique_ws: int) -> None:
    ws = await conn.fetchval("select public.upsert_workspace($1, $2, ' Client A \t')", TEST_INSTANCE, unique_ws)
    assert await conn.fetchval("select public.upsert_workspace($1, $2, 'Client A ')", TEST_INSTANCE, unique_ws) == ws
    assert await conn.fetchval("select public.upsert_workspace($1, $2, 'Client A2')", TEST_INSTANCE, unique_ws) == ws
    row = await conn.fetchrow("select name, timezone, active from public.workspaces where id = $1", ws)
    assert row is not None and tuple(row) == ("Client A2", "America/Chicago", True)
    history = await conn.fetch("select name from public.workspace_name_history where workspace_id = $1", ws)
    assert [r["name"] for r in history] == ["Client A"]
    # the same bison id on another instance is another tenant
    other = await conn.fetchval("select public.upsert_workspace('other.bison.local', $1, 'Client A')", unique_ws)
    assert other != ws


async def test_names_must_be_trimmed_and_zones_real(conn: asyncpg.Connection, unique_ws: int) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute(
            "insert into public.workspaces (instance, bison_workspace_id, name) values ($1, $2, 'Padded ')",
            TEST_INSTANCE,
            unique_ws,
        )
    with pytest.raises(asyncpg.PostgresError) as exc:
        await conn.execute("select public.upsert_workspace($1, $2, 'Z', 'Mars/Olympus')", TEST_INSTANCE, unique_ws)
    assert exc.value.sqlstate == "22023"
    ws = await conn.fetchval("select public.upsert_workspace($1, $2, 'Z', 'Europe/London')", TEST_INSTANCE, unique_ws)
    with pytest.raises(asyncpg.PostgresError) as exc:
        await conn.execute("update public.workspaces set timezone = 'CST' where id = $1", ws)
    assert exc.value.sqlstate == "22023"


async def test_webhook_token_resolution(conn: asyncpg.Connection, unique_ws: int) -> None:
    ws = await conn.fetchval("select public.upsert_workspace($1, $2, 'Tokened')", TEST_INSTANCE, unique_ws)
    token_hash = hashlib.sha256(f"token-{unique_ws}".encode()).hexdigest()
    await conn.execute("select public.set_webhook_token($1, $2)", ws, token_hash.upper())
    row = await conn.fetchrow("select * from public.resolve_webhook_token($1)", token_hash)
    assert row is not None and tuple(row) == (ws, TEST_INSTANCE, unique_ws)
    assert await conn.fetchrow("select * from public.resolve_webhook_token($1)", "0" * 64) is None
    with pytest.raises(asyncpg.PostgresError) as exc:
        await conn.execute("select public.set_webhook_token($1, 'plain-token-not-a-hash')", ws)
    assert exc.value.sqlstate == "22023"
    with pytest.raises(asyncpg.CheckViolationError):  # a key pasted where a reference belongs
        await conn.execute(
            "update public.workspace_credentials set bison_api_key_ref = '12|abcdefghijklmnop' where workspace_id = $1",
            ws,
        )
    await conn.execute("select public.set_webhook_token($1, null)", ws)
    assert await conn.fetchrow("select * from public.resolve_webhook_token($1)", token_hash) is None


async def test_clean_label_keeps_letters_and_trims_whitespace(conn: asyncpg.Connection) -> None:
    # regression: E'\v' is not an escape in PostgreSQL, so a trim set holding it stripped the letter v
    assert await conn.fetchval("select public.clean_label($1)", "  Ref Without Env \t") == "Ref Without Env"
    assert await conn.fetchval("select public.clean_label($1)", "vivid.dev\x0b") == "vivid.dev"
    assert await conn.fetchval("select public.clean_label($1)", " \u00a0 ") is None

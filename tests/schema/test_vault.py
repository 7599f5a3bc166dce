"""Supabase Vault objects (devstack bootstrap) and the workspace-key functions: encrypted at rest, service_role only,
idempotent storage, and no key readable by anon or authenticated anywhere."""

from __future__ import annotations

import secrets
import uuid

import asyncpg
import pytest

from tests.conftest import StackHandle
from tests.schema.support import TEST_INSTANCE, WorkspaceFactory, acting_as, create_user

pytestmark = pytest.mark.asyncio


@pytest.fixture
def devstack_vault(devstack: StackHandle) -> None:
    """The devstack's own Vault internals (root key file, `_decrypt`); hosted Supabase uses pgsodium instead."""
    if devstack.stack is None:
        pytest.skip("checks the devstack's Vault implementation")


def fake_key() -> str:
    return f"{secrets.randbelow(10_000)}|{secrets.token_urlsafe(30)}"


async def by_workspace(conn: asyncpg.Connection, function: str) -> dict[uuid.UUID, asyncpg.Record]:
    rows = await conn.fetch(f"select * from public.{function}($1)", TEST_INSTANCE)
    return {r["workspace_id"]: r for r in rows}


async def test_create_secret_encrypts_at_rest_and_decrypts_for_service_role(conn: asyncpg.Connection) -> None:
    plain = fake_key()
    async with acting_as(conn, "service_role"):
        sid = await conn.fetchval("select vault.create_secret($1, $2)", plain, f"t/{uuid.uuid4()}")
        stored = await conn.fetchval("select secret from vault.secrets where id = $1", sid)
        assert plain not in stored and plain.split("|")[1] not in stored
        assert await conn.fetchval("select decrypted_secret from vault.decrypted_secrets where id = $1", sid) == plain
        newer = fake_key()
        await conn.execute("select vault.update_secret($1, $2)", sid, newer)
        assert await conn.fetchval("select decrypted_secret from vault.decrypted_secrets where id = $1", sid) == newer


async def test_ciphertext_is_bound_to_its_row(conn: asyncpg.Connection, devstack_vault: None) -> None:
    plain = fake_key()
    async with acting_as(conn, "service_role"):
        a = await conn.fetchval("select vault.create_secret($1)", plain)
        b = await conn.fetchval("select vault.create_secret($1)", fake_key())
        ciphertext = await conn.fetchval("select secret from vault.secrets where id = $1", a)
        assert await conn.fetchval("select vault._decrypt($1, $2)", a, ciphertext) == plain
        assert await conn.fetchval("select vault._decrypt($1, $2)", b, ciphertext) is None
        # nobody but the owner may rewrite ciphertexts (as on Supabase: select and delete only)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("update vault.secrets set secret = $1 where id = $2", ciphertext, b)


async def test_root_key_is_not_in_any_table_and_not_callable(conn: asyncpg.Connection, devstack_vault: None) -> None:
    for role in ("anon", "authenticated", "service_role", "postgres"):
        async with acting_as(conn, role):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval("select vault._root_key()")
    cols = await conn.fetch(
        "select table_name, column_name from information_schema.columns where table_schema = 'vault'"
    )
    assert {r["column_name"] for r in cols if r["table_name"] == "secrets"} == {
        "id",
        "name",
        "description",
        "secret",
        "key_id",
        "nonce",
        "created_at",
        "updated_at",
    }


@pytest.mark.parametrize("role", ["anon", "authenticated"])
async def test_api_roles_cannot_touch_vault(conn: asyncpg.Connection, role: str, devstack_vault: None) -> None:
    user = await create_user(conn) if role == "authenticated" else None
    for sql in (
        "select * from vault.secrets",
        "select * from vault.decrypted_secrets",
        "select vault.create_secret('x')",
        f"select vault.update_secret('{uuid.uuid4()}', 'x')",
        "select vault._decrypt(gen_random_uuid(), 'x')",
    ):
        async with acting_as(conn, role, user):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(sql)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
async def test_api_roles_cannot_call_the_key_functions(conn: asyncpg.Connection, role: str) -> None:
    for sql in (
        f"select * from public.store_workspace_api_key('{uuid.uuid4()}', 'k', null, false)",
        f"select * from public.workspace_api_keys('{TEST_INSTANCE}')",
        f"select * from public.workspace_api_key_status('{TEST_INSTANCE}')",
        f"select public.mark_workspace_api_key('{uuid.uuid4()}', false, 'x')",
        "select * from public.workspace_credentials",
    ):
        async with acting_as(conn, role):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(sql)


async def test_store_is_idempotent_and_replace_returns_the_old_token(
    conn: asyncpg.Connection, make_workspace: WorkspaceFactory
) -> None:
    ws = await make_workspace()
    first, second, third = fake_key(), fake_key(), fake_key()
    async with acting_as(conn, "service_role"):
        r1 = await conn.fetchrow("select * from public.store_workspace_api_key($1, $2, '11', false)", ws, first)
        assert r1 is not None and r1["stored"] and r1["previous_token_id"] is None
        r2 = await conn.fetchrow("select * from public.store_workspace_api_key($1, $2, '12', false)", ws, second)
        assert r2 is not None and not r2["stored"] and r2["secret_id"] == r1["secret_id"]
        keys = await by_workspace(conn, "workspace_api_keys")
        assert keys[ws]["token"] == first and keys[ws]["token_id"] == "11"
        r3 = await conn.fetchrow("select * from public.store_workspace_api_key($1, $2, '13', true)", ws, third)
        assert r3 is not None and r3["stored"] and r3["previous_token_id"] == "11"
        assert r3["secret_id"] == r1["secret_id"]  # one vault secret per workspace, updated in place
        keys = await by_workspace(conn, "workspace_api_keys")
        assert keys[ws]["token"] == third
        # a failed key is replaced even without p_replace
        await conn.execute("select public.mark_workspace_api_key($1, false, 'HTTP 401')", ws)
        status = await by_workspace(conn, "workspace_api_key_status")
        assert status[ws]["has_key"] and status[ws]["failed_at"] is not None and status[ws]["error"] == "HTTP 401"
        r4 = await conn.fetchrow("select * from public.store_workspace_api_key($1, $2, '14', false)", ws, first)
        assert r4 is not None and r4["stored"] and r4["previous_token_id"] == "13"
        status = await by_workspace(conn, "workspace_api_key_status")
        assert status[ws]["failed_at"] is None
        assert "token" not in status[ws]  # the status never carries the key


async def test_bad_input_is_refused(conn: asyncpg.Connection, make_workspace: WorkspaceFactory) -> None:
    ws = await make_workspace()
    async with acting_as(conn, "service_role"):
        with pytest.raises(asyncpg.InvalidParameterValueError):
            await conn.fetch("select * from public.store_workspace_api_key($1, ' spaced ', null, false)", ws)
    async with acting_as(conn, "service_role"):
        with pytest.raises(asyncpg.InvalidParameterValueError):
            await conn.fetch("select * from public.store_workspace_api_key($1, 'k', 'bad id!', false)", ws)
    async with acting_as(conn, "service_role"):
        with pytest.raises(asyncpg.exceptions.NoDataFoundError):
            await conn.fetch("select * from public.store_workspace_api_key($1, 'k', null, false)", uuid.uuid4())


async def test_no_api_readable_table_holds_a_stored_key(
    conn: asyncpg.Connection, make_workspace: WorkspaceFactory
) -> None:
    ws = await make_workspace()
    key = fake_key()
    async with acting_as(conn, "service_role"):
        await conn.fetch("select * from public.store_workspace_api_key($1, $2, null, true)", ws, key)
    secret_part = key.split("|")[1]
    for role in ("anon", "authenticated"):
        tables = await conn.fetch(
            "select table_schema, table_name from information_schema.role_table_grants "
            "where grantee = $1 and privilege_type = 'SELECT' "
            "and table_schema not in ('pg_catalog', 'information_schema')",
            role,
        )
        for t in tables:
            async with acting_as(conn, "service_role"):  # what the role could see at most (RLS aside)
                text = await conn.fetchval(
                    f"select coalesce(string_agg(x::text, ''), '') from \"{t['table_schema']}\".\"{t['table_name']}\" x"
                )
            assert secret_part not in text, f"{role} can read {t['table_schema']}.{t['table_name']}"

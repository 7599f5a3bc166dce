"""The devstack's database: bootstrapped like Supabase, migrations recorded where the Supabase CLI looks."""

from __future__ import annotations

import asyncpg

from bisonsync import migrations as migrate
from devstack.stack import PROJECT_ROOT


async def test_roles_match_supabase(db: asyncpg.Connection) -> None:
    rows = await db.fetch(
        "select rolname, rolsuper, rolbypassrls, rolcanlogin from pg_roles "
        "where rolname in ('postgres','anon','authenticated','service_role','authenticator','supabase_admin')"
    )
    roles = {r["rolname"]: r for r in rows}
    assert set(roles) == {"postgres", "anon", "authenticated", "service_role", "authenticator", "supabase_admin"}
    assert roles["supabase_admin"]["rolsuper"]
    assert not roles["postgres"]["rolsuper"], "migrations must run as a non-superuser postgres, as on Supabase"
    assert roles["service_role"]["rolbypassrls"]
    assert not roles["anon"]["rolcanlogin"]
    assert roles["authenticator"]["rolcanlogin"]


async def test_logical_decoding_and_publication(db: asyncpg.Connection) -> None:
    assert await db.fetchval("show wal_level") == "logical"
    assert await db.fetchval("select count(*) from pg_publication where pubname = 'supabase_realtime'") == 1


async def test_auth_helpers_read_jwt_claims(db: asyncpg.Connection) -> None:
    async with db.transaction():
        await db.execute(
            "select set_config('request.jwt.claims', "
            '\'{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}\', true)'
        )
        assert str(await db.fetchval("select auth.uid()")) == "11111111-1111-1111-1111-111111111111"
        assert await db.fetchval("select auth.role()") == "authenticated"
        assert (await db.fetchval("select auth.jwt() ->> 'role'")) == "authenticated"


async def test_every_migration_recorded_like_the_cli(db: asyncpg.Connection) -> None:
    rows = await db.fetch("select version, name, statements from supabase_migrations.schema_migrations")
    on_disk = migrate.discover(PROJECT_ROOT / "supabase" / "migrations")
    assert [(r["version"], r["name"]) for r in sorted(rows, key=lambda r: r["version"])] == [
        (m.version, m.name) for m in on_disk
    ]
    assert all(r["statements"] for r in rows)


def test_split_statements_honours_quotes_and_dollar_bodies() -> None:
    sql = """
    -- a comment; with a semicolon
    create table t (a text default 'x;y');
    create function f() returns int language plpgsql as $body$ begin return 1; end $body$;
    /* block; comment */ select 1
    """
    stmts = migrate.split_statements(sql)
    assert len(stmts) == 3
    assert stmts[1].startswith("create function f()") and stmts[1].endswith("$body$")
    assert stmts[2].endswith("select 1")

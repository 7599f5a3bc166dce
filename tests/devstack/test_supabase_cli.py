"""The real Supabase CLI (npm `supabase`, pinned in tests/cli/package.json) applies our migrations to a fresh,
bootstrapped database, and the result matches the devstack's schema; both tools agree on what was applied."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from bisonsync import migrations as migrate
from devstack.cluster import SUPERUSER
from devstack.stack import PROJECT_ROOT, bootstrap_sql
from tests.conftest import StackHandle

CLI_DIR = PROJECT_ROOT / "tests" / "cli"

SCHEMA_QUERY = """
select 'table' as kind,
       c.relname || ':' || c.relkind::text || ':rls=' || c.relrowsecurity || ':ri=' || c.relreplident::text as name
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and c.relkind in ('r', 'v', 'm', 'p')
union all
select 'column', c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod) || ':' || a.attnotnull
  from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and c.relkind in ('r', 'v') and a.attnum > 0 and not a.attisdropped
union all
select 'function', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' || ':' || p.prosecdef
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public'
union all
select 'policy', tablename || ':' || policyname || ':' || cmd || ':' || array_to_string(roles, ',') from pg_policies
 where schemaname = 'public'
union all
select 'publication', schemaname || '.' || tablename from pg_publication_tables where pubname = 'supabase_realtime'
union all
select 'grant', table_name || ':' || grantee || ':' || privilege_type from information_schema.role_table_grants
 where table_schema = 'public' and grantee in ('anon', 'authenticated', 'service_role')
union all
select 'execute', routine_name || ':' || grantee from information_schema.role_routine_grants
 where routine_schema = 'public' and grantee in ('anon', 'authenticated', 'service_role')
"""


@pytest.fixture(scope="session")
def supabase_cli() -> Path:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("node/npm not installed: cannot install the Supabase CLI from npm")
    binary = CLI_DIR / "node_modules" / ".bin" / "supabase"
    if not binary.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=CLI_DIR, check=True, timeout=600)
    return binary


@pytest.fixture
def fresh_database(devstack: StackHandle) -> Iterator[str]:
    """A new database in the devstack cluster with only the Supabase bootstrap applied."""
    if devstack.stack is None:
        pytest.skip("needs the local devstack (creates databases as the bootstrap superuser)")
    cluster = devstack.stack.cluster
    name = f"cli_check_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str, database: str = "postgres") -> None:
        conn = await asyncpg.connect(cluster.dsn(SUPERUSER, database))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    import asyncio

    asyncio.run(admin(f'create database "{name}"'))
    asyncio.run(admin(bootstrap_sql(), name))
    try:
        yield cluster.dsn("postgres", name)
    finally:
        asyncio.run(admin(f'drop database if exists "{name}" with (force)'))


def _run(cli: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(cli), *args, "--workdir", str(PROJECT_ROOT)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"supabase {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


async def _schema(url: str) -> set[tuple[str, str]]:
    conn = await asyncpg.connect(url)
    try:
        return {(r["kind"], r["name"]) for r in await conn.fetch(SCHEMA_QUERY)}
    finally:
        await conn.close()


async def test_cli_migration_up_matches_devstack(supabase_cli: Path, fresh_database: str, database_url: str) -> None:
    proc = _run(supabase_cli, "migration", "up", "--db-url", fresh_database + "?sslmode=disable")
    assert "up to date" in (proc.stdout + proc.stderr).lower()
    cli_schema = await _schema(fresh_database)
    dev_schema = await _schema(database_url)
    assert cli_schema == dev_schema, {
        "only via CLI": sorted(cli_schema - dev_schema)[:20],
        "only in devstack": sorted(dev_schema - cli_schema)[:20],
    }
    conn = await asyncpg.connect(fresh_database)
    try:
        versions = {r["version"] for r in await conn.fetch("select version from supabase_migrations.schema_migrations")}
    finally:
        await conn.close()
    assert versions == {m.version for m in migrate.discover(PROJECT_ROOT / "supabase" / "migrations")}


def test_cli_sees_devstack_migrations_as_applied(supabase_cli: Path, database_url: str) -> None:
    proc = _run(supabase_cli, "migration", "list", "--db-url", database_url + "?sslmode=disable")
    out = proc.stdout
    for mig in migrate.discover(PROJECT_ROOT / "supabase" / "migrations"):
        # each row is "   local | remote | time"; applied migrations show the version in both columns
        row = next((line for line in out.splitlines() if line.strip(" `").startswith(mig.version)), None)
        assert row is not None and row.count(mig.version) >= 2, f"{mig.version} not applied per the CLI:\n{out}"

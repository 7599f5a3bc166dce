"""`bisonsync.migrations.apply` on fresh Supabase-shaped databases: everything applied and recorded as the Supabase
CLI records it, with a checksum; a second run changes nothing; edited applied migrations are refused."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from bisonsync import migrations
from bisonsync.migrations import MigrationEdited, MigrationError, apply, split_statements, status
from bisonsync.settings import Settings
from bisonsync.store import PostgresStore
from service.app import create_app

HISTORY = "select version, name, statements from supabase_migrations.schema_migrations order by version"
CHECKSUMS = (
    "select version, name, checksum, source, recorded_at from supabase_migrations.bisonsync_checksums order by version"
)


async def _fetch(dsn: str, sql: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [dict(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


def _copy_migrations(dest: Path, count: int | None = None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for mig in migrations.bundled()[:count]:
        shutil.copy(mig.path, dest / mig.filename)
    return dest


async def test_fresh_database_gets_every_migration_recorded_like_the_cli(empty_database: str) -> None:
    bundled = migrations.bundled()
    applied = await apply(empty_database)
    assert [m.version for m in applied] == [m.version for m in bundled]

    history = await _fetch(empty_database, HISTORY)
    assert [(r["version"], r["name"]) for r in history] == [(m.version, m.name) for m in bundled]
    for row, mig in zip(history, bundled, strict=True):
        assert row["statements"] == split_statements(mig.path.read_text()), mig.filename
    columns = await _fetch(
        empty_database,
        "select column_name, data_type from information_schema.columns where table_schema = 'supabase_migrations' "
        "and table_name = 'schema_migrations' order by ordinal_position",
    )
    assert [(c["column_name"], c["data_type"]) for c in columns] == [
        ("version", "text"),
        ("statements", "ARRAY"),
        ("name", "text"),
    ]
    sums = await _fetch(empty_database, CHECKSUMS)
    assert [(r["version"], r["checksum"], r["source"]) for r in sums] == [
        (m.version, m.checksum, "applied") for m in bundled
    ]

    # a second run changes nothing
    assert await apply(empty_database) == []
    assert await _fetch(empty_database, HISTORY) == history
    assert await _fetch(empty_database, CHECKSUMS) == sums
    st = await status(empty_database)
    assert st.up_to_date and not st.pending and not st.edited and not st.unknown


async def test_concurrent_migrators_apply_each_migration_once(empty_database: str) -> None:
    first, second = await asyncio.gather(apply(empty_database), apply(empty_database))
    assert sorted(len(r) for r in (first, second)) == [0, len(migrations.bundled())]


async def test_edited_applied_migration_is_refused_and_nothing_applied(empty_database: str, tmp_path: Path) -> None:
    directory = _copy_migrations(tmp_path / "migrations")
    await apply(empty_database, directory)
    target = next(directory.glob("20261129000200_*.sql"))
    original = target.read_text()
    target.write_text(
        original.replace(
            "create table public.client_metrics_daily (", "create table public.client_metrics_daily ( -- edited", 1
        )
    )
    (directory / "20991231000000_later.sql").write_text("create table public.later_one (id int);")

    with pytest.raises(MigrationEdited) as refused:
        await apply(empty_database, directory)
    message = str(refused.value)
    assert "20261129000200_kpis_and_leads.sql" in message and "NEW migration" in message
    assert [m.version for m in refused.value.mismatches] == ["20261129000200"]
    assert not await _fetch(empty_database, "select 1 from pg_tables where tablename = 'later_one'")

    st = await status(empty_database, directory)
    assert [m.version for m in st.edited] == ["20261129000200"]
    assert [m.version for m in st.pending] == ["20991231000000"]
    assert not st.up_to_date

    target.write_text(original)  # restored: the new migration goes through
    assert [m.version for m in await apply(empty_database, directory)] == ["20991231000000"]


async def test_cli_recorded_migrations_are_adopted_by_their_statements(empty_database: str) -> None:
    await apply(empty_database)
    conn = await asyncpg.connect(empty_database)
    try:
        # as the Supabase CLI leaves a database: history rows, no checksums of ours
        await conn.execute("drop table supabase_migrations.bisonsync_checksums")
        # ... and one migration recorded with a statement that differs from the bundled file
        await conn.execute(
            "update supabase_migrations.schema_migrations set statements = statements || '{select 1}'::text[] "
            "where version = '20261129000300'"
        )
    finally:
        await conn.close()
    with pytest.raises(MigrationEdited, match=r"20261129000300_mailboxes\.sql"):
        await apply(empty_database)

    conn = await asyncpg.connect(empty_database)
    try:
        mig = next(m for m in migrations.bundled() if m.version == "20261129000300")
        await conn.execute(
            "update supabase_migrations.schema_migrations set statements = $1 where version = $2",
            mig.statements,
            mig.version,
        )
        # an old CLI recorded no statements: nothing to compare, adopted as unverified
        await conn.execute(
            "update supabase_migrations.schema_migrations set statements = null where version = '20261129000500'"
        )
    finally:
        await conn.close()
    assert await apply(empty_database) == []
    sources = {r["version"]: r["source"] for r in await _fetch(empty_database, CHECKSUMS)}
    assert sources.pop("20261129000500") == "unverified"
    assert set(sources.values()) == {"adopted"}


async def test_revision_fixed_forward_is_accepted(empty_database: str, tmp_path: Path) -> None:
    """A database that applied the in-place edit of 20261129000100 (before the history fix) is accepted: the edit
    is carried by 20261205000001, which is applied on top."""
    directory = _copy_migrations(tmp_path / "migrations", count=1)
    tenants = next(directory.glob("20261129000100_*.sql"))
    tenants.write_text(tenants.read_text().replace(r"E' \t\n\r\f\v\u00a0'", r"E' \t\n\r\f\x0b\u00a0'"))
    await apply(empty_database, directory)
    conn = await asyncpg.connect(empty_database)
    try:
        await conn.execute("drop table supabase_migrations.bisonsync_checksums")  # as the CLI would have left it
    finally:
        await conn.close()
    applied = await apply(empty_database)
    assert "20261129000100" not in [m.version for m in applied]
    assert "20261205000001" in [m.version for m in applied]
    sources = {r["version"]: r["source"] for r in await _fetch(empty_database, CHECKSUMS)}
    assert sources["20261129000100"] == "superseded"
    assert await apply(empty_database) == []
    label = await _fetch(empty_database, "select public.clean_label(E' vivid\\x0b ') as v")
    assert label == [{"v": "vivid"}]


async def test_failing_statement_names_file_and_rolls_that_file_back(empty_database: str, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "20990101000000_ok.sql").write_text("create table public.ok_one (id int);")
    (directory / "20990101000001_bad.sql").write_text(
        "create table public.half_done (id int);\nselect * from no_such_table;\n"
    )
    with pytest.raises(MigrationError, match=r"20990101000001_bad\.sql failed at statement 2 of 2"):
        await apply(empty_database, directory)
    history = await _fetch(empty_database, HISTORY)
    assert [r["version"] for r in history] == ["20990101000000"]
    assert not await _fetch(empty_database, "select 1 from pg_tables where tablename = 'half_done'")


async def test_readiness_reports_a_database_behind_the_bundled_schema(empty_database: str, tmp_path: Path) -> None:
    bundled = migrations.bundled()
    await apply(empty_database, _copy_migrations(tmp_path / "migrations", count=5))
    store = PostgresStore(empty_database, max_size=2)
    await store.open()
    try:
        assert await migrations.pending_in(store) == [m.version for m in bundled[5:]]
    finally:
        await store.close()

    app = create_app(Settings(jobs_enabled=False), store=PostgresStore(empty_database, max_size=2))
    async with AsyncTestClient(app=app) as client:
        behind = await client.get("/readyz")
        assert behind.status_code == 503
        assert behind.json() == {"status": "schema behind", "pending": " ".join(m.version for m in bundled[5:])}
        await apply(empty_database)
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}


async def test_readiness_check_over_postgrest(devstack: Any) -> None:
    from bisonsync.store import SupabaseStore

    store = SupabaseStore(devstack.env.supabase_url, devstack.env.service_role_key)
    await store.open()
    try:
        assert await migrations.pending_in(store) == []  # the session database is fully migrated
    finally:
        await store.close()


async def test_awkward_file_applies_and_is_recorded_as_the_cli_would(empty_database: str, tmp_path: Path) -> None:
    """Quotes, dollar bodies, BEGIN ATOMIC, nested comments, and a comment after the last `;` (the CLI records it
    as a statement of its own; it is recorded, not executed)."""
    from tests.migrations.test_split import CLI_RECORDED, HERE

    directory = tmp_path / "migrations"
    directory.mkdir()
    shutil.copy(HERE / "cli_split.sql", directory / "20990101000001_cli_split.sql")
    assert [m.version for m in await apply(empty_database, directory)] == ["20990101000001"]
    history = await _fetch(empty_database, HISTORY)
    assert history == [{"version": "20990101000001", "name": "cli_split", "statements": CLI_RECORDED}]
    assert await _fetch(empty_database, "select public.f3(1) as v") == [{"v": 3}]


async def test_history_written_by_earlier_bisonsync_is_adopted(empty_database: str) -> None:
    """Earlier bisonsync versions recorded each statement with its trailing `;` (every existing devstack and
    deployment): the same file, so adopted, not refused."""
    await apply(empty_database)
    conn = await asyncpg.connect(empty_database)
    try:
        await conn.execute("drop table supabase_migrations.bisonsync_checksums")
        await conn.execute(
            "update supabase_migrations.schema_migrations "
            "set statements = array(select s || ';' from unnest(statements) s)"
        )
    finally:
        await conn.close()
    assert not (await status(empty_database)).edited
    assert await apply(empty_database) == []
    sources = {r["source"] for r in await _fetch(empty_database, CHECKSUMS)}
    assert sources == {"adopted"}

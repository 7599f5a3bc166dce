"""Against the real Supabase CLI (npm, pinned in tests/cli): it records the statements `split_statements` predicts,
and a database it migrated is adopted by `bisonsync db migrate` without applying anything twice."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import asyncpg

from bisonsync import migrations
from tests.devstack.test_supabase_cli import supabase_cli  # noqa: F401  (fixture)
from tests.migrations.test_split import CLI_RECORDED

HERE = Path(__file__).resolve().parent


def _cli_up(cli: Path, workdir: Path, dsn: str) -> None:
    proc = subprocess.run(
        [str(cli), "migration", "up", "--db-url", dsn + "?sslmode=disable", "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


async def test_cli_records_what_split_statements_predicts(
    supabase_cli: Path,
    empty_database: str,
    tmp_path: Path,
) -> None:
    (tmp_path / "supabase" / "migrations").mkdir(parents=True)
    shutil.copy(HERE / "cli_split.sql", tmp_path / "supabase" / "migrations" / "20990101000001_cli_split.sql")
    _cli_up(supabase_cli, tmp_path, empty_database)
    conn = await asyncpg.connect(empty_database)
    try:
        recorded = await conn.fetchval("select statements from supabase_migrations.schema_migrations")
    finally:
        await conn.close()
    assert list(recorded) == CLI_RECORDED


async def test_database_migrated_by_the_cli_is_adopted(supabase_cli: Path, empty_database: str) -> None:
    root = Path(__file__).resolve().parents[2]
    _cli_up(supabase_cli, root, empty_database)
    st = await migrations.status(empty_database)
    assert not st.pending and not st.edited
    assert await migrations.apply(empty_database) == []
    conn = await asyncpg.connect(empty_database)
    try:
        sources = {r["source"] for r in await conn.fetch("select source from supabase_migrations.bisonsync_checksums")}
        count = await conn.fetchval("select count(*) from supabase_migrations.bisonsync_checksums")
    finally:
        await conn.close()
    assert sources == {"adopted"} and count == len(migrations.bundled())

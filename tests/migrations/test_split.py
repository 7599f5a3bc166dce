"""Statements are split exactly as the Supabase CLI splits them (what it records in schema_migrations), and the
repository's applied migrations are never edited."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bisonsync import migrations
from bisonsync.migrations import MigrationError, MigrationsNotFound, checksum, discover, fingerprint, split_statements

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MIGRATIONS = ROOT / "supabase" / "migrations"
CLI = str(Path(sys.executable).parent / "bisonsync")  # the console script of the running environment

# What Supabase CLI 2.117.0 recorded for tests/migrations/cli_split.sql (`supabase migration up`, then
# `select statements from supabase_migrations.schema_migrations`); tests/migrations/test_cli_parity.py re-checks
# it against the CLI when node is available.
CLI_RECORDED = [
    "-- leading comment; with a semicolon\ncreate table public.t1 (a text default 'x;y', b text default "
    "E'it''s; ok', \"we;ird\" int)",
    "create function public.f1() returns int language plpgsql as $body$ begin return 1; end $body$",
    "/* block; /* nested; */ comment */ select 1",
    "create function public.f2() returns int language sql as $$ select 2 $$",
    "create function public.f3(a int) returns int language sql\nbegin atomic\n  select a + 1;\n  select a + 2;\nend",
    "select ($x$ ; $x$)",
    "do $$ begin perform 1; end $$",
    "create view public.v1 as select (1 + (2 * 3)) as x",
    "select 'a'",
    "select $q$x$q$",
    "-- trailing comment only",
]


def test_split_matches_what_the_cli_records() -> None:
    assert split_statements((HERE / "cli_split.sql").read_text()) == CLI_RECORDED


def test_split_drops_empty_statements_and_keeps_text_verbatim() -> None:
    assert split_statements(";;\n  select 1 ;  ;\n\tselect  2\n") == ["select 1", "select  2"]
    assert split_statements("") == []


def test_checksum_depends_on_every_statement_and_their_boundaries() -> None:
    base = checksum(["select 1", "select 2"])
    assert base == checksum(["select 1", "select 2"])
    assert base != checksum(["select 1", "select 3"])
    assert base != checksum(["select 1select 2"])
    assert base != checksum(["select 1", "select 2", "-- note"])


def test_no_migrations_is_an_error_never_up_to_date(tmp_path: Path) -> None:
    with pytest.raises(MigrationsNotFound):
        migrations.bundled(tmp_path)
    (tmp_path / "README.sql").write_text("select 1;")  # not <digits>_<name>.sql: skipped, as the CLI does
    with pytest.raises(MigrationsNotFound):
        migrations.bundled(tmp_path)


def test_cli_db_migrate_without_migrations_fails_loudly(tmp_path: Path) -> None:
    proc = subprocess.run(
        [CLI, "db", "migrate", "--db-url", "postgresql://nowhere.invalid/x", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "no migration files" in proc.stderr
    assert "up to date" not in (proc.stdout + proc.stderr).lower()


def test_two_files_with_one_version_are_refused(tmp_path: Path) -> None:
    (tmp_path / "20990101000000_a.sql").write_text("select 1;")
    (tmp_path / "20990101000000_b.sql").write_text("select 2;")
    with pytest.raises(MigrationError, match="share version 20990101000000"):
        discover(tmp_path)


def test_bundled_dir_is_the_checkout_in_development() -> None:
    assert [m.version for m in migrations.bundled()] == [m.version for m in discover(MIGRATIONS)]


# -- the repository's history -------------------------------------------------------------------------------------

# Checksums of migrations that have been applied somewhere (committed and released). A migration is never edited
# once it landed: fix forward with a new file. Append new lines when a migration lands (`bisonsync db status` and
# the line printed by the failing test give the value); never change a line.
APPLIED = HERE / "applied_checksums.txt"


def _applied_checksums() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in APPLIED.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            version, digest = line.split()[:2]
            out[version] = digest
    return out


def test_landed_migrations_are_never_edited() -> None:
    on_disk = {m.version: m for m in discover(MIGRATIONS)}
    changed = [
        f"{v}: recorded {digest}, file now {on_disk[v].checksum}"
        for v, digest in _applied_checksums().items()
        if v in on_disk and on_disk[v].checksum != digest
    ]
    missing = [v for v in _applied_checksums() if v not in on_disk]
    assert not changed, f"landed migrations edited (restore them; put the change in a new migration): {changed}"
    assert not missing, f"landed migrations removed: {missing}"


# Each in-place edit made before checksums existed, and the migration that now carries it forward: the edited
# revision is accepted on databases that applied it (migrations.SUPERSEDED).
HISTORY_FIXES = {
    "20261129000100_tenants.sql": ("fd2daa5", "20261205000001"),
    "20261129000600_mailbox_sync.sql": ("9b1cc0f", "20261205000002"),
    "20261129000700_analytics_alerts.sql": ("fb87fd3", "20261205000003"),
}


@pytest.mark.parametrize("filename", sorted(HISTORY_FIXES))
def test_edited_revisions_are_restored_and_fixed_forward(filename: str) -> None:
    commit, fix = HISTORY_FIXES[filename]
    try:
        first = subprocess.run(
            ["git", "log", "--diff-filter=A", "--format=%H", "--", f"supabase/migrations/{filename}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[-1]
        original = subprocess.run(
            ["git", "show", f"{first}:supabase/migrations/{filename}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        edited = subprocess.run(
            ["git", "show", f"{commit}:supabase/migrations/{filename}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (subprocess.CalledProcessError, FileNotFoundError, IndexError):
        pytest.skip("needs the git history (a clone, not an sdist)")
    assert (MIGRATIONS / filename).read_text() == original, "the file must be as it was first applied"
    version = filename.split("_", 1)[0]
    assert migrations.SUPERSEDED[version] == {fingerprint(split_statements(edited)): fix}
    assert any(m.version == fix for m in discover(MIGRATIONS))


def test_cli_db_migrate_unreachable_database_is_a_clear_error() -> None:
    proc = subprocess.run(
        [CLI, "db", "migrate", "--db-url", "postgresql://u:p@127.0.0.1:1/x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "cannot use the database" in proc.stderr and "Traceback" not in proc.stderr

"""Apply the bundled migrations the way the Supabase CLI does, and record them where the CLI looks.

`supabase/migrations` in the source tree is the source of truth (the Supabase CLI reads it); the wheel carries a
copy under `bisonsync/migrations/sql/` (copied at build time by `setup.py`), so an installed package migrates a
database without the checkout. `bundled_dir()` finds whichever is present.

The CLI (`supabase migration up --db-url`) keeps `supabase_migrations.schema_migrations(version text primary key,
statements text[], name text)`: version is the file name's leading timestamp, name the rest without `.sql`,
statements the file split into statements. Both tools therefore agree on what has been applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

_FILE_RE = re.compile(r"^(?P<version>[0-9]+)_(?P<name>.+)\.sql$")

_HISTORY_DDL = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text not null primary key,
  statements text[],
  name text
);
"""


class MigrationsNotFound(RuntimeError):
    """No migration files where they were expected: never reported as "up to date"."""


def bundled_dir() -> Path:
    """The migrations this package was built with: `sql/` inside the installed package, else the checkout's."""
    packaged = Path(str(resources.files(__name__))) / "sql"
    if any(packaged.glob("*.sql")):
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "supabase" / "migrations"
    if any(checkout.glob("*.sql")):
        return checkout
    raise MigrationsNotFound(f"no migrations bundled with bisonsync (looked in {packaged} and {checkout})")


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()


def discover(migrations_dir: Path) -> list[Migration]:
    """Migration files in version order; names that don't match `<digits>_<name>.sql` are skipped, as the CLI does."""
    found: list[Migration] = []
    for path in sorted(Path(migrations_dir).glob("*.sql")):
        m = _FILE_RE.match(path.name)
        if m:
            found.append(Migration(m["version"], m["name"], path))
    return sorted(found, key=lambda mig: mig.version)


def split_statements(sql: str) -> list[str]:
    """Split a SQL script on top-level `;`, honouring quotes, dollar quotes and comments."""
    out: list[str] = []
    buf: list[str] = []
    i, n = 0, len(sql)
    depth = 0  # parentheses, so `;` inside e.g. a rule body stays put
    while i < n:
        ch = sql[i]
        two = sql[i : i + 2]
        if two == "--":
            j = sql.find("\n", i)
            j = n if j < 0 else j
            buf.append(sql[i:j])
            i = j
            continue
        if two == "/*":
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            buf.append(sql[i:j])
            i = j
            continue
        if ch in ("'", '"'):
            j = i + 1
            while j < n:
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:
                        j += 2
                        continue
                    break
                j += 1
            buf.append(sql[i : j + 1])
            i = j + 1
            continue
        if ch == "$":
            m = re.match(r"\$[A-Za-z_]?[A-Za-z0-9_]*\$", sql[i:])
            if m:
                tag = m.group(0)
                j = sql.find(tag, i + len(tag))
                j = n if j < 0 else j + len(tag)
                buf.append(sql[i:j])
                i = j
                continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        if ch == ";" and depth == 0:
            buf.append(";")
            stmt = "".join(buf).strip()
            if _has_code(stmt):
                out.append(stmt)
            buf = []
            i += 1
            continue
        buf.append(ch)
        i += 1
    tail = "".join(buf).strip()
    if _has_code(tail):
        out.append(tail)
    return out


def _has_code(stmt: str) -> bool:
    no_comments = re.sub(r"--[^\n]*|/\*.*?\*/", "", stmt, flags=re.S)
    return bool(no_comments.strip().strip(";").strip())


async def applied_versions(conn: asyncpg.Connection) -> set[str]:
    exists = await conn.fetchval("select to_regclass('supabase_migrations.schema_migrations') is not null")
    if not exists:
        return set()
    rows = await conn.fetch("select version from supabase_migrations.schema_migrations")
    return {r["version"] for r in rows}


async def migrate(db_url: str, migrations_dir: Path) -> list[Migration]:
    """Apply every pending migration, each in its own transaction; returns those applied now."""
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(_HISTORY_DDL)
        done = await applied_versions(conn)
        applied: list[Migration] = []
        for mig in discover(migrations_dir):
            if mig.version in done:
                continue
            sql = mig.sql
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "insert into supabase_migrations.schema_migrations(version, name, statements) "
                    "values ($1, $2, $3)",
                    mig.version,
                    mig.name,
                    split_statements(sql),
                )
            applied.append(mig)
        return applied
    finally:
        await conn.close()


async def seed(db_url: str, seed_file: Path) -> bool:
    """Run `supabase/seed.sql` (as `supabase db reset` does after the migrations); False when there is none."""
    if not seed_file.exists():
        return False
    conn = await asyncpg.connect(db_url)
    try:
        async with conn.transaction():
            await conn.execute(seed_file.read_text())
    finally:
        await conn.close()
    return True

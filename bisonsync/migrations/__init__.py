"""Apply the bundled migrations the way the Supabase CLI does, record them where the CLI looks, and refuse edits.

`supabase/migrations` in the source tree is the source of truth (the Supabase CLI reads it); the wheel carries a
copy under `bisonsync/migrations/sql/` (copied at build time by `setup.py`), so an installed package migrates a
database without the checkout. `bundled_dir()` finds whichever is present.

Public API:

- `await apply(dsn)`: apply every pending bundled migration; returns those applied now. Refuses (applies nothing)
  when an already-applied migration was edited since (`MigrationEdited`) or no migrations are found
  (`MigrationsNotFound`; never reported as "up to date").
- `await status(dsn)`: applied / pending / edited / unknown versions, read-only.
- `await pending_in(store)`: bundled versions newer than the newest applied one, through a store (the readiness
  probe: works over PostgREST too).

Recording, exactly as the CLI (`supabase migration up --db-url`) does: `supabase_migrations.schema_migrations
(version text primary key, statements text[], name text)`, version = the file name's leading digits, name = the
rest without `.sql`, statements = the file split as the CLI splits it (`split_statements`), each executed on its
own and all of a file in one transaction. Both tools therefore agree on what has been applied.

Checksums: the CLI stores no checksum, and its table is left exactly as the CLI shapes it. bisonsync keeps its own
`supabase_migrations.bisonsync_checksums(version, checksum, ...)` beside it: the SHA-256 of the migration's
statements (`checksum`). A migration applied by the CLI (or by an older bisonsync) has no checksum row: its
recorded statements are compared with the bundled file by `fingerprint` (what they execute: trailing `;` and
comment-only pieces aside, the two recorders' only differences), and adopted when they match. An applied migration whose
file now differs is refused with the version, both checksums and what to do.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from bisonsync.store.base import Store

__all__ = [
    "Migration",
    "MigrationEdited",
    "MigrationError",
    "MigrationStatus",
    "MigrationsNotFound",
    "Mismatch",
    "apply",
    "bundled",
    "bundled_dir",
    "checksum",
    "discover",
    "fingerprint",
    "migrate",
    "pending_in",
    "seed",
    "split_statements",
    "status",
]

# The CLI's pattern: leading digits, `_`, anything, `.sql`. Other files are skipped, as the CLI does.
_FILE_RE = re.compile(r"^(?P<version>[0-9]+)_(?P<name>.*)\.sql$")

# The CLI creates its table in these steps (`CreateMigrationTable`); the same, so either tool may come first.
_HISTORY_DDL = (
    "create schema if not exists supabase_migrations",
    "create table if not exists supabase_migrations.schema_migrations (version text not null primary key)",
    "alter table supabase_migrations.schema_migrations add column if not exists statements text[]",
    "alter table supabase_migrations.schema_migrations add column if not exists name text",
)

# bisonsync's own table beside the CLI's (no foreign key: the CLI truncates and deletes its rows in `migration
# repair`; a checksum row whose version is no longer recorded is ignored and replaced when the version is applied).
_CHECKSUM_DDL = """
create table if not exists supabase_migrations.bisonsync_checksums (
  version     text not null primary key,
  name        text not null,
  checksum    text not null,
  -- 'applied' by bisonsync, 'adopted' (recorded by the CLI, statements matched), 'unverified' (recorded without
  -- statements by an old CLI), 'superseded' (an earlier revision of the file, fixed forward by a later migration)
  source      text not null,
  recorded_at timestamptz not null default now()
);
comment on table supabase_migrations.bisonsync_checksums is
  'bisonsync: SHA-256 of each applied migration''s statements (as recorded in schema_migrations); an applied '
  'migration whose file changed since is refused by `bisonsync db migrate`.';
"""

# One migrator at a time per database (two replicas deploying at once): a transaction-independent advisory lock.
_LOCK_KEY = 0x6269736F6E  # "bison"

# Applied migrations that were edited in place before checksums existed. Databases migrated while the edited
# revision was on disk recorded those statements; each edit is carried forward, unchanged, by the migration named
# here, so such a database ends in the same state and is accepted. {version: {fingerprint of that revision: fix}}.
SUPERSEDED: dict[str, dict[str, str]] = {
    "20261129000100": {
        "976ead54ff0bd0d9f5869e1832e72c4b54e6703ce94d24b482fc481f909e78f3": "20261205000001",
    },
    "20261129000600": {
        "45599ba013185b5eb81e7e477e99cda6d7712070272178a2f6c7b7d053b06f35": "20261205000002",
    },
    "20261129000700": {
        "337f578013fc0bea0cbbe807927c0081280711efbbbf62ed19ea2c0185b2e3b0": "20261205000003",
    },
}


class MigrationError(RuntimeError):
    """Migrating is refused; nothing was applied."""


class MigrationsNotFound(MigrationError):
    """No migration files where they were expected: never reported as "up to date"."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    version: str
    name: str
    #: checksum of the statements the database recorded (None: recorded without statements)
    applied: str | None
    bundled: str

    def __str__(self) -> str:
        return (
            f"{self.version}_{self.name}.sql was applied with checksum {self.applied} but the bundled file now has "
            f"{self.bundled}"
        )


class MigrationEdited(MigrationError):
    """An already-applied migration's file was changed afterwards: applying around it would leave the database
    different from what the files describe."""

    def __init__(self, mismatches: Sequence[Mismatch]) -> None:
        self.mismatches = list(mismatches)
        lines = "\n".join(f"  - {m}" for m in self.mismatches)
        super().__init__(
            f"{len(self.mismatches)} applied migration(s) edited after they were applied:\n{lines}\n"
            "Applied migrations are never edited: restore each file to the content it was applied with and put "
            "the change in a NEW migration file (a later timestamp). Nothing was applied."
        )


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @cached_property
    def statements(self) -> list[str]:
        """The file split exactly as the Supabase CLI splits it (what `schema_migrations.statements` records)."""
        return split_statements(self.sql)

    @cached_property
    def checksum(self) -> str:
        return checksum(self.statements)

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint(self.statements)


@dataclass(frozen=True)
class MigrationStatus:
    #: bundled migrations, in order
    bundled: list[Migration]
    #: versions recorded in schema_migrations (bundled or not)
    applied: list[str]
    #: bundled migrations not applied yet
    pending: list[Migration] = field(default_factory=list)
    #: applied migrations whose bundled file differs from what was applied
    edited: list[Mismatch] = field(default_factory=list)
    #: applied versions this package does not bundle (the project's own migrations, or a newer bisonsync)
    unknown: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        return not self.pending and not self.edited


# -- finding the migrations -------------------------------------------------------------------------------------


def bundled_dir() -> Path:
    """The migrations this package was built with: `sql/` inside the installed package, else the checkout's."""
    packaged = Path(str(resources.files(__name__))) / "sql"
    if any(packaged.glob("*.sql")):
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "supabase" / "migrations"
    if any(checkout.glob("*.sql")):
        return checkout
    raise MigrationsNotFound(f"no migrations bundled with bisonsync (looked in {packaged} and {checkout})")


def discover(migrations_dir: Path) -> list[Migration]:
    """Migration files in version order; names that don't match `<digits>_<name>.sql` are skipped, as the CLI does.
    Two files with the same version are refused (the CLI's primary key would refuse the second one mid-way)."""
    found: list[Migration] = []
    for path in sorted(Path(migrations_dir).glob("*.sql")):
        m = _FILE_RE.match(path.name)
        if m:
            found.append(Migration(m["version"], m["name"], path))
    found.sort(key=lambda mig: mig.version)
    seen: dict[str, Migration] = {}
    for mig in found:
        if mig.version in seen:
            raise MigrationError(
                f"two migrations share version {mig.version}: {seen[mig.version].filename} and {mig.filename}"
            )
        seen[mig.version] = mig
    return found


def bundled(directory: Path | None = None) -> list[Migration]:
    """The migrations in `directory` (default: the bundled ones); raises `MigrationsNotFound` when there are none."""
    where = directory if directory is not None else bundled_dir()
    found = discover(where)
    if not found:
        raise MigrationsNotFound(f"no migration files (<digits>_<name>.sql) in {where}")
    return found


# -- splitting like the CLI -------------------------------------------------------------------------------------
#
# The CLI splits a file with a small state machine and records each piece with trailing `;` and then surrounding
# whitespace removed, dropping empty pieces (comment-only pieces are kept). The states below follow its documented
# behaviour, including where it is coarser than PostgreSQL's lexer (a `(` waits for the next `)` at its level,
# `BEGIN ATOMIC` waits for `END`), so the statements recorded here are the ones the CLI would record.


class _State:
    def step(self, text: str, start: int, end: int) -> _State | None:
        """Consume text[end - 1] (the token so far is text[start:end]); None ends the statement there."""
        raise NotImplementedError


class _Ready(_State):
    def step(self, text: str, start: int, end: int) -> _State | None:
        ch = text[end - 1]
        if ch == "$":
            return _Tag(end - 1)
        if ch in ("'", '"'):
            return _Quote(ch)
        if ch == "-":
            return _MaybeComment()
        if ch == "/":
            return _Block()
        if ch == "\\":
            return _Escape()
        if ch == ";":
            return None
        if ch == "(":
            return _Nested(self, ")")
        if ch in ("c", "C"):
            at = end - len("ATOMIC")
            if at > start and text[at:end].upper() == "ATOMIC" and text[at - 1].isspace():
                return _Nested(self, "END")
        return self


class _MaybeComment(_State):
    def step(self, text: str, start: int, end: int) -> _State | None:
        if text[end - 1] == "-":
            return _Until("\n")
        return _Ready().step(text, start, end)


class _Block(_State):
    def __init__(self) -> None:
        self.depth = 0

    def step(self, text: str, start: int, end: int) -> _State | None:
        window = text[max(start, end - 2) : end]
        if window == "/*":
            self.depth += 1
            return self
        if self.depth == 0:
            return _Ready().step(text, start, end)
        if window == "*/":
            self.depth -= 1
            if self.depth == 0:
                return _Ready()
        return self


class _Quote(_State):
    def __init__(self, delimiter: str) -> None:
        self.delimiter = delimiter
        self.closing = False

    def step(self, text: str, start: int, end: int) -> _State | None:
        ch = text[end - 1]
        if self.closing:
            if ch == self.delimiter:  # doubled quote: still inside
                self.closing = False
                return self
            return _Ready().step(text, start, end)
        if ch == self.delimiter:
            self.closing = True
        return self


class _Until(_State):
    """Inside a dollar-quoted body (or a line comment): nothing is special until the delimiter."""

    def __init__(self, delimiter: str) -> None:
        self.delimiter = delimiter

    def step(self, text: str, start: int, end: int) -> _State | None:
        if text[max(start, end - len(self.delimiter)) : end] == self.delimiter:
            return _Ready()
        return self


class _Tag(_State):
    def __init__(self, offset: int) -> None:
        self.offset = offset

    def step(self, text: str, start: int, end: int) -> _State | None:
        ch = text[end - 1]
        if ch == "$":
            return _Until(text[self.offset : end])
        if ch.isalnum() or ch == "_":
            return self
        return _Ready().step(text, start, end)


class _Escape(_State):
    def step(self, text: str, start: int, end: int) -> _State | None:
        return _Ready()


class _Nested(_State):
    """Inside `( ... )` or `BEGIN ATOMIC ... END`: `;` does not end the statement."""

    def __init__(self, inner: _State, delimiter: str) -> None:
        self.inner = inner
        self.delimiter = delimiter

    def step(self, text: str, start: int, end: int) -> _State | None:
        nxt = self.inner.step(text, start, end)
        if nxt is not None:
            self.inner = nxt
        if isinstance(self.inner, _Ready):
            window = text[max(start, end - len(self.delimiter)) : end]
            if window.upper() == self.delimiter.upper():
                return _Ready()
        return self


def _trim(token: str) -> str:
    # the CLI: trailing `;` removed, then Unicode white space (Go's unicode.IsSpace: not \x1c-\x1f)
    token = token.rstrip(";")
    lo, hi = 0, len(token)
    while lo < hi and token[lo].isspace() and token[lo] not in "\x1c\x1d\x1e\x1f":
        lo += 1
    while hi > lo and token[hi - 1].isspace() and token[hi - 1] not in "\x1c\x1d\x1e\x1f":
        hi -= 1
    return token[lo:hi]


def split_statements(sql: str) -> list[str]:
    """Split a SQL script into the statements the Supabase CLI records and executes (see above)."""
    out: list[str] = []
    state: _State = _Ready()
    start = 0
    for end in range(1, len(sql) + 1):
        nxt = state.step(sql, start, end)
        if nxt is None:
            piece = _trim(sql[start:end])
            if piece:
                out.append(piece)
            start, state = end, _Ready()
        else:
            state = nxt
    piece = _trim(sql[start:])
    if piece:
        out.append(piece)
    return out


def _comments_only(stmt: str) -> bool:
    """True when `stmt` holds nothing but comments and white space (the CLI records such a piece, e.g. a comment
    after the last `;`; executing it would be an empty query)."""
    rest = stmt
    while True:
        rest = rest.lstrip()
        if not rest:
            return True
        if rest.startswith("--"):
            cut = rest.find("\n")
            rest = "" if cut < 0 else rest[cut + 1 :]
        elif rest.startswith("/*"):
            depth, i = 0, 0
            while i < len(rest):
                if rest.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif rest.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                    if depth == 0:
                        break
                else:
                    i += 1
            rest = rest[i:]
        else:
            return False


def checksum(statements: Iterable[str]) -> str:
    """SHA-256 (hex) of a migration's statements as recorded (NUL-separated: NUL cannot occur in SQL text)."""
    h = hashlib.sha256()
    for i, stmt in enumerate(statements):
        if i:
            h.update(b"\x00")
        h.update(stmt.encode("utf-8"))
    return h.hexdigest()


def fingerprint(statements: Iterable[str]) -> str:
    """The checksum of what the statements execute: trailing `;` and comment-only pieces left out. Recorded
    statements are compared by fingerprint, so a history written by the CLI and one written by earlier bisonsync
    versions (which kept each statement's `;` and dropped comment-only pieces) both match the same file."""
    kept = (stmt.rstrip().rstrip(";").strip() for stmt in statements)
    return checksum(stmt for stmt in kept if not _comments_only(stmt))


# -- reading the database ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Applied:
    version: str
    #: fingerprint of the recorded statements; None when recorded without statements
    recorded: str | None
    #: bisonsync's checksum row, when there is one
    stored: str | None


async def _read_applied(conn: asyncpg.Connection) -> dict[str, _Applied]:
    if not await conn.fetchval("select to_regclass('supabase_migrations.schema_migrations') is not null"):
        return {}
    has_statements = await conn.fetchval(
        "select exists (select 1 from information_schema.columns where table_schema = 'supabase_migrations' "
        "and table_name = 'schema_migrations' and column_name = 'statements')"
    )
    rows = await conn.fetch(
        "select version, "
        + ("statements" if has_statements else "null::text[] as statements")
        + " from supabase_migrations.schema_migrations"
    )
    stored: dict[str, str] = {}
    if await conn.fetchval("select to_regclass('supabase_migrations.bisonsync_checksums') is not null"):
        stored = {
            r["version"]: r["checksum"]
            for r in await conn.fetch("select version, checksum from supabase_migrations.bisonsync_checksums")
        }
    return {
        r["version"]: _Applied(
            r["version"],
            None if r["statements"] is None else fingerprint(r["statements"]),
            stored.get(r["version"]),
        )
        for r in rows
    }


def _superseded(version: str, digest: str | None) -> str | None:
    return SUPERSEDED.get(version, {}).get(digest or "")


def _assess(migs: list[Migration], applied: dict[str, _Applied]) -> MigrationStatus:
    pending: list[Migration] = []
    edited: list[Mismatch] = []
    for mig in migs:
        row = applied.get(mig.version)
        if row is None:
            pending.append(mig)
            continue
        if row.stored is None and row.recorded is None:
            continue  # recorded without statements by an old CLI: nothing to compare
        if row.stored == mig.checksum or row.recorded == mig.fingerprint:
            continue
        if _superseded(mig.version, row.stored) or _superseded(mig.version, row.recorded):
            continue
        seen = row.stored if row.stored is not None else row.recorded
        edited.append(Mismatch(mig.version, mig.name, seen, mig.checksum))
    known = {m.version for m in migs}
    return MigrationStatus(
        bundled=migs,
        applied=sorted(applied),
        pending=pending,
        edited=edited,
        unknown=sorted(v for v in applied if v not in known),
    )


async def status(dsn: str, directory: Path | None = None) -> MigrationStatus:
    """What `apply` would do, without changing anything."""
    migs = bundled(directory)
    conn = await asyncpg.connect(dsn)
    try:
        return _assess(migs, await _read_applied(conn))
    finally:
        await conn.close()


async def pending_in(store: Store, directory: Path | None = None) -> list[str]:
    """Bundled versions newer than the newest version the store's database has applied (the readiness check;
    one call of `bisonsync_ping`, so it works over PostgREST as well as over a direct connection)."""
    versions = _bundled_versions() if directory is None else tuple(m.version for m in bundled(directory))
    from bisonsync.store import api

    current = (await api.ping(store)).schema_version
    return [v for v in versions if current is None or v > str(current)]


@lru_cache(maxsize=1)
def _bundled_versions() -> tuple[str, ...]:
    return tuple(m.version for m in bundled())


# -- applying ---------------------------------------------------------------------------------------------------


async def apply(
    dsn: str, directory: Path | None = None, *, on_apply: Callable[[Migration], None] | None = None
) -> list[Migration]:
    """Apply every pending migration (default: the bundled ones), each file in its own transaction, recorded as
    the Supabase CLI records it plus a checksum; returns those applied now (empty: the database was up to date).

    Raises `MigrationsNotFound` when there is nothing to apply from, `MigrationEdited` when an applied migration's
    file changed since (checked for all of them before anything is applied), `MigrationError` when a statement
    fails (that file is rolled back; the ones before it stay applied). `on_apply` is called before each file."""
    migs = bundled(directory)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("select pg_advisory_lock($1)", _LOCK_KEY)
        try:
            return await _apply_locked(conn, migs, on_apply)
        finally:
            await conn.execute("select pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()


async def _apply_locked(
    conn: asyncpg.Connection, migs: list[Migration], on_apply: Callable[[Migration], None] | None
) -> list[Migration]:
    for ddl in _HISTORY_DDL:
        await conn.execute(ddl)
    await conn.execute(_CHECKSUM_DDL)
    applied = await _read_applied(conn)
    state = _assess(migs, applied)
    if state.edited:
        raise MigrationEdited(state.edited)
    # adopt what the CLI (or an older bisonsync) applied without a checksum
    for mig in migs:
        row = applied.get(mig.version)
        if row is None or row.stored is not None:
            continue
        if row.recorded is None:
            source, digest = "unverified", mig.checksum
        elif row.recorded == mig.fingerprint:
            source, digest = "adopted", mig.checksum
        else:  # accepted by _assess: an earlier revision fixed forward
            source, digest = "superseded", row.recorded
        await _record_checksum(conn, mig, digest, source)
    done: list[Migration] = []
    for mig in state.pending:
        if on_apply is not None:
            on_apply(mig)
        statements = mig.statements
        async with conn.transaction():
            for i, stmt in enumerate(statements):
                if _comments_only(stmt):  # recorded like the CLI, nothing to run
                    continue
                try:
                    await conn.execute(stmt)
                except asyncpg.PostgresError as exc:
                    raise MigrationError(
                        f"{mig.filename} failed at statement {i + 1} of {len(statements)}: {exc}\n{stmt[:2000]}"
                    ) from exc
            await conn.execute(
                "insert into supabase_migrations.schema_migrations(version, name, statements) values ($1, $2, $3)",
                mig.version,
                mig.name,
                statements,
            )
            await _record_checksum(conn, mig, mig.checksum, "applied")
        done.append(mig)
    return done


async def _record_checksum(conn: asyncpg.Connection, mig: Migration, digest: str, source: str) -> None:
    await conn.execute(
        "insert into supabase_migrations.bisonsync_checksums(version, name, checksum, source) "
        "values ($1, $2, $3, $4) on conflict (version) do update "
        "set name = excluded.name, checksum = excluded.checksum, source = excluded.source, recorded_at = now()",
        mig.version,
        mig.name,
        digest,
        source,
    )


async def migrate(db_url: str, migrations_dir: Path | None = None) -> list[Migration]:
    """`apply` under its earlier name (the devstack and a few tests call it with their migrations directory)."""
    return await apply(db_url, migrations_dir)


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

"""`bisonsync db migrate|status|seed`: apply the bundled migrations like the Supabase CLI does."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

import asyncpg

from bisonsync import migrations


def register(sub: Any) -> None:
    db = sub.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    mig = db_sub.add_parser(
        "migrate",
        help="apply pending migrations (bundled with the package), recorded in supabase_migrations.schema_migrations "
        "as the Supabase CLI records them; refuses if an applied migration was edited since",
    )
    mig.add_argument("--db-url", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL")
    mig.add_argument("--dir", type=Path, default=None, help="migrations directory (default: the bundled migrations)")
    mig.set_defaults(handler=_migrate)
    st = db_sub.add_parser(
        "status", help="applied, pending and edited migrations (read-only); exit 1 unless up to date"
    )
    st.add_argument("--db-url", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL")
    st.add_argument("--dir", type=Path, default=None, help="migrations directory (default: the bundled migrations)")
    st.set_defaults(handler=_status)
    seed = db_sub.add_parser("seed", help="run supabase/seed.sql (demo data, from a source checkout)")
    seed.add_argument("--db-url", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL")
    seed.add_argument("--file", type=Path, default=Path("supabase") / "seed.sql", help="default: supabase/seed.sql")
    seed.set_defaults(handler=_seed)


def _announce(mig: migrations.Migration) -> None:
    print(f"Applying migration {mig.filename}...", flush=True)


def _migrate(args: argparse.Namespace) -> int:
    if not args.db_url:
        raise SystemExit("bisonsync db migrate: --db-url or DATABASE_URL is required")
    try:
        applied = asyncio.run(migrations.apply(args.db_url, args.dir, on_apply=_announce))
    except migrations.MigrationError as exc:
        raise SystemExit(f"bisonsync db migrate: {exc}") from None
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise SystemExit(f"bisonsync db migrate: cannot use the database: {exc}") from None
    if applied:
        print(f"{len(applied)} migration(s) applied.")
    else:
        print("Database is up to date.")
    return 0


def _status(args: argparse.Namespace) -> int:
    if not args.db_url:
        raise SystemExit("bisonsync db status: --db-url or DATABASE_URL is required")
    try:
        st = asyncio.run(migrations.status(args.db_url, args.dir))
    except migrations.MigrationError as exc:
        raise SystemExit(f"bisonsync db status: {exc}") from None
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise SystemExit(f"bisonsync db status: cannot use the database: {exc}") from None
    edited = {m.version for m in st.edited}
    pending = {m.version for m in st.pending}
    for mig in st.bundled:
        mark = "EDITED" if mig.version in edited else "pending" if mig.version in pending else "applied"
        print(f"{mark:8} {mig.filename}")
    for version in st.unknown:
        print(f"{'other':8} {version} (applied, not bundled with this bisonsync)")
    for mm in st.edited:
        print(f"edited: {mm}")
    if st.up_to_date:
        print("Database is up to date.")
        return 0
    print(f"{len(st.pending)} pending, {len(st.edited)} edited.")
    return 1


def _seed(args: argparse.Namespace) -> int:
    if not args.db_url:
        raise SystemExit("bisonsync db seed: --db-url or DATABASE_URL is required")
    ran = asyncio.run(migrations.seed(args.db_url, args.file))
    print("seeded" if ran else f"no seed file at {args.file}")
    return 0

"""`bisonsync db migrate|seed`: apply the bundled migrations like the Supabase CLI does."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

from bisonsync import migrations


def register(sub: Any) -> None:
    db = sub.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    mig = db_sub.add_parser(
        "migrate",
        help="apply pending migrations (bundled with the package), recorded in supabase_migrations.schema_migrations",
    )
    mig.add_argument("--db-url", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL")
    mig.add_argument("--dir", type=Path, default=None, help="migrations directory (default: the bundled migrations)")
    mig.set_defaults(handler=_migrate)
    seed = db_sub.add_parser("seed", help="run supabase/seed.sql (demo data, from a source checkout)")
    seed.add_argument("--db-url", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL")
    seed.add_argument("--file", type=Path, default=Path("supabase") / "seed.sql", help="default: supabase/seed.sql")
    seed.set_defaults(handler=_seed)


def _migrate(args: argparse.Namespace) -> int:
    if not args.db_url:
        raise SystemExit("bisonsync db migrate: --db-url or DATABASE_URL is required")
    try:
        directory = args.dir if args.dir is not None else migrations.bundled_dir()
        if not migrations.discover(directory):
            raise migrations.MigrationsNotFound(f"no migration files in {directory}")
    except migrations.MigrationsNotFound as exc:
        raise SystemExit(f"bisonsync db migrate: {exc}") from None
    applied = asyncio.run(migrations.migrate(args.db_url, directory))
    for m in applied:
        print(f"Applying migration {m.version}_{m.name}.sql...")
    print("Database is up to date." if not applied else f"{len(applied)} migration(s) applied.")
    return 0


def _seed(args: argparse.Namespace) -> int:
    if not args.db_url:
        raise SystemExit("bisonsync db seed: --db-url or DATABASE_URL is required")
    ran = asyncio.run(migrations.seed(args.db_url, args.file))
    print("seeded" if ran else f"no seed file at {args.file}")
    return 0

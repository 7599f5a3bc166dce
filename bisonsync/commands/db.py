"""`bisonsync db migrate|seed`: apply supabase/migrations like the Supabase CLI does."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

from devstack import migrate
from devstack.stack import PROJECT_ROOT


def register(sub: Any) -> None:
    db = sub.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    mig = db_sub.add_parser(
        "migrate", help="apply pending supabase/migrations, recorded in supabase_migrations.schema_migrations"
    )
    mig.add_argument("--db-url", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL")
    mig.add_argument("--dir", type=Path, default=PROJECT_ROOT / "supabase" / "migrations")
    mig.set_defaults(handler=_migrate)
    seed = db_sub.add_parser("seed", help="run supabase/seed.sql")
    seed.add_argument("--db-url", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL")
    seed.add_argument("--file", type=Path, default=PROJECT_ROOT / "supabase" / "seed.sql")
    seed.set_defaults(handler=_seed)


def _migrate(args: argparse.Namespace) -> int:
    if not args.db_url:
        raise SystemExit("bisonsync db migrate: --db-url or DATABASE_URL is required")
    applied = asyncio.run(migrate.migrate(args.db_url, args.dir))
    for m in applied:
        print(f"Applying migration {m.version}_{m.name}.sql...")
    print("Local database is up to date." if not applied else f"{len(applied)} migration(s) applied.")
    return 0


def _seed(args: argparse.Namespace) -> int:
    if not args.db_url:
        raise SystemExit("bisonsync db seed: --db-url or DATABASE_URL is required")
    ran = asyncio.run(migrate.seed(args.db_url, args.file))
    print("seeded" if ran else f"no seed file at {args.file}")
    return 0

"""Build hook: bundle `supabase/migrations/*.sql` (the source of truth) into the wheel as
`bisonsync/migrations/sql/`, so an installed package can migrate a database without the checkout."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithMigrations(build_py):
    def run(self) -> None:
        super().run()
        source = ROOT / "supabase" / "migrations"
        files = sorted(source.glob("*.sql"))
        if not files:
            raise RuntimeError(f"no migrations in {source}: refusing to build a wheel that cannot migrate")
        target = Path(self.build_lib) / "bisonsync" / "migrations" / "sql"
        shutil.rmtree(target, ignore_errors=True)  # a reused build/ must not keep a removed or renamed file
        target.mkdir(parents=True)
        for f in files:
            shutil.copy2(f, target / f.name)


setup(cmdclass={"build_py": BuildWithMigrations})

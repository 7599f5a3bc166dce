"""The acceptance run a new user makes, outside the checkout: build the sdist and, from it, the wheel (as from a
clean clone); install the wheel into a fresh venv; from an empty directory, `bisonsync db migrate --db-url` applies
every migration to a fresh Supabase-shaped database, recorded as the Supabase CLI records them; a second run
changes nothing; `import bisonsync` there has `__version__` and loads no web framework."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import asyncpg
import pytest

from bisonsync import migrations

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _clean_copy(dest: Path) -> Path:
    """The checkout as a fresh clone would have it: tracked and new files, nothing ignored (no .venv, build/...)."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _run(*cmd: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "DATABASE_URL")}
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


async def _history(dsn: str) -> list[tuple[str, str, list[str]]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "select version, name, statements from supabase_migrations.schema_migrations order by version"
        )
        return [(r["version"], r["name"], list(r["statements"])) for r in rows]
    finally:
        await conn.close()


async def test_wheel_migrates_a_fresh_database_from_an_empty_directory(empty_database: str, tmp_path: Path) -> None:
    source = _clean_copy(tmp_path / "clone")
    dist = tmp_path / "dist"
    # sdist first, then the wheel built from the unpacked sdist (what `python -m build` does)
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source), cwd=tmp_path)
    (sdist,) = dist.glob("bisonsync-*.tar.gz")
    (wheel,) = dist.glob("bisonsync-*.whl")
    bundled = migrations.bundled()
    with tarfile.open(sdist) as tar:
        in_sdist = {Path(n).name for n in tar.getnames() if "/supabase/migrations/" in n}
    with zipfile.ZipFile(wheel) as zf:
        in_wheel = {Path(n).name for n in zf.namelist() if n.startswith("bisonsync/migrations/sql/")}
        assert any(n.endswith("LICENSE") for n in zf.namelist()), "the wheel carries the license"
    assert in_sdist == in_wheel == {m.filename for m in bundled}

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    _run(str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel), cwd=tmp_path)

    empty = tmp_path / "empty"
    empty.mkdir()
    cli = str(env_dir / "bin" / "bisonsync")
    first = _run(cli, "db", "migrate", "--db-url", empty_database, cwd=empty)
    for mig in bundled:
        assert f"Applying migration {mig.filename}" in first.stdout
    assert f"{len(bundled)} migration(s) applied." in first.stdout
    history = await _history(empty_database)
    assert history == [(m.version, m.name, m.statements) for m in bundled]

    second = _run(cli, "db", "migrate", "--db-url", empty_database, cwd=empty)
    assert "Applying" not in second.stdout and "Database is up to date." in second.stdout
    assert await _history(empty_database) == history
    _run(cli, "db", "status", "--db-url", empty_database, cwd=empty)  # exit 0: up to date

    probe = _run(
        str(env_dir / "bin" / "python"),
        "-c",
        "import sys, bisonsync; print(bisonsync.__version__); print(bisonsync.__file__); "
        "print(sorted(m for m in ('litestar', 'uvicorn', 'service', 'devstack') if m in sys.modules)); "
        "bisonsync.migrations.bundled_dir(); print(bisonsync.migrations.bundled_dir())",
        cwd=empty,
    )
    version, location, loaded, migrations_dir = probe.stdout.splitlines()
    import bisonsync as here

    assert version == here.__version__
    assert Path(location).is_relative_to(env_dir) and Path(migrations_dir).is_relative_to(env_dir)
    assert loaded == "[]"

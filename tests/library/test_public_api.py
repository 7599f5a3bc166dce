"""The public API: a few names at the top level, loaded lazily, and one version."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

import bisonsync

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("asyncpg", "supabase", "postgrest", "realtime", "httpx", "litestar", "uvicorn", "service", "devstack")


def test_every_public_name_resolves_and_all_lists_exactly_them() -> None:
    exported = set(bisonsync._EXPORTS) | set(bisonsync._SUBMODULES) | {"__version__"}
    assert set(bisonsync.__all__) == exported
    for name in bisonsync.__all__:
        assert getattr(bisonsync, name) is not None, name
    assert bisonsync.increment_metric.__module__ == "bisonsync.store.api"
    assert bisonsync.migrations.apply.__module__ == "bisonsync.migrations"


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        bisonsync.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_is_light() -> None:
    code = (
        f"import sys, bisonsync; print(','.join(m for m in {HEAVY!r} if m in sys.modules)); "
        "print(bisonsync.__version__)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    loaded, version = proc.stdout.splitlines()
    assert loaded == "", f"`import bisonsync` loaded {loaded}"
    assert version == bisonsync.__version__


def test_version_has_one_source() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "bisonsync.__version__"}
    assert importlib.metadata.version("bisonsync") == bisonsync.__version__

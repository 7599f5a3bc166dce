"""The dashboard's source and its committed build agree, and the KPI formulas pass their unit tests (node)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from devstack.stack import PROJECT_ROOT

WEB = PROJECT_ROOT / "web"


@pytest.fixture(scope="module")
def web_dir() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm are not installed: cannot build the dashboard")
    if not (WEB / "node_modules" / "esbuild" / "package.json").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=WEB, check=True, timeout=600)
    return WEB


def _npm(web_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["npm", *args], cwd=web_dir, capture_output=True, text=True, timeout=300, check=False)


def test_committed_bundle_matches_the_source(web_dir: Path) -> None:
    done = _npm(web_dir, "run", "check")
    assert done.returncode == 0, done.stdout + done.stderr


def test_kpi_formulas(web_dir: Path) -> None:
    done = _npm(web_dir, "test")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# fail 0" in done.stdout

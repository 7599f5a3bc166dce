"""README "Use it as a library": the code block runs as written, against the devstack."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import StackHandle

ROOT = Path(__file__).resolve().parents[2]


def library_example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Use it as a library", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section has one python block"
    return str(blocks[0])


def test_example_uses_the_public_api_only() -> None:
    code = library_example()
    imported = set(re.findall(r"^(?:from|import) (\S+)", code, flags=re.M))
    assert imported == {"asyncio", "json", "os", "bisonsync"}


def test_readme_library_example_runs(devstack: StackHandle, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(library_example())
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        "DATABASE_URL": devstack.env.database_url,
        "SUPABASE_URL": devstack.env.supabase_url,
        "SUPABASE_SERVICE_ROLE_KEY": devstack.env.service_role_key,
    }
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("bisonsync ")
    sent = int(lines[1].removeprefix("emails sent today: "))
    assert sent >= 3
    assert lines[2] == f"realtime: client_metrics_daily {sent}"
    assert lines[3] == "lead_replied acme.bison.example applied duplicate"

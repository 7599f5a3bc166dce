"""The command handlers end to end on the test database (sync tests: each handler runs its own event loop)."""

from __future__ import annotations

import argparse
import json
from datetime import date, timedelta

import pytest

from bisonsync.bison import BisonClient
from bisonsync.commands import analytics as analytics_cmd
from bisonsync.reconcile import attach_workspace_keys
from bisonsync.store import Store

from .conftest import WorkspaceMaker


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    analytics_cmd.register(p.add_subparsers())
    return p


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, object]:
    args = parser().parse_args(argv)
    code = args.handler(args)
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)


def test_snapshot_and_stats_commands(env: None, capsys: pytest.CaptureFixture[str], unique_ws: int) -> None:
    day = date(2400, 1, 1) + timedelta(days=unique_ws % 20_000)
    code, out = run(["snapshot", "--date", day.isoformat(), "--threshold", "25"], capsys)
    assert code == 0 and isinstance(out, dict)
    assert out["snapshot"]["snapshot_date"] == day.isoformat() and isinstance(out["drops"], list)
    code, out = run(["account-stats"], capsys)
    assert code == 0 and isinstance(out, dict) and {"all", "workspaces"} <= set(out)


def test_alert_commands(env: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(["alerts", "check", "--dry-run"], capsys)
    assert code == 0 and isinstance(out, dict) and "total" in out["summary"]
    code, out = run(["alerts", "pending", "--limit", "5"], capsys)
    assert code == 0 and isinstance(out, dict) and len(out["alerts"]) <= 5


async def test_workspace_keys_come_from_env_refs(
    store: Store, make_workspace: WorkspaceMaker, unique_ws: int, instance: str
) -> None:
    ws_with_key = await make_workspace(bison_id=unique_ws + 500)
    ws_unset = await make_workspace(bison_id=unique_ws + 501)
    await store.upsert(
        "workspace_credentials",
        [
            {"workspace_id": ws_with_key, "bison_api_key_ref": f"BISON_KEY_{unique_ws}"},
            {"workspace_id": ws_unset, "bison_api_key_ref": f"BISON_KEY_UNSET_{unique_ws}"},
        ],
        "workspace_id",
    )
    client = BisonClient("http://bison.test", "super-admin-key")
    try:
        env = {f"BISON_KEY_{unique_ws}": "7|workspace-key-abc"}
        assert await attach_workspace_keys(client, store, env) == 0  # another instance's workspaces
        attached = await attach_workspace_keys(client, store, env, instance=instance)
        assert attached == 1
        assert client.parallel_safe(unique_ws + 500) and not client.parallel_safe(unique_ws + 501)
    finally:
        await client.aclose()

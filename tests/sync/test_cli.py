"""`bisonsync poll` end to end (a subprocess against the simulator over TCP and the devstack), the progress line,
and `run_scheduled_poll`."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import sys
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from bisonsync.commands.poll import ProgressLine
from bisonsync.settings import Settings
from bisonsync.store import Store
from bisonsync.sync.report import PollProgress
from bisonsync.sync.scheduled import run_scheduled_poll
from devstack.simulator import SimulatedBison, SimulatorServer
from devstack.simulator.faults import Target
from tests.conftest import StackHandle
from tests.sync.support import assert_cache_matches, cache

# `poll` is registered in bisonsync.cli by the lead; run the command module's parser directly until then
RUN_POLL = (
    "import argparse, sys\n"
    "from bisonsync.commands import poll\n"
    "parser = argparse.ArgumentParser(prog='bisonsync')\n"
    "poll.register(parser.add_subparsers())\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.handler(args))\n"
)


async def run_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RUN_POLL,
        "poll",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def store_env(kind: str, devstack: StackHandle) -> dict[str, str]:
    if kind == "postgres":
        return {"DATABASE_URL": devstack.env.database_url, "SUPABASE_URL": "", "SUPABASE_SERVICE_ROLE_KEY": ""}
    return {
        "DATABASE_URL": "",
        "SUPABASE_URL": devstack.env.supabase_url,
        "SUPABASE_SERVICE_ROLE_KEY": devstack.env.service_role_key,
    }


@pytest.mark.parametrize("kind", ["postgres", "supabase"])
async def test_poll_once_syncs_workspaces_then_mailboxes_and_exits_by_outcome(
    kind: str, devstack: StackHandle, db: asyncpg.Connection, instance: str
) -> None:
    sim = SimulatedBison(workspaces=5, mailboxes=400, seed=61)
    async with SimulatorServer(sim) as server:
        env = {
            **store_env(kind, devstack),
            "BISON_BASE_URL": server.base_url,
            "BISON_API_KEY": sim.super_admin_key,
            "BISON_INSTANCE": instance,
        }
        code, out, err = await run_cli(env, "--once", "--concurrency", "4")
        assert code == 0, (out, err)
        assert "workspaces: 5 workspaces (5 new, 0 renamed)" in out
        assert "mailboxes: completed: 5/5 workspaces" in out
        assert "[5/5]" in err  # not a terminal: one plain line per finished workspace
        assert_cache_matches(sim, await cache(db, instance))

        sim.set_faults(broken_json=[Target()])  # every page unreadable: every workspace fails, nothing swept
        code, out, err = await run_cli(env, "--once", "--no-progress")
        assert code == 1, (out, err)
        assert "mailboxes: failed: 0/5 workspaces" in out and "BisonProtocolError" in out
        assert all(r["deleted_at"] is None for r in (await cache(db, instance)).values())


async def test_poll_without_configuration_is_a_configuration_error() -> None:
    code, _, err = await run_cli({"BISON_BASE_URL": "", "DATABASE_URL": "postgresql://x/y"}, "--once")
    assert code == 2 and "BISON_BASE_URL" in err


def test_progress_line_draws_in_place_on_a_terminal_and_plain_lines_otherwise() -> None:
    snap = PollProgress(
        run_id="r",
        event="page",
        workspace="Client A",
        workspaces_total=4,
        workspaces_done=1,
        workspaces_failed=1,
        pages=10,
        mailboxes=1500,
        mailboxes_expected=3000,
        fraction=0.5,
    )
    tty = io.StringIO()
    line = ProgressLine(tty, tty=True, width=10)
    line(snap)
    line.close()
    assert tty.getvalue().startswith("\r[#####-----]  50%  2/4 workspaces, 1 failed  1,500/~3,000 mailboxes  Client A")
    assert tty.getvalue().endswith("\n")
    plain = io.StringIO()
    line = ProgressLine(plain, tty=False)
    line(snap)
    line(dataclasses.replace(snap, event="workspace_failed"))
    assert plain.getvalue() == "[2/4] Client A: FAILED (1,500 mailboxes so far)\n"


async def test_run_scheduled_poll_runs_one_cycle(
    pg_store: Store, db: asyncpg.Connection, make_client: Callable[..., Any], instance: str
) -> None:
    sim = SimulatedBison(workspaces=3, mailboxes=120, seed=62)
    client, _ = make_client(sim)
    settings = Settings(bison_base_url="http://bison.test", bison_api_key=sim.super_admin_key, bison_instance=instance)
    await run_scheduled_poll(settings, pg_store, client)
    assert_cache_matches(sim, await cache(db, instance))
    status = await db.fetchval(
        "select status from public.sync_runs where instance = $1 order by started_at desc limit 1", instance
    )
    assert status == "completed"

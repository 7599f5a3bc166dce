"""`bisonsync keys provision|verify|list` end to end: a subprocess against the simulator over TCP and the devstack.
Keys are never printed, and `bisonsync config` never shows them."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from bisonsync.keys import stored_keys
from bisonsync.store import Store
from devstack.simulator import SimulatedBison, SimulatorServer
from devstack.simulator.tokens import tokens_of
from tests.conftest import StackHandle

pytestmark = pytest.mark.asyncio


async def bisonsync(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bisonsync.cli",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("kind", ["postgres", "supabase"])
async def test_provision_verify_list_from_the_command_line(
    kind: str, devstack: StackHandle, pg_store: Store, instance: str
) -> None:
    sim = SimulatedBison(workspaces=3, mailboxes=30, seed=191)
    store_env = (
        {"DATABASE_URL": devstack.env.database_url, "SUPABASE_URL": "", "SUPABASE_SERVICE_ROLE_KEY": ""}
        if kind == "postgres"
        else {
            "DATABASE_URL": "",
            "SUPABASE_URL": devstack.env.supabase_url,
            "SUPABASE_SERVICE_ROLE_KEY": devstack.env.service_role_key,
        }
    )
    async with SimulatorServer(sim) as server:
        env = {
            **store_env,
            "BISON_BASE_URL": server.base_url,
            "BISON_API_KEY": sim.super_admin_key,
            "BISON_INSTANCE": instance,
        }
        code, out, err = await bisonsync(env, "keys", "provision", "--log-level", "debug")
        assert code == 0, (out, err)
        assert "3 workspaces (3 new, 0 renamed)" in out and "3 created" in out
        code, out2, err2 = await bisonsync(env, "keys", "provision")
        assert code == 0 and "3 kept" in out2 and tokens_of(sim).created == 3

        victim = next(iter(sim.teams))
        tokens_of(sim).revoke_team(victim)
        code, out3, err3 = await bisonsync(env, "keys", "verify")
        assert code == 1 and "REFUSED" in out3 and "2 ok, 1 refused" in out3
        code, out4, err4 = await bisonsync(env, "keys", "list")
        assert code == 0 and "FAILED since" in out4 and "2 of 3 active workspaces" in out4
        code, out5, err5 = await bisonsync(env, "config")
        assert code == 0

    keys = await stored_keys(pg_store, instance)
    assert len(keys) == 3
    printed = out + err + out2 + err2 + out3 + err3 + out4 + err4 + out5 + err5
    for k in keys:
        assert k.token.split("|")[1] not in printed
    assert sim.super_admin_key not in printed and sim.super_admin_key[-4:] in out5  # config masks it


async def test_provision_without_configuration_is_a_configuration_error() -> None:
    code, _, err = await bisonsync(
        {"BISON_BASE_URL": "", "DATABASE_URL": "postgresql://x/y", "BISON_INSTANCE": "x"}, "keys", "provision"
    )
    assert code == 2 and "BISON_BASE_URL" in err

"""Over a real socket: uvicorn serving the simulator, the client over TCP, the firer at a real receiver, and the
`bisonsync simulate` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
from pathlib import Path

import httpx
import pytest

from bisonsync.bison import BisonClient, BisonTimeout, RetryPolicy
from devstack.commands import simulate
from devstack.simulator import LoopbackServer, SimulatedBison, SimulatorServer, Target, WebhookFirer

from .conftest import Receiver


async def test_client_over_tcp(sim: SimulatedBison) -> None:
    team = max(sim.team_mailboxes, key=lambda t: len(sim.team_mailboxes[t]))
    async with SimulatorServer(sim) as server, BisonClient(server.base_url, sim.super_admin_key) as client:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert len(await client.list_workspaces()) == len(sim.teams)
        async with client.workspace(team) as ws:
            pages = [p async for p in ws.iter_sender_email_pages(per_page=100)]
    assert pages[0].links is not None and pages[0].links.next is not None
    assert pages[0].links.next.startswith(server.base_url)
    assert [m.id for p in pages for m in p.data] == sim.team_mailboxes[team]


async def test_read_timeout_over_tcp(sim: SimulatedBison) -> None:
    sim.set_faults(hang=[Target(path="/api/workspaces/v1.1", times=1)], hang_s=5)
    policy = RetryPolicy(max_attempts=1, attempt_timeout_s=5)
    async with SimulatorServer(sim) as server:
        timeout = httpx.Timeout(connect=1.0, read=0.2, write=1.0, pool=1.0)
        async with BisonClient(server.base_url, sim.super_admin_key, timeout=timeout, retry=policy) as client:
            with pytest.raises(BisonTimeout) as caught:
                await client.list_workspaces()
            assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
            assert len(await client.list_workspaces()) == len(sim.teams)


async def test_firer_over_tcp(sim: SimulatedBison) -> None:
    receiver = Receiver()
    async with LoopbackServer(receiver) as server:
        firer = WebhookFirer(f"{server.base_url}/hook", sim, count=200, rate_per_s=2000, token="t0k")
        truth = await firer.run()
    assert truth.deliveries == len(receiver.deliveries) == 200 and truth.failures == 0
    # retries re-rendered with moved counters are new bodies of the same events
    assert truth.distinct <= len({d.body for d in receiver.deliveries}) <= truth.distinct + truth.rerendered


async def test_simulate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    simulate.register(parser.add_subparsers())
    keys_file = tmp_path / "keys.json"
    argv = shlex.split("simulate --workspaces 5 --mailboxes 90 --port 0 --seed 4 --latency-ms 1 --run-seconds 3")
    args = parser.parse_args([*argv, "--keys-file", str(keys_file), "--print-workspace-keys"])
    running = asyncio.create_task(asyncio.to_thread(args.handler, args))
    for _ in range(200):
        if keys_file.exists() and keys_file.stat().st_size:
            break
        await asyncio.sleep(0.02)
    keys = json.loads(keys_file.read_text())
    assert keys_file.stat().st_mode & 0o077 == 0
    expected = SimulatedBison(workspaces=5, mailboxes=90, seed=4)
    assert keys["super_admin_key"] == expected.super_admin_key
    workspace_keys = {int(k): v for k, v in keys["workspace_keys"].items()}
    async with BisonClient(keys["base_url"], workspace_keys=workspace_keys) as client:
        for team in expected.teams:
            async with client.workspace(team) as ws:
                assert [m.id for m in await ws.list_sender_emails()] == expected.team_mailboxes[team]
    assert await running == 0
    out = capsys.readouterr().out
    export = next(line for line in out.splitlines() if line.startswith("export "))
    assert shlex.split(export) == [
        "export",
        f"BISON_BASE_URL={keys['base_url']}",
        f"BISON_API_KEY={expected.super_admin_key}",
    ]
    assert sum(key in out for key in workspace_keys.values()) == 5
    assert "bison simulator stopped" in out

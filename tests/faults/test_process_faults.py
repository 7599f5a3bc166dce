"""Processes dying mid-burst: the service killed (SIGKILL) and restarted, the REST gateway restarted under the
SupabaseStore. Every delivery ends applied exactly once or unanswered/5xx; Email Bison's retries (re-sending
whatever did not get a 2xx) then complete the counts. Each test prints what it injected and what it counted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

import asyncpg
import httpx

from devstack.ports import free_port
from tests.conftest import StackHandle
from tests.service.conftest import TOKEN, load_fixture

INSTANCE = "bison.example.com"


def burst(workspace: int, n: int) -> list[bytes]:
    """n distinct email_sent deliveries (distinct scheduled emails: distinct events)."""
    out = []
    for i in range(n):
        doc = load_fixture("email_sent", workspace)
        doc["data"]["scheduled_email"]["id"] = 10_000 + i  # one send per scheduled email
        out.append(json.dumps(doc).encode())
    return out


async def counted(db: asyncpg.Connection, workspace: int) -> tuple[int, int]:
    """(emails_sent counter, applied ledger rows) for the workspace."""
    row = await db.fetchrow(
        "select (select coalesce(sum(d.emails_sent), 0) from public.client_metrics_daily d where d.workspace_id = w.id)"
        " as sent, (select count(*) from public.webhook_deliveries l where l.workspace_id = w.id"
        " and l.status = 'applied') as applied from public.workspaces w where w.instance = $1"
        " and w.bison_workspace_id = $2",
        INSTANCE,
        workspace,
    )
    return (int(row["sent"]), int(row["applied"])) if row else (0, 0)


async def send_all(url: str, bodies: list[bytes], concurrency: int = 16) -> dict[int, int | str]:
    """POST each body once; index -> status code, or the transport error's name."""
    results: dict[int, int | str] = {}
    slots = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=5) as http:

        async def one(i: int, body: bytes) -> None:
            async with slots:
                try:
                    r = await http.post(url, content=body, params={"token": TOKEN})
                    results[i] = r.status_code
                except httpx.HTTPError as exc:
                    results[i] = type(exc).__name__

        await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
    return results


async def retry_until_ok(url: str, bodies: list[bytes], pending: set[int], rounds: int = 40) -> None:
    """Email Bison's retries: re-send whatever has not been answered 2xx, until all are."""
    for _ in range(rounds):
        if not pending:
            return
        results = await send_all(url, [bodies[i] for i in sorted(pending)])
        pending -= {
            i
            for i, code in zip(sorted(pending), [results[k] for k in range(len(pending))], strict=True)
            if isinstance(code, int) and code < 300
        }
        await asyncio.sleep(0.25)
    assert not pending, f"{len(pending)} deliveries never accepted"


async def start_service(env: dict[str, str], port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bisonsync.cli",
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with httpx.AsyncClient() as http, asyncio.timeout(30):
        while True:
            try:
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)


def service_env(devstack: StackHandle, *, direct: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "DATABASE_URL", "BISON"))}
    env.update({"BISONSYNC_WEBHOOK_TOKEN": TOKEN, "BISONSYNC_JOBS": "0", "BISONSYNC_DEFAULT_INSTANCE": INSTANCE})
    if direct:
        env["DATABASE_URL"] = devstack.env.database_url
    else:
        env.update(
            {"SUPABASE_URL": devstack.env.supabase_url, "SUPABASE_SERVICE_ROLE_KEY": devstack.env.service_role_key}
        )
    return env


async def test_service_killed_mid_burst_then_retries_complete(
    devstack: StackHandle, db: asyncpg.Connection, unique_ws: int
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/bison"
    env = service_env(devstack, direct=True)
    bodies = burst(unique_ws, 300)
    proc = await start_service(env, port)
    try:
        sending = asyncio.create_task(send_all(url, bodies, concurrency=8))
        await asyncio.sleep(0.3)
        proc.kill()  # SIGKILL: no graceful shutdown, requests cut mid-flight
        await proc.wait()
        results = await sending
        ok = {i for i, code in results.items() if isinstance(code, int) and code < 300}
        sent, applied = await counted(db, unique_ws)
        print(f"injected: SIGKILL after 0.3 s of a 300-delivery burst; answered 2xx: {len(ok)}, counted: {sent}")
        # every 2xx was applied; anything else may or may not have been (its transaction either committed or not)
        assert len(ok) <= sent == applied <= len(bodies)
        proc = await start_service(env, port)
        await retry_until_ok(url, bodies, set(range(len(bodies))) - ok)
        sent, applied = await counted(db, unique_ws)
        print(f"after restart and retries: counted {sent} of {len(bodies)} distinct deliveries")
        assert sent == applied == len(bodies)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()


async def test_gateway_restarted_under_the_supabase_store(
    devstack: StackHandle, db: asyncpg.Connection, unique_ws: int
) -> None:
    if devstack.stack is None:
        import pytest

        pytest.skip("needs the local devstack (restarts its gateway)")
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/bison"
    bodies = burst(unique_ws, 200)
    proc = await start_service(service_env(devstack, direct=False), port)
    try:
        sending = asyncio.create_task(send_all(url, bodies, concurrency=8))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(devstack.stack.stop_gateway)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(devstack.stack.start_gateway)
        results = await sending
        codes: dict[Any, int] = {}
        for code in results.values():
            codes[code] = codes.get(code, 0) + 1
        ok = {i for i, code in results.items() if isinstance(code, int) and code < 300}
        sent, applied = await counted(db, unique_ws)
        print(f"injected: gateway stopped for 0.5 s during a 200-delivery burst; answers {codes}; counted {sent}")
        assert all(code in (200, 503) for code in results.values()), codes  # never a 500 or a lost answer
        assert len(ok) <= sent == applied
        await retry_until_ok(url, bodies, set(range(len(bodies))) - ok)
        sent, applied = await counted(db, unique_ws)
        print(f"after retries: counted {sent} of {len(bodies)}")
        assert sent == applied == len(bodies)
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()

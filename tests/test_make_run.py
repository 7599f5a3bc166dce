"""`make run` as a new user meets it: `bisonsync run` prints its URLs within a minute, the counters move while it
runs, and Ctrl-C (SIGINT) stops everything it started. Runs on its own ports and state directory."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import asyncpg
import httpx

from devstack.ports import free_port
from devstack.stack import DevStack


async def _mtd_emails(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval(
                "select coalesce(sum(emails_sent_mtd + replies_mtd + bounced_mtd), 0) from public.client_metrics "
                "where metric_type = 'mtd'"
            )
        )
    finally:
        await conn.close()


async def test_run_shows_a_living_demo_and_stops_cleanly() -> None:
    root = Path(tempfile.mkdtemp(prefix="bisonsync-run-"))
    root.chmod(0o755)
    api_port, db_port, port = free_port(), free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "DATABASE_URL", "BISON"))},
        "BISONSYNC_DEVSTACK_DIR": str(root),
        "BISONSYNC_DEVSTACK_API_PORT": str(api_port),
        "BISONSYNC_DEVSTACK_DB_PORT": str(db_port),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bisonsync.cli",
        "run",
        "--port",
        str(port),
        "--rate",
        "20",
        "--poll-interval",
        "30",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    printed: list[str] = []
    try:
        async with asyncio.timeout(60):  # the URL within a minute, on a fresh state dir
            while "Ctrl-C stops everything." not in "".join(printed):
                line = (await proc.stdout.readline()).decode()
                assert line, "bisonsync run exited early:\n" + "".join(printed)
                printed.append(line)
        text = "".join(printed)
        assert f"http://127.0.0.1:{port}" in text and "dashboard login" in text
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/readyz")).status_code == 200
            assert "<html" in (await http.get("/")).text.lower()
            config = (await http.get("/config.json")).json()
            assert config["supabaseUrl"] == f"http://127.0.0.1:{api_port}" and config["anonKey"]
        database_url = f"postgresql://postgres:postgres@127.0.0.1:{db_port}/postgres"
        before = await _mtd_emails(database_url)
        await asyncio.sleep(4)
        assert await _mtd_emails(database_url) > before, "counters did not move"
        mailboxes = await asyncpg.connect(database_url)
        try:
            assert await mailboxes.fetchval("select count(*) from public.sender_emails_cache") >= 250
        finally:
            await mailboxes.close()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(60):
                    await proc.communicate()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        stack = DevStack(root=root, api_port=api_port, db_port=db_port)
        leftovers = {"gateway": stack.gateway_alive(), "postgres": stack.cluster.is_running()}
        stack.down()
        shutil.rmtree(root, ignore_errors=True)
    assert proc.returncode == 0
    assert leftovers == {"gateway": False, "postgres": False}

"""The local stack is durable by default (issue 12 item 5) and its server log stays small (item 7).

Before: `bisonsync dev up` / `make run` ran PostgreSQL with fsync, synchronous_commit and full_page_writes off, and
an immediate stop (`pg_ctl -m immediate`, what a crash looks like to PostgreSQL) lost 1-2 of 600 deliveries already
answered 200 `applied`. Only an explicit BISONSYNC_DEVSTACK_DURABLE=0 (the test conftest sets it) may turn that off.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from devstack.cluster import DURABLE_ENV, SUPERUSER, PostgresCluster
from devstack.ports import free_port
from devstack.stack import DevStack
from tests.conftest import StackHandle
from tests.faults.test_process_faults import INSTANCE, burst, counted, send_all, start_service
from tests.service.conftest import TOKEN

SAFETY = ("fsync", "synchronous_commit", "full_page_writes")


@pytest.fixture
def scratch_root() -> Iterator[Path]:
    # not under pytest's 0700 tmp dir: the cluster runs as the `postgres` user when the suite runs as root
    root = Path(tempfile.mkdtemp(prefix="bisonsync-durable-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def _show(dsn: str, names: tuple[str, ...]) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        return {n: str(await conn.fetchval(f"show {n}")) for n in names}
    finally:
        await conn.close()


async def test_a_default_started_cluster_is_durable(scratch_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DURABLE_ENV, raising=False)  # what `bisonsync dev up` and `make run` see
    cluster = PostgresCluster(scratch_root / "pg", free_port())
    cluster.init()
    # a cluster initialised by an older version carries the unsafe settings in its config: start overrides them
    with (cluster.data_dir / "postgresql.auto.conf").open("a") as fh:
        fh.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
    cluster.start()
    try:
        shown = await _show(cluster.dsn(SUPERUSER), SAFETY)
        assert shown == dict.fromkeys(SAFETY, "on")
        logging_ = await _show(cluster.dsn(SUPERUSER), ("logging_collector", "log_rotation_size", "log_min_messages"))
        assert logging_ == {"logging_collector": "on", "log_rotation_size": "10MB", "log_min_messages": "warning"}
    finally:
        cluster.stop("immediate")


async def test_only_an_explicit_setting_turns_durability_off(
    scratch_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DURABLE_ENV, "0")
    assert PostgresCluster(scratch_root / "a", 1).durable is False
    monkeypatch.setenv(DURABLE_ENV, "")
    assert PostgresCluster(scratch_root / "b", 1).durable is True
    monkeypatch.setenv(DURABLE_ENV, "yes-please")
    assert PostgresCluster(scratch_root / "c", 1).durable is True
    assert DevStack(root=scratch_root / "d", durable=True).cluster.durable is True


async def test_a_cluster_left_running_unsafe_is_reported(
    scratch_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dev up` on a cluster an older version started (and left running) cannot change its settings: it says so."""
    port = free_port()
    old = PostgresCluster(scratch_root / "pg", port, durable=False)
    old.init()
    old.start()
    try:
        monkeypatch.delenv(DURABLE_ENV, raising=False)
        stack = DevStack(root=scratch_root, api_port=free_port(), db_port=port, seed_file=None)
        await stack.prepare_database(seed=False)
        assert stack.unsafe_settings == ["fsync", "full_page_writes", "synchronous_commit"]
        assert "bisonsync dev down && bisonsync dev up" in capsys.readouterr().err
        stack.cluster.stop()
        await stack.prepare_database(seed=False)  # restarted by the new version: durable, nothing to report
        assert stack.unsafe_settings == []
    finally:
        old.stop("immediate")


async def test_deliveries_answered_200_survive_an_immediate_stop(
    scratch_root: Path, monkeypatch: pytest.MonkeyPatch, unique_ws: int
) -> None:
    """A durable stack, a real `bisonsync serve`, a burst of 400 deliveries, and PostgreSQL stopped with
    `-m immediate` mid-burst: every delivery answered 200 is in the ledger and counted after the restart."""
    monkeypatch.delenv(DURABLE_ENV, raising=False)
    stack = DevStack(root=scratch_root, api_port=free_port(), db_port=free_port(), seed_file=None)
    await stack.prepare_database(seed=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "BISON"))}
    env.update(
        {
            "BISONSYNC_WEBHOOK_TOKEN": TOKEN,
            "BISONSYNC_JOBS": "0",
            "BISONSYNC_DEFAULT_INSTANCE": INSTANCE,  # the instance `counted` reads
            "DATABASE_URL": stack.env().database_url,
        }
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/bison"
    bodies = burst(unique_ws, 400)
    proc = await start_service(env, port)
    try:
        sending = asyncio.create_task(send_all(url, bodies, concurrency=16))
        # stop PostgreSQL once a good part of the burst has been answered
        db = await asyncpg.connect(stack.env().database_url)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if (await counted(db, unique_ws))[1] >= 150:
                    break
                await asyncio.sleep(0.02)
        finally:
            await db.close()
        await asyncio.to_thread(stack.cluster.stop, "immediate")
        results = await sending
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
    ok = {i for i, code in results.items() if code == 200}
    await asyncio.to_thread(stack.cluster.start)
    try:
        db = await asyncpg.connect(stack.env().database_url)
        try:
            sent, applied = await counted(db, unique_ws)
        finally:
            await db.close()
    finally:
        stack.cluster.stop("immediate")
    print(f"immediate stop mid-burst: answered 200: {len(ok)} of {len(bodies)}; after restart counted {sent}")
    assert len(ok) >= 150
    assert sent == applied >= len(ok), f"{len(ok) - applied} deliveries answered 200 were lost"


async def test_idle_server_log_stays_small(devstack: StackHandle) -> None:
    """Before: ~466 KB a minute of "starting logical decoding for slot" lines while idle (the realtime emulator
    polls its slot every 50 ms). Now the server log (rotated by the logging collector) grows by next to nothing."""
    if devstack.stack is None:
        pytest.skip("needs the local devstack (reads its server log)")
    log_dir = devstack.stack.cluster.log_dir

    def size() -> int:
        return sum(p.stat().st_size for p in log_dir.glob("postgresql-*.log"))

    assert log_dir.is_dir(), "the logging collector writes the server log (rotated), not a single file"
    before = size()
    await asyncio.sleep(10)  # > 150 slot polls
    grown = size() - before
    print(f"server log grew {grown} bytes in 10 s idle (before the fix: ~78,000)")
    assert grown < 2_000

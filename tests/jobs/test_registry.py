"""One registry of background jobs: the service schedules each job once, and ledger pruning runs (payloads with
lead PII are not kept past the retention), on both stores."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from bisonsync.jobs import JOB_NAMES, check_registry, prune_ledger, service_jobs
from bisonsync.scheduler import Job, Scheduler
from bisonsync.settings import Settings, SettingsError
from bisonsync.store import PostgresStore, Store, SupabaseStore
from service.background import background
from tests.conftest import StackHandle


async def _noop() -> None:
    return None


def test_scheduler_refuses_a_job_twice() -> None:
    with pytest.raises(ValueError, match="more than once: alerts"):
        Scheduler([Job("alerts", 1, _noop), Job("alerts", 5, _noop)])
    with pytest.raises(ValueError, match="not in JOB_NAMES"):
        check_registry([Job("mystery", 1, _noop)])


async def test_service_schedules_every_job_once(database_url: str) -> None:
    store = PostgresStore(database_url, max_size=1)
    bison = Settings(
        jobs_enabled=True,
        bison_base_url="http://127.0.0.1:9",
        bison_api_key="1|not-a-real-key",
        key_provision_interval_s=3600,
    )
    bg = background(bison, store)
    try:
        names = [j.name for j in bg.scheduler.jobs]
        assert sorted(names) == sorted(JOB_NAMES)
        assert len(names) == len(set(names))
        prune = next(j for j in bg.scheduler.jobs if j.name == "prune_ledger")
        assert prune.interval_s == 86_400
    finally:
        assert bg.bison is not None
        await bg.bison.aclose()

    # without Email Bison: no poll, no reconcile; a 0 interval disables a job
    bg = background(Settings(jobs_enabled=True, prune_interval_s=0), store)
    assert sorted(j.name for j in bg.scheduler.jobs) == ["alerts", "provider_snapshot"]
    bg = background(Settings(jobs_enabled=True, prune_interval_s=5), store)
    assert sorted(j.name for j in bg.scheduler.jobs) == ["alerts", "provider_snapshot", "prune_ledger"]


def test_retention_setting_is_parsed_and_checked() -> None:
    assert Settings.from_env({}).ledger_retention_days is None
    assert Settings.from_env({}).prune_interval_s == 86_400
    env = {"BISONSYNC_LEDGER_RETENTION_DAYS": "30", "BISONSYNC_PRUNE_INTERVAL_S": "3600"}
    assert (Settings.from_env(env).ledger_retention_days, Settings.from_env(env).prune_interval_s) == (30, 3600)
    for bad in ("0", "-3", "soon"):
        with pytest.raises(SettingsError, match="BISONSYNC_LEDGER_RETENTION_DAYS"):
            Settings.from_env({"BISONSYNC_LEDGER_RETENTION_DAYS": bad})


@pytest.fixture(params=["postgres", "supabase"])
async def store(request: pytest.FixtureRequest, devstack: StackHandle) -> AsyncIterator[Store]:
    s: Store = (
        PostgresStore(devstack.env.database_url, max_size=2)
        if request.param == "postgres"
        else SupabaseStore(devstack.env.supabase_url, devstack.env.service_role_key)
    )
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def retention_restored(db: asyncpg.Connection) -> AsyncIterator[None]:
    """Tests here change the database's retention; put the default back for the rest of the session."""
    yield
    await db.execute(
        "insert into public.bisonsync_settings (key, value) values ('ledger_payload_retention_days', '90') "
        "on conflict (key) do update set value = excluded.value"
    )


async def _deliveries(db: asyncpg.Connection, unique_ws: int, ages_days: list[int]) -> list[int]:
    ws = await db.fetchval("select public.upsert_workspace('prune.bison.example', $1, 'Prune Co')", unique_ws)
    now = datetime.now(UTC)
    return [
        await db.fetchval(
            "insert into public.webhook_deliveries (workspace_id, event_type, status, received_at, payload) "
            "values ($1, 'lead_replied', 'applied', $2, $3::jsonb) returning id",
            ws,
            now - timedelta(days=age),
            json.dumps({"data": {"lead": {"email": f"lead{age}@example.com"}}}),
        )
        for age in ages_days
    ]


async def _payloads(db: asyncpg.Connection, ids: list[int]) -> list[bool]:
    rows = await db.fetch(
        "select payload is not null as kept from public.webhook_deliveries where id = any($1) order by id", ids
    )
    return [r["kept"] for r in rows]


async def test_prune_uses_the_retention_setting(
    store: Store, db: asyncpg.Connection, unique_ws: int, retention_restored: None
) -> None:
    ids = await _deliveries(db, unique_ws, [400, 40, 10])
    assert await prune_ledger(store) >= 1  # the database's default: 90 days
    assert await _payloads(db, ids) == [False, True, True]
    assert await prune_ledger(store, retention_days=30) >= 1
    assert await _payloads(db, ids) == [False, False, True]
    value = await db.fetchval("select value from public.bisonsync_settings where key = 'ledger_payload_retention_days'")
    assert json.loads(value) == 30
    with pytest.raises(ValueError):
        await prune_ledger(store, retention_days=0)


async def test_the_scheduled_prune_job_runs(
    store: Store, db: asyncpg.Connection, unique_ws: int, retention_restored: None
) -> None:
    ids = await _deliveries(db, unique_ws, [20, 2])
    settings = Settings(jobs_enabled=True, ledger_retention_days=7, prune_interval_s=3600)
    jobs = service_jobs(settings, store, worker=background(settings, store).worker)
    prune = next(j for j in jobs if j.name == "prune_ledger")
    scheduler = Scheduler([dataclasses.replace(prune, initial_delay_s=0.0)])
    scheduler.start()
    try:
        for _ in range(200):
            if await _payloads(db, ids) == [False, True]:
                break
            await asyncio.sleep(0.05)
    finally:
        await scheduler.stop()
    assert await _payloads(db, ids) == [False, True]

"""The wiring proposed for the service lifespan: the worker and the scheduled jobs run inside the app."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import asyncpg
from litestar.testing import AsyncTestClient

from bisonsync.alerts import AlertWorker, analytics_jobs
from bisonsync.scheduler import Scheduler
from bisonsync.settings import Settings
from bisonsync.store import PostgresStore
from service.app import create_app

from .conftest import GLOBAL_SLACK, FakeSlack, WorkspaceMaker, fast_config


async def test_worker_and_jobs_in_the_service_lifespan(
    database_url: str, db: asyncpg.Connection, make_workspace: WorkspaceMaker, slack: FakeSlack
) -> None:
    ws = await make_workspace(name="Wired Client")
    await db.execute(
        "insert into public.webhook_activity (workspace_id, last_delivery_at, deliveries_total) "
        "values ($1::uuid, $2, 1)",
        ws,
        datetime.now(UTC) - timedelta(hours=6),
    )
    settings = Settings(webhook_token="t", slack_webhook_url=GLOBAL_SLACK)
    store = PostgresStore(database_url, max_size=4)
    http = slack.client()
    worker = AlertWorker(store, settings, http, config=fast_config(check_interval_s=0.2))
    specs = analytics_jobs(store, worker, snapshot_interval_s=0)
    assert [j.name for j in specs] == ["alerts"]
    scheduler = Scheduler([dataclasses.replace(j, initial_delay_s=0.0) for j in specs])
    app = create_app(settings, store, extra_lifespans=[worker.lifespan(), scheduler.lifespan()])
    async with AsyncTestClient(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        for _ in range(100):
            if any("Wired Client" in str(p.body) for p in slack.posts):
                break
            await asyncio.sleep(0.05)
    assert any("Wired Client" in str(p.body) for p in slack.posts)
    assert not worker.running
    await http.aclose()

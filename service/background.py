"""The service's background work: the mailbox poll, alert scans and Slack delivery, snapshots and reconcile.

All of it runs off the request path; each job is single-flight or idempotent across replicas (see the jobs'
docs), so every replica may run them. `BISONSYNC_JOBS=0` turns them off for webhook-only replicas.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from bisonsync.alerts import AlertWorker, analytics_jobs
from bisonsync.bison import BisonClient
from bisonsync.keys import provision_missing
from bisonsync.scheduler import Job, Scheduler
from bisonsync.settings import Settings
from bisonsync.store import Store
from bisonsync.sync.scheduled import client_from_settings, run_scheduled_poll

log = logging.getLogger("bisonsync.service")

Lifespan = Callable[[Any], contextlib.AbstractAsyncContextManager[None]]


def background_lifespans(settings: Settings, store: Store) -> list[Lifespan]:
    """Lifespans to add after the store's: the shared Email Bison client, the alert worker, the scheduler.

    Litestar exits lifespans in reverse: the scheduler stops first, then the worker flushes, then the client
    closes (the store's lifespan, entered before these, closes last)."""
    bison: BisonClient | None = None
    if settings.bison_base_url and settings.bison_api_key:
        bison = client_from_settings(settings)  # one client: the super-admin switch lock lives in it
    worker = AlertWorker(store, settings)
    jobs: list[Job] = []
    if bison is not None:
        client = bison

        async def poll() -> None:
            await run_scheduled_poll(settings, store, client)

        jobs.append(Job("mailbox_poll", settings.poll_interval_s, poll, initial_delay_s=1.0))
        if settings.key_provision_interval_s > 0:  # workspace keys for new workspaces (bisonsync.keys)
            jobs.append(
                Job(
                    "key_provision",
                    settings.key_provision_interval_s,
                    lambda: provision_missing(store, client, settings.instance_label()),
                    initial_delay_s=30.0,  # after the first poll registered the workspaces
                )
            )
    jobs += analytics_jobs(
        store, worker, bison, bison_instance=settings.instance_label() if bison is not None else None
    )
    scheduler = Scheduler(jobs)
    log.info("background jobs: %s", ", ".join(j.name for j in scheduler.jobs) or "none")

    @contextlib.asynccontextmanager
    async def bison_client(app: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if bison is not None:
                await bison.aclose()

    return [bison_client, worker.lifespan(), scheduler.lifespan()]

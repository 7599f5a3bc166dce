"""The service's background work: the jobs of `bisonsync.jobs` (poll, alerts, snapshots, reconcile, ledger
pruning) on a scheduler, with the alert worker and the shared Email Bison client around them.

All of it runs off the request path; each job is single-flight or idempotent across replicas (see
`bisonsync.jobs`), so every replica may run them. `BISONSYNC_JOBS=0` turns them off for webhook-only replicas.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from bisonsync.alerts import AlertWorker
from bisonsync.bison import BisonClient
from bisonsync.jobs import service_jobs
from bisonsync.scheduler import Scheduler
from bisonsync.settings import Settings
from bisonsync.store import Store
from bisonsync.sync.scheduled import client_from_settings

log = logging.getLogger("bisonsync.service")

Lifespan = Callable[[Any], contextlib.AbstractAsyncContextManager[None]]


@dataclass
class Background:
    scheduler: Scheduler
    worker: AlertWorker
    bison: BisonClient | None
    #: to add after the store's lifespan, in this order
    lifespans: list[Lifespan]


def background(settings: Settings, store: Store) -> Background:
    """The scheduler with every registered job, the alert worker and the Email Bison client, and their lifespans.

    Litestar exits lifespans in reverse: the scheduler stops first, then the worker flushes, then the client
    closes (the store's lifespan, entered before these, closes last)."""
    bison: BisonClient | None = None
    if settings.bison_base_url and settings.bison_api_key:
        bison = client_from_settings(settings)  # one client: the super-admin switch lock lives in it
    worker = AlertWorker(store, settings)
    scheduler = Scheduler(service_jobs(settings, store, worker=worker, bison=bison))
    log.info("background jobs: %s", ", ".join(j.name for j in scheduler.jobs) or "none")

    @contextlib.asynccontextmanager
    async def bison_client(app: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if bison is not None:
                await bison.aclose()

    return Background(scheduler, worker, bison, [bison_client, worker.lifespan(), scheduler.lifespan()])


def background_lifespans(settings: Settings, store: Store) -> list[Lifespan]:
    """Lifespans to add after the store's (see `background`)."""
    return background(settings, store).lifespans

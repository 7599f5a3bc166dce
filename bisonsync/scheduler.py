"""Background jobs run on a schedule (the registry: `bisonsync.jobs`), as an ASGI lifespan.

Each job runs in its own task, one run at a time, with errors logged and never propagated: a failing job must
not take the webhook endpoint down with it. Jobs that must be single-flight across replicas take their own
Postgres lease (see the mailbox poller).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("bisonsync.jobs")

JobFn = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    interval_s: float
    run: JobFn
    #: wait before the first run (0: right away)
    initial_delay_s: float = 0.0


async def _loop(job: Job) -> None:
    await asyncio.sleep(job.initial_delay_s)
    while True:
        try:
            await job.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s failed", job.name)
        await asyncio.sleep(job.interval_s)


class Scheduler:
    def __init__(self, jobs: list[Job]) -> None:
        names = [j.name for j in jobs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:  # two loops of one job would double its work (and fight over its lease)
            raise ValueError(f"jobs scheduled more than once: {', '.join(twice)}")
        self.jobs = [j for j in jobs if j.interval_s > 0]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(_loop(j), name=f"job:{j.name}") for j in self.jobs]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def lifespan(self) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
        """A lifespan for `Litestar(lifespan=[...])` (any framework passing the app)."""

        @contextlib.asynccontextmanager
        async def run(app: Any) -> AsyncIterator[None]:
            self.start()
            try:
                yield
            finally:
                await self.stop()

        return run

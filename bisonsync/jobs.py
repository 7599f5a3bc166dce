"""The one registry of background jobs: what runs on a schedule, under which name, how often.

| job | what | interval |
|---|---|---|
| `mailbox_poll` | workspaces and sender mailboxes from Email Bison (single-flight) | `BISONSYNC_POLL_INTERVAL_S` |
| `alerts` | alert conditions, then Slack delivery of due alerts | the alert worker's check interval |
| `provider_snapshot` | today's provider snapshot, then reply-rate drop detection | hourly |
| `reconcile` | webhook counters vs Email Bison's stats, drift recorded | every 6 h |
| `prune_ledger` | null webhook payloads (lead PII) older than the retention | `BISONSYNC_PRUNE_INTERVAL_S` |
| `key_provision` | Email Bison keys (into Vault) for workspaces without one | `BISONSYNC_KEY_PROVISION_INTERVAL_S`, 0 |

`mailbox_poll`, `reconcile` and `key_provision` need an Email Bison client (BISON_BASE_URL + BISON_API_KEY). An
interval of 0 disables a job (`key_provision` is off by default). Every job is single-flight or idempotent across
replicas, so every replica may run them.
"""

from __future__ import annotations

import logging
from collections import Counter

from bisonsync.alerts import AlertWorker, analytics_jobs
from bisonsync.bison import BisonClient
from bisonsync.keys import provision_missing
from bisonsync.scheduler import Job
from bisonsync.settings import Settings
from bisonsync.store import Store, api
from bisonsync.sync.scheduled import run_scheduled_poll

log = logging.getLogger("bisonsync.jobs")

#: every job the service may run, by name (the registry's vocabulary; see the table above)
JOB_NAMES: tuple[str, ...] = (
    "mailbox_poll",
    "alerts",
    "provider_snapshot",
    "reconcile",
    "prune_ledger",
    "key_provision",
)

#: the SQL-side retention key `prune_ledger()` reads (default 90 days when absent)
RETENTION_KEY = "ledger_payload_retention_days"


async def prune_ledger(store: Store, retention_days: int | None = None) -> int:
    """Null the stored payloads of deliveries older than the retention (the rows, and so history, health and
    dedup, stay). With `retention_days`, that value is first written where `prune_ledger()` reads it
    (`bisonsync_settings.ledger_payload_retention_days`); else the database's value (default 90) applies.
    Returns the number of payloads pruned."""
    if retention_days is not None:
        if retention_days < 1:
            raise ValueError(f"retention_days must be at least 1, got {retention_days}")
        await api.set_setting(store, RETENTION_KEY, retention_days)
    return await api.prune_ledger(store)


def service_jobs(
    settings: Settings, store: Store, *, worker: AlertWorker, bison: BisonClient | None = None
) -> list[Job]:
    """Every scheduled job for these settings, each once (the enabled ones: interval > 0)."""
    jobs: list[Job] = []
    if bison is not None:
        client = bison

        async def poll() -> None:
            await run_scheduled_poll(settings, store, client)

        jobs.append(Job("mailbox_poll", settings.poll_interval_s, poll, initial_delay_s=1.0))

        async def provision() -> None:
            await provision_missing(store, client, settings.instance_label())

        # after the first poll registered the workspaces
        jobs.append(Job("key_provision", settings.key_provision_interval_s, provision, initial_delay_s=30.0))
    jobs += analytics_jobs(
        store, worker, bison, bison_instance=settings.instance_label() if bison is not None else None
    )

    async def prune() -> None:
        pruned = await prune_ledger(store, settings.ledger_retention_days)
        log.info("prune_ledger: %d payload(s) past retention removed", pruned)

    jobs.append(Job("prune_ledger", settings.prune_interval_s, prune, initial_delay_s=60.0))
    check_registry(jobs)
    return [j for j in jobs if j.interval_s > 0]


def check_registry(jobs: list[Job]) -> None:
    """Each job is known and scheduled once (two loops of one job would double its work and its leases)."""
    names = Counter(j.name for j in jobs)
    twice = sorted(n for n, c in names.items() if c > 1)
    unknown = sorted(n for n in names if n not in JOB_NAMES)
    if twice or unknown:
        raise ValueError(f"job registry: scheduled more than once {twice}, not in JOB_NAMES {unknown}")

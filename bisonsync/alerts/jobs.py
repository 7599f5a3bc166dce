"""The scheduled jobs of analytics, reconciliation and alerts, as `bisonsync.scheduler.Job`s.

Every job is idempotent and safe on several replicas: alert keys dedup in `alert_log`, the snapshot replaces its
day under an advisory lock, drift rows upsert per check day.
"""

from __future__ import annotations

import logging

from bisonsync.alerts.worker import AlertWorker
from bisonsync.analytics import DailySnapshotReport, run_daily_snapshot
from bisonsync.bison import BisonClient
from bisonsync.reconcile import ReconcileReport, run_reconcile_job
from bisonsync.scheduler import Job
from bisonsync.store import Store

log = logging.getLogger("bisonsync.jobs")


def analytics_jobs(
    store: Store,
    worker: AlertWorker,
    bison_client: BisonClient | None = None,
    *,
    bison_instance: str | None = None,
    snapshot_interval_s: float = 3600.0,
    reconcile_interval_s: float = 6 * 3600.0,
) -> list[Job]:
    """`alerts` every `worker.config.check_interval_s`; `provider_snapshot` hourly (today's UTC snapshot, then
    drop detection; drops are turned into alerts at once); `reconcile` every 6 h when an Email Bison client is
    given (share the poller's client: the super-admin switch lock lives in it), for `bison_instance`
    (`settings.instance_label()`). An interval of 0 disables a job."""
    drop_threshold = worker.config.drop_threshold_pct

    async def snapshot() -> DailySnapshotReport:
        report = await run_daily_snapshot(store, threshold_pct=drop_threshold)
        log.info(
            "provider snapshot %s: %d rows, %d drops",
            report.snapshot.snapshot_date,
            report.snapshot.rows_written,
            len(report.drops),
        )
        if report.drops:
            await worker.run_checks()
        return report

    jobs = [
        Job("alerts", worker.config.check_interval_s, worker.run_checks, initial_delay_s=5.0),
        Job("provider_snapshot", snapshot_interval_s, snapshot, initial_delay_s=30.0),
    ]
    if bison_client is not None:
        client = bison_client

        async def reconcile() -> list[ReconcileReport]:
            reports = await run_reconcile_job(store, client, instance=bison_instance)
            for r in reports:
                drifting = sum(1 for w in r.workspaces if w.max_abs_drift)
                log.info(
                    "reconcile %s %s: %d workspaces, %d drifting, %d errors",
                    r.instance,
                    r.month or "current",
                    len(r.workspaces),
                    drifting,
                    len(r.errors),
                )
            return reports

        jobs.append(Job("reconcile", reconcile_interval_s, reconcile, initial_delay_s=120.0))
    return [j for j in jobs if j.interval_s > 0]

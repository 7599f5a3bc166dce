"""Reconciliation: webhook counters vs Email Bison's own stats, per workspace and metric, recorded as drift.

For every active workspace of an instance, the workspace-local month (first day .. today, or .. the month's last
day for a past month) is compared:

| metric          | webhook side (`client_metrics_daily`, summed) | Email Bison (`/api/workspaces/v1.1/stats`) |
|-----------------|-----------------------------------------------|--------------------------------------------|
| `emails_sent`   | `emails_sent` (`email_sent` events)           | `emails_sent`                              |
| `replies`       | `replies` (`lead_replied` events)             | `unique_replies_per_contact`               |
| `replies_total` | `replies`                                     | `replied` (when reported)                  |
| `interested`    | `interested` (`lead_interested` events)       | `interested`                               |
| `bounced`       | `bounced` (`email_bounced` events)            | `bounced`                                  |
| `unsubscribed`  | `unsubscribed` (`lead_unsubscribed` events)   | `unsubscribed`                             |

`replies` follows the predecessor's KPI mapping ("all replies" = `unique_replies_per_contact`), which counts a
contact once however often it replied, while the webhook counts every reply event; a workspace whose leads reply
twice therefore shows positive `replies` drift that is not an error. `replies_total` compares with `replied`
(every reply) and is the like-for-like check, but only where an instance reports `replied`: real instances send
no such field (and their values as strings, which are read as numbers), and a metric Email Bison does not report
is never compared, so no drift is recorded against it. See docs/analytics.md for the other caveats (time zones, events
never registered, Bison's retries landing on a later day, `lead_interested` firing only once per lead).

The drift (webhook - bison) is RECORDED in `metric_drift` by `record_metric_drift()`, keyed by workspace, metric,
period start and the workspace-local check day (a re-run the same day updates). Nothing here writes the webhook
counters: the predecessor's nightly sync overwrote them with Bison's absolute values and lost increments
(spec §6.6); here Bison's numbers are evidence, not truth.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from bisonsync.bison import BisonClient, BisonError, WorkspaceStats
from bisonsync.events.decode import instance_host
from bisonsync.store import Store, StoreError, api
from bisonsync.store.rows import MetricDrift, WorkspaceRow
from bisonsync.sync.runs import add_workspace_keys, workspace_key_refs

log = logging.getLogger("bisonsync.reconcile")

#: metric -> the `WorkspaceStats` field it is compared with
METRIC_MAP: dict[str, str] = {
    "emails_sent": "emails_sent",
    "replies": "unique_replies_per_contact",
    "replies_total": "replied",
    "interested": "interested",
    "bounced": "bounced",
    "unsubscribed": "unsubscribed",
}


class WorkspaceReconciliation(msgspec.Struct, kw_only=True, frozen=True):
    workspace_id: str
    bison_workspace_id: int
    workspace_name: str
    timezone: str
    period_start: date
    period_end: date
    metrics: list[MetricDrift] = msgspec.field(default_factory=list)
    #: why this workspace could not be checked (Email Bison or database error); None when it was
    error: str | None = None

    @property
    def max_abs_drift(self) -> int:
        return max((abs(m.drift) for m in self.metrics), default=0)


class ReconcileReport(msgspec.Struct, kw_only=True, frozen=True):
    instance: str
    #: "YYYY-MM", or None for each workspace's current local month
    month: str | None
    checked_at: datetime
    workspaces: list[WorkspaceReconciliation]

    @property
    def errors(self) -> list[WorkspaceReconciliation]:
        return [w for w in self.workspaces if w.error is not None]


def parse_month(text: str) -> date:
    """`YYYY-MM` -> the first day of that month."""
    try:
        year, month = (int(part) for part in text.strip().split("-"))
        return date(year, month, 1)
    except ValueError:
        raise ValueError(f"expected a month as YYYY-MM, got {text!r}") from None


def month_period(month: date | None, timezone: str, now: datetime) -> tuple[date, date] | None:
    """The workspace-local period to compare: `month` (any day of it; None = the current local month) from its
    first day to its last day, or to today while it is the current month. None when the month has not started."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    first = (month or today).replace(day=1)
    if first > today:
        return None
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return first, min(last, today)


def bison_values(stats: WorkspaceStats) -> dict[str, int]:
    """Email Bison's stats mapped onto our metric names (see METRIC_MAP), only those it reported: a metric whose
    field is missing (real instances have no `replied`) is left out, so no drift is ever recorded against it."""
    values: dict[str, int] = {}
    for metric, field in METRIC_MAP.items():
        value = getattr(stats, field)
        if value is not None:
            values[metric] = max(0, int(value))
    return values


async def attach_workspace_keys(
    client: BisonClient,
    store: Store,
    environ: Mapping[str, str] | None = None,
    *,
    instance: str | None = None,
) -> int:
    """Give `client` the workspace-scoped Email Bison keys of `instance`'s workspaces (default: the host of the
    client's base URL) named by `workspace_credentials.bison_api_key_ref` (env var NAMES; the keys themselves live
    only in the environment), as the poller does. Returns how many were attached."""
    refs = await workspace_key_refs(store, instance_host(instance or str(client.base_url)))
    return add_workspace_keys(client, refs, os.environ if environ is None else environ)


async def reconcile_workspace(
    store: Store,
    client: BisonClient,
    workspace: WorkspaceRow,
    period: tuple[date, date],
    checked_at: datetime,
) -> WorkspaceReconciliation:
    """Fetch one workspace's Email Bison stats for `period` and record the drift. Errors are reported, not raised."""
    start, end = period
    base: dict[str, Any] = {
        "workspace_id": workspace.id,
        "bison_workspace_id": workspace.bison_workspace_id,
        "workspace_name": workspace.name,
        "timezone": workspace.timezone,
        "period_start": start,
        "period_end": end,
    }
    try:
        async with client.workspace(workspace.bison_workspace_id) as ws:
            stats = await ws.workspace_stats(start, end)
    except BisonError as exc:
        log.warning("reconcile %s: Email Bison stats failed: %s", workspace.name, exc)
        return WorkspaceReconciliation(**base, error=f"email bison: {exc}")
    try:
        drift = await api.record_metric_drift(store, workspace.id, period, bison_values(stats), checked_at)
    except StoreError as exc:
        log.warning("reconcile %s: recording drift failed: %s", workspace.name, exc)
        return WorkspaceReconciliation(**base, error=f"database: {exc}")
    return WorkspaceReconciliation(**base, metrics=drift)


async def reconcile(
    store: Store,
    client: BisonClient,
    *,
    instance: str | None = None,
    month: date | None = None,
    now: datetime | None = None,
    bison_workspace_ids: Sequence[int] | None = None,
    concurrency: int = 8,
) -> ReconcileReport:
    """Compare and record drift for every active workspace of `instance` (default: the host of the client's base
    URL) over `month` (None: each workspace's current local month). Never modifies the webhook counters.

    Workspaces with their own Email Bison key run in parallel (up to `concurrency`); workspaces behind the shared
    super-admin key are serialized by the client itself (switch-workspace is server-side state).
    """
    inst = instance_host(instance or str(client.base_url))
    checked_at = (now or datetime.now(UTC)).astimezone(UTC)
    wanted = {int(i) for i in bison_workspace_ids} if bison_workspace_ids is not None else None
    rows = [
        w for w in await api.workspaces(store, inst, active=True) if wanted is None or w.bison_workspace_id in wanted
    ]
    rows.sort(key=lambda w: w.bison_workspace_id)
    slots = asyncio.Semaphore(max(1, concurrency))

    async def one(w: WorkspaceRow) -> WorkspaceReconciliation | None:
        period = month_period(month, w.timezone, checked_at)
        if period is None:
            return None
        async with slots:
            return await reconcile_workspace(store, client, w, period, checked_at)

    results = await asyncio.gather(*(one(w) for w in rows))
    return ReconcileReport(
        instance=inst,
        month=month.strftime("%Y-%m") if month else None,
        checked_at=checked_at,
        workspaces=[r for r in results if r is not None],
    )


async def run_reconcile_job(
    store: Store, client: BisonClient, *, instance: str | None = None, now: datetime | None = None
) -> list[ReconcileReport]:
    """The scheduled job: (re)attach the workspace keys, reconcile the current month, plus the previous one during
    the first 2 days of a month (Email Bison retries failed deliveries for up to a day, so the last day of a month
    settles late)."""
    at = now or datetime.now(UTC)
    try:
        await attach_workspace_keys(client, store, instance=instance)
    except StoreError as exc:  # the super-admin key still works
        log.warning("reconcile: workspace keys unavailable: %s", exc)
    reports = [await reconcile(store, client, instance=instance, now=at)]
    if at.day <= 2:
        previous = (at.date().replace(day=1) - timedelta(days=1)).replace(day=1)
        reports.append(await reconcile(store, client, instance=instance, month=previous, now=at))
    return reports

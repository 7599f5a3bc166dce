"""Provider performance snapshots, reply-rate drop detection and mailbox status (disconnect-rate) statistics.

Over the SQL calls of `bisonsync.store.api`, so they behave the same over `PostgresStore` and `SupabaseStore`:

- `snapshot_providers(store, day)` writes the day's snapshot of `aggregate_provider_stats()` into
  `provider_performance_history` (idempotent: a re-run of the same day replaces that day's rows) and returns it;
- `detect_reply_rate_drops(store, as_of, threshold_pct)` compares each provider's snapshot of `as_of` with its
  most recent EARLIER snapshot (not necessarily yesterday) and reports relative drops strictly above the
  threshold, only where the earlier rate was above 0 (spec §5.5);
- `account_status_stats` / `account_status_by_workspace` give the Connected / Disconnected / Failed /
  Not connected buckets and `disconnect_rate = (Disconnected + Failed) / total * 100` (spec §4.11).

Snapshot dates are UTC calendar dates unless given: provider rows aggregate every workspace of an instance, so
no workspace time zone applies.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import TypeVar

import msgspec

from bisonsync.store import Store, api
from bisonsync.store.rows import AccountStatusStats, ProviderSnapshot, ReplyRateDrop, WorkspaceAccountStats

__all__ = [
    "DEFAULT_DROP_THRESHOLD_PCT",
    "AccountStatusStats",
    "DailySnapshotReport",
    "ProviderSnapshot",
    "ReplyRateDrop",
    "SnapshotResult",
    "WorkspaceAccountStats",
    "account_status_by_workspace",
    "account_status_stats",
    "detect_reply_rate_drops",
    "provider_snapshots",
    "run_daily_snapshot",
    "snapshot_providers",
    "utc_today",
]

T = TypeVar("T")

#: spec §7: "provider reply-rate drop > 20%"
DEFAULT_DROP_THRESHOLD_PCT = 20.0


def utc_today() -> date:
    return datetime.now(UTC).date()


class SnapshotResult(msgspec.Struct, kw_only=True, frozen=True):
    snapshot_date: date
    #: (provider, instance) rows inserted or updated by this run
    rows_written: int
    providers: list[ProviderSnapshot]


class DailySnapshotReport(msgspec.Struct, kw_only=True, frozen=True):
    snapshot: SnapshotResult
    drops: list[ReplyRateDrop]


async def provider_snapshots(store: Store, snapshot_date: date) -> list[ProviderSnapshot]:
    """The stored snapshot rows of one day, ordered by instance and provider."""
    return await api.provider_snapshots(store, snapshot_date)


async def snapshot_providers(store: Store, snapshot_date: date | None = None) -> SnapshotResult:
    """Snapshot `aggregate_provider_stats()` for `snapshot_date` (default: today, UTC). Idempotent."""
    day = snapshot_date or utc_today()
    written = await api.snapshot_provider_performance(store, day)
    providers = await provider_snapshots(store, day)
    return SnapshotResult(snapshot_date=day, rows_written=written, providers=providers)


async def detect_reply_rate_drops(
    store: Store, as_of: date | None = None, threshold_pct: float = DEFAULT_DROP_THRESHOLD_PCT
) -> list[ReplyRateDrop]:
    """Providers whose reply rate on `as_of` (default today, UTC) fell more than `threshold_pct` percent
    (relative, strictly greater) below their most recent earlier snapshot whose rate was above 0."""
    if threshold_pct < 0:
        raise ValueError("threshold_pct must be >= 0")
    day = as_of or utc_today()
    drops = await api.check_provider_reply_rate_drop(store, day, threshold_pct)
    return sorted(drops, key=lambda d: (-d.drop_percentage, d.instance, d.email_provider))


async def run_daily_snapshot(
    store: Store, snapshot_date: date | None = None, threshold_pct: float = DEFAULT_DROP_THRESHOLD_PCT
) -> DailySnapshotReport:
    """The scheduled job: snapshot the day, then detect drops against the previous snapshots. Safe to run hourly
    (the day's rows are replaced) and from several replicas (the SQL function serialises on an advisory lock)."""
    snapshot = await snapshot_providers(store, snapshot_date)
    drops = await detect_reply_rate_drops(store, snapshot.snapshot_date, threshold_pct)
    return DailySnapshotReport(snapshot=snapshot, drops=drops)


async def account_status_stats(store: Store, workspace_id: str | uuid.UUID | None = None) -> AccountStatusStats:
    """Status buckets and disconnect rate of one workspace, or of every workspace together (None)."""
    ws = str(workspace_id) if workspace_id is not None else None
    return await api.get_account_status_stats(store, ws)


async def account_status_by_workspace(store: Store, *, active_only: bool = False) -> list[WorkspaceAccountStats]:
    """Status buckets and disconnect rate of every workspace, highest disconnect rate first."""
    stats = await api.account_status_by_workspace(store)
    if active_only:
        stats = [s for s in stats if s.active]
    return sorted(stats, key=lambda s: (-s.disconnect_rate, s.workspace_name))

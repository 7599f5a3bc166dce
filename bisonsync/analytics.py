"""Provider performance snapshots, reply-rate drop detection and mailbox status (disconnect-rate) statistics.

Thin typed wrappers over the SQL functions of `supabase/migrations` (20261129000300 and 20261129000700), so they
behave the same over `PostgresStore` and `SupabaseStore`:

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
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import msgspec

from bisonsync.store import Store

T = TypeVar("T")

#: spec §7: "provider reply-rate drop > 20%"
DEFAULT_DROP_THRESHOLD_PCT = 20.0


def utc_today() -> date:
    return datetime.now(UTC).date()


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


def convert_rows(rows: Iterable[Mapping[str, Any]], type_: type[T]) -> list[T]:
    """Rows from either store (asyncpg: Decimal/date/UUID; PostgREST: JSON numbers/strings) as `type_`."""
    return [msgspec.convert({k: _plain(v) for k, v in row.items()}, type_, strict=False) for row in rows]


class ProviderSnapshot(msgspec.Struct, kw_only=True, frozen=True):
    """One row of `provider_performance_history`: a (provider, instance) on one day."""

    email_provider: str
    instance: str
    snapshot_date: date
    total_accounts: int
    active_accounts: int
    total_sent: int
    total_replies: int
    unique_replies: int
    total_bounces: int
    #: sum(unique replies) / sum(sent) * 100 over every live mailbox of the provider (volume-weighted)
    avg_reply_rate: float
    avg_emails_per_account: float
    total_daily_limit: int
    total_volume_capacity: int
    utilization_percentage: float


class SnapshotResult(msgspec.Struct, kw_only=True, frozen=True):
    snapshot_date: date
    #: (provider, instance) rows inserted or updated by this run
    rows_written: int
    providers: list[ProviderSnapshot]


class ReplyRateDrop(msgspec.Struct, kw_only=True, frozen=True):
    email_provider: str
    instance: str
    snapshot_date: date
    current_rate: float
    previous_rate: float
    #: the most recent snapshot before `snapshot_date` (a gap of several days is compared as it is)
    previous_snapshot_date: date
    #: (previous - current) / previous * 100, strictly above `threshold_pct`
    drop_percentage: float
    threshold_pct: float


class DailySnapshotReport(msgspec.Struct, kw_only=True, frozen=True):
    snapshot: SnapshotResult
    drops: list[ReplyRateDrop]


class AccountStatusStats(msgspec.Struct, kw_only=True, frozen=True):
    """Mailbox status buckets over live (not deleted) mailboxes. 'Not connected' is its own bucket."""

    total: int
    connected: int
    disconnected: int
    failed: int
    not_connected: int
    #: (disconnected + failed) / total * 100, 0 when there are no mailboxes
    disconnect_rate: float
    #: statuses real instances also report (counted in total, in no other bucket)
    pending_move: int = 0
    pending_deletion: int = 0
    #: any status not known yet (kept as sent)
    other: int = 0
    #: None: every workspace (a mailbox shared by several workspaces of one instance counted once)
    workspace_id: str | None = None


class WorkspaceAccountStats(msgspec.Struct, kw_only=True, frozen=True):
    workspace_id: str
    workspace_name: str
    instance: str
    active: bool
    total: int
    connected: int
    disconnected: int
    failed: int
    not_connected: int
    disconnect_rate: float
    pending_move: int = 0
    pending_deletion: int = 0
    other: int = 0


async def provider_snapshots(store: Store, snapshot_date: date) -> list[ProviderSnapshot]:
    """The stored snapshot rows of one day, ordered by instance and provider."""
    rows = await store.select("provider_performance_history", filters={"snapshot_date": snapshot_date})
    snaps = convert_rows(rows, ProviderSnapshot)
    return sorted(snaps, key=lambda s: (s.instance, s.email_provider))


async def snapshot_providers(store: Store, snapshot_date: date | None = None) -> SnapshotResult:
    """Snapshot `aggregate_provider_stats()` for `snapshot_date` (default: today, UTC). Idempotent."""
    day = snapshot_date or utc_today()
    written = await store.rpc("snapshot_provider_performance", {"p_snapshot_date": day})
    providers = await provider_snapshots(store, day)
    return SnapshotResult(snapshot_date=day, rows_written=int(written or 0), providers=providers)


async def detect_reply_rate_drops(
    store: Store, as_of: date | None = None, threshold_pct: float = DEFAULT_DROP_THRESHOLD_PCT
) -> list[ReplyRateDrop]:
    """Providers whose reply rate on `as_of` (default today, UTC) fell more than `threshold_pct` percent
    (relative, strictly greater) below their most recent earlier snapshot whose rate was above 0."""
    if threshold_pct < 0:
        raise ValueError("threshold_pct must be >= 0")
    day = as_of or utc_today()
    rows = await store.rpc_rows("check_provider_reply_rate_drop", {"p_threshold_pct": threshold_pct, "p_as_of": day})
    extra = {"snapshot_date": day, "threshold_pct": float(threshold_pct)}
    drops = convert_rows(({**row, **extra} for row in rows), ReplyRateDrop)
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
    rows = await store.rpc_rows("get_account_status_stats", {"p_workspace_id": ws})
    row = dict(rows[0]) if rows else {}
    for key in ("total", "connected", "disconnected", "failed", "not_connected", "disconnect_rate"):
        row.setdefault(key, 0)
    row["workspace_id"] = ws
    return convert_rows([row], AccountStatusStats)[0]


async def account_status_by_workspace(store: Store, *, active_only: bool = False) -> list[WorkspaceAccountStats]:
    """Status buckets and disconnect rate of every workspace, highest disconnect rate first."""
    rows = await store.rpc_rows("account_status_by_workspace", {})
    stats = convert_rows(rows, WorkspaceAccountStats)
    if active_only:
        stats = [s for s in stats if s.active]
    return sorted(stats, key=lambda s: (-s.disconnect_rate, s.workspace_name))

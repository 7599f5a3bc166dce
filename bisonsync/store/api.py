"""Every call the library makes to the database, in one place: one typed async function per SQL function (and per
table read or write), over the `Store.rpc` / `rpc_rows` / `select` / `upsert` primitives of either store.

Each function declares the SQL function it calls and the argument names it may pass (`SqlFunction`, collected in
`FUNCTIONS`; tables and their columns in `TABLES`). A test checks every declaration against `pg_proc` and the
catalog of a migrated database, so a call whose SQL function or argument was renamed fails there, not in
production. A call passing a name it did not declare raises `TypeError` before reaching the database.

Each call is one store round trip (one transaction). Arguments of type `bytes` are JSON documents; datetimes and
UUIDs are passed as Python objects (each store encodes them for its wire). Results are decoded into the msgspec
Structs of `bisonsync.store.rows`, statuses into their `Literal` types.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

import msgspec

from bisonsync.store.base import IngestRequest, Store
from bisonsync.store.rows import (
    AccountStatusStats,
    AlertLogRow,
    ClaimedAlert,
    DeliveryRef,
    DeliveryStatus,
    FailedDelivery,
    Heartbeat,
    IngestOutcome,
    KeyRef,
    KeyStatus,
    MailboxTransition,
    MetricDrift,
    PageResult,
    Ping,
    ProviderSnapshot,
    ReplayOutcome,
    ReplyRateDrop,
    RunResult,
    RunStart,
    SendResult,
    StoredKey,
    StoreResult,
    SyncFailure,
    TokenWorkspace,
    WebhookSilence,
    WorkspaceAccountStats,
    WorkspaceProgress,
    WorkspaceRow,
)

T = TypeVar("T")

#: metric names `increment_metric` accepts (canonical, then the predecessor's aliases)
METRICS = ("emails_sent", "replies", "interested", "bounced", "unsubscribed")


# -- the registry ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SqlFunction:
    """A SQL function in `public` the library calls, with every argument name it may pass."""

    name: str
    args: frozenset[str]
    #: set-returning (`returns table` / `setof`): called through `rpc_rows`
    rows: bool = False

    def _checked(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        if not args.keys() <= self.args:
            raise TypeError(f"{self.name}: undeclared arguments {sorted(args.keys() - self.args)}")
        return args

    async def call(self, store: Store, args: Mapping[str, Any]) -> Any:
        """The function's JSON (or scalar) result."""
        return await store.rpc(self.name, self._checked(args))

    async def call_rows(self, store: Store, args: Mapping[str, Any]) -> list[dict[str, Any]]:
        return await store.rpc_rows(self.name, self._checked(args))


@dataclass(frozen=True, slots=True)
class SqlTable:
    """A table in `public` the library reads or writes directly, with every column it names."""

    name: str
    columns: frozenset[str]
    #: the Struct its rows are read into (each field a column of the table)
    row: type[msgspec.Struct] | None = None

    def _checked(self, columns: Iterable[str]) -> None:
        unknown = set(columns) - self.columns
        if unknown:
            raise TypeError(f"{self.name}: undeclared columns {sorted(unknown)}")

    async def select(
        self, store: Store, filters: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        self._checked(filters or {})
        return await store.select(self.name, filters=filters, limit=limit)

    async def upsert(self, store: Store, rows: Sequence[Mapping[str, Any]], on_conflict: str) -> int:
        self._checked(c for row in rows for c in row)
        self._checked(c.strip() for c in on_conflict.split(","))
        return await store.upsert(self.name, rows, on_conflict)


#: SQL function name -> declaration, for every function this module calls
FUNCTIONS: dict[str, SqlFunction] = {}
#: table name -> declaration, for every table this module reads or writes
TABLES: dict[str, SqlTable] = {}


def _function(name: str, *args: str, rows: bool = False) -> SqlFunction:
    if name in FUNCTIONS:
        raise ValueError(f"SQL function {name} declared twice")
    FUNCTIONS[name] = fn = SqlFunction(name, frozenset(args), rows)
    return fn


def _table(name: str, *columns: str, row: type[msgspec.Struct] | None = None) -> SqlTable:
    if name in TABLES:
        raise ValueError(f"table {name} declared twice")
    TABLES[name] = table = SqlTable(name, frozenset(columns), row)
    return table


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


def _convert(data: Any, type_: type[T]) -> T:
    return msgspec.convert(data, type_, strict=False)


def convert_rows(rows: Iterable[Mapping[str, Any]], type_: type[T]) -> list[T]:
    """Rows from either store (asyncpg: Decimal/date/UUID; PostgREST: JSON numbers/strings) as `type_`."""
    return [msgspec.convert({k: _plain(v) for k, v in row.items()}, type_, strict=False) for row in rows]


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


# -- ledger and ingest ----------------------------------------------------------------------------------------------

_INGEST_DELIVERY = _function(
    "ingest_delivery",
    "p_dedup_key",
    "p_instance",
    "p_bison_workspace_id",
    "p_workspace_name",
    "p_event_type",
    "p_payload",
    "p_received_at",
    "p_processing_ms",
    "p_token_hash",
    "p_legacy_keys",
)


async def ingest(store: Store, req: IngestRequest) -> IngestOutcome:
    """Record one delivery in the ledger and, only if it is new, apply its effects (one transaction)."""
    args: dict[str, Any] = {
        "p_dedup_key": req.dedup_key,
        "p_instance": req.instance,
        "p_bison_workspace_id": req.bison_workspace_id,
        "p_workspace_name": req.workspace_name,
        "p_event_type": req.event_type,
        "p_payload": req.payload_json,
        "p_received_at": req.received_at,
    }
    if req.processing_ms is not None:
        args["p_processing_ms"] = req.processing_ms
    if req.token_hash is not None:
        args["p_token_hash"] = req.token_hash
    if req.legacy_keys:
        args["p_legacy_keys"] = list(req.legacy_keys)
    return _convert(await _INGEST_DELIVERY.call(store, args), IngestOutcome)


_RECORD_REJECTED = _function("record_rejected_delivery", "p_event_type", "p_workspace_id", "p_error", "p_received_at")


async def record_rejected(
    store: Store, event_type: str, error: str, workspace_id: str | None = None, received_at: datetime | None = None
) -> None:
    """Ledger a delivery that cannot be applied (no payload kept)."""
    args: dict[str, Any] = {"p_event_type": event_type, "p_workspace_id": workspace_id, "p_error": error}
    if received_at is not None:
        args["p_received_at"] = received_at
    await _RECORD_REJECTED.call(store, args)


_RECORD_FAILED = _function(
    "record_failed_delivery",
    "p_dedup_key",
    "p_instance",
    "p_bison_workspace_id",
    "p_workspace_name",
    "p_event_type",
    "p_payload",
    "p_error",
    "p_received_at",
    "p_processing_ms",
)


async def record_failed(store: Store, req: IngestRequest, error: str) -> FailedDelivery:
    """Ledger a delivery whose ingest failed, payload kept: its next retry (same dedup key) applies it once."""
    result = await _RECORD_FAILED.call(
        store,
        {
            "p_dedup_key": req.dedup_key,
            "p_instance": req.instance,
            "p_bison_workspace_id": req.bison_workspace_id,
            "p_workspace_name": req.workspace_name,
            "p_event_type": req.event_type,
            "p_payload": req.payload_json,
            "p_error": error[:2000],
            "p_received_at": req.received_at,
            "p_processing_ms": req.processing_ms,
        },
    )
    return _convert(result, FailedDelivery)


_REPLAY_DELIVERY = _function("replay_delivery", "p_delivery_id")


async def replay_delivery(store: Store, delivery_id: int) -> ReplayOutcome:
    """Apply a ledgered delivery again (`failed` or `ignored`); an applied one is returned unchanged."""
    return _convert(await _REPLAY_DELIVERY.call(store, {"p_delivery_id": delivery_id}), ReplayOutcome)


_LIST_DELIVERIES = _function("list_deliveries", "p_status", "p_since", "p_until", "p_event_type", "p_limit", rows=True)


async def list_deliveries(
    store: Store,
    status: DeliveryStatus,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    event_type: str | None = None,
    limit: int = 1000,
) -> list[DeliveryRef]:
    """Ledger rows with `status` received in [since, until), oldest first (the replay candidates)."""
    args = {"p_status": status, "p_since": since, "p_until": until, "p_event_type": event_type, "p_limit": limit}
    return convert_rows(await _LIST_DELIVERIES.call_rows(store, args), DeliveryRef)


_PRUNE_LEDGER = _function("prune_ledger")
_SETTINGS = _table("bisonsync_settings", "key", "value")


async def set_setting(store: Store, key: str, value: Any) -> None:
    """Write an operator setting the SQL jobs read (`bisonsync_settings`)."""
    await _SETTINGS.upsert(store, [{"key": key, "value": value}], "key")


async def prune_ledger(store: Store) -> int:
    """Null the payloads of deliveries older than the retention `bisonsync_settings` holds; how many."""
    return int(await _PRUNE_LEDGER.call(store, {}) or 0)


_PING = _function("bisonsync_ping")


async def ping(store: Store) -> Ping:
    """The database answers and reports its newest applied migration."""
    return _convert(await _PING.call(store, {}), Ping)


# -- workspaces and tokens ------------------------------------------------------------------------------------------

_UPSERT_WORKSPACE = _function("upsert_workspace", "p_instance", "p_bison_workspace_id", "p_name", "p_timezone")


async def upsert_workspace(
    store: Store, instance: str, bison_workspace_id: int, name: str, timezone: str | None = None
) -> str:
    """Register (or rename) a workspace by its tenant key; returns its uuid."""
    args: dict[str, Any] = {"p_instance": instance, "p_bison_workspace_id": bison_workspace_id, "p_name": name}
    if timezone is not None:
        args["p_timezone"] = timezone
    return str(await _UPSERT_WORKSPACE.call(store, args))


_WORKSPACES = _table("workspaces", "instance", "bison_workspace_id", "active", row=WorkspaceRow)


async def workspaces(
    store: Store, instance: str, *, active: bool | None = None, bison_workspace_id: int | None = None
) -> list[WorkspaceRow]:
    """The registered workspaces of `instance` (only active or inactive ones, or one by its Email Bison id)."""
    filters: dict[str, Any] = {"instance": instance}
    if active is not None:
        filters["active"] = active
    if bison_workspace_id is not None:
        filters["bison_workspace_id"] = bison_workspace_id
    return convert_rows(await _WORKSPACES.select(store, filters), WorkspaceRow)


_SET_WEBHOOK_TOKEN = _function("set_webhook_token", "p_workspace_id", "p_token_hash")


async def set_webhook_token(store: Store, workspace_id: str, token_hash: str | None) -> None:
    """Store (None: clear) the sha256 of a workspace's webhook token."""
    await _SET_WEBHOOK_TOKEN.call(store, {"p_workspace_id": workspace_id, "p_token_hash": token_hash})


_CREDENTIALS = _table("workspace_credentials", "workspace_id", "webhook_token_hash")


async def webhook_token_hash(store: Store, workspace_id: str) -> str | None:
    """The stored sha256 of the workspace's webhook token, if one is set."""
    rows = await _CREDENTIALS.select(store, {"workspace_id": workspace_id}, limit=1)
    value = rows[0].get("webhook_token_hash") if rows else None
    return str(value) if value else None


_RESOLVE_WEBHOOK_TOKEN = _function("resolve_webhook_token", "p_token_hash", rows=True)


async def resolve_webhook_token(store: Store, token_hash: str) -> TokenWorkspace | None:
    """The workspace whose webhook token has this sha256, if any."""
    rows = await _RESOLVE_WEBHOOK_TOKEN.call_rows(store, {"p_token_hash": token_hash})
    return convert_rows(rows[:1], TokenWorkspace)[0] if rows else None


# -- metrics and reconciliation -------------------------------------------------------------------------------------

_INCREMENT_METRIC = _function("increment_metric", "p_workspace_id", "p_metric_name", "p_increment_by", "p_at")


async def increment_metric(
    store: Store, workspace_id: uuid.UUID | str, metric: str, by: int = 1, at: datetime | None = None
) -> int:
    """Atomically add `by` to a workspace's counter for the workspace-local day of `at` (default now)."""
    args: dict[str, Any] = {"p_workspace_id": str(workspace_id), "p_metric_name": metric, "p_increment_by": by}
    if at is not None:
        args["p_at"] = at
    return int(await _INCREMENT_METRIC.call(store, args))


_RECORD_METRIC_DRIFT = _function(
    "record_metric_drift", "p_workspace_id", "p_period_start", "p_period_end", "p_bison", "p_checked_at"
)


async def record_metric_drift(
    store: Store, workspace_id: str, period: tuple[date, date], bison: Mapping[str, int], checked_at: datetime
) -> list[MetricDrift]:
    """Record the webhook counters' drift from Email Bison's numbers over `period` (inclusive)."""
    start, end = period
    rows = await _RECORD_METRIC_DRIFT.call(
        store,
        {
            "p_workspace_id": workspace_id,
            "p_period_start": start,
            "p_period_end": end,
            "p_bison": msgspec.json.encode(bison),
            "p_checked_at": checked_at,
        },
    )
    return convert_rows(rows or [], MetricDrift)


# -- mailbox sync runs ----------------------------------------------------------------------------------------------

_START_SYNC_RUN = _function(
    "start_sync_run", "p_job", "p_holder", "p_lease_seconds", "p_instance", "p_max_resume_age_seconds"
)


async def start_sync_run(
    store: Store, job: str, holder: str, *, lease_seconds: int, instance: str, max_resume_age_s: int
) -> RunStart:
    """Take the job's lease and start (or resume) its run; `skipped` when another holder has it."""
    args = {
        "p_job": job,
        "p_holder": holder,
        "p_lease_seconds": lease_seconds,
        "p_instance": instance,
        "p_max_resume_age_seconds": max_resume_age_s,
    }
    return _convert(await _START_SYNC_RUN.call(store, args), RunStart)


_HEARTBEAT_SYNC_RUN = _function("heartbeat_sync_run", "p_run_id", "p_holder", "p_lease_seconds")


async def heartbeat_sync_run(store: Store, run_id: str, holder: str, *, lease_seconds: int) -> Heartbeat:
    """Renew the lease and publish progress; not ok when the lease is no longer `holder`'s."""
    args = {"p_run_id": run_id, "p_holder": holder, "p_lease_seconds": lease_seconds}
    return _convert(await _HEARTBEAT_SYNC_RUN.call(store, args), Heartbeat)


_RELEASE_SYNC_LEASE = _function("release_sync_lease", "p_job", "p_holder")


async def release_sync_lease(store: Store, job: str, holder: str) -> bool:
    """Give the lease up without finishing the run; False when `holder` did not hold it."""
    return bool(await _RELEASE_SYNC_LEASE.call(store, {"p_job": job, "p_holder": holder}))


_SYNC_MAILBOX_PAGE = _function(
    "sync_mailbox_page",
    "p_run_id",
    "p_workspace_id",
    "p_page",
    "p_next_page_url",
    "p_rows",
    "p_observed_at",
    "p_listing_total",
    "p_holder",
    "p_unverified",
)


async def sync_mailbox_page(
    store: Store,
    run_id: str,
    workspace_id: str,
    page: int,
    next_page_url: str | None,
    rows_json: bytes,
    *,
    holder: str,
    observed_at: datetime,
    listing_total: int | None,
    unverified: str | None = None,
) -> PageResult:
    """Apply one listing page to the mailbox cache and move the workspace's cursor (a replayed page is a no-op)."""
    args: dict[str, Any] = {
        "p_run_id": run_id,
        "p_workspace_id": workspace_id,
        "p_page": page,
        "p_next_page_url": next_page_url,
        "p_rows": rows_json,
        "p_observed_at": observed_at,
        "p_listing_total": listing_total,
        "p_holder": holder,
        "p_unverified": unverified,
    }
    return _convert(await _SYNC_MAILBOX_PAGE.call(store, args), PageResult)


_FINISH_WORKSPACE_SYNC = _function("finish_workspace_sync", "p_run_id", "p_workspace_id", "p_ok", "p_error", "p_holder")


async def finish_workspace_sync(
    store: Store, run_id: str, workspace_id: str, *, holder: str, ok: bool, error: str | None = None
) -> WorkspaceProgress:
    """Close one workspace of a run (done: sweep what the listing no longer has, when it was proven complete)."""
    args = {"p_run_id": run_id, "p_workspace_id": workspace_id, "p_ok": ok, "p_error": error, "p_holder": holder}
    return _convert(await _FINISH_WORKSPACE_SYNC.call(store, args), WorkspaceProgress)


_FINISH_SYNC_RUN = _function("finish_sync_run", "p_run_id", "p_holder")


async def finish_sync_run(store: Store, run_id: str, holder: str) -> RunResult:
    """Close the run (completed, partial or failed) and release its lease."""
    return _convert(await _FINISH_SYNC_RUN.call(store, {"p_run_id": run_id, "p_holder": holder}), RunResult)


_WORKSPACE_API_KEY_REFS = _function("workspace_api_key_refs", "p_instance", rows=True)


async def workspace_api_key_refs(store: Store, instance: str) -> list[KeyRef]:
    """The env var NAMES registered for the workspace-scoped Email Bison keys of `instance`."""
    rows = await _WORKSPACE_API_KEY_REFS.call_rows(store, {"p_instance": instance})
    return convert_rows(rows, KeyRef)


# -- workspace keys in Vault ----------------------------------------------------------------------------------------

_WORKSPACE_API_KEY_STATUS = _function("workspace_api_key_status", "p_instance", rows=True)


async def workspace_api_key_status(store: Store, instance: str) -> list[KeyStatus]:
    """Every active workspace of `instance` and its stored key's state, without the key."""
    rows = await _WORKSPACE_API_KEY_STATUS.call_rows(store, {"p_instance": instance})
    return convert_rows(rows, KeyStatus)


_WORKSPACE_API_KEYS = _function("workspace_api_keys", "p_instance", rows=True)


async def workspace_api_keys(store: Store, instance: str) -> list[StoredKey]:
    """The decrypted keys of the instance's active workspaces (handle with care: never log `token`)."""
    rows = await _WORKSPACE_API_KEYS.call_rows(store, {"p_instance": instance})
    return convert_rows(rows, StoredKey)


_STORE_WORKSPACE_API_KEY = _function(
    "store_workspace_api_key", "p_workspace_id", "p_token", "p_token_id", "p_replace", rows=True
)


async def store_workspace_api_key(
    store: Store, workspace_id: str, token: str, token_id: str | None, *, replace: bool
) -> StoreResult:
    """Put a workspace's key in Vault (an existing one is kept unless `replace`)."""
    args = {"p_workspace_id": workspace_id, "p_token": token, "p_token_id": token_id, "p_replace": replace}
    rows = await _STORE_WORKSPACE_API_KEY.call_rows(store, args)
    return convert_rows(rows[:1], StoreResult)[0]


_MARK_WORKSPACE_API_KEY = _function("mark_workspace_api_key", "p_workspace_id", "p_ok", "p_error")


async def mark_workspace_api_key(store: Store, workspace_id: str, ok: bool, error: str | None = None) -> None:
    """Record whether the stored key worked (a failed key is skipped until it is replaced)."""
    await _MARK_WORKSPACE_API_KEY.call(store, {"p_workspace_id": workspace_id, "p_ok": ok, "p_error": error})


# -- provider analytics and mailbox statistics ----------------------------------------------------------------------

_SNAPSHOT_PROVIDER_PERFORMANCE = _function("snapshot_provider_performance", "p_snapshot_date")


async def snapshot_provider_performance(store: Store, snapshot_date: date) -> int:
    """Write the day's snapshot of `aggregate_provider_stats()`; the number of rows written."""
    return int(await _SNAPSHOT_PROVIDER_PERFORMANCE.call(store, {"p_snapshot_date": snapshot_date}) or 0)


_PROVIDER_HISTORY = _table("provider_performance_history", "snapshot_date", row=ProviderSnapshot)


async def provider_snapshots(store: Store, snapshot_date: date) -> list[ProviderSnapshot]:
    """The stored snapshot rows of one day, ordered by instance and provider."""
    rows = await _PROVIDER_HISTORY.select(store, {"snapshot_date": snapshot_date})
    return sorted(convert_rows(rows, ProviderSnapshot), key=lambda s: (s.instance, s.email_provider))


_CHECK_REPLY_RATE_DROP = _function("check_provider_reply_rate_drop", "p_threshold_pct", "p_as_of", rows=True)


async def check_provider_reply_rate_drop(store: Store, as_of: date, threshold_pct: float) -> list[ReplyRateDrop]:
    """Providers whose reply rate on `as_of` fell more than `threshold_pct` % below their previous snapshot."""
    rows = await _CHECK_REPLY_RATE_DROP.call_rows(store, {"p_threshold_pct": threshold_pct, "p_as_of": as_of})
    extra = {"snapshot_date": as_of, "threshold_pct": float(threshold_pct)}
    return convert_rows(({**row, **extra} for row in rows), ReplyRateDrop)


_GET_ACCOUNT_STATUS_STATS = _function("get_account_status_stats", "p_workspace_id", rows=True)


async def get_account_status_stats(store: Store, workspace_id: str | None) -> AccountStatusStats:
    """Status buckets and disconnect rate of one workspace, or of every workspace together (None)."""
    rows = await _GET_ACCOUNT_STATUS_STATS.call_rows(store, {"p_workspace_id": workspace_id})
    row = dict(rows[0]) if rows else {}
    for key in ("total", "connected", "disconnected", "failed", "not_connected", "disconnect_rate"):
        row.setdefault(key, 0)
    row["workspace_id"] = workspace_id
    return convert_rows([row], AccountStatusStats)[0]


_ACCOUNT_STATUS_BY_WORKSPACE = _function("account_status_by_workspace", rows=True)


async def account_status_by_workspace(store: Store) -> list[WorkspaceAccountStats]:
    """Status buckets and disconnect rate of every workspace."""
    return convert_rows(await _ACCOUNT_STATUS_BY_WORKSPACE.call_rows(store, {}), WorkspaceAccountStats)


# -- alerts ---------------------------------------------------------------------------------------------------------

_RECORD_ALERTS = _function("record_alerts", "p_alerts")


async def record_alerts(store: Store, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Insert alerts whose key is new; returns those keys."""
    if not rows:
        return []
    keys = await _RECORD_ALERTS.call(store, {"p_alerts": msgspec.json.encode(list(rows))})
    return [str(k) for k in keys or []]


_CLAIM_ALERTS = _function("claim_alerts", "p_limit", "p_lease_seconds", "p_now")


async def claim_alerts(
    store: Store, *, limit: int = 500, lease_s: int = 120, now: datetime | None = None
) -> list[ClaimedAlert]:
    """Lease up to `limit` unsent alerts that are due to this process for `lease_s` seconds."""
    args: dict[str, Any] = {"p_limit": limit, "p_lease_seconds": lease_s}
    if now is not None:
        args["p_now"] = now
    return _convert(await _CLAIM_ALERTS.call(store, args) or [], list[ClaimedAlert])


_FINISH_ALERTS = _function("finish_alerts", "p_results")


async def finish_alerts(store: Store, results: Sequence[SendResult]) -> int:
    """Record what sending the claimed alerts did (sent, or retry at); how many rows changed."""
    if not results:
        return 0
    payload = msgspec.json.encode([msgspec.to_builtins(r) for r in results])
    return int(await _FINISH_ALERTS.call(store, {"p_results": payload}) or 0)


_ALERT_LOG = _table("alert_log", "sent_at", row=AlertLogRow)


async def unsent_alerts(store: Store) -> list[AlertLogRow]:
    """Alerts not sent yet, oldest first."""
    rows = [r for r in await _ALERT_LOG.select(store) if r.get("sent_at") is None]
    return sorted(convert_rows(rows, AlertLogRow), key=lambda r: r.first_seen)


_SCAN_STATE = _table("alert_scan_state", "scan", "scanned_until")


async def alert_scan_cursors(store: Store) -> dict[str, datetime]:
    """Each alert scan's cursor: how far it has looked."""
    rows = await _SCAN_STATE.select(store)
    return {str(r["scan"]): _convert(r["scanned_until"], datetime) for r in rows}


_ADVANCE_ALERT_SCAN = _function("advance_alert_scan", "p_scan", "p_until")


async def advance_alert_scan(store: Store, scan: str, until: datetime) -> None:
    """Move a scan's cursor forward (never back)."""
    await _ADVANCE_ALERT_SCAN.call(store, {"p_scan": scan, "p_until": until})


_ALERT_MAILBOX_TRANSITIONS = _function(
    "alert_mailbox_transitions", "p_since", "p_until", "p_workspace_ids", "p_limit", rows=True
)


async def alert_mailbox_transitions(
    store: Store, since: datetime, until: datetime, *, workspace_ids: bytes | None, limit: int
) -> list[MailboxTransition]:
    """Mailbox status changes into Disconnected/Failed recorded in [since, until), oldest first.
    `workspace_ids`: a JSON array of workspace uuids (None: every workspace)."""
    args = {"p_since": since, "p_until": until, "p_workspace_ids": workspace_ids, "p_limit": limit}
    return convert_rows(await _ALERT_MAILBOX_TRANSITIONS.call_rows(store, args), MailboxTransition)


_ALERT_WEBHOOK_SILENCE = _function("alert_webhook_silence", "p_now", "p_silence_minutes", "p_workspace_ids", rows=True)


async def alert_webhook_silence(
    store: Store, now: datetime, *, silence_minutes: int, workspace_ids: bytes | None
) -> list[WebhookSilence]:
    """Workspaces with no delivery for more than `silence_minutes` (after having had some)."""
    args = {"p_now": now, "p_silence_minutes": silence_minutes, "p_workspace_ids": workspace_ids}
    return convert_rows(await _ALERT_WEBHOOK_SILENCE.call_rows(store, args), WebhookSilence)


_ALERT_SYNC_FAILURES = _function("alert_sync_failures", "p_since", "p_until", "p_workspace_ids", "p_limit", rows=True)


async def alert_sync_failures(
    store: Store, since: datetime, until: datetime, *, workspace_ids: bytes | None, limit: int
) -> list[SyncFailure]:
    """Sync runs and run workspaces that failed in [since, until), oldest first."""
    args = {"p_since": since, "p_until": until, "p_workspace_ids": workspace_ids, "p_limit": limit}
    return convert_rows(await _ALERT_SYNC_FAILURES.call_rows(store, args), SyncFailure)

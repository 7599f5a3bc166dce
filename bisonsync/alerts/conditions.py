"""The alert conditions: scan the database, compose `Alert`s with their dedup keys and windows.

- `mailbox_disconnected` / `mailbox_failed`: `mailbox_status_history` transitions to Disconnected / Failed
  (webhook or poll) recorded since the scan cursor; one alert per mailbox, status and `mailbox_window_hours`
  window (epoch-aligned), so a flapping mailbox alerts once per window.
- `reply_rate_drop`: `check_provider_reply_rate_drop(threshold, today)` over the daily snapshots; one alert per
  provider, instance and snapshot day.
- `webhook_silence`: `webhook_activity.last_delivery_at` older than `silence_minutes`, for active workspaces that
  ever received a delivery; one alert per silence episode, repeated once per `silence_repeat_hours` while it lasts.
- `sync_run_failed`: finished `sync_runs` with status failed/partial since the scan cursor, one row per failed
  workspace (`sync_run_workspaces`); one alert per workspace (or per instance for a run-level failure) and
  `sync_window_hours` window.

Scans are read-only; `AlertWorker.run_checks` records the alerts (dedup by key) and then advances the cursors, so
a crash between the two re-reads rather than skips.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import msgspec

from bisonsync.alerts.log import scan_cursors
from bisonsync.alerts.models import (
    CONDITIONS,
    MAILBOX_DISCONNECTED,
    MAILBOX_FAILED,
    REPLY_RATE_DROP,
    SYNC_RUN_FAILED,
    WEBHOOK_SILENCE,
    Alert,
    AlertConfig,
    anchored_window,
    as_utc,
    bucket_start,
    window_tag,
)
from bisonsync.analytics import account_status_by_workspace, detect_reply_rate_drops
from bisonsync.store import Store, StoreError, api
from bisonsync.store.rows import MailboxTransition, SyncFailure, WebhookSilence

log = logging.getLogger("bisonsync.alerts")

#: scan cursors (alert_scan_state.scan)
SCAN_MAILBOXES = "mailbox_transitions"
SCAN_SYNC_RUNS = "sync_runs"


@dataclass
class Evaluation:
    alerts: list[Alert] = field(default_factory=list)
    #: scan -> the time it covered up to (advance the cursor there once the alerts are recorded)
    scanned: dict[str, datetime] = field(default_factory=dict)
    #: condition -> error text, for scans that failed (the others still ran)
    errors: dict[str, str] = field(default_factory=dict)


def _fmt(ts: datetime) -> str:
    return as_utc(ts).strftime("%Y-%m-%d %H:%M UTC")


def _ws_filter(workspace_ids: Collection[str | uuid.UUID] | None) -> bytes | None:
    return msgspec.json.encode(sorted(str(w) for w in workspace_ids)) if workspace_ids is not None else None


def _since(cursor: datetime | None, now: datetime, config: AlertConfig, scoped: bool) -> datetime:
    lookback = now - timedelta(minutes=config.initial_lookback_minutes)
    if scoped or cursor is None:
        return lookback
    floor = now - timedelta(hours=config.max_lookback_hours)
    return max(min(as_utc(cursor), now) - timedelta(minutes=config.scan_overlap_minutes), floor)


# -- composing alerts -----------------------------------------------------------------------------------------


def mailbox_alert(t: MailboxTransition, config: AlertConfig, rates: Mapping[str, str]) -> Alert:
    condition = MAILBOX_DISCONNECTED if t.new_status == "Disconnected" else MAILBOX_FAILED
    window = bucket_start(t.event_at, config.mailbox_window)
    email = t.email_address or f"sender #{t.bison_sender_id}"
    verb = "disconnected" if condition == MAILBOX_DISCONNECTED else "failed"
    fields = {
        "Workspace": t.workspace_name,
        "Mailbox": email,
        "Status": f"{t.old_status or 'new'} → {t.new_status}",
        "Since": _fmt(t.event_at),
        "Source": t.source,
    }
    if t.current_status and t.current_status != t.new_status:
        fields["Now"] = t.current_status
    if t.workspace_id in rates:
        fields["Workspace disconnect rate"] = rates[t.workspace_id]
    return Alert(
        key=f"{condition}:{t.workspace_id}:{t.bison_sender_id}:{window_tag(window)}",
        condition=condition,
        severity="critical",
        window_start=window,
        title=f"Account {verb}: {email} ({t.workspace_name})",
        workspace_id=t.workspace_id,
        workspace_name=t.workspace_name,
        subject=email,
        occurred_at=t.event_at,
        fields=fields,
    )


def silence_alert(s: WebhookSilence, now: datetime, config: AlertConfig) -> Alert:
    anchor = as_utc(s.last_delivery_at) + timedelta(minutes=config.silence_minutes)
    window = anchored_window(anchor, now, config.silence_repeat)
    hours, minutes = divmod(max(0, s.silent_minutes), 60)
    silent = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return Alert(
        key=f"{WEBHOOK_SILENCE}:{s.workspace_id}:{window_tag(s.last_delivery_at)}:{window_tag(window)}",
        condition=WEBHOOK_SILENCE,
        severity="warning",
        window_start=window,
        title=f"No webhook from Email Bison for {silent}: {s.workspace_name}",
        workspace_id=s.workspace_id,
        workspace_name=s.workspace_name,
        subject=s.workspace_name,
        occurred_at=s.last_delivery_at,
        fields={
            "Workspace": s.workspace_name,
            "Last delivery": _fmt(s.last_delivery_at),
            "Silent for": silent,
            "Threshold": f"{config.silence_minutes} min",
            "Last event": f"{s.last_event_type or '?'} ({s.last_status or '?'})",
            "Instance": s.instance,
        },
    )


def sync_alert(f: SyncFailure, config: AlertConfig) -> Alert:
    window = bucket_start(f.failed_at, config.sync_window)
    scope = f.workspace_id or f"run:{f.instance}"
    name = f.workspace_name or f"all workspaces of {f.instance}"
    fields = {"Workspace": name, "Run": f"{f.job} ({f.run_status})", "At": _fmt(f.failed_at), "Run id": f.run_id}
    if f.error:
        fields["Error"] = f.error[:300]
    return Alert(
        key=f"{SYNC_RUN_FAILED}:{scope}:{window_tag(window)}",
        condition=SYNC_RUN_FAILED,
        severity="warning" if f.run_status == "partial" else "critical",
        window_start=window,
        title=f"Mailbox sync failed: {name}",
        workspace_id=f.workspace_id,
        workspace_name=f.workspace_name,
        subject=name,
        occurred_at=f.failed_at,
        fields=fields,
    )


# -- scans ----------------------------------------------------------------------------------------------------


#: rows per transition / sync-failure scan; a full scan moves its cursor only to its last row
SCAN_LIMIT = 20_000


def _covered(rows: Sequence[Any], now: datetime, last: Callable[[Any], datetime]) -> datetime:
    return as_utc(last(rows[-1])) if len(rows) >= SCAN_LIMIT else now


async def _mailbox_alerts(
    store: Store, since: datetime, now: datetime, config: AlertConfig, ws: bytes | None
) -> tuple[list[Alert], datetime]:
    transitions = await api.alert_mailbox_transitions(store, since, now, workspace_ids=ws, limit=SCAN_LIMIT)
    if not transitions:
        return [], now
    rates: dict[str, str] = {}
    try:
        for s in await account_status_by_workspace(store):
            if s.total:
                rates[s.workspace_id] = f"{s.disconnect_rate:g}% ({s.disconnected + s.failed} of {s.total} mailboxes)"
    except StoreError as exc:  # enrichment only
        log.warning("alerts: disconnect rates unavailable: %s", exc)
    covered = _covered(transitions, now, lambda t: t.recorded_at)
    return [mailbox_alert(t, config, rates) for t in transitions], covered


async def _silence_alerts(
    store: Store, now: datetime, config: AlertConfig, ws: bytes | None
) -> tuple[list[Alert], datetime]:
    silent = await api.alert_webhook_silence(store, now, silence_minutes=config.silence_minutes, workspace_ids=ws)
    return [silence_alert(s, now, config) for s in silent], now


async def _drop_alerts(store: Store, now: datetime, config: AlertConfig) -> tuple[list[Alert], datetime]:
    day = as_utc(now).date()
    alerts = []
    for d in await detect_reply_rate_drops(store, day, config.drop_threshold_pct):
        window = datetime.combine(d.snapshot_date, time(), UTC)
        alerts.append(
            Alert(
                key=f"{REPLY_RATE_DROP}:{d.instance}:{d.email_provider}:{d.snapshot_date.isoformat()}",
                condition=REPLY_RATE_DROP,
                severity="warning",
                window_start=window,
                title=(
                    f"Reply rate of {d.email_provider} ({d.instance}) fell {d.drop_percentage:g}%: "
                    f"{d.previous_rate:g}% → {d.current_rate:g}%"
                ),
                subject=f"{d.email_provider} ({d.instance})",
                occurred_at=window,
                fields={
                    "Provider": d.email_provider,
                    "Instance": d.instance,
                    "Reply rate": f"{d.current_rate:g}% on {d.snapshot_date.isoformat()}",
                    "Before": f"{d.previous_rate:g}% on {d.previous_snapshot_date.isoformat()}",
                    "Drop": f"{d.drop_percentage:g}% (threshold {d.threshold_pct:g}%)",
                },
            )
        )
    return alerts, now


async def _sync_alerts(
    store: Store, since: datetime, now: datetime, config: AlertConfig, ws: bytes | None
) -> tuple[list[Alert], datetime]:
    failures = await api.alert_sync_failures(store, since, now, workspace_ids=ws, limit=SCAN_LIMIT)
    # oldest first: the window's first failure speaks for it (evaluate keeps the first alert of each key)
    alerts = [sync_alert(f, config) for f in failures]
    return alerts, _covered(failures, now, lambda f: f.failed_at) if failures else now


async def evaluate(
    store: Store,
    now: datetime | None = None,
    *,
    config: AlertConfig | None = None,
    workspace_ids: Collection[str | uuid.UUID] | None = None,
    conditions: Collection[str] | None = None,
    since: datetime | None = None,
) -> Evaluation:
    """Run the scans; a failing scan is logged and reported in `errors`, the others still run."""
    cfg = config or AlertConfig()
    at = as_utc(now or datetime.now(UTC))
    wanted = set(conditions) if conditions is not None else set(CONDITIONS)
    unknown = wanted - set(CONDITIONS)
    if unknown:
        raise ValueError(f"unknown alert conditions: {sorted(unknown)}")
    scoped = workspace_ids is not None or since is not None
    #: only a full, unscoped scan may move the cursors (a partial one would skip what it did not look at)
    advance = not scoped and conditions is None
    ws = _ws_filter(workspace_ids)
    result = Evaluation()
    cursors: dict[str, datetime] = {}
    if not scoped:
        try:
            cursors = await scan_cursors(store)
        except StoreError as exc:
            log.warning("alerts: scan cursors unavailable, using the initial lookback: %s", exc)

    def start(scan: str) -> datetime:
        return as_utc(since) if since is not None else _since(cursors.get(scan), at, cfg, scoped)

    jobs: list[tuple[str, str | None, Callable[[], Awaitable[tuple[list[Alert], datetime]]]]] = []
    if wanted & {MAILBOX_DISCONNECTED, MAILBOX_FAILED}:
        jobs.append(("mailbox", SCAN_MAILBOXES, lambda: _mailbox_alerts(store, start(SCAN_MAILBOXES), at, cfg, ws)))
    if WEBHOOK_SILENCE in wanted:
        jobs.append((WEBHOOK_SILENCE, None, lambda: _silence_alerts(store, at, cfg, ws)))
    if REPLY_RATE_DROP in wanted and workspace_ids is None:
        jobs.append((REPLY_RATE_DROP, None, lambda: _drop_alerts(store, at, cfg)))
    if SYNC_RUN_FAILED in wanted:
        jobs.append((SYNC_RUN_FAILED, SCAN_SYNC_RUNS, lambda: _sync_alerts(store, start(SCAN_SYNC_RUNS), at, cfg, ws)))

    for name, scan, job in jobs:
        try:
            alerts, covered = await job()
        except StoreError as exc:
            log.error("alerts: scan %s failed: %s", name, exc)
            result.errors[name] = str(exc)
            continue
        result.alerts.extend(a for a in alerts if a.condition in wanted)
        if scan is not None and advance:
            result.scanned[scan] = covered
    # one alert per key: the first occurrence (e.g. the first of a flapping mailbox's disconnects) speaks for it
    unique: dict[str, Alert] = {}
    for alert in result.alerts:
        unique.setdefault(alert.key, alert)
    result.alerts = list(unique.values())
    return result


async def evaluate_alerts(
    store: Store,
    now: datetime | None = None,
    *,
    config: AlertConfig | None = None,
    workspace_ids: Collection[str | uuid.UUID] | None = None,
    conditions: Collection[str] | None = None,
    since: datetime | None = None,
) -> list[Alert]:
    """Scan every condition (or `conditions`) as of `now` and return the alerts that hold, one per dedup key.

    Read-only: nothing is recorded or sent (see `AlertWorker.run_checks`). Transition scans start at their cursor
    (minus an overlap), or `since`, or `initial_lookback_minutes` ago; `workspace_ids` restricts every
    workspace-level scan (and skips the instance-wide reply-rate scan).
    """
    evaluation = await evaluate(
        store, now, config=config, workspace_ids=workspace_ids, conditions=conditions, since=since
    )
    return evaluation.alerts


def summarize(alerts: Sequence[Alert]) -> dict[str, Any]:
    """Counts per condition (for logs and CLI output)."""
    counts: dict[str, int] = {}
    for a in alerts:
        counts[a.condition] = counts.get(a.condition, 0) + 1
    return {"total": len(alerts), "by_condition": counts}

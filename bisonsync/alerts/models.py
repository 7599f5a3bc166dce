"""What an alert is, how its dedup key and window are formed, and the knobs (with their environment variables)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta

import msgspec

from bisonsync.retry import RetryPolicy

# Conditions (alert_log.condition).
MAILBOX_DISCONNECTED = "mailbox_disconnected"
MAILBOX_FAILED = "mailbox_failed"
REPLY_RATE_DROP = "reply_rate_drop"
WEBHOOK_SILENCE = "webhook_silence"
SYNC_RUN_FAILED = "sync_run_failed"
CONDITIONS: tuple[str, ...] = (MAILBOX_DISCONNECTED, MAILBOX_FAILED, REPLY_RATE_DROP, WEBHOOK_SILENCE, SYNC_RUN_FAILED)

#: how each condition is named in a Slack summary, singular and plural
CONDITION_LABELS: dict[str, tuple[str, str]] = {
    MAILBOX_DISCONNECTED: ("mailbox disconnected", "mailboxes disconnected"),
    MAILBOX_FAILED: ("mailbox failed", "mailboxes failed"),
    REPLY_RATE_DROP: ("reply-rate drop", "reply-rate drops"),
    WEBHOOK_SILENCE: ("workspace without webhooks", "workspaces without webhooks"),
    SYNC_RUN_FAILED: ("sync run failed", "sync runs failed"),
}

SEVERITIES = ("info", "warning", "critical")


class Alert(msgspec.Struct, kw_only=True, frozen=True):
    """One alert. `key` identifies the condition, its subject and its window: the same key is sent once."""

    key: str
    condition: str
    severity: str
    #: start of the dedup window this alert belongs to
    window_start: datetime
    #: one line, plain text (no Slack markup), e.g. "Account disconnected: rep@a.com (Client A)"
    title: str
    workspace_id: str | None = None
    workspace_name: str | None = None
    #: a short label for summary lists (the mailbox address, the provider, the workspace)
    subject: str | None = None
    #: when the underlying event happened
    occurred_at: datetime | None = None
    #: label -> value, shown as Block Kit fields (plain text; escaped when rendered)
    fields: dict[str, str] = msgspec.field(default_factory=dict)

    def row(self) -> dict[str, object]:
        """The `record_alerts` element for this alert."""
        return {
            "alert_key": self.key,
            "condition": self.condition,
            "severity": self.severity,
            "workspace_id": self.workspace_id,
            "window_start": self.window_start.isoformat(),
            "payload": msgspec.to_builtins(self),
        }


def as_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)


def bucket_start(ts: datetime, width: timedelta) -> datetime:
    """The start of the fixed, epoch-aligned window of `width` that contains `ts` (UTC)."""
    seconds = width.total_seconds()
    if seconds <= 0:
        raise ValueError("window width must be positive")
    epoch = as_utc(ts).timestamp()
    return datetime.fromtimestamp(math.floor(epoch / seconds) * seconds, UTC)


def anchored_window(anchor: datetime, now: datetime, width: timedelta) -> datetime:
    """The start of the window of `width` containing `now`, counting windows from `anchor` (not the epoch): a
    condition that starts at `anchor` alerts at once, then once per `width` while it lasts."""
    seconds = width.total_seconds()
    if seconds <= 0:
        raise ValueError("window width must be positive")
    start, at = as_utc(anchor), as_utc(now)
    if at <= start:
        return start
    k = math.floor((at - start).total_seconds() / seconds)
    return start + timedelta(seconds=k * seconds)


def window_tag(ts: datetime) -> str:
    return as_utc(ts).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """Alert knobs. `from_env` reads the `BISONSYNC_ALERT_*` variables listed in `ENV`."""

    #: webhook silence: no delivery for this many minutes (active workspaces that ever received one)
    silence_minutes: int = 60
    #: a silence that goes on is alerted again once per this many hours
    silence_repeat_hours: float = 24.0
    #: reply-rate drop: relative drop strictly above this percentage
    drop_threshold_pct: float = 20.0
    #: one alert per mailbox and status per window of this many hours (a flapping mailbox alerts once)
    mailbox_window_hours: float = 24.0
    #: one sync-failure alert per workspace per window of this many hours
    sync_window_hours: float = 6.0
    #: seconds between condition scans (the scheduled `run_checks`)
    check_interval_s: float = 60.0
    #: the first scan (no cursor yet) looks back this far
    initial_lookback_minutes: int = 60
    #: a scan never looks back further than this (a cursor from a long outage)
    max_lookback_hours: float = 24.0 * 7
    #: scans re-read this much before their cursor (transactions that committed late); dedup absorbs the overlap
    scan_overlap_minutes: int = 15
    #: the worker wakes this often to retry unsent alerts even when nothing new came
    retry_interval_s: float = 30.0
    #: after an alert arrives, wait this long for others to batch with it
    batch_delay_s: float = 1.0
    #: alerts claimed (and sent) per round
    claim_limit: int = 500
    #: lease on claimed alerts: another replica may take them after this
    lease_s: int = 120
    #: immediate attempts per message within one round (429/5xx/timeouts), with backoff from `send_backoff_s`
    send_attempts: int = 3
    send_backoff_s: float = 1.0
    #: longest Retry-After honoured within a round; longer ones are left to a later round
    retry_after_cap_s: float = 30.0
    #: after a failed round an alert is due again after this backoff, doubling with its attempts, up to the max
    resend_backoff_s: float = 60.0
    resend_backoff_max_s: float = 3600.0
    #: Slack request timeout
    http_timeout_s: float = 10.0
    #: in-memory queue bound (alerts beyond it are logged and re-found by the next scan)
    queue_max: int = 10_000
    #: lines listed per condition in a batched message
    list_max: int = 20

    ENV = {
        "silence_minutes": "BISONSYNC_ALERT_SILENCE_MINUTES",
        "silence_repeat_hours": "BISONSYNC_ALERT_SILENCE_REPEAT_HOURS",
        "drop_threshold_pct": "BISONSYNC_ALERT_DROP_THRESHOLD_PCT",
        "mailbox_window_hours": "BISONSYNC_ALERT_MAILBOX_WINDOW_HOURS",
        "sync_window_hours": "BISONSYNC_ALERT_SYNC_WINDOW_HOURS",
        "check_interval_s": "BISONSYNC_ALERT_CHECK_INTERVAL_S",
    }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> AlertConfig:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        types = {f.name: f.type for f in fields(cls)}
        for name, var in cls.ENV.items():
            raw = env.get(var, "").strip()
            if not raw:
                continue
            try:
                value: float | int = int(raw) if types[name] in ("int", int) else float(raw)
            except ValueError:
                raise ValueError(f"{var} must be a number, got {raw!r}") from None
            if value < 0 or (value == 0 and name != "drop_threshold_pct"):
                raise ValueError(f"{var} must be positive, got {raw!r}")
            values[name] = value
        values.update(overrides)
        return replace(cls(), **values)  # type: ignore[arg-type]

    @property
    def mailbox_window(self) -> timedelta:
        return timedelta(hours=self.mailbox_window_hours)

    @property
    def silence_repeat(self) -> timedelta:
        return timedelta(hours=self.silence_repeat_hours)

    @property
    def sync_window(self) -> timedelta:
        return timedelta(hours=self.sync_window_hours)

    def send_policy(self) -> RetryPolicy:
        """Tries of one message within a round."""
        return RetryPolicy(
            max_attempts=self.send_attempts,
            backoff_base_s=self.send_backoff_s,
            backoff_max_s=max(self.send_backoff_s, 8.0),
            retry_after_cap_s=self.retry_after_cap_s,
        )

    def resend_delay(self, attempts: int) -> float:
        """Seconds until an alert that has failed `attempts` times is due again (the same policy, across rounds)."""
        return RetryPolicy(backoff_base_s=self.resend_backoff_s, backoff_max_s=self.resend_backoff_max_s).ceiling(
            attempts
        )

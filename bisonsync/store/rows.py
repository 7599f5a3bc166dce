"""What the SQL functions return, as msgspec Structs: the result types of `bisonsync.store.api`.

Statuses the SQL writes are `Literal` types (their values are the `check` constraints of the tables they come
from), so a status the code does not know fails decoding instead of flowing on as a string. Unknown extra keys in
a JSON result are ignored (a newer migration may add some).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

import msgspec

#: `webhook_deliveries.status`: what became of a delivery
DeliveryStatus = Literal["applied", "duplicate", "ignored", "rejected", "failed"]
#: `sync_runs.status`
RunStatus = Literal["running", "completed", "partial", "failed"]
#: `sync_run_workspaces.status`
WorkspaceSyncStatus = Literal["pending", "running", "done", "failed"]
#: what `start_sync_run` did with the job's lease
RunStartStatus = Literal["started", "resumed", "skipped"]


# -- ledger -------------------------------------------------------------------------------------------------------


class IngestOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What `ingest_delivery` did: status is applied, duplicate, ignored or rejected."""

    status: DeliveryStatus
    delivery_id: int | None = None
    workspace_id: str | None = None
    duplicate_of: int | None = None
    effects: list[Any] = msgspec.field(default_factory=list)
    lead_id: str | None = None
    lead_action: str | None = None
    error: str | None = None


class ReplayOutcome(IngestOutcome, frozen=True, kw_only=True):
    """What `replay_delivery` did: the delivery applied again (an applied one is returned unchanged)."""

    #: False for a delivery that was applied already (nothing done)
    replayed: bool = False
    #: the ledger status before the replay
    previous_status: DeliveryStatus | None = None


class FailedDelivery(msgspec.Struct, frozen=True, kw_only=True):
    """What `record_failed_delivery` ledgered (payload kept: the sender's retry applies it once)."""

    status: Literal["failed"]
    delivery_id: int
    workspace_id: str | None = None
    #: the delivery it repeats (a retry of a delivery already in the ledger)
    duplicate_of: int | None = None


class DeliveryRef(msgspec.Struct, frozen=True, kw_only=True):
    """A ledger row `list_deliveries` selected for replay."""

    id: int
    event_type: str
    status: DeliveryStatus
    received_at: datetime
    workspace_id: str | None = None


class TokenWorkspace(msgspec.Struct, frozen=True, kw_only=True):
    """The workspace a per-workspace webhook token belongs to (`resolve_webhook_token`)."""

    workspace_id: str
    instance: str
    bison_workspace_id: int


class Ping(msgspec.Struct, frozen=True, kw_only=True):
    """`bisonsync_ping`: the database answers and has this newest applied migration version."""

    ok: bool
    schema_version: str | None = None


# -- tables --------------------------------------------------------------------------------------------------------


class WorkspaceRow(msgspec.Struct, frozen=True, kw_only=True):
    """A row of `workspaces` (the columns the library reads)."""

    id: str
    instance: str
    bison_workspace_id: int
    name: str
    timezone: str
    active: bool = True


class AlertLogRow(msgspec.Struct, frozen=True, kw_only=True):
    """A row of `alert_log` (the columns the CLI shows)."""

    id: int
    alert_key: str
    condition: str
    severity: str
    first_seen: datetime
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None


# -- sync runs -----------------------------------------------------------------------------------------------------


class WorkspaceProgress(msgspec.Struct, kw_only=True):
    """One workspace of a run, as `sync_run_workspaces` (joined with `workspaces`) has it."""

    workspace_id: str
    bison_workspace_id: int
    name: str
    status: WorkspaceSyncStatus
    pages_done: int = 0
    next_page_url: str | None = None
    mailboxes_seen: int = 0
    listing_total: int | None = None
    listing_changed: bool = False
    inserted: int = 0
    updated: int = 0
    status_changes: int = 0
    undeleted: int = 0
    deleted: int = 0
    priced: int = 0
    sweep: str | None = None
    error: str | None = None
    #: done workspaces: True when the listing was proven complete (swept), False when it was not (nothing swept)
    verified: bool | None = None
    #: why the listing could not be proven complete (first reason a page gave)
    listing_unverified: str | None = None
    #: live cached mailboxes when the run started (to start big workspaces first)
    cached_mailboxes: int = 0


class RunStart(msgspec.Struct, kw_only=True):
    """What `start_sync_run` decided: started, resumed (a dead holder's run) or skipped (someone holds the job)."""

    status: RunStartStatus
    job: str
    holder: str
    held_by: str | None = None
    run_id: str | None = None
    lease_expires_at: str | None = None
    resumed_count: int = 0
    workspaces: list[WorkspaceProgress] = msgspec.field(default_factory=list)


class Heartbeat(msgspec.Struct, kw_only=True, frozen=True):
    """`heartbeat_sync_run`: ok while the lease is still the caller's (then renewed)."""

    ok: bool
    run_id: str
    lease_expires_at: str | None = None
    #: when not ok: the run's status and who holds the job now
    status: RunStatus | None = None
    held_by: str | None = None


class PageResult(msgspec.Struct, kw_only=True):
    page: int
    replayed: bool
    rows: int
    inserted: int
    updated: int
    unchanged: int
    status_changes: int
    undeleted: int
    pages_done: int
    next_page_url: str | None = None
    mailboxes_seen: int = 0
    listing_total: int | None = None


class RunResult(msgspec.Struct, kw_only=True):
    run_id: str
    job: str
    status: RunStatus
    holder: str | None = None
    resumed_count: int = 0
    error: str | None = None
    totals: dict[str, int] = msgspec.field(default_factory=dict)
    workspaces: list[WorkspaceProgress] = msgspec.field(default_factory=list)
    already_finished: bool = False


class KeyRef(msgspec.Struct, kw_only=True, frozen=True):
    """A workspace's registered env var NAME for its own Email Bison key (`workspace_api_key_refs`)."""

    bison_workspace_id: int
    bison_api_key_ref: str


# -- workspace keys in Vault ---------------------------------------------------------------------------------------


class KeyStatus(msgspec.Struct, kw_only=True, frozen=True):
    """One active workspace and its stored key, without the key (`workspace_api_key_status`)."""

    workspace_id: str
    bison_workspace_id: int
    name: str
    has_key: bool
    token_id: str | None = None
    provisioned_at: datetime | None = None
    failed_at: datetime | None = None
    error: str | None = None
    #: the env var NAME an operator registered for this workspace (bison_api_key_ref), if any
    env_ref: str | None = None

    @property
    def healthy(self) -> bool:
        return self.has_key and self.failed_at is None


class StoredKey(msgspec.Struct, kw_only=True, frozen=True):
    """A decrypted workspace key (`workspace_api_keys`). Its repr leaves the key out."""

    workspace_id: str
    bison_workspace_id: int
    token: str
    token_id: str | None = None
    failed_at: datetime | None = None

    @property
    def failed(self) -> bool:
        return self.failed_at is not None

    @property
    def suffix(self) -> str:
        return "…" + self.token[-4:]

    def __repr__(self) -> str:
        return (
            f"StoredKey(workspace_id={self.workspace_id!r}, bison_workspace_id={self.bison_workspace_id}, "
            f"token={self.suffix!r}, token_id={self.token_id!r}, failed={self.failed})"
        )


class StoreResult(msgspec.Struct, kw_only=True, frozen=True):
    """`store_workspace_api_key`: stored (False: a key was kept, `replace` not asked) and the vault secret."""

    stored: bool
    secret_id: str
    previous_token_id: str | None = None


# -- analytics -----------------------------------------------------------------------------------------------------


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


class MetricDrift(msgspec.Struct, kw_only=True, frozen=True):
    workspace_id: str
    metric: str
    period_start: date
    period_end: date
    webhook_value: int
    bison_value: int
    #: webhook_value - bison_value
    drift: int
    #: drift / bison_value * 100; None when Bison says 0
    drift_pct: float | None
    checked_on: date
    checked_at: datetime


# -- alerts --------------------------------------------------------------------------------------------------------


class ClaimedAlert(msgspec.Struct, kw_only=True, frozen=True):
    """An unsent alert leased to this process by `claim_alerts`."""

    id: int
    alert_key: str
    condition: str
    severity: str
    workspace_id: str | None
    window_start: datetime
    payload: dict[str, Any]
    first_seen: datetime
    attempts: int = 0
    last_error: str | None = None
    #: NAME of the env var holding the workspace's Slack URL (workspace_credentials.slack_webhook_ref)
    slack_webhook_ref: str | None = None


class SendResult(msgspec.Struct, kw_only=True, frozen=True):
    """What sending one claimed alert did (`finish_alerts` input)."""

    id: int
    ok: bool
    tries: int
    error: str | None = None
    retry_at: datetime | None = None


class MailboxTransition(msgspec.Struct, kw_only=True, frozen=True):
    """A mailbox status change (`alert_mailbox_transitions`)."""

    history_id: int
    workspace_id: str
    workspace_name: str
    instance: str
    bison_sender_id: int
    email_address: str | None
    old_status: str | None
    new_status: str
    source: str
    event_at: datetime
    recorded_at: datetime
    current_status: str | None


class WebhookSilence(msgspec.Struct, kw_only=True, frozen=True):
    """A workspace whose deliveries stopped (`alert_webhook_silence`)."""

    workspace_id: str
    workspace_name: str
    instance: str
    last_delivery_at: datetime
    last_event_type: str | None
    last_status: str | None
    silent_minutes: int


class SyncFailure(msgspec.Struct, kw_only=True, frozen=True):
    """A failed sync run or workspace of a run (`alert_sync_failures`)."""

    run_id: str
    job: str
    instance: str
    run_status: RunStatus
    workspace_id: str | None
    workspace_name: str | None
    error: str | None
    failed_at: datetime

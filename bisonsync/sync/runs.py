"""Sync run records in Postgres: the job lease, the resumable per-workspace cursor, one call per page.

Thin typed wrappers over the SQL functions of `supabase/migrations/20261129000600_mailbox_sync.sql`; every call is
one store round trip (one transaction) and works the same through `PostgresStore` and `SupabaseStore`.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from bisonsync.bison import BisonClient, KeyKind
from bisonsync.retry import RetryPolicy, retry_call
from bisonsync.store import Store, StoreError, StoreUnavailable

log = logging.getLogger("bisonsync.sync")

T = TypeVar("T")

#: SQLSTATEs meaning "this poller no longer owns the run": stop, do not retry
LEASE_LOST_CODES = frozenset({"55006", "55000"})


class LeaseLost(Exception):
    """Another poller holds the job now (our lease expired and was taken over), or the run was closed."""


class WorkspaceProgress(msgspec.Struct, kw_only=True):
    """One workspace of a run, as `sync_run_workspaces` (joined with `workspaces`) has it."""

    workspace_id: str
    bison_workspace_id: int
    name: str
    status: str
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

    status: str
    job: str
    holder: str
    held_by: str | None = None
    run_id: str | None = None
    lease_expires_at: str | None = None
    resumed_count: int = 0
    workspaces: list[WorkspaceProgress] = msgspec.field(default_factory=list)


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
    status: str
    holder: str | None = None
    resumed_count: int = 0
    error: str | None = None
    totals: dict[str, int] = msgspec.field(default_factory=dict)
    workspaces: list[WorkspaceProgress] = msgspec.field(default_factory=list)
    already_finished: bool = False


def default_holder() -> str:
    """A holder id unique to this poll: host, process and a random suffix (never reused after a crash)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _convert(data: Any, type_: type[T]) -> T:
    return msgspec.convert(data, type_, strict=False)


def is_lease_lost(exc: BaseException) -> bool:
    return isinstance(exc, StoreError) and exc.code in LEASE_LOST_CODES


#: store calls of a sync run: a few quick retries of a lost connection or a serialization failure
STORE_RETRY = RetryPolicy(max_attempts=4, backoff_base_s=0.2, backoff_max_s=2.0)


async def with_store_retry(
    call: Callable[[], Awaitable[T]], *, policy: RetryPolicy = STORE_RETRY, what: str = "store call"
) -> T:
    """Retry an idempotent store call on `StoreUnavailable` (connection lost, serialization failure, ...)."""
    return await retry_call(call, policy, retry_on=(StoreUnavailable,), what=what)


class SyncRunStore:
    """The run calls of one job (`mailboxes:<instance>`) on behalf of one holder."""

    def __init__(self, store: Store, *, job: str, holder: str, lease_seconds: int) -> None:
        if lease_seconds < 1:
            raise ValueError("lease_seconds must be at least 1")
        self.store = store
        self.job = job
        self.holder = holder
        self.lease_seconds = lease_seconds

    async def start(self, instance: str, *, max_resume_age_s: int = 6 * 3600) -> RunStart:
        data = await self.store.rpc(
            "start_sync_run",
            {
                "p_job": self.job,
                "p_holder": self.holder,
                "p_lease_seconds": self.lease_seconds,
                "p_instance": instance,
                "p_max_resume_age_seconds": max_resume_age_s,
            },
        )
        return _convert(data, RunStart)

    async def heartbeat(self, run_id: str) -> bool:
        """Renew the lease and publish progress; False when the lease is no longer ours."""
        data = await self.store.rpc(
            "heartbeat_sync_run",
            {"p_run_id": run_id, "p_holder": self.holder, "p_lease_seconds": self.lease_seconds},
        )
        return bool(data.get("ok")) if isinstance(data, dict) else False

    async def release(self) -> bool:
        """Give the lease up without finishing the run (the next poller resumes it)."""
        return bool(await self.store.rpc("release_sync_lease", {"p_job": self.job, "p_holder": self.holder}))

    async def commit_page(
        self,
        run_id: str,
        workspace_id: str,
        page: int,
        next_page_url: str | None,
        rows_json: bytes,
        *,
        observed_at: datetime,
        listing_total: int | None,
        unverified: str | None = None,
    ) -> PageResult:
        args: dict[str, Any] = {
            "p_run_id": run_id,
            "p_workspace_id": workspace_id,
            "p_page": page,
            "p_next_page_url": next_page_url,
            "p_rows": rows_json,
            "p_observed_at": observed_at,
            "p_listing_total": listing_total,
            "p_holder": self.holder,
            "p_unverified": unverified,
        }
        return _convert(await self.store.rpc("sync_mailbox_page", args), PageResult)

    async def finish_workspace(
        self, run_id: str, workspace_id: str, *, ok: bool, error: str | None = None
    ) -> WorkspaceProgress:
        args = {
            "p_run_id": run_id,
            "p_workspace_id": workspace_id,
            "p_ok": ok,
            "p_error": error,
            "p_holder": self.holder,
        }
        return _convert(await self.store.rpc("finish_workspace_sync", args), WorkspaceProgress)

    async def finish(self, run_id: str) -> RunResult:
        data = await self.store.rpc("finish_sync_run", {"p_run_id": run_id, "p_holder": self.holder})
        return _convert(data, RunResult)

    async def api_key_refs(self, instance: str) -> dict[int, str]:
        return await workspace_key_refs(self.store, instance)


async def workspace_key_refs(store: Store, instance: str) -> dict[int, str]:
    """{bison workspace id: env var NAME} of the workspace-scoped keys registered for `instance`."""
    rows = await store.rpc_rows("workspace_api_key_refs", {"p_instance": instance})
    return {int(r["bison_workspace_id"]): str(r["bison_api_key_ref"]) for r in rows}


def add_workspace_keys(client: BisonClient, refs: Mapping[int, str], environ: Mapping[str, str]) -> int:
    """Give `client` the workspace-scoped keys whose env vars are set (the keys live only in the environment);
    warn about refs whose variable is missing (those workspaces use the super-admin key). Returns how many."""
    keys, missing = resolve_workspace_keys(refs, environ)
    for team_id, key in keys.items():
        try:
            known = client.key_for(team_id).kind is KeyKind.WORKSPACE
        except ValueError:
            known = False
        if not known:
            client.add_workspace_key(team_id, key)
    for team_id in missing:
        ref = refs[team_id]
        log.warning("workspace %d: env var %s (bison_api_key_ref) is unset; using the super-admin key", team_id, ref)
    return len(keys)


def resolve_workspace_keys(refs: Mapping[int, str], environ: Mapping[str, str]) -> tuple[dict[int, str], list[int]]:
    """Keys for the refs whose env var is set; the bison ids whose env var is missing or empty."""
    keys: dict[int, str] = {}
    missing: list[int] = []
    for team_id, ref in refs.items():
        value = environ.get(ref, "").strip()
        if value:
            keys[team_id] = value
        else:
            missing.append(team_id)
    return keys, missing

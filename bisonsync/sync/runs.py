"""Sync run records in Postgres: the job lease, the resumable per-workspace cursor, one call per page.

The calls themselves are in `bisonsync.store.api`; every call is one store round trip (one transaction) and works
the same through `PostgresStore` and `SupabaseStore`.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TypeVar

from bisonsync.bison import BisonClient, KeyKind
from bisonsync.retry import RetryPolicy, retry_call
from bisonsync.store import Store, StoreError, StoreUnavailable, api
from bisonsync.store.rows import PageResult, RunResult, RunStart, WorkspaceProgress

__all__ = [
    "LeaseLost",
    "PageResult",
    "RunResult",
    "RunStart",
    "SyncRunStore",
    "WorkspaceProgress",
    "add_workspace_keys",
    "default_holder",
    "is_lease_lost",
    "resolve_workspace_keys",
    "with_store_retry",
    "workspace_key_refs",
]

log = logging.getLogger("bisonsync.sync")

T = TypeVar("T")

#: SQLSTATEs meaning "this poller no longer owns the run": stop, do not retry
LEASE_LOST_CODES = frozenset({"55006", "55000"})


class LeaseLost(Exception):
    """Another poller holds the job now (our lease expired and was taken over), or the run was closed."""


def default_holder() -> str:
    """A holder id unique to this poll: host, process and a random suffix (never reused after a crash)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


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
        return await api.start_sync_run(
            self.store,
            self.job,
            self.holder,
            lease_seconds=self.lease_seconds,
            instance=instance,
            max_resume_age_s=max_resume_age_s,
        )

    async def heartbeat(self, run_id: str) -> bool:
        """Renew the lease and publish progress; False when the lease is no longer ours."""
        beat = await api.heartbeat_sync_run(self.store, run_id, self.holder, lease_seconds=self.lease_seconds)
        return beat.ok

    async def release(self) -> bool:
        """Give the lease up without finishing the run (the next poller resumes it)."""
        return await api.release_sync_lease(self.store, self.job, self.holder)

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
        return await api.sync_mailbox_page(
            self.store,
            run_id,
            workspace_id,
            page,
            next_page_url,
            rows_json,
            holder=self.holder,
            observed_at=observed_at,
            listing_total=listing_total,
            unverified=unverified,
        )

    async def finish_workspace(
        self, run_id: str, workspace_id: str, *, ok: bool, error: str | None = None
    ) -> WorkspaceProgress:
        return await api.finish_workspace_sync(self.store, run_id, workspace_id, holder=self.holder, ok=ok, error=error)

    async def finish(self, run_id: str) -> RunResult:
        return await api.finish_sync_run(self.store, run_id, self.holder)

    async def api_key_refs(self, instance: str) -> dict[int, str]:
        return await workspace_key_refs(self.store, instance)


async def workspace_key_refs(store: Store, instance: str) -> dict[int, str]:
    """{bison workspace id: env var NAME} of the workspace-scoped keys registered for `instance`."""
    return {r.bison_workspace_id: r.bison_api_key_ref for r in await api.workspace_api_key_refs(store, instance)}


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

"""The mailbox poller: every active workspace's `GET /api/sender-emails` into `sender_emails_cache`.

One poll is one sync run (`sync_runs`): single-flight across replicas by a Postgres lease, one store call per page
(`sync_mailbox_page`: upsert + statuses + history + cursor, atomically), a sweep of vanished mailboxes per
workspace only after its whole listing succeeded AND was proven complete (`finish_workspace_sync`: every page
carried meta, the listing reached meta.last_page and the count matches meta.total; otherwise the workspace is
done but `verified` false and nothing is deleted), and a resumable cursor per workspace,
so a killed poll is resumed at the page after the last committed one by whichever poller takes the job next.

Workspaces run in parallel up to `concurrency`: those with a workspace-scoped key (registered in
`workspace_credentials.bison_api_key_ref` as the NAME of an env var) truly in parallel, those on the shared
super-admin key one at a time (the client serializes them behind switch-workspace; they also take one lane here so
they never hold several concurrency slots while waiting). A failure is isolated to its workspace: it is marked
failed and nothing of it is swept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from bisonsync.bison import BisonClient, BisonError, PaginationCapExceeded, WorkspaceSession
from bisonsync.events import instance_host
from bisonsync.store import Store, StoreError
from bisonsync.sync.classify import TagRules
from bisonsync.sync.pages import FetchedPage, cursor_of, first_page_url, iter_pages_from, rows_json, url_of
from bisonsync.sync.report import PollReport, ProgressCallback, ProgressTracker, WorkspaceReport
from bisonsync.sync.runs import (
    LeaseLost,
    PageResult,
    RunStart,
    SyncRunStore,
    WorkspaceProgress,
    add_workspace_keys,
    default_holder,
    is_lease_lost,
    with_store_retry,
)

log = logging.getLogger("bisonsync.sync")

DEFAULT_LEASE_SECONDS = 60
DEFAULT_WORKSPACE_TIMEOUT_S = 600.0

__all__ = ["DEFAULT_LEASE_SECONDS", "PollReport", "mailbox_job", "poll_mailboxes"]


def mailbox_job(instance: str) -> str:
    """The lease / run job name of the mailbox sync of one instance."""
    return f"mailboxes:{instance_host(instance)}"


async def poll_mailboxes(
    store: Store,
    client: BisonClient,
    *,
    instance: str,
    concurrency: int = 8,
    rules: TagRules | None = None,
    holder: str | None = None,
    progress: ProgressCallback | None = None,
    lease_seconds: int = DEFAULT_LEASE_SECONDS,
    page_cap: int | None = None,
    workspace_timeout_s: float | None = DEFAULT_WORKSPACE_TIMEOUT_S,
    environ: Mapping[str, str] | None = None,
    max_resume_age_s: int = 6 * 3600,
) -> PollReport:
    """Sync the mailboxes of every active workspace of `instance` (the normalised host of BISON_BASE_URL).

    Returns status `skipped` when another poller holds the job. `holder` identifies this poller in the lease (unique
    per poll by default); `page_cap` bounds the pages per workspace (default: the client's `max_pages`);
    `workspace_timeout_s` bounds one workspace's listing; `environ` is where key refs are looked up (os.environ);
    an unfinished run older than `max_resume_age_s` is closed as stalled instead of resumed.
    Workspace keys found there are added to `client`. Cancelling the call releases the lease (the run stays
    resumable); a crash leaves the lease to expire after `lease_seconds`.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    host = instance_host(instance)
    runs = SyncRunStore(store, job=mailbox_job(host), holder=holder or default_holder(), lease_seconds=lease_seconds)
    poller = _Poller(
        runs,
        client,
        instance=host,
        concurrency=concurrency,
        rules=rules or TagRules(),
        progress=progress,
        page_cap=page_cap or client.max_pages,
        workspace_timeout_s=workspace_timeout_s,
        environ=os.environ if environ is None else environ,
    )
    return await poller.run(max_resume_age_s)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out: the workspace's listing took longer than its time budget"
    if isinstance(exc, PaginationCapExceeded):
        return f"pagination cap: {exc} (next {exc.next_url})"
    return f"{type(exc).__name__}: {exc}"


class _Poller:
    def __init__(
        self,
        runs: SyncRunStore,
        client: BisonClient,
        *,
        instance: str,
        concurrency: int,
        rules: TagRules,
        progress: ProgressCallback | None,
        page_cap: int,
        workspace_timeout_s: float | None,
        environ: Mapping[str, str],
    ) -> None:
        self.runs = runs
        self.client = client
        self.instance = instance
        self.rules = rules
        self.progress = progress
        self.page_cap = page_cap
        self.workspace_timeout_s = workspace_timeout_s
        self.environ = environ
        self._slots = asyncio.Semaphore(concurrency)
        self._super_admin_lane = asyncio.Lock()
        self._run_id = ""
        self._tracker: ProgressTracker | None = None
        self._started = time.monotonic()

    def _report(
        self,
        status: str,
        *,
        run_id: str | None = None,
        held_by: str | None = None,
        resumed: bool = False,
        totals: dict[str, int] | None = None,
        workspaces: list[WorkspaceReport] | None = None,
        error: str | None = None,
    ) -> PollReport:
        return PollReport(
            status=status,
            instance=self.instance,
            job=self.runs.job,
            holder=self.runs.holder,
            run_id=run_id,
            held_by=held_by,
            resumed=resumed,
            elapsed_s=time.monotonic() - self._started,
            totals=totals or {},
            workspaces=workspaces or [],
            error=error,
        )

    async def run(self, max_resume_age_s: int) -> PollReport:
        start = await with_store_retry(
            lambda: self.runs.start(self.instance, max_resume_age_s=max_resume_age_s), what="start_sync_run"
        )
        if start.status == "skipped" or start.run_id is None:
            log.info("%s is held by %s; skipped", self.runs.job, start.held_by)
            return self._report("skipped", held_by=start.held_by, run_id=start.run_id)
        self._run_id = start.run_id
        log.info(
            "%s run %s %s by %s: %d workspaces",
            self.runs.job,
            start.run_id,
            start.status,
            self.runs.holder,
            len(start.workspaces),
        )
        try:
            reports = await self._run_workspaces(start)
        except LeaseLost as exc:
            log.warning("%s: lease lost, stopping (%s)", self.runs.job, exc)
            return self._report("lease_lost", run_id=start.run_id, resumed=start.status == "resumed", error=str(exc))
        except BaseException:
            # Cancelled (shutting down) or an unexpected error: give the lease up so the next poller resumes the
            # run at once instead of after the lease expires.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.runs.release()
            raise
        try:
            result = await with_store_retry(lambda: self.runs.finish(start.run_id or ""), what="finish_sync_run")
        except StoreError as exc:
            if is_lease_lost(exc):
                return self._report("lease_lost", run_id=start.run_id, error=str(exc))
            raise
        resumed_after = {r.workspace_id: r.resumed_after_page for r in reports}
        report = self._report(
            result.status,
            run_id=start.run_id,
            resumed=start.status == "resumed",
            totals=result.totals,
            workspaces=[
                WorkspaceReport.from_progress(w, resumed_after.get(w.workspace_id, 0)) for w in result.workspaces
            ],
            error=result.error,
        )
        log.info("%s run %s %s", self.runs.job, start.run_id, report.summary())
        return report

    async def _run_workspaces(self, start: RunStart) -> list[WorkspaceReport]:
        await self._register_workspace_keys()
        self._tracker = ProgressTracker(self._run_id, start.workspaces, self.progress)
        self._tracker.emit("start")
        # biggest first: the run ends when its largest workspace does
        todo = sorted(start.workspaces, key=lambda w: -max(w.cached_mailboxes, w.listing_total or 0))
        tasks = [asyncio.create_task(self._workspace(w), name=f"poll:{w.bison_workspace_id}") for w in todo]
        heartbeat = asyncio.create_task(self._heartbeat(), name=f"heartbeat:{self.runs.job}")
        try:
            while not all(t.done() for t in tasks):
                waiting: set[asyncio.Task[Any]] = {t for t in tasks if not t.done()} | {heartbeat}
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for finished in done:
                    error = finished.exception()
                    if finished is heartbeat:  # it only ends when the lease is lost
                        raise error or LeaseLost("heartbeat stopped")
                    if error is not None:
                        raise error
            return [t.result() for t in tasks]
        finally:
            everything: list[asyncio.Task[Any]] = [*tasks, heartbeat]
            for task in everything:
                task.cancel()
            await asyncio.wait(everything)

    async def _register_workspace_keys(self) -> None:
        refs = await with_store_retry(lambda: self.runs.api_key_refs(self.instance), what="workspace_api_key_refs")
        add_workspace_keys(self.client, refs, self.environ)

    async def _heartbeat(self) -> None:
        lease = self.runs.lease_seconds
        interval = max(0.1, min(lease / 3, 5.0))
        last_ok = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            try:
                ok = await self.runs.heartbeat(self._run_id)
            except StoreError as exc:
                if is_lease_lost(exc) or time.monotonic() - last_ok >= lease:
                    raise LeaseLost(f"could not renew the lease for {lease}s: {exc}") from exc
                log.warning("%s: heartbeat failed (%s); retrying", self.runs.job, exc)
                continue
            if not ok:
                raise LeaseLost(f"{self.runs.job} was taken over by another poller")
            last_ok = time.monotonic()

    async def _workspace(self, ws: WorkspaceProgress) -> WorkspaceReport:
        if ws.status == "done":  # finished before this poll resumed the run
            return WorkspaceReport.from_progress(ws, ws.pages_done)
        resumed_after = ws.pages_done
        try:
            shared_key = not self.client.parallel_safe(ws.bison_workspace_id)
        except ValueError as exc:  # no key at all for it
            return await self._fail(ws, str(exc), resumed_after)
        lane = self._super_admin_lane if shared_key else contextlib.nullcontext()
        failure: str | None = None
        async with lane, self._slots:  # the Bison part; the sweep below runs outside it
            try:
                async with (
                    asyncio.timeout(self.workspace_timeout_s),
                    self.client.workspace(ws.bison_workspace_id) as session,
                ):
                    await self._page_through(session, ws)
            except LeaseLost:
                raise
            except (BisonError, StoreError, TimeoutError) as exc:
                if is_lease_lost(exc):
                    raise LeaseLost(str(exc)) from exc
                failure = _describe(exc)
        if failure is not None:
            log.warning("workspace %d (%s) failed: %s", ws.bison_workspace_id, ws.name, failure)
            return await self._fail(ws, failure, resumed_after)
        try:
            result = await with_store_retry(
                lambda: self.runs.finish_workspace(self._run_id, ws.workspace_id, ok=True),
                what="finish_workspace_sync",
            )
        except StoreError as exc:
            if is_lease_lost(exc):
                raise LeaseLost(str(exc)) from exc
            return await self._fail(ws, _describe(exc), resumed_after)
        self._finished(ws, result.status == "done")
        if result.status != "done":
            log.warning("workspace %d (%s) failed: %s", ws.bison_workspace_id, ws.name, result.error)
        return WorkspaceReport.from_progress(result, resumed_after)

    async def _fail(self, ws: WorkspaceProgress, error: str, resumed_after: int) -> WorkspaceReport:
        """Mark the workspace failed (nothing of it is swept)."""
        try:
            result = await with_store_retry(
                lambda: self.runs.finish_workspace(self._run_id, ws.workspace_id, ok=False, error=error),
                what="finish_workspace_sync",
            )
        except StoreError as exc:
            if is_lease_lost(exc):
                raise LeaseLost(str(exc)) from exc
            # could not even record it: finish_sync_run marks unfinished workspaces failed
            result = WorkspaceProgress(
                workspace_id=ws.workspace_id,
                bison_workspace_id=ws.bison_workspace_id,
                name=ws.name,
                status="failed",
                error=f"{error}; then {_describe(exc)}",
            )
        self._finished(ws, False)
        return WorkspaceReport.from_progress(result, resumed_after)

    def _finished(self, ws: WorkspaceProgress, ok: bool) -> None:
        if self._tracker is not None:
            self._tracker.finished(ws.workspace_id, ok)

    async def _page_through(self, session: WorkspaceSession, ws: WorkspaceProgress) -> None:
        """Fetch and commit the workspace's pages from its cursor on; the commit of page k overlaps the fetch of
        page k + 1 (pages still commit in order)."""
        base = self.client.base_url
        if ws.pages_done and ws.next_page_url is None:
            return  # the listing completed before the run was interrupted: only the sweep is left
        start = url_of(ws.next_page_url, base) if ws.pages_done and ws.next_page_url else first_page_url(base)
        remaining = self.page_cap - ws.pages_done
        if remaining < 1:
            cap = PaginationCapExceeded(f"{ws.pages_done} pages committed, the cap is {self.page_cap}")
            cap.max_pages, cap.next_url = self.page_cap, ws.next_page_url
            raise cap
        page_no = ws.pages_done
        pending: asyncio.Task[PageResult] | None = None
        pages = iter_pages_from(session, start, max_pages=remaining)
        try:
            async for fetched in pages:
                page_no += 1
                body = rows_json(fetched.page.data, self.rules)
                if pending is not None:
                    self._committed(ws, await pending)
                pending = asyncio.create_task(self._commit(ws, page_no, fetched, body))
            if pending is not None:
                self._committed(ws, await pending)
        finally:
            await pages.aclose()
            if pending is not None and not pending.done():
                pending.cancel()
                await asyncio.wait([pending])
            if pending is not None and not pending.cancelled():
                pending.exception()  # retrieved: a failure already propagated or is superseded by ours

    async def _commit(self, ws: WorkspaceProgress, page_no: int, fetched: FetchedPage, body: bytes) -> PageResult:
        return await with_store_retry(
            lambda: self.runs.commit_page(
                self._run_id,
                ws.workspace_id,
                page_no,
                cursor_of(fetched.next_url),
                body,
                observed_at=fetched.observed_at,
                listing_total=fetched.listing_total,
                unverified=fetched.unverified,
            ),
            what="sync_mailbox_page",
        )

    def _committed(self, ws: WorkspaceProgress, result: PageResult) -> None:
        if self._tracker is not None:
            self._tracker.page(ws.workspace_id, result)

"""What a mailbox poll reports: the final `PollReport`, and `PollProgress` snapshots for a progress display."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bisonsync.sync.runs import PageResult, WorkspaceProgress

log = logging.getLogger("bisonsync.sync")


@dataclass(frozen=True, slots=True)
class WorkspaceReport:
    workspace_id: str
    bison_workspace_id: int
    name: str
    #: done | failed
    status: str
    pages: int
    mailboxes: int
    listing_total: int | None
    inserted: int
    updated: int
    status_changes: int
    undeleted: int
    deleted: int
    #: 'swept', or why the sweep was skipped; None when the workspace failed
    sweep: str | None
    error: str | None
    #: pages already committed when this poll picked the workspace up (0: it started at page 1)
    resumed_after_page: int = 0
    #: done workspaces: True when the listing was proven complete, False when it was not (nothing was swept)
    verified: bool | None = None

    @classmethod
    def from_progress(cls, p: WorkspaceProgress, resumed_after_page: int = 0) -> WorkspaceReport:
        return cls(
            workspace_id=p.workspace_id,
            bison_workspace_id=p.bison_workspace_id,
            name=p.name,
            status=p.status,
            pages=p.pages_done,
            mailboxes=p.mailboxes_seen,
            listing_total=p.listing_total,
            inserted=p.inserted,
            updated=p.updated,
            status_changes=p.status_changes,
            undeleted=p.undeleted,
            deleted=p.deleted,
            sweep=p.sweep,
            error=p.error,
            resumed_after_page=resumed_after_page,
            verified=p.verified,
        )


@dataclass(frozen=True, slots=True)
class PollReport:
    """The outcome of one `poll_mailboxes` call.

    status: `completed` (every workspace done), `partial` (some failed), `failed` (none succeeded), `skipped`
    (another poller holds the job: `held_by`), `lease_lost` (our lease was taken over mid-run; the new holder
    finishes the run).
    """

    status: str
    instance: str
    job: str
    holder: str
    run_id: str | None = None
    held_by: str | None = None
    resumed: bool = False
    elapsed_s: float = 0.0
    totals: dict[str, int] = field(default_factory=dict)
    workspaces: list[WorkspaceReport] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Nothing went wrong: the run completed, or there was nothing for this poller to do."""
        return self.status in ("completed", "skipped")

    @property
    def failed_workspaces(self) -> list[WorkspaceReport]:
        return [w for w in self.workspaces if w.status != "done"]

    @property
    def unverified_workspaces(self) -> list[WorkspaceReport]:
        """Done, but their listing could not be proven complete: upserted, nothing deleted."""
        return [w for w in self.workspaces if w.status == "done" and w.verified is False]

    def summary(self) -> str:
        if self.status == "skipped":
            return f"skipped: {self.job} is held by {self.held_by}"
        t = self.totals
        text = (
            f"{self.status}: {t.get('done', 0)}/{t.get('workspaces', 0)} workspaces, {t.get('pages', 0)} pages, "
            f"{t.get('mailboxes_seen', 0)} mailboxes ({t.get('inserted', 0)} new, {t.get('updated', 0)} changed, "
            f"{t.get('status_changes', 0)} status changes, {t.get('deleted', 0)} deleted, "
            f"{t.get('undeleted', 0)} back) in {self.elapsed_s:.1f}s"
        )
        if t.get("unverified"):
            text += f"; {t['unverified']} unverified listings (nothing deleted there)"
        if self.resumed:
            text += " (resumed run)"
        if self.error:
            text += f"; {self.error}"
        return text


@dataclass(frozen=True, slots=True)
class PollProgress:
    """A snapshot after each event of a poll, for a progress bar. `fraction` runs from 0 to 1."""

    run_id: str
    #: start | page | workspace_done | workspace_failed
    event: str
    workspace: str | None
    workspaces_total: int
    workspaces_done: int
    workspaces_failed: int
    pages: int
    mailboxes: int
    #: listed totals (meta.total) where known, cached counts elsewhere: an estimate until every workspace started
    mailboxes_expected: int
    fraction: float


ProgressCallback = Callable[[PollProgress], None]


@dataclass
class _WorkspaceState:
    name: str
    pages: int
    seen: int
    total: int | None
    estimate: int
    outcome: str | None = None


class ProgressTracker:
    """Keeps per-workspace counts and calls the callback; a failing callback is logged, never raised."""

    def __init__(self, run_id: str, workspaces: Iterable[WorkspaceProgress], callback: ProgressCallback | None) -> None:
        self.run_id = run_id
        self.callback = callback
        self.state = {
            w.workspace_id: _WorkspaceState(
                name=w.name,
                pages=w.pages_done,
                seen=w.mailboxes_seen,
                total=w.listing_total,
                estimate=w.cached_mailboxes,
                outcome=w.status if w.status == "done" else None,
            )
            for w in workspaces
        }

    def page(self, workspace_id: str, result: PageResult) -> None:
        s = self.state[workspace_id]
        s.pages, s.seen, s.total = result.pages_done, result.mailboxes_seen, result.listing_total
        self.emit("page", s.name)

    def finished(self, workspace_id: str, ok: bool) -> None:
        s = self.state[workspace_id]
        s.outcome = "done" if ok else "failed"
        self.emit("workspace_done" if ok else "workspace_failed", s.name)

    def snapshot(self, event: str, workspace: str | None) -> PollProgress:
        states = list(self.state.values())
        parts = [1.0 if s.outcome else (min(1.0, s.seen / s.total) if s.total else 0.0) for s in states]
        return PollProgress(
            run_id=self.run_id,
            event=event,
            workspace=workspace,
            workspaces_total=len(states),
            workspaces_done=sum(1 for s in states if s.outcome == "done"),
            workspaces_failed=sum(1 for s in states if s.outcome == "failed"),
            pages=sum(s.pages for s in states),
            mailboxes=sum(s.seen for s in states),
            mailboxes_expected=sum(s.total if s.total is not None else s.estimate for s in states),
            fraction=sum(parts) / len(parts) if parts else 1.0,
        )

    def emit(self, event: str, workspace: str | None = None) -> None:
        if self.callback is None:
            return
        try:
            self.callback(self.snapshot(event, workspace))
        except Exception:
            log.exception("the progress callback failed (ignored)")

"""`bisonsync poll [--once] [--concurrency N] [--interval S]`: keep the mailbox cache in step with Email Bison.

Configured by BISON_BASE_URL, BISON_API_KEY and DATABASE_URL (or SUPABASE_URL + SUPABASE_SERVICE_ROLE_KEY). Each
cycle syncs the workspace registry, then every active workspace's mailboxes (see docs/sync.md). Exit status with
--once: 0 completed (or skipped: another poller holds the job), 3 partial, 1 failed, 2 configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import signal
import sys
import time
from typing import Any, TextIO

from bisonsync.bison import BisonError
from bisonsync.settings import Settings, SettingsError
from bisonsync.store import StoreError, store_from_settings
from bisonsync.sync.mailboxes import DEFAULT_LEASE_SECONDS
from bisonsync.sync.report import PollProgress
from bisonsync.sync.scheduled import (
    SyncCycleReport,
    check_bison_settings,
    client_from_settings,
    run_scheduled_poll,
    run_sync_cycle,
)

__all__ = ["ProgressLine", "register", "run_scheduled_poll"]

EXIT_STATUS = {"completed": 0, "skipped": 0, "partial": 3, "failed": 1, "lease_lost": 1}
EXIT_CONFIG = 2


def register(sub: Any) -> None:
    poll = sub.add_parser("poll", help="sync workspaces and mailboxes from Email Bison (once, or every interval)")
    poll.add_argument("--once", action="store_true", help="run one sync and exit; non-zero when it did not complete")
    poll.add_argument("--concurrency", type=int, default=8, help="workspaces polled at once (default 8)")
    poll.add_argument(
        "--interval", type=float, default=None, help="seconds between syncs (default $BISONSYNC_POLL_INTERVAL_S, 300)"
    )
    poll.add_argument(
        "--lease-seconds", type=int, default=DEFAULT_LEASE_SECONDS, help="single-flight lease, renewed while running"
    )
    poll.add_argument("--no-progress", action="store_true", help="no progress output, only the summary")
    poll.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    poll.set_defaults(handler=_poll)


class ProgressLine:
    """A one-line progress bar on a terminal (redrawn in place, at most every 0.1 s); plain lines otherwise."""

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None, width: int = 28) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.width = width
        self._drawn = False
        self._last = 0.0

    def __call__(self, p: PollProgress) -> None:
        if not self.tty:
            if p.event in ("workspace_done", "workspace_failed"):
                finished = p.workspaces_done + p.workspaces_failed
                outcome = "done" if p.event == "workspace_done" else "FAILED"
                print(
                    f"[{finished}/{p.workspaces_total}] {p.workspace}: {outcome} ({p.mailboxes:,} mailboxes so far)",
                    file=self.stream,
                    flush=True,
                )
            return
        now = time.monotonic()
        if p.event == "page" and now - self._last < 0.1:
            return
        self._last = now
        columns = shutil.get_terminal_size((100, 20)).columns
        self.stream.write("\r" + self.render(p)[: max(10, columns - 1)] + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def render(self, p: PollProgress) -> str:
        filled = int(p.fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        failed = f", {p.workspaces_failed} failed" if p.workspaces_failed else ""
        current = f"  {p.workspace}" if p.workspace else ""
        return (
            f"[{bar}] {p.fraction * 100:3.0f}%  {p.workspaces_done + p.workspaces_failed}/{p.workspaces_total} "
            f"workspaces{failed}  {p.mailboxes:,}/~{p.mailboxes_expected:,} mailboxes{current}"
        )

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _print_cycle(cycle: SyncCycleReport) -> None:
    if cycle.workspaces is not None:
        print(f"workspaces: {cycle.workspaces.summary()}")
    elif cycle.workspaces_error:
        print(f"workspaces: registry not synced ({cycle.workspaces_error})")
    report = cycle.mailboxes
    print(f"mailboxes: {report.summary()}")
    for ws in report.failed_workspaces:
        print(f"  failed: {ws.name} ({ws.bison_workspace_id}): {ws.error}")
    for ws in report.workspaces:
        if ws.status == "done" and ws.sweep not in (None, "swept"):
            print(f"  not swept: {ws.name} ({ws.bison_workspace_id}): {ws.sweep}")


async def _main(args: argparse.Namespace, settings: Settings) -> int:
    store = store_from_settings(settings)
    client = client_from_settings(settings)
    interval = args.interval if args.interval is not None else float(settings.poll_interval_s)
    await store.open()
    try:
        while True:
            line = None if args.no_progress else ProgressLine()
            try:
                cycle = await run_sync_cycle(
                    settings,
                    store,
                    client,
                    concurrency=args.concurrency,
                    progress=line,
                    lease_seconds=args.lease_seconds,
                )
            except (BisonError, StoreError) as exc:
                if line is not None:
                    line.close()
                print(f"sync failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                if args.once:
                    return 1
            else:
                if line is not None:
                    line.close()
                _print_cycle(cycle)
                if args.once:
                    return EXIT_STATUS.get(cycle.mailboxes.status, 1)
            await asyncio.sleep(interval)
    finally:
        await client.aclose()
        await store.close()


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    # SIGTERM ends the poll like Ctrl-C: the task is cancelled, which releases the lease (the run stays resumable)
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
    return await _main(args, settings)


def _poll(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.concurrency < 1:
        print("--concurrency must be at least 1", file=sys.stderr)
        return EXIT_CONFIG
    try:
        settings = Settings.from_env()
        settings.require_store()
        settings.instance_label()
        check_bison_settings(settings)
    except (SettingsError, ValueError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if not args.once and (args.interval if args.interval is not None else settings.poll_interval_s) <= 0:
        print("the poll interval must be positive (or use --once)", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return asyncio.run(_run(args, settings))
    except asyncio.CancelledError:  # SIGTERM
        return 143

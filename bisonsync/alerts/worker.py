"""`AlertWorker`: records alerts (deduplicated in `alert_log`) and sends them to Slack from a background task.

Flow: `enqueue(alert)` only puts the alert on an in-memory queue (never blocks, never raises: safe on a webhook
request path). The worker task wakes on the queue (waiting `batch_delay_s` so a burst becomes one message) or
every `retry_interval_s`, then runs one round (`flush`):

1. record the queued alerts with `record_alerts` (a key already in `alert_log` is not recorded again: one alert
   per condition and window, across restarts and replicas); if the database is down they stay in memory;
2. lease the due unsent alerts with `claim_alerts` (FOR UPDATE SKIP LOCKED + a lease: one replica sends each);
3. group them by Slack destination (the workspace's `slack_webhook_ref` env var if set and present, else
   `SLACK_WEBHOOK_URL`) and post ONE message per destination: the alert itself, or a batched summary;
4. `finish_alerts`: sent, or the error kept and the alert due again after a growing backoff.

An alert is only marked sent after Slack answered 200, so an unsent alert stays in the table (with `attempts`,
`last_error`, `next_attempt_at`) and is retried by any later round of any replica: never lost silently. A crash
between Slack's 200 and `finish_alerts` can re-send after the lease expires (at least once, not exactly once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bisonsync.alerts.conditions import evaluate
from bisonsync.alerts.log import (
    ClaimedAlert,
    SendResult,
    advance_scan,
    claim_alerts,
    claimed_alert,
    finish_alerts,
    record_alerts,
)
from bisonsync.alerts.models import Alert, AlertConfig
from bisonsync.alerts.slack import post_message, render_batch, url_label
from bisonsync.settings import Settings
from bisonsync.store import Store, StoreError

log = logging.getLogger("bisonsync.alerts")

GLOBAL_REF = "SLACK_WEBHOOK_URL"


@dataclass
class FlushReport:
    recorded: int = 0
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    messages: int = 0
    #: alerts that had no Slack destination configured (kept unsent)
    undeliverable: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Destination:
    url: str
    #: where the URL came from: "SLACK_WEBHOOK_URL" or the workspace's env var name (safe to log)
    source: str

    @property
    def label(self) -> str:
        return f"{self.source}{url_label(self.url)}"


class AlertWorker:
    """Background sender of alerts. `start()` in a lifespan, `await stop()` on shutdown."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        http_client: httpx.AsyncClient | None = None,
        *,
        config: AlertConfig | None = None,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.settings = settings
        self.config = config or AlertConfig.from_env(environ)
        self._environ = environ
        self._http = http_client
        self._owns_http = http_client is None
        self._sleep = sleep
        self._queue: asyncio.Queue[Alert | None] = asyncio.Queue(maxsize=max(1, self.config.queue_max))
        self._unrecorded: list[Alert] = []
        self._task: asyncio.Task[None] | None = None
        self._round = asyncio.Lock()
        self._warned: set[str] = set()
        self._stopping = False
        self.dropped = 0

    def __repr__(self) -> str:
        return f"AlertWorker(running={self.running}, queued={self._queue.qsize()}, unrecorded={len(self._unrecorded)})"

    # -- lifecycle --------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.config.http_timeout_s),
                limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
                follow_redirects=False,
            )
        return self._http

    def start(self) -> None:
        """Start the background task (idempotent). Needs a running event loop."""
        if self.running:
            return
        self._client()
        self._task = asyncio.create_task(self._run(), name="bisonsync-alert-worker")

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the task after a last round (bounded by `timeout_s`): queued alerts reach the table, and Slack if it
        answers in time. Whatever is left unsent stays in `alert_log` for the next start or another replica."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self.wake()
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout_s)
            except (TimeoutError, Exception):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._stopping = False
        if self._unrecorded or not self._queue.empty():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.flush(), timeout_s)
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    def lifespan(self) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
        """A lifespan for `Litestar(lifespan=[...])` (any ASGI framework taking an app argument)."""

        @contextlib.asynccontextmanager
        async def run(app: Any) -> AsyncIterator[None]:
            self.start()
            try:
                yield
            finally:
                await self.stop()

        return run

    # -- input ------------------------------------------------------------------------------------------------

    async def enqueue(self, alert: Alert) -> None:
        """Hand an alert to the worker. Never blocks or raises; a full queue drops it with a warning (the condition
        scans find it again from the database)."""
        self.enqueue_nowait(alert)

    def enqueue_nowait(self, alert: Alert | None) -> bool:
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            if alert is not None:  # a wake-up is redundant when the queue is full anyway
                self.dropped += 1
                log.warning("alert queue full (%d): dropped %s", self._queue.maxsize, alert.key)
            return False
        return True

    def wake(self) -> None:
        """Ask the worker for a round now (e.g. after alerts were recorded directly)."""
        self.enqueue_nowait(None)

    async def run_checks(self, now: datetime | None = None) -> list[Alert]:
        """The scheduled job: scan the conditions, record the alerts (dedup), advance the scan cursors, wake the
        sender. Returns the alerts that were new. Raises StoreError when recording fails (the job logs it)."""
        evaluation = await evaluate(self.store, now, config=self.config)
        new_keys = set(await record_alerts(self.store, evaluation.alerts))
        for scan, until in evaluation.scanned.items():
            await advance_scan(self.store, scan, until)
        new = [a for a in evaluation.alerts if a.key in new_keys]
        if new:
            log.info("alerts: %d new (%d holding)", len(new), len(evaluation.alerts))
            self.wake()
        return new

    # -- the task ---------------------------------------------------------------------------------------------

    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if item is not None:
                self._unrecorded.append(item)

    async def _run(self) -> None:
        cfg = self.config
        while True:
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout=cfg.retry_interval_s)
            except TimeoutError:
                pass
            else:
                if item is not None:
                    self._unrecorded.append(item)
                if cfg.batch_delay_s > 0 and not self._stopping:
                    await self._sleep(cfg.batch_delay_s)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alert round failed")
            if self._stopping:
                return

    # -- one round --------------------------------------------------------------------------------------------

    def _env(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    def destination(self, claimed: ClaimedAlert) -> Destination | None:
        """The workspace's own Slack (its `slack_webhook_ref` names an env var that is set), else the global one."""
        ref = claimed.slack_webhook_ref
        if ref:
            url = self._env().get(ref, "").strip()
            if url:
                return Destination(url, ref)
            self._warn_once(
                f"ref:{ref}", "alerts: slack_webhook_ref %s is not set in the environment; using %s", ref, GLOBAL_REF
            )
        if self.settings.slack_webhook_url:
            return Destination(self.settings.slack_webhook_url, GLOBAL_REF)
        return None

    async def flush(self, now: datetime | None = None) -> FlushReport:
        """One round: record queued alerts, then send every due unsent alert (in rounds of `claim_limit`)."""
        async with self._round:
            report = FlushReport()
            self._drain()
            if self._unrecorded:
                pending, self._unrecorded = self._unrecorded, []
                try:
                    report.recorded = len(await record_alerts(self.store, pending))
                except StoreError as exc:
                    keep = pending[-self.config.queue_max :]
                    self._unrecorded = keep + self._unrecorded
                    report.errors.append(f"record: {exc}")
                    log.warning("alerts: could not record %d alerts (kept in memory): %s", len(keep), exc)
                    return report
            for _ in range(100):  # bounded: a huge backlog is worked through round after round
                try:
                    claimed = await claim_alerts(
                        self.store, limit=self.config.claim_limit, lease_s=self.config.lease_s, now=now
                    )
                except StoreError as exc:
                    report.errors.append(f"claim: {exc}")
                    log.warning("alerts: could not claim unsent alerts: %s", exc)
                    return report
                if not claimed:
                    break
                report.claimed += len(claimed)
                await self._send(claimed, report)
                if len(claimed) < self.config.claim_limit:
                    break
            return report

    async def _send(self, claimed: list[ClaimedAlert], report: FlushReport) -> None:
        cfg = self.config
        groups: dict[Destination | None, list[ClaimedAlert]] = {}
        for c in claimed:
            groups.setdefault(self.destination(c), []).append(c)
        results: list[SendResult] = []
        for dest, group in groups.items():
            max_attempts = max(c.attempts for c in group)
            if dest is None:
                report.undeliverable += len(group)
                retry_at = datetime.now(UTC) + timedelta(seconds=cfg.resend_backoff_max_s)
                self._warn_once(
                    "no-destination",
                    "alerts: no Slack destination (%s unset): %d alerts kept unsent",
                    GLOBAL_REF,
                    len(group),
                )
                results += [
                    SendResult(
                        id=c.id,
                        ok=False,
                        tries=0,
                        error=f"no Slack destination ({GLOBAL_REF} unset)",
                        retry_at=retry_at,
                    )
                    for c in group
                ]
                continue
            message = render_batch([claimed_alert(c) for c in group], cfg.list_max)
            result = await post_message(
                self._client(),
                dest.url,
                message,
                policy=cfg.send_policy(),
                timeout_s=cfg.http_timeout_s,
                sleep=self._sleep,
            )
            report.messages += 1
            if result.ok:
                report.sent += len(group)
                log.info("alerts: sent %d to %s", len(group), dest.label)
                results += [SendResult(id=c.id, ok=True, tries=result.tries) for c in group]
                continue
            report.failed += len(group)
            delay = cfg.resend_delay(max_attempts + result.tries)
            if result.permanent:
                delay = cfg.resend_backoff_max_s
            if result.retry_after is not None:
                delay = max(delay, result.retry_after)
            retry_at = datetime.now(UTC) + timedelta(seconds=delay)
            error = result.error or "unknown error"
            report.errors.append(f"{dest.label}: {error}")
            log.warning("alerts: %d not sent to %s (%s); next attempt in %.0fs", len(group), dest.label, error, delay)
            # members read alert_log.last_error: the class of the failure only, never Slack's answer or a URL
            stored = f"slack: {result.kind or 'failed'}"
            results += [
                SendResult(id=c.id, ok=False, tries=result.tries, error=stored, retry_at=retry_at) for c in group
            ]
        try:
            await finish_alerts(self.store, results)
        except StoreError as exc:  # the leases expire; the rows are retried (sent ones may be re-sent)
            report.errors.append(f"finish: {exc}")
            log.error("alerts: could not record the outcome of %d alerts: %s", len(results), exc)

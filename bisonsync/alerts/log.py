"""The persistent side of alerts: `alert_log` (dedup, claim, finish) and the scan cursors, one SQL call each."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from bisonsync.alerts.models import Alert
from bisonsync.store import Store


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

    def alert(self) -> Alert:
        try:
            return msgspec.convert(self.payload, Alert, strict=False)
        except msgspec.ValidationError:  # a payload from an older version: keep what identifies it
            return Alert(
                key=self.alert_key,
                condition=self.condition,
                severity=self.severity,
                window_start=self.window_start,
                title=str(self.payload.get("title") or self.alert_key),
                workspace_id=self.workspace_id,
            )


class SendResult(msgspec.Struct, kw_only=True, frozen=True):
    id: int
    ok: bool
    tries: int
    error: str | None = None
    retry_at: datetime | None = None


async def record_alerts(store: Store, alerts: Sequence[Alert]) -> list[str]:
    """Insert alerts whose key is new; returns those keys (a known key in the same window is not recorded again)."""
    if not alerts:
        return []
    rows = [a.row() for a in alerts]
    keys = await store.rpc("record_alerts", {"p_alerts": msgspec.json.encode(rows)})
    return [str(k) for k in keys or []]


async def claim_alerts(
    store: Store, *, limit: int = 500, lease_s: int = 120, now: datetime | None = None
) -> list[ClaimedAlert]:
    args: dict[str, Any] = {"p_limit": limit, "p_lease_seconds": lease_s}
    if now is not None:
        args["p_now"] = now
    rows = await store.rpc("claim_alerts", args)
    return msgspec.convert(rows or [], list[ClaimedAlert], strict=False)


async def finish_alerts(store: Store, results: Sequence[SendResult]) -> int:
    if not results:
        return 0
    payload = msgspec.json.encode([msgspec.to_builtins(r) for r in results])
    return int(await store.rpc("finish_alerts", {"p_results": payload}) or 0)


async def scan_cursors(store: Store) -> dict[str, datetime]:
    rows = await store.select("alert_scan_state")
    out: dict[str, datetime] = {}
    for row in rows:
        value = row["scanned_until"]
        out[str(row["scan"])] = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return out


async def advance_scan(store: Store, scan: str, until: datetime) -> None:
    await store.rpc("advance_alert_scan", {"p_scan": scan, "p_until": until})

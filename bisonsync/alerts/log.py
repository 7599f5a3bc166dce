"""The persistent side of alerts: `alert_log` (dedup, claim, finish) and the scan cursors, one SQL call
each (the calls are in `bisonsync.store.api`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from bisonsync.alerts.models import Alert
from bisonsync.store import Store, api
from bisonsync.store.rows import ClaimedAlert, SendResult

__all__ = [
    "ClaimedAlert",
    "SendResult",
    "advance_scan",
    "claim_alerts",
    "claimed_alert",
    "finish_alerts",
    "record_alerts",
    "scan_cursors",
]


def claimed_alert(claimed: ClaimedAlert) -> Alert:
    """The alert a claimed `alert_log` row holds."""
    try:
        return msgspec.convert(claimed.payload, Alert, strict=False)
    except msgspec.ValidationError:  # a payload from an older version: keep what identifies it
        return Alert(
            key=claimed.alert_key,
            condition=claimed.condition,
            severity=claimed.severity,
            window_start=claimed.window_start,
            title=str(claimed.payload.get("title") or claimed.alert_key),
            workspace_id=claimed.workspace_id,
        )


async def record_alerts(store: Store, alerts: Sequence[Alert]) -> list[str]:
    """Insert alerts whose key is new; returns those keys (a known key in the same window is not recorded again)."""
    return await api.record_alerts(store, [a.row() for a in alerts])


async def claim_alerts(
    store: Store, *, limit: int = 500, lease_s: int = 120, now: datetime | None = None
) -> list[ClaimedAlert]:
    return await api.claim_alerts(store, limit=limit, lease_s=lease_s, now=now)


async def finish_alerts(store: Store, results: Sequence[SendResult]) -> int:
    return await api.finish_alerts(store, results)


async def scan_cursors(store: Store) -> dict[str, datetime]:
    return await api.alert_scan_cursors(store)


async def advance_scan(store: Store, scan: str, until: datetime) -> None:
    await api.advance_alert_scan(store, scan, until)

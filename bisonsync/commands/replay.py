"""`bisonsync replay`: re-process ledger entries (e.g. `ignored` events after a new handler ships), idempotently."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import datetime
from typing import Any

from bisonsync.settings import Settings
from bisonsync.store import api, store_from_settings
from bisonsync.store.rows import DeliveryStatus


def register(sub: Any) -> None:
    replay = sub.add_parser("replay", help="re-apply ledger deliveries by status and time range (idempotent)")
    replay.add_argument("--status", default="ignored", choices=["ignored", "failed"], help="ledger status to replay")
    replay.add_argument("--since", type=datetime.fromisoformat, default=None, help="ISO time, inclusive")
    replay.add_argument("--until", type=datetime.fromisoformat, default=None, help="ISO time, exclusive")
    replay.add_argument("--event-type", default=None, help="only this event type")
    replay.add_argument("--limit", type=int, default=10_000)
    replay.add_argument("--dry-run", action="store_true", help="list what would be replayed")
    replay.set_defaults(handler=_replay)


async def replay(
    settings: Settings,
    status: DeliveryStatus,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    event_type: str | None = None,
    limit: int = 10_000,
    dry_run: bool = False,
) -> dict[str, int]:
    """Re-apply ledger rows with `status` in [since, until); returns counts by resulting status."""
    store = store_from_settings(settings)
    await store.open()
    try:
        rows = await api.list_deliveries(store, status, since=since, until=until, event_type=event_type, limit=limit)
        counts: dict[str, int] = {"candidates": len(rows)}
        if dry_run:
            return counts
        for row in rows:
            result = await api.replay_delivery(store, row.id)
            counts[result.status] = counts.get(result.status, 0) + 1
        return counts
    finally:
        await store.close()


def _replay(args: argparse.Namespace) -> int:
    counts = asyncio.run(
        replay(
            Settings.from_env(),
            args.status,
            since=args.since,
            until=args.until,
            event_type=args.event_type,
            limit=args.limit,
            dry_run=args.dry_run,
        )
    )
    print(json.dumps(counts))
    return 0

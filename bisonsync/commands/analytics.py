"""`bisonsync snapshot`, `bisonsync account-stats` and `bisonsync alerts check|pending`."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import date
from typing import Any

import msgspec

from bisonsync.alerts import AlertConfig, AlertWorker, evaluate_alerts, summarize
from bisonsync.analytics import (
    DEFAULT_DROP_THRESHOLD_PCT,
    account_status_by_workspace,
    account_status_stats,
    run_daily_snapshot,
)
from bisonsync.settings import Settings
from bisonsync.store import Store, api, store_from_settings


def register(sub: Any) -> None:
    snap = sub.add_parser(
        "snapshot", help="snapshot provider performance for a day (idempotent) and report reply-rate drops"
    )
    snap.add_argument("--date", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default: today, UTC)")
    snap.add_argument(
        "--threshold",
        type=float,
        default=None,
        help=f"relative drop in percent that counts (default {DEFAULT_DROP_THRESHOLD_PCT:g}, or "
        "BISONSYNC_ALERT_DROP_THRESHOLD_PCT)",
    )
    snap.set_defaults(handler=_snapshot)

    stats = sub.add_parser("account-stats", help="mailbox status buckets and disconnect rate, per workspace")
    stats.add_argument("--workspace", default=None, help="one workspace uuid (default: every workspace)")
    stats.set_defaults(handler=_account_stats)

    alerts = sub.add_parser("alerts", help="scan alert conditions, send pending alerts to Slack")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    check = alerts_sub.add_parser("check", help="scan the conditions; record and send the new alerts")
    check.add_argument("--dry-run", action="store_true", help="only print what holds; record and send nothing")
    check.set_defaults(handler=_alerts_check)
    pending = alerts_sub.add_parser("pending", help="list alerts not yet delivered to Slack")
    pending.add_argument("--limit", type=int, default=100)
    pending.set_defaults(handler=_alerts_pending)


def _print(obj: object) -> None:
    print(msgspec.json.format(msgspec.json.encode(obj), indent=2).decode())


async def _with_store(settings: Settings) -> Store:
    store = store_from_settings(settings)
    await store.open()
    return store


def _snapshot(args: argparse.Namespace) -> int:
    async def run() -> int:
        threshold = args.threshold if args.threshold is not None else AlertConfig.from_env().drop_threshold_pct
        store = await _with_store(Settings.from_env())
        try:
            report = await run_daily_snapshot(store, args.date, threshold)
        finally:
            await store.close()
        _print(report)
        return 0

    return asyncio.run(run())


def _account_stats(args: argparse.Namespace) -> int:
    async def run() -> int:
        store = await _with_store(Settings.from_env())
        try:
            if args.workspace:
                _print(await account_status_stats(store, args.workspace))
            else:
                _print(
                    {
                        "all": await account_status_stats(store),
                        "workspaces": await account_status_by_workspace(store),
                    }
                )
        finally:
            await store.close()
        return 0

    return asyncio.run(run())


def _alerts_check(args: argparse.Namespace) -> int:
    async def run() -> int:
        settings = Settings.from_env()
        store = await _with_store(settings)
        try:
            if args.dry_run:
                alerts = await evaluate_alerts(store, config=AlertConfig.from_env())
                _print({"summary": summarize(alerts), "alerts": alerts})
                return 0
            worker = AlertWorker(store, settings)
            try:
                new = await worker.run_checks()
                report = await worker.flush()
            finally:
                await worker.stop()
            _print({"new": summarize(new), "delivery": report.__dict__})
            return 0 if not report.errors else 1
        finally:
            await store.close()

    return asyncio.run(run())


def _alerts_pending(args: argparse.Namespace) -> int:
    async def run() -> int:
        store = await _with_store(Settings.from_env())
        try:
            rows = await api.unsent_alerts(store)
        finally:
            await store.close()
        keep = ("id", "alert_key", "condition", "severity", "first_seen", "attempts", "last_error", "next_attempt_at")
        out = [{k: v for k, v in msgspec.structs.asdict(r).items() if k in keep} for r in rows[: args.limit]]
        print(json.dumps({"unsent": len(rows), "alerts": out}, indent=2, default=str))
        return 0

    return asyncio.run(run())

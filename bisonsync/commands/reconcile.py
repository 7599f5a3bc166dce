"""`bisonsync reconcile [--month YYYY-MM]`: record webhook-counter drift against Email Bison's stats."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import msgspec

from bisonsync.bison import BisonClient
from bisonsync.reconcile import attach_workspace_keys, parse_month, reconcile
from bisonsync.settings import Settings, SettingsError
from bisonsync.store import Store, store_from_settings


def register(sub: Any) -> None:
    rec = sub.add_parser(
        "reconcile",
        help="compare webhook counters with Email Bison's /stats per workspace and record the drift "
        "(never changes the counters)",
    )
    rec.add_argument(
        "--month", type=parse_month, default=None, help="YYYY-MM (default: each workspace's current month)"
    )
    rec.add_argument(
        "--instance",
        default=None,
        help="instance host the workspaces belong to (default: BISON_INSTANCE, else BISON_BASE_URL's host)",
    )
    rec.add_argument(
        "--workspace", type=int, action="append", default=None, help="Email Bison workspace id (repeatable)"
    )
    rec.add_argument("--json", action="store_true", help="print the full report as JSON")
    rec.set_defaults(handler=_reconcile)


async def open_bison_client(settings: Settings, store: Store, instance: str | None = None) -> BisonClient:
    """The Email Bison client of the settings (BISON_BASE_URL, BISON_API_KEY as the super-admin key) with the
    workspace keys of `instance` named in workspace_credentials.bison_api_key_ref attached."""
    if not settings.bison_base_url:
        raise SettingsError("BISON_BASE_URL is required")
    client = BisonClient(settings.bison_base_url, settings.bison_api_key, max_pages=settings.bison_max_pages)
    await attach_workspace_keys(client, store, instance=instance)
    return client


def _reconcile(args: argparse.Namespace) -> int:
    async def run() -> int:
        settings = Settings.from_env()
        store = store_from_settings(settings)
        await store.open()
        try:
            instance = args.instance or settings.instance_label()
            async with await open_bison_client(settings, store, instance) as client:
                report = await reconcile(
                    store, client, instance=instance, month=args.month, bison_workspace_ids=args.workspace
                )
        finally:
            await store.close()
        if args.json:
            print(msgspec.json.format(msgspec.json.encode(report), indent=2).decode())
        else:
            when = f"{report.checked_at:%Y-%m-%d %H:%M} UTC"
            print(f"instance {report.instance}, month {report.month or 'current'}, checked {when}")
            for w in report.workspaces:
                head = f"{w.bison_workspace_id:>8}  {w.workspace_name[:32]:32}  {w.period_start}..{w.period_end}"
                if w.error:
                    print(f"{head}  ERROR {w.error}")
                    continue
                cells = "  ".join(f"{m.metric}={m.webhook_value}/{m.bison_value}({m.drift:+d})" for m in w.metrics)
                print(f"{head}  {cells}")
        return 1 if report.errors else 0

    return asyncio.run(run())

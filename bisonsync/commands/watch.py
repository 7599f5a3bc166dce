"""`bisonsync watch TABLE`: print realtime changes of a bisonsync table as they commit."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import msgspec

from bisonsync.realtime import ROW_TYPES, ChangeEvent, Watcher


def register(sub: Any) -> None:
    watch = sub.add_parser("watch", help="print live changes of a table (Supabase Realtime)")
    watch.add_argument("table", choices=sorted(ROW_TYPES), help="table to watch")
    watch.add_argument("--workspace", default=None, help="only this workspace (uuid)")
    watch.add_argument("--event", default="*", choices=["*", "INSERT", "UPDATE", "DELETE"])
    watch.add_argument(
        "--token", default=os.environ.get("BISONSYNC_ACCESS_TOKEN"), help="a user's JWT (RLS applies); default: key"
    )
    watch.add_argument("--count", type=int, default=0, help="stop after N changes (0: run until Ctrl-C)")
    watch.add_argument(
        "--broadcast",
        action="store_true",
        help="read the workspace's private broadcast topic instead of postgres_changes (needs --workspace and "
        "`select public.set_realtime_broadcast(true)`; KPI and mailbox tables only)",
    )
    watch.set_defaults(handler=_watch)


async def run_watch(url: str, key: str, args: argparse.Namespace) -> int:
    seen = 0
    broadcast = getattr(args, "broadcast", False)
    if broadcast and not args.workspace:
        raise SystemExit("bisonsync watch --broadcast: --workspace is required (one private topic per workspace)")
    async with Watcher(url, key, access_token=args.token) as watcher:
        stream = (
            watcher.watch_workspace(args.workspace, tables=[args.table])
            if broadcast
            else watcher.watch(args.table, workspace_id=args.workspace, event=args.event)
        )
        async for event in stream:
            if isinstance(event, ChangeEvent):
                if args.event != "*" and event.type != args.event:
                    continue
                seen += 1
                line = {
                    "table": event.table,
                    "type": event.type,
                    "at": event.commit_timestamp.isoformat(),
                    "record": event.record,
                    "old_record": event.old_record,
                }
                sys.stdout.write(msgspec.json.encode(line).decode() + "\n")
            else:
                sys.stderr.write(f"[{event.state}] {event.detail or ''}\n")
            sys.stdout.flush()
            if args.count and seen >= args.count:
                return 0
    return 0


def _watch(args: argparse.Namespace) -> int:
    url = os.environ.get("SUPABASE_URL")
    key = os.environ.get("SUPABASE_ANON_KEY") or os.environ.get("SUPABASE_SERVICE_ROLE_KEY")
    if not url or not key:
        raise SystemExit("bisonsync watch: set SUPABASE_URL and SUPABASE_ANON_KEY (see `bisonsync dev env`)")
    return asyncio.run(run_watch(url, key, args))

"""`bisonsync simulate`: serve a simulated Email Bison on 127.0.0.1, optionally firing webhooks at a local URL."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

from devstack.simulator import GroundTruth, SimulatedBison, SimulatorServer, WebhookFirer

DEFAULT_PORT = 8787
DEFAULT_KEYS_FILE = ".devstack/bison-simulator-keys.json"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "simulate",
        help="serve a simulated Email Bison on 127.0.0.1 (foreground; Ctrl-C stops)",
        description="Serve a deterministic simulated Email Bison instance and print the environment the poller needs.",
    )
    p.add_argument("--workspaces", type=int, default=24, help="workspaces, one of them the parent (default 24)")
    p.add_argument("--mailboxes", type=int, default=4000, help="mailboxes spread over the workspaces (default 4000)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every API request")
    p.add_argument("--seed", type=int, default=0, help="same seed, same data and keys")
    p.add_argument("--keys-file", default=DEFAULT_KEYS_FILE, help="where to write the keys as JSON (mode 0600)")
    p.add_argument("--print-workspace-keys", action="store_true", help="also print every workspace key")
    p.add_argument("--run-seconds", type=float, default=None, help="stop after this long (default: until Ctrl-C)")
    fire = p.add_argument_group("webhooks", "fire realistic webhooks at a local receiver while serving")
    fire.add_argument("--fire-url", help="loopback URL to POST webhooks to")
    fire.add_argument("--fire-rate", type=float, default=20.0, help="deliveries per second (default 20)")
    fire.add_argument("--fire-duration", type=float, default=None, help="seconds to fire (default 60 without a count)")
    fire.add_argument("--fire-count", type=int, default=None, help="deliveries to send at most")
    fire.add_argument(
        "--fire-token-mode",
        choices=("query", "header"),
        default="query",
        help="send the token as ?token= or as the X-Bisonsync-Token header",
    )
    fire.add_argument("--fire-duplicate-share", type=float, default=0.05, help="share of retries (default 0.05)")
    fire.add_argument(
        "--fire-rerender-share",
        type=float,
        default=0.5,
        help="share of retries re-rendered with moved counters (same ids); the rest are byte-for-byte (default 0.5)",
    )
    fire.add_argument("--fire-reorder-share", type=float, default=0.02)
    fire.add_argument(
        "--fire-instance-url",
        choices=("own", "omit", "generic"),
        default="own",
        help="event.instance_url: the simulator's URL, no field at all, or the vendor's canned host (default own)",
    )
    p.add_argument(
        "--bare-sender-emails",
        action="store_true",
        help='fault: answer GET /api/sender-emails with a bare {"data": [...]} (no links, no meta)',
    )
    p.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    return asyncio.run(serve(args))


def _write_keys(path: Path, sim: SimulatedBison, base_url: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "base_url": base_url,
        "super_admin_key": sim.super_admin_key,
        "workspace_keys": {str(k): v for k, v in sim.workspace_keys.items()},
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(body, f, indent=2)


def _report(truth: GroundTruth) -> str:
    by_type = {t: truth.total(t) for t in sorted({t for c in truth.fired.values() for t in c})}
    return (
        f"firer done: {truth.deliveries} deliveries ({truth.distinct} distinct, {truth.duplicates} retries "
        f"({truth.rerendered} re-rendered), "
        f"{truth.reordered} reordered, {truth.failures} failed) in {truth.elapsed_s:.1f}s; by type {by_type}"
    )


def _print_report(task: asyncio.Task[GroundTruth]) -> None:
    if not task.cancelled() and task.exception() is None:
        print(_report(task.result()), flush=True)


async def serve(args: argparse.Namespace) -> int:
    sim = SimulatedBison(workspaces=args.workspaces, mailboxes=args.mailboxes, seed=args.seed)
    sim.faults.latency_ms = args.latency_ms
    if args.bare_sender_emails:
        sim.set_faults(bare_data=[{"path": "/api/sender-emails"}])
    async with SimulatorServer(sim, port=args.port) as server:
        keys_file = Path(args.keys_file)
        _write_keys(keys_file, sim, server.base_url)
        print(
            f"bison simulator: {len(sim.teams)} workspaces, {len(sim.mailboxes)} mailboxes, seed {args.seed}, "
            f"on {server.base_url}",
            flush=True,
        )
        print(f"export BISON_BASE_URL={server.base_url} BISON_API_KEY={shlex.quote(sim.super_admin_key)}", flush=True)
        print(f"# workspace keys (JSON): {keys_file}", flush=True)
        if args.print_workspace_keys:
            for team_id, key in sim.workspace_keys.items():
                print(f"# workspace {team_id} {sim.teams[team_id].name.strip()!r}: {shlex.quote(key)}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
        firer: WebhookFirer | None = None
        fire_task: asyncio.Task[GroundTruth] | None = None
        if args.fire_url:
            duration = args.fire_duration if args.fire_duration is not None or args.fire_count else 60.0
            firer = WebhookFirer(
                args.fire_url,
                sim,
                rate_per_s=args.fire_rate,
                duration_s=duration,
                count=args.fire_count,
                duplicate_share=args.fire_duplicate_share,
                reorder_share=args.fire_reorder_share,
                rerender_share=args.fire_rerender_share,
                instance_url=args.fire_instance_url,
                token=os.environ.get("BISONSYNC_WEBHOOK_TOKEN"),
                token_mode=args.fire_token_mode,
                seed=args.seed,
            )
            fire_task = asyncio.create_task(firer.run())
            fire_task.add_done_callback(_print_report)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.run_seconds)
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            if firer is not None and fire_task is not None:
                firer.stop()
                with contextlib.suppress(Exception):
                    await fire_task
                if fire_task.done() and not fire_task.cancelled() and fire_task.exception() is not None:
                    print(f"firer failed: {fire_task.exception()}", file=sys.stderr)
    print("bison simulator stopped", flush=True)
    return 0

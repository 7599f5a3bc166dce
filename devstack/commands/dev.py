"""`bisonsync dev up|down|status|env`: the Docker-free local Supabase stack."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import threading
from typing import Any

from devstack.stack import DevStack


def register(sub: Any) -> None:
    dev = sub.add_parser("dev", help="run the Docker-free local Supabase stack (devstack)")
    dev_sub = dev.add_subparsers(dest="dev_command", metavar="ACTION", required=True)

    up = dev_sub.add_parser("up", help="start PostgreSQL + gateway, apply migrations (foreground; Ctrl-C stops)")
    up.add_argument("--detach", action="store_true", help="return once healthy, leave the stack running")
    up.set_defaults(handler=_up)

    down = dev_sub.add_parser("down", help="stop the gateway and PostgreSQL")
    down.set_defaults(handler=_down)

    status = dev_sub.add_parser("status", help="print what runs where, as JSON")
    status.set_defaults(handler=_status)

    env = dev_sub.add_parser("env", help="print export lines for SUPABASE_URL, keys and DATABASE_URL")
    env.set_defaults(handler=_env)


def _up(args: argparse.Namespace) -> int:
    stack = DevStack()
    asyncio.run(stack.up())
    print(f"devstack up: API {stack.api_url}  DB {stack.cluster.dsn('postgres')}", flush=True)
    if args.detach:
        return 0
    print("Ctrl-C stops the stack.", flush=True)
    wait_for_signal()
    stack.down()
    print("devstack stopped", flush=True)
    return 0


def wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(0.5):
        pass


def _down(args: argparse.Namespace) -> int:
    DevStack().down()
    print("devstack stopped")
    return 0


def _status(args: argparse.Namespace) -> int:
    print(json.dumps(DevStack().status(), indent=2))
    return 0


def _env(args: argparse.Namespace) -> int:
    print(DevStack().env().exports())
    return 0

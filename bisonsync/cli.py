"""`bisonsync` command line. Each command group lives in `bisonsync.commands.<name>` and registers itself."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# Modules under bisonsync.commands, each with `register(subparsers)`.
COMMAND_MODULES: tuple[str, ...] = (
    "dev",
    "db",
    "serve",
    "run",
    "poll",
    "replay",
    "config",
    "watch",
    "simulate",
    "analytics",
    "reconcile",
    "webhooks",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bisonsync",
        description="Keep a Supabase database in real-time step with Email Bison.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"bisonsync.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

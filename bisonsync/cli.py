"""`bisonsync` command line.

Each command group is a module with `register(subparsers)`. Core commands live in `bisonsync.commands`; the
service's (`serve`) in `service.commands`, the dev tooling's (`dev`, `simulate`, `run`) in `devstack.commands`.
Dispatch is lazy and by name: only the module of the command being run is imported, so the core commands need none
of the web or dev dependencies, and the core never imports the service or the dev tooling statically (layers
point one way). A layer whose dependencies are missing shows which extra to install.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# command -> (module, extra that provides its dependencies, one-line help shown when the module cannot load)
COMMANDS: dict[str, tuple[str, str | None, str]] = {
    "dev": ("devstack.commands.dev", "dev", "the Docker-free local Supabase stack"),
    "db": ("bisonsync.commands.db", None, "database migrations"),
    "serve": ("service.commands.serve", "service", "run the webhook service"),
    "run": ("devstack.commands.run", "dev", "the living demo: stack + simulator + service"),
    "poll": ("bisonsync.commands.poll", None, "sync workspaces and sender mailboxes"),
    "replay": ("bisonsync.commands.replay", None, "re-apply ledger entries"),
    "config": ("bisonsync.commands.config", None, "settings in effect"),
    "watch": ("bisonsync.commands.watch", None, "print realtime changes"),
    "simulate": ("devstack.commands.simulate", "dev", "serve a simulated Email Bison"),
    "analytics": ("bisonsync.commands.analytics", None, "snapshots, account stats, alerts"),
    "reconcile": ("bisonsync.commands.reconcile", None, "webhook counters vs Email Bison stats"),
    "webhooks": ("bisonsync.commands.webhooks", None, "install and verify Email Bison webhooks"),
    "keys": ("bisonsync.commands.keys", None, "workspace API keys in Supabase Vault"),
}

Handler = Callable[[argparse.Namespace], int]


def _register(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    module_name, extra, summary = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"pip install 'bisonsync[{extra}]'" if extra else "reinstall bisonsync"
        missing = sub.add_parser(name, help=f"{summary} (unavailable: {exc.name or exc}; {hint})")
        missing.set_defaults(handler=_unavailable(name, hint, exc))
        return
    module.register(sub)


def _unavailable(name: str, hint: str, exc: ImportError) -> Handler:
    def handler(_: argparse.Namespace) -> int:
        print(f"bisonsync {name}: needs {exc.name or exc}, which is not installed ({hint})", file=sys.stderr)
        return 2

    return handler


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that command's module is imported (the others are not listed)."""
    parser = argparse.ArgumentParser(
        prog="bisonsync",
        description="Keep a Supabase database in real-time step with Email Bison.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS if only is None else (only,):
        _register(sub, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in args_in if not a.startswith("-")), None)
    parser = build_parser(first if first in COMMANDS else None)
    args = parser.parse_args(args_in)
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

"""`bisonsync keys provision|verify|list`: workspace-scoped Email Bison keys, made with the super-admin key and kept
in Supabase Vault, so a super-admin-only deployment polls its workspaces in parallel.

Configured by BISON_BASE_URL, BISON_API_KEY (the super-admin key) and DATABASE_URL (or SUPABASE_URL +
SUPABASE_SERVICE_ROLE_KEY). Keys are never printed; only their last 4 characters. Exit status: 0 all well,
1 some workspace failed (or, for verify, a key is refused or missing), 2 configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from bisonsync.bison import BisonClient, BisonError
from bisonsync.keys import key_status, provision_keys, verify_keys
from bisonsync.settings import Settings, SettingsError
from bisonsync.store import Store, StoreError, store_from_settings
from bisonsync.sync.workspaces import sync_workspaces

EXIT_CONFIG = 2


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="provision / verify workspace API keys kept in Supabase Vault")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--instance", default=None, help="instance label (default: BISON_INSTANCE, else BISON_BASE_URL's host)"
        )
        p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])

    provision = keys_sub.add_parser(
        "provision",
        help="create a workspace-scoped key for every workspace that has none (or a failed one); idempotent",
    )
    common(provision)
    provision.add_argument(
        "--rotate", action="store_true", help="replace every stored key; revoke the old ones where Email Bison allows"
    )
    provision.add_argument(
        "--no-registry", action="store_true", help="do not sync the workspace list from Email Bison first"
    )
    provision.add_argument("--concurrency", type=int, default=4, help="keys created at once (default 4)")
    provision.set_defaults(handler=_provision)

    verify = keys_sub.add_parser("verify", help="call Email Bison with every stored key; report those that fail")
    common(verify)
    verify.set_defaults(handler=_verify)

    listing = keys_sub.add_parser("list", help="which workspaces have a stored key (never the key)")
    common(listing)
    listing.set_defaults(handler=_list)


def _open(settings: Settings) -> tuple[Store, str]:
    store = store_from_settings(settings)
    return store, settings.instance_label()


def _client(settings: Settings) -> BisonClient:
    if not settings.bison_base_url:
        raise SettingsError("BISON_BASE_URL is not set")
    if not settings.bison_api_key:
        raise SettingsError("BISON_API_KEY (the super-admin key) is not set")
    return BisonClient(settings.bison_base_url, settings.bison_api_key, max_pages=settings.bison_max_pages)


def _run(args: argparse.Namespace, body: Any, *, bison: str = "") -> int:
    """`bison`: "" no Email Bison needed, "url" BISON_BASE_URL, "super" BISON_BASE_URL + BISON_API_KEY."""
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        if bison:
            if not settings.bison_base_url:
                raise SettingsError("BISON_BASE_URL is not set")
            if bison == "super" and not settings.bison_api_key:
                raise SettingsError("BISON_API_KEY (the super-admin key) is not set")
        store, instance = _open(settings)
        instance = args.instance or instance
    except SettingsError as exc:
        print(f"bisonsync keys: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    async def main() -> int:
        await store.open()
        try:
            result: int = await body(settings, store, instance)
            return result
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except (SettingsError, ValueError) as exc:
        print(f"bisonsync keys: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (StoreError, BisonError) as exc:
        print(f"bisonsync keys: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _provision(args: argparse.Namespace) -> int:
    async def body(settings: Settings, store: Store, instance: str) -> int:
        async with _client(settings) as client:
            if not args.no_registry:
                registry = await sync_workspaces(store, client, instance)
                print(f"workspace registry: {registry.summary()}")
            report = await provision_keys(store, client, instance, rotate=args.rotate, concurrency=args.concurrency)
        for o in report.outcomes:
            line = f"{o.bison_workspace_id:>8}  {o.name[:32]:32}  {o.action:8}"
            if o.revoked_previous is True:
                line += "  old key revoked"
            elif o.revoked_previous is False:
                line += "  old key NOT revoked (delete it under Settings -> Developer API)"
            if o.detail:
                line += f"  {o.detail}"
            print(line)
        print(report.summary())
        return 0 if report.ok else 1

    return _run(args, body, bison="super")


def _verify(args: argparse.Namespace) -> int:
    async def body(settings: Settings, store: Store, instance: str) -> int:
        if not settings.bison_base_url:
            raise SettingsError("BISON_BASE_URL is not set")
        async with BisonClient(settings.bison_base_url, settings.bison_api_key) as client:
            report = await verify_keys(store, client, instance)
        for o in report.outcomes:
            state = o.state if o.state == "ok" else o.state.upper()
            print(f"{o.bison_workspace_id:>8}  {o.name[:32]:32}  {state:8}  {o.detail}")
        print(report.summary())
        return 0 if report.ok else 1

    return _run(args, body, bison="url")


def _list(args: argparse.Namespace) -> int:
    async def body(settings: Settings, store: Store, instance: str) -> int:
        rows = await key_status(store, instance)
        for r in rows:
            if r.env_ref:
                state = f"env var {r.env_ref}"
            elif not r.has_key:
                state = "no key"
            elif r.failed_at is not None:
                state = f"FAILED since {r.failed_at}: {r.error}"
            else:
                state = f"stored {r.provisioned_at} (token id {r.token_id or '?'})"
            print(f"{r.bison_workspace_id:>8}  {r.name[:32]:32}  {state}")
        stored = sum(1 for r in rows if r.healthy)
        print(f"{instance}: {stored} of {len(rows)} active workspaces have a healthy stored key")
        return 0

    return _run(args, body)

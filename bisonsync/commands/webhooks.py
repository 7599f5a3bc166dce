"""`bisonsync webhooks install|verify`: register the service's URL in every Email Bison workspace, and check it."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bisonsync.commands.reconcile import open_bison_client
from bisonsync.settings import Settings, SettingsError
from bisonsync.store import store_from_settings
from bisonsync.webhooks_admin import install_webhooks, report_json, verify_webhooks


def register(sub: Any) -> None:
    hooks = sub.add_parser("webhooks", help="register / verify the bisonsync webhook in every Email Bison workspace")
    hooks_sub = hooks.add_subparsers(dest="webhooks_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", required=True, help="the service's webhook URL, e.g. https://host/webhooks/bison")
        p.add_argument(
            "--instance",
            default=None,
            help="instance host deliveries carry (default: BISON_INSTANCE, else BISON_BASE_URL's host)",
        )
        p.add_argument(
            "--workspace", type=int, action="append", default=None, help="Email Bison workspace id (repeatable)"
        )
        p.add_argument("--json", action="store_true", help="print the report as JSON")

    install = hooks_sub.add_parser(
        "install", help="register --url for every event type in every workspace (idempotent; per-workspace tokens)"
    )
    common(install)
    install.add_argument("--global-token", action="store_true", help="use BISONSYNC_WEBHOOK_TOKEN in every URL")
    install.add_argument("--rotate-token", action="store_true", help="issue new per-workspace tokens")
    install.add_argument("--name", default="bisonsync", help="registration name shown in Email Bison")
    install.set_defaults(handler=_install)

    verify = hooks_sub.add_parser("verify", help="report missing events, missing or duplicate registrations")
    common(verify)
    verify.set_defaults(handler=_verify)


def _install(args: argparse.Namespace) -> int:
    async def run() -> int:
        settings = Settings.from_env()
        if args.global_token and not settings.webhook_token:
            raise SettingsError("--global-token needs BISONSYNC_WEBHOOK_TOKEN")
        store = store_from_settings(settings)
        await store.open()
        try:
            instance = args.instance or settings.instance_label()
            async with await open_bison_client(settings, store, instance) as client:
                report = await install_webhooks(
                    client,
                    store,
                    args.url,
                    instance=instance,
                    global_token=settings.webhook_token if args.global_token else None,
                    rotate=args.rotate_token,
                    name=args.name,
                    bison_workspace_ids=args.workspace,
                )
        finally:
            await store.close()
        if args.json:
            print(report_json(report).decode())
            return 0 if report.ok else 1
        print(f"{report.url} for {len(report.event_types)} event types, instance {report.instance}")
        for w in report.workspaces:
            line = f"{w.bison_workspace_id:>8}  {w.name[:32]:32}  {w.action:9}"
            if w.error:
                line += f"  ERROR {w.error}"
            else:
                line += f"  webhook {w.webhook_id}, +{len(w.events_added)} events"
                if w.duplicates_removed:
                    line += f", removed duplicates {w.duplicates_removed}"
                if w.legacy:
                    line += f", {len(w.legacy)} predecessor registration(s) left in place"
            print(line)
        tokens = [w for w in report.workspaces if w.token]
        if tokens:
            print("\nNew per-workspace webhook tokens (shown once; only their sha256 is stored):")
            for w in tokens:
                print(f"{w.bison_workspace_id:>8}  {w.token}")
        return 0 if report.ok else 1

    return asyncio.run(run())


def _verify(args: argparse.Namespace) -> int:
    async def run() -> int:
        settings = Settings.from_env()
        store = store_from_settings(settings)
        await store.open()
        try:
            instance = args.instance or settings.instance_label()
            async with await open_bison_client(settings, store, instance) as client:
                report = await verify_webhooks(
                    client,
                    args.url,
                    store=store,
                    instance=instance,
                    global_token=settings.webhook_token,
                    bison_workspace_ids=args.workspace,
                )
        finally:
            await store.close()
        if args.json:
            print(report_json(report).decode())
        else:
            for w in report.workspaces:
                status = "ok" if w.ok else "PROBLEM"
                print(f"{w.bison_workspace_id:>8}  {w.name[:32]:32}  {status}")
                for p in w.problems:
                    print(f"          - {p}")
                for warning in w.warnings:
                    print(f"          ! {warning}")
            bad = sum(1 for w in report.workspaces if not w.ok)
            print(f"{len(report.workspaces) - bad} of {len(report.workspaces)} workspaces ok")
        return 0 if report.ok else 1

    return asyncio.run(run())

"""`bisonsync run` (what `make run` calls): everything, wired, in the foreground; Ctrl-C stops it all.

Without configuration it is a living demo: the local devstack (PostgreSQL + gateway), the Email Bison simulator,
`bisonsync serve` polling it, and simulated Email Bison webhooks at a gentle rate (with the odd disconnect).
With DATABASE_URL or SUPABASE_URL (+ key) set it uses that database instead of the devstack; with BISON_BASE_URL
and BISON_API_KEY set it polls that Email Bison instance instead of the simulator and fires no fake webhooks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
from typing import Any

from bisonsync.logs import setup_logging
from bisonsync.settings import Settings

DEMO_WEBHOOK_TOKEN = "local-dev-webhook-token"  # public local default, as in .env.example
DEMO_INSTANCE_URL = "https://bison.local"
# The local demo's dashboard login (local devstack only; a public default like the stack's keys).
DEMO_EMAIL = "demo@bisonsync.local"
DEMO_PASSWORD = "bisonsync-demo"


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="run the whole thing: local stack, simulator, service, live webhooks (demo)")
    run.add_argument("--port", type=int, default=None, help="service port (default $BISONSYNC_PORT or 8000)")
    run.add_argument("--workspaces", type=int, default=4, help="simulated workspaces (demo only)")
    run.add_argument("--mailboxes", type=int, default=300, help="simulated mailboxes (demo only)")
    run.add_argument("--rate", type=float, default=2.0, help="simulated webhooks per second (demo only)")
    run.add_argument("--poll-interval", type=int, default=60, help="seconds between mailbox polls (demo: 60)")
    run.add_argument("--run-seconds", type=float, default=0, help="stop after N seconds (0: until Ctrl-C)")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    return asyncio.run(run(args))


async def run(args: argparse.Namespace) -> int:
    from devstack.simulator import SimulatedBison, SimulatorServer, WebhookFirer
    from devstack.stack import DevStack

    setup_logging("warning")
    settings = Settings.from_env()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async with contextlib.AsyncExitStack() as stack:
        # 1. the database: the configured one, else the local devstack
        local_stack = not (settings.database_url or (settings.supabase_url and settings.supabase_service_role_key))
        if local_stack:
            dev = DevStack()
            await dev.up()
            stack.callback(dev.down)
            env = dev.env()
            settings = dataclasses.replace(
                settings,
                database_url=env.database_url,
                supabase_url=env.supabase_url,
                supabase_service_role_key=env.service_role_key,
                supabase_anon_key=env.anon_key,
            )
            print(f"  Supabase (devstack)  {env.supabase_url}   DB {env.database_url}", flush=True)
        # 2. Email Bison: the configured instance, else the simulator (and a firer of its webhooks)
        sim: SimulatedBison | None = None
        if not (settings.bison_base_url and settings.bison_api_key):
            sim = SimulatedBison(
                workspaces=args.workspaces, mailboxes=args.mailboxes, seed=7, instance_url=DEMO_INSTANCE_URL
            )
            server = SimulatorServer(sim)
            await server.start()
            stack.push_async_callback(server.stop)
            settings = dataclasses.replace(
                settings,
                bison_base_url=server.base_url,
                bison_api_key=sim.super_admin_key,
                bison_instance=DEMO_INSTANCE_URL,
                webhook_token=settings.webhook_token or DEMO_WEBHOOK_TOKEN,
            )
            print(f"  Email Bison simulator {server.base_url}  ({args.workspaces} ws, {args.mailboxes} mailboxes)")
        settings = dataclasses.replace(settings, poll_interval_s=args.poll_interval, port=args.port or settings.port)
        # 3. a first sync, so the dashboard has workspaces and mailboxes at once (the service keeps polling)
        await _first_sync(settings)
        if local_stack:
            await _demo_member(settings)
            print(f"  dashboard login       {DEMO_EMAIL} / {DEMO_PASSWORD}  (member of every workspace)")
        # 4. the service
        service_url = await _start_service(settings, stack)
        print(f"  bisonsync service     {service_url}   (dashboard: {service_url}/, API docs: {service_url}/schema)")
        print(f"  webhook URL           {service_url}/webhooks/bison?token=<BISONSYNC_WEBHOOK_TOKEN>", flush=True)
        # 5. simulated webhooks, in bounded batches, until stopped
        if sim is not None:
            batch = 0

            async def fire_forever() -> None:
                nonlocal batch
                while not stop.is_set():
                    batch += 1
                    firer = WebhookFirer(
                        f"{service_url}/webhooks/bison",
                        sim,
                        rate_per_s=args.rate,
                        duration_s=60,
                        token=settings.webhook_token,
                        seed=batch,
                        concurrency=2,
                    )
                    await firer.run()

            firing = asyncio.create_task(fire_forever())
            stack.callback(firing.cancel)
            print(f"  firing ~{args.rate:g} simulated webhooks/s at the service", flush=True)
        print("Ctrl-C stops everything.", flush=True)
        if args.run_seconds:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.run_seconds)
        else:
            await stop.wait()
        print("stopping...", flush=True)
    return 0


async def _first_sync(settings: Settings) -> None:
    from bisonsync.store import store_from_settings
    from bisonsync.sync.scheduled import client_from_settings, run_sync_cycle

    store = store_from_settings(settings)
    await store.open()
    try:
        async with client_from_settings(settings) as client:
            report = await run_sync_cycle(settings, store, client)
        print(f"  first sync            {report.mailboxes.status}: {report.mailboxes.totals}", flush=True)
    finally:
        await store.close()


async def _demo_member(settings: Settings) -> None:
    """A dashboard user who is a member of every polled workspace (created through the devstack's GoTrue admin
    API), and demo targets for those workspaces."""
    import asyncpg
    import httpx

    assert settings.supabase_url and settings.supabase_service_role_key and settings.database_url
    key = settings.supabase_service_role_key
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(
            f"{settings.supabase_url}/auth/v1/admin/users",
            headers={"apikey": key, "authorization": f"Bearer {key}"},
            json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD, "email_confirm": True},
        )
        if r.status_code not in (200, 201, 422):  # 422: exists from an earlier run
            r.raise_for_status()
    conn = await asyncpg.connect(settings.database_url)
    try:
        instance = settings.instance_label()
        await conn.execute(
            "insert into public.workspace_members (user_id, workspace_id) "
            "select u.id, w.id from auth.users u cross join public.workspaces w where u.email = $1 and w.instance = $2 "
            "on conflict do nothing",
            DEMO_EMAIL,
            instance,
        )
        # demo targets, so the dashboard's progress bars have something to measure against
        await conn.execute(
            "update public.workspaces set monthly_sending_target = coalesce(monthly_sending_target, 600), "
            "monthly_kpi_target = coalesce(monthly_kpi_target, 12) where instance = $1",
            instance,
        )
    finally:
        await conn.close()


async def _start_service(settings: Settings, stack: contextlib.AsyncExitStack) -> str:
    from service.app import create_app
    from service.server import ServiceServer

    # served as `bisonsync serve` serves it: behind the slow-client guard (header/body deadlines, connection cap)
    server = ServiceServer(create_app(settings), settings, port=settings.port)
    await server.start()
    stack.push_async_callback(server.stop)
    return server.base_url

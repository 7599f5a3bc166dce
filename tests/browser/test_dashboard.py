"""The live dashboard end to end: a workspace member signs in through the devstack's GoTrue, the page reads their
workspaces through PostgREST (RLS), and a webhook posted to the service shows up on the page through Realtime,
without a reload. Screenshots go to test-artifacts/ (dashboard.png, dashboard-dark.png, dashboard-signin.png).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.browser.conftest import ServiceHandle
from tests.conftest import StackHandle

PASSWORD = "dashboard-demo-password"
TZ = "America/Chicago"


async def _seed_workspace(
    db: asyncpg.Connection, instance: str, bison_id: int, name: str, sending: int | None, kpi: int | None, shift: int
) -> uuid.UUID:
    """A workspace with counters for every local day of this month so far (today's left for the webhooks)."""
    ws: uuid.UUID = await db.fetchval("select public.upsert_workspace($1, $2, $3, $4)", instance, bison_id, name, TZ)
    await db.execute(
        "update public.workspaces set monthly_sending_target = $2, monthly_kpi_target = $3 where id = $1",
        ws,
        sending,
        kpi,
    )
    await db.execute(
        """
        insert into public.client_metrics_daily (workspace_id, day, emails_sent, replies, interested, bounced,
                                                 unsubscribed)
        select $1, d::date,
               700 + $2 * 40 + ((extract(day from d)::int + $2) * 37) % 260
                   - case when extract(isodow from d) in (6, 7) then 380 else 0 end,
               9 + (extract(day from d)::int + $2) % 7,
               case when (extract(day from d)::int + $2) % 3 = 0 then 2 else 1 end,
               6 + (extract(day from d)::int + $2) % 5,
               (extract(day from d)::int + $2) % 3
          from generate_series(date_trunc('month', now() at time zone $3)::date,
                               (now() at time zone $3)::date - 1, interval '1 day') d
        """,
        ws,
        shift,
        TZ,
    )
    return ws


PEOPLE = [
    ("Avery", "Stone", "Stone Logistics"),
    ("Morgan", "Lee", "Lee & Sons Trucking"),
    ("Riley", "Park", "Park Dental"),
    ("Casey", "Nguyen", None),
    ("Jamie", "Ortiz", "Ortiz Farms"),
]


async def _seed_leads(db: asyncpg.Connection, ws: uuid.UUID, people: list[tuple[str, str, str | None]]) -> None:
    for i, (first, last, company) in enumerate(people):
        await db.execute(
            """
            insert into public.client_leads (workspace_id, lead_email, first_name, last_name, company,
                                             pipeline_stage, interested, interested_at)
            values ($1, $2, $3, $4, $5, 'interested', true, now() - make_interval(hours => $6))
            """,
            ws,
            f"{first.lower()}.{last.lower()}.{uuid.uuid4().hex[:6]}@example.com",
            first,
            last,
            company,
            3 + i * 7,
        )


async def _seed_mailboxes(db: asyncpg.Connection, ws: uuid.UUID, base_id: int) -> None:
    plan = [  # provider, reseller, connected, disconnected, failed
        ("Google", "CheapInboxes", 46, 2, 0),
        ("Outlook", "Zapmail", 31, 0, 1),
        ("Microsoft", "ScaledMail", 18, 3, 0),
        ("Google", "Mailr", 12, 0, 0),
    ]
    n = 0
    for provider, reseller, connected, disconnected, failed in plan:
        for status, count in (("Connected", connected), ("Disconnected", disconnected), ("Failed", failed)):
            for _ in range(count):
                n += 1
                sent = 300 + (n * 53) % 400
                await db.execute(
                    """
                    insert into public.sender_emails_cache (workspace_id, instance, bison_sender_id, email_address,
                        status, email_provider, reseller, emails_sent_count, total_replied_count,
                        unique_replied_count, bounced_count, last_synced_at)
                    values ($1, '', $2, $3, $4, $5, $6, $7, $8, $8, $9, now() - interval '20 minutes')
                    """,
                    ws,
                    base_id + n,
                    f"sender{n}@mail{n % 7}.example.net",
                    status,
                    provider,
                    reseller,
                    sent,
                    3 + n % 9,
                    n % 7,
                )


async def _seed_provider_history(db: asyncpg.Connection, instance: str) -> None:
    await db.execute(
        """
        insert into public.provider_performance_history (email_provider, instance, total_accounts, active_accounts,
                                                         total_sent, avg_reply_rate, snapshot_date)
        select p.name, $1, p.accounts, p.accounts - 2, 1000 * p.accounts,
               round((p.base + p.amp * sin(g / 2.3) + g * p.trend)::numeric, 2), current_date - g
          from generate_series(0, 20) g
         cross join (values ('Google', 58, 2.6, 0.35, -0.02), ('Outlook', 32, 1.7, 0.25, 0.015),
                            ('Microsoft', 21, 1.2, 0.2, 0.01)) p(name, accounts, base, amp, trend)
        """,
        instance,
    )


def _webhook(event_type: str, instance: str, bison_id: int, name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "event": {
            "type": event_type,
            "name": event_type,
            "instance_url": f"https://{instance}",
            "workspace_id": bison_id,
            "workspace_name": name,
        },
        "data": data,
    }


async def _read_event(proc: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    while True:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        if not line:
            stderr = await proc.stderr.read() if proc.stderr else b""
            raise AssertionError(f"the browser driver ended early: {stderr.decode()[-3000:]}")
        text = line.decode().strip()
        if text.startswith("{"):
            event: dict[str, Any] = json.loads(text)
            if event.get("event") == "error":
                raise AssertionError(f"browser driver failed: {event['message']}\nproblems: {event['problems']}")
            return event


def _count(text: str | None) -> int:
    assert text is not None
    return int(re.sub(r"\D", "", text))


@pytest.mark.parametrize("transport", ["postgres_changes", "broadcast"])
async def test_dashboard_shows_member_workspaces_and_updates_live_without_reload(
    devstack: StackHandle,
    db: asyncpg.Connection,
    unique_ws: int,
    service: ServiceHandle,
    chromium_path: Path,
    playwright_dir: Path,
    artifacts_dir: Path,
    transport: str,
) -> None:
    """With `broadcast`, the database's opt-in triggers carry the KPI change (the page's postgres_changes channel
    then leaves client_metrics_daily out), so the emails-sent count moving proves the private topic works."""
    if transport == "broadcast":
        await db.execute("select public.set_realtime_broadcast(true)")
    try:
        await _dashboard_run(devstack, db, unique_ws, service, chromium_path, playwright_dir, artifacts_dir, transport)
    finally:
        if transport == "broadcast":
            await db.execute("select public.set_realtime_broadcast(false)")


async def _dashboard_run(
    devstack: StackHandle,
    db: asyncpg.Connection,
    unique_ws: int,
    service: ServiceHandle,
    chromium_path: Path,
    playwright_dir: Path,
    artifacts_dir: Path,
    transport: str,
) -> None:
    instance = f"demo-{unique_ws}.bison.test"
    acme = await _seed_workspace(db, instance, unique_ws, "Acme Roofing", 30000, 45, 0)
    birch = await _seed_workspace(db, instance, unique_ws + 1, "Birch Insurance Group", 21000, 30, 5)
    hidden = await _seed_workspace(db, instance, unique_ws + 2, "Not Your Client", 1000, 10, 2)
    await _seed_leads(db, acme, PEOPLE[:3])
    await _seed_leads(db, birch, PEOPLE[3:])
    await _seed_mailboxes(db, acme, unique_ws * 1000)
    await _seed_provider_history(db, instance)

    email = f"member-{unique_ws}@example.test"
    key = devstack.env.service_role_key
    async with httpx.AsyncClient(timeout=30) as http:
        created = await http.post(
            f"{devstack.env.supabase_url}/auth/v1/admin/users",
            headers={"apikey": key, "Authorization": f"Bearer {key}"},
            json={"email": email, "password": PASSWORD, "email_confirm": True},
        )
        assert created.status_code == 200, created.text
        user_id = uuid.UUID(created.json()["id"])
        await db.executemany(
            "insert into public.workspace_members (user_id, workspace_id) values ($1, $2)",
            [(user_id, acme), (user_id, birch)],
        )

        # one earlier delivery, so webhook health has something to show before the live change
        warmup = _webhook(
            "email_sent",
            instance,
            unique_ws + 1,
            "Birch Insurance Group",
            {
                "lead": {"id": unique_ws, "email": "warm@example.com"},
                "scheduled_email": {"id": unique_ws * 10 + 1, "sent_at": "2026-11-29T10:00:00Z"},
            },
        )
        resp = await http.post(
            f"{service.url}/webhooks/bison", params={"token": service.webhook_token, "instance": instance}, json=warmup
        )
        assert resp.status_code == 200, resp.text

        proc = await asyncio.create_subprocess_exec(
            "node",
            "dashboard_driver.mjs",
            cwd=playwright_dir,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={
                **os.environ,
                "DASHBOARD_URL": service.url + "/",
                "DASHBOARD_EMAIL": email,
                "DASHBOARD_PASSWORD": PASSWORD,
                "DASHBOARD_WORKSPACE": str(acme),
                "DASHBOARD_ARTIFACTS": str(artifacts_dir),
                "CHROMIUM_PATH": str(chromium_path),
            },
        )
        try:
            ready = await _read_event(proc, 120)
            assert ready["event"] == "ready"
            assert ready["signinError"] == "Wrong email or password."
            assert ready["user"] == email
            assert sorted(ready["workspaces"]) == sorted([str(acme), str(birch)]), "RLS: member workspaces only"
            before = ready["before"]

            # the live change: a lead turns interested and an email goes out, both through the real webhook path
            lead_id = unique_ws * 7
            interested = _webhook(
                "lead_interested",
                instance,
                unique_ws,
                "Acme Roofing",
                {
                    "lead": {
                        "id": lead_id,
                        "email": f"jordan.rivera.{unique_ws}@example.com",
                        "first_name": "Jordan",
                        "last_name": "Rivera",
                        "company": "Rivera Freight",
                        "interested": True,
                    },
                    "reply": {
                        "id": lead_id,
                        "uuid": str(uuid.uuid4()),
                        "date_received": "2026-11-29T10:00:00Z",
                        "interested": True,
                        "text_body": "Yes, send a quote",
                    },
                    "campaign": {"id": 5, "name": "Q4 Fleet"},
                },
            )
            sent = _webhook(
                "email_sent",
                instance,
                unique_ws,
                "Acme Roofing",
                {
                    "lead": {"id": lead_id, "email": f"jordan.rivera.{unique_ws}@example.com"},
                    "scheduled_email": {"id": unique_ws * 10 + 2, "sent_at": "2026-11-29T10:01:00Z"},
                },
            )
            for body in (interested, sent):
                resp = await http.post(
                    f"{service.url}/webhooks/bison",
                    params={"token": service.webhook_token, "instance": instance},
                    json=body,
                )
                assert resp.status_code == 200, resp.text
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
            proc.stdin.close()
            done = await _read_event(proc, 120)
        finally:
            if proc.returncode is None:
                try:
                    await asyncio.wait_for(proc.wait(), 60)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()

    print(f"browser: signed in and ready after {ready['t']} ms; live change seen in {done['latencyMs']} ms")
    assert done["after"]["sent"] is not None, "emails sent did not change on the page"
    assert _count(done["after"]["sent"]) == _count(before["sent"]) + 1
    assert done["after"]["interested"] is not None, "interested leads did not change on the page"
    assert _count(done["after"]["interested"]) == _count(before["interested"]) + 1
    assert done["newLeadName"] == "Jordan Rivera"
    assert done["sameDocument"] is True and done["navigations"] == 0, "the page reloaded"
    assert done["liveState"] == "live"
    assert done["transport"] == transport
    assert done["panelErrors"] == []
    assert done["offsite"] == [], "the page fetched something that is not on this machine (a CDN?)"
    # the wrong-password attempt logs one failed request; anything else is a bug
    problems = [p for p in done["problems"] if "status of 400" not in p]
    assert problems == []
    for view, violations in done["accessibility"].items():
        serious = [v for v in violations if v["impact"] in ("serious", "critical")]
        assert serious == [], f"axe-core, {view} view: {json.dumps(serious, indent=1)}"
    for name in ("dashboard.png", "dashboard-dark.png", "dashboard-signin.png"):
        assert (artifacts_dir / name).stat().st_size > 10_000
    assert str(hidden) not in ready["workspaces"]


async def test_service_serves_the_page_and_its_config(service: ServiceHandle, devstack: StackHandle) -> None:
    async with httpx.AsyncClient(base_url=service.url) as http:
        page = await http.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert 'src="app.js"' in page.text and 'href="app.css"' in page.text
        assert not re.search(r"""(src|href)=["']https?://""", page.text), "no CDN: every asset is served locally"
        for asset, kind in (("/app.js", "javascript"), ("/app.css", "text/css")):
            resp = await http.get(asset)
            assert resp.status_code == 200 and kind in resp.headers["content-type"]
        config = await http.get("/config.json")
        assert config.status_code == 200 and config.headers["cache-control"] == "no-store"
        assert config.json() == {"supabaseUrl": devstack.env.supabase_url.rstrip("/"), "anonKey": devstack.env.anon_key}
        assert devstack.env.service_role_key not in config.text

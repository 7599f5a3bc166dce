"""Support for the RLS matrix: the seeded world (two workspaces on two instances, users in and out of them),
the four API identities as real supabase-py clients, REST outcomes, and a realtime listener.

Every seeded row carries a label value (a workspace id, an instance, a user id, a key) that says whose it is:
"mine" (the member's workspace), "theirs" (the other workspace), "colleague" (another member of mine), "global"
(no workspace at all). A read is then judged by the set of owners whose rows came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from postgrest.exceptions import APIError
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from tests.conftest import StackHandle
from tests.schema.support import add_member, create_user, use_json

SIDES = ("mine", "theirs")
SUBSCRIBED = "Subscribed to PostgreSQL"


@dataclass
class Seed:
    tag: str
    ws: dict[str, uuid.UUID]
    instance: dict[str, str]
    bison_ws: dict[str, int]
    users: dict[str, str]
    #: scope -> {label value -> owner}
    universe: dict[str, dict[str, str]] = field(default_factory=dict)
    #: snapshot dates of the seeded provider history (reply rate 50 then 10: a drop)
    drop_dates: tuple[date, date] = (date(2031, 1, 1), date(2031, 1, 2))


def _envelope(seed: Seed, side: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "event": {
            "type": event_type,
            "instance_url": f"https://{seed.instance[side]}",
            "workspace_id": seed.bison_ws[side],
            "workspace_name": f"RLS {side} {seed.tag}",
        },
        "data": data,
    }


async def ingest(db: asyncpg.Connection, seed: Seed, side: str, key: str, event_type: str, data: dict[str, Any]) -> Any:
    """One delivery through `ingest_delivery`, as the service would make it (key unique to this run)."""
    return await db.fetchval(
        "select public.ingest_delivery($1, $2, $3, $4, $5, $6)",
        f"rls:{seed.tag}:{key}",
        seed.instance[side],
        seed.bison_ws[side],
        f"RLS {side} {seed.tag}",
        event_type,
        _envelope(seed, side, event_type, data),
    )


async def seed_world(db: asyncpg.Connection, bison_base: int) -> Seed:
    """Rows in every table for two workspaces on two instances; `member` and `colleague` belong to "mine",
    `other` to "theirs", `nonmember` to nothing."""
    await use_json(db)
    tag = uuid.uuid4().hex[:10]
    seed = Seed(
        tag=tag,
        ws={},
        instance={side: f"rls-{tag}-{side}.bison.local" for side in SIDES},
        bison_ws={"mine": bison_base, "theirs": bison_base + 1},
        users={name: await create_user(db) for name in ("member", "colleague", "other", "nonmember")},
    )
    d1, d2 = seed.drop_dates
    for n, side in enumerate(SIDES):
        base = seed.bison_ws[side] * 10
        await ingest(
            db,
            seed,
            side,
            f"{side}:reply",
            "lead_replied",
            {
                "lead": {"id": base + 1, "email": f"lead-{tag}-{side}@example.com"},
                "reply": {"id": base + 1, "uuid": f"{tag}-{side}-reply"},
            },
        )
        await ingest(
            db,
            seed,
            side,
            f"{side}:mailbox",
            "email_account_disconnected",
            {
                "sender_email": {"id": base + 2, "email": f"rep-{tag}-{side}@mail.example.com"},
            },
        )
        await ingest(db, seed, side, f"{side}:sent", "email_sent", {"sender_email": {"id": base + 2}})
        ws: uuid.UUID = await db.fetchval(
            "select id from public.workspaces where instance = $1 and bison_workspace_id = $2",
            seed.instance[side],
            seed.bison_ws[side],
        )
        seed.ws[side] = ws
        await db.execute(
            "select public.upsert_workspace($1, $2, $3)",
            seed.instance[side],
            seed.bison_ws[side],
            f"RLS {side} {tag} renamed",
        )
        await db.execute(
            "select public.set_webhook_token($1, $2)", ws, hashlib.sha256(f"{tag}-{side}".encode()).hexdigest()
        )
        await db.execute(
            "update public.sender_emails_cache set email_provider = 'Google', emails_sent_count = 10, "
            "unique_replied_count = 1 where workspace_id = $1",
            ws,
        )
        for day, rate in ((d1, 50), (d2, 10)):
            await db.execute(
                "insert into public.provider_performance_history (email_provider, instance, snapshot_date, "
                "avg_reply_rate, total_accounts) values ('Google', $1, $2, $3, 1)",
                seed.instance[side],
                day,
                rate,
            )
        today = datetime.now(UTC).date()
        await db.execute("select public.record_metric_drift($1, $2, $2, $3)", ws, today, {"emails_sent": 1 + n})
        run = await db.fetchval(
            "select public.start_sync_run($1, $2, 300, $3)",
            f"mailboxes:{seed.instance[side]}",
            f"rls-{tag}",
            seed.instance[side],
        )
        await db.execute(
            "insert into public.sync_run_mailboxes (run_id, workspace_id, bison_sender_id) values ($1, $2, $3)",
            uuid.UUID(run["run_id"]),
            ws,
            base + 2,
        )
    for user, side in (("member", "mine"), ("colleague", "mine"), ("other", "theirs")):
        await add_member(db, seed.users[user], seed.ws[side])
    now = datetime.now(UTC).isoformat()
    alerts = [
        {
            "alert_key": f"rls-{tag}-{owner}",
            "condition": "rls_probe",
            "workspace_id": ws,
            "window_start": now,
            "payload": {"title": "probe"},
        }
        for owner, ws in (("mine", str(seed.ws["mine"])), ("theirs", str(seed.ws["theirs"])), ("global", None))
    ]
    await db.execute("select public.record_alerts($1)", alerts)
    await db.execute("select public.advance_alert_scan($1, now())", f"rls_{tag}")
    await db.execute("insert into public.bisonsync_settings (key, value) values ($1, '1')", f"rls_{tag}")

    seed.universe = {
        "workspace": {str(seed.ws[s]): s for s in SIDES},
        "instance": {seed.instance[s]: s for s in SIDES},
        "job": {f"mailboxes:{seed.instance[s]}": s for s in SIDES},
        "membership": {
            seed.users["member"]: "mine",
            seed.users["colleague"]: "colleague",
            seed.users["other"]: "theirs",
        },
        "alert": {f"rls-{tag}-{owner}": owner for owner in ("mine", "theirs", "global")},
        "scan": {f"rls_{tag}": "global"},
        "setting": {f"rls_{tag}": "global"},
    }
    return seed


# -- the API identities ----------------------------------------------------------------------------------------
IDENTITIES = ("anon", "member", "nonmember", "service")
#: the PostgreSQL role each identity runs as
PG_ROLE = {"anon": "anon", "member": "authenticated", "nonmember": "authenticated", "service": "service_role"}


async def api_clients(devstack: StackHandle, seed: Seed) -> dict[str, AsyncClient]:
    """anon key; anon key + a member's / a non-member's access token (as supabase-js sends it); service key."""
    env = devstack.env

    async def with_token(sub: str) -> AsyncClient:
        token = devstack.user_token(sub)
        options = AsyncClientOptions(headers={"Authorization": f"Bearer {token}"})
        return await acreate_client(env.supabase_url, env.anon_key, options=options)

    return {
        "anon": await acreate_client(env.supabase_url, env.anon_key),
        "member": await with_token(seed.users["member"]),
        "nonmember": await with_token(seed.users["nonmember"]),
        "service": await acreate_client(env.supabase_url, env.service_role_key),
    }


async def close_clients(clients: dict[str, AsyncClient]) -> None:
    for client in clients.values():
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.realtime.remove_all_channels(), 5)
        with contextlib.suppress(Exception):
            await client.realtime.close()
        with contextlib.suppress(Exception):
            await client.postgrest.aclose()


@dataclass(frozen=True)
class Outcome:
    """What one REST call did: `code` is the error code (SQLSTATE or PGRSTxxx), None on success."""

    code: str | None
    rows: list[dict[str, Any]]
    message: str = ""

    @property
    def denied(self) -> bool:
        return self.code == "42501"

    def __str__(self) -> str:
        return f"error {self.code}: {self.message}" if self.code else f"ok ({len(self.rows)} rows)"


async def outcome(request: Awaitable[Any]) -> Outcome:
    try:
        response = await request
    except APIError as exc:
        return Outcome(str(exc.code), [], str(exc.message))
    data = response.data
    rows = data if isinstance(data, list) else ([data] if isinstance(data, dict) else [{"value": data}])
    return Outcome(None, rows)


# -- realtime --------------------------------------------------------------------------------------------------
@dataclass
class Listener:
    """One channel of one identity, recording the postgres_changes realtime-py hands to the callbacks."""

    client: AsyncClient
    topic: str
    events: list[dict[str, Any]] = field(default_factory=list)
    system: list[dict[str, Any]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.channel = self.client.channel(self.topic)
        self.channel.on_system(self._on_system)

    def on(self, table: str, schema: str = "public") -> Listener:
        def record(payload: dict[str, Any]) -> None:
            self.events.append(payload["data"])
            self._changed.set()

        self.channel.on_postgres_changes("*", record, schema=schema, table=table)  # type: ignore[arg-type]
        return self

    def _on_system(self, payload: Any) -> None:
        self.system.append(payload.model_dump())
        self._changed.set()

    async def subscribe(self) -> Listener:
        await self.channel.subscribe()
        await self.wait_for(lambda: any(s.get("message") == SUBSCRIBED for s in self.system), SUBSCRIBED)
        return self

    async def wait_for(self, ready: Callable[[], bool], what: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.topic}: timed out waiting for {what}; system={self.system} "
                    f"events={json.dumps(self.events, default=str)[:2000]}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

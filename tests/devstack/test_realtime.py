"""Realtime postgres_changes on the devstack, through the real clients (supabase-py's realtime-py, supabase-js).

Every test makes its own tables (unique names, added to publication `supabase_realtime`), because the project
schema is written concurrently. Tests wait for the "Subscribed to PostgreSQL" system message before writing, as
the real server requires; "nothing else arrived" is checked with a sentinel row written last (frames keep commit
order per channel), not with sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import jwt
import pytest
import websockets
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from devstack.keys import DEFAULT_PUBLISHABLE_KEY
from tests.conftest import StackHandle

SUBSCRIBED = "Subscribed to PostgreSQL"
COMMIT_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
JS_DIR = Path(__file__).resolve().parent.parent / "js"
pytestmark = pytest.mark.timeout(120)


# -- helpers ---------------------------------------------------------------------------------------------------
async def make_table(db: asyncpg.Connection, columns: str, *, prefix: str = "rt", publish: bool = True) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await db.execute(f"create table public.{name} ({columns})")
    await db.execute(f"grant all on public.{name} to anon, authenticated, service_role")
    if publish:
        await db.execute(f"alter publication supabase_realtime add table public.{name}")
    return name


@pytest.fixture
async def tables(db: asyncpg.Connection) -> AsyncIterator[list[str]]:
    """Names of tables a test created with `make_table`; dropped afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        await db.execute(f"drop table if exists public.{name} cascade")


@pytest.fixture
async def items(db: asyncpg.Connection, tables: list[str]) -> str:
    """A published table with a default replica identity (old identity = primary key)."""
    name = await make_table(
        db, "id bigint primary key, title text, n int, flag bool, at timestamptz, tags text[], meta jsonb"
    )
    tables.append(name)
    return name


async def client_for(devstack: StackHandle, key: str | None = None) -> AsyncClient:
    options = AsyncClientOptions(realtime={"max_retries": 12, "initial_backoff": 0.2})
    return await acreate_client(devstack.env.supabase_url, key or devstack.env.anon_key, options=options)


@pytest.fixture
async def clients(devstack: StackHandle) -> AsyncIterator[Callable[..., Any]]:
    """A factory of supabase clients, all closed at the end of the test."""
    made: list[AsyncClient] = []

    async def make(key: str | None = None, token: str | None = None) -> AsyncClient:
        client = await client_for(devstack, key)
        if token is not None:
            await client.realtime.set_auth(token)
        made.append(client)
        return client

    yield make
    for client in made:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.realtime.remove_all_channels(), 5)
        with contextlib.suppress(Exception):
            await client.realtime.close()


@dataclass
class Listener:
    """One channel of a client, recording what realtime-py hands to the callbacks."""

    client: AsyncClient
    topic: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    system: list[dict[str, Any]] = field(default_factory=list)
    states: list[tuple[str, str | None]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.channel = self.client.channel(self.topic)
        self.channel.on_system(self._on_system)

    def on(self, table: str, event: str = "*", filter: str | None = None, tag: str | None = None) -> Listener:
        label = tag or f"{event}:{table}:{filter}"

        def record(payload: dict[str, Any]) -> None:
            self.events.append((label, payload["data"]))
            self._changed.set()

        self.channel.on_postgres_changes(event, record, schema="public", table=table, filter=filter)  # type: ignore[arg-type]
        return self

    def _on_system(self, payload: Any) -> None:
        self.system.append(payload.model_dump())
        self._changed.set()

    def _on_state(self, state: Any, error: Exception | None) -> None:
        self.states.append((str(getattr(state, "value", state)), str(error) if error else None))
        self._changed.set()

    async def subscribe(self, *, confirmed: bool = True) -> Listener:
        await self.channel.subscribe(self._on_state)
        if confirmed:
            await self.wait_for(lambda: self.subscribed_count >= 1, "Subscribed to PostgreSQL")
        return self

    @property
    def subscribed_count(self) -> int:
        return sum(1 for s in self.system if s["message"] == SUBSCRIBED)

    async def wait_for(self, ready: Callable[[], bool], what: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out waiting for {what}; events={self.events} system={self.system} states={self.states}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_events(self, count: int, timeout: float = 10) -> list[tuple[str, dict[str, Any]]]:
        await self.wait_for(lambda: len(self.events) >= count, f"{count} events", timeout)
        return self.events

    async def wait_record(self, key: str, value: Any, timeout: float = 10) -> None:
        def seen() -> bool:
            return any((d.get("record") or d.get("old_record") or {}).get(key) == value for _, d in self.events)

        await self.wait_for(seen, f"a change with {key}={value!r}", timeout)

    def has_error(self) -> bool:
        return bool(self.error_payloads())

    def error_payloads(self) -> list[dict[str, Any]]:
        return [
            json.loads(err) for state, err in self.states if state == "CHANNEL_ERROR" and err and err.startswith("{")
        ]


def summary(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, Any, Any]]:
    return [(d["type"], d.get("record"), d.get("old_record")) for _, d in events]


# -- handshake and protocol ------------------------------------------------------------------------------------
def ws_url(devstack: StackHandle, query: str) -> str:
    return devstack.env.supabase_url.replace("http://", "ws://") + "/realtime/v1/websocket?" + query


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("not-a-jwt", "The token provided is not a valid JWT"),
        ("no-exp", "Fields `role` and `exp` are required in JWT"),
        ("expired", "Token has expired"),
        ("wrong-secret", "The token provided is not a valid JWT"),
    ],
)
async def test_realtime_handshake_rejects_bad_tokens(devstack: StackHandle, token: str, message: str) -> None:
    secret = devstack.env.jwt_secret
    value = {
        "not-a-jwt": "not-a-jwt",
        "no-exp": jwt.encode({"role": "anon"}, secret, algorithm="HS256"),
        "expired": jwt.encode({"role": "anon", "exp": int(time.time()) - 30}, secret, algorithm="HS256"),
        "wrong-secret": jwt.encode({"role": "anon", "exp": int(time.time()) + 60}, "x" * 40, algorithm="HS256"),
    }[token]
    with pytest.raises(websockets.exceptions.InvalidStatus) as caught:
        async with websockets.connect(ws_url(devstack, f"apikey={value}&vsn=1.0.0")):
            pass
    response = caught.value.response
    assert response.status_code == 401
    assert message in json.loads(response.body)["error"]


async def test_realtime_raw_protocol_v1_and_v2(devstack: StackHandle, db: asyncpg.Connection, items: str) -> None:
    """Exact frames: heartbeat reply, join reply echoing bindings with ids, `system` with ref null, leave."""
    binding = {"event": "*", "schema": "public", "table": items, "filter": "id=eq.4"}
    async with websockets.connect(ws_url(devstack, f"apikey={DEFAULT_PUBLISHABLE_KEY}&vsn=1.0.0")) as ws:
        await ws.send(json.dumps({"event": "heartbeat", "topic": "phoenix", "payload": {}, "ref": None}))
        assert json.loads(await ws.recv()) == {
            "event": "phx_reply",
            "topic": "phoenix",
            "payload": {"status": "ok", "response": {}},
            "ref": None,
        }
        join = {
            "config": {
                "broadcast": {"ack": False, "self": False},
                "presence": {"key": "", "enabled": False},
                "private": False,
                "postgres_changes": [binding, {"event": "INSERT", "schema": "public"}],
            }
        }
        await ws.send(
            json.dumps({"event": "phx_join", "topic": "realtime:raw", "payload": join, "ref": "1", "join_ref": "1"})
        )
        reply = json.loads(await ws.recv())
        assert reply["event"] == "phx_reply" and reply["ref"] == "1" and reply["payload"]["status"] == "ok"
        echoed = reply["payload"]["response"]["postgres_changes"]
        assert [{k: v for k, v in b.items() if k != "id"} for b in echoed] == join["config"]["postgres_changes"]
        assert all(isinstance(b["id"], int) and 0 < b["id"] < 2**27 for b in echoed)
        system = json.loads(await ws.recv())
        assert system == {
            "event": "system",
            "topic": "realtime:raw",
            "ref": None,
            "payload": {"channel": "raw", "extension": "postgres_changes", "message": SUBSCRIBED, "status": "ok"},
        }
        await db.execute(f"insert into public.{items} (id, title) values (4, 'four')")
        change = json.loads(await asyncio.wait_for(ws.recv(), 10))
        while change["payload"]["data"]["table"] != items:  # the table-less binding sees all of `public`
            change = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert change["event"] == "postgres_changes" and change["ref"] is None
        assert change["payload"]["ids"] == [echoed[0]["id"], echoed[1]["id"]]
        await ws.send(
            json.dumps({"event": "phx_leave", "topic": "realtime:raw", "payload": {}, "ref": "2", "join_ref": "1"})
        )
        assert json.loads(await ws.recv())["payload"] == {"status": "ok", "response": {}}
        closed = json.loads(await ws.recv())
        assert (closed["event"], closed["ref"]) == ("phx_close", "1")
        await ws.send(json.dumps({"event": "access_token", "topic": "realtime:raw", "payload": {}, "ref": "3"}))
        assert json.loads(await ws.recv())["payload"] == {"status": "error", "response": {"reason": "unmatched topic"}}

    async with websockets.connect(ws_url(devstack, f"apikey={devstack.env.anon_key}&vsn=2.0.0")) as ws:
        await ws.send(json.dumps([None, "7", "phoenix", "heartbeat", {}]))
        assert json.loads(await ws.recv()) == [None, "7", "phoenix", "phx_reply", {"status": "ok", "response": {}}]
        await ws.send(json.dumps(["1", "1", "realtime:v2", "phx_join", {"config": {"postgres_changes": [binding]}}]))
        assert json.loads(await ws.recv())[:4] == ["1", "1", "realtime:v2", "phx_reply"]
        assert json.loads(await ws.recv())[:4] == ["1", None, "realtime:v2", "system"]


# -- events ------------------------------------------------------------------------------------------------------
async def test_realtime_insert_update_delete_in_commit_order(
    clients: Callable[..., Any], db: asyncpg.Connection, database_url: str, items: str
) -> None:
    listener = await Listener(await clients(), "crud").on(items).subscribe()
    await db.execute(
        f"insert into public.{items} (id, title, n, flag, at, tags, meta) values "
        "(1, 'one', 10, true, '2026-11-29 07:34:33.035+00', '{a,\"b c\",NULL}', '{\"k\": [1, 2]}')"
    )
    other = await asyncpg.connect(database_url)
    try:  # two open transactions: the one committed first must arrive first
        first, second = db.transaction(), other.transaction()
        await first.start()
        await second.start()
        await db.execute(f"insert into public.{items} (id, title) values (2, 'two')")
        await other.execute(f"insert into public.{items} (id, title) values (3, 'three')")
        await second.commit()
        await first.commit()
    finally:
        await other.close()
    async with db.transaction():
        await db.execute(f"update public.{items} set title = 'uno' where id = 1")
        await db.execute(f"delete from public.{items} where id = 2")
    events = await listener.wait_events(5)
    row1 = {
        "id": 1,
        "title": "one",
        "n": 10,
        "flag": True,
        "at": "2026-11-29T07:34:33.035+00:00",
        "tags": ["a", "b c", None],
        "meta": {"k": [1, 2]},
    }
    nulls = {"n": None, "flag": None, "at": None, "tags": None, "meta": None}
    assert summary(events) == [
        ("INSERT", row1, None),
        ("INSERT", {"id": 3, "title": "three", **nulls}, None),
        ("INSERT", {"id": 2, "title": "two", **nulls}, None),
        ("UPDATE", {**row1, "title": "uno"}, {"id": 1}),
        ("DELETE", None, {"id": 2}),
    ]
    data = events[0][1]
    assert data["schema"] == "public" and data["table"] == items and data["errors"] is None
    assert COMMIT_TS.match(data["commit_timestamp"])
    assert data["columns"] == [
        {"name": "id", "type": "int8"},
        {"name": "title", "type": "text"},
        {"name": "n", "type": "int4"},
        {"name": "flag", "type": "bool"},
        {"name": "at", "type": "timestamptz"},
        {"name": "tags", "type": "_text"},
        {"name": "meta", "type": "jsonb"},
    ]
    assert "old_record" not in events[0][1] and "record" not in events[4][1]
    assert events[3][1]["commit_timestamp"] == events[4][1]["commit_timestamp"]  # one transaction


async def test_realtime_nothing_before_subscription_and_no_truncate(
    clients: Callable[..., Any], db: asyncpg.Connection, items: str
) -> None:
    await db.execute(f"insert into public.{items} (id, title) values (1, 'before')")
    listener = await Listener(await clients(), "trunc").on(items).subscribe()
    await db.execute(f"truncate public.{items}")
    await db.execute(f"insert into public.{items} (id, title) values (99, 'sentinel')")
    await listener.wait_record("id", 99)
    assert summary(listener.events) == [
        (
            "INSERT",
            {"id": 99, "title": "sentinel", "n": None, "flag": None, "at": None, "tags": None, "meta": None},
            None,
        )
    ]


async def test_realtime_replica_identity_full(
    clients: Callable[..., Any], db: asyncpg.Connection, items: str, tables: list[str]
) -> None:
    full = await make_table(db, "id bigint primary key, title text, n int")
    tables.append(full)
    await db.execute(f"alter table public.{full} replica identity full")
    listener = await (
        Listener(await clients(), "identity")
        .on(full, "DELETE", "title=eq.gone", tag="full")
        .on(items, "DELETE", "title=eq.gone", tag="default")
        .on(full, "UPDATE", tag="update")
        .on(items, "INSERT", "id=eq.99", tag="sentinel")
        .subscribe()
    )
    await db.execute(f"insert into public.{full} (id, title, n) values (1, 'gone', 5), (2, 'kept', 6)")
    await db.execute(f"insert into public.{items} (id, title) values (1, 'gone')")
    await db.execute(f"update public.{full} set n = 50 where id = 2")
    await db.execute(f"delete from public.{full} where id = 1")
    await db.execute(f"delete from public.{items} where id = 1")  # no title in the old identity: not delivered
    await db.execute(f"insert into public.{items} (id) values (99)")
    await listener.wait_record("id", 99)
    assert [(tag, d["type"], d.get("old_record")) for tag, d in listener.events] == [
        ("update", "UPDATE", {"id": 2, "title": "kept", "n": 6}),
        ("full", "DELETE", {"id": 1, "title": "gone", "n": 5}),
        ("sentinel", "INSERT", None),
    ]


async def test_realtime_filters(clients: Callable[..., Any], db: asyncpg.Connection, items: str) -> None:
    filters = {
        "eq": "title=eq.a",
        "neq": "title=neq.a",
        "in": "n=in.(1,3)",
        "gt": "n=gt.2",
        "lte": "at=lte.2026-01-01T00:00:00Z",
        "is_null": "n=is.null",
        "is_true": "flag=is.true",
        "and": 'n=gte.2,title=in.(b,"c,d")',
        "not_in": "n=not.in.(1,2)",
        "like": "title=like.%d",
        "quoted": 'title=eq."c,d"',
    }
    listener = Listener(await clients(), "filters")
    for tag, text in filters.items():
        listener.on(items, "INSERT", text, tag=tag)
    await listener.on(items, "INSERT", "id=eq.99", tag="sentinel").subscribe()
    await db.execute(
        f"insert into public.{items} (id, title, n, flag, at) values "
        "(1, 'a', 1, true, '2025-06-01 00:00:00+00'), (2, 'b', 2, false, null), (3, 'c,d', 3, null, null), "
        "(4, null, null, true, '2026-06-01 00:00:00+00')"
    )
    await db.execute(f"insert into public.{items} (id) values (99)")
    await listener.wait_record("id", 99)
    seen: dict[str, list[int]] = {}
    for tag, data in listener.events:
        seen.setdefault(tag, []).append(data["record"]["id"])
    assert seen == {
        "eq": [1],
        "neq": [2, 3],  # NULL title: no match
        "in": [1, 3],
        "gt": [3],
        "lte": [1],
        "is_null": [4, 99],
        "is_true": [1, 4],
        "and": [2, 3],
        "not_in": [3],
        "like": [3],
        "quoted": [3],
        "sentinel": [99],
    }


async def test_realtime_subscription_errors(
    clients: Callable[..., Any], db: asyncpg.Connection, items: str, tables: list[str]
) -> None:
    hidden = await make_table(db, "id bigint primary key", publish=False)
    tables.append(hidden)
    cases = {
        "nopub": (
            hidden,
            None,
            "Unable to subscribe to changes with given parameters. Please check Realtime is "
            f"enabled for the given connect parameters: [event: *, schema: public, table: {hidden}, "
            "filters: [], select: nil]",
        ),
        "column": (items, "nope=eq.1", "Exception: ERROR P0001 (raise_exception) invalid column for filter nope"),
        "op": (items, "id=foo.1", 'Error parsing `filter` params: ["id","foo.1"]'),
        "cast": (items, "id=eq.abc", 'invalid input syntax for type bigint: "abc"'),
    }
    client = await clients()
    for topic, (table, flt, message) in cases.items():
        listener = Listener(client, topic).on(table, filter=flt)
        await listener.subscribe(confirmed=False)
        await listener.wait_for(listener.has_error, f"an error on {topic}")
        error = listener.error_payloads()[0]
        assert error["status"] == "error" and error["extension"] == "postgres_changes", error
        assert message in error["message"], error
        await client.remove_channel(listener.channel)


# -- authorization ------------------------------------------------------------------------------------------------
@pytest.fixture
async def guarded(db: asyncpg.Connection, tables: list[str]) -> tuple[str, str]:
    """A table with RLS (rows visible to members of their group) and column grants; its membership table."""
    members = await make_table(db, "group_id int, user_id uuid, primary key (group_id, user_id)", publish=False)
    docs = await make_table(db, "id bigint primary key, group_id int not null, title text, secret text")
    tables.extend([docs, members])
    await db.execute(f"revoke all on public.{docs} from authenticated, anon")
    await db.execute(f"grant select (id, group_id, title) on public.{docs} to authenticated, anon")
    await db.execute(f"alter table public.{docs} enable row level security")
    await db.execute(
        f"create policy member_reads on public.{docs} for select using (exists (select 1 from public.{members} m "
        f"where m.group_id = {docs}.group_id and m.user_id = auth.uid()))"
    )
    return docs, members


async def test_realtime_rls_per_subscriber(
    devstack: StackHandle, clients: Callable[..., Any], db: asyncpg.Connection, guarded: tuple[str, str], items: str
) -> None:
    docs, members = guarded
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    await db.execute(f"insert into public.{members} values (1, $1)", uuid.UUID(alice))
    listeners = {
        "alice": Listener(await clients(token=devstack.user_token(alice)), "docs-a"),
        "bob": Listener(await clients(token=devstack.user_token(bob)), "docs-b"),
        "service": Listener(await clients(key=devstack.env.service_role_key), "docs-s"),
    }
    for listener in listeners.values():
        await listener.on(docs).on(items, "INSERT", "id=eq.99", tag="sentinel").subscribe()
    await db.execute(f"insert into public.{docs} values (1, 1, 'mine', 's1'), (2, 2, 'theirs', 's2')")
    await db.execute(f"update public.{docs} set title = 'still mine' where id = 1")
    await db.execute(f"delete from public.{docs} where id = 2")
    await db.execute(f"insert into public.{items} (id) values (99)")
    for listener in listeners.values():
        await listener.wait_record("id", 99)
    got = {name: summary([e for e in lst.events if e[0] != "sentinel"]) for name, lst in listeners.items()}
    assert got["alice"] == [
        ("INSERT", {"id": 1, "group_id": 1, "title": "mine"}, None),
        ("UPDATE", {"id": 1, "group_id": 1, "title": "still mine"}, {"id": 1}),
        ("DELETE", None, {"id": 2}),  # deletes are never RLS-checked, and cut to the key
    ]
    assert got["bob"] == [("DELETE", None, {"id": 2})]
    assert got["service"] == [
        ("INSERT", {"id": 1, "group_id": 1, "title": "mine", "secret": "s1"}, None),
        ("INSERT", {"id": 2, "group_id": 2, "title": "theirs", "secret": "s2"}, None),
        ("UPDATE", {"id": 1, "group_id": 1, "title": "still mine", "secret": "s1"}, {"id": 1}),
        ("DELETE", None, {"id": 2}),
    ]
    alice_columns = [c["name"] for c in listeners["alice"].events[0][1]["columns"]]
    assert alice_columns == ["id", "group_id", "title"]


async def test_realtime_access_token_refresh(
    devstack: StackHandle, clients: Callable[..., Any], db: asyncpg.Connection, guarded: tuple[str, str], items: str
) -> None:
    docs, members = guarded
    alice = str(uuid.uuid4())
    await db.execute(f"insert into public.{members} values (1, $1)", uuid.UUID(alice))
    client = await clients()
    listener = await Listener(client, "refresh").on(docs).on(items, "INSERT", tag="sentinel").subscribe()
    await db.execute(f"insert into public.{docs} values (1, 1, 'hidden from anon', null)")
    await db.execute(f"insert into public.{items} (id) values (1)")
    await listener.wait_record("id", 1)
    assert [tag for tag, _ in listener.events] == ["sentinel"]
    await client.realtime.set_auth(devstack.user_token(alice))
    await listener.wait_for(lambda: listener.subscribed_count >= 2, "re-subscription with the new claims")
    await db.execute(f"insert into public.{docs} values (2, 1, 'visible to alice', null)")
    await listener.wait_record("title", "visible to alice")
    assert [d["record"]["id"] for tag, d in listener.events if tag != "sentinel"] == [2]


async def test_realtime_expired_token_closes_channel(
    devstack: StackHandle, clients: Callable[..., Any], items: str
) -> None:
    client = await clients(token=devstack.user_token(str(uuid.uuid4()), ttl_seconds=3))
    listener = await Listener(client, "expiring").on(items).subscribe(confirmed=False)
    assert listener.states[0] == ("SUBSCRIBED", None)
    await listener.wait_for(lambda: any(s == "CLOSED" for s, _ in listener.states), "the channel to close", 15)
    error = listener.error_payloads()[0]
    assert error["extension"] == "system" and error["status"] == "error"
    assert error["message"].startswith("Token has expired")
    assert "realtime:expiring" not in client.realtime.channels


async def test_realtime_join_with_expired_token_is_refused(
    devstack: StackHandle, clients: Callable[..., Any], items: str
) -> None:
    client = await clients(token=devstack.user_token(str(uuid.uuid4()), ttl_seconds=-5))
    listener = await Listener(client, "stale").on(items).subscribe(confirmed=False)
    reason = json.loads(listener.states[0][1] or "{}")["reason"]
    assert listener.states[0][0] == "CHANNEL_ERROR" and reason.startswith("InvalidJWTToken: Token has expired")


# -- many clients, restarts ----------------------------------------------------------------------------------------
async def test_realtime_many_clients_and_channels(
    clients: Callable[..., Any], db: asyncpg.Connection, items: str
) -> None:
    listeners = []
    for i in range(4):
        client = await clients()
        for j in range(2):
            listeners.append(await Listener(client, f"many-{i}-{j}").on(items).subscribe())
    async with db.transaction():
        for i in range(1, 31):
            await db.execute(f"insert into public.{items} (id, n) values ($1, $2)", i, i)
    await db.execute(f"update public.{items} set n = -n")
    for listener in listeners:
        events = await listener.wait_events(60)
        assert [d["type"] for _, d in events] == ["INSERT"] * 30 + ["UPDATE"] * 30
        assert [d["record"]["n"] for _, d in events] == list(range(1, 31)) + [-i for i in range(1, 31)]


async def test_realtime_reconnects_after_gateway_restart(
    devstack: StackHandle, clients: Callable[..., Any], db: asyncpg.Connection, items: str
) -> None:
    if devstack.stack is None:
        pytest.skip("the gateway of an external stack cannot be restarted")
    listener = await Listener(await clients(), "restart").on(items).subscribe()
    await db.execute(f"insert into public.{items} (id) values (1)")
    await listener.wait_record("id", 1)
    await asyncio.to_thread(devstack.stack.stop_gateway)
    await asyncio.to_thread(devstack.stack.start_gateway)
    await listener.wait_for(lambda: listener.subscribed_count >= 2, "the rejoin after the restart", 30)
    await db.execute(f"insert into public.{items} (id) values (2)")
    await listener.wait_record("id", 2)
    assert [d["record"]["id"] for _, d in listener.events] == [1, 2]
    slots_sql = "select count(*) from pg_replication_slots where slot_name like 'devstack\\_rt\\_%'"
    for _ in range(100):  # a backend may take a moment to release a temporary slot
        if await db.fetchval(slots_sql) == 1:
            break
        await asyncio.sleep(0.1)
    assert await db.fetchval(slots_sql) == 1, "the stopped gateway's slot must be gone"


async def test_realtime_slow_client_is_dropped_without_stalling_others(
    devstack: StackHandle,
    clients: Callable[..., Any],
    db: asyncpg.Connection,
    items: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if devstack.stack is None:
        pytest.skip("the gateway of an external stack cannot be restarted")
    stack = devstack.stack
    monkeypatch.setenv("DEVSTACK_REALTIME_QUEUE", "300")
    await asyncio.to_thread(stack.stop_gateway)
    await asyncio.to_thread(stack.start_gateway)
    try:
        # A client that stops reading: websockets stops draining the TCP socket after `max_queue` frames, and
        # a small receive buffer keeps the kernel from absorbing much.
        host, port = devstack.env.supabase_url.removeprefix("http://").split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        async with websockets.connect(
            ws_url(devstack, f"apikey={devstack.env.anon_key}&vsn=1.0.0"), sock=sock, max_queue=1, max_size=None
        ) as slow:
            join = {"config": {"postgres_changes": [{"event": "*", "schema": "public", "table": items}]}}
            await slow.send(
                json.dumps(
                    {"event": "phx_join", "topic": "realtime:slow", "payload": join, "ref": "1", "join_ref": "1"}
                )
            )
            assert json.loads(await slow.recv())["event"] == "phx_reply"
            assert json.loads(await slow.recv())["payload"]["message"] == SUBSCRIBED
            listener = await Listener(await clients(), "fast").on(items).subscribe()
            for batch in range(40):  # ~20 MB of incompressible text (permessage-deflate is on)
                async with db.transaction():
                    for i in range(25):
                        await db.execute(
                            f"insert into public.{items} (id, title) values ($1, $2)",
                            batch * 25 + i,
                            os.urandom(10_000).hex(),
                        )
                await asyncio.sleep(0.02)
            events = await listener.wait_events(1000, timeout=60)
            assert [d["record"]["id"] for _, d in events] == list(range(1000))
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(slow.recv(), 20)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    finally:
        monkeypatch.delenv("DEVSTACK_REALTIME_QUEUE")
        await asyncio.to_thread(stack.stop_gateway)
        await asyncio.to_thread(stack.start_gateway)


# -- supabase-js -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def js_client_dir() -> Path:
    """tests/js with its pinned node_modules (installed by `npm ci` on first use)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed: the supabase-js realtime check needs Node.js 20+")
    if not (JS_DIR / "node_modules" / "@supabase" / "supabase-js").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, capture_output=True, timeout=300
        )
    return JS_DIR


async def _read_json_line(stream: asyncio.StreamReader, timeout: float = 15) -> dict[str, Any]:
    line = await asyncio.wait_for(stream.readline(), timeout)
    if not line:
        raise AssertionError("the node listener exited early")
    parsed: dict[str, Any] = json.loads(line)
    return parsed


@pytest.mark.parametrize("vsn", ["2.0.0", "1.0.0"])
async def test_realtime_supabase_js_sees_what_realtime_py_sees(
    devstack: StackHandle,
    js_client_dir: Path,
    clients: Callable[..., Any],
    db: asyncpg.Connection,
    items: str,
    vsn: str,
) -> None:
    node = await asyncio.create_subprocess_exec(
        "node",
        str(js_client_dir / "realtime_listen.mjs"),
        devstack.env.supabase_url,
        devstack.env.anon_key,
        items,
        vsn,
        cwd=js_client_dir,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert node.stdout is not None and node.stdin is not None
    try:
        lines = [await _read_json_line(node.stdout), await _read_json_line(node.stdout)]
        assert {"kind": "status", "status": "SUBSCRIBED", "error": None} in lines
        assert any(x["kind"] == "system" and x["message"] == SUBSCRIBED for x in lines), lines
        listener = await Listener(await clients(), "py-vs-js").on(items).subscribe()
        await db.execute(
            f"insert into public.{items} (id, title, n, tags, meta, at) values "
            "(1, 'a', 5, '{x,y}', '{\"k\": {\"z\": true}}', '2026-11-29 07:00:00+00')"
        )
        await db.execute(f"update public.{items} set n = 6 where id = 1")
        await db.execute(f"delete from public.{items} where id = 1")
        js = [await _read_json_line(node.stdout) for _ in range(3)]
        py = await listener.wait_events(3)
    finally:
        node.stdin.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(node.wait(), 10)
        if node.returncode is None:
            node.kill()
    assert [j["kind"] for j in js] == ["change"] * 3
    for j, (_, p) in zip(js, py, strict=True):
        assert (j["eventType"], j["schema"], j["table"], j["commit_timestamp"]) == (
            p["type"],
            p["schema"],
            p["table"],
            p["commit_timestamp"],
        )
        assert j["new"] == (p.get("record") or {})
        assert j["old"] == (p.get("old_record") or {})

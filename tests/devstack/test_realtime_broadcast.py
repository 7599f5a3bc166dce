"""Realtime Broadcast, Presence, private channels and Broadcast from the database, through the real realtime-py.

Each test uses its own topic names (and its own RLS policies on `realtime.messages`, dropped afterwards), so tests
never see each other's messages. "Nothing else arrived" is checked with a sentinel message sent last on the same
path (frames keep their order per socket), not with sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
import websockets

from tests.conftest import StackHandle
from tests.devstack.test_realtime import clients, make_table, tables, ws_url  # noqa: F401

pytestmark = pytest.mark.timeout(120)


def topic_name(prefix: str = "room") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Room:
    """One realtime-py channel with broadcast/presence callbacks recorded."""

    client: Any
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    joins: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    leaves: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    syncs: int = 0
    states: list[tuple[str, str | None]] = field(default_factory=list)
    system: list[dict[str, Any]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.channel = self.client.channel(self.name, params={"config": self.config})
        self.channel.on_broadcast("*", self._on_broadcast)
        self.channel.on_system(self._on_system)

    def _on_broadcast(self, payload: dict[str, Any]) -> None:
        self.messages.append(payload)
        self._changed.set()

    def _on_system(self, payload: Any) -> None:
        self.system.append(payload.model_dump())
        self._changed.set()

    def with_presence(self) -> Room:
        def on_join(key: str, _current: list[Any], new: list[Any]) -> None:
            self.joins.append((key, [dict(p) for p in new]))
            self._changed.set()

        def on_leave(key: str, _current: list[Any], left: list[Any]) -> None:
            self.leaves.append((key, [dict(p) for p in left]))
            self._changed.set()

        def on_sync() -> None:
            self.syncs += 1
            self._changed.set()

        self.channel.on_presence_sync(on_sync).on_presence_join(on_join).on_presence_leave(on_leave)
        return self

    def _on_state(self, state: Any, error: Exception | None) -> None:
        self.states.append((str(getattr(state, "value", state)), str(error) if error else None))
        self._changed.set()

    async def join(self, *, expect: str = "SUBSCRIBED") -> Room:
        await self.channel.subscribe(self._on_state)
        await self.wait_for(lambda: any(s == expect for s, _ in self.states), expect)
        return self

    async def wait_for(self, ready: Callable[[], bool], what: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out waiting for {what}; messages={self.messages} joins={self.joins} "
                    f"leaves={self.leaves} states={self.states} system={self.system}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_event(self, event: str) -> None:
        await self.wait_for(lambda: any(m["event"] == event for m in self.messages), f"broadcast {event}")

    def events(self, until: str = "sentinel") -> list[str]:
        return [m["event"] for m in self.messages if m["event"] != until]

    @property
    def presence_state(self) -> dict[str, list[dict[str, Any]]]:
        return {k: [dict(p) for p in v] for k, v in self.channel.presence.state.items()}


@pytest.fixture
async def policies(db: asyncpg.Connection) -> AsyncIterator[list[str]]:
    """Names of RLS policies a test created on realtime.messages; dropped afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        await db.execute(f'drop policy if exists "{name}" on realtime.messages')


async def add_policy(db: asyncpg.Connection, made: list[str], command: str, role: str, condition: str) -> None:
    name = f"test_{uuid.uuid4().hex[:10]}"
    clause = "with check" if command == "insert" else "using"
    await db.execute(f'create policy "{name}" on realtime.messages for {command} to {role} {clause} ({condition})')
    made.append(name)


# -- broadcast between clients ------------------------------------------------------------------------------------
async def test_broadcast_between_clients_with_and_without_self(clients: Callable[..., Any]) -> None:
    name = topic_name()
    loud = await Room(await clients(), name, {"broadcast": {"self": True}}).join()
    quiet = await Room(await clients(), name, {"broadcast": {"self": False}}).join()
    other = await Room(await clients(), topic_name()).join()
    await quiet.channel.send_broadcast("from-quiet", {"n": 1})
    await loud.channel.send_broadcast("from-loud", {"n": 2})
    await loud.channel.send_broadcast("sentinel", {})
    await quiet.wait_event("sentinel")
    await loud.wait_event("sentinel")
    assert quiet.events() == ["from-loud"]  # not its own message (self: false)
    assert loud.events() == ["from-quiet", "from-loud"]  # its own too (self: true)
    assert quiet.messages[0] == {"event": "from-loud", "payload": {"n": 2}}  # realtime-py drops "type"
    await other.channel.send_broadcast("sentinel", {})
    assert other.messages == []  # another topic hears nothing


async def test_broadcast_ack_and_public_private_isolation(devstack: StackHandle) -> None:
    """Raw protocol: `ack: true` answers the push; without it no reply. A private channel of the same name (here
    authorised for service_role, which bypasses RLS) is a different topic."""
    name = topic_name()

    async def join(ws: Any, ref: str, config: dict[str, Any]) -> None:
        await ws.send(
            json.dumps(
                {
                    "topic": f"realtime:{name}",
                    "event": "phx_join",
                    "ref": ref,
                    "join_ref": ref,
                    "payload": {"config": config},
                }
            )
        )
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert reply["event"] == "phx_reply" and reply["payload"]["status"] == "ok", reply

    service = devstack.env.service_role_key
    async with (
        websockets.connect(ws_url(devstack, f"apikey={service}&vsn=1.0.0")) as sender,
        websockets.connect(ws_url(devstack, f"apikey={service}&vsn=1.0.0")) as private,
    ):
        await join(sender, "1", {"broadcast": {"ack": True, "self": True}})
        await join(private, "1", {"broadcast": {"self": True}, "private": True})
        frame: dict[str, Any] = {
            "topic": f"realtime:{name}",
            "event": "broadcast",
            "ref": "2",
            "join_ref": "1",
            "payload": {"type": "broadcast", "event": "hello", "payload": {"x": 1}},
        }
        await sender.send(json.dumps(frame))
        got = [json.loads(await asyncio.wait_for(sender.recv(), 10)) for _ in range(2)]
        assert sorted(f["event"] for f in got) == ["broadcast", "phx_reply"]
        reply = next(f for f in got if f["event"] == "phx_reply")
        assert reply["ref"] == "2" and reply["payload"] == {"status": "ok", "response": {}}
        echo = next(f for f in got if f["event"] == "broadcast")
        assert echo["ref"] is None and echo["payload"] == {"type": "broadcast", "event": "hello", "payload": {"x": 1}}
        # the private channel of the same name got nothing: its own broadcast is the first frame it sees
        await private.send(json.dumps({**frame, "ref": "3", "payload": {**frame["payload"], "event": "mine"}}))
        first = json.loads(await asyncio.wait_for(private.recv(), 10))
        assert first["payload"]["event"] == "mine"
        # without ack: no reply, only the echo
        await private.send(json.dumps({**frame, "ref": "4", "payload": {**frame["payload"], "event": "again"}}))
        assert json.loads(await asyncio.wait_for(private.recv(), 10))["event"] == "broadcast"


# -- presence ----------------------------------------------------------------------------------------------------
async def test_presence_track_update_untrack_and_leave(clients: Callable[..., Any]) -> None:
    name = topic_name()
    ann = await Room(await clients(), name, {"presence": {"key": "ann"}}).with_presence().join()
    await ann.wait_for(lambda: ann.syncs >= 1, "the initial presence_state")
    await ann.channel.track({"status": "online"})
    await ann.wait_for(lambda: len(ann.joins) == 1, "ann's own join")
    bob = await Room(await clients(), name, {"presence": {"key": "bob"}}).with_presence().join()
    await bob.wait_for(lambda: "ann" in bob.presence_state, "ann in bob's first state")
    assert [p["status"] for p in bob.presence_state["ann"]] == ["online"]
    assert "presence_ref" in bob.presence_state["ann"][0]
    await bob.channel.track({"status": "here"})
    await ann.wait_for(lambda: "bob" in ann.presence_state, "bob's join at ann")
    assert ann.joins[-1][0] == "bob" and ann.joins[-1][1][0]["status"] == "here"
    # a second track replaces the presence: join of the new meta, leave of the old one
    await ann.channel.track({"status": "away"})
    await bob.wait_for(lambda: [p["status"] for p in bob.presence_state.get("ann", [])] == ["away"], "ann away")
    assert bob.leaves[-1][0] == "ann" and bob.leaves[-1][1][0]["status"] == "online"
    await ann.channel.untrack()
    await bob.wait_for(lambda: "ann" not in bob.presence_state, "ann untracked")
    # leaving the channel untracks too
    await bob.channel.unsubscribe()
    await ann.wait_for(lambda: ann.presence_state == {}, "bob gone after leaving")
    assert ann.leaves[-1][0] == "bob"


async def test_presence_socket_drop_untracks(clients: Callable[..., Any]) -> None:
    name = topic_name()
    watcher = await Room(await clients(), name).with_presence().join()
    leaver_client = await clients()
    leaver = await Room(leaver_client, name, {"presence": {"key": "gone-soon"}}).with_presence().join()
    await leaver.channel.track({"x": 1})
    await watcher.wait_for(lambda: "gone-soon" in watcher.presence_state, "the join")
    await leaver_client.realtime.close()
    await watcher.wait_for(lambda: "gone-soon" not in watcher.presence_state, "the leave after the socket closed")


# -- private channels --------------------------------------------------------------------------------------------
async def test_private_channel_join_needs_read_policy(
    devstack: StackHandle,
    clients: Callable[..., Any],
    db: asyncpg.Connection,
    policies: list[str],
) -> None:
    name = topic_name("private")
    member, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    refused = await Room(await clients(token=devstack.user_token(member)), name, {"private": True}).join(
        expect="CHANNEL_ERROR"
    )
    assert "You do not have permissions to read from this Channel topic" in str(refused.states)
    await add_policy(
        db,
        policies,
        "select",
        "authenticated",
        f"realtime.topic() = '{name}' and extension = 'broadcast' and (select auth.uid()) = '{member}'::uuid",
    )
    ok = await Room(await clients(token=devstack.user_token(member)), name, {"private": True}).join()
    still_refused = await Room(await clients(token=devstack.user_token(stranger)), name, {"private": True}).join(
        expect="CHANNEL_ERROR"
    )
    anon = await Room(await clients(), name, {"private": True}).join(expect="CHANNEL_ERROR")
    assert ok.states[-1][0] == "SUBSCRIBED"
    assert still_refused.states[0][0] == "CHANNEL_ERROR" and anon.states[0][0] == "CHANNEL_ERROR"


async def test_private_channel_write_policy_and_token_refresh(
    devstack: StackHandle,
    clients: Callable[..., Any],
    db: asyncpg.Connection,
    policies: list[str],
) -> None:
    name = topic_name("private")
    writer, reader = str(uuid.uuid4()), str(uuid.uuid4())
    await add_policy(db, policies, "select", "authenticated", f"realtime.topic() = '{name}'")
    await add_policy(
        db,
        policies,
        "insert",
        "authenticated",
        f"realtime.topic() = '{name}' and (select auth.uid()) = '{writer}'::uuid",
    )
    w = await Room(await clients(token=devstack.user_token(writer)), name, {"private": True}).join()
    r_client = await clients(token=devstack.user_token(reader))
    r = await Room(r_client, name, {"private": True, "broadcast": {"self": True}}).join()
    await r.channel.send_broadcast("from-reader", {})  # no write permission: dropped
    await w.channel.send_broadcast("from-writer", {})
    await w.channel.send_broadcast("sentinel", {})
    await r.wait_event("sentinel")
    assert r.events() == ["from-writer"]
    # a token that loses read permission (anon) shuts the channel down
    await r_client.realtime.set_auth(devstack.env.anon_key)
    await r.wait_for(lambda: any(s == "CLOSED" for s, _ in r.states) or bool(r.system), "shutdown")
    await w.channel.send_broadcast("after", {})
    await w.channel.send_broadcast("sentinel2", {})
    await asyncio.sleep(0.3)
    assert "after" not in r.events()


# -- broadcast from the database ---------------------------------------------------------------------------------
async def test_realtime_send_public_and_private(
    devstack: StackHandle,
    clients: Callable[..., Any],
    db: asyncpg.Connection,
    policies: list[str],
) -> None:
    name = topic_name("db")
    member = str(uuid.uuid4())
    await add_policy(
        db,
        policies,
        "select",
        "authenticated",
        f"realtime.topic() = '{name}' and (select auth.uid()) = '{member}'::uuid",
    )
    public = await Room(await clients(), name).join()
    private = await Room(await clients(token=devstack.user_token(member)), name, {"private": True}).join()
    await db.execute("select realtime.send($1::jsonb, 'to-public', $2, false)", json.dumps({"a": 1}), name)
    await db.execute("select realtime.send($1::jsonb, 'to-private', $2)", json.dumps({"b": [1, 2]}), name)
    # nothing is sent for a rolled-back transaction
    await db.execute(f"begin; select realtime.send('{{}}'::jsonb, 'rolled-back', '{name}'); rollback;")
    await db.execute("select realtime.send('{}'::jsonb, 'sentinel', $1, false)", name)
    await db.execute("select realtime.send('{}'::jsonb, 'sentinel', $1)", name)
    await public.wait_event("sentinel")
    await private.wait_event("sentinel")
    assert public.events() == ["to-public"]
    assert private.events() == ["to-private"]
    message = private.messages[0]
    assert message["payload"] == {"b": [1, 2]}
    assert uuid.UUID(message["meta"]["id"])


async def test_broadcast_changes_from_a_trigger(
    devstack: StackHandle,
    clients: Callable[..., Any],
    db: asyncpg.Connection,
    policies: list[str],
    tables: list[str],
) -> None:
    table = await make_table(db, "id bigint primary key, title text", publish=False)
    tables.append(table)
    name = topic_name("rows")
    await db.execute(f"""
        create or replace function public.{table}_notify() returns trigger language plpgsql security definer as $$
        begin
          perform realtime.broadcast_changes('{name}', tg_op, tg_op, tg_table_name, tg_table_schema, new, old);
          return null;
        end $$;
        create trigger {table}_broadcast after insert or update or delete on public.{table}
          for each row execute function public.{table}_notify();
    """)
    try:
        await _broadcast_changes_case(devstack, clients, db, policies, table, name)
    finally:  # the function outlives the table; other tests check every public function's grants
        await db.execute(f"drop function if exists public.{table}_notify() cascade")


async def _broadcast_changes_case(
    devstack: StackHandle,
    clients: Callable[..., Any],
    db: asyncpg.Connection,
    policies: list[str],
    table: str,
    name: str,
) -> None:
    await add_policy(db, policies, "select", "authenticated", f"realtime.topic() = '{name}'")
    room = await Room(await clients(token=devstack.user_token(str(uuid.uuid4()))), name, {"private": True}).join()
    await db.execute(f"insert into public.{table} values (1, 'a')")
    await db.execute(f"update public.{table} set title = 'b' where id = 1")
    await db.execute(f"delete from public.{table} where id = 1")
    await room.wait_for(lambda: len(room.messages) >= 3, "three row broadcasts")
    got = [
        (m["event"], m["payload"]["operation"], m["payload"]["record"], m["payload"]["old_record"])
        for m in room.messages
    ]
    assert got == [
        ("INSERT", "INSERT", {"id": 1, "title": "a"}, None),
        ("UPDATE", "UPDATE", {"id": 1, "title": "b"}, {"id": 1, "title": "a"}),
        ("DELETE", "DELETE", None, {"id": 1, "title": "b"}),
    ]
    assert {(m["payload"]["schema"], m["payload"]["table"]) for m in room.messages} == {("public", table)}
    with pytest.raises(asyncpg.RaiseError, match="for each row"):
        await db.execute(
            f"select realtime.broadcast_changes('{name}', 'x', 'INSERT', 't', 'public', null, null, 'STATEMENT')"
        )


# -- the REST broadcast API ------------------------------------------------------------------------------------
async def test_rest_broadcast_api(
    devstack: StackHandle,
    clients: Callable[..., Any],
    db: asyncpg.Connection,
    policies: list[str],
) -> None:
    name = topic_name("rest")
    writer, reader = str(uuid.uuid4()), str(uuid.uuid4())
    await add_policy(db, policies, "select", "authenticated", f"realtime.topic() = '{name}'")
    await add_policy(
        db,
        policies,
        "insert",
        "authenticated",
        f"realtime.topic() = '{name}' and (select auth.uid()) = '{writer}'::uuid",
    )
    public = await Room(await clients(), name).join()
    private = await Room(await clients(token=devstack.user_token(reader)), name, {"private": True}).join()
    # realtime-py's http_send (`/api/broadcast/<topic>/events/<event>`), from a channel that never joined
    sender = (await clients()).channel(name)
    await sender.http_send("via-http-send", {"n": 1})
    writer_client = await clients(token=devstack.user_token(writer))
    private_sender = writer_client.channel(name, params={"config": {"private": True}})
    await private_sender.http_send("private-ok", {"n": 2})
    reader_client = await clients(token=devstack.user_token(reader))
    await reader_client.channel(name, params={"config": {"private": True}}).http_send("no-write", {"n": 3})
    # supabase-js's `/api/broadcast` with a list of messages
    url = devstack.env.supabase_url + "/realtime/v1/api/broadcast"
    async with httpx.AsyncClient() as http:
        anon = {"apikey": devstack.env.anon_key}
        resp = await http.post(
            url,
            headers=anon,
            json={
                "messages": [
                    {"topic": name, "event": "js-style", "payload": {"n": 4}},
                    {"topic": name, "event": "sentinel", "payload": {}},
                    {"topic": name, "event": "anon-private", "payload": {}, "private": True},  # anon may not write
                ]
            },
        )
        assert resp.status_code == 202, resp.text
        assert (await http.post(url, json={"messages": []})).status_code == 401
        assert (await http.post(url, headers=anon, json={"messages": "x"})).status_code == 422
        service = {"apikey": devstack.env.service_role_key}
        resp = await http.post(
            url,
            headers=service,
            json={"messages": [{"topic": name, "event": "sentinel", "payload": {}, "private": True}]},
        )
        assert resp.status_code == 202
    await public.wait_event("sentinel")
    await private.wait_event("sentinel")
    assert public.events() == ["via-http-send", "js-style"]
    assert private.events() == ["private-ok"]
    assert public.messages[0]["payload"] == {"n": 1}

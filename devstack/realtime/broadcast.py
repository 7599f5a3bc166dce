"""Broadcast, Presence and Broadcast from the database for joined channels, as Supabase Realtime serves them.

- **Channel config** (`phx_join` `payload.config`): `broadcast: {self, ack}`, `presence: {key, enabled}`,
  `private`. Channels meet by name *and* privacy: a private channel `room` and a public channel `room` are
  separate topics, and `realtime.send(..., private => false)` reaches the public one.
- **Broadcast** (client `broadcast` push `{type, event, payload}`): relayed as a `broadcast` frame (`ref` null) to
  every other channel of the topic, and to the sender too with `self: true`; `ack: true` makes the server reply
  `ok` to the push.
- **Presence**: `presence` pushes `{event: "track"|"untrack", payload}`. Each channel holds at most one presence
  under its key (`presence.key`, else a random one per join); a second track replaces it (a diff with the new meta
  joining and the old leaving). Joined channels with presence enabled get `presence_state` right after the join
  reply and a `presence_diff` `{joins, leaves}` for every change; leaving or dropping the socket untracks.
  Metas carry `phx_ref` (and `phx_ref_prev` on a replace), which realtime-py shows as `presence_ref`.
- **Private channels** are authorised against RLS on `realtime.messages` when they join (and again on a token
  refresh): in a rolled-back transaction, probe rows for the topic (extensions `broadcast` and `presence`) are
  read as the subscriber's role and claims with `realtime.topic()` set to the topic (read permission), and one row
  per extension is inserted as that role (write permission). No read permission: the join is refused. Without
  write permission the channel's own broadcasts and tracks are dropped.
- **From the database**: committed inserts into `realtime.messages` with `extension = 'broadcast'` come through
  the gateway's logical slot (publication `supabase_realtime_messages_publication`) and go to the channels of
  `(topic, private)` as `broadcast` frames `{type, event, payload, meta: {id}}`; private ones only to channels
  whose join found read permission for broadcasts.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg
import msgspec

from devstack.realtime.pgoutput import RowChange
from devstack.realtime.protocol import encode_json

MESSAGES_SCHEMA = "realtime"
MESSAGES_TABLE = "messages"
MESSAGES_PUBLICATION = "supabase_realtime_messages_publication"
EXTENSIONS = ("broadcast", "presence")

TopicKey = tuple[str, bool]  # (channel name without "realtime:", private)


def unauthorized_read(topic: str) -> str:
    return f"Unauthorized: You do not have permissions to read from this Channel topic: {topic}"


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    broadcast_self: bool = False
    broadcast_ack: bool = False
    presence_key: str = ""
    presence_enabled: bool = False
    private: bool = False

    @classmethod
    def from_raw(cls, config: object) -> ChannelConfig:
        if not isinstance(config, dict):
            return cls()
        broadcast = config.get("broadcast") if isinstance(config.get("broadcast"), dict) else {}
        presence = config.get("presence") if isinstance(config.get("presence"), dict) else {}
        assert isinstance(broadcast, dict) and isinstance(presence, dict)
        key = presence.get("key")
        return cls(
            broadcast_self=broadcast.get("self") is True,
            broadcast_ack=broadcast.get("ack") is True,
            presence_key=key if isinstance(key, str) else "",
            presence_enabled=presence.get("enabled") is True,
            private=config.get("private") is True,
        )


@dataclass(frozen=True, slots=True)
class Permissions:
    """What RLS on `realtime.messages` lets a private channel do (public channels may do everything)."""

    read: frozenset[str] = frozenset(EXTENSIONS)
    write: frozenset[str] = frozenset(EXTENSIONS)

    def can_read(self, extension: str) -> bool:
        return extension in self.read

    def can_write(self, extension: str) -> bool:
        return extension in self.write


PUBLIC = Permissions()


class TopicMember(Protocol):
    """A joined channel as the topic registry sees it."""

    name: str
    config: ChannelConfig
    permissions: Permissions
    presence_key: str
    presence_on: bool

    def push(self, event: str, payload_json: str, ref: str | None = None) -> None: ...


@dataclass(slots=True)
class _Topic:
    members: set[TopicMember] = field(default_factory=set)
    #: presence key -> {channel -> its meta (with phx_ref)}, in track order
    presences: dict[str, dict[TopicMember, dict[str, object]]] = field(default_factory=dict)


def _new_ref() -> str:
    return "F" + secrets.token_urlsafe(9)


class TopicRegistry:
    """Joined channels by (name, private), and each topic's presence state."""

    def __init__(self) -> None:
        self._topics: dict[TopicKey, _Topic] = {}
        #: broadcast frames enqueued (for tests and the benchmark)
        self.broadcasts = 0

    @staticmethod
    def key_of(member: TopicMember) -> TopicKey:
        return (member.name, member.config.private)

    def add(self, member: TopicMember) -> None:
        self._topics.setdefault(self.key_of(member), _Topic()).members.add(member)

    def remove(self, member: TopicMember) -> None:
        key = self.key_of(member)
        topic = self._topics.get(key)
        if topic is None:
            return
        topic.members.discard(member)
        self.untrack(member)
        if not topic.members and not topic.presences:
            del self._topics[key]

    def members(self, key: TopicKey) -> list[TopicMember]:
        topic = self._topics.get(key)
        return list(topic.members) if topic is not None else []

    # -- broadcast --------------------------------------------------------------------------------------------
    def broadcast(self, sender: TopicMember | None, key: TopicKey, payload_json: str) -> int:
        """Relay one `broadcast` payload to the topic's channels that may read broadcasts; the count sent."""
        sent = 0
        for member in self.members(key):
            if member is sender and not member.config.broadcast_self:
                continue
            if not member.permissions.can_read("broadcast"):
                continue
            member.push("broadcast", payload_json)
            sent += 1
        self.broadcasts += sent
        return sent

    # -- presence ---------------------------------------------------------------------------------------------
    def state_json(self, member: TopicMember) -> str:
        topic = self._topics.get(self.key_of(member))
        state: dict[str, object] = {}
        if topic is not None:
            for key, metas in topic.presences.items():
                if metas:
                    state[key] = {"metas": list(metas.values())}
        return encode_json(state)

    def track(self, member: TopicMember, payload: dict[str, object]) -> None:
        topic = self._topics.setdefault(self.key_of(member), _Topic())
        metas = topic.presences.setdefault(member.presence_key, {})
        previous = metas.get(member)
        meta: dict[str, object] = {**payload, "phx_ref": _new_ref()}
        if previous is not None:
            meta["phx_ref_prev"] = previous["phx_ref"]
        metas[member] = meta
        leaves = {member.presence_key: {"metas": [previous]}} if previous is not None else {}
        self._diff(topic, {member.presence_key: {"metas": [meta]}}, leaves)

    def untrack(self, member: TopicMember) -> None:
        topic = self._topics.get(self.key_of(member))
        if topic is None:
            return
        metas = topic.presences.get(member.presence_key)
        if not metas or member not in metas:
            return
        previous = metas.pop(member)
        if not metas:
            del topic.presences[member.presence_key]
        self._diff(topic, {}, {member.presence_key: {"metas": [previous]}})

    @staticmethod
    def _diff(topic: _Topic, joins: Mapping[str, object], leaves: Mapping[str, object]) -> None:
        diff = encode_json({"joins": joins, "leaves": leaves})
        for member in list(topic.members):
            if member.presence_on and member.permissions.can_read("presence"):
                member.push("presence_diff", diff)


# -- the database side ---------------------------------------------------------------------------------------------
def is_message_change(change: RowChange) -> bool:
    rel = change.relation
    return rel.schema == MESSAGES_SCHEMA and rel.name == MESSAGES_TABLE


def relay_messages(registry: TopicRegistry, changes: Iterable[RowChange]) -> int:
    """Deliver committed `realtime.messages` broadcast rows to their topics; the number of frames sent."""
    sent = 0
    for change in changes:
        row = change.new
        if change.kind != "INSERT" or row is None or row.get("extension") != "broadcast":
            continue
        topic = row.get("topic")
        if topic is None:
            continue
        private = row.get("private") == "t"
        payload = row.get("payload")
        if payload is not None:
            try:  # the WAL text of a jsonb value is JSON; re-encode to be safe about whitespace and validity
                payload = encode_json(msgspec.json.decode(payload))
            except msgspec.DecodeError:
                payload = encode_json(payload)
        body = (
            f'{{"type":"broadcast","event":{encode_json(row.get("event"))},"payload":{payload or "null"},'
            f'"meta":{{"id":{encode_json(row.get("id"))}}}}}'
        )
        sent += registry.broadcast(None, (topic, private), body)
    return sent


_READ_PROBE = "select extension from realtime.messages where id = any($1::uuid[])"


async def authorize(pool: asyncpg.Pool, topic: str, role: str, claims_json: str) -> Permissions:
    """A private channel's permissions, from RLS on `realtime.messages` (see the module docstring)."""
    probes = {ext: uuid.uuid4() for ext in EXTENSIONS}
    async with pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        try:
            await conn.executemany(
                "insert into realtime.messages (id, topic, extension, private) values ($1, $2, $3, true)",
                [(probe, topic, ext) for ext, probe in probes.items()],
            )
            await conn.execute(
                "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true), "
                "set_config('realtime.topic', $3, true)",
                role,
                claims_json,
                topic,
            )
            read: set[str] = set()
            try:
                async with conn.transaction():
                    read = {str(r["extension"]) for r in await conn.fetch(_READ_PROBE, list(probes.values()))}
            except asyncpg.PostgresError:
                read = set()
            write: set[str] = set()
            for ext in EXTENSIONS:
                try:
                    async with conn.transaction():
                        await conn.execute(
                            "insert into realtime.messages (topic, extension, private) values ($1, $2, true)",
                            topic,
                            ext,
                        )
                    write.add(ext)
                except asyncpg.PostgresError:
                    pass
        finally:
            await tr.rollback()
    return Permissions(read=frozenset(read), write=frozenset(write))

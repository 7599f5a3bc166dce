"""Realtime emulator pieces that need no database: pgoutput decoding, value conversion, filters, frames, queues."""

from __future__ import annotations

import asyncio
import json
import struct
from decimal import Decimal
from typing import Any

import pytest

from devstack.realtime.broadcast import ChannelConfig, Permissions, TopicRegistry, relay_messages
from devstack.realtime.filters import (
    CompiledFilter,
    FilterParseError,
    FilterSpec,
    like_to_regex,
    parse_filters,
)
from devstack.realtime.pgoutput import PgOutputDecoder, Relation, RowChange, format_commit_time, parse_lsn
from devstack.realtime.protocol import ClientFrame, FrameError, decode_frame, encode_frame
from devstack.realtime.socket import RealtimeConnection
from devstack.realtime.subscriptions import BindingRequest, binding_id
from devstack.realtime.values import TypeCache, TypeInfo, sort_key, to_json


# -- pgoutput ----------------------------------------------------------------------------------------------------
def _s(text: str) -> bytes:
    return text.encode() + b"\x00"


def _tuple(*values: str | bytes | None) -> bytes:
    out = struct.pack(">h", len(values))
    for v in values:
        if v is None:
            out += b"n"
        elif v == b"u":
            out += b"u"
        else:
            data = v.encode() if isinstance(v, str) else v
            out += b"t" + struct.pack(">i", len(data)) + data
    return out


def _relation(relid: int, identity: bytes = b"d") -> bytes:
    cols = [(1, "id", 20), (0, "title", 25), (0, "body", 25)]
    body = b"R" + struct.pack(">I", relid) + _s("public") + _s("todos") + identity + struct.pack(">h", len(cols))
    for flags, name, oid in cols:
        body += bytes([flags]) + _s(name) + struct.pack(">Ii", oid, -1)
    return body


def _begin(lsn: int, micros: int) -> bytes:
    return b"B" + struct.pack(">QqI", lsn, micros, 731)


def _commit(lsn: int, micros: int) -> bytes:
    return b"C" + b"\x00" + struct.pack(">QQq", lsn, lsn + 48, micros)


def test_realtime_pgoutput_decodes_a_transaction() -> None:
    decoder = PgOutputDecoder()
    micros = 817_630_473_035_123  # 2025-11-28 ...
    assert decoder.feed(_begin(0x158C178, micros)) == []
    decoder.feed(_relation(16615))
    decoder.feed(b"I" + struct.pack(">I", 16615) + b"N" + _tuple("1", "a", "long"))
    decoder.feed(b"U" + struct.pack(">I", 16615) + b"N" + _tuple("1", "b", b"u"))  # unchanged TOAST body
    decoder.feed(b"U" + struct.pack(">I", 16615) + b"K" + _tuple("1", None, None) + b"N" + _tuple("2", "c", "x"))
    decoder.feed(b"D" + struct.pack(">I", 16615) + b"K" + _tuple("2", None, None))
    decoder.feed(b"T" + struct.pack(">IbI", 1, 0, 16615))
    changes = decoder.feed(_commit(0x158C178, micros))
    assert [(c.kind, c.new, c.old, c.commit_lsn) for c in changes] == [
        ("INSERT", {"id": "1", "title": "a", "body": "long"}, None, 0x158C178),
        ("UPDATE", {"id": "1", "title": "b"}, {"id": "1"}, 0x158C178),
        ("UPDATE", {"id": "2", "title": "c", "body": "x"}, {"id": "1"}, 0x158C178),
        ("DELETE", None, {"id": "2"}, 0x158C178),
    ]
    assert changes[0].commit_timestamp == format_commit_time(micros)
    assert format_commit_time(0) == "2000-01-01T00:00:00.000Z"
    assert format_commit_time(1_500) == "2000-01-01T00:00:00.001Z"


def test_realtime_pgoutput_full_identity_fills_unchanged_toast() -> None:
    decoder = PgOutputDecoder()
    decoder.feed(_begin(1, 0))
    decoder.feed(_relation(7, identity=b"f"))
    decoder.feed(b"U" + struct.pack(">I", 7) + b"O" + _tuple("1", "a", "big") + b"N" + _tuple("1", "b", b"u"))
    (change,) = decoder.feed(_commit(1, 0))
    assert change.new == {"id": "1", "title": "b", "body": "big"}
    assert change.old == {"id": "1", "title": "a", "body": "big"} and change.old_is_full


def test_realtime_parse_lsn() -> None:
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848


# -- values --------------------------------------------------------------------------------------------------------
@pytest.fixture
def types() -> TypeCache:
    cache = TypeCache()
    for info in [
        TypeInfo(20, "int8", "N", 0, ",", 0),
        TypeInfo(1700, "numeric", "N", 0, ",", 0),
        TypeInfo(701, "float8", "N", 0, ",", 0),
        TypeInfo(16, "bool", "B", 0, ",", 0),
        TypeInfo(3802, "jsonb", "U", 0, ",", 0),
        TypeInfo(1184, "timestamptz", "D", 0, ",", 0),
        TypeInfo(1114, "timestamp", "D", 0, ",", 0),
        TypeInfo(25, "text", "S", 0, ",", 0),
        TypeInfo(1009, "_text", "A", 25, ",", 0),
        TypeInfo(1016, "_int8", "A", 20, ",", 0),
        TypeInfo(90001, "positive", "N", 0, ",", 20),  # a domain over int8
    ]:
        cache._types[info.oid] = info
    return cache


@pytest.mark.parametrize(
    ("text", "oid", "expected"),
    [
        ("42", 20, 42),
        ("1.50", 1700, Decimal("1.50")),
        ("NaN", 1700, "NaN"),
        ("2.5", 701, 2.5),
        ("Infinity", 701, "Infinity"),
        ("t", 16, True),
        ("f", 16, False),
        ('{"a": [1, {"b": null}]}', 3802, {"a": [1, {"b": None}]}),
        ("2026-11-29 07:34:33.035+00", 1184, "2026-11-29T07:34:33.035+00:00"),
        ("2026-11-29 07:34:33+05:30", 1184, "2026-11-29T07:34:33+05:30"),
        ("infinity", 1184, "infinity"),
        ("2026-11-29 07:34:33", 1114, "2026-11-29T07:34:33"),
        ('{a,"b c","x\\"y",NULL}', 1009, ["a", "b c", 'x"y', None]),
        ("{{1,2},{3,4}}", 1016, [[1, 2], [3, 4]]),
        ("{}", 1016, []),
        ("[0:1]={1,2}", 1016, "[0:1]={1,2}"),
        ("7", 90001, 7),
        ("hello", 25, "hello"),
        (None, 20, None),
    ],
)
def test_realtime_values_to_json(types: TypeCache, text: str | None, oid: int, expected: Any) -> None:
    assert to_json(text, oid, types) == expected


def test_realtime_sort_keys_compare_like_postgres() -> None:
    assert sort_key("int", "10") > sort_key("int", "9")
    assert sort_key("numeric", "1.0") == sort_key("numeric", "1.00")
    assert sort_key("float", "NaN") > sort_key("float", "1e300")
    assert sort_key("timestamp", "2026-01-01 00:00:00+01") < sort_key("timestamp", "2026-01-01 00:00:00+00")
    assert sort_key("timestamp", "-infinity") < sort_key("timestamp", "1999-01-01 00:00:00+00")
    assert sort_key("bool", "t") == sort_key("bool", "true")


# -- filters ----------------------------------------------------------------------------------------------------------
def test_realtime_parse_filters() -> None:
    assert parse_filters(None) == ()
    assert parse_filters('a=eq.1,b=not.in.(x,"y,z"),c=eq."q,r"') == (
        FilterSpec("a", "eq", "1"),
        FilterSpec("b", "in", '{x,"y,z"}', negated=True),
        FilterSpec("c", "eq", "q,r"),
    )
    assert FilterSpec("a", "eq", "1").log_form() == '{"a", "eq", "1", false}'
    with pytest.raises(FilterParseError, match=r'Error parsing `filter` params: \["foo","hey"\]'):
        parse_filters("foo=hey")
    with pytest.raises(FilterParseError, match="parentheses"):
        parse_filters("a=in.1,2")


def test_realtime_compiled_filters_are_fail_closed() -> None:
    gt = CompiledFilter("n", "gt", False, "int", key=(0, 5))
    not_eq = CompiledFilter("n", "eq", True, "int", key=(0, 5))
    assert gt.test({"n": "10"}) and not gt.test({"n": "5"})
    assert not gt.test({"n": None}) and not gt.test({"other": "10"})
    assert not_eq.test({"n": "4"}) and not not_eq.test({"n": None})
    is_null = CompiledFilter("n", "is", False, "int", is_value="null")
    assert is_null.test({"n": None}) and not is_null.test({"n": "1"}) and not is_null.test({})
    distinct = CompiledFilter("n", "isdistinct", False, "int", key=(0, 5))
    assert distinct.test({"n": None}) and distinct.test({"n": "6"}) and not distinct.test({"n": "5"})


def test_realtime_like_patterns() -> None:
    assert like_to_regex("a%c_", ignore_case=False).match("abbbcd")
    assert not like_to_regex("a%c_", ignore_case=False).match("ABBBCD")
    assert like_to_regex("a%c_", ignore_case=True).match("ABBBCD")
    assert like_to_regex(r"100\%", ignore_case=False).match("100%")
    assert not like_to_regex(r"100\%", ignore_case=False).match("1000")


def test_realtime_binding_ids() -> None:
    raw: dict[str, object] = {"event": "*", "schema": "public", "table": "t", "filter": "id=eq.4"}
    binding = BindingRequest.from_raw(raw)
    assert binding.id == binding_id(dict(reversed(list(raw.items()))))
    assert 0 < binding.id < 2**27
    assert binding.reply() == {**raw, "id": binding.id}
    assert binding_id({"event": "INSERT", "schema": "public"}) != binding.id
    assert BindingRequest.from_raw({"event": "insert", "schema": "public"}).event == "INSERT"
    assert BindingRequest.from_raw({"event": "bogus"}).event == "*"


# -- frames and queues ---------------------------------------------------------------------------------------------
def test_realtime_frames_both_serializers() -> None:
    assert decode_frame('{"event":"heartbeat","topic":"phoenix","payload":{},"ref":null}') == ClientFrame(
        None, None, "phoenix", "heartbeat", {}
    )
    assert decode_frame('["1","2","realtime:x","phx_join",{"a":1}]') == ClientFrame(
        "1", "2", "realtime:x", "phx_join", {"a": 1}
    )
    with pytest.raises(FrameError):
        decode_frame('["1","2"]')
    assert encode_frame("1.0.0", topic="t", event="e", payload_json="{}", ref=None, join_ref="1") == (
        '{"event":"e","topic":"t","payload":{},"ref":null}'
    )
    assert encode_frame("2.0.0", topic="t", event="e", payload_json="{}", ref="3", join_ref="1") == (
        '["1","3","t","e",{}]'
    )


class _Hub:
    stats_overflows = 0


async def test_realtime_overflowing_socket_is_closed_not_awaited() -> None:
    conn = RealtimeConnection(_Hub(), "1.0.0", "token", queue_size=3)  # type: ignore[arg-type]
    for i in range(3):
        conn.send_text(f"frame {i}")
    assert not conn.closed
    conn.send_text("one too many")  # must not block the caller (the poller)
    assert conn.closed and conn.dropped
    conn.send_text("ignored")
    assert conn._queue.qsize() == 1 and conn._queue.get_nowait() is None  # only the close marker is left
    await asyncio.sleep(0)


# -- broadcast and presence bookkeeping (no database) ------------------------------------------------------------
class _Member:
    def __init__(
        self,
        name: str,
        *,
        private: bool = False,
        key: str = "k",
        self_: bool = False,
        read: frozenset[str] = frozenset({"broadcast", "presence"}),
    ) -> None:
        self.name = name
        self.config = ChannelConfig(broadcast_self=self_, private=private)
        self.permissions = Permissions(read=read)
        self.presence_key = key
        self.presence_on = True
        self.frames: list[tuple[str, Any]] = []

    def push(self, event: str, payload_json: str, ref: str | None = None) -> None:
        self.frames.append((event, json.loads(payload_json)))


def test_topic_registry_broadcast_presence_and_db_relay() -> None:
    reg = TopicRegistry()
    a, b = _Member("room", key="a"), _Member("room", key="b", self_=True)
    private = _Member("room", private=True, key="p")
    deaf = _Member("room", private=True, key="d", read=frozenset())
    for m in (a, b, private, deaf):
        reg.add(m)
    assert reg.broadcast(a, ("room", False), '{"type":"broadcast","event":"e","payload":1}') == 1
    assert a.frames == [] and b.frames == [("broadcast", {"type": "broadcast", "event": "e", "payload": 1})]
    b.frames.clear()
    reg.broadcast(b, ("room", False), '{"event":"mine"}')
    assert b.frames == [("broadcast", {"event": "mine"})]  # self: true

    reg.track(a, {"s": 1})
    reg.track(a, {"s": 2})
    joins = [p for e, p in b.frames if e == "presence_diff"]
    assert joins[0]["joins"]["a"]["metas"][0]["s"] == 1 and joins[0]["leaves"] == {}
    second = joins[1]
    assert second["joins"]["a"]["metas"][0]["s"] == 2 and second["leaves"]["a"]["metas"][0]["s"] == 1
    assert second["joins"]["a"]["metas"][0]["phx_ref_prev"] == second["leaves"]["a"]["metas"][0]["phx_ref"]
    assert [m["s"] for m in json.loads(reg.state_json(b))["a"]["metas"]] == [2]
    reg.remove(a)  # leaving untracks
    assert [e for e, _ in b.frames][-1] == "presence_diff" and json.loads(reg.state_json(b)) == {}
    assert not any(e == "presence_diff" for e, _ in private.frames)  # another topic (private)

    rel = Relation(1, "realtime", "messages", "d", ())
    row: dict[str, str | None] = {
        "topic": "room",
        "extension": "broadcast",
        "event": "db",
        "payload": '{"x": [1]}',
        "private": "t",
        "id": "00000000-0000-0000-0000-000000000001",
    }
    changes = [
        RowChange("INSERT", rel, row, None, False, 1, 0),
        RowChange("INSERT", rel, {**row, "extension": "presence"}, None, False, 2, 0),
    ]
    assert relay_messages(reg, changes) == 1  # to the private channel that may read; not the deaf one
    assert private.frames[-1] == (
        "broadcast",
        {
            "type": "broadcast",
            "event": "db",
            "payload": {"x": [1]},
            "meta": {"id": "00000000-0000-0000-0000-000000000001"},
        },
    )
    assert deaf.frames == []

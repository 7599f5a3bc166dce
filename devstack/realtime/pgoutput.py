"""Decoder for the `pgoutput` logical decoding protocol (version 1), as read through the SQL interface.

`pg_logical_slot_get_binary_changes(slot, NULL, n, 'proto_version', '1', 'publication_names', ...)` returns one
bytea per protocol message. Only whole transactions come out (the reorder buffer emits a transaction at its commit),
so the decoder turns Begin..Commit into a list of `RowChange`s stamped with the transaction's commit LSN and time.
Relation messages describe a table before its first change in each call; they are kept across calls.
TRUNCATE, origins, types and logical messages carry nothing the Realtime emulator delivers and are skipped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

#: the Realtime event types; TRUNCATE is never delivered
ChangeKind = Literal["INSERT", "UPDATE", "DELETE"]
#: a decoded tuple: column name -> text value (None for NULL); unchanged TOAST columns are absent
TupleValues = dict[str, str | None]

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")


class PgOutputError(ValueError):
    """A message the decoder cannot parse (protocol mismatch or truncated data)."""


@dataclass(frozen=True, slots=True)
class RelationColumn:
    name: str
    type_oid: int
    typmod: int
    #: part of the replica identity (for REPLICA IDENTITY FULL every column is)
    is_identity: bool


@dataclass(frozen=True, slots=True)
class Relation:
    relid: int
    schema: str
    name: str
    #: 'd' default (primary key), 'f' full, 'i' index, 'n' nothing
    replica_identity: str
    columns: tuple[RelationColumn, ...]

    @property
    def identity_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.is_identity)


@dataclass(slots=True)
class RowChange:
    kind: ChangeKind
    relation: Relation
    #: the new row (INSERT, UPDATE)
    new: TupleValues | None
    #: the old identity: full row with REPLICA IDENTITY FULL, else the identity columns (UPDATE, DELETE)
    old: TupleValues | None
    #: the old tuple was the full row ('O'), not only the key ('K') or derived from the new row
    old_is_full: bool
    commit_lsn: int
    commit_time_us: int

    @property
    def commit_timestamp(self) -> str:
        """`YYYY-MM-DDTHH:MM:SS.mmmZ`, as the Realtime server formats the commit time."""
        return format_commit_time(self.commit_time_us)


def format_commit_time(pg_micros: int) -> str:
    moment = PG_EPOCH + timedelta(microseconds=pg_micros)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_lsn(text: str) -> int:
    """`16/B374D848` -> integer position."""
    hi, _, lo = text.partition("/")
    return (int(hi, 16) << 32) | int(lo, 16)


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.buf):
            raise PgOutputError("truncated message")
        value = self.buf[self.pos]
        self.pos += 1
        return value

    def char(self) -> str:
        return chr(self.byte())

    def _unpack(self, fmt: struct.Struct) -> int:
        end = self.pos + fmt.size
        if end > len(self.buf):
            raise PgOutputError("truncated message")
        (value,) = fmt.unpack_from(self.buf, self.pos)
        self.pos = end
        return int(value)

    def i16(self) -> int:
        return self._unpack(_I16)

    def i32(self) -> int:
        return self._unpack(_I32)

    def u32(self) -> int:
        return self._unpack(_U32)

    def u64(self) -> int:
        return self._unpack(_U64)

    def i64(self) -> int:
        return self._unpack(_I64)

    def cstring(self) -> str:
        end = self.buf.find(b"\x00", self.pos)
        if end < 0:
            raise PgOutputError("unterminated string")
        value = self.buf[self.pos : end].decode()
        self.pos = end + 1
        return value

    def raw(self, length: int) -> bytes:
        end = self.pos + length
        if end > len(self.buf):
            raise PgOutputError("truncated message")
        value = self.buf[self.pos : end]
        self.pos = end
        return value


class PgOutputDecoder:
    """Stateful decoder: feed messages in order, collect the changes of each committed transaction."""

    def __init__(self) -> None:
        self.relations: dict[int, Relation] = {}
        self._pending: list[RowChange] = []
        self._commit_lsn = 0
        self._commit_time = 0
        self._in_txn = False

    def feed(self, message: bytes) -> list[RowChange]:
        """Decode one message; returns the transaction's changes when `message` is its Commit, else []."""
        reader = _Reader(message)
        tag = reader.char()
        if tag == "B":
            self._commit_lsn = reader.u64()
            self._commit_time = reader.i64()
            reader.u32()  # xid
            self._pending = []
            self._in_txn = True
        elif tag == "C":
            reader.byte()  # flags
            reader.u64()  # commit lsn (same as Begin's final lsn)
            reader.u64()  # end lsn
            reader.i64()  # commit time
            done, self._pending, self._in_txn = self._pending, [], False
            return done
        elif tag == "R":
            self._relation(reader)
        elif tag == "I":
            relation = self._relation_of(reader.u32())
            if reader.char() != "N":
                raise PgOutputError("INSERT without new tuple")
            self._add("INSERT", relation, self._tuple(reader, relation), None, False)
        elif tag == "U":
            self._update(reader)
        elif tag == "D":
            relation = self._relation_of(reader.u32())
            marker = reader.char()
            if marker not in ("K", "O"):
                raise PgOutputError(f"DELETE with unexpected tuple marker {marker!r}")
            old = self._tuple(reader, relation)
            if marker == "K":
                old = _only(old, relation.identity_columns)
            self._add("DELETE", relation, None, old, marker == "O")
        # 'T' truncate, 'Y' type, 'O' origin, 'M' message: nothing to deliver
        return []

    # -- message bodies -------------------------------------------------------------------------------------
    def _relation(self, reader: _Reader) -> None:
        relid = reader.u32()
        schema = reader.cstring()
        name = reader.cstring()
        identity = reader.char()
        columns = []
        for _ in range(reader.i16()):
            flags = reader.byte()
            col_name = reader.cstring()
            type_oid = reader.u32()
            typmod = reader.i32()
            columns.append(RelationColumn(col_name, type_oid, typmod, bool(flags & 1)))
        self.relations[relid] = Relation(relid, schema, name, identity, tuple(columns))

    def _update(self, reader: _Reader) -> None:
        relation = self._relation_of(reader.u32())
        marker = reader.char()
        old: TupleValues | None = None
        old_full = False
        if marker in ("K", "O"):
            old = self._tuple(reader, relation)
            old_full = marker == "O"
            if marker == "K":
                old = _only(old, relation.identity_columns)
            marker = reader.char()
        if marker != "N":
            raise PgOutputError("UPDATE without new tuple")
        new = self._tuple(reader, relation)
        if old is None:  # identity unchanged: the old identity is read from the new row
            old = _only(new, relation.identity_columns)
        elif old_full:  # unchanged TOAST values are filled in from the old row
            for col in relation.columns:
                if col.name not in new and col.name in old:
                    new[col.name] = old[col.name]
        self._add("UPDATE", relation, new, old, old_full)

    def _tuple(self, reader: _Reader, relation: Relation) -> TupleValues:
        count = reader.i16()
        if count != len(relation.columns):
            raise PgOutputError(f"tuple of {relation.schema}.{relation.name} has {count} columns")
        values: TupleValues = {}
        for col in relation.columns:
            kind = reader.char()
            if kind == "n":
                values[col.name] = None
            elif kind == "t":
                values[col.name] = reader.raw(reader.i32()).decode()
            elif kind == "u":
                continue  # unchanged TOAST datum: not in the WAL
            else:
                raise PgOutputError(f"unsupported tuple value kind {kind!r}")
        return values

    def _relation_of(self, relid: int) -> Relation:
        try:
            return self.relations[relid]
        except KeyError:
            raise PgOutputError(f"change for unknown relation {relid}") from None

    def _add(
        self, kind: ChangeKind, relation: Relation, new: TupleValues | None, old: TupleValues | None, full: bool
    ) -> None:
        if not self._in_txn:
            raise PgOutputError("change outside a transaction")
        self._pending.append(RowChange(kind, relation, new, old, full, self._commit_lsn, self._commit_time))


def _only(values: TupleValues, names: tuple[str, ...]) -> TupleValues:
    return {name: values[name] for name in names if name in values}

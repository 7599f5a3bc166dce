"""PostgreSQL text values -> JSON, the way Realtime's `to_jsonb('<wal text>'::type)` renders them.

Also the typed sort keys the filter evaluator compares with, so `id=gt.9` compares numbers and not strings.
Type facts (name, category, element and base type) come from `pg_type`, looked up once per oid and cached.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, TypeAlias

import asyncpg
import msgspec

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

#: what a converted value can be (Decimal is encoded as a JSON number)
JSONValue: TypeAlias = bool | int | float | str | Decimal | list["JSONValue"] | dict[str, "JSONValue"] | None
#: anything queries can run on: a connection, a pool's connection, or the pool itself
Queryable: TypeAlias = "asyncpg.Connection | PoolConnectionProxy[asyncpg.Record] | asyncpg.Pool"
#: a comparable, hashable stand-in for a typed value; `rank` orders -infinity < finite < infinity/NaN
SortKey: TypeAlias = tuple[int, object]

_INT_TYPES = frozenset({"int2", "int4", "int8", "oid", "xid", "cid"})
_FLOAT_TYPES = frozenset({"float4", "float8"})
_TZ_OFFSET = re.compile(r"([+-]\d\d)(:?\d\d)?(:?\d\d)?$")


@dataclass(frozen=True, slots=True)
class TypeInfo:
    oid: int
    name: str
    category: str
    #: element type of an array type (0 otherwise)
    elem: int
    delim: str
    #: base type of a domain (0 otherwise)
    base: int


class TypeCache:
    """`pg_type` facts by oid, fetched on first sight (oids never change meaning while a type exists)."""

    def __init__(self) -> None:
        self._types: dict[int, TypeInfo] = {}

    def get(self, oid: int) -> TypeInfo:
        found = self._types.get(oid)
        if found is None:
            return TypeInfo(oid, "unknown", "X", 0, ",", 0)
        return found

    def name(self, oid: int) -> str:
        return self.get(oid).name

    async def ensure(self, conn: Queryable, oids: Iterable[int]) -> None:
        missing = {o for o in oids if o not in self._types}
        while missing:
            rows = await conn.fetch(
                "select oid::int8 as oid, typname::text as name, typcategory::text as category, typelem::int8 as elem, "
                "typdelim::text as delim, typbasetype::int8 as base from pg_catalog.pg_type where oid = any($1::oid[])",
                sorted(missing),
            )
            for row in rows:
                info = TypeInfo(row["oid"], row["name"], row["category"], row["elem"], row["delim"], row["base"])
                self._types[info.oid] = info
            for oid in missing - {row["oid"] for row in rows}:  # vanished type: remember it as unknown
                self._types[oid] = TypeInfo(oid, "unknown", "X", 0, ",", 0)
            missing = {
                ref
                for oid in missing
                for ref in (self._types[oid].elem, self._types[oid].base)
                if ref and ref not in self._types
            }

    def resolve(self, oid: int) -> TypeInfo:
        """A domain's base type (what `to_jsonb` looks at)."""
        info = self.get(oid)
        seen = 0
        while info.base and seen < 10:
            info = self.get(info.base)
            seen += 1
        return info


def to_json(text: str | None, oid: int, types: TypeCache) -> JSONValue:
    """The JSON value `to_jsonb(text::type)` gives for a value in PostgreSQL's text output format."""
    if text is None:
        return None
    info = types.resolve(oid)
    name = info.name
    try:
        if name in _INT_TYPES:
            return int(text)
        if name == "numeric":
            number = Decimal(text)
            return number if number.is_finite() else text
        if name in _FLOAT_TYPES:
            value = float(text)
            return value if value - value == 0 else text  # NaN / Infinity stay strings, as in jsonb
        if name == "bool":
            return text == "t"
        if name in ("json", "jsonb"):
            decoded: JSONValue = msgspec.json.decode(text)
            return decoded
        if name == "timestamptz":
            return _iso_timestamp(text, with_zone=True)
        if name == "timestamp":
            return _iso_timestamp(text, with_zone=False)
        if info.category == "A" and info.elem:
            return _array_to_json(text, info, types)
    except (ValueError, InvalidOperation, msgspec.DecodeError):
        return text
    return text


def _iso_timestamp(text: str, *, with_zone: bool) -> str:
    """`2026-11-29 07:34:33.035+00` -> `2026-11-29T07:34:33.035+00:00` (jsonb's ISO 8601 form)."""
    if text in ("infinity", "-infinity") or text.endswith(" BC"):
        return text
    text = text.replace(" ", "T", 1)
    if with_zone:
        match = _TZ_OFFSET.search(text)
        if match:
            hours, minutes, seconds = match.group(1), match.group(2), match.group(3)
            zone = hours + ":" + (minutes or "00").lstrip(":")
            if seconds:
                zone += ":" + seconds.lstrip(":")
            text = text[: match.start()] + zone
    return text


def _array_to_json(text: str, info: TypeInfo, types: TypeCache) -> JSONValue:
    if not text.startswith("{") or info.delim != ",":
        return text  # explicit bounds (`[0:1]={...}`) or exotic delimiters: keep PostgreSQL's text
    parsed, end = _parse_array(text, 0)
    if end != len(text):
        raise ValueError("trailing data after array")
    return _convert_elements(parsed, info.elem, types)


_ArrayItem: TypeAlias = "str | list[_ArrayItem] | None"


def _convert_elements(items: list[_ArrayItem], elem_oid: int, types: TypeCache) -> JSONValue:
    out: list[JSONValue] = []
    for item in items:
        if isinstance(item, list):
            out.append(_convert_elements(item, elem_oid, types))
        else:
            out.append(to_json(item, elem_oid, types))
    return out


def _parse_array(text: str, pos: int) -> tuple[list[_ArrayItem], int]:
    """Parse `{a,"b c",NULL,{1,2}}` starting at `text[pos] == '{'`; returns the items and the end position."""
    if text[pos] != "{":
        raise ValueError("array literal must start with {")
    pos += 1
    items: list[_ArrayItem] = []
    if text[pos] == "}":
        return items, pos + 1
    while True:
        if text[pos] == "{":
            sub, pos = _parse_array(text, pos)
            items.append(sub)
        elif text[pos] == '"':
            pos += 1
            chars: list[str] = []
            while text[pos] != '"':
                if text[pos] == "\\":
                    pos += 1
                chars.append(text[pos])
                pos += 1
            items.append("".join(chars))
            pos += 1
        else:
            start = pos
            while text[pos] not in ",}":
                pos += 1
            raw = text[start:pos].strip()
            items.append(None if raw == "NULL" else raw)
        if text[pos] == ",":
            pos += 1
            continue
        if text[pos] == "}":
            return items, pos + 1
        raise ValueError("malformed array literal")


def split_array_literal(text: str) -> list[str | None]:
    """The top-level elements of a one-dimensional array literal (used for `in.(...)` canonical values)."""
    items, _ = _parse_array(text, 0)
    return [item if not isinstance(item, list) else str(item) for item in items]


# -- typed comparison --------------------------------------------------------------------------------------
def value_family(info: TypeInfo) -> str:
    """How filter comparisons treat a column: `int`, `numeric`, `float`, `bool`, `timestamp`, `date` or `text`."""
    name = info.name
    if name in _INT_TYPES:
        return "int"
    if name == "numeric":
        return "numeric"
    if name in _FLOAT_TYPES:
        return "float"
    if name == "bool":
        return "bool"
    if name in ("timestamptz", "timestamp"):
        return "timestamp"
    if name == "date":
        return "date"
    return "text"


def sort_key(family: str, text: str) -> SortKey:
    """A key that orders and equates like the PostgreSQL type does (text keys compare by code point, as C)."""
    if family == "int":
        return (0, int(text))
    if family == "numeric":
        number = Decimal(text)
        return (1, 0) if number.is_nan() else (0, number)
    if family == "float":
        value = float(text)
        return (1, 0) if value != value else (0, value)
    if family == "bool":
        return (0, text.lower() in ("t", "true", "y", "yes", "on", "1"))
    if family in ("timestamp", "date"):
        if text == "infinity":
            return (1, 0)
        if text == "-infinity":
            return (-1, 0)
        if family == "date":
            return (0, date.fromisoformat(text))
        moment = datetime.fromisoformat(text)
        return (0, moment)
    return (0, text)

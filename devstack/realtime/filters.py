"""`postgres_changes` binding filters: parse (`col=[not.]op.value`, comma = AND), validate, evaluate.

Parsing follows Realtime's `Subscriptions.parse_subscription_params`; validation follows the
`realtime.subscription_check_filters` trigger (the column must be SELECT-able by the subscriber's role, the value
must cast to the column type, `in` takes at most 100 values). Validation casts the filter value in PostgreSQL and
keeps its canonical text, so evaluation can compare in Python with typed keys (`sort_key`), as
`'<wal value>'::type <op> '<filter value>'::type` does. Filters are fail-closed: a column missing from the tuple
(e.g. DELETE without REPLICA IDENTITY FULL) never matches, and a NULL comparison is false.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import asyncpg
import msgspec

from devstack.realtime.pgoutput import TupleValues
from devstack.realtime.values import Queryable, SortKey, TypeInfo, sort_key, split_array_literal, value_family

FILTER_OPS = frozenset(
    {"eq", "neq", "lt", "lte", "gt", "gte", "in", "like", "ilike", "is", "match", "imatch", "isdistinct"}
)
MAX_IN_VALUES = 100
_IS_VALUES = frozenset({"null", "true", "false", "unknown"})
_CONDITIONS = {
    "P0001": "raise_exception",
    "22P02": "invalid_text_representation",
    "22007": "invalid_datetime_format",
    "22008": "datetime_field_overflow",
    "22003": "numeric_value_out_of_range",
    "22001": "string_data_right_truncation",
    "2201B": "invalid_regular_expression",
    "42704": "undefined_object",
    "42883": "undefined_function",
}


class FilterParseError(ValueError):
    """The `filter` string is malformed; the message is the one Realtime sends."""


class FilterCheckError(ValueError):
    """The filter does not fit the table (as the subscription trigger would raise); `detail` is the DB error."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def db_error_detail(exc: asyncpg.PostgresError) -> str:
    """`ERROR 22P02 (invalid_text_representation) invalid input syntax ...`, as Postgrex prints errors."""
    code = exc.sqlstate or "XX000"
    return f"ERROR {code} ({_CONDITIONS.get(code, code)}) {exc.args[0] if exc.args else exc}"


def raise_exception(message: str) -> FilterCheckError:
    return FilterCheckError(f"ERROR P0001 (raise_exception) {message}")


@dataclass(frozen=True, slots=True)
class FilterSpec:
    column: str
    op: str
    #: unquoted value; for `in` the array literal `{a,b}` Realtime builds from `(a,b)`
    value: str
    negated: bool = False

    def log_form(self) -> str:
        """`{"col", "eq", "1", false}`: how Realtime logs a filter in its error messages."""
        parts = ", ".join(msgspec.json.encode(p).decode() for p in (self.column, self.op, self.value))
        return "{" + parts + f", {'true' if self.negated else 'false'}" + "}"


def parse_filters(text: str | None) -> tuple[FilterSpec, ...]:
    if not text:
        return ()
    return tuple(_parse_one(part) for part in _split_top_level(text))


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    depth, quoted, start = 0, False, 0
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and ch == ",":
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p]


def _parse_one(text: str) -> FilterSpec:
    column, sep, rest = text.partition("=")
    negated = rest.startswith("not.")
    op, dot, value = (rest[4:] if negated else rest).partition(".")
    if not sep or not dot or op not in FILTER_OPS or not column:
        raise FilterParseError(f"Error parsing `filter` params: {msgspec.json.encode(text.split('=', 1)).decode()}")
    if op == "in":
        if not (value.startswith("(") and value.endswith(")")):
            raise FilterParseError("`in` filter value must be wrapped by parentheses")
        return FilterSpec(column, op, "{" + value[1:-1] + "}", negated)
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        value = value[1:-1].replace('\\"', '"')
    return FilterSpec(column, op, value, negated)


# -- validation + compilation --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ColumnFacts:
    name: str
    type_oid: int
    #: `format_type(atttypid, NULL)`, safe to splice into SQL
    type_sql: str
    type_info: TypeInfo
    selectable: bool


@dataclass(frozen=True, slots=True)
class CompiledFilter:
    column: str
    op: str
    negated: bool
    family: str
    key: SortKey | None = None
    keys: frozenset[SortKey] = field(default_factory=frozenset)
    pattern: re.Pattern[str] | None = None
    is_value: str | None = None

    def test(self, values: TupleValues) -> bool:
        if self.column not in values:
            return False
        result = self._compare(values[self.column])
        if result is None:
            return False
        return not result if self.negated else result

    def _compare(self, raw: str | None) -> bool | None:
        op = self.op
        if op == "is":
            if self.is_value in ("null", "unknown"):
                return raw is None
            return raw is not None and sort_key("bool", raw)[1] == (self.is_value == "true")
        if raw is None:
            return True if op == "isdistinct" else None
        if self.pattern is not None:
            return self.pattern.search(raw) is not None
        try:
            key = sort_key(self.family, raw)
            if op == "in":
                return key in self.keys
            target = self.key
            if target is None:
                return None
            if op in ("eq", "neq", "isdistinct"):
                return (key == target) != (op != "eq")
            left, right = key, target
            if op == "lt":
                return bool(left < right)
            if op == "lte":
                return bool(left <= right)
            if op == "gt":
                return bool(left > right)
            if op == "gte":
                return bool(left >= right)
        except (ValueError, TypeError, ArithmeticError):
            return None
        return None


async def compile_filters(
    conn: Queryable, specs: tuple[FilterSpec, ...], columns: dict[str, ColumnFacts]
) -> tuple[CompiledFilter, ...]:
    """Check `specs` against one table's columns (as the subscriber's role sees them) and compile them."""
    compiled: list[CompiledFilter] = []
    for spec in specs:
        col = columns.get(spec.column)
        if col is None or not col.selectable:
            raise raise_exception(f"invalid column for filter {spec.column}")
        family = value_family(col.type_info)
        if spec.op == "is":
            value = spec.value.lower()
            if value not in _IS_VALUES or (value != "null" and col.type_info.name != "bool"):
                raise raise_exception(f"invalid value for `is` filter on column {spec.column}: {spec.value}")
            compiled.append(CompiledFilter(spec.column, spec.op, spec.negated, family, is_value=value))
            continue
        try:
            if spec.op == "in":
                literal = await conn.fetchval(f"select (($1::text)::{col.type_sql}[])::text", spec.value)
                items = [i for i in split_array_literal(str(literal)) if i is not None]
                if len(items) > MAX_IN_VALUES:
                    raise raise_exception(f"too many values for `in` filter. Maximum {MAX_IN_VALUES}")
                keys = frozenset(sort_key(family, i) for i in items)
                compiled.append(CompiledFilter(spec.column, spec.op, spec.negated, family, keys=keys))
                continue
            canonical = await conn.fetchval(f"select (($1::text)::{col.type_sql})::text", spec.value)
        except asyncpg.PostgresError as exc:
            raise FilterCheckError(db_error_detail(exc)) from exc
        if spec.op in ("like", "ilike"):
            pattern = like_to_regex(spec.value, ignore_case=spec.op == "ilike")
            compiled.append(CompiledFilter(spec.column, spec.op, spec.negated, family, pattern=pattern))
        elif spec.op in ("match", "imatch"):
            try:
                pattern = re.compile(spec.value, re.IGNORECASE if spec.op == "imatch" else 0)
            except re.error as exc:
                raise FilterCheckError(
                    f"ERROR 2201B (invalid_regular_expression) invalid regular expression: {exc}"
                ) from exc
            compiled.append(CompiledFilter(spec.column, spec.op, spec.negated, family, pattern=pattern))
        else:
            try:
                key = sort_key(family, str(canonical))
            except ValueError:
                key = (0, str(canonical))
            compiled.append(CompiledFilter(spec.column, spec.op, spec.negated, family, key=key))
    return tuple(compiled)


def like_to_regex(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    """SQL LIKE (`%`, `_`, backslash escape) as an anchored regular expression."""
    out: list[str] = []
    escaped = False
    for ch in pattern:
        if escaped:
            out.append(re.escape(ch))
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile("^" + "".join(out) + "$", flags)

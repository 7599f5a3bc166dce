"""SQL for each kind of request, with every identifier quoted and every value a bind parameter.

Values are sent as text and cast to the column's type read from the catalog (`CAST($1::text AS integer)`), which
mirrors how PostgREST's untyped literals resolve. JSON bodies are one text parameter converted by
`json_populate_recordset` / `json_to_record`, as PostgREST does, so numbers, arrays and nested JSON keep their
exact text. Every statement answers one row `(total bigint, page bigint, body text)`; the body is built by
`json_agg` in the database, as PostgREST builds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from devstack.rest.catalog import Column, Relation, Routine
from devstack.rest.errors import undefined_column
from devstack.rest.grammar import FTS_OPERATORS, IS_VALUES, OPERATORS, Condition, Field, Filter, OrderTerm, SelectItem

SOURCE = "pgrst_source"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{ident(schema)}.{ident(name)}"


@dataclass
class Params:
    values: list[object] = field(default_factory=list)

    def text(self, value: str | None) -> str:
        self.values.append(value)
        return f"${len(self.values)}::text"

    def text_array(self, values: Sequence[str]) -> str:
        self.values.append(list(values))
        return f"${len(self.values)}::text[]"


@dataclass(frozen=True)
class Scope:
    """The columns a request can name, and how to reference them in SQL."""

    qualifier: str
    label: str
    columns: dict[str, Column]
    #: user casts in `select` resolved to server-formatted type names
    casts: dict[str, str] = field(default_factory=dict)

    def column(self, name: str) -> Column:
        col = self.columns.get(name)
        if col is None:
            raise undefined_column(self.label, name, self.columns)
        return col


@dataclass(frozen=True)
class Typed:
    sql: str
    cast_type: str
    category: str


def field_sql(scope: Scope, fld: Field, params: Params, *, compare: bool = True) -> Typed:
    """A column or JSON path; for comparisons `->` results are jsonb (json has no equality operator)."""
    col = scope.column(fld.name)
    expr, cast_type, category = f"{scope.qualifier}.{ident(col.name)}", col.cast_type, col.category
    for step in fld.path:
        operand = f"CAST({params.text(step.key)} AS integer)" if step.index else params.text(step.key)
        expr = f"({expr} {step.arrow} {operand})"
        if step.arrow == "->>":
            cast_type, category = "text", "S"
        else:
            cast_type, category = "jsonb", "U"
    if compare and fld.path and fld.path[-1].arrow == "->":
        expr = f"({expr})::jsonb"
    return Typed(expr, cast_type, category)


def select_sql(scope: Scope, items: Sequence[SelectItem], params: Params) -> str:
    out: list[str] = []
    for item in items:
        if item.star:
            out.append(f"{scope.qualifier}.*")
            continue
        expr = field_sql(scope, item.field, params, compare=False).sql
        if item.cast:
            expr = f"CAST({expr} AS {scope.casts[item.cast]})"
        out.append(f"{expr} AS {ident(item.alias or item.field.output_name)}")
    return ", ".join(out)


def condition_sql(scope: Scope, cond: Condition, params: Params) -> str:
    if not isinstance(cond, Filter):
        inner = f" {cond.op.upper()} ".join(condition_sql(scope, c, params) for c in cond.children)
        return f"NOT ({inner})" if cond.negate else f"({inner})"
    lhs = field_sql(scope, cond.field, params)
    sql = _filter_sql(lhs, cond, params)
    return f"NOT ({sql})" if cond.negate else f"({sql})"


def _filter_sql(lhs: Typed, flt: Filter, params: Params) -> str:
    if flt.op == "is":
        return f"{lhs.sql} IS {IS_VALUES[flt.value]}"
    if flt.op == "in":
        return f"{lhs.sql} = ANY(CAST({params.text_array(flt.values)} AS {lhs.cast_type}[]))"
    if flt.op in FTS_OPERATORS:
        lang = f"CAST({params.text(flt.language)} AS regconfig), " if flt.language else ""
        vector = lhs.sql if lhs.cast_type == "tsvector" else f"to_tsvector({lang}{lhs.sql})"
        return f"{vector} @@ {FTS_OPERATORS[flt.op]}({lang}{params.text(flt.value)})"
    if flt.op in ("like", "ilike", "match", "imatch"):
        pattern = flt.value.replace("*", "%") if flt.op in ("like", "ilike") else flt.value
        rhs = params.text(pattern)
        if lhs.category == "S":
            rhs = f"CAST({rhs} AS {lhs.cast_type})"
        return f"{lhs.sql} {OPERATORS[flt.op]} {rhs}"
    return f"{lhs.sql} {OPERATORS[flt.op]} CAST({params.text(flt.value)} AS {lhs.cast_type})"


def where_sql(scope: Scope, conditions: Sequence[Condition], params: Params) -> str:
    if not conditions:
        return ""
    return " WHERE " + " AND ".join(condition_sql(scope, c, params) for c in conditions)


def order_sql(scope: Scope, terms: Sequence[OrderTerm], params: Params) -> str:
    if not terms:
        return ""
    parts = []
    for term in terms:
        expr = field_sql(scope, term.field, params).sql + (" DESC" if term.desc else " ASC")
        if term.nulls:
            expr += " NULLS FIRST" if term.nulls == "first" else " NULLS LAST"
        parts.append(expr)
    return " ORDER BY " + ", ".join(parts)


def range_sql(limit: int | None, offset: int) -> str:
    # both are Python ints parsed from the query string, never raw text
    return (f" LIMIT {int(limit)}" if limit is not None else "") + (f" OFFSET {int(offset)}" if offset else "")


def body_sql(singular: bool, strip_nulls: bool, value: str = "pgrst_t") -> str:
    agg = f"(json_agg({value}) -> 0)" if singular else f"coalesce(json_agg({value}), '[]')"
    return f"{'json_strip_nulls(' + agg + ')' if strip_nulls else agg}::text"


# -- statements -----------------------------------------------------------------------------------------------
@dataclass
class Statement:
    sql: str
    params: Params


def relation_scope(rel: Relation, casts: dict[str, str]) -> Scope:
    return Scope(ident(rel.name), rel.name, rel.columns, casts)


def read(
    rel: Relation,
    scope: Scope,
    conditions: Sequence[Condition],
    order: Sequence[OrderTerm],
    limit: int | None,
    offset: int,
    *,
    select: Sequence[SelectItem],
    count: bool,
    singular: bool,
    strip_nulls: bool,
) -> Statement:
    params = Params()
    target = qualified(rel.schema, rel.name)
    where = where_sql(scope, conditions, params)
    total = f"(SELECT count(*) FROM {target}{where})" if count else "NULL::bigint"
    inner = (
        f"SELECT {select_sql(scope, select, params)} FROM {target}{where}"
        f"{order_sql(scope, order, params)}{range_sql(limit, offset)}"
    )
    return Statement(
        f"SELECT {total} AS total, count(*) AS page, {body_sql(singular, strip_nulls)} AS body FROM ({inner}) pgrst_t",
        params,
    )


def _wrap_mutation(
    mutation: str, rel: Relation, scope: Scope, select: Sequence[SelectItem], params: Params, *,
    representation: bool, singular: bool, strip_nulls: bool,
) -> str:  # fmt: skip
    if not representation:
        return (
            f"WITH {SOURCE} AS ({mutation} RETURNING 1) "
            f"SELECT NULL::bigint AS total, count(*) AS page, NULL::text AS body FROM {SOURCE}"
        )
    source_scope = Scope(SOURCE, scope.label, scope.columns, scope.casts)
    return (
        f"WITH {SOURCE} AS ({mutation} RETURNING {ident(rel.name)}.*) "
        f"SELECT NULL::bigint AS total, count(*) AS page, {body_sql(singular, strip_nulls)} AS body "
        f"FROM (SELECT {select_sql(source_scope, select, params)} FROM {SOURCE}) pgrst_t"
    )


def insert(
    rel: Relation,
    scope: Scope,
    columns: Sequence[str],
    *,
    rows: tuple[int, int] | None,
    conflict: Sequence[str],
    resolution: str | None,
    update_columns: Sequence[str],
    select: Sequence[SelectItem],
    representation: bool,
    singular: bool,
    strip_nulls: bool,
) -> Statement:
    """`rows` = (first, last) 1-based positions of a slice of the JSON array body, None for the whole body."""
    params = Params()
    target = qualified(rel.schema, rel.name)
    payload = params.text(None)  # placeholder $1, filled by the caller with the body text
    if rows is not None:
        payload = (
            f"(SELECT json_agg(e ORDER BY i) FROM json_array_elements({payload}::json) WITH ORDINALITY x(e, i) "
            f"WHERE i BETWEEN {int(rows[0])} AND {int(rows[1])})"
        )
    else:
        payload = f"{payload}::json"
    source = f"json_populate_recordset(NULL::{target}, {payload}) pgrst_body"
    cols = ", ".join(ident(c) for c in columns)
    mutation = (
        f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {source}"
        if columns
        else f"INSERT INTO {target} SELECT FROM {source}"
    )
    if resolution and conflict:
        mutation += f" ON CONFLICT ({', '.join(ident(c) for c in conflict)}) "
        if resolution == "ignore-duplicates" or not update_columns:
            mutation += "DO NOTHING"
        else:
            mutation += "DO UPDATE SET " + ", ".join(f"{ident(c)} = EXCLUDED.{ident(c)}" for c in update_columns)
    sql = _wrap_mutation(
        mutation, rel, scope, select, params,
        representation=representation, singular=singular, strip_nulls=strip_nulls,
    )  # fmt: skip
    return Statement(sql, params)


def update(
    rel: Relation,
    scope: Scope,
    columns: Sequence[str],
    conditions: Sequence[Condition],
    *,
    select: Sequence[SelectItem],
    representation: bool,
    singular: bool,
    strip_nulls: bool,
) -> Statement:
    params = Params()
    target = qualified(rel.schema, rel.name)
    payload = params.text(None)
    sets = ", ".join(f"{ident(c)} = pgrst_body.{ident(c)}" for c in columns)
    where = where_sql(scope, conditions, params)
    body = f"json_populate_record(NULL::{target}, {payload}::json) pgrst_body"
    mutation = f"UPDATE {target} SET {sets} FROM {body}{where}"
    sql = _wrap_mutation(
        mutation, rel, scope, select, params,
        representation=representation, singular=singular, strip_nulls=strip_nulls,
    )  # fmt: skip
    return Statement(sql, params)


def delete(
    rel: Relation,
    scope: Scope,
    conditions: Sequence[Condition],
    *,
    select: Sequence[SelectItem],
    representation: bool,
    singular: bool,
    strip_nulls: bool,
) -> Statement:
    params = Params()
    target = qualified(rel.schema, rel.name)
    mutation = f"DELETE FROM {target}{where_sql(scope, conditions, params)}"
    sql = _wrap_mutation(
        mutation, rel, scope, select, params,
        representation=representation, singular=singular, strip_nulls=strip_nulls,
    )  # fmt: skip
    return Statement(sql, params)


CALL = "pgrst_call"


def call(
    routine: Routine,
    *,
    json_args: Sequence[str] = (),
    text_args: dict[str, str] | None = None,
    single_body: bool = False,
    body: str | None = None,
    select: Sequence[SelectItem],
    conditions: Sequence[Condition],
    order: Sequence[OrderTerm],
    limit: int | None,
    offset: int,
    count: bool,
    singular: bool,
    strip_nulls: bool,
    casts: dict[str, str],
) -> Statement:
    """A function call; arguments come from the JSON body by name (`json_args`), from the query string
    (`text_args`), or the whole body goes to a single unnamed json/jsonb parameter (`single_body`)."""
    params = Params()
    fn = qualified(routine.schema, routine.name)
    types = {p.name: p.cast_type for p in routine.params}
    args_from = ""
    if single_body:
        invocation = f"{fn}(CAST({params.text(body)} AS {routine.params[0].cast_type}))"
    elif json_args:
        payload = params.text(body)
        defs = ", ".join(f"{ident(n)} {types[n]}" for n in json_args)
        args_from = f"json_to_record({payload}::json) AS pgrst_body({defs})"
        named = ", ".join(f"{ident(n)} := pgrst_body.{ident(n)}" for n in json_args)
        invocation = f"{fn}({named})"
    else:
        named = ", ".join(f"{ident(n)} := CAST({params.text(v)} AS {types[n]})" for n, v in (text_args or {}).items())
        invocation = f"{fn}({named})"

    if routine.shape == "void":
        inner = f"SELECT {invocation} AS pgrst_void" + (f" FROM {args_from}" if args_from else "")
        return Statement(
            f"SELECT NULL::bigint AS total, count(*) AS page, NULL::text AS body FROM ({inner}) pgrst_t", params
        )
    if routine.shape == "scalar":
        inner = f"SELECT {invocation} AS pgrst_scalar" + (f" FROM {args_from}" if args_from else "")
        value = "pgrst_t.pgrst_scalar"
        single = singular or not routine.returns_set
    else:
        scope = Scope(CALL, routine.name, routine.columns, casts)
        source = f"{args_from} CROSS JOIN LATERAL {invocation} {CALL}" if args_from else f"{invocation} {CALL}"
        inner = (
            f"SELECT {select_sql(scope, select, params)} FROM {source}"
            f"{where_sql(scope, conditions, params)}{order_sql(scope, order, params)}"
        )
        value = "pgrst_t"
        single = singular or not routine.returns_set
    total = f"(SELECT count(*) FROM {SOURCE})" if count else "NULL::bigint"
    return Statement(
        f"WITH {SOURCE} AS ({inner}) SELECT {total} AS total, count(*) AS page, "
        f"{body_sql(single, strip_nulls, value)} AS body "
        f"FROM (SELECT * FROM {SOURCE}{range_sql(limit, offset)}) pgrst_t",
        params,
    )

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
from devstack.rest.embed import Child, Node
from devstack.rest.errors import RestError, undefined_column
from devstack.rest.grammar import (
    FTS_OPERATORS,
    IS_VALUES,
    OPERATORS,
    Condition,
    Embed,
    Field,
    Filter,
    OrderTerm,
    SelectItem,
)
from devstack.rest.query import SubParams

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
    #: computed fields: name -> (SQL expression, result type)
    computed: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: embedded resources of this level: label -> SQL expression that is NULL when there is nothing embedded
    embeds: dict[str, str] = field(default_factory=dict)
    #: to-one embeds usable in `order=label(col)`: label -> SQL expression of the embedded row
    rows: dict[str, str] = field(default_factory=dict)

    def column(self, name: str) -> Column:
        col = self.columns.get(name)
        if col is None:
            if name in self.computed:
                rtype = self.computed[name][1]
                category = "S" if rtype in ("text", "character varying", "character") else "X"
                return Column(name, rtype, rtype, category)
            raise undefined_column(self.label, name, self.columns)
        return col

    def ref(self, name: str) -> str:
        if name not in self.columns and name in self.computed:
            return self.computed[name][0]
        return f"{self.qualifier}.{ident(name)}"


@dataclass(frozen=True)
class Typed:
    sql: str
    cast_type: str
    category: str


def field_sql(scope: Scope, fld: Field, params: Params, *, compare: bool = True) -> Typed:
    """A column or JSON path; for comparisons `->` results are jsonb (json has no equality operator)."""
    col = scope.column(fld.name)
    expr, cast_type, category = scope.ref(col.name), col.cast_type, col.category
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
    if cond.field.name not in scope.columns and cond.field.name in scope.embeds and not cond.field.path:
        if cond.op != "is" or cond.value != "null":
            raise RestError(400, "PGRST100", "Only is.null or not.is.null filters are allowed on embedded resources")
        sql = f"{scope.embeds[cond.field.name]} IS NULL"
        return f"NOT ({sql})" if cond.negate else f"({sql})"
    lhs = field_sql(scope, cond.field, params)
    sql = _filter_sql(lhs, cond, params)
    return f"NOT ({sql})" if cond.negate else f"({sql})"


def _filter_sql(lhs: Typed, flt: Filter, params: Params) -> str:
    if flt.op == "is":
        return f"{lhs.sql} IS {IS_VALUES[flt.value]}"
    if flt.quantifier is not None:
        value = flt.value.replace("*", "%") if flt.op in ("like", "ilike") else flt.value
        elem = lhs.cast_type if flt.op in ("eq", "neq", "gt", "gte", "lt", "lte") or lhs.category == "S" else "text"
        quant = "ANY" if flt.quantifier == "any" else "ALL"
        return f"{lhs.sql} {OPERATORS[flt.op]} {quant}(CAST({params.text(value)} AS {elem}[]))"
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
        if term.relation is not None:
            row = scope.rows.get(term.relation)
            if row is None:
                raise RestError(
                    400, "PGRST118",
                    f"A related order on '{term.relation}' is not possible",
                    details="The relationship must be a to-one embedded resource in select",
                )  # fmt: skip
            expr = f"({row}).{ident(term.field.name)}" + (" DESC" if term.desc else " ASC")
        else:
            expr = field_sql(scope, term.field, params).sql + (" DESC" if term.desc else " ASC")
        if term.nulls:
            expr += " NULLS FIRST" if term.nulls == "first" else " NULLS LAST"
        parts.append(expr)
    return " ORDER BY " + ", ".join(parts)


def range_sql(limit: int | None, offset: int) -> str:
    # both are Python ints parsed from the query string, never raw text
    return (f" LIMIT {int(limit)}" if limit is not None else "") + (f" OFFSET {int(offset)}" if offset else "")


def body_sql(singular: bool, strip_nulls: bool, value: str = "pgrst_t", csv: bool = False) -> str:
    if csv:  # each row's record text without its parentheses, as PostgREST renders CSV (header added by the plan)
        return f"coalesce(string_agg(substring({value}::text, 2, length({value}::text) - 2), chr(10)), '')"
    agg = f"(json_agg({value}) -> 0)" if singular else f"coalesce(json_agg({value}), '[]')"
    return f"{'json_strip_nulls(' + agg + ')' if strip_nulls else agg}::text"


# -- statements -----------------------------------------------------------------------------------------------
@dataclass
class Statement:
    sql: str
    params: Params
    #: the rows to count for `count=planned|estimated` (explained, not run)
    count_sql: str | None = None
    #: `Accept: text/csv`: the header line
    csv_header: str | None = None


def relation_scope(rel: Relation, casts: dict[str, str]) -> Scope:
    return Scope(ident(rel.name), rel.name, rel.columns, casts)


def read(
    rel: Relation,
    node: Node,
    b: TreeBuilder,
    conditions: Sequence[Condition],
    order: Sequence[OrderTerm],
    limit: int | None,
    offset: int,
    *,
    count: bool,
    singular: bool,
    strip_nulls: bool,
    csv: bool = False,
) -> Statement:
    target = qualified(rel.schema, rel.name)
    q = ident(rel.name)

    base = render_level(
        b, node, (), source=f"{target} AS {q}", qualifier=q, row_expr=q, conditions=conditions, order=order
    )
    inner = base + range_sql(limit, offset)
    total = f"(SELECT count(*) FROM ({base}) pgrst_c)" if count else "NULL::bigint"
    stmt = Statement(
        f"SELECT {total} AS total, count(*) AS page, {body_sql(singular, strip_nulls, csv=csv)} AS body "
        f"FROM ({inner}) pgrst_t",
        b.params,
    )
    if csv:
        stmt.csv_header = ",".join(output_labels(node))
    stmt.count_sql = f"SELECT 1 FROM ({base}) pgrst_c"
    return stmt


def _wrap_mutation(
    mutation: str, rel: Relation, node: Node, b: TreeBuilder, *,
    representation: bool, singular: bool, strip_nulls: bool, upsert: bool = False,
) -> str:  # fmt: skip
    # an upsert tells inserted rows from updated ones (xmax is 0 for a fresh row version); views cannot say
    if upsert and rel.kind in ("r", "p"):
        flag = f"({ident(rel.name)}.xmax = 0) AS pgrst_inserted"
    else:
        flag = "TRUE AS pgrst_inserted"
    inserted = f"count(*) FILTER (WHERE {SOURCE}.pgrst_inserted) AS inserted"
    if not representation:
        return (
            f"WITH {SOURCE} AS ({mutation} RETURNING {flag}) "
            f"SELECT NULL::bigint AS total, count(*) AS page, NULL::text AS body, {inserted} FROM {SOURCE}"
        )
    row = ", ".join(f"{SOURCE}.{ident(c)}" for c in rel.columns)
    inner = render_level(
        b, node, (), source=SOURCE, qualifier=SOURCE,
        row_expr=f"CAST(ROW({row}) AS {qualified(rel.schema, rel.name)})",
    )  # fmt: skip
    return (
        f"WITH {SOURCE} AS ({mutation} RETURNING {ident(rel.name)}.*, {flag}) "
        f"SELECT NULL::bigint AS total, count(*) AS page, {body_sql(singular, strip_nulls)} AS body, "
        f"(SELECT {inserted} FROM {SOURCE}) AS inserted FROM ({inner}) pgrst_t"
    )


def insert(
    rel: Relation,
    scope: Scope,
    columns: Sequence[str],
    *,
    rows: tuple[int, int] | None,
    missing_default: bool = False,
    conflict: Sequence[str],
    resolution: str | None,
    update_columns: Sequence[str],
    node: Node,
    b: TreeBuilder,
    representation: bool,
    singular: bool,
    strip_nulls: bool,
) -> Statement:
    """`rows` = (first, last) 1-based positions of a slice of the JSON array body, None for the whole body."""
    params = b.params
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
    order = ""
    if missing_default:
        # every row starts from the column defaults, evaluated once per row as PostgreSQL would (a serial
        # advances even for a row that brings its own id), then takes the keys it has
        defaults = ", ".join(
            f"CAST(({c.default_expr}) AS {c.type})" if c.default_expr else f"CAST(NULL AS {c.type})"
            for c in rel.columns.values()
        )
        source = (
            f"json_array_elements({payload}) WITH ORDINALITY pgrst_e(elem, i) CROSS JOIN LATERAL "
            f"json_populate_record(CAST(ROW({defaults}) AS {target}), pgrst_e.elem) pgrst_body"
        )
        order = " ORDER BY pgrst_e.i"
    cols = ", ".join(ident(c) for c in columns)
    sel = ", ".join(f"pgrst_body.{ident(c)}" for c in columns)
    mutation = (
        f"INSERT INTO {target} ({cols}) SELECT {sel} FROM {source}{order}"
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
        mutation, rel, node, b,
        representation=representation, singular=singular, strip_nulls=strip_nulls, upsert=bool(resolution),
    )  # fmt: skip
    return Statement(sql, params)


def update(
    rel: Relation,
    scope: Scope,
    columns: Sequence[str],
    conditions: Sequence[Condition],
    *,
    node: Node,
    b: TreeBuilder,
    representation: bool,
    singular: bool,
    strip_nulls: bool,
) -> Statement:
    params = b.params
    target = qualified(rel.schema, rel.name)
    payload = params.text(None)
    sets = ", ".join(f"{ident(c)} = pgrst_body.{ident(c)}" for c in columns)
    where = where_sql(scope, conditions, params)
    body = f"json_populate_record(NULL::{target}, {payload}::json) pgrst_body"
    mutation = f"UPDATE {target} SET {sets} FROM {body}{where}"
    sql = _wrap_mutation(
        mutation, rel, node, b,
        representation=representation, singular=singular, strip_nulls=strip_nulls,
    )  # fmt: skip
    return Statement(sql, params)


def delete(
    rel: Relation,
    scope: Scope,
    conditions: Sequence[Condition],
    *,
    node: Node,
    b: TreeBuilder,
    representation: bool,
    singular: bool,
    strip_nulls: bool,
) -> Statement:
    params = b.params
    target = qualified(rel.schema, rel.name)
    mutation = f"DELETE FROM {target}{where_sql(scope, conditions, params)}"
    sql = _wrap_mutation(
        mutation, rel, node, b,
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
    tree: tuple[Node, TreeBuilder] | None = None,
) -> Statement:
    """A function call; arguments come from the JSON body by name (`json_args`), from the query string
    (`text_args`), or the whole body goes to a single unnamed json/jsonb parameter (`single_body`). With `tree`,
    a function returning a table's rows is selected from like that table (embeds, computed fields)."""
    params = tree[1].params if tree is not None else Params()
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
        # count the call's value, not the rows: an output column nobody reads is dropped by the planner unless the
        # function is VOLATILE, so a STABLE void function would never run (PostgREST aggregates the whole row)
        return Statement(
            f"SELECT NULL::bigint AS total, count(pgrst_t.pgrst_void::text) AS page, NULL::text AS body "
            f"FROM ({inner}) pgrst_t",
            params,
        )
    if routine.shape == "scalar":
        inner = f"SELECT {invocation} AS pgrst_scalar" + (f" FROM {args_from}" if args_from else "")
        value = "pgrst_t.pgrst_scalar"
        single = singular or not routine.returns_set
    elif tree is not None:
        source = f"{args_from} CROSS JOIN LATERAL {invocation} {CALL}" if args_from else f"{invocation} {CALL}"
        inner = render_level(
            tree[1], tree[0], (), source=source, qualifier=CALL, row_expr=CALL, conditions=conditions, order=order
        )
        value = "pgrst_t"
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


# -- select trees (embedding, aggregates, computed fields) ----------------------------------------------------
@dataclass
class TreeBuilder:
    """Renders a resolved select tree as nested lateral subqueries aggregated with json_agg, as PostgREST does."""

    params: Params
    casts: dict[str, str]
    sub: dict[tuple[str, ...], SubParams]
    counter: int = 0

    def alias(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_{self.counter}"


def output_labels(node: Node) -> list[str]:
    labels: list[str] = []
    for item in node.items:
        if item.star:
            labels += list(node.relation.columns)
        else:
            labels.append(_item_label(item))
    for child in node.children:
        if child.embed.spread:
            labels += output_labels(child.node)
        elif child.embed.items:
            labels.append(child.embed.label)
    return labels


def _item_label(item: SelectItem) -> str:
    if item.alias:
        return item.alias
    if item.aggregate is not None:
        return item.aggregate
    return item.field.output_name


def _child_source(b: TreeBuilder, child: Child, parent_q: str, parent_row: str) -> tuple[str, str, list[str]]:
    """FROM clause, qualifier and join conditions of an embedded level."""
    rel, target = child.rel, child.node.relation
    q = b.alias("pgrst_r")
    qi = ident(q)
    if rel.function is not None:
        return f"{qualified(*rel.function)}({parent_row}) AS {qi}", qi, []
    if rel.junction is not None:
        j = ident(b.alias("pgrst_j"))
        on = " AND ".join(f"{j}.{ident(jc)} = {qi}.{ident(tc)}" for jc, tc in rel.junction_target)
        conds = [f"{j}.{ident(jc)} = {parent_q}.{ident(pc)}" for jc, pc in rel.junction_parent]
        junction = qualified(rel.junction.schema, rel.junction.name)
        src = f"{qualified(target.schema, target.name)} AS {qi} JOIN {junction} AS {j} ON {on}"
        return src, qi, conds
    conds = [f"{qi}.{ident(tc)} = {parent_q}.{ident(pc)}" for pc, tc in rel.pairs]
    return f"{qualified(target.schema, target.name)} AS {qi}", qi, conds


def render_level(
    b: TreeBuilder,
    node: Node,
    path: tuple[str, ...],
    *,
    source: str,
    qualifier: str,
    row_expr: str,
    join_conds: Sequence[str] = (),
    conditions: Sequence[Condition] = (),
    order: Sequence[OrderTerm] = (),
    limit: int | None = None,
    offset: int = 0,
    extra_columns: Sequence[str] = (),
) -> str:
    """One level's SELECT: its columns, one lateral per embed, its filters, order and range."""
    computed = {name: (f"{qualified(fs, fn)}({row_expr})", rtype) for name, (fs, fn, rtype) in node.computed.items()}
    scope = Scope(qualifier, node.relation.name, node.relation.columns, b.casts, computed)
    laterals: list[str] = []
    columns: list[str] = []
    group: list[str] = []
    has_aggregate = any(i.aggregate for i in node.items)
    inner_conds: list[str] = []
    for child in node.children:
        emb: Embed = child.embed
        child_path = (*path, emb.label)
        csub = b.sub.get(child_path, SubParams())
        src, cq, conds = _child_source(b, child, qualifier, row_expr)
        spread_labels = output_labels(child.node) if emb.spread else []
        inner = render_level(
            b, child.node, child_path, source=src, qualifier=cq, row_expr=cq, join_conds=conds,
            conditions=csub.conditions, order=csub.order, limit=csub.limit, offset=csub.offset,
            extra_columns=["TRUE AS pgrst_present"] if emb.spread and child.rel.to_one else (),
        )  # fmt: skip
        a = ident(b.alias("pgrst_e"))
        shown = bool(emb.items)  # `users()` filters without adding a key
        if child.rel.to_one and emb.spread:
            laterals.append(f"LEFT JOIN LATERAL ({inner}) {a} ON TRUE")
            columns += [f"{a}.{ident(lbl)} AS {ident(lbl)}" for lbl in spread_labels]
            group += [f"{a}.{ident(lbl)}" for lbl in spread_labels]
            present = f"{a}.pgrst_present"
        elif child.rel.to_one:
            laterals.append(
                f"LEFT JOIN LATERAL (SELECT pgrst_s AS pgrst_row, row_to_json(pgrst_s) AS body "
                f"FROM ({inner}) pgrst_s) {a} ON TRUE"
            )
            if shown:
                columns.append(f"{a}.body AS {ident(emb.label)}")
            scope.rows[emb.label] = f"{a}.pgrst_row"
            present = f"{a}.body"
        elif emb.spread:
            aggs = ", ".join(f"json_agg(pgrst_s.{ident(lbl)}) AS {ident(lbl)}" for lbl in spread_labels)
            laterals.append(
                f"LEFT JOIN LATERAL (SELECT {aggs}{', ' if aggs else ''}count(*) AS pgrst_n "
                f"FROM ({inner}) pgrst_s) {a} ON TRUE"
            )
            columns += [f"coalesce({a}.{ident(lbl)}, '[]'::json) AS {ident(lbl)}" for lbl in spread_labels]
            present = f"nullif({a}.pgrst_n, 0)"
        else:
            laterals.append(f"LEFT JOIN LATERAL (SELECT json_agg(pgrst_s) AS body FROM ({inner}) pgrst_s) {a} ON TRUE")
            if shown:
                columns.append(f"coalesce({a}.body, '[]'::json) AS {ident(emb.label)}")
            present = f"{a}.body"
        scope.embeds[emb.label] = present
        if emb.join == "inner":
            inner_conds.append(f"{present} IS NOT NULL")
    items_sql: list[str] = []
    for item in node.items:
        if item.star:
            items_sql.append(", ".join(f"{qualifier}.{ident(c)} AS {ident(c)}" for c in node.relation.columns))
            group += [f"{qualifier}.{ident(c)}" for c in node.relation.columns]
            continue
        if item.aggregate is not None:
            if item.aggregate == "count" and item.field.name == "*":
                expr = "count(*)"
            else:
                value = field_sql(scope, item.field, b.params, compare=False).sql
                if item.cast:
                    value = f"CAST({value} AS {b.casts[item.cast]})"
                expr = f"{item.aggregate}({value})"
            if item.agg_cast:
                expr = f"CAST({expr} AS {b.casts[item.agg_cast]})"
            items_sql.append(f"{expr} AS {ident(_item_label(item))}")
            continue
        expr = field_sql(scope, item.field, b.params, compare=False).sql
        if item.cast:
            expr = f"CAST({expr} AS {b.casts[item.cast]})"
        items_sql.append(f"{expr} AS {ident(_item_label(item))}")
        group.append(expr)
    select_list = ", ".join([*items_sql, *columns, *extra_columns]) or "NULL AS pgrst_empty"
    if not items_sql and not columns and not extra_columns:
        select_list = "1 AS pgrst_empty"
    wheres = [*join_conds]
    wheres += [condition_sql(scope, c, b.params) for c in conditions]
    wheres += inner_conds
    sql = f"SELECT {select_list} FROM {source} {' '.join(laterals)}"
    if wheres:
        sql += " WHERE " + " AND ".join(wheres)
    if has_aggregate and group:
        sql += " GROUP BY " + ", ".join(group)
    sql += order_sql(scope, order, b.params) + range_sql(limit, offset)
    return sql


def tree_casts(node: Node) -> set[str]:
    found = {c for i in node.items for c in (i.cast, i.agg_cast) if c}
    for child in node.children:
        found |= tree_casts(child.node)
    return found


def has_aggregates(node: Node) -> bool:
    return any(i.aggregate for i in node.items) or any(has_aggregates(c.node) for c in node.children)

"""From a parsed request and the schema cache to statements, and from their result row to a response.

A plan is built outside the request's transaction (catalog lookups may run then) and run inside it, after the
role and request settings are in place (see `handlers`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from devstack.rest import sql
from devstack.rest.catalog import Conn, Relation, Routine, SchemaCache, SchemaCheck
from devstack.rest.config import RestSettings
from devstack.rest.embed import Node, computed_fields_for, resolve
from devstack.rest.errors import (
    RestError,
    aggregates_not_allowed,
    ambiguous_function,
    column_not_found,
    invalid_body,
    invalid_range,
    max_affected_violation,
    media_type_error,
    no_function,
    not_implemented,
    singularity_error,
    table_not_found,
    undefined_column,
    unsupported_content_type,
    unsupported_method,
)
from devstack.rest.grammar import Condition, Filter, Item, SelectItem
from devstack.rest.negotiate import Accept, Preferences, check_json_content_type
from devstack.rest.query import QueryParams, parse_query


@dataclass
class RestRequest:
    method: str
    schema: str
    pairs: list[tuple[str, str]]
    body: bytes
    prefs: Preferences
    accept: Accept
    content_type: str | None
    settings: RestSettings
    #: the `Range: first-last` request header (reads)
    range_header: str | None = None


@dataclass
class Outcome:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Plan:
    kind: Literal["read", "insert", "update", "delete", "call"]
    statements: list[sql.Statement]
    readonly: bool
    request: RestRequest
    offset: int = 0
    void: bool = False
    #: cached catalog objects this plan was built from, re-verified when it runs
    checks: list[SchemaCheck] = field(default_factory=list)
    #: rows an insert/upsert created (not updated), set by `run`
    inserted: int = 0
    #: CSV output: the header line prepended to the rows
    csv_header: str | None = None
    #: a function returning one value or row (not a set): no result is `null`, not `[]`
    single_result: bool = False

    async def run(self, conn: Conn) -> Outcome:
        total: int | None = None
        page = 0
        inserted = 0
        bodies: list[str] = []
        for stmt in self.statements:
            row = await conn.fetchrow(stmt.sql, *stmt.params.values)
            assert row is not None
            total = row["total"] if row["total"] is not None else total
            page += int(row["page"])
            inserted += int(row.get("inserted") or 0)
            if row["body"] is not None:
                bodies.append(row["body"])
            if self.kind == "read" and self.request.prefs.count in ("planned", "estimated") and stmt.count_sql:
                total = await self._estimate(conn, stmt, page)
        self.inserted = inserted
        req = self.request
        if req.accept.singular and page != 1 and not self.void:
            raise singularity_error(page)
        if req.prefs.max_affected is not None and req.prefs.handling == "strict" and page > req.prefs.max_affected:
            raise max_affected_violation(page)
        if self.kind in ("insert", "update", "delete") and req.prefs.counting:
            total = page
        return self._outcome(total, page, bodies)

    async def _estimate(self, conn: Conn, stmt: sql.Statement, page: int) -> int:
        """`count=planned`: the planner's row estimate; `estimated`: exact up to max-rows, then planned."""
        assert stmt.count_sql is not None
        max_rows = self.request.settings.max_rows
        if self.request.prefs.count == "estimated":
            exact = await conn.fetchval(f"SELECT count(*) FROM ({stmt.count_sql}) pgrst_n", *stmt.params.values)
            if max_rows is None or int(exact) <= max_rows:
                return int(exact)
        plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {stmt.count_sql}", *stmt.params.values)
        doc = msgspec.json.decode(plan) if isinstance(plan, str | bytes) else plan
        return max(int(doc[0]["Plan"]["Plan Rows"]), 0)

    def _outcome(self, total: int | None, page: int, bodies: list[str]) -> Outcome:
        req = self.request
        headers = {"Content-Type": req.accept.content_type}
        if req.prefs.applied:
            headers["Preference-Applied"] = ", ".join(req.prefs.applied)
        if self.kind == "call" and self.void:
            return Outcome(204, headers={k: v for k, v in headers.items() if k != "Content-Type"})
        status = 200
        if self.kind == "insert":
            headers["Content-Range"] = f"*/{'*' if total is None else total}"
            # an upsert whose every row updated an existing one inserted nothing: 200, as PostgREST answers
            status = 200 if req.prefs.resolution == "merge-duplicates" and page and not self.inserted else 201
        else:
            headers["Content-Range"] = content_range(self.offset, page, total)
            if self.kind == "read" and total is not None:
                if self.offset > total:
                    raise invalid_range(f"An offset of {self.offset} was requested, but there are only {total} rows.")
                if page < total:
                    status = 206
        if self.kind in ("insert", "update", "delete") and not req.prefs.representation:
            headers.pop("Content-Type")
            return Outcome(status if self.kind == "insert" else 204, headers=headers)
        if self.csv_header is not None:
            body = self.csv_header + "\n" + "".join(bodies)
            return Outcome(status, b"" if req.method == "HEAD" else body.encode(), headers)
        body = _merge(bodies, req.accept.singular or self.single_result)
        return Outcome(status, b"" if req.method == "HEAD" else body.encode(), headers)


def content_range(offset: int, page: int, total: int | None) -> str:
    upper = offset + page - 1
    rng = f"{offset}-{upper}" if total != 0 and offset <= upper else "*"
    return f"{rng}/{'*' if total is None else total}"


def _merge(bodies: list[str], singular: bool) -> str:
    """Bodies of several statements (insert groups) as one JSON array; singular bodies are already one object."""
    if singular:
        return bodies[0] if bodies else "null"
    if len(bodies) == 1:
        return bodies[0]
    parts = [b.strip()[1:-1].strip() for b in bodies]
    return "[" + ", ".join(p for p in parts if p) + "]"


# -- shared helpers ---------------------------------------------------------------------------------------------
def _decode(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise invalid_body() from None


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_body() from None


async def _casts(conn: Conn, cache: SchemaCache, names: Iterable[str]) -> dict[str, str]:
    casts: dict[str, str] = {}
    for name in names:
        if name not in casts:
            resolved = await cache.resolve_type(conn, name)
            if resolved is None:
                raise RestError(400, "42704", f'type "{name}" does not exist')
            casts[name] = resolved
    return casts


def _item_casts(items: Sequence[Item]) -> list[str]:
    return [c for i in items if isinstance(i, SelectItem) for c in (i.cast, i.agg_cast) if c]


async def _tree(
    req: RestRequest, conn: Conn, cache: SchemaCache, rel: Relation, qp: QueryParams
) -> tuple[Node, dict[str, str]]:
    """The select tree resolved against the catalog (embeds, computed fields), and its casts."""
    node = await resolve(conn, cache, rel, qp.select)
    if sql.has_aggregates(node) and not await cache.aggregates_enabled(conn):
        raise aggregates_not_allowed()
    names = {f.field.name for f in _filters(qp.conditions)} | {t.field.name for t in qp.order if not t.relation}
    for name, fn in (await computed_fields_for(conn, cache, rel, names)).items():
        node.computed.setdefault(name, fn)
    for path in qp.sub:
        if not _walk(node, path):
            raise RestError(
                400, "PGRST108",
                f"'{'.'.join(path)}' is not an embedded resource in this request",
                hint=f"Verify that '{'.'.join(path)}' is included in the 'select' query parameter.",
            )  # fmt: skip
    return node, await _casts(conn, cache, sorted(sql.tree_casts(node)))


def _walk(node: Node, path: tuple[str, ...]) -> Node | None:
    for label in path:
        child = node.child(label)
        if child is None:
            return None
        node = child.node
    return node


def _filters(conditions: Iterable[Condition]) -> list[Filter]:
    out: list[Filter] = []
    for cond in conditions:
        if isinstance(cond, Filter):
            out.append(cond)
        else:
            out += _filters(cond.children)
    return out


def _cap(limit: int | None, max_rows: int | None) -> int | None:
    if max_rows is None:
        return limit
    return max_rows if limit is None else min(limit, max_rows)


# -- tables and views -------------------------------------------------------------------------------------------
async def plan_relation(req: RestRequest, conn: Conn, cache: SchemaCache, name: str) -> Plan:
    rel = await cache.relation(conn, req.schema, name)
    if rel is None:
        raise table_not_found(req.schema, name, await cache.relation_names(conn, req.schema))
    plan = await _plan_relation(req, conn, cache, rel)
    plan.checks.append(SchemaCheck("rel", rel.schema, rel.name, rel.fingerprint))
    return plan


async def _plan_relation(req: RestRequest, conn: Conn, cache: SchemaCache, rel: Relation) -> Plan:
    name = rel.name
    qp = parse_query(req.pairs, name, req.schema, strict=True)
    node, casts = await _tree(req, conn, cache, rel, qp)
    scope = sql.Scope(
        sql.ident(rel.name), rel.name, rel.columns, casts,
        {n: (f"{sql.qualified(fs, fn)}({sql.ident(rel.name)})", t) for n, (fs, fn, t) in node.computed.items()},
    )  # fmt: skip

    def builder() -> sql.TreeBuilder:
        return sql.TreeBuilder(sql.Params(), casts, qp.sub)

    shape: dict[str, Any] = {
        "node": node,
        "singular": req.accept.singular,
        "strip_nulls": req.accept.strip_nulls,
    }
    if req.method in ("GET", "HEAD"):
        _apply_range_header(qp, req.range_header)
        limit = _cap(qp.limit, req.settings.max_rows)
        stmt = sql.read(
            rel, node, builder(), qp.conditions, qp.order, limit, qp.offset,
            count=req.prefs.count == "exact",
            singular=req.accept.singular, strip_nulls=req.accept.strip_nulls, csv=req.accept.csv,
        )  # fmt: skip
        return Plan("read", [stmt], readonly=True, request=req, offset=qp.offset, csv_header=stmt.csv_header)
    if req.accept.csv:  # CSV is rendered for reads only
        raise media_type_error(["text/csv"])
    if req.method == "POST":
        return _plan_insert(req, rel, scope, qp, shape, builder)
    if req.method not in ("PATCH", "DELETE"):
        raise unsupported_method(req.method)
    if qp.limit is not None or qp.offset or qp.order:
        raise not_implemented("limit/offset/order on PATCH and DELETE are not supported by the devstack emulator")
    if not qp.conditions:  # pg-safeupdate, loaded for `authenticator` on Supabase
        verb = "UPDATE" if req.method == "PATCH" else "DELETE"
        raise RestError(400, "21000", f"{verb} requires a WHERE clause")
    shape["representation"] = req.prefs.representation
    if req.method == "DELETE":
        stmt = sql.delete(rel, scope, qp.conditions, b=builder(), **shape)
        return Plan("delete", [stmt], readonly=False, request=req)
    check_json_content_type(req.content_type)
    data = _decode(req.body)
    if not isinstance(data, dict):
        raise invalid_body("Expected a JSON object for PATCH")
    columns = _payload_columns(rel, qp.columns, [data])
    if not columns:
        return Plan("update", [], readonly=False, request=req)
    stmt = sql.update(rel, scope, columns, qp.conditions, b=builder(), **shape)
    stmt.params.values[0] = _text(req.body)
    return Plan("update", [stmt], readonly=False, request=req)


def _payload_columns(rel: Relation, columns: Sequence[str] | None, rows: list[dict[str, Any]]) -> list[str]:
    if columns is None:
        columns = list(rows[0]) if rows else []
        if any(set(r) != set(columns) for r in rows[1:]):
            raise invalid_body("All object keys must match")
    for col in columns:
        if col not in rel.columns:
            raise column_not_found(rel.name, col)
    return list(columns)


def _plan_insert(
    req: RestRequest,
    rel: Relation,
    scope: sql.Scope,
    qp: QueryParams,
    shape: dict[str, Any],
    builder: Callable[[], sql.TreeBuilder],
) -> Plan:
    check_json_content_type(req.content_type)
    data = _decode(req.body)
    text = _text(req.body)
    if isinstance(data, dict):
        rows, text = [data], f"[{text}]"
    elif isinstance(data, list) and all(isinstance(r, dict) for r in data):
        rows = data
    else:
        raise invalid_body()
    columns = _payload_columns(rel, qp.columns, rows)
    resolution = req.prefs.resolution
    conflict: tuple[str, ...] = ()
    if resolution:
        conflict = qp.on_conflict or rel.pk
        for col in conflict:
            if col not in rel.columns:
                raise undefined_column(rel.name, col, rel.columns)
    stmt = sql.insert(
        rel, scope, columns, rows=None, missing_default=req.prefs.missing_default, conflict=conflict,
        resolution=resolution, update_columns=columns, representation=req.prefs.representation, b=builder(), **shape,
    )  # fmt: skip
    stmt.params.values[0] = text
    statements = [stmt]
    return Plan("insert", statements, readonly=False, request=req)


_RANGE = re.compile(r"^\s*(\d+)-(\d*)\s*$")


def _apply_range_header(qp: QueryParams, header: str | None) -> None:
    """`Range: 0-9` (PostgREST's Range-Unit: items) narrows `offset`/`limit`, intersected with them."""
    match = _RANGE.match(header or "")
    if match is None:
        return  # no header, or one PostgREST does not read as an item range
    first, last = int(match.group(1)), int(match.group(2)) if match.group(2) else None
    if last is not None and last < first:
        raise invalid_range("The lower boundary must be lower than or equal to the upper boundary in the Range header.")
    start = max(first, qp.offset)
    ends = [e for e in (last, qp.offset + qp.limit - 1 if qp.limit is not None else None) if e is not None]
    qp.offset = start
    qp.limit = max(min(ends) - start + 1, 0) if ends else None


_RAW_BODY_TYPES = {"text/plain": "text", "text/xml": "xml"}


def _rpc_items(items: Sequence[Item]) -> list[SelectItem]:
    out: list[SelectItem] = []
    for item in items:
        if not isinstance(item, SelectItem) or item.aggregate:
            raise not_implemented(
                "Embedding and aggregates on function results are not supported by the devstack emulator"
            )
        out.append(item)
    return out


# -- functions --------------------------------------------------------------------------------------------------
def _matches(routine: Routine, keys: set[str]) -> bool:
    if not routine.params:
        return not keys
    return keys <= routine.names and routine.required <= keys


async def plan_rpc(req: RestRequest, conn: Conn, cache: SchemaCache, name: str) -> Plan:
    if req.method not in ("GET", "HEAD", "POST"):
        raise RestError(405, "PGRST101", f"Cannot use the {req.method} method on RPC")
    if req.accept.csv:
        raise media_type_error(["text/csv"])
    routines = [r for r in await cache.routines(conn, req.schema, name) if r.callable]
    post = req.method == "POST"
    arg_names = frozenset() if post else frozenset(n for r in routines for n in r.names)
    qp = parse_query(req.pairs, name, req.schema, arg_names, strict=post)
    body: Any = {}
    media = (req.content_type or "").split(";")[0].strip().lower()
    raw_type = _RAW_BODY_TYPES.get(media) if post else None
    if raw_type is not None:  # `Content-Type: text/plain` to a function with one unnamed text parameter
        raw = [r for r in routines if r.single_unnamed and r.params[0].type == raw_type]
        if not raw:
            raise unsupported_content_type(req.content_type or media)
        body = None
    elif post:
        check_json_content_type(req.content_type)
        body = _decode(req.body) if req.body.strip() else {}
    keys = set(body) if isinstance(body, dict) else set()
    if not post:
        keys = set(qp.rpc_args)
    candidates: list[Routine] = []
    if raw_type is not None:
        candidates = raw
    elif post and req.prefs.params == "single-object":
        candidates = [r for r in routines if len(r.params) == 1 and r.params[0].type in ("json", "jsonb")]
    elif isinstance(body, dict):
        candidates = [r for r in routines if _matches(r, keys)]
    if post and not candidates:
        candidates = [r for r in routines if r.single_unnamed_json]
    if not candidates:
        raise no_function(
            req.schema, name, keys, post_json=post,
            all_functions=await cache.function_names(conn, req.schema) if not routines else (),
            overload_params=[[p.name for p in r.params] for r in routines],
        )  # fmt: skip
    if len(candidates) > 1:
        raise ambiguous_function([r.signature() for r in candidates])
    routine = candidates[0]
    single = post and (req.prefs.params == "single-object" or routine.single_unnamed)
    if not single and not isinstance(body, dict):
        raise invalid_body()
    if routine.variadic:
        raise not_implemented("VARIADIC functions are not supported by the devstack emulator")
    text_body = _text(req.body) if post and req.body.strip() else "{}"
    named = [p.name for p in routine.params if p.name in keys] if post and not single else []
    tree: tuple[Node, sql.TreeBuilder] | None = None
    select: list[SelectItem] = []
    casts: dict[str, str] = {}
    target = await cache.relation(conn, *routine.return_relation) if routine.return_relation else None
    if target is None and routine.shape == "composite" and routine.columns:  # OUT/TABLE columns: a row shape
        target = Relation(routine.schema, routine.name, "f", routine.columns, ())
    if target is not None and routine.shape == "composite":
        node, casts = await _tree(req, conn, cache, target, qp)
        tree = (node, sql.TreeBuilder(sql.Params(), casts, qp.sub))
    else:
        select = _rpc_items(qp.select)
        casts = await _casts(conn, cache, _item_casts(qp.select))
    stmt = sql.call(
        routine,
        json_args=named,
        text_args=None if post else qp.rpc_args,
        single_body=single,
        body=text_body,
        select=select,
        conditions=qp.conditions,
        order=qp.order,
        limit=_cap(qp.limit, req.settings.max_rows),
        offset=qp.offset,
        count=req.prefs.counting,
        singular=req.accept.singular,
        strip_nulls=req.accept.strip_nulls,
        casts=casts,
        tree=tree,
    )
    readonly = not post or routine.volatility in ("s", "i")
    check = SchemaCheck("fn", routine.schema, routine.name, routine.fingerprint)
    return Plan(
        "call", [stmt], readonly=readonly, request=req, offset=qp.offset, void=routine.shape == "void", checks=[check],
        single_result=not routine.returns_set,
    )  # fmt: skip

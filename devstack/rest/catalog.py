"""The emulator's schema cache: tables/views with column types, functions with argument names, role settings.

Lookups are lazy (one object at a time) and cached per pool with a TTL. A miss is never cached, and every entry
carries a fingerprint of its catalog rows (oids, column names/types, primary key, function signatures) that each
request re-reads in the same round trip as its `set_config` call: a table or function changed by DDL is noticed
by the very next request, which then re-plans with fresh lookups (see `handlers`). Supabase gets the same effect
from PostgREST's DDL event trigger and `NOTIFY pgrst, 'reload schema'`.

Type names come from `format_type` evaluated with `search_path = pg_catalog`, so every non-catalog type is
schema-qualified and safe to splice into SQL as produced by the server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

#: a connection, or the proxy a pool hands out
Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"

# The type used to cast a text value for comparison with a column: domains resolve to their base type (as an
# unknown literal would), and bpchar/bit keep no typmod instead of format_type's implicit length 1.
_CAST_TYPE = """
  (select case b.oid when 'bpchar'::regtype then 'bpchar' when '_bpchar'::regtype then 'bpchar[]'
                     when 'bit'::regtype then 'bit varying' else format_type(b.oid, null) end
     from pg_type b
    where b.oid = case when t.typtype = 'd' then t.typbasetype else t.oid end)
"""
_CATEGORY = """
  (select b.typcategory from pg_type b where b.oid = case when t.typtype = 'd' then t.typbasetype else t.oid end)
"""

_RELATION_SQL = """
select c.oid, c.relkind::text as kind,
       coalesce((select array_agg(a.attname::text order by k.ord)
                   from pg_index i
                  cross join lateral unnest(i.indkey::int2[]) with ordinality k(attnum, ord)
                   join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                  where i.indrelid = c.oid and i.indisprimary), '{}') as pk
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'v', 'm', 'f', 'p')
"""

_COLUMNS_SQL = f"""
select a.attname::text as name, format_type(a.atttypid, a.atttypmod) as type, {_CAST_TYPE} as cast_type,
       {_CATEGORY}::text as category, not a.attnotnull as nullable, a.atthasdef as has_default,
       case when a.attgenerated <> '' then null
            when a.attidentity <> '' then 'nextval(' || quote_literal(pg_get_serial_sequence(
                 format('%I.%I', (select n.nspname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                                   where c.oid = a.attrelid), (select relname from pg_class where oid = a.attrelid)),
                 a.attname)) || '::regclass)'
            else (select pg_get_expr(d.adbin, d.adrelid) from pg_attrdef d
                   where d.adrelid = a.attrelid and d.adnum = a.attnum) end as default_expr,
       a.attgenerated <> '' as generated
  from pg_attribute a join pg_type t on t.oid = a.atttypid
 where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped
 order by a.attnum
"""

_RELATION_NAMES_SQL = """
select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = $1 and c.relkind in ('r', 'v', 'm', 'f', 'p')
"""

_FUNCTIONS_SQL = f"""
select p.oid, p.provolatile::text as volatility, p.proretset as returns_set, p.pronargdefaults as n_defaults,
       rt.typtype::text as ret_typtype, rt.typrelid as ret_relid,
       (select array[rn.nspname::text, rc.relname::text] from pg_class rc
          join pg_namespace rn on rn.oid = rc.relnamespace
         where rc.oid = rt.typrelid and rc.relkind in ('r', 'v', 'm', 'f', 'p')) as ret_relation,
       format_type(p.prorettype, null) as ret_type,
       p.prorettype = 'void'::regtype as returns_void, p.prorows = 1 as rows_one, p.provariadic <> 0 as variadic,
       coalesce(p.proargnames, '{{}}') as arg_names, coalesce(p.proargmodes::text[], '{{}}') as arg_modes,
       array(select format_type(u.x, null)
               from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality u(x, i)
              order by u.i) as arg_types,
       array(select {_CAST_TYPE}
               from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality u(x, i)
               join pg_type t on t.oid = u.x order by u.i) as arg_cast_types,
       array(select {_CATEGORY}::text
               from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality u(x, i)
               join pg_type t on t.oid = u.x order by u.i) as arg_categories
  from pg_proc p
  join pg_namespace n on n.oid = p.pronamespace
  join pg_type rt on rt.oid = p.prorettype
 where n.nspname = $1 and p.proname = $2 and p.prokind = 'f'
"""

_FOREIGN_KEYS_SQL = """
select c.conname::text as name, sn.nspname::text as src_schema, sc.relname::text as src_table,
       tn.nspname::text as dst_schema, tc.relname::text as dst_table,
       array(select a.attname::text from unnest(c.conkey) with ordinality k(n, i)
               join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n order by k.i) as columns,
       array(select a.attname::text from unnest(c.confkey) with ordinality k(n, i)
               join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.n order by k.i) as ref_columns,
       exists(select 1 from pg_index i
               where i.indrelid = c.conrelid and i.indisunique and i.indpred is null
                 and i.indkey::int2[] <@ c.conkey and cardinality(i.indkey::int2[]) > 0) as is_unique
  from pg_constraint c
  join pg_class sc on sc.oid = c.conrelid join pg_namespace sn on sn.oid = sc.relnamespace
  join pg_class tc on tc.oid = c.confrelid join pg_namespace tn on tn.oid = tc.relnamespace
 where c.contype = 'f' and (sn.nspname = $1 or tn.nspname = $1)
 order by c.conname, c.oid
"""

# Views (and materialized views) of the schema built on exactly one table: PostgREST follows the table's foreign
# keys through such a view; here a view column carries a key when it has the base column's name.
_VIEW_BASES_SQL = """
select vn.nspname::text as view_schema, v.relname::text as view_name,
       tn.nspname::text as base_schema, t.relname::text as base_name,
       array(select a.attname::text from pg_attribute a
              where a.attrelid = v.oid and a.attnum > 0 and not a.attisdropped) as columns
  from pg_class v join pg_namespace vn on vn.oid = v.relnamespace
 cross join lateral (select array_agg(distinct d.refobjid) as bases
                       from pg_rewrite r join pg_depend d on d.objid = r.oid
                      where r.ev_class = v.oid and d.classid = 'pg_rewrite'::regclass
                        and d.refclassid = 'pg_class'::regclass and d.refobjid <> v.oid) b
  join pg_class t on t.oid = b.bases[1] join pg_namespace tn on tn.oid = t.relnamespace
 where v.relkind in ('v', 'm') and vn.nspname = $1 and cardinality(b.bases) = 1 and t.relkind in ('r', 'p')
"""

_AGGREGATES_SQL = """
select coalesce((select lower(substr(kv, strpos(kv, '=') + 1)) in ('true', 'on', '1')
                   from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
                  cross join lateral unnest(s.setconfig) kv
                  where r.rolname = session_user and split_part(kv, '=', 1) = 'pgrst.db_aggregates_enabled'
                  order by s.setdatabase desc limit 1), false)
"""

# names of the functions callable through /rpc (see `Routine.callable`), for "perhaps you meant" hints
_FUNCTION_NAMES_SQL = """
select distinct p.proname::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = $1 and p.prokind = 'f'
   and (p.pronargs = 0
        or not exists (select 1 from unnest(coalesce(p.proargnames, array_fill(''::text, array[p.pronargs])))
                                     with ordinality a(name, i)
                        where a.i <= p.pronargs and a.name = '')
        or (p.pronargs = 1 and p.proargtypes[0] in ('json'::regtype, 'jsonb'::regtype, 'text'::regtype,
                                                   'xml'::regtype, 'bytea'::regtype)))
"""

_ROLE_SETTINGS_SQL = """
select split_part(kv, '=', 1) as name, substr(kv, strpos(kv, '=') + 1) as value
  from pg_db_role_setting s
  join pg_roles r on r.oid = s.setrole
 cross join lateral unnest(s.setconfig) kv
 where r.rolname = $1
   and s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
   and split_part(kv, '=', 1) in (select name from pg_settings where context = 'user')
   and split_part(kv, '=', 1) <> 'search_path'
 order by s.setdatabase
"""

_RESOLVE_TYPE_SQL = "select format_type(to_regtype($1), null)"


def relation_fingerprint_sql(schema: str, name: str) -> str:
    """A scalar subquery over the catalog rows a planned relation depends on; `schema`/`name` are placeholders."""
    return f"""(select c.oid::text || '|' || coalesce((
          select string_agg(a.attname || ':' || a.atttypid::text || ':' || a.atttypmod || ':' || a.attnotnull::text,
                            ',' order by a.attnum)
            from pg_catalog.pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '')
        || '|' || coalesce((select string_agg(i.indkey::text, ';') from pg_catalog.pg_index i
                             where i.indrelid = c.oid and i.indisprimary), '')
      from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where n.nspname = {schema} and c.relname = {name} and c.relkind in ('r', 'v', 'm', 'f', 'p'))"""


def routines_fingerprint_sql(schema: str, name: str) -> str:
    """Like `relation_fingerprint_sql`, for the overloads of a function name."""
    return f"""(select string_agg(p.oid::text || ':' || p.provolatile::text || ':' || p.pronargdefaults || ':'
                              || p.prorettype::text || ':' || p.proretset::text, ',' order by p.oid)
      from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
     where n.nspname = {schema} and p.proname = {name} and p.prokind = 'f')"""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    #: the declared type, for display (`character varying(20)`)
    type: str
    #: the type a text value is cast to when compared with this column (`character varying`)
    cast_type: str
    #: pg_type.typcategory of the base type ('S' for strings)
    category: str
    nullable: bool = True
    has_default: bool = False
    #: the default expression as the server prints it (schema-qualified), for `Prefer: missing=default`
    default_expr: str | None = None
    generated: bool = False


@dataclass(frozen=True, slots=True)
class Relation:
    schema: str
    name: str
    kind: str
    columns: dict[str, Column]
    pk: tuple[str, ...]
    fingerprint: str = ""


#: the only types a function's single unnamed parameter may have to be callable (PostgREST's rule)
UNNAMED_BODY_TYPES = ("json", "jsonb", "text", "xml", "bytea")


@dataclass(frozen=True, slots=True)
class ForeignKey:
    name: str
    src: tuple[str, str]
    dst: tuple[str, str]
    columns: tuple[str, ...]
    ref_columns: tuple[str, ...]
    #: the referencing columns are unique: a one-to-one relationship
    unique: bool
    #: a base table's key seen through a view (see `_through_views`)
    via_view: bool = False


@dataclass(frozen=True, slots=True)
class RoutineParam:
    name: str
    type: str
    #: the type a text/JSON argument is converted to (see `Column.cast_type`)
    cast_type: str
    has_default: bool
    variadic: bool = False


@dataclass(frozen=True, slots=True)
class Routine:
    schema: str
    name: str
    params: tuple[RoutineParam, ...]
    #: 'void', 'scalar' (incl. SETOF scalar) or 'composite' (table row type, OUT/TABLE columns, SETOF those)
    shape: Literal["void", "scalar", "composite"]
    returns_set: bool
    return_type: str
    #: result columns of a composite result, usable in select/filters/order
    columns: dict[str, Column]
    volatility: str
    variadic: bool
    fingerprint: str = ""
    #: `SETOF ... ROWS 1`: a computed relationship to one row
    rows_one: bool = False
    #: callable through /rpc (no unnamed parameter, or a single unnamed json/jsonb/text/xml/bytea one)
    callable: bool = True
    #: the table or view whose row type the function returns (its results can embed like that relation's rows)
    return_relation: tuple[str, str] | None = None

    @property
    def required(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params if not p.has_default)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params)

    @property
    def single_unnamed_json(self) -> bool:
        return len(self.params) == 1 and self.params[0].name == "" and self.params[0].type in ("json", "jsonb")

    @property
    def single_unnamed(self) -> bool:
        """One unnamed json/jsonb/text/xml/bytea parameter: it receives the whole request body."""
        return len(self.params) == 1 and self.params[0].name == "" and self.params[0].type in UNNAMED_BODY_TYPES

    def signature(self) -> str:
        args = ", ".join(f"{p.name} => {p.type}" for p in self.params)
        return f"{self.schema}.{self.name}({args})"


@dataclass(frozen=True, slots=True)
class SchemaCheck:
    """A cached object a plan relies on, re-verified inside the request's transaction."""

    kind: Literal["rel", "fn"]
    schema: str
    name: str
    fingerprint: str

    def sql(self, schema_ref: str, name_ref: str) -> str:
        build = relation_fingerprint_sql if self.kind == "rel" else routines_fingerprint_sql
        return build(schema_ref, name_ref)


class StaleSchema(Exception):
    """A planned-against catalog object changed since it was cached: refresh and plan again."""


@dataclass
class _Entry:
    value: Any
    expires: float


@dataclass
class SchemaCache:
    """Per-pool cache of catalog lookups (see module docstring)."""

    ttl: float = 30.0
    #: how many lookups were answered from the cache (a request that used one may retry after a refresh)
    hits: int = 0
    _entries: dict[tuple[str, ...], _Entry] = field(default_factory=dict)

    def clear(self) -> None:
        self._entries.clear()

    def _get(self, key: tuple[str, ...]) -> Any:
        entry = self._entries.get(key)
        if entry is None or entry.expires < time.monotonic():
            return None
        if key[0] in ("rel", "fn", "fk"):
            self.hits += 1
        return entry.value

    def _put(self, key: tuple[str, ...], value: Any) -> None:
        if value is None:
            return
        now = time.monotonic()
        if len(self._entries) >= 2000:  # test suites create many short-lived tables: drop what has expired
            self._entries = {k: e for k, e in self._entries.items() if e.expires >= now}
        self._entries[key] = _Entry(value, now + self.ttl)

    async def relation(self, conn: Conn, schema: str, name: str) -> Relation | None:
        key = ("rel", schema, name)
        cached: Relation | None = self._get(key)
        if cached is None:
            cached = await _in_catalog_tx(conn, _load_relation, schema, name)
            self._put(key, cached)
        return cached

    async def routines(self, conn: Conn, schema: str, name: str) -> list[Routine]:
        key = ("fn", schema, name)
        cached: list[Routine] | None = self._get(key)
        if cached is None:
            cached = await _in_catalog_tx(conn, _load_routines, schema, name)
            self._put(key, cached or None)
        return cached or []

    async def foreign_keys(self, conn: Conn, schema: str) -> list[ForeignKey]:
        key = ("fk", schema)
        cached: list[ForeignKey] | None = self._get(key)
        if cached is None:
            rows = await _in_catalog_tx(conn, _fetch, _FOREIGN_KEYS_SQL, schema)
            cached = [
                ForeignKey(
                    r["name"],
                    (r["src_schema"], r["src_table"]),
                    (r["dst_schema"], r["dst_table"]),
                    tuple(r["columns"]),
                    tuple(r["ref_columns"]),
                    bool(r["is_unique"]),
                )
                for r in rows
            ]
            views = await _in_catalog_tx(conn, _fetch, _VIEW_BASES_SQL, schema)
            cached += _through_views(cached, views)
            self._entries[key] = _Entry(cached, time.monotonic() + min(self.ttl, 5.0))
        return cached

    async def aggregates_enabled(self, conn: Conn) -> bool:
        """`pgrst.db_aggregates_enabled` set on the login role, as PostgREST reads its in-database config."""
        key = ("agg",)
        cached: bool | None = self._get(key)
        if cached is None:
            cached = bool(await conn.fetchval(_AGGREGATES_SQL))
            self._entries[key] = _Entry(cached, time.monotonic() + min(self.ttl, 5.0))
        return cached

    async def relation_names(self, conn: Conn, schema: str) -> list[str]:
        return [r[0] for r in await conn.fetch(_RELATION_NAMES_SQL, schema)]

    async def function_names(self, conn: Conn, schema: str) -> list[str]:
        return [r[0] for r in await conn.fetch(_FUNCTION_NAMES_SQL, schema)]

    async def role_settings(self, conn: Conn, role: str) -> list[tuple[str, str]]:
        key = ("role", role)
        cached: list[tuple[str, str]] | None = self._get(key)
        if cached is None:
            merged = {r["name"]: r["value"] for r in await conn.fetch(_ROLE_SETTINGS_SQL, role)}
            cached = list(merged.items())
            self._put(key, cached)
        return cached

    async def resolve_type(self, conn: Conn, name: str) -> str | None:
        """A user-supplied cast (`select=col::int`) resolved by the server; None if no such type."""
        key = ("type", name)
        cached: str | None = self._get(key)
        if cached is None:
            try:
                cached = await _in_catalog_tx(conn, _resolve_type, name)
            except asyncpg.PostgresError:
                cached = None
            self._put(key, cached)
        return cached


async def _in_catalog_tx(conn: Conn, loader: Any, *args: Any) -> Any:
    async with conn.transaction(readonly=True):
        await conn.execute("select set_config('search_path', 'pg_catalog', true)")
        return await loader(conn, *args)


def _through_views(fks: list[ForeignKey], views: list[asyncpg.Record]) -> list[ForeignKey]:
    """The base table's foreign keys seen through each single-table view (see `_VIEW_BASES_SQL`)."""
    extra: list[ForeignKey] = []
    for v in views:
        view, base, cols = (v["view_schema"], v["view_name"]), (v["base_schema"], v["base_name"]), set(v["columns"])
        for fk in fks:
            if fk.src == base and set(fk.columns) <= cols:
                extra.append(ForeignKey(fk.name, view, fk.dst, fk.columns, fk.ref_columns, fk.unique, True))
            if fk.dst == base and set(fk.ref_columns) <= cols and fk.src != base:
                extra.append(ForeignKey(fk.name, fk.src, view, fk.columns, fk.ref_columns, fk.unique, True))
    return extra


async def _fetch(conn: Conn, query: str, *args: Any) -> list[asyncpg.Record]:
    return list(await conn.fetch(query, *args))


async def _resolve_type(conn: Conn, name: str) -> str | None:
    value = await conn.fetchval(_RESOLVE_TYPE_SQL, name)
    return str(value) if value else None


def _column(row: asyncpg.Record) -> Column:
    return Column(
        name=row["name"],
        type=row["type"],
        cast_type=row["cast_type"],
        category=row["category"],
        nullable=row["nullable"],
        has_default=row["has_default"],
        default_expr=row["default_expr"],
        generated=bool(row["generated"]),
    )


async def _load_relation(conn: Conn, schema: str, name: str) -> Relation | None:
    row = await conn.fetchrow(_RELATION_SQL, schema, name)
    if row is None:
        return None
    cols = await conn.fetch(_COLUMNS_SQL, row["oid"])
    fingerprint = await conn.fetchval(f"select {relation_fingerprint_sql('$1', '$2')}", schema, name)
    return Relation(
        schema, name, row["kind"], {c["name"]: _column(c) for c in cols}, tuple(row["pk"]), fingerprint or ""
    )


async def _load_routines(conn: Conn, schema: str, name: str) -> list[Routine]:
    routines: list[Routine] = []
    fingerprint = await conn.fetchval(f"select {routines_fingerprint_sql('$1', '$2')}", schema, name) or ""
    for row in await conn.fetch(_FUNCTIONS_SQL, schema, name):
        types: list[str] = list(row["arg_types"])
        modes: list[str] = list(row["arg_modes"]) or ["i"] * len(types)
        names: list[str] = list(row["arg_names"]) + [""] * (len(types) - len(row["arg_names"]))
        inputs = [i for i, m in enumerate(modes) if m in ("i", "b", "v")]
        outputs = [i for i, m in enumerate(modes) if m in ("o", "b", "t")]
        n_defaults = row["n_defaults"]
        params = tuple(
            RoutineParam(
                names[i],
                types[i],
                row["arg_cast_types"][i],
                has_default=pos >= len(inputs) - n_defaults,
                variadic=modes[i] == "v",
            )
            for pos, i in enumerate(inputs)
        )
        # unnamed parameters cannot be passed by name: such a function is not callable through /rpc (it can
        # still be a computed field or relationship taking a row)
        callable_ = not any(not p.name for p in params) or (len(params) == 1 and params[0].type in UNNAMED_BODY_TYPES)
        columns: dict[str, Column] = {}
        shape: Literal["void", "scalar", "composite"] = "scalar"
        if row["returns_void"]:
            shape = "void"
        elif row["ret_typtype"] == "c":
            shape = "composite"
            for c in await conn.fetch(_COLUMNS_SQL, row["ret_relid"]):
                columns[c["name"]] = _column(c)
        elif len(outputs) > 1 or "t" in modes:
            shape = "composite"
            for i in outputs:
                columns[names[i]] = Column(names[i], types[i], row["arg_cast_types"][i], row["arg_categories"][i])
        elif row["ret_type"] == "record":
            shape = "composite"
        routines.append(
            Routine(
                schema=schema,
                name=name,
                params=params,
                shape=shape,
                returns_set=row["returns_set"],
                return_type=row["ret_type"],
                columns=columns,
                volatility=row["volatility"],
                variadic=row["variadic"],
                fingerprint=fingerprint,
                rows_one=bool(row["rows_one"]),
                callable=callable_,
                return_relation=tuple(row["ret_relation"]) if row["ret_relation"] else None,
            )
        )
    return routines

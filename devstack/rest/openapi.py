"""`GET /rest/v1/`: a small OpenAPI 2.0 description of the exposed schema (tables, views, functions).

PostgREST serves a full OpenAPI document there; clients such as supabase-py never read it, so this stub lists the
paths and the column types, which is what people look at it for.
"""

from __future__ import annotations

from typing import Any

import msgspec

from devstack.rest.catalog import Conn

# Only what the requesting role may use, and nothing internal: `_`-prefixed names, trigger and event-trigger
# functions and functions taking or returning pseudo-types (internal, cstring, ...) are left out.
_COLUMNS_SQL = """
select c.relname::text as relation, a.attname::text as column, format_type(a.atttypid, a.atttypmod) as type,
       a.attnotnull as not_null, a.atthasdef as has_default
  from pg_class c
  join pg_namespace n on n.oid = c.relnamespace
  join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
 where n.nspname = $1 and c.relkind in ('r', 'v', 'm', 'f', 'p') and left(c.relname, 1) <> '_'
   and has_table_privilege($2::text, c.oid, 'SELECT, INSERT, UPDATE, DELETE')
 order by c.relname, a.attnum
"""
_FUNCTIONS_SQL = """
select distinct p.proname::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = $1 and p.prokind = 'f' and left(p.proname, 1) <> '_'
   and has_function_privilege($2::text, p.oid, 'EXECUTE')
   and not exists (select 1 from pg_type t
                    where t.oid = any(array_append(p.proargtypes::oid[], p.prorettype)) and t.typtype = 'p'
                      and t.oid not in ('void'::regtype, 'record'::regtype))
 order by 1
"""
_JSON_TYPES = {
    "integer": "integer", "bigint": "integer", "smallint": "integer", "numeric": "number", "real": "number",
    "double precision": "number", "boolean": "boolean", "json": "object", "jsonb": "object",
}  # fmt: skip


async def describe(conn: Conn, schema: str, host: str, role: str) -> bytes:
    """The exposed `schema` as `role` sees it."""
    definitions: dict[str, dict[str, Any]] = {}
    for row in await conn.fetch(_COLUMNS_SQL, schema, role):
        definition = definitions.setdefault(row["relation"], {"type": "object", "properties": {}, "required": []})
        base = row["type"].split("(")[0]
        json_type = "array" if base.endswith("[]") else _JSON_TYPES.get(base, "string")
        definition["properties"][row["column"]] = {"format": row["type"], "type": json_type}
        if row["not_null"] and not row["has_default"]:
            definition["required"].append(row["column"])
    functions = [r[0] for r in await conn.fetch(_FUNCTIONS_SQL, schema, role)]
    paths: dict[str, Any] = {"/": {"get": {"summary": "OpenAPI description", "tags": ["Introspection"]}}}
    for name in definitions:
        paths[f"/{name}"] = {m: {"tags": [name]} for m in ("get", "post", "patch", "delete")}
    for fn in functions:
        paths[f"/rpc/{fn}"] = {"get": {"tags": ["(rpc) " + fn]}, "post": {"tags": ["(rpc) " + fn]}}
    doc = {
        "swagger": "2.0",
        "info": {
            "title": "devstack PostgREST emulator",
            "description": "The PostgREST subset served by the bisonsync devstack (see docs/devstack.md).",
            "version": "devstack",
        },
        "host": host,
        "basePath": "/rest/v1",
        "schemes": ["http"],
        "consumes": ["application/json", "application/vnd.pgrst.object+json"],
        "produces": ["application/json", "application/vnd.pgrst.object+json"],
        "paths": paths,
        "definitions": definitions,
        "x-schema": schema,
    }
    return msgspec.json.encode(doc)

"""Per-subscriber authorization of a change, as Realtime's `realtime.apply_rls` does it.

- Columns are limited to those the subscriber's role may SELECT (`has_column_privilege`).
- On a table with RLS enabled, INSERT and UPDATE are shown only if
  `exists(select 1 from <table> where <pk> = <values>)` is true under the subscriber's role and JWT claims,
  evaluated against the table at poll time. DELETE is never RLS-checked.

Catalog facts (table RLS flag and primary key, column privileges per role, BYPASSRLS per role) are cached with a
short TTL and refreshed in one query per kind for a whole poll batch. RLS checks are batched per
(role, claims, table) — one `exists` query per group covers every change of the batch — and all groups of a batch
go to the database in a single round trip (a session-local plpgsql loop, like `apply_rls`), so N subscribers with
distinct claims cost one statement per poll batch, not N queries per change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
import msgspec

from devstack.realtime.pgoutput import TupleValues
from devstack.realtime.values import Queryable

log = logging.getLogger("devstack.realtime")

#: (role, claims JSON, table oid): the unit an RLS check runs under
RlsKey = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class TableFacts:
    relid: int
    schema: str
    name: str
    rls_enabled: bool
    #: primary key columns in key order, with their SQL type names
    pk: tuple[str, ...]
    pk_types: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Authorizer:
    def __init__(self, pool: asyncpg.Pool, ttl: float = 2.0) -> None:
        self._pool = pool
        self._ttl = ttl
        self._tables: dict[int, tuple[float, TableFacts | None]] = {}
        self._columns: dict[tuple[str, int], tuple[float, frozenset[str]]] = {}
        self._bypass: dict[str, tuple[float, bool]] = {}

    # -- cached catalog facts -------------------------------------------------------------------------------
    def table(self, relid: int) -> TableFacts | None:
        entry = self._tables.get(relid)
        return entry[1] if entry else None

    def selectable(self, role: str, relid: int) -> frozenset[str]:
        entry = self._columns.get((role, relid))
        return entry[1] if entry else frozenset()

    def bypasses_rls(self, role: str) -> bool:
        entry = self._bypass.get(role)
        return bool(entry and entry[1])

    async def prefetch(self, relids: Iterable[int], role_tables: Iterable[tuple[str, int]]) -> None:
        now = time.monotonic()
        stale_tables = sorted({r for r in relids if self._expired(self._tables.get(r), now)})
        stale_columns = sorted({k for k in role_tables if self._expired(self._columns.get(k), now)})
        stale_roles = sorted({role for role, _ in stale_columns if self._expired(self._bypass.get(role), now)})
        if not (stale_tables or stale_columns or stale_roles):
            return
        async with self._pool.acquire() as conn:
            if stale_tables:
                await self._load_tables(conn, stale_tables, now)
            if stale_columns:
                await self._load_columns(conn, stale_columns, now)
            if stale_roles:
                rows = await conn.fetch(
                    "select rolname::text as role, rolbypassrls from pg_catalog.pg_roles where rolname = any($1)",
                    stale_roles,
                )
                found = {r["role"]: bool(r["rolbypassrls"]) for r in rows}
                for role in stale_roles:
                    self._bypass[role] = (now, found.get(role, False))

    def _expired(self, entry: tuple[float, object] | None, now: float) -> bool:
        return entry is None or now - entry[0] > self._ttl

    async def _load_tables(self, conn: Queryable, relids: list[int], now: float) -> None:
        rows = await conn.fetch(
            """
            select c.oid::int8 as relid, n.nspname::text as schema, c.relname::text as name,
                   c.relrowsecurity as rls,
                   coalesce(array(
                       select a.attname::text from pg_catalog.pg_index i
                       cross join lateral unnest(i.indkey::int2[]) with ordinality as k(attnum, ord)
                       join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                       where i.indrelid = c.oid and i.indisprimary order by k.ord), '{}') as pk,
                   coalesce(array(
                       select pg_catalog.format_type(a.atttypid, null) from pg_catalog.pg_index i
                       cross join lateral unnest(i.indkey::int2[]) with ordinality as k(attnum, ord)
                       join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                       where i.indrelid = c.oid and i.indisprimary order by k.ord), '{}') as pk_types
            from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
            where c.oid = any($1::oid[])
            """,
            relids,
        )
        found = {
            int(r["relid"]): TableFacts(
                int(r["relid"]), r["schema"], r["name"], bool(r["rls"]), tuple(r["pk"]), tuple(r["pk_types"])
            )
            for r in rows
        }
        for relid in relids:
            self._tables[relid] = (now, found.get(relid))

    async def _load_columns(self, conn: Queryable, keys: list[tuple[str, int]], now: float) -> None:
        rows = await conn.fetch(
            """
            select k.role, k.relid::int8 as relid,
                   array(select a.attname::text from pg_catalog.pg_attribute a
                         where a.attrelid = k.relid and a.attnum > 0 and not a.attisdropped
                           and exists(select 1 from pg_catalog.pg_roles r where r.rolname = k.role)
                           and pg_catalog.has_column_privilege(k.role::name, a.attrelid, a.attnum, 'SELECT')
                   ) as cols
            from unnest($1::text[], $2::oid[]) as k(role, relid)
            where exists(select 1 from pg_catalog.pg_class c where c.oid = k.relid)
            """,
            [role for role, _ in keys],
            [relid for _, relid in keys],
        )
        found = {(r["role"], int(r["relid"])): frozenset(r["cols"]) for r in rows}
        for key in keys:
            self._columns[key] = (now, found.get(key, frozenset()))

    # -- RLS ------------------------------------------------------------------------------------------------
    async def visible(self, jobs: dict[RlsKey, list[tuple[int, TupleValues]]]) -> dict[RlsKey, set[int]]:
        """For each (role, claims, table), which of the given (index, row) pairs the role can SELECT now.

        All groups go to the database in one statement: `pg_temp.devstack_rt_visible` loops over them, switching
        role and claims for each (as `realtime.apply_rls` does), each group in its own subtransaction so a failing
        policy only hides that group's rows. The statement is its own transaction, so the settings end with it.
        """
        keys = [key for key in jobs if self._rls_sql(key[2]) is not None]
        if not keys:
            return {key: set() for key in jobs}
        payload = [
            {
                "role": role,
                "claims": claims_json,
                "sql": self._rls_sql(relid),
                "keys": [[row.get(col) for col in self._pk(relid)] for _, row in jobs[(role, claims_json, relid)]],
            }
            for role, claims_json, relid in keys
        ]
        encoded = msgspec.json.encode(payload).decode()
        try:
            async with self._pool.acquire() as conn:
                try:
                    rows = await conn.fetch(_VISIBLE_CALL, encoded)
                except asyncpg.UndefinedFunctionError:  # a connection that lost its temp schema
                    await prepare_connection(conn)
                    rows = await conn.fetch(_VISIBLE_CALL, encoded)
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("realtime RLS checks failed: %s", exc)
            rows = []
        found: dict[RlsKey, set[int]] = {key: set() for key in jobs}
        for row in rows:
            key = keys[int(row["job"])]
            found[key].add(jobs[key][int(row["n"]) - 1][0])
        return found

    def _pk(self, relid: int) -> tuple[str, ...]:
        facts = self.table(relid)
        return facts.pk if facts is not None else ()

    def _rls_sql(self, relid: int) -> str | None:
        """`exists(select 1 from <table> where <pk> = <values>)` over a JSON array of key tuples -> their ordinals."""
        facts = self.table(relid)
        if facts is None or not facts.pk:
            return None
        condition = " and ".join(
            f"t.{quote_ident(col)} = (k.v->>{i})::{typ}"
            for i, (col, typ) in enumerate(zip(facts.pk, facts.pk_types, strict=True))
        )
        return (
            "select k.ord::int from jsonb_array_elements($1) with ordinality as k(v, ord) "
            f"where exists(select 1 from {facts.qualified} t where {condition})"
        )


_VISIBLE_CALL = "select job, n from pg_temp.devstack_rt_visible($1::jsonb)"
_VISIBLE_FUNCTION = """
create or replace function pg_temp.devstack_rt_visible(jobs jsonb) returns table(job int, n int)
language plpgsql as $fn$
declare
  item jsonb;
  idx int := 0;
  found_n int;
begin
  for item in select value from jsonb_array_elements(jobs) loop
    begin
      perform pg_catalog.set_config('role', item->>'role', true),
              pg_catalog.set_config('request.jwt.claims', item->>'claims', true);
      for found_n in execute item->>'sql' using item->'keys' loop
        job := idx;
        n := found_n;
        return next;
      end loop;
    exception when others then
      raise warning 'devstack realtime: RLS check as % failed: %', item->>'role', sqlerrm;
    end;
    idx := idx + 1;
  end loop;
end
$fn$
"""


async def prepare_connection(conn: Queryable) -> None:
    """Pool `init`: the session-local helper the batched RLS check calls."""
    await conn.execute(_VISIBLE_FUNCTION)

"""Channel subscriptions: the join's `postgres_changes` bindings, checked against the database and indexed by table.

What Realtime keeps as rows of `realtime.subscription` is kept here in memory: per channel, the subscriber's role
and claims, and per published table the bindings with their compiled filters. A binding resolves to the tables of
publication `supabase_realtime` matching its schema/table (`*` = any) at subscribe time, as the real server's
insert does. `start_lsn` is the WAL position when the subscription went live: only transactions committed after
it are delivered ("nothing before subscription").
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import asyncpg
import msgspec

from devstack.realtime.filters import (
    ColumnFacts,
    CompiledFilter,
    FilterCheckError,
    FilterParseError,
    FilterSpec,
    compile_filters,
    db_error_detail,
    parse_filters,
    raise_exception,
)
from devstack.realtime.pgoutput import RowChange, parse_lsn
from devstack.realtime.values import Queryable, TypeCache

PUBLICATION = "supabase_realtime"
_EVENTS = frozenset({"INSERT", "UPDATE", "DELETE"})


class SubscribeError(Exception):
    """The subscription could not be created; the message goes out in a `system` error frame."""


class ChangeSink(Protocol):
    """Where a channel's matching changes go (the socket's channel)."""

    def deliver(self, ids: list[int], data_json: str) -> None: ...


def binding_id(binding: Mapping[str, object]) -> int:
    """A stable non-zero id below 2**27 for a binding map (the real server uses `:erlang.phash2`)."""
    digest = hashlib.blake2b(msgspec.json.encode(binding, order="sorted"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % ((1 << 27) - 1) + 1


@dataclass(frozen=True, slots=True)
class BindingRequest:
    """One entry of `config.postgres_changes`, as the client sent it."""

    raw: dict[str, object]
    id: int
    event: str
    schema: str
    table: str
    filter_text: str | None
    select: tuple[str, ...] | None

    @classmethod
    def from_raw(cls, raw: dict[str, object]) -> BindingRequest:
        event = str(raw.get("event") or "*").upper()
        select = raw.get("select")
        return cls(
            raw=raw,
            id=binding_id(raw),
            event=event if event in _EVENTS else "*",
            schema=str(raw.get("schema") or "public"),
            table=str(raw.get("table") or "*"),
            filter_text=str(raw["filter"]) if raw.get("filter") else None,
            select=tuple(str(s) for s in select) if isinstance(select, list) else None,
        )

    def reply(self) -> dict[str, object]:
        return {**self.raw, "id": self.id}

    def log_params(self, filters: tuple[FilterSpec, ...] = ()) -> str:
        """`event: *, schema: public, table: t, filters: [], select: nil` (Realtime's `params_to_log`)."""
        shown = "[" + ", ".join(f.log_form() for f in filters) + "]"
        select = "nil" if self.select is None else msgspec.json.encode(list(self.select)).decode()
        return f"event: {self.event}, schema: {self.schema}, table: {self.table}, filters: {shown}, select: {select}"


@dataclass(frozen=True, slots=True)
class LiveBinding:
    id: int
    event: str
    filters: tuple[CompiledFilter, ...]
    select: tuple[str, ...] | None

    def matches(self, change: RowChange, *, rls: bool = False) -> bool:
        """Event and filters. With RLS on the table, a DELETE is not filtered at all (as `realtime.apply_rls`
        does): its old values are not the subscriber's to see, so they must not decide delivery either."""
        if self.event != "*" and self.event != change.kind:
            return False
        if not self.filters or (rls and change.kind == "DELETE"):
            return True
        values = change.old if change.kind == "DELETE" else change.new
        if values is None:
            return False
        return all(f.test(values) for f in self.filters)


@dataclass(eq=False, slots=True)
class ChannelSubscription:
    sink: ChangeSink
    role: str
    claims_json: str
    start_lsn: int
    by_relid: dict[int, tuple[LiveBinding, ...]]

    def match(self, change: RowChange, *, rls: bool = False) -> tuple[list[int], tuple[str, ...] | None]:
        """The ids of this channel's bindings that `change` passes, and the `select` columns (None = all).
        `rls`: the table has row level security (DELETEs then ignore filters)."""
        if change.commit_lsn < self.start_lsn:
            return [], None
        ids: list[int] = []
        selects: set[str] = set()
        everything = False
        for binding in self.by_relid.get(change.relation.relid, ()):
            if binding.id not in ids and binding.matches(change, rls=rls):
                ids.append(binding.id)
                if binding.select is None:
                    everything = True
                else:
                    selects.update(binding.select)
        return ids, (None if everything or not ids else tuple(sorted(selects)))


class SubscriptionRegistry:
    """Live subscriptions by table oid; read by the dispatcher on every change."""

    def __init__(self) -> None:
        self._by_relid: dict[int, set[ChannelSubscription]] = {}

    def add(self, sub: ChannelSubscription) -> None:
        for relid in sub.by_relid:
            self._by_relid.setdefault(relid, set()).add(sub)

    def remove(self, sub: ChannelSubscription | None) -> None:
        if sub is None:
            return
        for relid in sub.by_relid:
            subs = self._by_relid.get(relid)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_relid[relid]

    def replace(self, old: ChannelSubscription | None, new: ChannelSubscription) -> None:
        self.remove(old)
        self.add(new)

    def for_relid(self, relid: int) -> list[ChannelSubscription]:
        return list(self._by_relid.get(relid, ()))

    def roles_for(self, relids: Iterable[int]) -> set[tuple[str, int]]:
        return {(sub.role, relid) for relid in relids for sub in self._by_relid.get(relid, ())}

    def __len__(self) -> int:
        return len({sub for subs in self._by_relid.values() for sub in subs})


async def current_lsn(conn: Queryable) -> int:
    """The WAL insert position: every transaction committing later has a higher commit LSN.

    (`pg_current_wal_lsn()` is the *write* position, which lags behind asynchronous commits.)
    """
    return parse_lsn(str(await conn.fetchval("select pg_catalog.pg_current_wal_insert_lsn()::text")))


async def create_subscription(
    conn: Queryable,
    types: TypeCache,
    bindings: list[BindingRequest],
    *,
    sink: ChangeSink,
    role: str,
    claims_json: str,
    start_lsn: int | None = None,
) -> ChannelSubscription:
    """Resolve and check every binding as `role`; raises SubscribeError with the real server's message."""
    by_relid: dict[int, list[LiveBinding]] = {}
    role_exists = await conn.fetchval("select exists(select 1 from pg_catalog.pg_roles where rolname = $1)", role)
    for binding in bindings:
        try:
            specs = parse_filters(binding.filter_text)
        except FilterParseError as exc:
            raise SubscribeError(str(exc)) from exc
        prefix = "Unable to subscribe to changes with given parameters."
        params = binding.log_params(specs)
        try:
            if not role_exists:
                raise FilterCheckError(f'ERROR 42704 (undefined_object) role "{role}" does not exist')
            if binding.select is not None and "*" in (binding.schema, binding.table):
                raise raise_exception("select is not allowed with * schema or table")
            relids = await _published_tables(conn, binding.schema, binding.table)
            if not relids:
                raise SubscribeError(
                    f"{prefix} Please check Realtime is enabled for the given connect parameters: [{params}]"
                )
            columns = await _column_facts(conn, types, relids, role)
            for relid in relids:
                table_columns = columns.get(relid, {})
                for name in binding.select or ():
                    facts = table_columns.get(name)
                    if facts is None or not facts.selectable:
                        raise raise_exception(f"invalid column for select {name}")
                compiled = await compile_filters(conn, specs, table_columns)
                by_relid.setdefault(relid, []).append(LiveBinding(binding.id, binding.event, compiled, binding.select))
        except FilterCheckError as exc:
            raise SubscribeError(
                f"{prefix} An exception happened so please check your connect parameters: [{params}]. "
                f"Exception: {exc.detail}"
            ) from exc
        except asyncpg.PostgresError as exc:
            raise SubscribeError(
                f"{prefix} An exception happened so please check your connect parameters: [{params}]. "
                f"Exception: {db_error_detail(exc)}"
            ) from exc
    lsn = start_lsn if start_lsn is not None else await current_lsn(conn)
    return ChannelSubscription(
        sink=sink,
        role=role,
        claims_json=claims_json,
        start_lsn=lsn,
        by_relid={relid: tuple(found) for relid, found in by_relid.items()},
    )


async def _published_tables(conn: Queryable, schema: str, table: str) -> list[int]:
    rows = await conn.fetch(
        "select c.oid::int8 as relid from pg_catalog.pg_publication_tables p "
        "join pg_catalog.pg_namespace n on n.nspname = p.schemaname "
        "join pg_catalog.pg_class c on c.relnamespace = n.oid and c.relname = p.tablename "
        "where p.pubname = $1 and ($2 = '*' or p.schemaname = $2) and ($3 = '*' or p.tablename = $3) "
        "order by 1",
        PUBLICATION,
        schema,
        table,
    )
    return [int(r["relid"]) for r in rows]


async def _column_facts(
    conn: Queryable, types: TypeCache, relids: list[int], role: str
) -> dict[int, dict[str, ColumnFacts]]:
    rows = await conn.fetch(
        "select a.attrelid::int8 as relid, a.attname::text as name, a.atttypid::int8 as typ, "
        "pg_catalog.format_type(a.atttypid, null) as type_sql, "
        "pg_catalog.has_column_privilege($2::name, a.attrelid, a.attnum, 'SELECT') as selectable "
        "from pg_catalog.pg_attribute a where a.attrelid = any($1::oid[]) and a.attnum > 0 and not a.attisdropped "
        "order by a.attrelid, a.attnum",
        relids,
        role,
    )
    await types.ensure(conn, {int(r["typ"]) for r in rows})
    out: dict[int, dict[str, ColumnFacts]] = {}
    for r in rows:
        info = types.resolve(int(r["typ"]))
        out.setdefault(int(r["relid"]), {})[r["name"]] = ColumnFacts(
            r["name"], int(r["typ"]), r["type_sql"], info, bool(r["selectable"])
        )
    return out

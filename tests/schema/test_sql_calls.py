"""The calls module against the catalog: every SQL function `bisonsync.store.api` declares exists in `public` with
the argument names the Python passes (and none it omits is required), returns a set exactly when it is called for
rows, and is executable by service_role (the role `SupabaseStore` runs as); every table it reads or writes has the
columns it names. The lists come from the module's registry, so a new call is covered without touching this file.

Also: no SQL call is made outside the calls module."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg
import msgspec
import pytest

from bisonsync.store import PostgresStore, api
from bisonsync.store.rows import IngestOutcome, RunResult, RunStart, WorkspaceProgress

ROOT = Path(__file__).resolve().parents[2]

#: (name, IN argument names, number of them that have defaults, returns a set, service_role may execute)
_OVERLOADS = """
select p.proname as name,
       coalesce(array(
         select a.name
         from unnest(p.proargnames, coalesce(p.proargmodes, array_fill('i'::"char", array[p.pronargs])))
              as a(name, mode)
         where a.mode in ('i', 'b', 'v')
       ), '{}') as args,
       p.pronargdefaults as defaults,
       p.proretset as returns_set,
       has_function_privilege('service_role', p.oid, 'execute') as service_role
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where n.nspname = 'public' and p.proname = any($1::text[])
"""


def _mismatch(fn: api.SqlFunction, overloads: list[asyncpg.Record]) -> str | None:
    """Why no overload of `fn.name` accepts the call as declared (None: one does)."""
    if not overloads:
        return "no such function in public"
    reasons = []
    for o in overloads:
        args: list[str] = list(o["args"])
        required = set(args[: len(args) - o["defaults"]])
        unknown = sorted(fn.args - set(args))
        missing = sorted(required - fn.args)
        if unknown:
            reasons.append(f"({', '.join(args)}) has no argument {unknown}")
        elif missing:
            reasons.append(f"({', '.join(args)}) requires {missing}, which the call never passes")
        elif o["returns_set"] != fn.rows:
            reasons.append(f"returns a set: {o['returns_set']}, called for rows: {fn.rows}")
        elif not o["service_role"]:
            reasons.append("service_role may not execute it")
        else:
            return None
    return "; ".join(reasons)


def test_the_registry_lists_every_call() -> None:
    # every SQL call the module defines is declared (a sample of each area, and more than the first version had)
    for name in ("ingest_delivery", "sync_mailbox_page", "claim_alerts", "workspace_api_keys", "bisonsync_ping"):
        assert name in api.FUNCTIONS
    assert len(api.FUNCTIONS) >= 34
    assert {"workspaces", "alert_log", "bisonsync_settings"} <= set(api.TABLES)


async def test_every_call_matches_pg_proc(db: asyncpg.Connection) -> None:
    rows = await db.fetch(_OVERLOADS, sorted(api.FUNCTIONS))
    by_name: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        by_name.setdefault(row["name"], []).append(row)
    problems = {
        name: why for name, fn in api.FUNCTIONS.items() if (why := _mismatch(fn, by_name.get(name, []))) is not None
    }
    assert problems == {}


async def test_the_check_sees_a_wrong_argument_name(db: asyncpg.Connection) -> None:
    """The comparison above can fail: a declaration with a renamed argument or an unknown function is reported."""
    rows = await db.fetch(_OVERLOADS, ["increment_metric"])
    renamed = api.SqlFunction("increment_metric", frozenset({"p_workspace", "p_metric_name"}))
    assert "has no argument ['p_workspace']" in (_mismatch(renamed, list(rows)) or "")
    too_few = api.SqlFunction("increment_metric", frozenset({"p_metric_name"}))
    assert "requires ['p_workspace_id']" in (_mismatch(too_few, list(rows)) or "")
    assert _mismatch(api.SqlFunction("no_such_function", frozenset()), []) == "no such function in public"


async def test_every_table_has_the_named_columns(db: asyncpg.Connection) -> None:
    rows = await db.fetch(
        "select table_name, array_agg(column_name::text) as columns from information_schema.columns "
        "where table_schema = 'public' and table_name = any($1::text[]) group by table_name",
        sorted(api.TABLES),
    )
    columns = {r["table_name"]: set(r["columns"]) for r in rows}
    problems = {}
    for name, table in api.TABLES.items():
        named = set(table.columns)
        if table.row is not None:
            named |= set(table.row.__struct_fields__)
        missing = named - columns.get(name, set())
        if missing:
            problems[name] = sorted(missing)
    assert problems == {}


async def test_an_undeclared_argument_never_reaches_the_database() -> None:
    # an unreachable database: were the call sent, it would fail with StoreUnavailable, not TypeError
    store = PostgresStore("postgresql://postgres:postgres@127.0.0.1:9/postgres", max_size=1, command_timeout=1)
    try:
        with pytest.raises(TypeError, match=r"increment_metric: undeclared arguments \['p_typo'\]"):
            await api.FUNCTIONS["increment_metric"].call(store, {"p_workspace_id": "x", "p_typo": 1})
        with pytest.raises(TypeError, match=r"workspaces: undeclared columns \['nme'\]"):
            await api.TABLES["workspaces"].select(store, {"nme": "x"})
    finally:
        await store.close()


def test_statuses_are_literals() -> None:
    """A status the code does not know fails decoding instead of flowing on as a string."""
    assert msgspec.convert({"status": "applied"}, IngestOutcome).status == "applied"
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"status": "aplied"}, IngestOutcome)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"status": "finished", "job": "j", "holder": "h"}, RunStart)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"run_id": "r", "job": "j", "status": "done"}, RunResult)  # a workspace status, not a run's
    ws = {"workspace_id": "w", "bison_workspace_id": 1, "name": "n"}
    assert msgspec.convert({**ws, "status": "done"}, WorkspaceProgress).status == "done"
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({**ws, "status": "completed"}, WorkspaceProgress)


_CALL = re.compile(r"\.(rpc|rpc_rows|select|upsert)\(\s*[\"']|\bstore\.(rpc|rpc_rows|select|upsert)\(")


def test_no_sql_call_outside_the_calls_module() -> None:
    """`store.rpc("name", ...)` and table reads/writes appear only in bisonsync/store (the primitives and the calls
    module), so every call is declared and checked above."""
    found = []
    for top in ("bisonsync", "service", "bench"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("bisonsync/store/"):
                continue
            for no, line in enumerate(path.read_text().splitlines(), start=1):
                if _CALL.search(line):
                    found.append(f"{rel}:{no}: {line.strip()}")
    assert found == []

"""The access matrix: who may read, write and execute what in schemas `public` and
`bisonsync_private`, through the real clients.

Every table, view and function in `public` has an entry below, reviewed by a person: the intended access for
`anon` (anon key), a workspace `member` and a `nonmember` (anon key + their access token, as supabase-js sends
it) and `service` (service_role key). The tests drive supabase-py against the devstack's `/rest/v1` and
`/realtime/v1` with rows seeded in two workspaces (on two instances), and assert exactly that access: a read sees
the member's rows only, or none, or all, or is refused (42501); a write is refused or reaches the rows; a function
is executable or refused. `test_every_public_object_is_in_the_matrix` fails on any object the migrations create
without an entry (and on entries whose object is gone), so nothing new ships unreviewed. Functions of
`bisonsync_private` (internal helpers) are checked in the catalog and must be out of the API's reach.

To add an object: add its entry here, seed a row of it for each owner in `rls_support.seed_world` when it holds
rows, and add its label scope there if it is a new kind of owner.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import asyncpg
import httpx
import pytest
from postgrest.types import ReturnMethod
from supabase import AsyncClient

from tests.conftest import StackHandle
from tests.hardening.rls_support import (
    IDENTITIES,
    PG_ROLE,
    Listener,
    Outcome,
    Seed,
    api_clients,
    close_clients,
    outcome,
    seed_world,
)

pytestmark = pytest.mark.timeout(120)

# Read levels. DENIED: the request fails with 42501. NONE: it succeeds and returns no seeded row. OWN: exactly the
# rows owned by "mine" (the member's workspace; for memberships, the member's own row). ALL: every seeded row.
Level = Literal["denied", "none", "own", "all"]
DENIED: Final = "denied"
NONE: Final = "none"
OWN: Final = "own"
ALL: Final = "all"
#: (anon, member, nonmember, service)
Levels = tuple[Level, Level, Level, Level]

SERVICE_READS: Levels = (DENIED, DENIED, DENIED, ALL)
MEMBER_READS: Levels = (DENIED, OWN, NONE, ALL)

NOBODY: frozenset[str] = frozenset()
SERVICE_ONLY: frozenset[str] = frozenset({"service"})


@dataclass(frozen=True)
class Rel:
    kind: Literal["table", "view"]
    #: which seeded owners a row's label column names (see rls_support.Seed.universe)
    scope: str
    #: the column that tells whose a row is
    key: str
    read: Levels
    #: identities allowed to INSERT, UPDATE and DELETE (PostgreSQL privilege; RLS then decides which rows)
    write: frozenset[str] = SERVICE_ONLY
    #: in publication supabase_realtime
    realtime: bool = False
    #: columns `authenticated` may not select even where it may read rows
    hidden: tuple[str, ...] = ()


RELATIONS: dict[str, Rel] = {
    "bisonsync_settings": Rel("table", "setting", "key", SERVICE_READS),
    "workspaces": Rel("table", "workspace", "id", MEMBER_READS, realtime=True),
    "workspace_name_history": Rel("table", "workspace", "workspace_id", MEMBER_READS),
    "workspace_members": Rel("table", "membership", "user_id", MEMBER_READS),
    "workspace_credentials": Rel("table", "workspace", "workspace_id", SERVICE_READS),
    "client_metrics_daily": Rel("table", "workspace", "workspace_id", MEMBER_READS, realtime=True),
    "client_leads": Rel("table", "workspace", "workspace_id", MEMBER_READS, realtime=True),
    "lead_replies": Rel("table", "workspace", "workspace_id", MEMBER_READS, realtime=True),
    "sender_emails_cache": Rel("table", "workspace", "workspace_id", MEMBER_READS, realtime=True),
    "mailbox_status_history": Rel("table", "workspace", "workspace_id", MEMBER_READS, realtime=True),
    "provider_performance_history": Rel("table", "instance", "instance", MEMBER_READS, realtime=True),
    "webhook_deliveries": Rel("table", "workspace", "workspace_id", MEMBER_READS, hidden=("payload",)),
    "webhook_activity": Rel("table", "workspace", "workspace_id", MEMBER_READS, realtime=True),
    "metric_drift": Rel("table", "workspace", "workspace_id", MEMBER_READS),
    "alert_log": Rel("table", "alert", "alert_key", MEMBER_READS),
    "alert_scan_state": Rel("table", "scan", "scan", SERVICE_READS),
    "sync_leases": Rel("table", "job", "job", SERVICE_READS),
    "sync_runs": Rel("table", "instance", "instance", MEMBER_READS, realtime=True),
    "sync_run_workspaces": Rel("table", "workspace", "workspace_id", MEMBER_READS, realtime=True),
    "sync_run_mailboxes": Rel("table", "workspace", "workspace_id", SERVICE_READS),
    "client_metrics": Rel("view", "workspace", "workspace_id", MEMBER_READS, write=NOBODY),
    "webhook_health": Rel("view", "workspace", "workspace_id", MEMBER_READS, write=NOBODY),
    "webhook_delivery_log": Rel("view", "workspace", "workspace_id", MEMBER_READS, write=NOBODY, hidden=("payload",)),
    "metric_drift_latest": Rel("view", "workspace", "workspace_id", MEMBER_READS, write=NOBODY),
    "workspace_mailbox_sync": Rel("view", "workspace", "workspace_id", MEMBER_READS, write=NOBODY),
    # configuration: pricing rules are read by mailbox_price() with the caller's rights (any signed-in user);
    # custom-variable aliases by the ingest only
    "mailbox_pricing_rules": Rel("table", "pricing", "pattern", (DENIED, ALL, ALL, ALL)),
    "lead_custom_variable_aliases": Rel("table", "alias", "alias", SERVICE_READS),
}


# -- functions -------------------------------------------------------------------------------------------------
Args = Callable[[Seed], dict[str, Any]]


@dataclass(frozen=True)
class RowsBy:
    """A set-returning read: call once with `args`; the owners are the labels found in column `column`."""

    scope: str
    column: str
    args: Args
    #: (member, nonmember, service)
    levels: tuple[Level, Level, Level]


@dataclass(frozen=True)
class PerLabel:
    """A per-subject read: call once per label with `{arg: label}`; the label is seen when `seen(rows)`."""

    scope: str
    arg: str
    seen: Callable[[list[dict[str, Any]]], bool]
    levels: tuple[Level, Level, Level]


@dataclass(frozen=True)
class Fn:
    #: PostgreSQL roles with EXECUTE among anon, authenticated, service_role
    execute: frozenset[str]
    #: REST arguments of the probe call; None: every IN argument null (safe: mutating functions then fail
    #: validation or write nothing). Overridden where a null argument would make a call that writes.
    args: Args | None = None
    reads: RowsBy | PerLabel | None = None


READERS = frozenset({"authenticated", "service_role"})
SERVICE = frozenset({"service_role"})


def internal() -> Fn:
    """Owner only: triggers and `_helpers` that nobody may call through the API."""
    return Fn(NOBODY)


def _tomorrow(_: Seed) -> str:
    return (datetime.now(UTC) + timedelta(days=1)).isoformat()


#: schema bisonsync_private: not exposed by the API (PostgREST serves public only). Its functions are listed here
#: with the roles holding EXECUTE; through /rest/v1 every identity must fail to find them.
PRIVATE = "bisonsync_private."
PRIVATE_FUNCTIONS: dict[str, Fn] = {
    # triggers and internal helpers
    "_set_updated_at()": internal(),
    "_workspaces_validate()": internal(),
    "_client_leads_guard()": internal(),
    "_sender_emails_cache_normalize()": internal(),
    "_ensure_workspace(text,bigint,text)": internal(),
    "_custom_variables_array(jsonb)": internal(),
    "_ledger_event_type(text)": internal(),
    "_rename_workspace(uuid,text)": internal(),
    "_workspace_id_by_name(text)": internal(),
    "_metric_column(text)": internal(),
    "_increment_metric(uuid,text,integer,timestamp with time zone)": internal(),
    "_try_bigint(text)": internal(),
    "_try_timestamptz(text)": internal(),
    "_custom_variable(jsonb,text[])": internal(),
    "lead_custom_variable(jsonb,text)": internal(),
    "_merge_custom_variables(jsonb,jsonb)": internal(),
    "_upsert_client_lead(uuid,jsonb,text,timestamp with time zone,jsonb,jsonb,jsonb,text,boolean)": internal(),
    "_upsert_lead_reply(uuid,uuid,jsonb,jsonb,jsonb,jsonb,boolean,timestamp with time zone)": internal(),
    "_apply_delivery_effects(bigint)": internal(),
    "_touch_activity(uuid,text,text,text,timestamp with time zone)": internal(),
    "_record_rejected(text,uuid,text,bigint,text,timestamp with time zone)": internal(),
    "_apply_mailbox_event(uuid,text,jsonb,timestamp with time zone,bigint)": internal(),
    "_sync_run_for_write(uuid,text)": internal(),
    "_sync_workspace_json(sync_run_workspaces)": internal(),
    "_sync_run_totals(uuid)": internal(),
    "_sync_run_json(uuid)": internal(),
    "_close_sync_run(uuid,text)": internal(),
    # (re)creates the functions that know the mailbox statuses (run by migrations)
    "define_mailbox_statuses(text[])": internal(),
    # the steps of sync_mailbox_page
    "sync_page_check(integer,jsonb)": internal(),
    "sync_page_progress(uuid,uuid,integer,text)": internal(),
    "sync_page_upsert(uuid,uuid,jsonb,timestamp with time zone)": internal(),
    "sync_page_advance(uuid,uuid,integer,text,integer,text,timestamp with time zone,integer,integer,integer,integer,"
    "integer)": internal(),
    "_require_vault()": internal(),
    "_ensure_realtime_broadcast_policy()": internal(),
    "bisonsync_broadcast_change()": internal(),
    # run by RLS policies as the querying role (workspaces, provider history, realtime.messages...): authenticated
    # keeps EXECUTE; their effect is checked by the relation reads above and the realtime tests
    "is_workspace_member(uuid)": Fn(READERS),
    "is_instance_member(text)": Fn(READERS),
    "bisonsync_topic_workspace(text)": Fn(READERS),
}


FUNCTIONS: dict[str, Fn] = {
    # pure helpers (checks and triggers run them with the writer's privileges)
    "clean_label(text)": Fn(READERS),
    "workspace_label(text)": Fn(READERS),
    # the payload only for roles that may read webhook_deliveries.payload (null for members)
    "webhook_delivery_payload(bigint)": Fn(READERS),
    "is_valid_timezone(text)": Fn(READERS),
    "pipeline_stage_rank(text)": Fn(READERS),
    "mailbox_status_wins(timestamp with time zone,text,text,timestamp with time zone,text,text)": Fn(READERS),
    "mailbox_status_canonical(text)": Fn(READERS),
    "mailbox_statuses()": Fn(READERS),
    "sync_unverified_streak(uuid,timestamp with time zone)": Fn(READERS),
    "mailbox_price(text,text,integer)": Fn(READERS),
    "mailbox_daily_volume(text,text,integer)": Fn(READERS),
    # dashboard reads: RLS of the caller applies
    "client_metrics_mtd(timestamp with time zone)": Fn(
        READERS, reads=RowsBy("workspace", "workspace_id", lambda s: {"p_as_of": _tomorrow(s)}, (OWN, NONE, ALL))
    ),
    "live_mailboxes(uuid)": Fn(
        READERS, reads=RowsBy("workspace", "workspace_id", lambda s: {"p_workspace_id": None}, (OWN, NONE, ALL))
    ),
    "aggregate_provider_stats(uuid)": Fn(
        READERS, reads=RowsBy("instance", "instance", lambda s: {"p_workspace_id": None}, (OWN, NONE, ALL))
    ),
    "get_account_status_stats(uuid)": Fn(
        READERS,
        reads=PerLabel("workspace", "p_workspace_id", lambda r: bool(r) and r[0]["total"] > 0, (OWN, NONE, ALL)),
    ),
    "check_provider_reply_rate_drop(numeric,date)": Fn(
        READERS,
        reads=RowsBy(
            "instance",
            "instance",
            lambda s: {"p_threshold_pct": 20, "p_as_of": s.drop_dates[1].isoformat()},
            (OWN, NONE, ALL),
        ),
    ),
    "account_status_by_workspace()": Fn(
        READERS, reads=RowsBy("workspace", "workspace_id", lambda s: {}, (OWN, NONE, ALL))
    ),
    # the service's functions
    "bisonsync_ping()": Fn(SERVICE),
    "upsert_workspace(text,bigint,text,text)": Fn(SERVICE),
    "resolve_webhook_token(text)": Fn(SERVICE),
    "set_webhook_token(uuid,text)": Fn(SERVICE),
    "increment_metric(text,text,integer)": Fn(SERVICE),
    "increment_metric(uuid,text,integer,timestamp with time zone)": Fn(SERVICE),
    "upsert_client_lead(uuid,jsonb,text,timestamp with time zone,jsonb,jsonb,jsonb,text)": Fn(SERVICE),
    "apply_mailbox_status(uuid,text,text,timestamp with time zone,bigint)": Fn(SERVICE),
    "snapshot_provider_performance(date)": Fn(SERVICE),
    "ingest_delivery(text,text,bigint,text,text,jsonb,timestamp with time zone,numeric,text,text[])": Fn(SERVICE),
    # nulls would record a failed delivery: an instance the workspaces check refuses makes the probe write nothing
    "record_failed_delivery(text,text,bigint,text,text,jsonb,text,timestamp with time zone,numeric)": Fn(
        SERVICE,
        args=lambda s: {
            "p_dedup_key": None,
            "p_instance": "rls/probe",
            "p_bison_workspace_id": 1,
            "p_workspace_name": None,
            "p_event_type": None,
            "p_payload": None,
            "p_error": None,
        },
    ),
    # always writes a rejected ledger row: file it under the seeded "theirs" workspace
    "record_rejected_delivery(text,uuid,text,timestamp with time zone)": Fn(
        SERVICE,
        args=lambda s: {
            "p_event_type": "rls_probe",
            "p_workspace_id": str(s.ws["theirs"]),
            "p_error": "rls matrix probe",
        },
    ),
    "replay_delivery(bigint)": Fn(SERVICE),
    "prune_ledger(timestamp with time zone)": Fn(SERVICE, args=lambda s: {"p_now": "1970-01-02T00:00:00Z"}),
    "list_deliveries(text,timestamp with time zone,timestamp with time zone,text,integer)": Fn(SERVICE),
    "record_metric_drift(uuid,date,date,jsonb,timestamp with time zone)": Fn(SERVICE),
    "record_alerts(jsonb)": Fn(SERVICE),
    # nulls would lease every due alert: claim as of 1970, when nothing was due
    "claim_alerts(integer,integer,timestamp with time zone)": Fn(
        SERVICE, args=lambda s: {"p_limit": 1, "p_lease_seconds": 1, "p_now": "1970-01-02T00:00:00Z"}
    ),
    "finish_alerts(jsonb)": Fn(SERVICE),
    "advance_alert_scan(text,timestamp with time zone)": Fn(SERVICE),
    "alert_mailbox_transitions(timestamp with time zone,timestamp with time zone,jsonb,integer)": Fn(SERVICE),
    "alert_webhook_silence(timestamp with time zone,integer,jsonb)": Fn(
        SERVICE,
        reads=RowsBy(
            "workspace",
            "workspace_id",
            lambda s: {
                "p_now": _tomorrow(s),
                "p_silence_minutes": 1,
                "p_workspace_ids": [str(w) for w in s.ws.values()],
            },
            (DENIED, DENIED, ALL),
        ),
    ),
    "alert_sync_failures(timestamp with time zone,timestamp with time zone,jsonb,integer)": Fn(SERVICE),
    "start_sync_run(text,text,integer,text,integer)": Fn(SERVICE),
    "heartbeat_sync_run(uuid,text,integer)": Fn(SERVICE),
    "release_sync_lease(text,text)": Fn(SERVICE),
    "finish_sync_run(uuid,text)": Fn(SERVICE),
    "sync_mailbox_page(uuid,uuid,integer,text,jsonb,timestamp with time zone,integer,text,text)": Fn(SERVICE),
    "finish_workspace_sync(uuid,uuid,boolean,text,text)": Fn(SERVICE),
    "workspace_api_key_refs(text)": Fn(SERVICE),
    # workspace keys in Supabase Vault (vault engineer, issue 15)
    "store_workspace_api_key(uuid,text,text,boolean)": Fn(SERVICE),
    "workspace_api_key_status(text)": Fn(SERVICE),
    "workspace_api_keys(text)": Fn(SERVICE),
    "mark_workspace_api_key(uuid,boolean,text)": Fn(SERVICE),
    # opt-in broadcast from the database (realtime engineer, issue 14)
    "set_realtime_broadcast(boolean)": Fn(SERVICE, args=lambda s: {"p_enabled": False}),
    "realtime_broadcast_enabled()": Fn(READERS),
}


# -- catalog ---------------------------------------------------------------------------------------------------
RELATIONS_SQL = """
select case when n.nspname = 'public' then c.relname::text else n.nspname || '.' || c.relname end as name,
       c.relkind::text as kind, c.relrowsecurity as rls,
       exists (select 1 from pg_publication_tables p
                where p.pubname = 'supabase_realtime' and p.schemaname = 'public' and p.tablename = c.relname)
         as published
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname in ('public', 'bisonsync_private') and c.relkind in ('r', 'p', 'v', 'm', 'f')
"""
FUNCTIONS_SQL = """
select p.oid, p.oid::regprocedure::text as signature, p.proname::text as name, n.nspname::text as schema,
       array(select a.name from unnest(p.proargnames, p.proargmodes) as a(name, mode)
              where coalesce(a.mode, 'i') in ('i', 'b', 'v')) as in_args,
       p.pronargs = 0 or p.proargnames is not null as named
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname in ('public', 'bisonsync_private')
"""
#: every function of both schemas, by signature as the catalog prints it with search_path = public
ALL_FUNCTIONS: dict[str, Fn] = FUNCTIONS | {PRIVATE + k: v for k, v in PRIVATE_FUNCTIONS.items()}


async def _catalog(dsn: str) -> tuple[dict[str, asyncpg.Record], dict[str, asyncpg.Record]]:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("set search_path = public")  # public signatures unqualified, as in the matrix
        relations = {r["name"]: r for r in await conn.fetch(RELATIONS_SQL)}
        functions = {r["signature"].replace(", ", ","): r for r in await conn.fetch(FUNCTIONS_SQL)}
    finally:
        await conn.close()
    return relations, functions


async def test_every_public_object_is_in_the_matrix(migrated_database: str) -> None:
    """Built from the migrations on disk into a fresh database: nothing but what the migrations create."""
    relations, functions = await _catalog(migrated_database)
    missing = sorted(set(relations) - set(RELATIONS)) + sorted(set(functions) - set(ALL_FUNCTIONS))
    stale = sorted(set(RELATIONS) - set(relations)) + sorted(set(ALL_FUNCTIONS) - set(functions))
    assert not missing, f"objects without an entry in the RLS matrix (review their access): {missing}"
    assert not stale, f"matrix entries whose object no migration creates any more: {stale}"
    kinds = {name: "view" if r["kind"] == "v" else "table" for name, r in relations.items()}
    assert {n: e.kind for n, e in RELATIONS.items()} == kinds
    assert sorted(n for n, r in relations.items() if r["kind"] != "v" and not r["rls"]) == [], "RLS must be on"
    published = sorted(n for n, r in relations.items() if r["published"])
    assert published == sorted(n for n, e in RELATIONS.items() if e.realtime), "realtime publication differs"
    # internal helpers live in bisonsync_private, which the API does not expose
    exposed_helpers = sorted(sig for sig, r in functions.items() if r["schema"] == "public" and sig.startswith("_"))
    assert exposed_helpers == [], f"`_` helpers belong in bisonsync_private, not public: {exposed_helpers}"


async def test_private_schema_is_not_exposed(devstack: StackHandle) -> None:
    """GET /rest/v1/ (the OpenAPI description) lists no function of bisonsync_private, nor any `_` helper; the
    API roles have no USAGE on the schema (policies, triggers and public functions reach its functions by oid)."""
    _, functions = await _catalog(devstack.env.database_url)
    private = {r["name"] for r in functions.values() if r["schema"] == "bisonsync_private"}
    public = {r["name"] for r in functions.values() if r["schema"] == "public"}
    assert "is_workspace_member" in private and "sync_page_upsert" in private
    async with httpx.AsyncClient(base_url=devstack.env.supabase_url, timeout=30) as http:
        response = await http.get(
            "/rest/v1/",
            headers={
                "apikey": devstack.env.service_role_key,
                "Authorization": f"Bearer {devstack.env.service_role_key}",
            },
        )
    assert response.status_code == 200, response.text
    paths = set(response.json()["paths"])
    listed = {path.removeprefix("/rpc/") for path in paths if path.startswith("/rpc/")}
    assert listed, "the root lists the public functions"
    assert not (listed & (private - public)), f"private functions listed: {sorted(listed & private)}"
    assert not [name for name in listed if name.startswith("_")]
    conn = await asyncpg.connect(devstack.env.database_url)
    try:
        for role in ("anon", "authenticated", "service_role"):
            assert not await conn.fetchval("select has_schema_privilege($1, 'bisonsync_private', 'usage')", role)
    finally:
        await conn.close()


# -- the seeded world and the clients --------------------------------------------------------------------------
async def _seed_configuration(db: asyncpg.Connection, seed: Seed) -> None:
    """A row of each configuration table, labelled by this run's tag (a pattern / alias no real value has)."""
    label = f"rls-{seed.tag}"
    await db.execute(
        "insert into public.mailbox_pricing_rules (measure, position, match_on, pattern, amount) "
        "values ('price', 1000000 + (select count(*) from public.mailbox_pricing_rules), 'reseller', $1, 0)",
        label,
    )
    await db.execute(
        "insert into public.lead_custom_variable_aliases (lead_column, alias, preference) values ('phone', $1, 1000)",
        label,
    )
    seed.universe["pricing"] = {label: "global"}
    seed.universe["alias"] = {label: "global"}


@pytest.fixture(scope="module")
async def world(devstack: StackHandle) -> AsyncIterator[tuple[Seed, dict[str, AsyncClient]]]:
    db = await asyncpg.connect(devstack.env.database_url)
    try:
        seed = await seed_world(db, 100_000 + uuid.uuid4().int % 1_000_000_000)
        await _seed_configuration(db, seed)
    finally:
        await db.close()
    clients = await api_clients(devstack, seed)
    try:
        yield seed, clients
    finally:
        await close_clients(clients)


@pytest.fixture(scope="module")
async def session_catalog(devstack: StackHandle) -> tuple[dict[str, asyncpg.Record], dict[str, asyncpg.Record]]:
    return await _catalog(devstack.env.database_url)


def expected_owners(level: Level, universe: dict[str, str]) -> set[str] | None:
    """The owners a read at `level` returns (None: refused)."""
    return {DENIED: None, NONE: set(), OWN: {"mine"}, ALL: set(universe.values())}[level]


def owners_seen(result: Outcome, column: str, universe: dict[str, str]) -> set[str] | None:
    if result.denied:
        return None
    assert result.code is None, f"unexpected error {result}"
    return {universe[str(row[column])] for row in result.rows if str(row.get(column)) in universe}


async def _write_probe_column(devstack: StackHandle, table: str, key: str) -> str:
    """A NOT NULL column to set to null: privilege-passing writes then fail (23502) after reaching a row, so the
    probe tells "refused" from "allowed" without changing data. The label column when it qualifies."""
    conn = await asyncpg.connect(devstack.env.database_url)
    try:
        column: str | None = await conn.fetchval(
            "select a.attname from pg_attribute a where a.attrelid = ('public.' || quote_ident($1))::regclass "
            "and a.attnum > 0 and not a.attisdropped and a.attnotnull and a.attidentity = '' "
            "and a.attgenerated = '' order by a.attname = $2 desc, a.attnum limit 1",
            table,
            key,
        )
    finally:
        await conn.close()
    return column or key


@pytest.mark.parametrize("name", sorted(RELATIONS))
async def test_relation_access(
    name: str,
    world: tuple[Seed, dict[str, AsyncClient]],
    session_catalog: tuple[dict[str, asyncpg.Record], dict[str, asyncpg.Record]],
    devstack: StackHandle,
) -> None:
    seed, clients = world
    entry = RELATIONS[name]
    if name not in session_catalog[0]:
        pytest.skip(f"{name} is newer than this session's database")
    universe = seed.universe[entry.scope]
    labels = list(universe)
    probe = await _write_probe_column(devstack, name, entry.key)
    problems: list[str] = []
    for identity, level in zip(IDENTITIES, entry.read, strict=True):
        client = clients[identity]
        # read: whose rows come back
        got = owners_seen(
            await outcome(client.table(name).select(entry.key).in_(entry.key, labels).execute()), entry.key, universe
        )
        want = expected_owners(level, universe)
        if got != want:
            problems.append(
                f"{identity} read: expected {want if want is not None else 'refused'}, got "
                f"{got if got is not None else 'refused'}"
            )
        if entry.hidden and PG_ROLE[identity] == "authenticated" and level != DENIED:
            for column in entry.hidden:
                hidden = await outcome(client.table(name).select(column).limit(1).execute())
                if not hidden.denied:
                    problems.append(f"{identity} may select hidden column {column}: {hidden}")
        # writes: insert a row, update the seeded rows, delete nothing (a label no row has)
        allowed = identity in entry.write
        insert = await outcome(client.table(name).insert({probe: None}, returning=ReturnMethod.minimal).execute())
        update = await outcome(client.table(name).update({probe: None}).in_(entry.key, labels).execute())
        # `key = a and key <> a`: a filter of the column's own type that matches no row
        nothing = client.table(name).delete().eq(entry.key, labels[0]).neq(entry.key, labels[0])
        delete = await outcome(nothing.execute())
        for verb, result in (("insert", insert), ("update", update), ("delete", delete)):
            if allowed:
                # allowed and reaching the seeded rows: the null probe is refused by the NOT NULL constraint;
                # the no-match delete succeeds
                ok = result.code == "23502" if verb != "delete" else result.code is None
            elif entry.kind == "view":
                ok = result.code in ("42501", "55000")  # not writable: no privilege, or not an updatable view
            else:
                ok = result.denied
            if not ok:
                problems.append(f"{identity} {verb}: expected {'allowed' if allowed else 'refused'}, got {result}")
    assert not problems, f"{name}: " + "; ".join(problems)


@pytest.mark.parametrize("signature", sorted(ALL_FUNCTIONS))
async def test_function_access(
    signature: str,
    world: tuple[Seed, dict[str, AsyncClient]],
    session_catalog: tuple[dict[str, asyncpg.Record], dict[str, asyncpg.Record]],
    devstack: StackHandle,
) -> None:
    seed, clients = world
    entry = ALL_FUNCTIONS[signature]
    info = session_catalog[1].get(signature)
    if info is None:
        pytest.skip(f"{signature} is newer than this session's database")
    problems: list[str] = []
    conn = await asyncpg.connect(devstack.env.database_url)
    try:
        for role in ("anon", "authenticated", "service_role"):
            granted = await conn.fetchval("select has_function_privilege($1, $2::oid, 'execute')", role, info["oid"])
            if granted != (role in entry.execute):
                problems.append(f"catalog: {role} {'has' if granted else 'lacks'} EXECUTE")
    finally:
        await conn.close()
    assert info["named"], f"{signature}: unnamed arguments cannot be called through /rest/v1"
    args = entry.args(seed) if entry.args else {name: None for name in info["in_args"]}
    for identity in ("anon", "member", "service"):
        result = await outcome(clients[identity].rpc(info["name"], args).execute())
        if info["schema"] != "public":
            # not exposed: whatever the EXECUTE privilege, /rest/v1 does not find it
            if result.code != "PGRST202":
                problems.append(f"{identity} reached a private function through the API: {result}")
            continue
        allowed = PG_ROLE[identity] in entry.execute
        if allowed and (result.denied or (result.code or "").startswith("PGRST")):
            problems.append(f"{identity} could not execute: {result}")
        if not allowed and not result.denied:
            problems.append(f"{identity} executed it: {result}")
    if entry.reads is not None:
        problems += await _check_reads(info["name"], entry, seed, clients)
    assert not problems, f"{signature}: " + "; ".join(problems)


async def _check_reads(function: str, entry: Fn, seed: Seed, clients: dict[str, AsyncClient]) -> list[str]:
    reads = entry.reads
    assert reads is not None
    universe = seed.universe[reads.scope]
    problems: list[str] = []
    for identity, level in zip(("member", "nonmember", "service"), reads.levels, strict=True):
        if (level == DENIED) == (PG_ROLE[identity] in entry.execute):
            problems.append(f"matrix: {identity} level {level} contradicts EXECUTE {sorted(entry.execute)}")
        client = clients[identity]
        got: set[str] | None
        if isinstance(reads, RowsBy):
            result = await outcome(client.rpc(function, reads.args(seed)).execute())
            got = owners_seen(result, reads.column, universe)
        else:
            got = set()
            for label, owner in universe.items():
                result = await outcome(client.rpc(function, {reads.arg: label}).execute())
                if result.denied:
                    got = None
                    break
                assert result.code is None, f"{identity} {function}({label}): {result}"
                if reads.seen(result.rows):
                    got.add(owner)
        want = expected_owners(level, universe)
        if got != want:
            problems.append(
                f"{identity} reads: expected {want if want is not None else 'refused'}, got "
                f"{got if got is not None else 'refused'}"
            )
    return problems


# -- realtime --------------------------------------------------------------------------------------------------
def _saw_sentinel(listener: Listener) -> bool:
    return any(e["table"] == "sentinel" for e in listener.events)


async def test_realtime_delivers_each_subscriber_exactly_its_rows(
    world: tuple[Seed, dict[str, AsyncClient]], devstack: StackHandle
) -> None:
    """For every published table: an UPDATE of each seeded row reaches the member for their workspace only, the
    non-member and anon not at all, service_role for every workspace. A DELETE reaches every subscriber that may
    select the table, member or not (Realtime does not RLS-check deletes), cut to the primary key for everyone,
    service_role included (RLS is on), so a non-member learns that *some* row id went away and nothing else."""
    seed, clients = world
    published = sorted(n for n, e in RELATIONS.items() if e.realtime)
    db = await asyncpg.connect(devstack.env.database_url)
    schema = f"rls_rt_{seed.tag}"
    await db.execute(f"create schema {schema}")
    try:
        await db.execute(f"create table {schema}.sentinel (id int primary key)")
        await db.execute(f"grant usage on schema {schema} to anon, authenticated, service_role")
        await db.execute(f"grant select on {schema}.sentinel to anon, authenticated, service_role")
        await db.execute(f"alter publication supabase_realtime add table {schema}.sentinel")
        tokens = {
            "member": devstack.user_token(seed.users["member"]),
            "nonmember": devstack.user_token(seed.users["nonmember"]),
        }
        for identity, token in tokens.items():
            await clients[identity].realtime.set_auth(token)
        listeners: dict[str, Listener] = {}
        for identity in IDENTITIES:
            listener = Listener(clients[identity], f"rls-{identity}-{seed.tag}")
            for table in published:
                listener.on(table)
            listeners[identity] = listener.on("sentinel", schema=schema)
        await asyncio.gather(*(listener.subscribe() for listener in listeners.values()))

        # an UPDATE of every seeded row of every published table (a no-op update still emits an event)
        for table in published:
            entry = RELATIONS[table]
            await db.execute(
                f"update public.{table} set {entry.key} = {entry.key} where {entry.key}::text = any($1::text[])",
                list(seed.universe[entry.scope]),
            )
        # a row of "theirs", inserted and deleted
        gone = await db.fetchval(
            "insert into public.provider_performance_history (email_provider, instance, snapshot_date) "
            "values ('Realtime', $1, '2031-02-01') returning id",
            seed.instance["theirs"],
        )
        await db.execute("delete from public.provider_performance_history where id = $1", gone)
        await db.execute(f"insert into {schema}.sentinel values (1)")
        for listener in listeners.values():
            await listener.wait_for(functools.partial(_saw_sentinel, listener), "the sentinel")
    finally:
        await db.execute(f"drop schema {schema} cascade")
        await db.close()

    expected = {"anon": NONE, "member": OWN, "nonmember": NONE, "service": ALL}
    problems: list[str] = []
    for identity, listener in listeners.items():
        for table in published:
            entry = RELATIONS[table]
            universe = seed.universe[entry.scope]
            got = {
                universe[str(e["record"][entry.key])]
                for e in listener.events
                if e["table"] == table
                and e["type"] in ("INSERT", "UPDATE")
                and str(e["record"].get(entry.key)) in universe
            }
            want = expected_owners(expected[identity], universe)  # type: ignore[arg-type]
            if got != want:
                problems.append(f"{identity} {table}: expected changes of {want}, got {got}")
        deletes = [
            e["old_record"]
            for e in listener.events
            if e["table"] == "provider_performance_history"
            and e["type"] == "DELETE"
            and str(e["old_record"].get("id")) == str(gone)
        ]
        # anon has no SELECT privilege at all; everyone else gets the key of the deleted row and nothing more
        ok = deletes == ([] if identity == "anon" else [{"id": str(gone)}])
        if not ok:
            problems.append(f"{identity} DELETE of theirs: got {deletes}")
    assert not problems, "; ".join(problems)

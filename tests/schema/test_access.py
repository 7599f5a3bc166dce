"""Who may read and execute what: RLS on every table, anon nothing, members their workspaces, service_role all."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from tests.schema.support import WorkspaceFactory, acting_as, add_member, create_user, ingest, workspace_id

MEMBER_TABLES = [
    "workspaces",
    "workspace_name_history",
    "client_metrics_daily",
    "client_leads",
    "lead_replies",
    "sender_emails_cache",
    "mailbox_status_history",
    "webhook_deliveries",
    "webhook_activity",
]
MEMBER_VIEWS = ["client_metrics", "webhook_health"]
SERVICE_ONLY_TABLES = ["workspace_credentials", "bisonsync_settings"]


async def test_rls_enabled_on_every_table(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity"
    )
    assert [r["relname"] for r in rows] == []


async def test_views_are_security_invoker(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "select c.relname, c.reloptions from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relkind = 'v'"
    )
    assert rows, "expected views"
    for r in rows:
        assert "security_invoker=true" in (r["reloptions"] or []), r["relname"]


async def test_anon_has_no_privilege_on_any_relation(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'S') "
        "and (has_table_privilege('anon', c.oid, 'select') or has_table_privilege('anon', c.oid, 'insert') "
        "  or has_table_privilege('anon', c.oid, 'update') or has_table_privilege('anon', c.oid, 'delete'))"
    )
    assert [r["relname"] for r in rows] == []


async def test_authenticated_never_writes(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relkind in ('r', 'p', 'v') "
        "and (has_table_privilege('authenticated', c.oid, 'insert') "
        "  or has_table_privilege('authenticated', c.oid, 'update') "
        "  or has_table_privilege('authenticated', c.oid, 'delete') "
        "  or has_table_privilege('authenticated', c.oid, 'truncate'))"
    )
    assert [r["relname"] for r in rows] == []


async def test_secrets_tables_have_no_api_grants(conn: asyncpg.Connection) -> None:
    for table in SERVICE_ONLY_TABLES:
        for role in ("anon", "authenticated"):
            assert not await conn.fetchval("select has_table_privilege($1, $2, 'select')", role, f"public.{table}")
        assert await conn.fetchval("select has_table_privilege('service_role', $1, 'select')", f"public.{table}")
    cols = {
        r["column_name"]
        for r in await conn.fetch(
            "select column_name from information_schema.columns "
            "where table_schema = 'public' and table_name = 'workspace_credentials'"
        )
    }
    assert {"webhook_token_hash", "bison_api_key_ref", "slack_webhook_ref"} <= cols
    assert not {"bison_api_key", "slack_webhook_url", "webhook_token"} & cols


async def test_function_execute_rules(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "select p.oid::regprocedure::text as sig, p.proname, p.provolatile::text, "
        "  p.prorettype = 'trigger'::regtype as is_trigger, "
        "  has_function_privilege('anon', p.oid, 'execute') as anon, "
        "  has_function_privilege('authenticated', p.oid, 'execute') as authed, "
        "  has_function_privilege('service_role', p.oid, 'execute') as service "
        "from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public'"
    )
    assert rows
    for r in rows:
        assert not r["anon"], f"anon may execute {r['sig']}"
        if r["proname"].startswith("_"):
            assert not r["authed"] and not r["service"], f"internal {r['sig']} is executable by an API role"
        elif r["authed"]:
            # whatever authenticated may call must be read-only
            assert r["provolatile"] in ("s", "i"), f"authenticated may execute volatile {r['sig']}"
    service_only = [
        "ingest_delivery(text,text,bigint,text,text,jsonb,timestamp with time zone,numeric,text,text[])",
        "replay_delivery(bigint)",
        "record_rejected_delivery(text,uuid,text,timestamp with time zone)",
        "prune_ledger(timestamp with time zone)",
        "increment_metric(uuid,text,integer,timestamp with time zone)",
        "increment_metric(text,text,integer)",
        "upsert_workspace(text,bigint,text,text)",
        "set_webhook_token(uuid,text)",
        "resolve_webhook_token(text)",
        "upsert_client_lead(uuid,jsonb,text,timestamp with time zone,jsonb,jsonb,jsonb,text)",
        "snapshot_provider_performance(date)",
        "apply_mailbox_status(uuid,text,text,timestamp with time zone,bigint)",
    ]
    by_sig = {r["sig"].replace(", ", ","): r for r in rows}
    for sig in service_only:
        r = by_sig[sig]
        assert r["service"] and not r["authed"] and not r["anon"], sig


@pytest.mark.parametrize("role", ["anon", "authenticated"])
@pytest.mark.parametrize(
    "call",
    [
        "select public.increment_metric('Client A', 'emails_sent', 1)",
        "select public.increment_metric(gen_random_uuid(), 'emails_sent', 1, now())",
        "select public.ingest_delivery('k', 'x', 1, 'n', 'email_sent', '{}'::jsonb)",
        "select public.replay_delivery(1)",
        "select public.prune_ledger()",
        "select public.upsert_workspace('x', 1, 'n')",
        "select * from public.resolve_webhook_token('00')",
        "select public.snapshot_provider_performance()",
        "select public.record_rejected_delivery('email_sent', null, 'x')",
    ],
)
async def test_api_roles_cannot_execute_mutating_functions(conn: asyncpg.Connection, role: str, call: str) -> None:
    sub = str(uuid.uuid4()) if role == "authenticated" else None
    async with acting_as(conn, role, sub):
        with pytest.raises(asyncpg.InsufficientPrivilegeError) as exc:
            await conn.execute(call)
    assert exc.value.sqlstate == "42501"


async def test_row_visibility_by_membership(conn: asyncpg.Connection, unique_ws: int) -> None:
    mine, theirs = unique_ws, unique_ws + 1
    for bison_ws in (mine, theirs):
        await ingest(
            conn,
            f"rls-lead-{bison_ws}",
            bison_ws,
            "lead_replied",
            {
                "lead": {"id": bison_ws, "email": f"lead{bison_ws}@example.com"},
                "reply": {"id": bison_ws, "uuid": f"reply-{bison_ws}"},
            },
        )
        await ingest(
            conn,
            f"rls-mbx-{bison_ws}",
            bison_ws,
            "email_account_disconnected",
            {
                "sender_email": {"id": bison_ws, "email": f"rep{bison_ws}@mail.example.com"},
            },
        )
    ws_mine, ws_theirs = await workspace_id(conn, mine), await workspace_id(conn, theirs)
    for bison_ws in (mine, theirs):  # a rename, so workspace_name_history has a row for each
        await conn.execute(
            "select public.upsert_workspace('schema-tests.bison.local', $1, $2)", bison_ws, f"R{bison_ws}"
        )
    await conn.execute(
        "insert into public.workspace_credentials (workspace_id, bison_api_key_ref) values ($1, 'BISON_KEY_A')",
        ws_mine,
    )
    member, stranger = await create_user(conn), await create_user(conn)
    await add_member(conn, member, ws_mine)
    both = [ws_mine, ws_theirs]

    async def visible(table: str) -> set[uuid.UUID]:
        key = "id" if table == "workspaces" else "workspace_id"
        rows = await conn.fetch(f"select distinct {key} as ws from public.{table} where {key} = any($1)", both)
        return {r["ws"] for r in rows}

    async with acting_as(conn, "authenticated", member):
        for table in MEMBER_TABLES + MEMBER_VIEWS:
            assert await visible(table) == {ws_mine}, table
        own = await conn.fetch("select user_id from public.workspace_members")
        assert [str(r["user_id"]) for r in own] == [member]
        assert await conn.fetchval("select count(*) from public.webhook_deliveries where workspace_id = $1", ws_mine)

    async with acting_as(conn, "authenticated", stranger):
        for table in MEMBER_TABLES + MEMBER_VIEWS:
            assert await visible(table) == set(), table
        assert await conn.fetchval("select count(*) from public.workspace_members") == 0

    async with acting_as(conn, "service_role"):
        for table in MEMBER_TABLES + MEMBER_VIEWS:
            assert await visible(table) == {ws_mine, ws_theirs}, table
        assert (
            await conn.fetchval(
                "select bison_api_key_ref from public.workspace_credentials where workspace_id = $1", ws_mine
            )
            == "BISON_KEY_A"
        )

    for table in MEMBER_TABLES + MEMBER_VIEWS + SERVICE_ONLY_TABLES:
        async with acting_as(conn, "anon"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(f"select 1 from public.{table} limit 1")


async def test_members_never_read_payloads_or_credentials(conn: asyncpg.Connection, unique_ws: int) -> None:
    await ingest(conn, f"payload-{unique_ws}", unique_ws, "email_sent", {})
    ws = await workspace_id(conn, unique_ws)
    member = await create_user(conn)
    await add_member(conn, member, ws)
    async with acting_as(conn, "authenticated", member):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("select payload from public.webhook_deliveries")
    async with acting_as(conn, "authenticated", member):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("select * from public.workspace_credentials")
    async with acting_as(conn, "authenticated", member):
        assert await conn.fetchval("select exists (select 1 from public.workspaces where id = $1)", ws)
        assert (
            await conn.fetchval("select status from public.webhook_deliveries where workspace_id = $1", ws) == "applied"
        )


async def test_read_helpers_respect_membership(conn: asyncpg.Connection, make_workspace: WorkspaceFactory) -> None:
    ws = await make_workspace()
    await conn.execute("select public.increment_metric($1::uuid, 'emails_sent', 3)", ws)
    member, stranger = await create_user(conn), await create_user(conn)
    await add_member(conn, member, ws)
    query = "select emails_sent_mtd from public.client_metrics_mtd() where workspace_id = $1"
    async with acting_as(conn, "authenticated", member):
        assert await conn.fetchval(query, ws) == 3
    async with acting_as(conn, "authenticated", stranger):
        assert await conn.fetchval(query, ws) is None
        assert not await conn.fetchval("select exists (select 1 from public.workspaces where id = $1)", ws)


async def test_service_role_writes_tables_directly(conn: asyncpg.Connection, unique_ws: int) -> None:
    """Checks and triggers run with the writer's privileges: service_role needs no internal function."""
    async with acting_as(conn, "service_role"):
        ws = await conn.fetchval(
            "insert into public.workspaces (instance, bison_workspace_id, name, timezone) "
            "values ('direct.bison.local', $1, 'Direct', 'UTC') returning id",
            unique_ws,
        )
        lead = await conn.fetchval(
            "insert into public.client_leads (workspace_id, lead_email, pipeline_stage, interested) "
            "values ($1, ' X@Example.com ', 'interested', true) returning id",
            ws,
        )
        await conn.execute("update public.client_leads set pipeline_stage = 'new', notes = 'n' where id = $1", lead)
        row = await conn.fetchrow(
            "select lead_email, pipeline_stage, interested_at from public.client_leads where id = $1", lead
        )
        assert row is not None
        assert (row["lead_email"], row["pipeline_stage"]) == ("x@example.com", "interested")
        assert row["interested_at"] is not None
        await conn.execute(
            "insert into public.sender_emails_cache (workspace_id, bison_sender_id, email_address, status) "
            "values ($1, 1, 'Rep@Mail.example.com', 'Failed')",
            ws,
        )
        assert await conn.fetchval("select instance from public.sender_emails_cache where workspace_id = $1", ws) == (
            "direct.bison.local"
        )
        assert await conn.fetchval("select public.increment_metric($1::uuid, 'replies', 2)", ws) == 2


async def test_provider_history_is_readable_per_instance(
    conn: asyncpg.Connection, make_workspace: WorkspaceFactory
) -> None:
    mine, other = f"pi-{uuid.uuid4().hex[:8]}.bison.local", f"po-{uuid.uuid4().hex[:8]}.bison.local"
    ws = await make_workspace(instance=mine)
    for instance in (mine, other):
        await conn.execute(
            "insert into public.provider_performance_history (email_provider, instance, snapshot_date) "
            "values ('Google', $1, '2031-01-01')",
            instance,
        )
    member, stranger = await create_user(conn), await create_user(conn)
    await add_member(conn, member, ws)
    query = "select instance from public.provider_performance_history where instance = any($1)"
    async with acting_as(conn, "authenticated", member):
        assert [r["instance"] for r in await conn.fetch(query, [mine, other])] == [mine]
    async with acting_as(conn, "authenticated", stranger):
        assert await conn.fetch(query, [mine, other]) == []

"""The internal schema, the one list of mailbox statuses, and the rules kept as data (pricing, custom-variable
aliases). Rules are changed inside a transaction that is rolled back: the session database is shared."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import pytest

from tests.schema.support import WorkspaceFactory, ingest, workspace_id


@pytest.fixture
async def tx(conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """`conn` inside a transaction that is always rolled back."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        yield conn
    finally:
        await transaction.rollback()


async def test_no_function_names_a_moved_helper_in_public(conn: asyncpg.Connection) -> None:
    """Bodies name functions as text: one still calling `public.<private helper>` fails only when it runs."""
    stale = await conn.fetch(
        """
        with private as (
          select string_agg(distinct p.proname, '|') as names
          from pg_proc p where p.pronamespace = 'bisonsync_private'::regnamespace
        )
        select p.oid::regprocedure::text as fn
        from pg_proc p, private
        where p.pronamespace in ('public'::regnamespace, 'bisonsync_private'::regnamespace)
          and p.prosrc ~ ('public\\.(' || private.names || ')\\M')
        """
    )
    assert [r["fn"] for r in stale] == []
    assert await conn.fetchval("select to_regprocedure('public.is_workspace_member(uuid)')") is None
    assert await conn.fetchval("select to_regprocedure('bisonsync_private.is_workspace_member(uuid)')") is not None


async def test_sync_mailbox_page_is_its_steps(conn: asyncpg.Connection) -> None:
    body: str = await conn.fetchval(
        "select prosrc from pg_proc where oid = 'public.sync_mailbox_page(uuid, uuid, integer, text, jsonb, "
        "timestamptz, integer, text, text)'::regprocedure"
    )
    for step in ("sync_page_check", "sync_page_progress", "sync_page_upsert", "sync_page_advance"):
        assert f"bisonsync_private.{step}(" in body
    assert len(body.strip().splitlines()) < 40


async def test_mailbox_statuses_are_one_list(conn: asyncpg.Connection) -> None:
    statuses = await conn.fetch("select status, precedence from public.mailbox_statuses() order by precedence desc")
    known = [r["status"] for r in statuses]
    assert known == ["Disconnected", "Failed", "pending_deletion", "pending_move", "Not connected", "Connected"]
    for status in known:
        for spelling in (status, status.upper(), status.lower().replace("_", " "), f"  {status.replace(' ', '-')} "):
            assert await conn.fetchval("select public.mailbox_status_canonical($1)", spelling) == status
    assert await conn.fetchval("select public.mailbox_status_canonical(' Warming up ')") == "Warming up"
    assert await conn.fetchval("select public.mailbox_status_canonical(' _ ')") is None
    # the tie-break follows the list; a status not in it ranks below all
    ordered = [*known, "Warming up"]
    for stronger, weaker in itertools.pairwise(ordered):
        assert await conn.fetchval(
            "select public.mailbox_status_wins(now(), 'poll', $1, now(), 'poll', $2)", weaker, stronger
        )
        assert not await conn.fetchval(
            "select public.mailbox_status_wins(now(), 'poll', $1, now(), 'poll', $2)", stronger, weaker
        )
    assert await conn.fetchval("select to_regprocedure('public.mailbox_status_label(text)')") is None


async def test_the_list_is_defined_once(tx: asyncpg.Connection) -> None:
    """One call redefines every function that knows the statuses (rolled back: DDL is transactional)."""
    await tx.execute(
        "select bisonsync_private.define_mailbox_statuses(array['Connected', 'Warming up', 'Not connected', "
        "'pending_move', 'pending_deletion', 'Failed', 'Disconnected'])"
    )
    assert await tx.fetchval("select precedence from public.mailbox_statuses() where status = 'Warming up'") == 2
    assert await tx.fetchval("select public.mailbox_status_canonical('WARMING_UP')") == "Warming up"
    assert await tx.fetchval(
        "select public.mailbox_status_wins(now(), 'poll', 'Connected', now(), 'poll', 'warming up')"
    )
    for bad in ("array['Connected', 'connected']", "array[' Connected']", "array[]::text[]"):
        with pytest.raises(asyncpg.InvalidParameterValueError):
            async with tx.transaction():  # a savepoint: the outer transaction goes on
                await tx.execute(f"select bisonsync_private.define_mailbox_statuses({bad})")


STATUS_FUNCTIONS = (
    "public.mailbox_statuses()",
    "public.mailbox_status_canonical(text)",
    "public.mailbox_status_wins(timestamptz, text, text, timestamptz, text, text)",
)


async def test_status_functions_are_inlined_and_bound_at_creation(tx: asyncpg.Connection) -> None:
    """They run per mailbox in every sync page: no SET clause (it stops inlining), a SQL-standard body (names
    bound when created), so a caller's search_path cannot redirect them, and a plan shows no function call."""
    for signature in STATUS_FUNCTIONS:
        row = await tx.fetchrow(
            "select proconfig, prosqlbody is not null as atomic from pg_proc where oid = $1::regprocedure", signature
        )
        assert row is not None and row["proconfig"] is None and row["atomic"], signature
    await tx.execute(
        """
        create schema probe_shadow;
        create function probe_shadow.lower(text) returns text language sql as $$ select 'hijacked' $$;
        create function probe_shadow.btrim(text) returns text language sql as $$ select 'hijacked' $$;
        set local search_path = probe_shadow, pg_catalog, public;
        """
    )
    assert await tx.fetchval("select public.mailbox_status_canonical(' DISCONNECTED ')") == "Disconnected"
    assert await tx.fetchval("select public.mailbox_status_wins(now(), 'poll', 'Connected', now(), 'poll', 'failed')")
    plan = "\n".join(
        r[0]
        for r in await tx.fetch(
            "explain (verbose, format text) select public.mailbox_status_wins(now(), 'poll', s, now(), 'poll', 'x') "
            "from (values ('Connected'), ('failed')) v(s)"
        )
    )
    assert "Output:" in plan and "regexp_replace" in plan, plan
    assert "mailbox_status" not in plan, plan


async def test_history_statuses_are_canonical(conn: asyncpg.Connection, make_workspace: WorkspaceFactory) -> None:
    ws = await make_workspace()
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute(
            "insert into public.mailbox_status_history (workspace_id, bison_sender_id, email_address, old_status, "
            "new_status, source, event_at) values ($1, 1, 'a@example.com', 'Connected', 'disconnected', 'poll', "
            "now())",
            ws,
        )


async def test_added_mailbox_keeps_a_status_not_known_yet(conn: asyncpg.Connection, unique_ws: int) -> None:
    """Like the poll: the webhook's email_account_added keeps an unknown status as sent (not 'Connected')."""
    for sender_id, sent, stored in ((21, "Warming up", "Warming up"), (22, "PENDING-MOVE", "pending_move")):
        sender = {"sender_email": {"id": sender_id, "email": f"m{sender_id}@mail.example.com", "status": sent}}
        result = await ingest(conn, f"added-{unique_ws}-{sender_id}", unique_ws, "email_account_added", sender)
        assert result["status"] == "applied", result
        ws = await workspace_id(conn, unique_ws)
        status = await conn.fetchval(
            "select status from public.sender_emails_cache where workspace_id = $1 and bison_sender_id = $2",
            ws,
            sender_id,
        )
        assert status == stored


async def price(conn: asyncpg.Connection, provider: str | None, reseller: str | None, n: int | None) -> Decimal:
    value: Decimal = await conn.fetchval("select public.mailbox_price($1, $2, $3)", provider, reseller, n)
    return value


async def volume(conn: asyncpg.Connection, provider: str | None, reseller: str | None, n: int | None) -> int:
    value: int = await conn.fetchval("select public.mailbox_daily_volume($1, $2, $3)", provider, reseller, n)
    return value


async def test_pricing_rules_are_rows(tx: asyncpg.Connection) -> None:
    # the seeded rules
    assert await price(tx, "Google", None, 1) == Decimal("3.00")
    assert await price(tx, None, "My CheapInboxes Plan", 4) == Decimal("3.00")
    assert await price(tx, None, "ScaledMail", 3) == Decimal("16.67")
    assert await price(tx, "Microsoft", None, 1) == 0
    assert await volume(tx, None, "ScaledMail", 30) == 8
    assert await volume(tx, None, "Mailr", 4) == 123
    # a new reseller is a row, not a release; the first matching rule by position wins
    await tx.execute(
        "insert into public.mailbox_pricing_rules (measure, position, match_on, match_kind, pattern, amount, "
        "per_domain_mailbox) values ('price', 5, 'reseller', 'equals', 'inboxkit', 40, true), "
        "('daily_volume', 5, 'reseller', 'contains', 'inboxkit', 15, false)"
    )
    assert await price(tx, "Google", "InboxKit", 8) == Decimal("5.00")
    assert await volume(tx, "Google", "the InboxKit reseller", 8) == 15
    await tx.execute(
        "update public.mailbox_pricing_rules set amount = 4 where measure = 'price' and pattern = 'google'"
    )
    assert await price(tx, "GOOGLE", None, None) == Decimal("4.00")
    with pytest.raises(asyncpg.CheckViolationError):
        await tx.execute(
            "insert into public.mailbox_pricing_rules (measure, position, match_on, pattern, amount) "
            "values ('price', 6, 'reseller', 'Not Lower', 1)"
        )


async def test_custom_variable_aliases_are_rows(tx: asyncpg.Connection, make_workspace: WorkspaceFactory) -> None:
    ws: uuid.UUID = await make_workspace()
    await tx.execute(
        "insert into public.lead_custom_variable_aliases (lead_column, alias, preference) "
        "values ('phone', 'whatsapp', 1)"
    )
    lead_id: uuid.UUID = await tx.fetchval(
        "select public.upsert_client_lead($1, $2, 'replied')",
        ws,
        {
            "id": 7,
            "email": "alias@example.com",
            "custom_variables": [
                {"name": "Phone", "value": "555-0199"},
                {"name": " WhatsApp ", "value": "+1 555 0142"},
                {"name": "Town", "value": "Lincoln"},
            ],
        },
    )
    row = await tx.fetchrow("select phone, city from public.client_leads where id = $1", lead_id)
    assert row is not None
    # 'whatsapp' (preference 1) now beats the seeded 'phone' (preference 5); 'town' is a seeded city alias
    assert (row["phone"], row["city"]) == ("+1 555 0142", "Lincoln")
    with pytest.raises(asyncpg.CheckViolationError):
        await tx.execute(
            "insert into public.lead_custom_variable_aliases (lead_column, alias, preference) values ('fax', 'fax', 1)"
        )


async def test_sync_page_steps_keep_their_plans(conn: asyncpg.Connection) -> None:
    """Every step of sync_mailbox_page runs once per page: none is a SQL function with a SET clause (PostgreSQL 15
    plans such a function's query again on every call); PL/pgSQL keeps its plans for the session."""
    rows = await conn.fetch(
        """
        select p.proname, l.lanname, p.proconfig
          from pg_proc p join pg_language l on l.oid = p.prolang
         where p.oid = 'public.sync_mailbox_page'::regproc
            or (p.pronamespace = 'bisonsync_private'::regnamespace and p.proname like 'sync_page_%')
        """
    )
    assert len(rows) == 5
    replanned = [r["proname"] for r in rows if r["lanname"] == "sql" and r["proconfig"]]
    assert replanned == []

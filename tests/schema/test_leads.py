"""The lead pipeline: match by bison id then email, stage monotonic, interested_at once, notes kept, variables."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from tests.schema.support import WorkspaceFactory

T0 = dt.datetime(2026, 11, 2, 15, 0, tzinfo=dt.UTC)


async def upsert(
    conn: asyncpg.Connection,
    ws: uuid.UUID,
    lead: dict[str, Any],
    stage: str | None,
    at: dt.datetime = T0,
    notes: str | None = None,
) -> uuid.UUID:
    lead_id: uuid.UUID = await conn.fetchval(
        "select public.upsert_client_lead($1, $2, $3, $4, null, null, null, $5)", ws, lead, stage, at, notes
    )
    return lead_id


async def lead(conn: asyncpg.Connection, lead_id: uuid.UUID) -> asyncpg.Record:
    row = await conn.fetchrow("select * from public.client_leads where id = $1", lead_id)
    assert row is not None
    return row


async def test_matches_by_bison_id_then_email(conn: asyncpg.Connection, make_workspace: WorkspaceFactory) -> None:
    ws = await make_workspace()
    a = await upsert(conn, ws, {"email": " Pat.Doe@Example.com "}, "replied")
    assert (await lead(conn, a))["lead_email"] == "pat.doe@example.com"
    # found by email, learns its bison id
    assert await upsert(conn, ws, {"id": 77, "email": "pat.doe@example.com"}, None) == a
    # the same bison lead with a variant address (dots in Gmail): matched by id, no duplicate
    assert await upsert(conn, ws, {"id": 77, "email": "patdoe@example.com"}, None) == a
    assert await conn.fetchval("select count(*) from public.client_leads where workspace_id = $1", ws) == 1
    row = await lead(conn, a)
    assert (row["bison_lead_id"], row["lead_email"]) == (77, "pat.doe@example.com")
    # a lead of another workspace is another row
    other = await make_workspace()
    assert await upsert(conn, other, {"id": 77, "email": "pat.doe@example.com"}, None) != a


async def test_stage_never_regresses(conn: asyncpg.Connection, make_workspace: WorkspaceFactory) -> None:
    ws = await make_workspace()
    lead_id = await upsert(conn, ws, {"id": 1, "email": "a@example.com"}, "interested")
    await conn.execute("update public.client_leads set pipeline_stage = 'quoting' where id = $1", lead_id)
    for stage in ("replied", "interested", "new", "nurture", None):
        await upsert(conn, ws, {"id": 1}, stage)
        assert (await lead(conn, lead_id))["pipeline_stage"] == "quoting", stage
    # a direct update cannot move it down either (the predecessor's blind upserts did)
    await conn.execute("update public.client_leads set pipeline_stage = 'replied' where id = $1", lead_id)
    assert (await lead(conn, lead_id))["pipeline_stage"] == "quoting"
    await upsert(conn, ws, {"id": 1}, "won")
    assert (await lead(conn, lead_id))["pipeline_stage"] == "won"
    await upsert(conn, ws, {"id": 1}, "bounced")  # same rank: the first terminal stage stays
    assert (await lead(conn, lead_id))["pipeline_stage"] == "won"
    # a deliberate manual correction is possible, and explicit
    async with conn.transaction():
        await conn.execute("set local bisonsync.allow_stage_regression = on")
        await conn.execute("update public.client_leads set pipeline_stage = 'follow-up' where id = $1", lead_id)
    assert (await lead(conn, lead_id))["pipeline_stage"] == "follow-up"


async def test_interested_at_is_set_once_and_immutable(
    conn: asyncpg.Connection, make_workspace: WorkspaceFactory
) -> None:
    ws = await make_workspace()
    lead_id = await upsert(conn, ws, {"id": 2, "email": "b@example.com"}, "replied")
    assert (await lead(conn, lead_id))["interested_at"] is None
    await upsert(conn, ws, {"id": 2}, "interested", at=T0)
    await upsert(conn, ws, {"id": 2}, "interested", at=T0 + dt.timedelta(days=40))
    row = await lead(conn, lead_id)
    assert row["interested"] and row["interested_at"] == T0
    await conn.execute("update public.client_leads set interested_at = now() where id = $1", lead_id)
    await conn.execute("update public.client_leads set interested_at = null where id = $1", lead_id)
    assert (await lead(conn, lead_id))["interested_at"] == T0
    # flagged interested by a direct write: stamped then, and kept
    other = await upsert(conn, ws, {"id": 3, "email": "c@example.com"}, None)
    await conn.execute("update public.client_leads set interested = true where id = $1", other)
    assert (await lead(conn, other))["interested_at"] is not None


async def test_notes_are_never_wiped(conn: asyncpg.Connection, make_workspace: WorkspaceFactory) -> None:
    ws = await make_workspace()
    lead_id = await upsert(conn, ws, {"id": 4, "email": "d@example.com"}, "interested", notes="called, wants a quote")
    for notes in (None, "", "   "):
        await upsert(conn, ws, {"id": 4, "email": "d@example.com"}, "replied", notes=notes)
        assert (await lead(conn, lead_id))["notes"] == "called, wants a quote"
    await upsert(conn, ws, {"id": 4}, None, notes="quoted $1,200")
    assert (await lead(conn, lead_id))["notes"] == "quoted $1,200"


async def test_custom_variables_are_merged_and_extracted(
    conn: asyncpg.Connection, make_workspace: WorkspaceFactory
) -> None:
    ws = await make_workspace()
    first = {
        "id": 5,
        "email": "e@example.com",
        "first_name": "Pat",
        "custom_variables": [
            {"name": "Cell Phone", "value": "555-0100"},
            {"name": "street address", "value": "1 Main St"},
            {"name": "City", "value": "Springfield"},
            {"name": "state", "value": "NE"},
            {"name": "Zip Code", "value": "68000"},
            {"name": "renewal date", "value": "December 1st"},
            {"name": "date of birth", "value": "1970-01-01"},
            {"name": "home value", "value": "250000"},
        ],
    }
    lead_id = await upsert(conn, ws, first, "interested")
    row = await lead(conn, lead_id)
    assert (
        row["phone"],
        row["address"],
        row["city"],
        row["state"],
        row["zip"],
        row["renewal_date"],
        row["birthday"],
    ) == ("555-0100", "1 Main St", "Springfield", "NE", "68000", "December 1st", "1970-01-01")
    # a later event with fewer/empty variables keeps what we knew; a new non-empty value wins
    second = {
        "id": 5,
        "first_name": None,
        "custom_variables": [
            {"name": "cell phone", "value": ""},
            {"name": "phone number", "value": "555-0199"},
            {"name": "CITY", "value": "Omaha"},
            {"name": "current carrier", "value": "Acme"},
        ],
    }
    await upsert(conn, ws, second, "replied")
    row = await lead(conn, lead_id)
    assert row["first_name"] == "Pat"
    assert row["phone"] == "555-0199"  # "phone number" is the preferred alias
    assert row["city"] == "Omaha" and row["zip"] == "68000"
    names = [v["name"] for v in row["custom_variables"]]
    assert names == [
        "Cell Phone",
        "street address",
        "CITY",
        "state",
        "Zip Code",
        "renewal date",
        "date of birth",
        "home value",
        "phone number",
        "current carrier",
    ]


async def test_concurrent_upserts_of_a_new_lead_make_one_row(
    pool: asyncpg.Pool, conn: asyncpg.Connection, make_workspace: WorkspaceFactory
) -> None:
    import asyncio

    ws = await make_workspace()
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    ids = await asyncio.gather(
        *(
            pool.fetchval("select public.upsert_client_lead($1, $2, 'replied')", ws, {"id": 99, "email": email})
            for _ in range(16)
        )
    )
    assert len(set(ids)) == 1
    assert await conn.fetchval("select count(*) from public.client_leads where workspace_id = $1", ws) == 1

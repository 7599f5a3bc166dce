"""ingest_delivery: one call per delivery, exactly-once effects, every delivery in the ledger, replay."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import uuid
from typing import Any

import asyncpg
import pytest

from tests.schema.support import TEST_INSTANCE, envelope, ingest, workspace_id

T0 = dt.datetime(2026, 11, 20, 18, 0, tzinfo=dt.UTC)


def lead_data(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "lead": {
            "id": 3_000_000 + n,
            "email": f"prospect{n}@example.com",
            "first_name": "Pat",
            "last_name": "Doe",
            "custom_variables": [{"name": "phone number", "value": "555-0100"}],
        },
        "reply": {
            "id": 880_000 + n,
            "uuid": f"reply-uuid-{n}",
            "date_received": "2026-11-20T17:59:00Z",
            "text_body": "Yes please send me a quote",
            "interested": False,
        },
        "campaign": {"id": 111, "name": "Q4 Home Insurance"},
        "sender_email": {"id": 222, "email": "rep@client-a-mail.com", "name": "Rep"},
        **extra,
    }


async def counters(conn: asyncpg.Connection, bison_ws: int) -> dict[str, int]:
    row = await conn.fetchrow(
        "select coalesce(sum(emails_sent), 0) as emails_sent, coalesce(sum(replies), 0) as replies, "
        "coalesce(sum(interested), 0) as interested, coalesce(sum(bounced), 0) as bounced, "
        "coalesce(sum(unsubscribed), 0) as unsubscribed "
        "from public.client_metrics_daily d join public.workspaces w on w.id = d.workspace_id "
        "where w.instance = $1 and w.bison_workspace_id = $2",
        TEST_INSTANCE,
        bison_ws,
    )
    assert row is not None
    return dict(row)


async def ledger(conn: asyncpg.Connection, bison_ws: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "select * from public.webhook_deliveries where instance = $1 and bison_workspace_id = $2 order by id",
        TEST_INSTANCE,
        bison_ws,
    )


async def test_email_sent_counts_on_the_received_day(conn: asyncpg.Connection, unique_ws: int) -> None:
    res = await ingest(conn, f"sent-{unique_ws}", unique_ws, "email_sent", {}, received_at=T0, name=" Client A ")
    assert res["status"] == "applied" and res["effects"][0] == {
        "kind": "metric",
        "metric": "emails_sent",
        "day": "2026-11-20",
        "value": 1,
    }
    ws = await workspace_id(conn, unique_ws)
    assert res["workspace_id"] == str(ws)
    assert await conn.fetchval("select name from public.workspaces where id = $1", ws) == "Client A"
    assert (await counters(conn, unique_ws))["emails_sent"] == 1
    row = (await ledger(conn, unique_ws))[0]
    assert (row["dedup_key"], row["status"], row["event_type"], row["received_at"]) == (
        f"sent-{unique_ws}",
        "applied",
        "email_sent",
        T0,
    )
    assert row["payload"]["event"]["type"] == "email_sent"


async def test_lead_replied_and_interested(conn: asyncpg.Connection, unique_ws: int) -> None:
    res = await ingest(conn, f"r-{unique_ws}", unique_ws, "LEAD_REPLIED", lead_data(1), received_at=T0)
    assert res["status"] == "applied" and res["event_type"] == "lead_replied"
    kinds = {e["kind"]: e for e in res["effects"]}
    assert kinds["lead"]["action"] == "created" and kinds["reply"]["action"] == "inserted"
    later = T0 + dt.timedelta(hours=1)
    res = await ingest(conn, f"i-{unique_ws}", unique_ws, "lead_interested", lead_data(1), received_at=later)
    kinds = {e["kind"]: e for e in res["effects"]}
    assert kinds["lead"] == {
        "kind": "lead",
        "lead_id": kinds["lead"]["lead_id"],
        "action": "updated",
        "stage": "interested",
        "previous_stage": "replied",
    }
    assert kinds["reply"]["action"] == "updated"
    assert await counters(conn, unique_ws) == {
        "emails_sent": 0,
        "replies": 1,
        "interested": 1,
        "bounced": 0,
        "unsubscribed": 0,
    }
    ws = await workspace_id(conn, unique_ws)
    lead = await conn.fetchrow("select * from public.client_leads where workspace_id = $1", ws)
    assert lead is not None
    assert (
        lead["lead_email"],
        lead["bison_lead_id"],
        lead["pipeline_stage"],
        lead["interested"],
        lead["interested_at"],
        lead["phone"],
        lead["campaign_name"],
        lead["sender_email"],
        lead["bison_reply_uuid"],
    ) == (
        "prospect1@example.com",
        3_000_001,
        "interested",
        True,
        later,
        "555-0100",
        "Q4 Home Insurance",
        "rep@client-a-mail.com",
        "reply-uuid-1",
    )
    reply = await conn.fetchrow("select * from public.lead_replies where workspace_id = $1", ws)
    assert reply is not None
    assert (
        reply["reply_key"],
        reply["is_interested"],
        reply["lead_id"],
        reply["reply_text"],
        reply["sender_email_id"],
    ) == ("reply-uuid-1", True, lead["id"], "Yes please send me a quote", 222)


async def test_bounce_and_unsubscribe_update_known_leads_only(conn: asyncpg.Connection, unique_ws: int) -> None:
    await ingest(conn, f"i-{unique_ws}", unique_ws, "lead_interested", lead_data(2), received_at=T0)
    res = await ingest(
        conn, f"b-{unique_ws}", unique_ws, "email_bounced", {"lead": {"email": "PROSPECT2@example.com"}}, received_at=T0
    )
    assert res["status"] == "applied"
    lead_effect = next(e for e in res["effects"] if e["kind"] == "lead")
    assert (lead_effect["action"], lead_effect["stage"], lead_effect["previous_stage"]) == (
        "updated",
        "bounced",
        "interested",
    )
    res = await ingest(
        conn,
        f"u-{unique_ws}",
        unique_ws,
        "lead_unsubscribed",
        {"lead": {"id": 42, "email": "stranger@example.com"}},
        received_at=T0,
    )
    assert next(e for e in res["effects"] if e["kind"] == "lead")["action"] == "not_found"
    ws = await workspace_id(conn, unique_ws)
    assert await conn.fetchval("select count(*) from public.client_leads where workspace_id = $1", ws) == 1
    assert await counters(conn, unique_ws) == {
        "emails_sent": 0,
        "replies": 0,
        "interested": 1,
        "bounced": 1,
        "unsubscribed": 1,
    }


@pytest.mark.parametrize(
    "event_type",
    [
        "manual_email_sent",
        "lead_first_contacted",
        "untracked_reply_received",
        "email_opened",
        "tag_attached",
        "tag_removed",
        "warmup_disabled_causing_bounces",
        "warmup_disabled_receiving_bounces",
        "campaign_event",
    ],
)
async def test_unhandled_types_are_ignored_and_kept(conn: asyncpg.Connection, unique_ws: int, event_type: str) -> None:
    res = await ingest(conn, f"x-{unique_ws}", unique_ws, event_type, {"tag": {"id": 1}})
    assert (res["status"], res["effects"]) == ("ignored", [])
    row = (await ledger(conn, unique_ws))[0]
    assert row["status"] == "ignored" and row["payload"]["data"] == {"tag": {"id": 1}}
    assert await counters(conn, unique_ws) == dict.fromkeys(
        ("emails_sent", "replies", "interested", "bounced", "unsubscribed"), 0
    )


async def test_same_key_ten_times_counts_once(conn: asyncpg.Connection, unique_ws: int) -> None:
    results = [await ingest(conn, f"dup-{unique_ws}", unique_ws, "lead_interested", lead_data(3)) for _ in range(10)]
    assert [r["status"] for r in results] == ["applied"] + ["duplicate"] * 9
    first = results[0]["delivery_id"]
    assert {r["duplicate_of"] for r in results[1:]} == {first}
    assert (await counters(conn, unique_ws))["interested"] == 1
    rows = await ledger(conn, unique_ws)
    assert len(rows) == 10
    assert [(r["status"], r["dedup_key"], r["duplicate_of"]) for r in rows[1:]] == [("duplicate", None, first)] * 9
    assert all(r["payload"] is None for r in rows[1:])
    activity = await conn.fetchrow(
        "select * from public.webhook_activity where workspace_id = $1", await workspace_id(conn, unique_ws)
    )
    assert activity is not None and (activity["deliveries_total"], activity["last_status"]) == (10, "duplicate")


async def test_thirty_two_concurrent_copies_count_once(
    pool: asyncpg.Pool, conn: asyncpg.Connection, unique_ws: int
) -> None:
    key = f"race-{unique_ws}"
    results = await asyncio.gather(*(ingest(pool, key, unique_ws, "lead_replied", lead_data(4)) for _ in range(32)))
    statuses = sorted(r["status"] for r in results)
    assert statuses == ["applied"] + ["duplicate"] * 31
    assert (await counters(conn, unique_ws))["replies"] == 1
    assert len(await ledger(conn, unique_ws)) == 32
    ws = await workspace_id(conn, unique_ws)
    assert await conn.fetchval("select count(*) from public.client_leads where workspace_id = $1", ws) == 1
    assert await conn.fetchval("select count(*) from public.lead_replies where workspace_id = $1", ws) == 1


async def test_distinct_keys_count_separately(conn: asyncpg.Connection, unique_ws: int) -> None:
    for key in (f"a-{unique_ws}", f"b-{unique_ws}"):
        assert (await ingest(conn, key, unique_ws, "email_sent", {}))["status"] == "applied"
    assert (await counters(conn, unique_ws))["emails_sent"] == 2


async def test_missing_required_field_writes_nothing(conn: asyncpg.Connection, unique_ws: int) -> None:
    for data in ({"lead": {"first_name": "Pat"}}, {}, {"lead": "not an object"}):
        with pytest.raises(asyncpg.PostgresError) as exc:
            await ingest(conn, f"bad-{unique_ws}", unique_ws, "lead_interested", data)
        assert exc.value.sqlstate == "22023" and "data.lead" in str(exc.value)
    with pytest.raises(asyncpg.PostgresError) as exc:
        await ingest(conn, f"bad-mbx-{unique_ws}", unique_ws, "email_account_disconnected", {"sender_email": {}})
    assert exc.value.sqlstate == "22023"
    for key in ("", "  "):
        with pytest.raises(asyncpg.PostgresError) as exc:
            await ingest(conn, key, unique_ws, "email_sent", {})
        assert exc.value.sqlstate == "22023"
    assert await ledger(conn, unique_ws) == []
    assert await workspace_id(conn, unique_ws) is None  # even the workspace creation rolled back


async def test_replay_flips_ignored_to_applied_exactly_once(conn: asyncpg.Connection, unique_ws: int) -> None:
    # a delivery stored as ignored before its handler existed (as the predecessor's unknown types were)
    await ingest(conn, f"seed-{unique_ws}", unique_ws, "email_sent", {})
    ws = await workspace_id(conn, unique_ws)
    delivery = await conn.fetchval(
        "insert into public.webhook_deliveries (dedup_key, workspace_id, instance, bison_workspace_id, event_type, "
        "status, received_at, payload) values ($1, $2, $3, $4, 'email_sent', 'ignored', $5, $6) returning id",
        f"old-{unique_ws}",
        ws,
        TEST_INSTANCE,
        unique_ws,
        T0,
        envelope("email_sent", unique_ws, {}),
    )
    res = await conn.fetchval("select public.replay_delivery($1)", delivery)
    assert (res["status"], res["replayed"], res["previous_status"]) == ("applied", True, "ignored")
    again = await conn.fetchval("select public.replay_delivery($1)", delivery)
    assert (again["status"], again["replayed"]) == ("applied", False)
    assert (await counters(conn, unique_ws))["emails_sent"] == 2
    row = await conn.fetchrow(
        "select status, replay_count, applied_at from public.webhook_deliveries where id = $1", delivery
    )
    assert row is not None and (row["status"], row["replay_count"]) == ("applied", 1) and row["applied_at"]
    # a redelivery of the replayed key is still a duplicate
    assert (await ingest(conn, f"old-{unique_ws}", unique_ws, "email_sent", {}))["status"] == "duplicate"
    assert (await counters(conn, unique_ws))["emails_sent"] == 2


async def test_replay_of_mailbox_event_once_the_mailbox_is_known(conn: asyncpg.Connection, unique_ws: int) -> None:
    data = {"sender_email": {"email": "later@mail.example.com"}}
    res = await ingest(conn, f"rm-{unique_ws}", unique_ws, "email_account_removed", data, received_at=T0)
    assert res["status"] == "ignored" and res["effects"][0]["action"] == "not_found"
    ws = await workspace_id(conn, unique_ws)
    await conn.execute(
        "insert into public.sender_emails_cache (workspace_id, bison_sender_id, email_address) "
        "values ($1, 7, 'later@mail.example.com')",
        ws,
    )
    res = await conn.fetchval("select public.replay_delivery($1)", res["delivery_id"])
    assert res["status"] == "applied" and res["effects"][0]["action"] == "deleted"
    assert await conn.fetchval("select deleted_at from public.sender_emails_cache where workspace_id = $1", ws) == T0


async def test_replay_refuses_duplicates_and_rejections(conn: asyncpg.Connection, unique_ws: int) -> None:
    await ingest(conn, f"k-{unique_ws}", unique_ws, "email_sent", {})
    dup = await ingest(conn, f"k-{unique_ws}", unique_ws, "email_sent", {})
    rejected = await conn.fetchval(
        "select public.record_rejected_delivery('email_sent', $1, 'bad token')", await workspace_id(conn, unique_ws)
    )
    for delivery in (dup["delivery_id"], rejected):
        with pytest.raises(asyncpg.PostgresError) as exc:
            await conn.execute("select public.replay_delivery($1)", delivery)
        assert exc.value.sqlstate == "22023"
    with pytest.raises(asyncpg.PostgresError) as exc:
        await conn.execute("select public.replay_delivery(-1)")
    assert exc.value.sqlstate == "P0002"


async def test_failed_delivery_is_applied_by_the_senders_retry(conn: asyncpg.Connection, unique_ws: int) -> None:
    key = f"f-{unique_ws}"
    failed = await conn.fetchval(
        "select public.record_failed_delivery($1, $2, $3, 'Client A', 'lead_replied', $4, 'connection reset')",
        key,
        TEST_INSTANCE,
        unique_ws,
        envelope("lead_replied", unique_ws, lead_data(5)),
    )
    assert failed["status"] == "failed"
    assert (await counters(conn, unique_ws))["replies"] == 0
    retry = await ingest(conn, key, unique_ws, "lead_replied", lead_data(5))
    assert (retry["status"], retry["duplicate_of"], retry["retried"], retry["original_status"]) == (
        "duplicate",
        failed["delivery_id"],
        True,
        "applied",
    )
    again = await ingest(conn, key, unique_ws, "lead_replied", lead_data(5))
    assert (again["retried"], again["original_status"]) == (False, "applied")
    assert (await counters(conn, unique_ws))["replies"] == 1
    # a failure recorded for an already-applied key is a failed repeat, never a second application
    repeat = await conn.fetchval(
        "select public.record_failed_delivery($1, $2, $3, 'Client A', 'lead_replied', $4, 'timeout')",
        key,
        TEST_INSTANCE,
        unique_ws,
        envelope("lead_replied", unique_ws, lead_data(5)),
    )
    assert repeat["duplicate_of"] == failed["delivery_id"]
    statuses = [r["status"] for r in await ledger(conn, unique_ws)]
    assert statuses == ["applied", "duplicate", "duplicate", "failed"]


async def test_retried_copy_does_not_rename(conn: asyncpg.Connection, unique_ws: int) -> None:
    await ingest(conn, f"n1-{unique_ws}", unique_ws, "email_sent", {}, name="Old Name")
    await ingest(conn, f"n2-{unique_ws}", unique_ws, "email_sent", {}, name="New Name")
    await ingest(conn, f"n1-{unique_ws}", unique_ws, "email_sent", {}, name="Old Name")  # late retry
    ws = await workspace_id(conn, unique_ws)
    assert await conn.fetchval("select name from public.workspaces where id = $1", ws) == "New Name"


async def test_rejected_deliveries_are_recorded_without_payload(conn: asyncpg.Connection, unique_ws: int) -> None:
    await ingest(conn, f"ok-{unique_ws}", unique_ws, "email_sent", {})
    ws = await workspace_id(conn, unique_ws)
    delivery = await conn.fetchval("select public.record_rejected_delivery('Lead_Interested', $1, 'bad token')", ws)
    row = await conn.fetchrow("select * from public.webhook_deliveries where id = $1", delivery)
    assert row is not None
    assert (row["status"], row["event_type"], row["payload"], row["dedup_key"], row["workspace_id"]) == (
        "rejected",
        "lead_interested",
        None,
        None,
        ws,
    )
    anonymous = await conn.fetchval("select public.record_rejected_delivery(null, $1, 'no token')", uuid.uuid4())
    assert await conn.fetchval("select workspace_id from public.webhook_deliveries where id = $1", anonymous) is None


async def test_concurrent_distinct_deliveries_in_one_workspace(
    pool: asyncpg.Pool, conn: asyncpg.Connection, unique_ws: int
) -> None:
    """Many different events of one workspace at once, some renaming it: no deadlock, every effect once."""
    await ingest(conn, f"first-{unique_ws}", unique_ws, "email_sent", {})
    kinds = ["email_sent", "lead_replied", "lead_interested", "email_bounced", "email_account_disconnected"]

    async def one(i: int) -> dict[str, Any]:
        kind = kinds[i % len(kinds)]
        data: dict[str, Any] = lead_data(i % 3)
        if kind == "email_account_disconnected":
            data = {"sender_email": {"id": 900 + i % 2, "email": f"rep{i % 2}@mail.example.com"}}
        return await ingest(pool, f"c-{unique_ws}-{i}", unique_ws, kind, data, name=f"Name {i % 4}")

    results = await asyncio.gather(*(one(i) for i in range(40)))
    assert {r["status"] for r in results} == {"applied"}
    assert await counters(conn, unique_ws) == {
        "emails_sent": 9,
        "replies": 8,
        "interested": 8,
        "bounced": 8,
        "unsubscribed": 0,
    }
    ws = await workspace_id(conn, unique_ws)
    assert await conn.fetchval("select count(*) from public.client_leads where workspace_id = $1", ws) == 3
    assert await conn.fetchval("select count(*) from public.sender_emails_cache where workspace_id = $1", ws) == 2
    activity = await conn.fetchval("select deliveries_total from public.webhook_activity where workspace_id = $1", ws)
    assert activity == 41


async def test_per_workspace_token_is_checked_in_the_same_call(conn: asyncpg.Connection, unique_ws: int) -> None:
    good = hashlib.sha256(b"workspace-token").hexdigest()
    bad = hashlib.sha256(b"guess").hexdigest()

    async def call(key: str, token_hash: str, bison_ws: int = unique_ws) -> dict[str, Any]:
        result: dict[str, Any] = await conn.fetchval(
            "select public.ingest_delivery(p_dedup_key => $1, p_instance => $2, p_bison_workspace_id => $3, "
            "p_workspace_name => 'Client A', p_event_type => 'lead_interested', p_payload => $4, "
            "p_token_hash => $5)",
            key,
            TEST_INSTANCE,
            bison_ws,
            envelope("lead_interested", bison_ws, lead_data(7)),
            token_hash,
        )
        return result

    # an unknown workspace with a token is refused and NOT created
    res = await call(f"t0-{unique_ws}", good)
    assert (res["status"], res["error"], res.get("workspace_id")) == ("rejected", "invalid webhook token", None)
    assert await workspace_id(conn, unique_ws) is None
    ws = await conn.fetchval("select public.upsert_workspace($1, $2, 'Client A')", TEST_INSTANCE, unique_ws)
    await conn.execute("select public.set_webhook_token($1, $2)", ws, good)
    res = await call(f"t1-{unique_ws}", bad)
    assert res == {"status": "rejected", "error": "invalid webhook token"}  # nothing about the workspace
    res = await call(f"t1-{unique_ws}", good)  # the same key is not burnt by the rejected attempt
    assert res["status"] == "applied" and res["lead_action"] == "created" and res["lead_id"]
    dup = await call(f"t1-{unique_ws}", good)
    assert (dup["status"], dup["lead_id"]) == ("duplicate", res["lead_id"])
    assert (await counters(conn, unique_ws))["interested"] == 1
    statuses = [(r["status"], r["payload"] is None) for r in await ledger(conn, unique_ws)]
    # refusals wrote nothing: no ledger row, no activity
    assert statuses == [("applied", False), ("duplicate", True)]
    activity = await conn.fetchval("select deliveries_total from public.webhook_activity where workspace_id = $1", ws)
    assert activity == 2


async def test_nfc_and_nfd_spellings_of_a_name_are_one_name(conn: asyncpg.Connection, unique_ws: int) -> None:
    """upsert_workspace (the registry sync) and ingest_delivery compare names NFC-normalised: no rename between
    the two spellings of one name, and a name lookup finds the workspace by either."""
    import unicodedata

    nfc, nfd = (unicodedata.normalize(form, f"Crème Brûlée {unique_ws}") for form in ("NFC", "NFD"))
    assert nfc != nfd
    ws = await conn.fetchval("select public.upsert_workspace($1, $2, $3)", TEST_INSTANCE, unique_ws, nfd)
    assert await conn.fetchval("select name from public.workspaces where id = $1", ws) == nfc
    await conn.fetchval("select public.upsert_workspace($1, $2, $3)", TEST_INSTANCE, unique_ws, nfc)
    await ingest(conn, f"nfc-{unique_ws}", unique_ws, "email_sent", {}, name=nfd)
    await ingest(conn, f"nfc2-{unique_ws}", unique_ws, "email_sent", {}, name=f"  {nfc} ")
    assert await conn.fetchval("select count(*) from public.workspace_name_history where workspace_id = $1", ws) == 0
    await conn.execute("select public.increment_metric($1::text, 'emails_sent', 1)", nfd)  # resolves by name
    total = await conn.fetchval("select sum(emails_sent) from public.client_metrics_daily where workspace_id = $1", ws)
    assert total == 3


async def test_long_names_and_types_are_bounded_not_refused(conn: asyncpg.Connection, unique_ws: int) -> None:
    """3,000-character labels would exceed the btree row limit (54000): names are cut to 200 characters, ledger
    event types to 100 (the payload keeps both whole)."""
    long_name = "N" * 3000
    long_type = "t" * 3000
    res = await ingest(conn, f"long-{unique_ws}", unique_ws, long_type, {}, name=long_name)
    assert res["status"] == "ignored"
    ws = await workspace_id(conn, unique_ws)
    assert await conn.fetchval("select name from public.workspaces where id = $1", ws) == "N" * 200
    row = await conn.fetchrow(
        "select event_type, payload from public.webhook_deliveries where id = $1", res["delivery_id"]
    )
    assert row is not None and row["event_type"] == "t" * 100 and row["payload"]["event"]["type"] == long_type
    failed = await conn.fetchval(
        "select public.record_failed_delivery($1, $2, $3, $4, $5, $6, 'boom')",
        f"long-failed-{unique_ws}",
        TEST_INSTANCE,
        unique_ws,
        long_name,
        long_type,
        {"event": {}, "data": {}},
    )
    assert failed["status"] == "failed" and failed["delivery_id"]


async def test_custom_variables_as_a_keyed_object_are_merged(conn: asyncpg.Connection, unique_ws: int) -> None:
    data = lead_data(5)
    data["lead"]["custom_variables"] = {"Phone Number": "555-0199", "City": {"value": "Omaha"}, "zip": 68102}
    res = await ingest(conn, f"cv-{unique_ws}", unique_ws, "lead_interested", data)
    assert res["status"] == "applied"
    lead = await conn.fetchrow(
        "select phone, city, zip, custom_variables from public.client_leads where id = $1", uuid.UUID(res["lead_id"])
    )
    assert lead is not None and (lead["phone"], lead["city"], lead["zip"]) == ("555-0199", "Omaha", "68102")
    assert {"name": "City", "value": "Omaha"} in lead["custom_variables"]

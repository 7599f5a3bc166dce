"""Deliveries in the shapes real Email Bison instances send, end to end on both stores: one workspace per Email Bison
workspace whatever `instance_url` says, event identity from the event's own ids, tolerant decoding, and the
predecessor's monitoring SQL."""

from __future__ import annotations

import copy
import json
import unicodedata
from typing import Any, Literal

import asyncpg
from litestar.testing import AsyncTestClient

from bisonsync.events import decode_delivery
from bisonsync.settings import Settings
from bisonsync.store import Store, SupabaseStore
from service.app import create_app
from tests.conftest import StackHandle
from tests.service.conftest import FIXTURES, TOKEN, load_fixture, make_store, settings_for
from tests.service.test_webhook import INSTANCE, counters, post


async def workspaces_of(db: asyncpg.Connection, bison_ws: int) -> list[str]:
    rows = await db.fetch("select instance from public.workspaces where bison_workspace_id = $1", bison_ws)
    return sorted(r["instance"] for r in rows)


def rerendered(doc: dict[str, Any]) -> dict[str, Any]:
    """A retry Email Bison rendered later: embedded counters moved, updated_at later, labels re-rendered."""
    again = copy.deepcopy(doc)
    data = again["data"]
    for part in ("lead", "sender_email", "scheduled_email"):
        sub = data.get(part)
        if isinstance(sub, dict):
            for k, v in list(sub.items()):
                counter = isinstance(v, int) and not isinstance(v, bool)
                if counter and k not in ("id", "lead_id") and "sequence" not in k:
                    sub[k] = v + 5
            if part != "sender_email" and "updated_at" in sub:
                sub["updated_at"] = "2025-10-14T09:00:00.000000Z"
    again["event"]["name"] = again["event"]["name"].upper()
    return again


async def test_no_generic_or_own_instance_url_land_in_one_workspace(
    client: AsyncTestClient[Any], db: asyncpg.Connection, unique_ws: int
) -> None:
    sends = []
    for i, url in enumerate([None, "https://app.emailbison.com", "https://mail.agency-white-label.example", ""]):
        doc = load_fixture("email_sent", unique_ws)
        doc["data"]["scheduled_email"]["id"] += i  # four different sends
        if url is not None:
            doc["event"]["instance_url"] = url
        sends.append(doc)
    for doc in sends:
        r = await post(client, doc)
        assert r.status_code == 200 and r.json()["status"] == "applied", r.text
    # the generic-host sample and the white-label body of one reply: one workspace, one reply
    for name in ("lead_replied", "lead_replied_generic_host", "lead_replied_own_host"):
        await post(client, load_fixture(name, unique_ws))
    assert await workspaces_of(db, unique_ws) == [INSTANCE]
    assert (await counters(db, unique_ws))["emails_sent"] == 4
    assert (await counters(db, unique_ws))["replies"] == 1
    # instance_url stays on the ledger row, as information
    urls = await db.fetch(
        "select d.instance, d.instance_url from public.webhook_deliveries d join public.workspaces w "
        "on w.id = d.workspace_id where w.bison_workspace_id = $1 and d.event_type = 'email_sent'",
        unique_ws,
    )
    assert {r["instance"] for r in urls} == {INSTANCE}
    assert {r["instance_url"] for r in urls} == {
        None,
        "https://app.emailbison.com",
        "https://mail.agency-white-label.example",
    }


async def test_webhooks_land_on_the_workspace_the_poller_registered(
    store: Store, db: asyncpg.Connection, unique_ws: int
) -> None:
    """BISON_BASE_URL set: deliveries use the instance key the workspace registry sync uses (instance_label)."""
    settings = settings_for(bison_base_url="https://Bison-Poll.Example.com:443/api", default_instance="default")
    polled_instance = settings.instance_label()
    assert polled_instance == "bison-poll.example.com"
    polled = await db.fetchval("select public.upsert_workspace($1, $2::bigint, 'Client A')", polled_instance, unique_ws)
    doc = load_fixture("lead_replied", unique_ws)
    doc["event"]["instance_url"] = "https://app.emailbison.com"
    async with AsyncTestClient(app=create_app(settings, store=store)) as client:
        r = await post(client, doc)
    assert r.status_code == 200 and r.json()["status"] == "applied"
    assert await workspaces_of(db, unique_ws) == [polled_instance]
    lead_ws = await db.fetchval(
        "select workspace_id from public.client_leads where workspace_id = $1 and bison_lead_id = 3135490", polled
    )
    assert lead_ws == polled


async def test_a_rerendered_retry_counts_once_and_two_sends_twice(
    client: AsyncTestClient[Any], db: asyncpg.Connection, unique_ws: int
) -> None:
    first = load_fixture("email_sent", unique_ws)
    assert (await post(client, first)).json()["status"] == "applied"
    retry = rerendered(first)
    assert retry != first
    assert (await post(client, retry)).json()["status"] == "duplicate"
    second_step = copy.deepcopy(first)
    second_step["data"]["scheduled_email"].update(id=first["data"]["scheduled_email"]["id"] + 1, sequence_step_order=3)
    second_step["data"]["campaign_event"]["id"] += 1
    assert (await post(client, second_step)).json()["status"] == "applied"
    assert (await post(client, rerendered(second_step))).json()["status"] == "duplicate"
    assert (await counters(db, unique_ws))["emails_sent"] == 2


async def test_lead_replied_and_lead_interested_for_one_reply_both_count(
    client: AsyncTestClient[Any], db: asyncpg.Connection, unique_ws: int
) -> None:
    replied = load_fixture("lead_replied", unique_ws)
    interested = copy.deepcopy(replied)
    interested["event"].update(type="LEAD_INTERESTED", name="Lead Interested")
    for doc in (replied, interested, rerendered(replied), rerendered(interested)):
        assert (await post(client, doc)).status_code == 200
    got = await counters(db, unique_ws)
    assert (got["replies"], got["interested"]) == (1, 1)


async def test_custom_variables_as_an_object_are_applied(
    client: AsyncTestClient[Any], db: asyncpg.Connection, unique_ws: int
) -> None:
    doc = load_fixture("lead_interested", unique_ws)
    assert isinstance(doc["data"]["lead"]["custom_variables"], dict)
    r = await post(client, doc)
    assert r.status_code == 200 and r.json()["status"] == "applied", r.text
    lead = await db.fetchrow(
        "select l.phone, l.city, l.zip, l.custom_variables::text as cv, l.pipeline_stage from public.client_leads l "
        "join public.workspaces w on w.id = l.workspace_id where w.bison_workspace_id = $1",
        unique_ws,
    )
    assert lead is not None
    assert (lead["phone"], lead["city"], lead["zip"], lead["pipeline_stage"]) == (
        "555-0100",
        "Springfield",
        "68000",
        "interested",
    )
    assert {"name": "city", "value": "Springfield"} in json.loads(lead["cv"])
    assert (await counters(db, unique_ws))["interested"] == 1


async def _polled_mailbox(db: asyncpg.Connection, bison_ws: int) -> Any:
    ws = await db.fetchval("select public.upsert_workspace($1, $2::bigint, 'Client A')", INSTANCE, bison_ws)
    await db.execute(
        "insert into public.sender_emails_cache (workspace_id, bison_sender_id, email_address, status, "
        "status_observed_at, status_source, emails_sent_count) "
        "values ($1, 222, 'rep@mail.client-a.example.com', 'Connected', now() - interval '1 hour', 'poll', 1204)",
        ws,
    )
    return ws


async def test_disconnect_with_lower_case_status_updates_the_polled_row(
    client: AsyncTestClient[Any], db: asyncpg.Connection, unique_ws: int
) -> None:
    ws = await _polled_mailbox(db, unique_ws)
    doc = load_fixture("email_account_disconnected", unique_ws)
    assert doc["data"]["sender_email"]["status"] == "disconnected"
    r = await post(client, doc)
    assert r.status_code == 200 and r.json()["status"] == "applied", r.text
    rows = await db.fetch(
        "select status, emails_sent_count from public.sender_emails_cache where workspace_id = $1", ws
    )
    assert [(row["status"], row["emails_sent_count"]) for row in rows] == [("Disconnected", 1204)]
    # a reconnect found by address (another sender id in the body) updates the same row, still no new one
    again = load_fixture("email_account_reconnected", unique_ws)
    again["data"]["sender_email"].update(id=99_999_999, updated_at="2025-10-15T00:00:00.000000Z")
    assert (await post(client, again)).json()["status"] == "applied"
    rows = await db.fetch("select status from public.sender_emails_cache where workspace_id = $1", ws)
    assert [row["status"] for row in rows] == ["Connected"]


async def test_mailbox_added_with_a_pending_status_is_stored_as_sent(
    client: AsyncTestClient[Any], db: asyncpg.Connection, unique_ws: int
) -> None:
    doc = load_fixture("email_account_added", unique_ws)
    doc["data"]["sender_email"]["status"] = "pending_move"
    assert (await post(client, doc)).json()["status"] == "applied"
    status = await db.fetchval(
        "select s.status from public.sender_emails_cache s join public.workspaces w on w.id = s.workspace_id "
        "where w.bison_workspace_id = $1",
        unique_ws,
    )
    assert status == "pending_move"


async def test_every_2_6_fixture_is_answered_200(client: AsyncTestClient[Any], unique_ws: int) -> None:
    for path in sorted(FIXTURES.glob("*.json")):
        r = await post(client, load_fixture(path.stem, unique_ws))
        assert r.status_code == 200, (path.stem, r.text)


async def test_a_delivery_recorded_under_the_v1_key_is_not_counted_again(
    client: AsyncTestClient[Any], db: asyncpg.Connection, unique_ws: int
) -> None:
    """Upgrading with deliveries in the ledger: Email Bison's retry of an event the previous release recorded (under
    its v1 key) is a duplicate, not a second count."""
    doc = json.loads((FIXTURES / "legacy" / "email_sent.json").read_text())
    doc["event"]["workspace_id"] = unique_ws
    body = json.dumps(doc).encode()
    v1_key = decode_delivery(body, instance=INSTANCE).legacy_dedup_key
    assert v1_key.startswith("v1:")
    await db.execute(
        "select public.ingest_delivery($1, $2, $3::bigint, 'Client A', 'email_sent', $4::jsonb)",
        v1_key,
        INSTANCE,
        unique_ws,
        body.decode(),
    )
    assert (await counters(db, unique_ws))["emails_sent"] == 1
    r = await post(client, body)
    assert r.json()["status"] == "duplicate", r.text
    assert (await counters(db, unique_ws))["emails_sent"] == 1


async def test_nfd_and_nfc_spellings_of_a_name_are_one_name(
    client: AsyncTestClient[Any], db: asyncpg.Connection, unique_ws: int
) -> None:
    name = "Café Müller"
    forms: tuple[Literal["NFC", "NFD"], ...] = ("NFC", "NFD", "NFC", "NFD")
    for i, form in enumerate(forms):
        doc = load_fixture("email_sent", unique_ws)
        doc["data"]["scheduled_email"]["id"] += i
        doc["event"]["workspace_name"] = unicodedata.normalize(form, name)
        assert (await post(client, doc)).status_code == 200
    row = await db.fetchrow(
        "select w.name, (select count(*) from public.workspace_name_history h where h.workspace_id = w.id) as renames "
        "from public.workspaces w where w.bison_workspace_id = $1",
        unique_ws,
    )
    assert row is not None and (row["name"], row["renames"]) == (unicodedata.normalize("NFC", name), 0)


SEED_LOG_QUERY = (
    "select event_type, processing_time_ms, success, created_at from webhook_delivery_log "
    "where workspace_name = $1 order by created_at desc limit 100"
)
SEED_HEALTH_QUERY = (
    "select workspace_name, last_webhook_at, webhook_count_24h, success_rate_24h, is_healthy from webhook_health"
)


async def test_the_seeds_monitoring_queries_run_unchanged(
    store: Store, client: AsyncTestClient[Any], db: asyncpg.Connection, devstack: StackHandle, unique_ws: int
) -> None:
    name = f"Monitored {unique_ws}"
    docs = [load_fixture(n, unique_ws) for n in ("email_sent", "lead_replied", "unknown_type")]
    for doc in docs:
        doc["event"]["workspace_name"] = name
    for doc in [*docs, docs[0]]:
        assert (await post(client, doc)).status_code == 200
    rows = await db.fetch(SEED_LOG_QUERY, name)
    assert len(rows) == 4
    assert {r["event_type"] for r in rows} == {"email_sent", "lead_replied", "campaign_completed"}
    assert all(r["success"] is True and r["processing_time_ms"] is not None for r in rows)
    assert all(r["processing_time_ms"] >= 0 for r in rows)
    # the service measured every delivery: the ledger's processing_ms is filled in too
    assert (
        await db.fetchval(
            "select count(*) from public.webhook_deliveries d join public.workspaces w on w.id = d.workspace_id "
            "where w.bison_workspace_id = $1 and (d.processing_ms is null or d.processing_ms <= 0)",
            unique_ws,
        )
        == 0
    )
    # the owner (and service_role) read the payload through the view; members get every other column
    payloads = await db.fetch(
        "select payload from webhook_delivery_log where workspace_name = $1 and status <> 'duplicate'", name
    )
    assert len(payloads) == 3 and all(p["payload"] is not None for p in payloads)
    health = {r["workspace_name"]: r for r in await db.fetch(SEED_HEALTH_QUERY)}
    mine = health[name]
    assert (mine["webhook_count_24h"], mine["success_rate_24h"], mine["is_healthy"]) == (4, 100, True)
    assert mine["last_webhook_at"] is not None
    # and through the store the service uses (PostgREST for supabase-py), as service_role
    reader = make_store("supabase" if isinstance(store, SupabaseStore) else "postgres", devstack)
    await reader.open()
    try:
        log_rows = await reader.select("webhook_delivery_log", filters={"workspace_name": name})
        health_rows = await reader.select("webhook_health", filters={"workspace_name": name})
    finally:
        await reader.close()
    assert len(log_rows) == 4 and all(r["processing_time_ms"] is not None for r in log_rows)
    assert sum(r["payload"] is not None for r in log_rows) == 3  # the repeat keeps no copy
    assert health_rows[0]["webhook_count_24h"] == 4


def test_settings_name_the_webhook_instance() -> None:
    assert Settings(default_instance="Bison.Example.com").webhook_instance() == "bison.example.com"
    assert Settings(bison_base_url="https://a.example.com/x").webhook_instance() == "a.example.com"
    assert Settings(bison_base_url="https://a.example.com", bison_instance="b.example.com").webhook_instance() == (
        "b.example.com"
    )
    env = Settings.from_env({"BISONSYNC_WEBHOOK_INSTANCES": " one.example.com, two.example.com ,"})
    assert env.webhook_instances == ("one.example.com", "two.example.com")


async def test_a_deployment_serving_several_instances_names_one_in_the_url(
    store: Store, db: asyncpg.Connection, unique_ws: int
) -> None:
    settings = settings_for(webhook_instances=("second-bison.example.com",))
    doc = load_fixture("email_sent", unique_ws)
    doc["event"]["instance_url"] = "https://bison.example.com"  # the body cannot choose
    async with AsyncTestClient(app=create_app(settings, store=store)) as client:
        r = await client.post(
            "/webhooks/bison", content=json.dumps(doc), params={"token": TOKEN, "instance": "Second-Bison.example.com"}
        )
        assert r.status_code == 200 and r.json()["status"] == "applied", r.text
        r = await client.post("/webhooks/bison", content=json.dumps(doc), params={"token": TOKEN})
        assert r.json()["status"] == "applied"  # the configured instance: another tenant, another event
        r = await client.post(
            "/webhooks/bison", content=json.dumps(doc), params={"token": TOKEN, "instance": "not-served.example.com"}
        )
        assert r.status_code == 404
        r = await client.post(
            "/webhooks/bison", content=b"{broken", params={"token": "wrong", "instance": "not-served.example.com"}
        )
        assert r.status_code == 401  # authentication first
    assert await workspaces_of(db, unique_ws) == sorted([INSTANCE, "second-bison.example.com"])

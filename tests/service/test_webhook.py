"""The universal webhook end to end on both stores: exactly-once counting and every HTTP answer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from tests.service.conftest import TOKEN, load_fixture

INSTANCE = "bison.example.com"
COUNTED = {
    "email_sent": "emails_sent",
    "lead_replied": "replies",
    "lead_interested": "interested",
    "email_bounced": "bounced",
    "lead_unsubscribed": "unsubscribed",
}
APPLIED = set(COUNTED) | {
    "email_account_added",
    "email_account_removed",
    "email_account_disconnected",
    "email_account_reconnected",
}
IGNORED = {
    "manual_email_sent",
    "lead_first_contacted",
    "untracked_reply_received",
    "email_opened",
    "tag_attached",
    "tag_removed",
    "warmup_disabled_causing_bounces",
    "warmup_disabled_receiving_bounces",
    "unknown_type",
}


async def counters(db: asyncpg.Connection, bison_ws: int) -> dict[str, int]:
    row = await db.fetchrow(
        """select coalesce(sum(d.emails_sent), 0) as emails_sent, coalesce(sum(d.replies), 0) as replies,
                  coalesce(sum(d.interested), 0) as interested, coalesce(sum(d.bounced), 0) as bounced,
                  coalesce(sum(d.unsubscribed), 0) as unsubscribed
             from public.client_metrics_daily d join public.workspaces w on w.id = d.workspace_id
            where w.instance = $1 and w.bison_workspace_id = $2""",
        INSTANCE,
        bison_ws,
    )
    assert row is not None
    return {k: int(v) for k, v in dict(row).items()}


async def post(client: AsyncTestClient[Any], doc: Any, token: str | None = TOKEN, path: str = "/webhooks/bison") -> Any:
    params = {"token": token} if token else {}
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return await client.post(path, content=body, params=params, headers={"content-type": "application/json"})


@pytest.mark.parametrize("name", sorted(APPLIED | IGNORED))
async def test_every_event_type_gets_its_outcome(
    client: AsyncTestClient[Any], db: asyncpg.Connection, unique_ws: int, name: str
) -> None:
    if name == "email_account_removed":  # removing needs a mailbox to remove (else it is ignored)
        added = load_fixture("email_account_added", unique_ws)
        added["data"]["sender_email"] = load_fixture(name, unique_ws)["data"]["sender_email"]
        assert (await post(client, added)).json()["status"] == "applied"
    r = await post(client, load_fixture(name, unique_ws))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == ("applied" if name in APPLIED else "ignored"), body
    assert body["delivery_id"] and body["processing_time_ms"] >= 0
    got = await counters(db, unique_ws)
    expected = {metric: (1 if COUNTED.get(name) == metric else 0) for metric in COUNTED.values()}
    assert got == expected
    stored = await db.fetchrow(
        "select status, payload from public.webhook_deliveries where id = $1", body["delivery_id"]
    )
    assert stored is not None and stored["status"] == body["status"]
    assert json.loads(stored["payload"])["data"] == load_fixture(name, unique_ws)["data"]  # kept for replay


async def test_retried_delivery_counts_once(
    client: AsyncTestClient[Any], db: asyncpg.Connection, unique_ws: int
) -> None:
    doc = load_fixture("lead_interested", unique_ws)
    statuses = [(await post(client, doc)).json()["status"] for _ in range(10)]
    assert statuses == ["applied"] + ["duplicate"] * 9
    assert (await counters(db, unique_ws))["interested"] == 1
    # re-serialised differently (key order, whitespace, type case) is still the same delivery
    doc2 = json.loads(json.dumps(doc))
    doc2["event"]["type"] = "LEAD_INTERESTED"
    r = await post(client, json.dumps(doc2, indent=3, sort_keys=True).encode())
    assert r.json()["status"] == "duplicate"
    leads = await db.fetch(
        "select l.* from public.client_leads l join public.workspaces w on w.id = l.workspace_id "
        "where w.bison_workspace_id = $1",
        unique_ws,
    )
    assert len(leads) == 1 and leads[0]["pipeline_stage"] == "interested" and leads[0]["interested_at"] is not None


async def test_concurrent_identical_deliveries_count_once(
    client: AsyncTestClient[Any], db: asyncpg.Connection, unique_ws: int
) -> None:
    doc = load_fixture("email_sent", unique_ws)
    responses = await asyncio.gather(*(post(client, doc) for _ in range(32)))
    statuses = sorted(r.json()["status"] for r in responses)
    assert all(r.status_code == 200 for r in responses)
    assert statuses.count("applied") == 1 and statuses.count("duplicate") == 31
    assert (await counters(db, unique_ws))["emails_sent"] == 1
    n = await db.fetchval(
        "select count(*) from public.webhook_deliveries d join public.workspaces w on w.id = d.workspace_id "
        "where w.bison_workspace_id = $1",
        unique_ws,
    )
    assert n == 32  # every delivery is in the ledger: 1 applied + 31 duplicates


async def test_deliveries_differing_in_one_id_count_twice(
    client: AsyncTestClient[Any], db: asyncpg.Connection, unique_ws: int
) -> None:
    a = load_fixture("lead_replied", unique_ws)
    b = load_fixture("lead_replied", unique_ws)
    b["data"]["reply"]["id"] += 1
    b["data"]["reply"]["uuid"] = "0b7e0000-1111-2222-3333-444455556666"
    assert (await post(client, a)).json()["status"] == "applied"
    assert (await post(client, b)).json()["status"] == "applied"
    assert (await counters(db, unique_ws))["replies"] == 2


async def test_missing_and_wrong_tokens_are_401_and_apply_nothing(
    client: AsyncTestClient[Any], db: asyncpg.Connection, unique_ws: int
) -> None:
    doc = load_fixture("email_sent", unique_ws)
    before = await db.fetchval("select count(*) from public.webhook_deliveries")
    r = await post(client, doc, token=None)
    assert r.status_code == 401 and "token" in r.json()["error"]
    r = await post(client, doc, token="not-the-token")
    assert r.status_code == 401
    r = await client.post("/webhooks/bison", content=json.dumps(doc), headers={"x-bisonsync-token": "nope"})
    assert r.status_code == 401
    assert (await counters(db, unique_ws))["emails_sent"] == 0
    # nothing written at all: a refusal is counted in /metrics and one log line, never in the ledger
    assert await db.fetchval("select count(*) from public.webhook_deliveries") == before
    assert (
        await db.fetchval(
            "select count(*) from public.workspaces where instance = $1 and bison_workspace_id = $2",
            INSTANCE,
            unique_ws,
        )
        == 0
    )
    # the header form of the right token works
    r = await client.post("/webhooks/bison", content=json.dumps(doc), headers={"x-bisonsync-token": TOKEN})
    assert r.status_code == 200 and r.json()["status"] == "applied"


async def test_oversized_body_is_413(client: AsyncTestClient[Any], unique_ws: int) -> None:
    doc = load_fixture("lead_replied", unique_ws)
    doc["data"]["reply"]["text_body"] = "x" * (300 * 1024)
    r = await post(client, doc)
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"event": {"type": "email_sent", "workspace_id": 1', "invalid JSON"),
        (b"[1, 2, 3]", "object"),
        (b'{"data": {}}', "event"),
        (b'{"event": {"type": "email_sent", "workspace_id": "abc"}, "data": {}}', "workspace_id"),
        (b'{"event": {"type": "lead_interested", "workspace_id": 5}, "data": {}}', "data.lead"),
        (b'{"event": {"type": 7, "workspace_id": 5}, "data": {}}', "event.type"),
    ],
)
async def test_malformed_bodies_are_400_with_a_reason(client: AsyncTestClient[Any], body: bytes, fragment: str) -> None:
    r = await post(client, body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["error"]


async def test_unknown_type_is_200_ignored_and_replayable(
    client: AsyncTestClient[Any], db: asyncpg.Connection, unique_ws: int
) -> None:
    r = await post(client, load_fixture("unknown_type", unique_ws))
    assert r.status_code == 200 and r.json()["status"] == "ignored"
    row = await db.fetchrow(
        "select status, payload from public.webhook_deliveries where id = $1", r.json()["delivery_id"]
    )
    assert row is not None and row["status"] == "ignored" and row["payload"] is not None


async def test_legacy_interested_endpoint_shares_the_ledger(
    client: AsyncTestClient[Any], db: asyncpg.Connection, unique_ws: int
) -> None:
    doc = load_fixture("lead_interested", unique_ws)
    r = await post(client, doc, path="/functions/v1/bison-interested-webhook")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["workspace"] == "Client A" and body["status"] == "applied"
    # the same event through the universal alias (a second registration) does not count again
    r = await post(client, doc, path="/functions/v1/universal-bison-webhook")
    assert r.json()["status"] == "duplicate"
    assert (await counters(db, unique_ws))["interested"] == 1
    r = await post(client, load_fixture("email_sent", unique_ws), path="/functions/v1/bison-interested-webhook")
    assert r.status_code == 400 and r.json()["error"] == "Not a lead_interested event"


async def test_ops_endpoints(client: AsyncTestClient[Any], unique_ws: int) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).status_code == 200
    await post(client, load_fixture("email_sent", unique_ws))
    text = (await client.get("/metrics")).text
    assert 'bisonsync_webhook_deliveries_total{event_type="email_sent",outcome="applied"}' in text
    assert "bisonsync_webhook_latency_seconds_bucket" in text
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/webhooks/bison" in schema["paths"] and "/functions/v1/universal-bison-webhook" in schema["paths"]
    pre = await client.options(
        "/webhooks/bison",
        headers={
            "origin": "https://dash.example.com",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, apikey",
        },
    )
    assert pre.status_code in (200, 204)
    assert pre.headers["access-control-allow-origin"] == "*"

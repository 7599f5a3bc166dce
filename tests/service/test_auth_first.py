"""Authentication before anything else, bounded metrics and over-long values, on both stores: a request that
cannot prove it may write is refused before its body is parsed and writes nothing; /metrics labels come only from
the catalogue; no value a body carries can make the service answer 5xx."""

from __future__ import annotations

import json
import random
import re
import string
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from bisonsync.events import EVENT_TYPES
from bisonsync.ingest import hash_token
from bisonsync.store import Store
from service.app import create_app
from service.metrics import ServiceMetrics
from tests.service.conftest import TOKEN, load_fixture, settings_for
from tests.service.test_webhook import INSTANCE, post

SERIES = re.compile(r"^bisonsync_webhook_deliveries_total\{(?P<labels>[^}]*)\}", re.MULTILINE)


async def snapshot(db: asyncpg.Connection, bison_ws: int) -> dict[str, Any]:
    """Everything a delivery could have written about a workspace."""
    ws = await db.fetchval(
        "select id from public.workspaces where instance = $1 and bison_workspace_id = $2", INSTANCE, bison_ws
    )
    health = await db.fetchrow(
        "select workspace_name, last_webhook_at, webhook_count_24h, success_rate_24h, is_healthy, last_event_type, "
        "last_status, last_error, rejected_24h from public.webhook_health where workspace_id = $1",
        ws,
    )
    activity = await db.fetchrow("select * from public.webhook_activity where workspace_id = $1", ws)
    return {
        "workspace": ws,
        "health": dict(health) if health else None,
        "activity": dict(activity) if activity else None,
        "ledger_rows": await db.fetchval("select count(*) from public.webhook_deliveries"),
        "ledger_bytes": await db.fetchval(
            "select coalesce(sum(pg_column_size(d.*)), 0) from public.webhook_deliveries d"
        ),
        "workspaces": await db.fetchval("select count(*) from public.workspaces"),
    }


async def test_wrong_tokens_write_nothing_about_the_workspace_they_name(
    client: AsyncTestClient[Any], db: asyncpg.Connection, unique_ws: int
) -> None:
    for i in range(5):  # a healthy workspace
        doc = load_fixture("email_sent", unique_ws)
        doc["data"]["scheduled_email"]["id"] += i
        assert (await post(client, doc)).json()["status"] == "applied"
    before = await snapshot(db, unique_ws)
    assert before["health"]["is_healthy"] is True and before["health"]["webhook_count_24h"] == 5
    attack = load_fixture("email_sent", unique_ws)
    attack["event"]["type"] = "X" * 100_000  # attacker-sized
    for i in range(40):
        r = await post(client, attack, token=f"guess-{i}")
        assert r.status_code == 401 and r.json() == {"error": "invalid webhook token"}
    # an unknown workspace named by a refused body is not created either
    stranger = load_fixture("lead_replied", unique_ws + 1)
    assert (await post(client, stranger, token="guess")).status_code == 401
    assert await snapshot(db, unique_ws) == before
    metrics = (await client.get("/metrics")).text
    assert 'bisonsync_webhook_deliveries_total{event_type="unknown",outcome="rejected"}' in metrics
    assert "XXXX" not in metrics


@pytest.mark.parametrize("global_token", [TOKEN, None], ids=["global-token", "workspace-tokens-only"])
async def test_wrong_token_with_a_broken_body_is_401_not_400(store: Store, global_token: str | None) -> None:
    async with AsyncTestClient(app=create_app(settings_for(webhook_token=global_token), store=store)) as client:
        for body in (b'{"event": {"type": "email_sent", "workspace_id": 1', b"\xff\xfe", b"", b"[1]"):
            r = await client.post("/webhooks/bison", content=body, params={"token": "wrong"})
            assert r.status_code == 401, (body, r.text)
            assert "JSON" not in r.text
            r = await client.post("/webhooks/bison", content=body)
            assert r.status_code == 401
        if global_token:
            r = await client.post("/webhooks/bison", content=b'{"event": {', params={"token": global_token})
            assert r.status_code == 400 and "invalid JSON" in r.json()["error"]


async def test_a_workspace_token_presented_for_another_workspace_writes_nothing(
    store: Store, db: asyncpg.Connection, unique_ws: int
) -> None:
    ws_a = await db.fetchval("select public.upsert_workspace($1, $2::bigint, 'Pinned A')", INSTANCE, unique_ws)
    await db.fetchval("select public.upsert_workspace($1, $2::bigint, 'Pinned B')", INSTANCE, unique_ws + 1)
    token_a = f"token-a-{unique_ws}"
    await db.execute("select public.set_webhook_token($1::uuid, $2)", ws_a, hash_token(token_a))
    settings = settings_for(webhook_token=None, webhook_instances=("second-bison.example.com",))
    async with AsyncTestClient(app=create_app(settings, store=store)) as client:
        assert (await post(client, load_fixture("email_sent", unique_ws), token=token_a)).status_code == 200
        before_b = await snapshot(db, unique_ws + 1)
        before_a = await snapshot(db, unique_ws)
        body_b = load_fixture("lead_replied", unique_ws + 1)
        assert (await post(client, body_b, token=token_a)).status_code == 401
        assert (await post(client, b"{broken", token=token_a)).status_code == 400  # authenticated: parsed
        # A's token with a URL naming another instance is refused too
        r = await client.post(
            "/webhooks/bison",
            content=json.dumps(load_fixture("email_sent", unique_ws)),
            params={"token": token_a, "instance": "second-bison.example.com"},
        )
        assert r.status_code == 401
        # a revoked token stops at once, even while its lookup is cached
        await db.execute("select public.set_webhook_token($1::uuid, null)", ws_a)
        again = load_fixture("email_sent", unique_ws)
        again["data"]["scheduled_email"]["id"] += 1
        assert (await post(client, again, token=token_a)).status_code == 401
    assert await snapshot(db, unique_ws + 1) == before_b
    assert await snapshot(db, unique_ws) == before_a


async def test_metrics_series_are_bounded_whatever_the_types(client: AsyncTestClient[Any], unique_ws: int) -> None:
    async def series() -> set[str]:
        return set(SERIES.findall((await client.get("/metrics")).text))

    # warm up every outcome an invented type can get
    doc = load_fixture("unknown_type", unique_ws)
    assert (await post(client, doc)).json()["status"] == "ignored"
    assert (await post(client, doc)).json()["status"] == "duplicate"
    assert (await post(client, doc, token="wrong")).status_code == 401
    before = await series()
    size_before = len((await client.get("/metrics")).content)
    for i in range(1000):
        invented = load_fixture("unknown_type", unique_ws)
        invented["event"]["type"] = f"INVENTED_TYPE_{i}_{random.random()}"
        r = await post(client, invented, token=TOKEN if i % 2 else "wrong")
        assert r.status_code == (200 if i % 2 else 401)
    after = await series()
    assert after == before
    labels = {m for s in after for m in re.findall(r'event_type="([^"]*)"', s)}
    assert labels <= set(EVENT_TYPES) | {"unknown"}
    assert len((await client.get("/metrics")).content) < size_before + 200  # only counter values changed


def test_metrics_labels_come_from_the_catalogue() -> None:
    metrics = ServiceMetrics()
    for i in range(1000):
        metrics.observe(f"invented_{i}", f"outcome_{i}", 0.001)
    metrics.observe("email_sent", "applied", 0.001)
    text = metrics.render().decode()
    assert set(SERIES.findall(text)) == {
        'event_type="unknown",outcome="failed"',
        'event_type="email_sent",outcome="applied"',
    }


def _random_text(rng: random.Random, n: int = 3000) -> str:
    alphabet = string.ascii_letters + string.digits + "éßøΩжआ中😀-._"
    return "".join(rng.choice(alphabet) for _ in range(n))


LONG_VALUES: dict[str, tuple[str, Any]] = {
    "workspace_name": ("email_sent", lambda d, v: d["event"].update(workspace_name=v)),
    "instance_url": ("email_sent", lambda d, v: d["event"].update(instance_url=f"https://{v}")),
    "lead.email": ("lead_replied", lambda d, v: d["data"]["lead"].update(email=f"{v}@example.com")),
    "reply.uuid": ("lead_replied", lambda d, v: d["data"]["reply"].update(uuid=v)),
    "sender_email.email": (
        "email_account_added",
        lambda d, v: d["data"]["sender_email"].update(email=f"{v}@example.com"),
    ),
}


@pytest.mark.parametrize("field", sorted(LONG_VALUES))
async def test_over_long_values_never_give_5xx_and_keep_the_payload(
    client: AsyncTestClient[Any], db: asyncpg.Connection, unique_ws: int, field: str
) -> None:
    fixture, put = LONG_VALUES[field]
    doc = load_fixture(fixture, unique_ws)
    put(doc, _random_text(random.Random(field)))
    if fixture == "lead_replied" and field == "reply.uuid":
        doc["data"]["reply"].pop("id")  # make the uuid the reply's identity
    for attempt in range(3):  # Email Bison retries: never a 5xx, nothing lost, nothing counted twice
        r = await post(client, doc)
        assert r.status_code in (200, 422), (attempt, r.text)
        body = r.json()
        assert body["delivery_id"], body
        if r.status_code == 422:
            assert body["status"] == "failed" and "SQLSTATE" in body["error"]
    first = await db.fetchrow(
        "select d.status, d.payload is not null as kept, d.processing_ms from public.webhook_deliveries d "
        "join public.workspaces w on w.id = d.workspace_id "
        "where w.bison_workspace_id = $1 and d.duplicate_of is null",
        unique_ws,
    )
    assert first is not None and first["kept"] and first["processing_ms"] is not None
    assert first["status"] in ("applied", "failed")
    name = await db.fetchval("select name from public.workspaces where bison_workspace_id = $1", unique_ws)
    assert len(name) <= 200


def test_the_webhook_url_may_name_only_configured_instances() -> None:
    from typing import cast

    from bisonsync.ingest import UnknownInstance, WebhookIngestor

    ingestor = WebhookIngestor(
        cast(Store, None),
        global_token=TOKEN,
        instance="Bison.Example.com",
        instances=["https://second.example.com/", "*.bench.invalid", " "],
    )
    assert ingestor._url_instance(None) is None and ingestor._url_instance("  ") is None
    assert ingestor._url_instance("BISON.example.com") == "bison.example.com"
    assert ingestor._url_instance("second.example.com") == "second.example.com"
    assert ingestor._url_instance("run-1.bench.invalid") == "run-1.bench.invalid"
    for refused in ("bench.invalid", "evil-bench.invalid", "third.example.com", "not a host", "x" * 5000):
        with pytest.raises(UnknownInstance):
            ingestor._url_instance(refused)

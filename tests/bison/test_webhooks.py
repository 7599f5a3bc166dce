"""Webhook management endpoints: per-workspace CRUD, event types, sample payloads, test events."""

from __future__ import annotations

import httpx
import msgspec
import pytest

from bisonsync.bison import EVENT_TYPES, BisonClient, BisonNotFound, BisonRequestError
from devstack.simulator import SimulatedBison

from .conftest import Receiver

HOOK_URL = "http://127.0.0.1:9/bisonsync/webhook"


async def test_webhook_crud_is_per_workspace(sim: SimulatedBison, client: BisonClient) -> None:
    a, b = list(sim.teams)[1:3]
    async with client.workspace(a) as ws:
        hook = await ws.create_webhook("bisonsync", HOOK_URL, ["lead_interested", "email_sent"])
        assert (hook.name, hook.url, hook.events) == ("bisonsync", HOOK_URL, ["lead_interested", "email_sent"])
        assert [h.id for h in await ws.list_webhooks()] == [hook.id]
        updated = await ws.update_webhook(hook.id, events=list(EVENT_TYPES))
        assert updated.events == list(EVENT_TYPES) and updated.url == HOOK_URL
        assert (await ws.get_webhook(hook.id)).events == list(EVENT_TYPES)
    async with client.workspace(b) as ws:
        assert await ws.list_webhooks() == []
        with pytest.raises(BisonNotFound):
            await ws.get_webhook(hook.id)
        other = await ws.create_webhook("other", HOOK_URL, ["email_bounced"])
        assert other.id == hook.id  # ids are per workspace
    async with client.workspace(a) as ws:
        await ws.delete_webhook(hook.id)
        assert await ws.list_webhooks() == []
    assert len(sim.webhooks[b]) == 1


async def test_many_webhooks_page_like_everything_else(sim: SimulatedBison, client: BisonClient) -> None:
    async with client.workspace(sim.parent_id) as ws:
        for n in range(20):
            await ws.create_webhook(f"hook {n}", HOOK_URL, ["email_sent"])
        assert len(await ws.list_webhooks()) == 20


async def test_invalid_webhooks_are_refused(sim: SimulatedBison, client: BisonClient) -> None:
    with pytest.raises(BisonRequestError) as caught:
        await client.create_webhook("bad", HOOK_URL, ["LEAD_INTERESTED"])
    assert caught.value.status_code == 422
    with pytest.raises(BisonRequestError):
        await client.create_webhook("bad", "not a url", ["email_sent"])


async def test_event_types_and_samples(sim: SimulatedBison, client: BisonClient) -> None:
    types = await client.event_types()
    assert len(types) == 17 and {t.id: t.name for t in types} == EVENT_TYPES
    sample = await client.sample_payload("lead_replied")
    assert sample["event"]["type"] == "lead_replied" and sample["event"]["workspace_id"] == sim.parent_id
    assert {"lead", "reply", "campaign", "sender_email"} <= set(sample["data"])
    with pytest.raises(BisonRequestError):
        await client.sample_payload("campaign_event")


async def test_test_event_posts_a_sample(sim: SimulatedBison, client: BisonClient, receiver: Receiver) -> None:
    sim.webhook_transport = httpx.ASGITransport(app=receiver)
    team = list(sim.teams)[2]
    async with client.workspace(team) as ws:
        result = await ws.send_test_event("lead_interested", HOOK_URL)
    assert result.success and result.status_code == 200
    [delivery] = receiver.deliveries
    body = msgspec.json.decode(delivery.body)
    assert delivery.path == "/bisonsync/webhook"
    assert body["event"]["type"] == "lead_interested" and body["event"]["workspace_id"] == team
    assert body["event"]["workspace_name"] == sim.teams[team].name
    assert sim.test_events == [(HOOK_URL, "lead_interested", 200)]


async def test_test_event_only_goes_to_loopback(sim: SimulatedBison, client: BisonClient) -> None:
    with pytest.raises(BisonRequestError, match="loopback"):
        await client.send_test_event("email_sent", "https://hooks.example.com/x")

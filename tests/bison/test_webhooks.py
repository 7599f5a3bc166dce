"""Webhook management endpoints: per-workspace CRUD, event types, sample payloads, test events."""

from __future__ import annotations

from datetime import date

import httpx
import msgspec
import pytest

from bisonsync.bison import (
    EVENT_TYPES,
    SUBSCRIBABLE_EVENT_TYPES,
    BisonClient,
    BisonNotFound,
    BisonProtocolError,
    BisonRequestError,
)
from devstack.simulator import SimulatedBison

from .conftest import Receiver

HOOK_URL = "http://127.0.0.1:9/bisonsync/webhook"


async def test_webhook_crud_is_per_workspace(sim: SimulatedBison, client: BisonClient) -> None:
    a, b = list(sim.teams)[1:3]
    async with client.workspace(a) as ws:
        hook = await ws.create_webhook("bisonsync", HOOK_URL, ["lead_interested", "email_sent"])
        assert (hook.name, hook.url, hook.events) == ("bisonsync", HOOK_URL, ["lead_interested", "email_sent"])
        assert [h.id for h in await ws.list_webhooks()] == [hook.id]
        updated = await ws.update_webhook(hook.id, events=list(SUBSCRIBABLE_EVENT_TYPES))
        assert updated.events == list(SUBSCRIBABLE_EVENT_TYPES) and updated.url == HOOK_URL
        assert (await ws.get_webhook(hook.id)).events == list(SUBSCRIBABLE_EVENT_TYPES)
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


async def test_the_webhook_list_is_a_bare_data_list(sim: SimulatedBison, client: BisonClient) -> None:
    async with client.workspace(sim.parent_id) as ws:
        for n in range(20):
            await ws.create_webhook(f"hook {n}", HOOK_URL, ["EMAIL_SENT"])
        hooks = await ws.list_webhooks()
    assert len(hooks) == 20 and all(h.events == ["email_sent"] for h in hooks)


async def test_bare_data_lists_decode_as_one_page() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/webhook-url":
            return httpx.Response(
                200, json={"data": [{"id": 1, "name": "a", "url": HOOK_URL, "events": ["EMAIL_SENT"]}]}
            )
        rows = [
            {"id": n, "email": f"m{n}@example.com", "status": "pending_move", "emails_sent_count": "12"}
            for n in range(3)
        ]
        return httpx.Response(200, json={"data": rows})

    async with BisonClient("http://bison.test", "k", transport=httpx.MockTransport(answer)) as client:
        [hook] = await client.list_webhooks()
        assert (hook.id, hook.events) == (1, ["EMAIL_SENT"])
        mailboxes = await client.list_sender_emails()
    assert [(m.id, m.status, m.emails_sent_count) for m in mailboxes] == [(n, "pending_move", 12) for n in range(3)]


async def test_invalid_webhooks_are_refused(sim: SimulatedBison, client: BisonClient) -> None:
    with pytest.raises(BisonRequestError) as caught:
        await client.create_webhook("bad", HOOK_URL, ["NOT_AN_EVENT"])
    assert caught.value.status_code == 422
    with pytest.raises(BisonRequestError):
        await client.create_webhook("bad", "not a url", ["email_sent"])


async def test_event_types_and_samples(sim: SimulatedBison, client: BisonClient) -> None:
    types = await client.event_types()
    assert len(types) == 13 and [t.id for t in types] == list(SUBSCRIBABLE_EVENT_TYPES)
    assert all(t.name == EVENT_TYPES[t.id] for t in types)
    sample = await client.sample_payload("LEAD_REPLIED")
    assert sample["event"]["type"] == "LEAD_REPLIED" and sample["event"]["workspace_id"] == sim.parent_id
    assert "instance_url" not in sample["event"]  # the reference's sample omits it
    assert {"lead", "reply", "campaign", "campaign_event", "scheduled_email", "sender_email"} <= set(sample["data"])
    with pytest.raises(BisonRequestError):
        await client.sample_payload("campaign_event")


async def test_test_event_posts_a_sample(sim: SimulatedBison, client: BisonClient, receiver: Receiver) -> None:
    sim.webhook_transport = httpx.ASGITransport(app=receiver)
    team = list(sim.teams)[2]
    async with client.workspace(team) as ws:
        result = await ws.send_test_event("lead_interested", HOOK_URL)
    assert result.success and result.message and result.status_code is None  # {success, message, payload}
    [delivery] = receiver.deliveries
    body = msgspec.json.decode(delivery.body)
    assert result.payload == body
    assert delivery.path == "/bisonsync/webhook"
    assert body["event"]["type"] == "LEAD_INTERESTED" and body["event"]["workspace_id"] == team
    assert body["event"]["workspace_name"] == sim.teams[team].name
    assert sim.test_events == [(HOOK_URL, "lead_interested", 200)]


async def test_test_event_only_goes_to_loopback(sim: SimulatedBison, client: BisonClient) -> None:
    with pytest.raises(BisonRequestError, match="loopback"):
        await client.send_test_event("email_sent", "https://hooks.example.com/x")


async def test_odd_mailbox_values_decode_instead_of_failing_the_page() -> None:
    row = {
        "id": "7",
        "email": "m7@example.com",
        "status": "connected",
        "daily_limit": None,
        "bounced_count": "3",
        "warmup_enabled": None,
        "unknown_field": {"kept": True},
    }

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [row], "meta": {"current_page": 1, "last_page": 1, "total": 1}})

    async with BisonClient("http://bison.test", "k", transport=httpx.MockTransport(answer)) as client:
        [mailbox] = await client.list_sender_emails()
    assert (mailbox.id, mailbox.status, mailbox.daily_limit, mailbox.bounced_count, mailbox.warmup_enabled) == (
        7,
        "connected",
        None,
        3,
        None,
    )


async def test_switch_workspace_answering_only_a_name(sim: SimulatedBison, client: BisonClient) -> None:
    team = list(sim.teams)[3]
    async with client.workspace(team) as ws:
        assert {m.id for m in await ws.list_sender_emails()} == set(sim.team_mailboxes[team])
    calls: list[dict[str, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("switch-workspace"):
            calls.append(msgspec.json.decode(request.content))
            # an answer that names another team by id is refused; a bare name is accepted
            body = {"data": {"name": "Client "}} if len(calls) == 1 else {"data": {"id": 999, "name": "Other"}}
            return httpx.Response(200, json=body)
        return httpx.Response(200, json={"data": {"emails_sent": "5"}})

    async with BisonClient("http://bison.test", "super", transport=httpx.MockTransport(answer)) as other:
        async with other.workspace(42) as ws:
            assert (await ws.workspace_stats(date(2026, 1, 1), date(2026, 1, 31))).emails_sent == 5
        with pytest.raises(BisonProtocolError):
            async with other.workspace(43):
                pass
    assert calls == [{"team_id": 42}, {"team_id": 43}]

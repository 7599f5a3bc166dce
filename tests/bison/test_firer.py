"""The webhook firer: realistic payloads, exact re-sends, reordering, bounds, and a ground truth that the
simulator's stats endpoint agrees with."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import msgspec
import pytest

from bisonsync.bison import EVENT_TYPES, BisonClient
from devstack.simulator import TOKEN_HEADER, SimulatedBison, WebhookFirer

from .conftest import Receiver

HOOK = "http://127.0.0.1:8099/webhooks/bison"


def firer(sim: SimulatedBison, receiver: Receiver, **kw: Any) -> WebhookFirer:
    kw.setdefault("rate_per_s", 1_000_000)
    kw.setdefault("concurrency", 1)
    return WebhookFirer(HOOK, sim, transport=httpx.ASGITransport(app=receiver), **kw)


async def test_ground_truth_matches_what_arrived_and_what_stats_say(
    sim: SimulatedBison, receiver: Receiver, client: BisonClient
) -> None:
    run = firer(sim, receiver, count=3000, seed=11, token="webhook-secret")
    truth = await run.run()
    assert truth.deliveries == len(receiver.deliveries) == 3000
    # exact re-sends are the asked-for share of deliveries, and nothing else repeats
    bodies = Counter(d.body for d in receiver.deliveries)
    assert len(bodies) == truth.distinct == truth.deliveries - truth.duplicates
    assert 0.035 <= truth.duplicates / truth.deliveries <= 0.065
    assert truth.reordered > 0
    assert all(d.query == {"token": ["webhook-secret"]} for d in receiver.deliveries)
    # per workspace and type, the distinct bodies are exactly the ground truth
    seen: dict[int, Counter[str]] = {}
    for body in bodies:
        event = msgspec.json.decode(body)["event"]
        seen.setdefault(event["workspace_id"], Counter())[event["type"]] += 1
    assert seen == truth.fired == truth.accepted
    assert truth.total("email_sent") > truth.deliveries / 2
    # Bison's own stats agree with the ground truth
    today = sim.today()
    for team, fired in truth.fired.items():
        async with client.workspace(team) as ws:
            stats = await ws.workspace_stats(today, today)
        assert stats.emails_sent == fired["email_sent"]
        assert stats.interested == fired["lead_interested"]
        assert stats.bounced == fired["email_bounced"]
        assert stats.unsubscribed == fired["lead_unsubscribed"]
        assert stats.replied == fired["lead_replied"]
        assert stats.unique_replies_per_contact == len(truth.replied_leads.get(team, ()))
        assert stats.total_leads_contacted == fired["lead_first_contacted"]


async def test_every_type_looks_like_the_spec(sim: SimulatedBison, receiver: Receiver) -> None:
    mailbox_ids = set(sim.mailboxes)
    truth = await firer(sim, receiver, count=600, duplicate_share=0, weights=dict.fromkeys(EVENT_TYPES, 1.0)).run()
    assert set().union(*truth.fired.values()) == set(EVENT_TYPES)
    bodies = [msgspec.json.decode(d.body) for d in receiver.deliveries]
    mailbox_ids |= {b["data"]["sender_email"]["id"] for b in bodies if b["event"]["type"] == "email_account_added"}
    interested_leads: list[int] = []
    for body in bodies:
        event, data = body["event"], body["data"]
        assert set(event) == {"type", "name", "instance_url", "workspace_id", "workspace_name"}
        assert event["name"] == EVENT_TYPES[event["type"]] and event["instance_url"] == "https://bison.local"
        assert event["workspace_name"] == sim.teams[event["workspace_id"]].name
        if "sender_email" in data:
            assert data["sender_email"]["id"] in mailbox_ids
        if event["type"] in ("lead_replied", "lead_interested"):
            assert {"lead", "reply", "campaign", "sender_email"} <= set(data)
            assert {"id", "uuid", "date_received", "text_body", "from_email_address"} <= set(data["reply"])
            assert isinstance(data["lead"]["custom_variables"], list)
        if event["type"] == "lead_interested":
            interested_leads.append(data["lead"]["id"])
        if event["type"] == "manual_email_sent":
            assert data["reply"]["to"][0]["address"] == data["lead"]["email"]
        if event["type"] in ("email_account_added", "email_account_reconnected"):
            assert data["sender_email"]["status"] == "Connected"
        if event["type"] == "email_account_disconnected":
            assert data["sender_email"]["status"] == "Disconnected"
    assert len(interested_leads) == len(set(interested_leads))  # lead_interested fires once per lead


async def test_account_events_change_the_simulated_mailboxes(sim: SimulatedBison, receiver: Receiver) -> None:
    await firer(sim, receiver, count=40, duplicate_share=0, weights={"email_account_disconnected": 1}).run()
    for delivery in receiver.deliveries:
        sender = msgspec.json.decode(delivery.body)["data"]["sender_email"]
        assert sim.mailboxes[sender["id"]].status == "Disconnected"


async def test_header_tokens_per_workspace_and_upper_case_types(sim: SimulatedBison, receiver: Receiver) -> None:
    tokens = {team: f"token-for-{team}" for team in sim.teams}
    await firer(sim, receiver, count=200, token=tokens, token_mode="header", upper_case_share=0.5).run()
    cases: Counter[bool] = Counter()
    for delivery in receiver.deliveries:
        event = msgspec.json.decode(delivery.body)["event"]
        assert delivery.headers[TOKEN_HEADER.lower()] == tokens[event["workspace_id"]] and not delivery.query
        cases[event["type"].isupper()] += 1
    assert cases[True] > 50 and cases[False] > 50


async def test_failures_are_counted_and_accepted_is_what_got_a_2xx(sim: SimulatedBison, receiver: Receiver) -> None:
    receiver.status = lambda delivery: 500 if len(receiver.deliveries) % 4 == 0 else 200
    truth = await firer(sim, receiver, count=400).run()
    assert truth.failures == truth.statuses[500] == 100
    assert sum(sum(c.values()) for c in truth.accepted.values()) < truth.distinct


async def test_bounded_in_time(sim: SimulatedBison, receiver: Receiver) -> None:
    started = time.monotonic()
    truth = await firer(sim, receiver, rate_per_s=200, duration_s=0.3, count=10**6).run()
    assert time.monotonic() - started < 1.5
    assert 10 <= truth.deliveries <= 62


def test_loopback_only_and_always_bounded(sim: SimulatedBison) -> None:
    with pytest.raises(ValueError, match="loopback"):
        WebhookFirer("https://hooks.example.com/x", sim, count=1)
    with pytest.raises(ValueError, match="bound"):
        WebhookFirer(HOOK, sim)
    with pytest.raises(ValueError, match="unknown event types"):
        WebhookFirer(HOOK, sim, count=1, weights={"LEAD_INTERESTED": 1})
    assert WebhookFirer(HOOK, sim, count=10, rate_per_s=10).duration_s <= 10

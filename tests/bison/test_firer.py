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


#: the event types whose every delivery moves a counter: their identity is in the body (campaign_event, reply)
COUNTED = (
    "email_sent",
    "lead_first_contacted",
    "lead_replied",
    "lead_interested",
    "email_bounced",
    "lead_unsubscribed",
)


def identity(body: dict[str, Any]) -> tuple[Any, ...]:
    """What makes a delivery this event, from the ids it carries (never its counters or timestamps)."""
    kind, data = body["event"]["type"].lower(), body["data"]
    if "campaign_event" in data:
        return kind, "campaign_event", data["campaign_event"]["id"]
    if "reply" in data:
        return kind, "reply", data["reply"]["id"]
    if "tag_id" in data:
        return kind, "tag", data["tag_id"], data["taggable_id"]
    return kind, "sender_email", data["sender_email"]["id"]


async def test_ground_truth_matches_what_arrived_and_what_stats_say(
    sim: SimulatedBison, receiver: Receiver, client: BisonClient
) -> None:
    run = firer(sim, receiver, count=3000, seed=11, token="webhook-secret")
    truth = await run.run()
    assert truth.deliveries == len(receiver.deliveries) == 3000
    # retries are the asked-for share of deliveries; about half re-rendered with moved counters
    assert 0.035 <= truth.duplicates / truth.deliveries <= 0.065
    assert 0.3 <= truth.rerendered / truth.duplicates <= 0.7
    assert truth.reordered > 0
    assert all(d.query == {"token": ["webhook-secret"]} for d in receiver.deliveries)
    bodies = [msgspec.json.decode(d.body) for d in receiver.deliveries]
    by_identity: dict[tuple[Any, ...], set[bytes]] = {}
    for delivery, body in zip(receiver.deliveries, bodies, strict=True):
        by_identity.setdefault(identity(body), set()).add(delivery.body)
    # re-rendered retries carry the same ids in a different body: more distinct bodies than events
    assert len({d.body for d in receiver.deliveries}) > truth.distinct
    assert any(len(v) > 1 for v in by_identity.values())
    # per workspace and counted type, the distinct identities are exactly the ground truth
    seen: dict[int, Counter[str]] = {}
    for key in by_identity:
        body = next(b for b in bodies if identity(b) == key)
        if key[0] in COUNTED:
            seen.setdefault(body["event"]["workspace_id"], Counter())[key[0]] += 1
    for fired in (truth.fired, truth.accepted):
        assert seen == {t: Counter({k: n for k, n in c.items() if k in COUNTED}) for t, c in fired.items()}
    assert truth.total("email_sent") > truth.deliveries / 2
    # Bison's own stats agree with the ground truth (as real instances answer: strings, no `replied`)
    today = sim.today()
    for team, fired_counts in truth.fired.items():
        async with client.workspace(team) as ws:
            stats = await ws.workspace_stats(today, today)
        assert stats.emails_sent == fired_counts["email_sent"]
        assert stats.interested == fired_counts["lead_interested"]
        assert stats.bounced == fired_counts["email_bounced"]
        assert stats.unsubscribed == fired_counts["lead_unsubscribed"]
        assert stats.replied is None
        assert stats.unique_replies_per_contact == len(truth.replied_leads.get(team, ()))
        assert stats.total_leads_contacted == fired_counts["lead_first_contacted"]


async def test_a_re_rendered_retry_is_the_same_event_with_moved_counters(
    sim: SimulatedBison, receiver: Receiver
) -> None:
    truth = await firer(sim, receiver, count=1500, seed=3, duplicate_share=0.3, rerender_share=1.0).run()
    assert truth.rerendered == truth.duplicates > 0
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for delivery in receiver.deliveries:
        body = msgspec.json.decode(delivery.body)
        groups.setdefault(identity(body), []).append(body)
    moved = 0
    for first, *retries in (g for g in groups.values() if len(g) > 1):
        for retry in retries:
            assert retry["event"] == first["event"]
            for part in ("scheduled_email", "campaign_event", "reply", "campaign"):
                assert retry["data"].get(part) == first["data"].get(part)  # the event's own ids and texts
            moved += retry != first
    assert moved > 0  # counters / updated_at moved between renderings
    assert truth.distinct == truth.deliveries - truth.duplicates  # ground truth: a retry counts once


async def test_every_type_looks_like_real_traffic(sim: SimulatedBison, receiver: Receiver) -> None:
    mailbox_ids = set(sim.mailboxes)
    weights = dict.fromkeys(EVENT_TYPES, 1.0)
    truth = await firer(sim, receiver, count=600, duplicate_share=0, weights=weights).run()
    assert set().union(*truth.fired.values()) == set(EVENT_TYPES)
    bodies = [msgspec.json.decode(d.body) for d in receiver.deliveries]
    mailbox_ids |= {b["data"]["sender_email"]["id"] for b in bodies if b["event"]["type"] == "EMAIL_ACCOUNT_ADDED"}
    interested_leads: list[int] = []
    replies: dict[str, set[int]] = {"LEAD_REPLIED": set(), "LEAD_INTERESTED": set()}
    for body in bodies:
        event, data = body["event"], body["data"]
        kind = event["type"]
        assert kind.isupper() and kind.lower() in EVENT_TYPES
        assert set(event) == {"type", "name", "instance_url", "workspace_id", "workspace_name"}
        assert event["instance_url"] == "https://bison.local"
        assert event["workspace_name"] == sim.teams[event["workspace_id"]].name
        if "sender_email" in data:
            sender = data["sender_email"]
            assert sender["id"] in mailbox_ids and sender["status"] == sender["status"].lower()
            assert {"type", "daily_limit", "emails_sent", "replied", "bounced", "interested", "updated_at"} <= set(
                sender
            )
        if "lead" in data:
            lead = data["lead"]
            assert isinstance(lead["custom_variables"], list)
            assert {"emails_sent", "opens", "unique_opens", "replies", "unique_replies", "bounces"} <= set(lead)
        if kind in ("EMAIL_SENT", "LEAD_FIRST_CONTACTED", "EMAIL_BOUNCED", "LEAD_REPLIED", "LEAD_INTERESTED"):
            assert {"id", "type", "created_at", "created_at_local", "local_timezone"} == set(data["campaign_event"])
            assert {"id", "lead_id", "sequence_step_id", "sequence_step_order", "sent_at", "raw_message_id"} <= set(
                data["scheduled_email"]
            )
        if "reply" in data:
            reply = data["reply"]
            assert {
                "id",
                "uuid",
                "date_received",
                "text_body",
                "html_body",
                "from_email_address",
                "type",
                "folder",
            } <= (set(reply))
            assert "body_plain" not in reply
        if kind in replies:
            replies[kind].add(data["reply"]["id"])
        if kind == "EMAIL_BOUNCED":
            assert data["reply"]["type"] == data["reply"]["folder"] == "Bounced"
        if kind == "LEAD_INTERESTED":
            interested_leads.append(data["lead"]["id"])
        if kind == "MANUAL_EMAIL_SENT":
            assert data["reply"]["to"][0]["address"] == data["lead"]["email"]
        if kind in ("EMAIL_ACCOUNT_ADDED", "EMAIL_ACCOUNT_RECONNECTED"):
            assert data["sender_email"]["status"] == "connected"
        if kind == "EMAIL_ACCOUNT_DISCONNECTED":
            assert data["sender_email"]["status"] == "disconnected"
        if kind in ("TAG_ATTACHED", "TAG_REMOVED"):
            assert set(data) == {"tag_id", "tag_name", "taggable_id", "taggable_type"}  # flat
    assert len(interested_leads) == len(set(interested_leads))  # lead_interested fires once per lead
    # LEAD_INTERESTED of a reply that also fired LEAD_REPLIED carries the same reply id
    assert replies["LEAD_INTERESTED"] & replies["LEAD_REPLIED"]


@pytest.mark.parametrize("mode", ["omit", "generic"])
async def test_instance_url_can_be_omitted_or_generic(mode: str, sim: SimulatedBison, receiver: Receiver) -> None:
    await firer(sim, receiver, count=50, instance_url=mode).run()
    events = [msgspec.json.decode(d.body)["event"] for d in receiver.deliveries]
    urls = {e.get("instance_url", "<none>") for e in events}
    assert urls == ({"<none>"} if mode == "omit" else {"https://app.emailbison.com"})


async def test_custom_variables_as_an_object(sim: SimulatedBison, receiver: Receiver) -> None:
    await firer(sim, receiver, count=200, object_variables_share=1.0).run()
    leads = [
        b["data"]["lead"]
        for b in map(msgspec.json.decode, (d.body for d in receiver.deliveries))
        if "lead" in b["data"]
    ]
    assert leads and all(isinstance(lead["custom_variables"], dict) for lead in leads)


async def test_account_events_change_the_simulated_mailboxes(sim: SimulatedBison, receiver: Receiver) -> None:
    await firer(sim, receiver, count=40, duplicate_share=0, weights={"email_account_disconnected": 1}).run()
    for delivery in receiver.deliveries:
        sender = msgspec.json.decode(delivery.body)["data"]["sender_email"]
        assert sim.mailboxes[sender["id"]].status == "Disconnected"


async def test_header_tokens_per_workspace_and_legacy_lower_case_types(sim: SimulatedBison, receiver: Receiver) -> None:
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

"""Webhook events as Email Bison sends them (spec §2): the envelope and a `data` shape per type.

`EventFactory.make` returns one *distinct* event: its body, and the effects it has on the simulated instance
(ledger, mailbox counters and status), applied once when the event is first delivered. Every distinct event
differs in its body (a new lead, reply, scheduled email, tag or account), so a receiver can tell a re-send (same
bytes) from a new event.
"""

from __future__ import annotations

import functools
import hashlib
import random
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from bisonsync.bison.models import EVENT_TYPES
from devstack.simulator.data import FIRST_NAMES, LAST_NAMES, MailboxRecord, TagRecord

if TYPE_CHECKING:
    from devstack.simulator.state import SimulatedBison

_encode = msgspec.json.Encoder().encode
#: how many recent event bodies are remembered to keep distinct events distinct
RECENT_WINDOW = 100_000

#: Default share of each type among fired events: mostly sends, some replies, few account events.
DEFAULT_WEIGHTS: dict[str, float] = {
    "email_sent": 0.70,
    "lead_first_contacted": 0.07,
    "lead_replied": 0.06,
    "lead_interested": 0.03,
    "email_bounced": 0.04,
    "lead_unsubscribed": 0.02,
    "manual_email_sent": 0.015,
    "untracked_reply_received": 0.01,
    "email_opened": 0.01,
    "email_account_added": 0.005,
    "email_account_removed": 0.003,
    "email_account_disconnected": 0.006,
    "email_account_reconnected": 0.004,
    "tag_attached": 0.004,
    "tag_removed": 0.003,
    "warmup_disabled_causing_bounces": 0.002,
    "warmup_disabled_receiving_bounces": 0.002,
}

VARIABLES: dict[str, Callable[[random.Random], str]] = {
    "phone number": lambda r: f"555-01{r.randint(0, 99):02d}",
    "cell phone": lambda r: f"555-02{r.randint(0, 99):02d}",
    "street address": lambda r: f"{r.randint(1, 9999)} {r.choice(('Main', 'Oak', 'Elm', 'Lake', 'Hill'))} St",
    "city": lambda r: r.choice(("Springfield", "Riverton", "Fairview", "Greenville", "Madison")),
    "state": lambda r: r.choice(("NE", "TX", "OH", "FL", "GA", "IL")),
    "zip": lambda r: f"{r.randint(10000, 99999)}",
    "renewal date": lambda r: r.choice(("December 1st", "1/15", "March", "next month")),
    "date of birth": lambda r: f"{r.randint(1, 12)}/{r.randint(1, 28)}/{r.randint(1950, 1999)}",
    "home value": lambda r: f"${r.randint(150, 900)},000",
    "current carrier": lambda r: r.choice(("State Farm", "Allstate", "Progressive", "GEICO")),
    "dotno": lambda r: f"{r.randint(1000000, 3999999)}",
    "class code": lambda r: f"{r.randint(1000, 9999)}",
    "website": lambda r: f"https://www.{r.choice(('acme', 'brightline', 'northfield'))}.example",
}
SEND_COUNTERS = {
    "email_sent": "emails_sent_count",
    "email_bounced": "bounced_count",
    "lead_first_contacted": "total_leads_contacted_count",
}
REPLIES = (
    "Yes please send me a quote",
    "Not interested, please remove me",
    "Call me next week",
    "What does it cost?",
    "I am out of the office until Monday",
    "Sure, what times work for you?",
)


@dataclass
class Lead:
    id: int
    email: str
    first_name: str
    last_name: str
    custom_variables: list[dict[str, str]]
    company: str | None = None
    title: str | None = None
    reply: dict[str, Any] | None = None

    def payload(self, status: str = "active", *, full: bool = True) -> dict[str, Any]:
        if not full:
            return {"id": self.id, "email": self.email}
        return {
            "id": self.id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "status": status,
            "title": self.title,
            "company": self.company,
            "custom_variables": self.custom_variables,
            "interested": status == "interested",
        }


@dataclass
class Event:
    """One distinct event. `apply` records it in the simulated instance; call it once, on first delivery."""

    type: str
    team_id: int
    body: dict[str, Any]
    #: the body as JSON, sent byte for byte (re-sends included)
    raw: bytes
    apply: Callable[[], None]


@dataclass
class _TeamState:
    leads: deque[Lead] = field(default_factory=lambda: deque(maxlen=500))
    replied: deque[Lead] = field(default_factory=lambda: deque(maxlen=200))
    campaigns: list[dict[str, Any]] = field(default_factory=list)


class EventFactory:
    """Makes realistic distinct events for a `SimulatedBison`, deterministic given the RNG."""

    def __init__(self, sim: SimulatedBison, rng: random.Random, *, instance_url: str | None = None) -> None:
        self.sim = sim
        self.rng = rng
        self.instance_url = instance_url or sim.instance_url
        self._teams: dict[int, _TeamState] = {}
        self._interested: set[int] = set()
        self._unsubscribed: set[int] = set()
        self._recent: dict[bytes, None] = {}
        base = rng.randint(1, 9) * 1_000_000
        self._next = {"lead": base, "reply": base + 500_000, "scheduled": base * 3, "campaign": rng.randint(100, 900)}

    def _id(self, kind: str) -> int:
        self._next[kind] += self.rng.choice((1, 1, 2, 3))
        return self._next[kind]

    def _team(self, team_id: int) -> _TeamState:
        state = self._teams.get(team_id)
        if state is None:
            state = self._teams[team_id] = _TeamState()
            themes = ("Home Insurance", "Renewals", "Commercial Auto", "Roof Inspection", "Solar Savings", "Follow-up")
            for _ in range(self.rng.randint(2, 5)):
                name = f"{self.rng.choice(('Q4', 'Q1', 'Spring', 'Fall', 'Evergreen'))} {self.rng.choice(themes)}"
                state.campaigns.append({"id": self._id("campaign"), "name": name})
        return state

    def _new_lead(self, team: _TeamState) -> Lead:
        rng = self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        lead_id = self._id("lead")
        names = rng.sample(sorted(VARIABLES), rng.randint(0, 6))
        lead = Lead(
            id=lead_id,
            email=f"{first.lower()}.{last.lower()}{lead_id % 100_000}@{rng.choice(('example.com', 'example.org'))}",
            first_name=first,
            last_name=last,
            custom_variables=[{"name": n, "value": VARIABLES[n](rng)} for n in names],
            company=rng.choice((None, None, f"{last} & Sons", f"{last} LLC")),
            title=rng.choice((None, None, "Owner", "Office Manager")),
        )
        team.leads.append(lead)
        return lead

    def _lead(self, team: _TeamState) -> Lead:
        if team.leads and self.rng.random() < 0.7:
            return self.rng.choice(team.leads)
        return self._new_lead(team)

    def _mailbox(self, team_id: int, status: str | None = None) -> MailboxRecord | None:
        ids = self.sim.team_mailboxes.get(team_id) or []
        if status is not None:
            ids = [m for m in ids if self.sim.mailboxes[m].status == status]
        return self.sim.mailboxes[self.rng.choice(ids)] if ids else None

    def _reply(self, lead: Lead, *, interested: bool = False, subject: str = "Re: quick question") -> dict[str, Any]:
        text = self.rng.choice(REPLIES)
        return {
            "id": self._id("reply"),
            "uuid": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "date_received": self.sim.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "from_name": f"{lead.first_name} {lead.last_name}",
            "from_email_address": lead.email,
            "email_subject": subject,
            "text_body": text,
            "body_plain": text,
            "interested": interested,
            "automated_reply": text.startswith("I am out of the office"),
        }

    def _scheduled(self, campaign: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self._id("scheduled"),
            "sequence_step": self.rng.randint(1, 4),
            "sent_at": self.sim.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "email_subject": campaign["name"],
        }

    @staticmethod
    def _sender(mailbox: MailboxRecord, *, status: bool = False) -> dict[str, Any]:
        sender: dict[str, Any] = {"id": mailbox.id, "email": mailbox.email, "name": mailbox.name}
        if status:
            sender["status"] = mailbox.status
        return sender

    def envelope(self, event_type: str, team_id: int, data: dict[str, Any]) -> dict[str, Any]:
        team = self.sim.teams[team_id]
        return {
            "event": {
                "type": event_type,
                "name": EVENT_TYPES[event_type],
                "instance_url": self.instance_url,
                "workspace_id": team_id,
                "workspace_name": team.name,
            },
            "data": data,
        }

    def make(self, event_type: str, team_id: int) -> Event | None:
        """A new distinct `event_type` event in `team_id`, or None when the team's state does not allow one now."""
        team = self._team(team_id)
        sim, rng = self.sim, self.rng
        campaign = rng.choice(team.campaigns)
        mailbox = self._mailbox(team_id)
        lead_id: int | None = None
        effect: Callable[[], None] = _nothing
        mutate: Callable[[], None] = _nothing
        data: dict[str, Any]
        if mailbox is None and event_type not in ("lead_unsubscribed", "email_account_added"):
            return None
        if event_type in ("email_sent", "email_opened", "lead_first_contacted", "email_bounced"):
            assert mailbox is not None
            lead = self._new_lead(team) if event_type == "lead_first_contacted" else self._lead(team)
            data = {
                "lead": lead.payload(),
                "campaign": campaign,
                "sender_email": self._sender(mailbox),
                "scheduled_email": self._scheduled(campaign),
            }
            if event_type == "email_bounced":
                data["lead"] = lead.payload("bounced")
            effect = _bump(mailbox, SEND_COUNTERS.get(event_type))
        elif event_type in ("lead_replied", "lead_interested"):
            assert mailbox is not None
            interested = event_type == "lead_interested"
            # lead_interested fires only the first time a lead becomes interested (spec §6.3): never twice a lead
            pool = [lead for lead in team.replied if lead.id not in self._interested] if interested else []
            lead = rng.choice(pool) if pool else self._lead(team)
            if interested and lead.id in self._interested:
                lead = self._new_lead(team)
            if interested and lead.reply is not None:
                reply = {**lead.reply, "interested": True}  # the same reply, now marked interested
            else:
                reply = self._reply(lead, interested=interested, subject=f"Re: {campaign['name']}")
            if not interested:
                lead.reply = reply
                team.replied.append(lead)
            else:
                self._interested.add(lead.id)
            lead_id = lead.id
            data = {
                "lead": lead.payload("interested" if interested else "active"),
                "reply": reply,
                "campaign": campaign,
                "sender_email": self._sender(mailbox),
            }
            effect = _bump(mailbox, "interested_leads_count" if interested else "total_replied_count")
        elif event_type == "lead_unsubscribed":
            lead = self._lead(team)
            if lead.id in self._unsubscribed:  # a lead unsubscribes once
                lead = self._new_lead(team)
            self._unsubscribed.add(lead.id)
            data = {"lead": lead.payload("unsubscribed"), "campaign": campaign}
            if mailbox is not None:
                effect = _bump(mailbox, "unsubscribed_count")
        elif event_type == "manual_email_sent":
            assert mailbox is not None
            lead = rng.choice(team.replied) if team.replied else self._lead(team)
            reply = self._reply(lead, subject=f"Re: {campaign['name']}")
            reply["to"] = [{"address": lead.email, "name": lead.first_name}]
            data = {"lead": lead.payload(), "reply": reply, "sender_email": self._sender(mailbox)}
        elif event_type == "untracked_reply_received":
            assert mailbox is not None
            stranger = Lead(
                id=0,
                email=f"someone{rng.randint(1, 10**6)}@example.net",
                first_name=rng.choice(FIRST_NAMES),
                last_name=rng.choice(LAST_NAMES),
                custom_variables=[],
            )
            reply = self._reply(stranger, subject="Question")
            data = {"reply": reply, "sender_email": self._sender(mailbox)}
        elif event_type == "email_account_added":
            added = sim.add_mailboxes(team_id, 1)[0]
            added.status = "Connected"  # Bison fires this when an account is first connected
            data = {"sender_email": self._sender(added, status=True)}
        elif event_type == "email_account_removed":
            if len(sim.team_mailboxes[team_id]) < 2 or mailbox is None:
                return None
            data = {"sender_email": self._sender(mailbox, status=True)}
            mutate = functools.partial(sim.remove_mailbox, mailbox.id, team_id)
        elif event_type in ("email_account_disconnected", "email_account_reconnected"):
            status = "Connected" if event_type == "email_account_reconnected" else "Disconnected"
            eligible = [m for m in sim.mailboxes_of(team_id) if (m.status == "Connected") != (status == "Connected")]
            if not eligible:
                return None
            target = rng.choice(eligible)
            data = {"sender_email": {**self._sender(target), "status": status}}
            mutate = _set(target, "status", status)
        elif event_type in ("tag_attached", "tag_removed"):
            assert mailbox is not None
            if event_type == "tag_attached":
                tag = sim.tag(rng.choice(("Healthy", "Warming", "VIP", "Paused")))
                if tag in mailbox.tags:
                    return None
                mutate = _set(mailbox, "tags", [*mailbox.tags, tag])
            elif mailbox.tags:
                tag = rng.choice(mailbox.tags)
                mutate = _set(mailbox, "tags", [t for t in mailbox.tags if t is not tag])
            else:
                return None
            data = {"tag": _tag(tag), "sender_email": self._sender(mailbox)}
        elif event_type in ("warmup_disabled_causing_bounces", "warmup_disabled_receiving_bounces"):
            warm = [m for m in sim.mailboxes_of(team_id) if m.warmup_enabled]
            if not warm:
                return None
            target = rng.choice(warm)
            data = {"sender_email": {**self._sender(target, status=True), "warmup_enabled": False}}
            mutate = _set(target, "warmup_enabled", False)
        else:
            raise ValueError(f"unknown event type {event_type!r}")
        body = self.envelope(event_type, team_id, data)
        raw = _encode(body)
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        if digest in self._recent:  # Bison's payloads carry no event id: never make two distinct events look alike
            return None
        self._recent[digest] = None
        if len(self._recent) > RECENT_WINDOW:
            del self._recent[next(iter(self._recent))]
        mutate()  # what the event reports happens in the instance now; counters and the ledger on delivery

        def apply() -> None:
            effect()
            sim.record_event(team_id, event_type, lead_id)

        return Event(event_type, team_id, body, raw, apply)

    def sample(self, event_type: str, team_id: int) -> dict[str, Any]:
        """A sample body (`/sample-payload`, `/test-event`): a fresh event that changes nothing."""
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}")
        team = self._team(team_id)
        lead = self._lead(team)
        campaign = team.campaigns[0]
        mailbox = self._mailbox(team_id)
        sender = self._sender(mailbox, status=True) if mailbox else {"id": 1, "email": "rep@example.com", "name": "Rep"}
        data: dict[str, Any] = {"lead": lead.payload(), "campaign": campaign, "sender_email": sender}
        if event_type in ("lead_replied", "lead_interested", "manual_email_sent", "untracked_reply_received"):
            data["reply"] = self._reply(lead, interested=event_type == "lead_interested")
        if event_type in ("tag_attached", "tag_removed"):
            data["tag"] = {"id": 1, "name": "Sample", "default": False}
        return self.envelope(event_type, team_id, data)


def _nothing() -> None:
    return None


def _tag(tag: TagRecord) -> dict[str, Any]:
    return {"id": tag.id, "name": tag.name, "default": tag.default}


def _set(mailbox: MailboxRecord, attr: str, value: object) -> Callable[[], None]:
    def assign() -> None:
        setattr(mailbox, attr, value)

    return assign


def _bump(mailbox: MailboxRecord, counter: str | None) -> Callable[[], None]:
    def bump() -> None:
        if counter is not None:
            setattr(mailbox, counter, getattr(mailbox, counter) + 1)

    return bump

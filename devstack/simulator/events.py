"""Webhook events as real Email Bison instances send them: the envelope and a `data` shape per type.

The shapes follow what real traffic shows (UPPER_SNAKE_CASE `event.type`; `campaign_event` and a full
`scheduled_email` on send and reply events; the real `reply` fields; a webhook `sender_email` carrying the mailbox's
live counters and a lower-case status; flat tag events; `instance_url` that may be missing or a canned generic host).

`EventFactory.make` returns one *distinct* event: its identity (the ids it carries), a `render()` that draws its
body from the simulated instance's CURRENT state, and the effects it has on the instance (ledger, mailbox counters
and status), applied once when the event is first delivered. Because bodies embed live counters (lead and mailbox
counters, `updated_at`), a retry rendered later carries the same ids with moved counters, as a real retry does:
it is still the same event.
"""

from __future__ import annotations

import functools
import hashlib
import random
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from bisonsync.bison.models import EVENT_TYPES
from devstack.simulator.data import FIRST_NAMES, LAST_NAMES, MailboxRecord, TagRecord, iso

if TYPE_CHECKING:
    from devstack.simulator.state import SimulatedBison

_encode = msgspec.json.Encoder().encode
#: how many recent event identities are remembered to keep distinct events distinct
RECENT_WINDOW = 100_000
#: the vendor's own host, which a white-label instance's sample payloads carry instead of its own
GENERIC_INSTANCE_URL = "https://app.emailbison.com"
#: where `event.instance_url` comes from: the instance's own URL, nowhere (omitted), or the canned generic host
InstanceUrlMode = Literal["own", "omit", "generic"]

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

#: `event.name` as real deliveries label the lead events ("Lead Replied"); the others as the catalogue does
WIRE_NAMES: dict[str, str] = {
    **EVENT_TYPES,
    "lead_first_contacted": "Lead First Contacted",
    "lead_replied": "Lead Replied",
    "lead_interested": "Lead Interested",
    "lead_unsubscribed": "Lead Unsubscribed",
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
#: the mailbox counter a delivered event moves
MAILBOX_COUNTERS = {
    "email_sent": "emails_sent_count",
    "email_bounced": "bounced_count",
    "lead_first_contacted": "total_leads_contacted_count",
    "lead_replied": "total_replied_count",
    "lead_interested": "interested_leads_count",
    "lead_unsubscribed": "unsubscribed_count",
}
#: the lead counter a delivered event moves
LEAD_COUNTERS = {
    "email_sent": "emails_sent",
    "email_opened": "opens",
    "lead_replied": "replies",
    "email_bounced": "bounces",
}
#: campaign_event.type per event type
CAMPAIGN_EVENT_TYPES = {
    "email_sent": "sent",
    "lead_first_contacted": "sent",
    "email_opened": "opened",
    "lead_replied": "replied",
    "lead_interested": "interested",
    "email_bounced": "bounced",
    "lead_unsubscribed": "unsubscribed",
}
REPLIES = (
    "Yes please send me a quote",
    "Not interested, please remove me",
    "Call me next week",
    "What does it cost?",
    "I am out of the office until Monday",
    "Sure, what times work for you?",
)
TIMEZONES = ("America/Chicago", "America/New_York", "America/Denver", "America/Los_Angeles")


def _ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


@dataclass
class Lead:
    id: int
    email: str
    first_name: str
    last_name: str
    custom_variables: list[dict[str, str]]
    company: str | None = None
    title: str | None = None
    status: str = "active"
    reply: dict[str, Any] | None = None
    scheduled: dict[str, Any] | None = None
    #: live counters, embedded in every body that carries the lead
    emails_sent: int = 0
    opens: int = 0
    replies: int = 0
    bounces: int = 0
    replied_via: set[int] = field(default_factory=set)

    def payload(self, *, as_object: bool = False) -> dict[str, Any]:
        variables: Any = self.custom_variables
        if as_object:  # how at least one third-party client types it
            variables = {v["name"]: v["value"] for v in self.custom_variables}
        return {
            "id": self.id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "status": self.status,
            "title": self.title,
            "company": self.company,
            "custom_variables": variables,
            "emails_sent": self.emails_sent,
            "opens": self.opens,
            "unique_opens": min(self.opens, 1),
            "replies": self.replies,
            "unique_replies": min(self.replies, 1),
            "bounces": self.bounces,
            "interested": self.status == "interested",
        }


@dataclass
class Event:
    """One distinct event. `apply` records it in the simulated instance; call it once, on first delivery.
    `render()` draws the body again from the instance's current state (same ids, counters as they are now)."""

    type: str
    team_id: int
    body: dict[str, Any]
    #: the body as first rendered, as JSON
    raw: bytes
    apply: Callable[[], None]
    render: Callable[[], dict[str, Any]]
    #: the ids that make it this event (type included): what a receiver should deduplicate on
    identity: tuple[Any, ...] = ()


@dataclass
class _TeamState:
    leads: deque[Lead] = field(default_factory=lambda: deque(maxlen=500))
    replied: deque[Lead] = field(default_factory=lambda: deque(maxlen=200))
    campaigns: list[dict[str, Any]] = field(default_factory=list)


class EventFactory:
    """Makes realistic distinct events for a `SimulatedBison`, deterministic given the RNG.

    `instance_url`: "own" (the instance's URL, or the given URL), "omit" (no `instance_url` field, as in the API
    reference's sample), "generic" (the vendor's canned host). `upper_case`: the wire's UPPER_SNAKE_CASE types
    (False: the predecessor's snake_case, a legacy shape). `object_variables_share`: share of bodies whose
    `lead.custom_variables` is a keyed object instead of the documented array.
    """

    def __init__(
        self,
        sim: SimulatedBison,
        rng: random.Random,
        *,
        instance_url: InstanceUrlMode | str | None = None,
        upper_case: bool = True,
        object_variables_share: float = 0.0,
    ) -> None:
        self.sim = sim
        self.rng = rng
        self.instance_url: str | None
        if instance_url in (None, "own"):
            self.instance_url = sim.instance_url
        elif instance_url == "omit":
            self.instance_url = None
        elif instance_url == "generic":
            self.instance_url = GENERIC_INSTANCE_URL
        else:
            self.instance_url = instance_url
        self.upper_case = upper_case
        self.object_variables_share = object_variables_share
        self._teams: dict[int, _TeamState] = {}
        self._interested: set[int] = set()
        self._unsubscribed: set[int] = set()
        self._recent: dict[bytes, None] = {}
        base = rng.randint(1, 9) * 1_000_000
        self._next = {
            "lead": base,
            "reply": base + 500_000,
            "scheduled": base * 3,
            "campaign_event": base * 5,
            "campaign": rng.randint(100, 900),
            "step": rng.randint(1000, 5000),
        }

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
                steps = [self._id("step") for _ in range(self.rng.randint(2, 4))]
                state.campaigns.append({"id": self._id("campaign"), "name": name, "steps": steps})
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

    def _mailbox(self, team_id: int) -> MailboxRecord | None:
        ids = self.sim.team_mailboxes.get(team_id) or []
        return self.sim.mailboxes[self.rng.choice(ids)] if ids else None

    # -- sub-objects --------------------------------------------------------------------------------------------

    @staticmethod
    def _campaign(campaign: dict[str, Any]) -> dict[str, Any]:
        return {"id": campaign["id"], "name": campaign["name"]}

    def _campaign_event(self, kind: str) -> dict[str, Any]:
        now = self.sim.now()
        zone = self.rng.choice(TIMEZONES)
        local = now - timedelta(hours=5)
        return {
            "id": self._id("campaign_event"),
            "type": kind,
            "created_at": _ts(now),
            "created_at_local": local.strftime("%Y-%m-%d %H:%M:%S"),
            "local_timezone": zone,
        }

    def _scheduled(self, campaign: dict[str, Any], lead: Lead) -> dict[str, Any]:
        """A scheduled email: one per sequence step sent to a lead (its id is the send's identity)."""
        now = self.sim.now()
        order = self.rng.randint(1, len(campaign["steps"]))
        zone = self.rng.choice(TIMEZONES)
        scheduled = {
            "id": self._id("scheduled"),
            "lead_id": lead.id,
            "sequence_step_id": campaign["steps"][order - 1],
            "sequence_step_order": order,
            "sequence_step_variant": self.rng.randint(1, 2),
            "email_subject": f"{campaign['name']}: quick question",
            "email_body": f"<p>Hi {lead.first_name},</p><p>Do you have a minute for {campaign['name']}?</p>",
            "status": "sent",
            "scheduled_date_est": (now - timedelta(hours=5)).strftime("%Y-%m-%d %H:%M:%S"),
            "scheduled_date_local": (now - timedelta(hours=6)).strftime("%Y-%m-%d %H:%M:%S"),
            "local_timezone": zone,
            "sent_at": _ts(now),
            "opens": 0,
            "replies": 0,
            "unique_opens": 0,
            "unique_replies": 0,
            "interested": None,
            "raw_message_id": f"<{uuid.UUID(int=self.rng.getrandbits(128), version=4)}@mail.example>",
        }
        lead.scheduled = scheduled
        return scheduled

    def _reply(
        self,
        lead: Lead,
        mailbox: MailboxRecord,
        *,
        subject: str,
        kind: str = "Tracked Reply",
        folder: str = "Inbox",
        text: str | None = None,
    ) -> dict[str, Any]:
        text = text or self.rng.choice(REPLIES)
        now = self.sim.now()
        # not always a UUID on real instances
        reply_uuid = (
            str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            if self.rng.random() < 0.9
            else f"{self.rng.getrandbits(64):016x}"
        )
        return {
            "id": self._id("reply"),
            "uuid": reply_uuid,
            "email_subject": subject,
            "from_name": f"{lead.first_name} {lead.last_name}",
            "from_email_address": lead.email,
            "to": [{"address": mailbox.email, "name": mailbox.name}],
            "cc": None,
            "bcc": None,
            "html_body": f"<div>{text}</div>",
            "text_body": text,
            "raw_body": None,
            "headers": None,
            "parent_id": None,
            "type": kind,
            "folder": folder,
            "primary_to_email_address": mailbox.email,
            "raw_message_id": f"<{self.rng.getrandbits(64):x}@{lead.email.split('@')[1]}>",
            "date_received": _ts(now),
            "created_at": _ts(now),
            "updated_at": _ts(now),
            "automated_reply": text.startswith("I am out of the office"),
            "interested": False,
            "attachments": [],
        }

    @staticmethod
    def _sender(mailbox: MailboxRecord) -> dict[str, Any]:
        """The webhook `sender_email`: the mailbox with its live counters and a lower-case status."""
        return {
            "id": mailbox.id,
            "email": mailbox.email,
            "name": mailbox.name,
            "type": mailbox.type,
            "status": mailbox.status.lower(),
            "daily_limit": mailbox.daily_limit,
            "emails_sent": mailbox.emails_sent_count,
            "replied": mailbox.total_replied_count,
            "opened": mailbox.total_opened_count,
            "unsubscribed": mailbox.unsubscribed_count,
            "bounced": mailbox.bounced_count,
            "unique_replies": mailbox.unique_replied_count,
            "unique_opens": mailbox.unique_opened_count,
            "total_leads_contacted": mailbox.total_leads_contacted_count,
            "interested": mailbox.interested_leads_count,
            "created_at": mailbox.created_at,
            "updated_at": mailbox.updated_at,
        }

    def wire_type(self, event_type: str) -> str:
        return event_type.upper() if self.upper_case else event_type

    def envelope(self, event_type: str, team_id: int, data: dict[str, Any]) -> dict[str, Any]:
        team = self.sim.teams[team_id]
        event: dict[str, Any] = {"type": self.wire_type(event_type), "name": WIRE_NAMES[event_type]}
        if self.instance_url is not None:
            event["instance_url"] = self.instance_url
        event["workspace_id"] = team_id
        event["workspace_name"] = team.name
        return {"event": event, "data": data}

    # -- events -------------------------------------------------------------------------------------------------

    def make(self, event_type: str, team_id: int) -> Event | None:
        """A new distinct `event_type` event in `team_id`, or None when the team's state does not allow one now."""
        team = self._team(team_id)
        sim, rng = self.sim, self.rng
        campaign = rng.choice(team.campaigns)
        mailbox = self._mailbox(team_id)
        lead: Lead | None = None
        replied_lead: int | None = None
        mutate: Callable[[], None] = _nothing
        #: the body parts that never change between renderings (ids, texts)
        fixed: dict[str, Any] = {}
        #: the mailbox whose live counters the body embeds
        sender: MailboxRecord | None = mailbox
        identity: tuple[Any, ...]
        if mailbox is None and event_type not in ("lead_unsubscribed", "email_account_added"):
            return None
        if event_type in ("email_sent", "email_opened", "lead_first_contacted", "email_bounced"):
            assert mailbox is not None
            lead = self._new_lead(team) if event_type == "lead_first_contacted" else self._lead(team)
            if event_type in ("email_opened",) and lead.scheduled is not None:
                scheduled = lead.scheduled  # an open of the last email sent to the lead
            else:
                scheduled = self._scheduled(campaign, lead)
            fixed = {
                "scheduled_email": scheduled,
                "campaign_event": self._campaign_event(CAMPAIGN_EVENT_TYPES[event_type]),
                "campaign": self._campaign(campaign),
            }
            if event_type == "email_bounced":
                lead.status = "bounced"
                fixed["reply"] = self._reply(
                    lead,
                    mailbox,
                    subject="Undelivered Mail Returned to Sender",
                    kind="Bounced",
                    folder="Bounced",
                    text="550 5.1.1 The email account that you tried to reach does not exist.",
                )
                fixed["reply"]["from_email_address"] = "mailer-daemon@example.net"
            identity = (event_type, fixed["campaign_event"]["id"], scheduled["id"])
        elif event_type in ("lead_replied", "lead_interested"):
            assert mailbox is not None
            interested = event_type == "lead_interested"
            # lead_interested fires only the first time a lead becomes interested: never twice a lead
            pool = [x for x in team.replied if x.id not in self._interested] if interested else []
            lead = rng.choice(pool) if pool else self._lead(team)
            if interested and lead.id in self._interested:
                lead = self._new_lead(team)
            if interested and lead.reply is not None:
                reply = lead.reply  # the same reply (same id): LEAD_REPLIED and LEAD_INTERESTED are two events
            else:
                reply = self._reply(lead, mailbox, subject=f"Re: {campaign['name']}: quick question")
            if interested:
                self._interested.add(lead.id)
                lead.status = "interested"
                reply = {**reply, "interested": True}
            else:
                lead.reply = reply
                team.replied.append(lead)
                replied_lead = lead.id
            scheduled = lead.scheduled or self._scheduled(campaign, lead)
            fixed = {
                "reply": reply,
                "scheduled_email": scheduled,
                "campaign_event": self._campaign_event(CAMPAIGN_EVENT_TYPES[event_type]),
                "campaign": self._campaign(campaign),
            }
            identity = (event_type, reply["id"])
        elif event_type == "lead_unsubscribed":
            lead = self._lead(team)
            if lead.id in self._unsubscribed:  # a lead unsubscribes once
                lead = self._new_lead(team)
            self._unsubscribed.add(lead.id)
            lead.status = "unsubscribed"
            fixed = {
                "campaign_event": self._campaign_event("unsubscribed"),
                "campaign": self._campaign(campaign),
            }
            identity = (event_type, lead.id)
        elif event_type == "manual_email_sent":
            assert mailbox is not None
            lead = rng.choice(team.replied) if team.replied else self._lead(team)
            reply = self._reply(lead, mailbox, subject=f"Re: {campaign['name']}", kind="Outgoing Email", folder="Sent")
            reply["from_name"], reply["from_email_address"] = mailbox.name, mailbox.email
            reply["to"] = [{"address": lead.email, "name": lead.first_name}]
            reply["primary_to_email_address"] = lead.email
            if lead.reply is not None:
                reply["parent_id"] = lead.reply["id"]
            fixed = {"reply": reply}
            identity = (event_type, reply["id"])
        elif event_type == "untracked_reply_received":
            assert mailbox is not None
            stranger = Lead(
                id=0,
                email=f"someone{rng.randint(1, 10**6)}@example.net",
                first_name=rng.choice(FIRST_NAMES),
                last_name=rng.choice(LAST_NAMES),
                custom_variables=[],
            )
            fixed = {"reply": self._reply(stranger, mailbox, subject="Question", kind="Untracked Reply")}
            identity = (event_type, fixed["reply"]["id"])
        elif event_type == "email_account_added":
            added = sim.add_mailboxes(team_id, 1)[0]
            added.status = "Connected"  # Bison fires this when an account is first connected
            sender = added
            identity = (event_type, added.id)
        elif event_type == "email_account_removed":
            if len(sim.team_mailboxes[team_id]) < 2 or mailbox is None:
                return None
            mutate = functools.partial(sim.remove_mailbox, mailbox.id, team_id)
            identity = (event_type, mailbox.id)
        elif event_type in ("email_account_disconnected", "email_account_reconnected"):
            status = "Connected" if event_type == "email_account_reconnected" else "Disconnected"
            eligible = [m for m in sim.mailboxes_of(team_id) if (m.status == "Connected") != (status == "Connected")]
            if not eligible:
                return None
            target = sender = rng.choice(eligible)
            # the status changes now: the body (rendered after) reports it, lower-case
            target.status = status
            target.updated_at = iso(sim.now())
            identity = (event_type, target.id, target.updated_at)
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
            sender = None  # flat: the tag and what it is attached to, nothing else
            fixed = _flat_tag(tag, mailbox)
            identity = (event_type, tag.id, mailbox.id, sim.now().isoformat())
        elif event_type in ("warmup_disabled_causing_bounces", "warmup_disabled_receiving_bounces"):
            warm = [m for m in sim.mailboxes_of(team_id) if m.warmup_enabled]
            if not warm:
                return None
            target = sender = rng.choice(warm)
            target.warmup_enabled = False
            target.updated_at = iso(sim.now())
            identity = (event_type, target.id, target.updated_at)
        else:
            raise ValueError(f"unknown event type {event_type!r}")

        as_object = self.object_variables_share > 0 and rng.random() < self.object_variables_share
        the_lead, the_sender = lead, sender

        def render() -> dict[str, Any]:
            data: dict[str, Any] = {}
            if the_lead is not None:
                data["lead"] = the_lead.payload(as_object=as_object)
            data.update(fixed)
            if the_sender is not None:
                data["sender_email"] = self._sender(the_sender)
            return self.envelope(event_type, team_id, data)

        digest = hashlib.blake2b(repr(identity).encode(), digest_size=16).digest()
        if digest in self._recent:  # never make two distinct events look alike
            return None
        self._recent[digest] = None
        if len(self._recent) > RECENT_WINDOW:
            del self._recent[next(iter(self._recent))]
        mutate()  # what the event reports happens in the instance now; counters and the ledger on delivery
        body = render()
        counter = MAILBOX_COUNTERS.get(event_type)
        lead_counter = LEAD_COUNTERS.get(event_type)

        def apply() -> None:
            if counter is not None and mailbox is not None and mailbox.id in sim.mailboxes:
                setattr(mailbox, counter, getattr(mailbox, counter) + 1)
                mailbox.updated_at = iso(sim.now())
            if lead_counter is not None and the_lead is not None:
                setattr(the_lead, lead_counter, getattr(the_lead, lead_counter) + 1)
            sim.record_event(team_id, event_type, replied_lead)

        return Event(event_type, team_id, body, _encode(body), apply, render, identity)

    def sample(self, event_type: str, team_id: int) -> dict[str, Any]:
        """A sample body (`/sample-payload`, `/test-event`): a fresh event that changes nothing. Like the API
        reference's samples, it has no `instance_url`."""
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}")
        team = self._team(team_id)
        lead = Lead(
            id=self._id("lead"),
            email="john.doe@example.com",
            first_name="John",
            last_name="Doe",
            custom_variables=[{"name": "phone number", "value": "555-0100"}],
        )
        campaign = team.campaigns[0]
        mailbox = self._mailbox(team_id) or self.sim.mailboxes[next(iter(self.sim.mailboxes))]
        data: dict[str, Any]
        if event_type in ("tag_attached", "tag_removed"):
            data = _flat_tag(TagRecord(id=1, name="Sample"), mailbox)
        elif event_type.startswith(("email_account", "warmup_disabled")):
            data = {"sender_email": self._sender(mailbox)}
        else:
            data = {
                "lead": lead.payload(),
                "campaign": self._campaign(campaign),
                "campaign_event": self._campaign_event(CAMPAIGN_EVENT_TYPES.get(event_type, "sent")),
                "scheduled_email": self._scheduled(campaign, lead),
                "sender_email": self._sender(mailbox),
            }
            if event_type in ("lead_replied", "lead_interested", "manual_email_sent", "untracked_reply_received"):
                data["reply"] = self._reply(lead, mailbox, subject="Re: sample")
        team_name = self.sim.teams[team_id].name
        event = {"type": event_type.upper(), "name": WIRE_NAMES[event_type], "workspace_id": team_id}
        return {"event": {**event, "workspace_name": team_name}, "data": data}


def _nothing() -> None:
    return None


def _flat_tag(tag: TagRecord, mailbox: MailboxRecord) -> dict[str, Any]:
    """Tag events are flat: one webhook per tag per taggable."""
    return {"tag_id": tag.id, "tag_name": tag.name, "taggable_id": mailbox.id, "taggable_type": "sender_email"}


def _set(mailbox: MailboxRecord, attr: str, value: object) -> Callable[[], None]:
    def assign() -> None:
        setattr(mailbox, attr, value)

    return assign

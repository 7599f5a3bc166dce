"""`SimulatedBison`: the state of one simulated Email Bison instance, its knobs, mutations, counters and ledger."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import msgspec

from bisonsync.bison.models import EVENT_TYPES, MAILBOX_STATUSES, PENDING_STATUSES
from devstack.simulator.data import MailboxRecord, TagRecord, TeamRecord, generate, iso
from devstack.simulator.faults import Faults


@dataclass
class Credential:
    """What a token is: the super-admin key (with its server-side current team) or one workspace's key."""

    token: str
    super_admin: bool
    team_id: int
    label: str


class WebhookRecord(msgspec.Struct, kw_only=True):
    id: int
    name: str
    url: str
    events: list[str]
    created_at: str
    updated_at: str


@dataclass
class Counters:
    """Request counters for tests and benchmarks (only /api requests; /_sim requests are not counted)."""

    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    in_flight_by_key: Counter[str] = field(default_factory=Counter)
    max_in_flight_by_key: Counter[str] = field(default_factory=Counter)
    switches: int = 0

    def enter(self, route: str, key: str) -> None:
        self.requests[route] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.in_flight_by_key[key] += 1
        self.max_in_flight_by_key[key] = max(self.max_in_flight_by_key[key], self.in_flight_by_key[key])

    def leave(self, key: str, status: int) -> None:
        self.in_flight -= 1
        self.in_flight_by_key[key] -= 1
        self.statuses[status] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "total_requests": sum(self.requests.values()),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "max_in_flight_by_key": dict(self.max_in_flight_by_key),
            "switches": self.switches,
        }


@dataclass
class DayLedger:
    """What happened in one workspace on one day: distinct events by type, and the leads that replied."""

    events: Counter[str] = field(default_factory=Counter)
    replied_leads: set[int] = field(default_factory=set)


class SimulatedBison:
    """One simulated Email Bison instance: `workspaces` teams (one parent) and `mailboxes` mailboxes, from `seed`."""

    def __init__(
        self,
        workspaces: int = 24,
        mailboxes: int = 4000,
        seed: int = 0,
        *,
        page_size: int = 15,
        shared_share: float = 0.02,
        instance_url: str = "https://bison.local",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.seed = seed
        self.page_size = page_size
        self.instance_url = instance_url
        self._clock = clock or (lambda: datetime.now(UTC))
        data = generate(workspaces, mailboxes, seed, shared_share=shared_share, now=self._clock())
        self.teams: dict[int, TeamRecord] = data.teams
        self.parent_id = data.parent_id
        self.mailboxes: dict[int, MailboxRecord] = data.mailboxes
        self.team_mailboxes: dict[int, list[int]] = data.team_mailboxes
        self.domains = data.domains
        self._factory = data.factory
        self.super_admin_key = data.super_admin_key
        self.workspace_keys: dict[int, str] = data.workspace_keys
        self._credentials: dict[str, Credential] = {
            data.super_admin_key: Credential(data.super_admin_key, True, data.parent_id, "super_admin")
        }
        for team_id, token in data.workspace_keys.items():
            self._credentials[token] = Credential(token, False, team_id, f"workspace:{team_id}")
        self.faults = Faults()
        self.counters = Counters()
        self.webhooks: dict[int, dict[int, WebhookRecord]] = {t: {} for t in self.teams}
        self._webhook_ids: Counter[int] = Counter()
        self.ledger: dict[tuple[int, date], DayLedger] = {}
        #: deliveries made by `POST /api/webhook-events/test-event`: (url, event type, HTTP status or None)
        self.test_events: list[tuple[str, str, int | None]] = []
        #: transport for the simulator's own outbound POSTs (test-event); None: real network, loopback only
        self.webhook_transport: httpx.AsyncBaseTransport | None = None
        self.rng = random.Random(f"bison-sim:{seed}:faults")
        self._release: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"SimulatedBison(workspaces={len(self.teams)}, mailboxes={len(self.mailboxes)}, seed={self.seed})"

    # -- time -------------------------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock()

    def today(self) -> date:
        return self._clock().date()

    # -- credentials ------------------------------------------------------------------------------------------

    def credential(self, token: str) -> Credential | None:
        return self._credentials.get(token)

    def current_team(self, token: str) -> int:
        """The workspace a token's calls act on right now (server-side state for the super-admin key)."""
        return self._credentials[token].team_id

    def switch(self, token: str, team_id: int) -> None:
        cred = self._credentials[token]
        if not cred.super_admin:
            raise PermissionError("a workspace key cannot switch workspaces")
        if team_id not in self.teams:
            raise KeyError(team_id)
        cred.team_id = team_id
        self.counters.switches += 1

    # -- faults and counters ----------------------------------------------------------------------------------

    def set_faults(self, **changes: Any) -> Faults:
        """Change some knobs (validated like `POST /_sim/faults`); the others keep their values."""
        merged = {**msgspec.to_builtins(self.faults), **changes}
        self.faults = msgspec.convert(merged, Faults)
        return self.faults

    def reset_faults(self) -> None:
        self.faults = Faults()

    def reset_counters(self) -> None:
        self.counters = Counters()

    async def hang(self) -> None:
        """Wait `faults.hang_s` seconds or until `release_hangs()`."""
        if self._release is None or self._release.is_set():
            self._release = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), self.faults.hang_s)

    def release_hangs(self) -> None:
        if self._release is not None:
            self._release.set()

    # -- mailboxes and workspaces -----------------------------------------------------------------------------

    def mailboxes_of(self, team_id: int) -> list[MailboxRecord]:
        return [self.mailboxes[m] for m in self.team_mailboxes[team_id]]

    def teams_of(self, mailbox_id: int) -> list[int]:
        return [t for t, ids in self.team_mailboxes.items() if mailbox_id in ids]

    def set_mailbox_status(self, mailbox_id: int, status: str) -> MailboxRecord:
        if status not in (*MAILBOX_STATUSES, *PENDING_STATUSES):
            raise ValueError(f"status must be one of {(*MAILBOX_STATUSES, *PENDING_STATUSES)}")
        mailbox = self.mailboxes[mailbox_id]
        mailbox.status = status
        mailbox.updated_at = iso(self.now())
        return mailbox

    def add_mailboxes(self, team_id: int, count: int = 1) -> list[MailboxRecord]:
        """New mailboxes at the end of the team's listing (ids are increasing)."""
        team = self.teams[team_id]
        added = []
        for _ in range(count):
            mailbox = self._factory.make(self.rng.choice(self.domains[team_id]), team.name, self.now())
            mailbox.created_at = mailbox.updated_at = iso(self.now())
            self.mailboxes[mailbox.id] = mailbox
            self.team_mailboxes[team_id].append(mailbox.id)
            added.append(mailbox)
        return added

    def tag(self, name: str) -> TagRecord:
        """The instance's tag called exactly `name` (created on first use)."""
        return self._factory.tag(name)

    def remove_mailbox(self, mailbox_id: int, team_id: int | None = None) -> None:
        """Remove a mailbox from one team (or from all); it is gone once no team lists it."""
        teams = self.teams_of(mailbox_id)
        if team_id is not None:
            teams = [t for t in teams if t == team_id]
        if not teams:
            raise KeyError(mailbox_id)
        for t in teams:
            self.team_mailboxes[t].remove(mailbox_id)
        if not self.teams_of(mailbox_id):
            del self.mailboxes[mailbox_id]

    def rename_workspace(self, team_id: int, name: str) -> TeamRecord:
        team = self.teams[team_id]
        team.name = name
        team.updated_at = iso(self.now())
        return team

    # -- webhooks ---------------------------------------------------------------------------------------------

    def create_webhook(self, team_id: int, name: str, url: str, events: list[str]) -> WebhookRecord:
        self._webhook_ids[team_id] += 1  # ids are per workspace: different workspaces reuse them
        stamp = iso(self.now())
        hook = WebhookRecord(
            id=self._webhook_ids[team_id], name=name, url=url, events=events, created_at=stamp, updated_at=stamp
        )
        self.webhooks[team_id][hook.id] = hook
        return hook

    # -- ledger (what "happened" in Bison; the stats endpoint reads it) -----------------------------------------

    def record_event(self, team_id: int, event_type: str, lead_id: int | None = None, day: date | None = None) -> None:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}")
        entry = self.ledger.setdefault((team_id, day or self.today()), DayLedger())
        entry.events[event_type] += 1
        if event_type == "lead_replied" and lead_id is not None:
            entry.replied_leads.add(lead_id)

    def stats(self, team_id: int, start: date, end: date) -> dict[str, str]:
        """`/api/workspaces/v1.1/stats` over the ledger, as real instances answer it: every value a string ("123",
        "12.5"), no `replied` field (replies are `unique_replies_per_contact`); percentages are of emails sent."""
        events: Counter[str] = Counter()
        replied: set[int] = set()
        day = start
        while day <= end:
            entry = self.ledger.get((team_id, day))
            if entry is not None:
                events.update(entry.events)
                replied |= entry.replied_leads
            day += timedelta(days=1)
        sent = events["email_sent"]

        def pct(n: int) -> str:
            return f"{round(n / sent * 100, 2):g}" if sent else "0"

        return {
            "emails_sent": str(sent),
            "total_leads_contacted": str(events["lead_first_contacted"]),
            "opened": "0",
            "opened_percentage": "0",
            "unique_replies_per_contact": str(len(replied)),
            "unique_replies_per_contact_percentage": pct(len(replied)),
            "bounced": str(events["email_bounced"]),
            "bounced_percentage": pct(events["email_bounced"]),
            "unsubscribed": str(events["lead_unsubscribed"]),
            "unsubscribed_percentage": pct(events["lead_unsubscribed"]),
            "interested": str(events["lead_interested"]),
            "interested_percentage": pct(events["lead_interested"]),
        }

    def summary(self) -> dict[str, Any]:
        return {
            "instance_url": self.instance_url,
            "seed": self.seed,
            "page_size": self.page_size,
            "parent_id": self.parent_id,
            "mailboxes": len(self.mailboxes),
            "workspaces": [
                {
                    "id": t.id,
                    "name": t.name,
                    "main": t.main,
                    "mailboxes": len(self.team_mailboxes[t.id]),
                    "webhooks": len(self.webhooks[t.id]),
                }
                for t in self.teams.values()
            ],
        }

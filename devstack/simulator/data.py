"""Deterministic, realistically messy Email Bison data: workspaces, mailboxes, tags, API keys.

Everything derives from the seed, so one seed always gives the same instance (keys included). The messiness is
deliberate and follows the spec: workspace names with trailing spaces (§2.1), tags mixing providers, resellers,
warm-up states, purchase dates and free labels, in any order, with odd case and stray spaces (§3.4, §5.1),
mailboxes spread very unevenly over workspaces, and some mailboxes shared by two workspaces (§3.5).
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import msgspec

PROVIDERS: tuple[tuple[str, float], ...] = (
    ("Google", 0.28),
    ("Microsoft", 0.28),
    ("Outlook", 0.12),
    ("Gmail", 0.08),
    ("Yahoo", 0.03),
    ("iCloud", 0.02),
    ("AOL", 0.02),
    ("", 0.17),
)
RESELLERS: tuple[tuple[str, float], ...] = (
    ("Zapmail", 0.22),
    ("CheapInboxes", 0.18),
    ("Mailr", 0.15),
    ("ScaledMail", 0.12),
    ("Inbox Warmup", 0.05),
    ("", 0.28),
)
WARMUP_STATES = ("Warming", "Ramping", "Active", "Healthy")
OTHER_LABELS = ("Warmy", "Bison", "VIP", "Backup", "Do not use", "Q4 batch")
STATUSES: tuple[tuple[str, float], ...] = (
    ("Connected", 0.88),
    ("Disconnected", 0.06),
    ("Failed", 0.03),
    ("Not connected", 0.03),
)
DAILY_LIMITS = (5, 8, 10, 15, 20, 25, 30)

# fmt: off
FIRST_NAMES = (
    "Alex", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn", "Drew", "Parker", "Reese",
    "Sam", "Robin", "Cameron", "Logan", "Hayden", "Emerson", "Rowan", "Sydney", "Blake", "Dana", "Kendall", "Lee",
)
LAST_NAMES = (
    "Smith", "Johnson", "Brown", "Garcia", "Miller", "Davis", "Wilson", "Moore", "Clark", "Lewis", "Walker", "Hall",
    "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Carter", "Mitchell", "Roberts", "Turner",
)
NAME_STEMS = (
    "Harbor", "Summit", "Prairie", "Keystone", "Bluebird", "Ironwood", "Lakeside", "Redline", "Northstar", "Cedar",
    "Granite", "Maple", "Sterling", "Pioneer", "Coastal", "Liberty", "Evergreen", "Riverbend", "Oakridge", "Silverline",
)
NAME_TRADES = (
    "Insurance", "Roofing", "Home Services", "Agency", "Solar", "Logistics", "Dental", "Law", "Realty", "Trucking",
    "Capital", "Health",
)
# fmt: on
DOMAIN_SUFFIXES = ("mail", "hq", "team", "outreach", "get", "try", "reach", "go")

EPOCH = datetime(2025, 6, 1, tzinfo=UTC)


def iso(ts: datetime) -> str:
    """Laravel's timestamp format: `2025-10-13T12:00:00.000000Z`."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def weighted(rng: random.Random, table: Sequence[tuple[str, float]]) -> str:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


class TeamRecord(msgspec.Struct, kw_only=True):
    """A workspace exactly as `GET /api/workspaces/v1.1` serves it."""

    id: int
    name: str
    personal_team: bool = False
    main: bool = False
    parent_id: int | None = None
    sender_email_limit: int = 1000
    warmup_limit: int = 1000
    warmup_filter_phrase: str | None = None
    has_access_to_warmup: bool = True
    has_access_to_healthcheck: bool = False
    total_email_verification_credits: int = 0
    remaining_email_verification_credits: int = 0
    created_at: str = ""
    updated_at: str = ""


class TagRecord(msgspec.Struct, kw_only=True):
    id: int
    name: str
    default: bool = False


class MailboxRecord(msgspec.Struct, kw_only=True):
    """A sender email exactly as `GET /api/sender-emails` serves it (spec §3.4)."""

    id: int
    email: str
    name: str
    status: str
    type: str
    daily_limit: int
    emails_sent_count: int = 0
    total_replied_count: int = 0
    unique_replied_count: int = 0
    bounced_count: int = 0
    unsubscribed_count: int = 0
    interested_leads_count: int = 0
    total_opened_count: int = 0
    unique_opened_count: int = 0
    total_leads_contacted_count: int = 0
    warmup_enabled: bool = True
    email_signature: str | None = None
    created_at: str = ""
    updated_at: str = ""
    tags: list[TagRecord] = msgspec.field(default_factory=list)


def make_token(rng: random.Random, token_id: int) -> str:
    """A Sanctum-shaped token `{n}|{40 random characters}` (made at runtime; never written into the repository)."""
    return f"{token_id}|" + "".join(rng.choices(string.ascii_letters + string.digits, k=40))


def _variant(rng: random.Random, name: str, share: float) -> str:
    """Sometimes return the name the way people actually typed it."""
    if not name or rng.random() >= share:
        return name
    return rng.choice((name + " ", name.lower(), name.upper(), " " + name))


def _slug(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


@dataclass
class MailboxFactory:
    """Makes mailboxes; shared by the initial generation and later additions so both look alike."""

    rng: random.Random
    next_id: int = 5000
    tags: dict[str, TagRecord] = field(default_factory=dict)
    emails: set[str] = field(default_factory=set)

    def tag(self, name: str) -> TagRecord:
        tag = self.tags.get(name)
        if tag is None:
            tag = self.tags[name] = TagRecord(id=len(self.tags) + 1, name=name)
        return tag

    def _tags(self) -> tuple[list[TagRecord], str]:
        rng = self.rng
        provider = weighted(rng, PROVIDERS)
        names = [_variant(rng, provider, 0.12), _variant(rng, weighted(rng, RESELLERS), 0.08)]
        if rng.random() < 0.6:
            names.append(rng.choice(WARMUP_STATES))
        if rng.random() < 0.35:
            names.append(f"{rng.randint(1, 12)}/{rng.randint(1, 28)}")
        if rng.random() < 0.15:
            names.append(rng.choice(OTHER_LABELS))
        names = [n for n in names if n]
        if rng.random() < 0.3:
            rng.shuffle(names)  # "first matching tag wins" must not be a safe assumption
        return [self.tag(n) for n in names], provider

    def _email(self, domain: str) -> tuple[str, str]:
        rng = self.rng
        while True:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            local = rng.choice((f"{first}.{last}", f"{first}{last}", f"{first}_{last}", first, f"{first[0]}{last}"))
            email = f"{local.lower()}@{domain}"
            if email in self.emails:
                email = f"{local.lower()}{rng.randint(2, 99)}@{domain}"
            if email not in self.emails:
                self.emails.add(email)
                return email, f"{first} {last}"

    def make(self, domain: str, team_name: str, now: datetime) -> MailboxRecord:
        rng = self.rng
        tags, provider = self._tags()
        email, name = self._email(domain)
        family = provider.strip().lower()
        kind = {
            "google": "google_workspace_oauth",
            "gmail": "google_workspace_oauth",
            "microsoft": "microsoft_oauth",
            "outlook": "microsoft_oauth",
        }.get(family, "imap_smtp")
        sent = int(rng.paretovariate(1.3) * 120) - 120 if rng.random() > 0.05 else 0
        sent = max(0, min(sent, 25_000))
        rate = 0.0 if rng.random() < 0.12 else rng.uniform(0.001, 0.03)
        unique = int(sent * rate)
        created = min(now, EPOCH + timedelta(days=rng.uniform(0, 150)))
        self.next_id += rng.choice((1, 1, 1, 2, 3))
        return MailboxRecord(
            id=self.next_id,
            email=email,
            name=name,
            status=weighted(rng, STATUSES),
            type=kind,
            daily_limit=rng.choice(DAILY_LIMITS),
            emails_sent_count=sent,
            total_replied_count=unique + int(unique * rng.uniform(0, 0.3)),
            unique_replied_count=unique,
            bounced_count=int(sent * rng.uniform(0, 0.04)),
            unsubscribed_count=int(sent * rng.uniform(0, 0.005)),
            interested_leads_count=int(unique * rng.uniform(0, 0.4)),
            total_leads_contacted_count=int(sent * rng.uniform(0.6, 0.9)),
            warmup_enabled=rng.random() < 0.85,
            email_signature=f"<p>{name}<br>{team_name.strip()}</p>" if rng.random() < 0.7 else None,
            created_at=iso(created),
            updated_at=iso(min(now, created + timedelta(days=rng.uniform(0, 60)))),
            tags=tags,
        )


@dataclass
class SimData:
    teams: dict[int, TeamRecord]
    parent_id: int
    mailboxes: dict[int, MailboxRecord]
    #: team id -> mailbox ids in listing order (a shared mailbox is listed under two teams)
    team_mailboxes: dict[int, list[int]]
    domains: dict[int, list[str]]
    factory: MailboxFactory
    super_admin_key: str
    workspace_keys: dict[int, str]


def _team_names(rng: random.Random, count: int) -> list[str]:
    pool = [f"{stem} {trade}" for stem in NAME_STEMS for trade in NAME_TRADES]
    rng.shuffle(pool)
    names = [pool[i % len(pool)] + (f" {i // len(pool) + 1}" if i >= len(pool) else "") for i in range(count)]
    if count >= 6:
        names[-1] = "Test Workspace"
    # Trailing spaces are real (spec §2.1): about one name in five, and at least one.
    spaced = {i for i in range(count) if rng.random() < 0.2} or ({rng.randrange(count)} if count > 1 else set())
    return [n + " " if i in spaced else n for i, n in enumerate(names)]


def _spread(rng: random.Random, total: int, weights: list[float]) -> list[int]:
    """Split `total` by `weights` with largest remainders."""
    scale = total / sum(weights)
    raw = [w * scale for w in weights]
    counts = [int(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)[: total - sum(counts)]:
        counts[i] += 1
    return counts


def generate(
    workspaces: int, mailboxes: int, seed: int, *, shared_share: float = 0.02, now: datetime | None = None
) -> SimData:
    """One parent team (`main`) plus `workspaces - 1` children, and `mailboxes` mailboxes spread unevenly."""
    if workspaces < 1 or mailboxes < 0:
        raise ValueError("need at least one workspace and a non-negative number of mailboxes")
    now = now or datetime.now(UTC)
    rng = random.Random(f"bison-sim:{seed}:data")
    team_ids: list[int] = []
    next_id = rng.randint(1, 9)
    for _ in range(workspaces):
        team_ids.append(next_id)
        next_id += rng.choice((1, 1, 1, 2, 4))
    parent_id = team_ids[0]
    names = ["Agency HQ", *_team_names(rng, workspaces - 1)]
    teams: dict[int, TeamRecord] = {}
    for team_id, name in zip(team_ids, names, strict=True):
        created = EPOCH + timedelta(days=rng.uniform(0, 120))
        credits = rng.choice((0, 1000, 5000))
        teams[team_id] = TeamRecord(
            id=team_id,
            name=name,
            main=team_id == parent_id,
            parent_id=None if team_id == parent_id else parent_id,
            sender_email_limit=rng.choice((500, 1000, 2000, 5000)),
            warmup_limit=rng.choice((500, 1000, 2000)),
            warmup_filter_phrase=rng.choice((None, "".join(rng.choices(string.ascii_lowercase, k=8)))),
            has_access_to_healthcheck=rng.random() < 0.5,
            total_email_verification_credits=credits,
            remaining_email_verification_credits=rng.randint(0, credits),
            created_at=iso(created),
            updated_at=iso(min(now, created + timedelta(days=rng.uniform(0, 90)))),
        )
    # Very uneven: a few big clients, a long tail, a nearly empty parent.
    weights = [rng.lognormvariate(0, 1.1) for _ in team_ids]
    if workspaces > 1:
        weights[0] = min(weights) * 0.2
    counts = _spread(rng, mailboxes, weights)
    domains = {
        t: [
            f"{_slug(teams[t].name)[:14]}{rng.choice(DOMAIN_SUFFIXES)}{i or ''}.test"
            for i in range(max(1, counts[n] // 25 + rng.randint(0, 2)))
        ]
        for n, t in enumerate(team_ids)
    }
    factory = MailboxFactory(random.Random(f"bison-sim:{seed}:mailboxes"))
    all_mailboxes: dict[int, MailboxRecord] = {}
    team_mailboxes: dict[int, list[int]] = {t: [] for t in team_ids}
    for team_id, count in zip(team_ids, counts, strict=True):
        for _ in range(count):
            mailbox = factory.make(rng.choice(domains[team_id]), teams[team_id].name, now)
            all_mailboxes[mailbox.id] = mailbox
            team_mailboxes[team_id].append(mailbox.id)
    if workspaces > 2 and mailboxes:
        owner = {m: t for t, ids in team_mailboxes.items() for m in ids}
        for mailbox_id in rng.sample(sorted(all_mailboxes), round(mailboxes * shared_share)):
            other = rng.choice([t for t in team_ids[1:] if t != owner[mailbox_id]])
            team_mailboxes[other].append(mailbox_id)
        for ids in team_mailboxes.values():
            ids.sort()
    key_rng = random.Random(f"bison-sim:{seed}:keys")
    token_id = key_rng.randint(10, 200)
    super_admin_key = make_token(key_rng, token_id)
    workspace_keys = {t: make_token(key_rng, token_id + 1 + i) for i, t in enumerate(team_ids)}
    return SimData(teams, parent_id, all_mailboxes, team_mailboxes, domains, factory, super_admin_key, workspace_keys)

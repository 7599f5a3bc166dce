"""Typed Email Bison API objects (msgspec Structs; unknown fields are allowed because third-party payloads grow).

Decoding is lenient about scalar types (`strict=False`: "12" decodes as 12) and strict about shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")

#: The 17 webhook event types of the predecessor's catalogue (snake_case), with their labels. On the wire the type
#: is UPPER_SNAKE_CASE (`EMAIL_SENT`); compare case-insensitively (`event_type_key`).
EVENT_TYPES: dict[str, str] = {
    "email_sent": "Email Sent",
    "manual_email_sent": "Manual Email Sent",
    "lead_first_contacted": "Contact First Emailed",
    "lead_replied": "Contact Replied",
    "lead_interested": "Contact Interested",
    "lead_unsubscribed": "Contact Unsubscribed",
    "untracked_reply_received": "Untracked Reply Received",
    "email_opened": "Email Opened",
    "email_bounced": "Email Bounced",
    "email_account_added": "Email Account Added",
    "email_account_removed": "Email Account Removed",
    "email_account_disconnected": "Email Account Disconnected",
    "email_account_reconnected": "Email Account Reconnected",
    "tag_attached": "Tag Attached",
    "tag_removed": "Tag Removed",
    "warmup_disabled_causing_bounces": "Warmup Disabled Causing Bounces",
    "warmup_disabled_receiving_bounces": "Warmup Disabled Receiving Bounces",
}

#: The 13 types `GET /api/webhook-events/event-types` lists as subscribable on current instances. Which types an
#: instance offers is always read from the instance itself (`Endpoints.event_types`); this is what the simulator
#: serves.
SUBSCRIBABLE_EVENT_TYPES: tuple[str, ...] = (
    "email_sent",
    "lead_first_contacted",
    "lead_replied",
    "lead_interested",
    "lead_unsubscribed",
    "untracked_reply_received",
    "email_opened",
    "email_bounced",
    "email_account_added",
    "email_account_removed",
    "email_account_disconnected",
    "email_account_reconnected",
    "manual_email_sent",
)

#: Mailbox statuses as REST spells them. Webhooks send them lower-case (`connected`), and instances also know
#: `pending_move` and `pending_deletion`; `canonical_status` maps any spelling onto one.
MAILBOX_STATUSES: tuple[str, ...] = ("Connected", "Disconnected", "Failed", "Not connected")
PENDING_STATUSES: tuple[str, ...] = ("pending_move", "pending_deletion")
_CANONICAL_STATUSES = {
    " ".join(s.replace("_", " ").split()).casefold(): s for s in (*MAILBOX_STATUSES, *PENDING_STATUSES)
}


def event_type_key(value: str) -> str:
    """An event type compared case-insensitively: `EMAIL_SENT`, `email_sent`, ` Email_Sent ` -> `email_sent`."""
    return value.strip().lower()


def canonical_status(raw: str | None) -> str | None:
    """One spelling per known mailbox status, whatever its case, spaces or underscores (`connected` ->
    `Connected`, `Pending Move` -> `pending_move`); an unknown status is kept as sent (trimmed, at most 64
    characters); None for None or blank. The database applies the same rule (`mailbox_status_canonical`)."""
    if raw is None:
        return None
    key = " ".join(raw.replace("_", " ").replace("-", " ").split()).casefold()
    if not key:
        return None
    return _CANONICAL_STATUSES.get(key, raw.strip()[:64])


def _number(value: object) -> float | None:
    """A stats value as Email Bison may send it: 12, 12.5, "12", "12.5", "1,234", "12.5%"; None when absent or
    unreadable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(",", "").rstrip("%").strip()
        try:
            return float(text) if text else None
        except ValueError:
            return None
    return None


class Workspace(msgspec.Struct, kw_only=True):
    """A team from `GET /api/workspaces/v1.1`. `name` is raw (may carry trailing spaces); use `clean_name`."""

    id: int
    name: str
    personal_team: bool = False
    main: bool = False
    parent_id: int | None = None
    sender_email_limit: int | None = None
    warmup_limit: int | None = None
    warmup_filter_phrase: str | None = None
    has_access_to_warmup: bool = False
    has_access_to_healthcheck: bool = False
    created_at: str | None = None
    updated_at: str | None = None

    @property
    def clean_name(self) -> str:
        return self.name.strip()


class WorkspaceStats(msgspec.Struct, kw_only=True):
    """`GET /api/workspaces/v1.1/stats` for one workspace and date range.

    Real instances send the values as strings ("123", "12.5") and have no `replied` field (replies are
    `unique_replies_per_contact`), so every field is optional: None means Email Bison did not report it (never
    compare against it). Build it with `from_mapping`; fields not listed here stay in `extra`.
    """

    emails_sent: int | None = None
    total_leads_contacted: int | None = None
    opened: int | None = None
    opened_percentage: float | None = None
    replied: int | None = None
    unique_replies_per_contact: int | None = None
    unique_replies_per_contact_percentage: float | None = None
    bounced: int | None = None
    bounced_percentage: float | None = None
    unsubscribed: int | None = None
    unsubscribed_percentage: float | None = None
    interested: int | None = None
    interested_percentage: float | None = None
    #: whatever else the instance sent, as sent
    extra: dict[str, Any] = msgspec.field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> WorkspaceStats:
        """Numbers or numeric strings; a value that is missing, null or unreadable becomes None."""
        fields: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            kind = _STATS_FIELDS.get(key)
            if kind is None:
                extra[key] = value
                continue
            number = _number(value)
            fields[key] = None if number is None else (round(number) if kind is int else number)
        return cls(**fields, extra=extra)

    def reported(self) -> dict[str, int | float]:
        """The fields Email Bison reported, by name."""
        return {k: v for k in _STATS_FIELDS if (v := getattr(self, k)) is not None}


_STATS_FIELDS: dict[str, type] = {
    f: (float if f.endswith("_percentage") else int) for f in WorkspaceStats.__struct_fields__ if f != "extra"
}


class Tag(msgspec.Struct, kw_only=True):
    """A mailbox tag. Names are messy: mixed case and stray spaces ("Microsoft ") are real."""

    id: int
    name: str
    default: bool = False


class SenderEmail(msgspec.Struct, kw_only=True):
    """A mailbox from `GET /api/sender-emails` (spec §3.4)."""

    id: int
    email: str
    name: str | None = None
    #: as sent ("Connected", "connected", "pending_move", ...; None when absent); see `canonical_status`
    status: str | None = None
    type: str | None = None
    # numbers may come as numeric strings ("12") or null (stored as 0); never a reason to fail the page
    daily_limit: int | None = 0
    emails_sent_count: int | None = 0
    total_replied_count: int | None = 0
    unique_replied_count: int | None = 0
    bounced_count: int | None = 0
    unsubscribed_count: int | None = 0
    interested_leads_count: int | None = 0
    total_opened_count: int | None = 0
    unique_opened_count: int | None = 0
    total_leads_contacted_count: int | None = 0
    warmup_enabled: bool | None = False
    email_signature: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    tags: list[Tag] = msgspec.field(default_factory=list)


class Webhook(msgspec.Struct, kw_only=True):
    """A webhook registration (`/api/webhook-url`). Ids are per workspace."""

    id: int
    name: str
    url: str
    events: list[str] = msgspec.field(default_factory=list)
    created_at: str | None = None
    updated_at: str | None = None


class EventType(msgspec.Struct, kw_only=True):
    """One entry of `GET /api/webhook-events/event-types`: `id` is the type (compare with `event_type_key`),
    `name` the label."""

    id: str
    name: str | None = None


class TestEventResult(msgspec.Struct, kw_only=True):
    """Answer of `POST /api/webhook-events/test-event`."""

    __test__ = False  # not a pytest test class

    success: bool = True
    message: str | None = None
    #: the body that was (or would have been) delivered, as Email Bison answers it
    payload: Any = None
    #: only older answers carried it
    status_code: int | None = None


class Links(msgspec.Struct, kw_only=True):
    first: str | None = None
    last: str | None = None
    prev: str | None = None
    next: str | None = None


class Meta(msgspec.Struct, kw_only=True):
    current_page: int = 1
    last_page: int = 1
    per_page: int | None = None
    total: int | None = None
    from_: int | None = msgspec.field(default=None, name="from")
    to: int | None = None
    path: str | None = None


class Page(msgspec.Struct, Generic[T], kw_only=True):
    """One Laravel page: `{"data": [...], "links": {...}, "meta": {...}}`. A bare `{"data": [...]}` (the API
    reference's own example for several listings) is one page that proves nothing about completeness."""

    data: list[T]
    links: Links | None = None
    meta: Meta | None = None


class Item(msgspec.Struct, Generic[T], kw_only=True):
    """A single-object answer: `{"data": {...}}`."""

    data: T

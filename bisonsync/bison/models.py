"""Typed Email Bison API objects (msgspec Structs; unknown fields are allowed because third-party payloads grow).

Decoding is lenient about scalar types (`strict=False`: "12" decodes as 12) and strict about shape.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")

#: The 17 webhook event types of `GET /api/webhook-events/event-types`, with their labels (spec §2.3).
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

#: Mailbox statuses as Email Bison spells them (capitalised; compare case-insensitively anyway).
MAILBOX_STATUSES: tuple[str, ...] = ("Connected", "Disconnected", "Failed", "Not connected")


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
    """`GET /api/workspaces/v1.1/stats` for one workspace and date range. Opens are always 0."""

    emails_sent: int = 0
    total_leads_contacted: int = 0
    opened: int = 0
    opened_percentage: float = 0.0
    replied: int = 0
    unique_replies_per_contact: int = 0
    unique_replies_per_contact_percentage: float = 0.0
    bounced: int = 0
    bounced_percentage: float = 0.0
    unsubscribed: int = 0
    unsubscribed_percentage: float = 0.0
    interested: int = 0
    interested_percentage: float = 0.0


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
    status: str = "Connected"
    type: str | None = None
    daily_limit: int = 0
    emails_sent_count: int = 0
    total_replied_count: int = 0
    unique_replied_count: int = 0
    bounced_count: int = 0
    unsubscribed_count: int = 0
    interested_leads_count: int = 0
    total_opened_count: int = 0
    unique_opened_count: int = 0
    total_leads_contacted_count: int = 0
    warmup_enabled: bool = False
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
    """One entry of `GET /api/webhook-events/event-types`: `id` is the snake_case type, `name` the label."""

    id: str
    name: str


class TestEventResult(msgspec.Struct, kw_only=True):
    """Answer of `POST /api/webhook-events/test-event`."""

    __test__ = False  # not a pytest test class

    success: bool = True
    message: str | None = None
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
    """One Laravel page: `{"data": [...], "links": {...}, "meta": {...}}`. A bare `{"data": [...]}` is one page."""

    data: list[T]
    links: Links | None = None
    meta: Meta | None = None


class Item(msgspec.Struct, Generic[T], kw_only=True):
    """A single-object answer: `{"data": {...}}`."""

    data: T

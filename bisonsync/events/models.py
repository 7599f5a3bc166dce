"""Typed shapes of Email Bison webhook payloads: the envelope's `event` object and `data` for all 17 event types.

Every struct allows unknown fields (Email Bison's payloads grow) and almost every field is optional: the spec
confirms the shapes of only a few events, and a field Email Bison leaves out must not cost us the delivery.
What a type cannot do without is declared in `required` and checked by the decoder, not by the struct.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeAlias

import msgspec

#: A database id as Email Bison sends it: a positive integer that fits a Postgres bigint. The decoders run in
#: msgspec's lax mode, so the numeric string "42" is accepted as 42 (Email Bison is a PHP/Laravel application).
BisonId: TypeAlias = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]


class _Model(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """Base of every payload struct: immutable, keyword-only, unknown fields ignored (they survive in the ledger).

    Subclasses restate `frozen=True, kw_only=True`: msgspec inherits them, but type checkers read only a class's own
    keywords."""


class EventMeta(_Model, frozen=True, kw_only=True):
    """The envelope's `event` object. After `decode_delivery` the type is lower-cased and all text is trimmed."""

    type: str
    workspace_id: BisonId
    name: str | None = None
    instance_url: str | None = None
    workspace_name: str | None = None


class CustomVariable(_Model, frozen=True, kw_only=True):
    """One `{name, value}` pair of a lead's custom variables; names are free text ("phone number", "zip", ...)."""

    name: str | None = None
    #: Email Bison sends strings; numbers and booleans are tolerated rather than rejected.
    value: str | int | float | bool | None = None


class Lead(_Model, frozen=True, kw_only=True):
    """`data.lead`: the contact an event is about."""

    id: BisonId | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    status: str | None = None
    title: str | None = None
    company: str | None = None
    interested: bool | None = None
    # Declared twice so that `null` and the keyed-object form decode (and are turned into a tuple of pairs) while
    # callers see a plain tuple. Email Bison documents an array of {name, value}; some instances and clients send
    # an object {name: value}.
    if TYPE_CHECKING:
        custom_variables: tuple[CustomVariable, ...] = ()
    else:
        custom_variables: tuple[CustomVariable, ...] | dict[str, Any] | None = ()

    identity_fields: ClassVar[tuple[str, ...]] = ("id", "email")

    def __post_init__(self) -> None:
        value: Any = self.custom_variables
        if value is None:
            msgspec.structs.force_setattr(self, "custom_variables", ())
        elif isinstance(value, dict):
            pairs = tuple(CustomVariable(name=k, value=_scalar(v)) for k, v in value.items())
            msgspec.structs.force_setattr(self, "custom_variables", pairs)


def _scalar(value: Any) -> str | int | float | bool | None:
    """A keyed custom variable's value: scalars as sent, `{"value": ...}` unwrapped, anything else as JSON text."""
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return msgspec.json.encode(value).decode()


class Recipient(_Model, frozen=True, kw_only=True):
    """One entry of `data.reply.to` (manual_email_sent)."""

    address: str | None = None
    name: str | None = None


class Reply(_Model, frozen=True, kw_only=True):
    """`data.reply`: an inbound reply, or for manual_email_sent the outbound message."""

    id: BisonId | None = None
    # not always a UUID; a number is read as its decimal text (declared twice, as custom_variables is)
    if TYPE_CHECKING:
        uuid: str | None = None
    else:
        uuid: str | int | None = None
    date_received: str | None = None
    from_name: str | None = None
    from_email_address: str | None = None
    email_subject: str | None = None
    text_body: str | None = None
    body_plain: str | None = None
    text: str | None = None
    interested: bool | None = None
    automated_reply: bool | None = None
    html_body: str | None = None
    #: "Tracked Reply", "Untracked Reply", "Bounced" or "reply"
    type: str | None = None
    #: "Inbox", "Bounced"
    folder: str | None = None
    if TYPE_CHECKING:
        to: tuple[Recipient, ...] = ()
    else:
        to: tuple[Recipient, ...] | None = ()

    identity_fields: ClassVar[tuple[str, ...]] = ("uuid", "id")

    def __post_init__(self) -> None:
        if self.to is None:
            msgspec.structs.force_setattr(self, "to", ())
        uuid: Any = self.uuid
        if isinstance(uuid, int) and not isinstance(uuid, bool):
            msgspec.structs.force_setattr(self, "uuid", str(uuid))

    @property
    def plain_text(self) -> str | None:
        """The first non-empty of `text_body`, `body_plain`, `text` (the order the predecessor read them in)."""
        return self.text_body or self.body_plain or self.text or None

    @property
    def received_at(self) -> datetime | None:
        """`date_received` parsed as ISO 8601 (`Z`, offsets and a space separator accepted); None if unparseable."""
        if not self.date_received:
            return None
        try:
            return datetime.fromisoformat(self.date_received.strip())
        except ValueError:
            return None


class Campaign(_Model, frozen=True, kw_only=True):
    """`data.campaign`."""

    id: BisonId | None = None
    name: str | None = None


class SenderEmail(_Model, frozen=True, kw_only=True):
    """`data.sender_email`: the mailbox that sent or received; for account events, the account itself."""

    id: BisonId | None = None
    email: str | None = None
    name: str | None = None
    #: As sent: webhooks send lower case ("connected", "disconnected"), the REST API capitalises ("Connected");
    #: the API also knows "pending_move" and "pending_deletion".
    status: str | None = None
    #: The account kind, e.g. "google_workspace_oauth", "microsoft_oauth".
    type: str | None = None
    updated_at: str | None = None

    identity_fields: ClassVar[tuple[str, ...]] = ("id", "email")


class Tag(_Model, frozen=True, kw_only=True):
    """`data.tag` of tag events (shape inferred from the REST API's tag objects)."""

    id: BisonId | None = None
    name: str | None = None
    default: bool | None = None


class ScheduledEmail(_Model, frozen=True, kw_only=True):
    """`data.scheduled_email` of send and reply events: one per sequence step sent to a lead (its `id` names the
    send). Counters (`opens`, `replies`, ...) move between renderings and are not declared."""

    id: BisonId | None = None
    lead_id: BisonId | None = None
    sequence_step_id: BisonId | None = None
    status: str | None = None
    sent_at: str | None = None


class CampaignEvent(_Model, frozen=True, kw_only=True):
    """`data.campaign_event` of send and reply events: `{id, type ("sent", "replied", ...), created_at, ...}`."""

    id: BisonId | None = None
    type: str | None = None
    created_at: str | None = None


class _EventData(_Model, frozen=True, kw_only=True):
    """Base of the typed `data` objects. `event_type` names the type; `required` lists the sub-objects without
    which the type's handler cannot act (each must also carry one of its `identity_fields`)."""

    event_type: ClassVar[str]
    required: ClassVar[tuple[str, ...]] = ()


# --- sending and lead activity --------------------------------------------------------------------------------


class EmailSent(_EventData, frozen=True, kw_only=True):
    """A campaign email went out. Only the envelope is used (a counter); the data shape is inferred."""

    event_type: ClassVar[str] = "email_sent"
    lead: Lead | None = None
    campaign: Campaign | None = None
    sender_email: SenderEmail | None = None
    scheduled_email: ScheduledEmail | None = None
    campaign_event: CampaignEvent | None = None


class ManualEmailSent(_EventData, frozen=True, kw_only=True):
    """A one-off email, reply or forward sent by hand (from Email Bison or our dashboard). `reply` is the outbound
    message; without `reply.id`/`reply.uuid` there is nothing to verify, which is a no-op, not an error."""

    event_type: ClassVar[str] = "manual_email_sent"
    lead: Lead | None = None
    reply: Reply | None = None
    campaign: Campaign | None = None
    sender_email: SenderEmail | None = None
    scheduled_email: ScheduledEmail | None = None
    campaign_event: CampaignEvent | None = None


class LeadFirstContacted(_EventData, frozen=True, kw_only=True):
    """The first email of a sequence reached a lead (no sample exists; shape inferred)."""

    event_type: ClassVar[str] = "lead_first_contacted"
    lead: Lead | None = None
    campaign: Campaign | None = None
    sender_email: SenderEmail | None = None
    scheduled_email: ScheduledEmail | None = None
    campaign_event: CampaignEvent | None = None


class LeadReplied(_EventData, frozen=True, kw_only=True):
    """A lead replied. Shape confirmed by the predecessor's code and samples."""

    event_type: ClassVar[str] = "lead_replied"
    required: ClassVar[tuple[str, ...]] = ("lead", "reply")
    lead: Lead
    reply: Reply
    campaign: Campaign | None = None
    sender_email: SenderEmail | None = None
    scheduled_email: ScheduledEmail | None = None
    campaign_event: CampaignEvent | None = None


class LeadInterested(_EventData, frozen=True, kw_only=True):
    """A lead was marked interested. Email Bison sends this only the first time per lead."""

    event_type: ClassVar[str] = "lead_interested"
    required: ClassVar[tuple[str, ...]] = ("lead",)
    lead: Lead
    reply: Reply | None = None
    campaign: Campaign | None = None
    sender_email: SenderEmail | None = None
    scheduled_email: ScheduledEmail | None = None
    campaign_event: CampaignEvent | None = None


class LeadUnsubscribed(_EventData, frozen=True, kw_only=True):
    """A lead unsubscribed; the handler counts it and moves the lead's stage."""

    event_type: ClassVar[str] = "lead_unsubscribed"
    required: ClassVar[tuple[str, ...]] = ("lead",)
    lead: Lead
    campaign: Campaign | None = None
    sender_email: SenderEmail | None = None
    scheduled_email: ScheduledEmail | None = None
    campaign_event: CampaignEvent | None = None


class UntrackedReplyReceived(_EventData, frozen=True, kw_only=True):
    """A reply that Email Bison could not attach to a campaign lead (no sample exists; shape inferred)."""

    event_type: ClassVar[str] = "untracked_reply_received"
    reply: Reply | None = None
    lead: Lead | None = None
    sender_email: SenderEmail | None = None
    scheduled_email: ScheduledEmail | None = None
    campaign_event: CampaignEvent | None = None


class EmailOpened(_EventData, frozen=True, kw_only=True):
    """An open was tracked (open tracking is off in practice, so this rarely arrives; shape inferred)."""

    event_type: ClassVar[str] = "email_opened"
    lead: Lead | None = None
    campaign: Campaign | None = None
    sender_email: SenderEmail | None = None
    scheduled_email: ScheduledEmail | None = None
    campaign_event: CampaignEvent | None = None


class EmailBounced(_EventData, frozen=True, kw_only=True):
    """An email to a lead bounced; the handler counts it and moves the lead's stage."""

    event_type: ClassVar[str] = "email_bounced"
    required: ClassVar[tuple[str, ...]] = ("lead",)
    lead: Lead
    campaign: Campaign | None = None
    sender_email: SenderEmail | None = None
    reply: Reply | None = None
    scheduled_email: ScheduledEmail | None = None
    campaign_event: CampaignEvent | None = None


# --- mailbox (sender account) lifecycle ------------------------------------------------------------------------


class EmailAccountAdded(_EventData, frozen=True, kw_only=True):
    """A mailbox was added to the workspace; `sender_email` is the account."""

    event_type: ClassVar[str] = "email_account_added"
    required: ClassVar[tuple[str, ...]] = ("sender_email",)
    sender_email: SenderEmail


class EmailAccountRemoved(_EventData, frozen=True, kw_only=True):
    """A mailbox was removed from the workspace."""

    event_type: ClassVar[str] = "email_account_removed"
    required: ClassVar[tuple[str, ...]] = ("sender_email",)
    sender_email: SenderEmail


class EmailAccountDisconnected(_EventData, frozen=True, kw_only=True):
    """A mailbox lost its connection (status "Disconnected")."""

    event_type: ClassVar[str] = "email_account_disconnected"
    required: ClassVar[tuple[str, ...]] = ("sender_email",)
    sender_email: SenderEmail


class EmailAccountReconnected(_EventData, frozen=True, kw_only=True):
    """A mailbox is connected again (status "Connected")."""

    event_type: ClassVar[str] = "email_account_reconnected"
    required: ClassVar[tuple[str, ...]] = ("sender_email",)
    sender_email: SenderEmail


class WarmupDisabledCausingBounces(_EventData, frozen=True, kw_only=True):
    """Email Bison switched a mailbox's warm-up off because it causes bounces (shape inferred)."""

    event_type: ClassVar[str] = "warmup_disabled_causing_bounces"
    sender_email: SenderEmail | None = None


class WarmupDisabledReceivingBounces(_EventData, frozen=True, kw_only=True):
    """Email Bison switched a mailbox's warm-up off because it receives bounces (shape inferred)."""

    event_type: ClassVar[str] = "warmup_disabled_receiving_bounces"
    sender_email: SenderEmail | None = None


# --- tags ------------------------------------------------------------------------------------------------------


class TagAttached(_EventData, frozen=True, kw_only=True):
    """A tag was attached to an entity (one webhook per tag and taggable)."""

    event_type: ClassVar[str] = "tag_attached"
    tag: Tag | None = None
    lead: Lead | None = None
    sender_email: SenderEmail | None = None
    campaign: Campaign | None = None
    #: Real deliveries are flat: `data.tag_id`, `data.tag_name`, `data.taggable_id`, `data.taggable_type`.
    tag_id: BisonId | None = None
    tag_name: str | None = None
    taggable_id: BisonId | None = None
    taggable_type: str | None = None


class TagRemoved(_EventData, frozen=True, kw_only=True):
    """A tag was removed from an entity (one webhook per tag and taggable)."""

    event_type: ClassVar[str] = "tag_removed"
    tag: Tag | None = None
    lead: Lead | None = None
    sender_email: SenderEmail | None = None
    campaign: Campaign | None = None
    #: Real deliveries are flat: `data.tag_id`, `data.tag_name`, `data.taggable_id`, `data.taggable_type`.
    tag_id: BisonId | None = None
    tag_name: str | None = None
    taggable_id: BisonId | None = None
    taggable_type: str | None = None


class UnknownEvent(_Model, frozen=True, kw_only=True):
    """`data` of a type outside the catalogue, kept as sent: never an error (answered 2xx, stored, replayable)."""

    event_type: str
    #: The exact bytes of `data` (`null` when the envelope had none).
    raw: msgspec.Raw
    #: `data` decoded to canonical builtins (dict, list, str, ...; text in NFC), as stored in `Delivery.payload_json`.
    value: Any


KnownEventData: TypeAlias = (
    EmailSent
    | ManualEmailSent
    | LeadFirstContacted
    | LeadReplied
    | LeadInterested
    | LeadUnsubscribed
    | UntrackedReplyReceived
    | EmailOpened
    | EmailBounced
    | EmailAccountAdded
    | EmailAccountRemoved
    | EmailAccountDisconnected
    | EmailAccountReconnected
    | TagAttached
    | TagRemoved
    | WarmupDisabledCausingBounces
    | WarmupDisabledReceivingBounces
)
EventData: TypeAlias = KnownEventData | UnknownEvent

_CATALOGUE: tuple[type[KnownEventData], ...] = (
    EmailSent,
    ManualEmailSent,
    LeadFirstContacted,
    LeadReplied,
    LeadInterested,
    LeadUnsubscribed,
    UntrackedReplyReceived,
    EmailOpened,
    EmailBounced,
    EmailAccountAdded,
    EmailAccountRemoved,
    EmailAccountDisconnected,
    EmailAccountReconnected,
    TagAttached,
    TagRemoved,
    WarmupDisabledCausingBounces,
    WarmupDisabledReceivingBounces,
)

#: The 17 event types of `GET /api/webhook-events/event-types`, lower-case, mapped to their `data` struct.
EVENT_TYPES: Mapping[str, type[KnownEventData]] = MappingProxyType({cls.event_type: cls for cls in _CATALOGUE})

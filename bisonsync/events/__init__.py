"""Email Bison webhook deliveries: typed models, two-stage decoding, canonical JSON and dedup keys.

    delivery = decode_delivery(body, instance="bison.example.com")  # the configured instance
    match delivery.data:
        case LeadInterested(lead=lead, reply=reply): ...
        case UnknownEvent(): ...  # stored as ignored, never an error

See docs/events.md for what each type requires and how dedup keys are derived.
"""

from bisonsync.events.canonical import canonical_json
from bisonsync.events.decode import Delivery, InvalidDelivery, decode_delivery, instance_host
from bisonsync.events.dedup import DEDUP_KEY_VERSION, LEGACY_KEY_VERSION
from bisonsync.events.models import (
    EVENT_TYPES,
    BisonId,
    Campaign,
    CampaignEvent,
    CustomVariable,
    EmailAccountAdded,
    EmailAccountDisconnected,
    EmailAccountReconnected,
    EmailAccountRemoved,
    EmailBounced,
    EmailOpened,
    EmailSent,
    EventData,
    EventMeta,
    KnownEventData,
    Lead,
    LeadFirstContacted,
    LeadInterested,
    LeadReplied,
    LeadUnsubscribed,
    ManualEmailSent,
    Recipient,
    Reply,
    ScheduledEmail,
    SenderEmail,
    Tag,
    TagAttached,
    TagRemoved,
    UnknownEvent,
    UntrackedReplyReceived,
    WarmupDisabledCausingBounces,
    WarmupDisabledReceivingBounces,
)

__all__ = [
    "DEDUP_KEY_VERSION",
    "EVENT_TYPES",
    "LEGACY_KEY_VERSION",
    "BisonId",
    "Campaign",
    "CampaignEvent",
    "CustomVariable",
    "Delivery",
    "EmailAccountAdded",
    "EmailAccountDisconnected",
    "EmailAccountReconnected",
    "EmailAccountRemoved",
    "EmailBounced",
    "EmailOpened",
    "EmailSent",
    "EventData",
    "EventMeta",
    "InvalidDelivery",
    "KnownEventData",
    "Lead",
    "LeadFirstContacted",
    "LeadInterested",
    "LeadReplied",
    "LeadUnsubscribed",
    "ManualEmailSent",
    "Recipient",
    "Reply",
    "ScheduledEmail",
    "SenderEmail",
    "Tag",
    "TagAttached",
    "TagRemoved",
    "UnknownEvent",
    "UntrackedReplyReceived",
    "WarmupDisabledCausingBounces",
    "WarmupDisabledReceivingBounces",
    "canonical_json",
    "decode_delivery",
    "instance_host",
]

"""Dedup keys: one deterministic key per event occurrence, equal for every retry or re-serialisation of it.

The rules (docs/events.md explains the trade-offs):

- Reply events (`lead_replied`, `manual_email_sent`, `untracked_reply_received`) are keyed by the ids in the payload,
  anchored on the reply: a reply is one occurrence, and `reply.uuid`/`reply.id` name it.
- `lead_interested` is keyed the same way, anchored on the reply when there is one, else on `lead.id`: Email Bison
  sends it only the first time a lead becomes interested, so the lead names the occurrence.
- Every other type, and a reply event without its anchor, is keyed by the whole canonical `data`: any field that
  could tell two occurrences apart (a scheduled-email id, a timestamp, a status) then does.

"Keyed by the ids" means: the anchor plus the ids of the type's other known parts (lead, campaign, mailbox),
so two payloads that differ in any id never share a key, while names, text and statuses do not count.
All keys include the lower-cased type, the instance host and the workspace id; labels (`event.name`,
`event.workspace_name`) never do, so a workspace renamed between two retries does not make a retry look new.
The key material is hashed: no e-mail address or other PII appears in a key.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from bisonsync.events.canonical import canonical_json, encode_canonical
from bisonsync.events.models import (
    EventData,
    LeadInterested,
    LeadReplied,
    ManualEmailSent,
    Reply,
    UntrackedReplyReceived,
)

DEDUP_KEY_VERSION = "v1"
_TYPE_LABEL = re.compile(r"[a-z0-9_]{1,64}")


def dedup_key(*, event_type: str, instance: str, workspace_id: int, data: EventData, data_value: Any) -> str:
    """The key of one delivery: `v1:<type>:<instance>:<workspace_id>:<sha256 hex>`.

    `data` is the typed (or unknown) data, `data_value` the same `data` as canonical builtins (`decode_canonical`;
    None when absent). The type in the readable prefix is `unknown` when it is not a short snake_case word; the hash
    always covers the exact type, so that substitution cannot make two keys collide.
    """
    head = [DEDUP_KEY_VERSION, event_type, instance, workspace_id]
    ids = _occurrence_ids(data)
    if ids is not None:
        material = canonical_json([*head, "ids", ids])
    else:
        # a JSON value is self-delimiting, so header + data is as unambiguous as one array holding both
        material = canonical_json([*head, "payload"]) + encode_canonical(data_value)
    digest = hashlib.sha256(material).hexdigest()
    label = event_type if _TYPE_LABEL.fullmatch(event_type) else "unknown"
    return f"{DEDUP_KEY_VERSION}:{label}:{instance}:{workspace_id}:{digest}"


def _occurrence_ids(data: EventData) -> dict[str, int | str | None] | None:
    """The ids that name this occurrence, or None when the type is keyed by payload or its anchor is missing."""
    match data:
        case LeadReplied() | ManualEmailSent() | LeadInterested():
            reply, lead, campaign, sender = data.reply, data.lead, data.campaign, data.sender_email
        case UntrackedReplyReceived():
            reply, lead, campaign, sender = data.reply, data.lead, None, data.sender_email
        case _:
            return None
    reply_uuid = _reply_uuid(reply)
    reply_id = reply.id if reply is not None else None
    lead_id = lead.id if lead is not None else None
    anchored = reply_uuid is not None or reply_id is not None
    if not anchored and not (isinstance(data, LeadInterested) and lead_id is not None):
        return None
    return {
        "reply_uuid": reply_uuid,
        "reply_id": reply_id,
        "lead_id": lead_id,
        "campaign_id": campaign.id if campaign is not None else None,
        "sender_email_id": sender.id if sender is not None else None,
    }


def _reply_uuid(reply: Reply | None) -> str | None:
    # UUIDs compare case-insensitively (RFC 9562); a blank one is no uuid
    if reply is None or reply.uuid is None:
        return None
    return reply.uuid.strip().lower() or None

"""Dedup keys: one deterministic key per event occurrence, equal for every retry or re-rendering of it.

Scheme v2 (current): the key is built from the ids the event carries, per type (see `IDENTITY` and the table in
docs/events.md): `scheduled_email.id` names a send, `reply.id`/`reply.uuid` a reply, `campaign_event.id` a campaign
event, `sender_email.id` (with its `updated_at`) a mailbox event, `tag_id` + `taggable_id` a tag event. The type is
part of the material, so LEAD_REPLIED and LEAD_INTERESTED of one reply are two events, and two sends of a sequence
to one lead (two scheduled emails) are two. A type whose payload carries none of its ids falls back to a hash of
the canonical `data` with the volatile parts removed (embedded counters, `updated_at`), so a retry Email Bison
rendered later, with moved counters, is still the same event.

Scheme v1 (before): ids for reply events, else a hash of the whole `data`. v1 keys stay in the ledger; the service
sends the v1 key of each delivery along (`legacy_dedup_key`), so a retry of a delivery first recorded under v1
still finds it.

All keys include the lower-cased type, the instance and the workspace id; labels (`event.name`,
`event.workspace_name`) never do. The key material is hashed: no e-mail address or other PII appears in a key.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, TypeAlias

from bisonsync.events.canonical import canonical_json, encode_canonical
from bisonsync.events.models import (
    EventData,
    LeadInterested,
    LeadReplied,
    ManualEmailSent,
    Reply,
    UntrackedReplyReceived,
)

DEDUP_KEY_VERSION = "v2"
LEGACY_KEY_VERSION = "v1"
_TYPE_LABEL = re.compile(r"[a-z0-9_]{1,64}")


def legacy_dedup_key(*, event_type: str, instance: str, workspace_id: int, data: EventData, data_value: Any) -> str:
    """The v1 key of one delivery: `v1:<type>:<instance>:<workspace_id>:<sha256 hex>` (kept to recognise retries of
    deliveries recorded before v2; `instance` is what v1 used: the host of `event.instance_url`, else the default).

    `data` is the typed (or unknown) data, `data_value` the same `data` as canonical builtins (`decode_canonical`;
    None when absent). The type in the readable prefix is `unknown` when it is not a short snake_case word; the hash
    always covers the exact type, so that substitution cannot make two keys collide.
    """
    head = [LEGACY_KEY_VERSION, event_type, instance, workspace_id]
    ids = _occurrence_ids(data)
    if ids is not None:
        material = canonical_json([*head, "ids", ids])
    else:
        # a JSON value is self-delimiting, so header + data is as unambiguous as one array holding both
        material = canonical_json([*head, "payload"]) + encode_canonical(data_value)
    digest = hashlib.sha256(material).hexdigest()
    label = event_type if _TYPE_LABEL.fullmatch(event_type) else "unknown"
    return f"{LEGACY_KEY_VERSION}:{label}:{instance}:{workspace_id}:{digest}"


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


# --- v2 ----------------------------------------------------------------------------------------------------------

Path: TypeAlias = tuple[str, ...]

#: Per type, the id bases in order of preference: the first basis whose ids are all present names the occurrence.
#: Paths are inside `data`. A type (or a payload) with no complete basis is keyed by its payload without volatile
#: parts.
_REPLY: tuple[tuple[Path, ...], ...] = ((("reply", "id"),), (("reply", "uuid"),), (("campaign_event", "id"),))
_MAILBOX: tuple[tuple[Path, ...], ...] = ((("sender_email", "id"), ("sender_email", "updated_at")),)
_SEND: tuple[tuple[Path, ...], ...] = ((("scheduled_email", "id"),), (("campaign_event", "id"),))
_TAG: tuple[tuple[Path, ...], ...] = (
    (("tag_id",), ("taggable_id",)),
    (("tag", "id"), ("lead", "id")),
    (("tag", "id"), ("sender_email", "id")),
    (("tag", "id"), ("campaign", "id")),
)
IDENTITY: dict[str, tuple[tuple[Path, ...], ...]] = {
    "email_sent": _SEND,
    "lead_first_contacted": (*_SEND, (("lead", "id"), ("campaign", "id"))),
    "email_opened": ((("campaign_event", "id"),),),
    "lead_replied": _REPLY,
    "manual_email_sent": _REPLY,
    "untracked_reply_received": _REPLY,
    # sent once per lead becoming interested: the reply that made it so, else the lead
    "lead_interested": (*_REPLY, (("lead", "id"),)),
    # the bounce message arrives as a `reply` (type/folder "Bounced")
    "email_bounced": (*_REPLY[:2], *_SEND),
    "lead_unsubscribed": ((("campaign_event", "id"),), (("lead", "id"),)),
    "email_account_added": _MAILBOX,
    "email_account_removed": _MAILBOX,
    "email_account_disconnected": _MAILBOX,
    "email_account_reconnected": _MAILBOX,
    "warmup_disabled_causing_bounces": _MAILBOX,
    "warmup_disabled_receiving_bounces": _MAILBOX,
    "tag_attached": _TAG,
    "tag_removed": _TAG,
}

#: Values Email Bison embeds that move between two renderings of one event: live counters of the lead, mailbox and
#: scheduled email, and `updated_at`. Removed (in sub-objects of `data`) before a payload is hashed.
VOLATILE_FIELDS = frozenset(
    {
        "emails_sent", "opens", "unique_opens", "replies", "unique_replies", "bounces", "replied", "opened",
        "unsubscribed", "bounced", "total_leads_contacted", "interested", "daily_limit", "updated_at",
    }
)  # fmt: skip


def dedup_key(*, event_type: str, instance: str, workspace_id: int, data_value: Any) -> str:
    """The v2 key of one delivery: `v2:<type>:<instance>:<workspace_id>:<sha256 hex>`.

    `data_value` is `data` as canonical builtins (`decode_canonical`; None when absent). The type in the readable
    prefix is `unknown` when it is not a short snake_case word; the hash always covers the exact type.
    """
    head = [DEDUP_KEY_VERSION, event_type, instance, workspace_id]
    basis = occurrence_ids(event_type, data_value)
    if basis is not None:
        material = canonical_json([*head, "ids", basis])
    else:
        material = canonical_json([*head, "payload"]) + encode_canonical(stable_payload(data_value))
    digest = hashlib.sha256(material).hexdigest()
    label = event_type if _TYPE_LABEL.fullmatch(event_type) else "unknown"
    return f"{DEDUP_KEY_VERSION}:{label}:{instance}:{workspace_id}:{digest}"


def occurrence_ids(event_type: str, data_value: Any) -> dict[str, int | str] | None:
    """The first complete id basis of `event_type` found in `data_value` ({"reply.id": 7}), or None."""
    for basis in IDENTITY.get(event_type, ()):
        found: dict[str, int | str] = {}
        for path in basis:
            value = _id_at(data_value, path)
            if value is None:
                break
            found[".".join(path)] = value
        else:
            return found
    return None


def _id_at(value: Any, path: Path) -> int | str | None:
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.isdigit():
            return int(text)  # "42" and 42 name the same row (lax decoding reads both as 42)
        return text.lower() if path[-1] == "uuid" else text
    return None


def stable_payload(data_value: Any) -> Any:
    """`data` without the volatile fields of its sub-objects (and without `updated_at` anywhere)."""
    if not isinstance(data_value, dict):
        return data_value
    return {k: _strip(v) for k, v in data_value.items() if k != "updated_at"}


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE_FIELDS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value

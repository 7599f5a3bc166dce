"""Random deliveries over deliberately small value domains (so that equal events recur), and an independent oracle
for what identifies an event occurrence, written from docs/events.md rather than from the implementation."""

from __future__ import annotations

import json
import random
from typing import Any

from bisonsync.events import EVENT_TYPES

TYPES = [*sorted(EVENT_TYPES), "campaign_completed"]
INSTANCE_URLS = ["https://bison.example.com", "https://BISON.example.com:443/api", "https://other.example.com", None]
WORKSPACE_IDS: list[int | str] = [1, 2, "2"]
WORKSPACE_NAMES = ["Client A", " Client A ", "Client B", None]
LEAD_IDS: list[int | str | None] = [None, 1, 2, "2"]
LEAD_EMAILS = [None, "pat@example.com", "sam@example.com"]
REPLY_IDS = [None, 10, 11]
REPLY_UUIDS = [None, "u-1", " U-1 ", "u-2", ""]
CAMPAIGN_IDS = [None, 3, 4]
SENDER_IDS = [None, 5, 6]
SENDER_EMAILS = [None, "box@example.com"]
TEXTS = ["yes", "no", "José"]
STATUSES = ["active", "interested", "Connected", "Disconnected"]
SCHEDULED_IDS: list[int | str | None] = [None, 20, 21, "21"]
CAMPAIGN_EVENT_IDS = [None, 30, 31]
UPDATED_ATS = [None, "2025-10-14T01:00:00Z", "2025-10-14T02:00:00Z"]
COUNTERS = [0, 1, 7]
TAG_IDS = [None, 7, 8]
TAGGABLE_IDS = [None, 1, 2]

# The identity table of docs/events.md (v2), written out again here as the oracle.
_Basis = list[list[tuple[str, ...]]]
_REPLY: _Basis = [[("reply", "id")], [("reply", "uuid")], [("campaign_event", "id")]]
_SEND: _Basis = [[("scheduled_email", "id")], [("campaign_event", "id")]]
_MAILBOX: _Basis = [[("sender_email", "id"), ("sender_email", "updated_at")]]
_TAG: _Basis = [
    [("tag_id",), ("taggable_id",)],
    [("tag", "id"), ("lead", "id")],
    [("tag", "id"), ("sender_email", "id")],
    [("tag", "id"), ("campaign", "id")],
]
BASES: dict[str, list[list[tuple[str, ...]]]] = {
    "email_sent": _SEND,
    "lead_first_contacted": [*_SEND, [("lead", "id"), ("campaign", "id")]],
    "email_opened": [[("campaign_event", "id")]],
    "lead_replied": _REPLY,
    "manual_email_sent": _REPLY,
    "untracked_reply_received": _REPLY,
    "lead_interested": [*_REPLY, [("lead", "id")]],
    "email_bounced": [*_REPLY[:2], *_SEND],
    "lead_unsubscribed": [[("campaign_event", "id")], [("lead", "id")]],
    **{t: _MAILBOX for t in EVENT_TYPES if t.startswith(("email_account_", "warmup_"))},
    "tag_attached": _TAG,
    "tag_removed": _TAG,
}
VOLATILE = {
    "emails_sent",
    "opens",
    "unique_opens",
    "replies",
    "unique_replies",
    "bounces",
    "replied",
    "opened",
    "unsubscribed",
    "bounced",
    "total_leads_contacted",
    "interested",
    "daily_limit",
    "updated_at",
}
_IDENTITY_FIELDS = {"lead": ("id", "email"), "reply": ("uuid", "id"), "sender_email": ("id", "email")}


def make_doc(
    event_type: str,
    *,
    type_spelling: int = 0,
    workspace_id: int | str = 1,
    instance_url: str | None = None,
    workspace_name: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An envelope around `data`, with the type's required parts added when missing (so it always decodes)."""
    spelled = [event_type, event_type.upper(), f" {event_type.title()} "][type_spelling % 3]
    event: dict[str, Any] = {"type": spelled, "name": "Label", "workspace_id": workspace_id}
    if instance_url is not None:
        event["instance_url"] = instance_url
    if workspace_name is not None:
        event["workspace_name"] = workspace_name
    data = dict(data or {})
    cls = EVENT_TYPES.get(event_type)
    for part in cls.required if cls else ():
        present = data.get(part) or {}
        if not any(str(present.get(field) or "").strip() for field in _IDENTITY_FIELDS[part]):
            data[part] = {**present, _IDENTITY_FIELDS[part][0]: 1 if part != "reply" else "u-9"}
    return {"event": event, "data": data}


def random_doc(rng: random.Random) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if rng.random() < 0.7:
        data["lead"] = _some(rng, id=LEAD_IDS, email=LEAD_EMAILS, status=STATUSES)
    if rng.random() < 0.6:
        data["reply"] = _some(rng, id=REPLY_IDS, uuid=REPLY_UUIDS, text_body=TEXTS)
    if rng.random() < 0.5:
        data["campaign"] = _some(rng, id=CAMPAIGN_IDS, name=TEXTS)
    if rng.random() < 0.5:
        data["sender_email"] = _some(rng, id=SENDER_IDS, email=SENDER_EMAILS, status=STATUSES)
    if rng.random() < 0.2:
        data["tag"] = _some(rng, id=[7, 8], name=TEXTS)
    if rng.random() < 0.3:
        data["n"] = rng.choice([1, 2])
    if rng.random() < 0.5:
        data["scheduled_email"] = _some(rng, id=SCHEDULED_IDS, opens=COUNTERS, sent_at=UPDATED_ATS)
    if rng.random() < 0.4:
        data["campaign_event"] = _some(rng, id=CAMPAIGN_EVENT_IDS, type=["sent", "replied"])
    if rng.random() < 0.3 and isinstance(data.get("sender_email"), dict):
        data["sender_email"].update(_some(rng, updated_at=UPDATED_ATS, emails_sent=COUNTERS))
    if rng.random() < 0.2:
        data.update(_some(rng, tag_id=TAG_IDS, taggable_id=TAGGABLE_IDS, taggable_type=["lead"]))
    return make_doc(
        rng.choice(TYPES),
        type_spelling=rng.randrange(3),
        workspace_id=rng.choice(WORKSPACE_IDS),
        instance_url=rng.choice(INSTANCE_URLS),
        workspace_name=rng.choice(WORKSPACE_NAMES),
        data=data,
    )


def _some(rng: random.Random, **domains: list[Any]) -> dict[str, Any]:
    """A sub-object with each field present or absent at random (None values are kept as JSON null)."""
    return {name: rng.choice(values) for name, values in domains.items() if rng.random() < 0.8}


def expected_identity(doc: dict[str, Any]) -> tuple[Any, ...]:
    """What names the occurrence, per docs/events.md (scheme v2): type and workspace (the instance is the configured
    one, whatever `instance_url` says), then the first complete id basis of the type, else `data` without its
    volatile parts."""
    event = doc["event"]
    event_type = event["type"].strip().lower()
    tenant = (event_type, int(event["workspace_id"]))
    data = doc.get("data") or {}
    for basis in BASES.get(event_type, []):
        values = [_id(data, path) for path in basis]
        if all(v is not None for v in values):
            return (*tenant, "ids", tuple(basis), tuple(values))
    stable = {k: _stable(v) for k, v in data.items() if k != "updated_at"}
    return (*tenant, "payload", json.dumps(stable, sort_keys=True))


def _id(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = data
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        if value.isdigit():
            return int(value)
        return value.lower() if path[-1] == "uuid" else value
    return value


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    return value

"""Random deliveries over deliberately small value domains (so that equal events recur), and an independent oracle
for what identifies an event occurrence, written from docs/events.md rather than from the implementation."""

from __future__ import annotations

import json
import random
from typing import Any
from urllib.parse import urlsplit

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

REPLY_ANCHORED = {"lead_replied", "manual_email_sent", "untracked_reply_received", "lead_interested"}
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


def expected_identity(doc: dict[str, Any], default_instance: str = "default") -> tuple[Any, ...]:
    """What names the occurrence, per docs/events.md: type, tenant, then the ids or the whole `data`."""
    event = doc["event"]
    event_type = event["type"].strip().lower()
    url = (event.get("instance_url") or "").strip()
    instance = urlsplit(url).hostname if url else default_instance
    tenant = (event_type, instance, int(event["workspace_id"]))
    data = doc.get("data") or {}
    if event_type in REPLY_ANCHORED:
        reply, lead = data.get("reply") or {}, data.get("lead") or {}
        reply_uuid = (reply.get("uuid") or "").strip().lower() or None
        reply_id, lead_id = _int(reply.get("id")), _int(lead.get("id"))
        if reply_uuid or reply_id is not None or (event_type == "lead_interested" and lead_id is not None):
            campaign = (
                None if event_type == "untracked_reply_received" else _int((data.get("campaign") or {}).get("id"))
            )
            sender = _int((data.get("sender_email") or {}).get("id"))
            return (*tenant, "ids", reply_uuid, reply_id, lead_id, campaign, sender)
    return (*tenant, "payload", json.dumps(doc.get("data"), sort_keys=True))


def _int(value: Any) -> int | None:
    return None if value is None else int(value)

"""Dedup keys (scheme v2), rule by rule: an event is named by its own ids; retries and re-renderings share a key,
distinct occurrences never do."""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable
from typing import Any

import pytest

from bisonsync.events import EVENT_TYPES, decode_delivery
from bisonsync.events.dedup import IDENTITY, VOLATILE_FIELDS

from ._support import delivery_doc, fixture_bytes, fixture_doc, fixture_names, reserialise, to_bytes

KEY_FORMAT = re.compile(r"v2:[a-z0-9_]{1,64}:[a-z0-9.\[\]:_-]+:[1-9][0-9]*:[0-9a-f]{64}")
LEGACY_FORMAT = re.compile(r"v1:[a-z0-9_]{1,64}:[a-z0-9.\[\]:_-]+:[1-9][0-9]*:[0-9a-f]{64}")
MAILBOX_TYPES = sorted(t for t in EVENT_TYPES if t.startswith(("email_account_", "warmup_")))
INSTANCE = "bison.example.com"


def key(doc: dict[str, Any], instance: str = INSTANCE) -> str:
    return decode_delivery(to_bytes(doc), instance=instance).dedup_key


def edited(doc: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    copied = copy.deepcopy(doc)
    change(copied)
    return copied


def rerendered(doc: dict[str, Any], *, keep_mailbox_updated_at: bool = False) -> dict[str, Any]:
    """The same event as Email Bison renders it for a later retry: every embedded counter moved, `updated_at` later."""

    def move(value: Any, parent: str | None) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k, v in value.items():
                if k == "updated_at" and not (keep_mailbox_updated_at and parent == "sender_email"):
                    out[k] = "2025-10-14T09:59:59.000000Z"
                elif k in VOLATILE_FIELDS and isinstance(v, int) and not isinstance(v, bool):
                    out[k] = v + 3
                else:
                    out[k] = move(v, k)
            return out
        return value

    return {"event": dict(doc["event"]), "data": move(doc.get("data"), None)}


def test_the_identity_table_covers_the_catalogue() -> None:
    assert set(IDENTITY) == set(EVENT_TYPES)


@pytest.mark.parametrize("name", fixture_names())
def test_key_format_and_no_pii(name: str) -> None:
    delivery = decode_delivery(fixture_bytes(name), instance=INSTANCE)
    assert KEY_FORMAT.fullmatch(delivery.dedup_key), delivery.dedup_key
    assert LEGACY_FORMAT.fullmatch(delivery.legacy_dedup_key), delivery.legacy_dedup_key
    for k in (delivery.dedup_key, delivery.legacy_dedup_key):
        assert "@" not in k and "client" not in k.lower()


@pytest.mark.parametrize("name", fixture_names())
def test_retries_share_the_key_however_reserialised(name: str) -> None:
    body = fixture_bytes(name)
    expected = decode_delivery(body).dedup_key
    rng = random.Random(name)
    for _ in range(50):
        assert decode_delivery(reserialise(body, rng)).dedup_key == expected


@pytest.mark.parametrize("name", [n for n in fixture_names() if n.removesuffix(".json") not in MAILBOX_TYPES])
def test_a_retry_rendered_later_has_the_same_key(name: str) -> None:
    """Moved counters and `updated_at` do not make a retry new (the issue's double count)."""
    doc = fixture_doc(name)
    assert key(rerendered(doc)) == key(doc)


@pytest.mark.parametrize("name", MAILBOX_TYPES)
def test_mailbox_events_are_named_by_the_mailbox_and_its_updated_at(name: str) -> None:
    """Mailbox events count nothing, and one mailbox disconnects many times: the mailbox's `updated_at` tells two
    disconnects apart; a retry with moved counters but the same `updated_at` is the same event."""
    doc = fixture_doc(name)
    assert key(rerendered(doc, keep_mailbox_updated_at=True)) == key(doc)
    later = edited(doc, lambda d: d["data"]["sender_email"].update(updated_at="2025-11-01T00:00:00Z"))
    assert key(later) != key(doc)
    other = edited(doc, lambda d: d["data"]["sender_email"].update(id=d["data"]["sender_email"]["id"] + 1))
    assert key(other) != key(doc)


def test_the_instance_url_never_counts() -> None:
    """No instance_url, the vendor's generic host or a white-label host: one instance, one key."""
    doc = fixture_doc("lead_replied")
    assert "instance_url" not in doc["event"]
    keys = {
        key(doc),
        key(edited(doc, lambda d: d["event"].update(instance_url="https://app.emailbison.com"))),
        key(edited(doc, lambda d: d["event"].update(instance_url="https://mail.agency-white-label.example"))),
        key(edited(doc, lambda d: d["event"].update(instance_url="not a url at all"))),
    }
    assert len(keys) == 1
    assert decode_delivery(fixture_bytes("lead_replied_own_host"), instance=INSTANCE).dedup_key in keys
    # the configured instance does count: two instances are two tenants
    assert key(doc, instance="other-bison.example.com") not in keys


@pytest.mark.parametrize("name", fixture_names())
def test_labels_do_not_count(name: str) -> None:
    doc = fixture_doc(name)
    expected = key(doc)

    def relabel(d: dict[str, Any]) -> None:
        d["event"]["workspace_name"] = "Renamed Client"
        d["event"]["name"] = "Another Label"
        d["event"]["type"] = f"  {d['event']['type'].lower()} "

    assert key(edited(doc, relabel)) == expected
    assert key(edited(doc, lambda d: d["event"].pop("workspace_name"))) == expected


@pytest.mark.parametrize("name", fixture_names())
def test_workspace_and_type_always_count(name: str) -> None:
    doc = fixture_doc(name)
    other_type = "SOME_OTHER_EVENT"  # a type with no requirements, so any data decodes
    keys = {
        key(doc),
        key(edited(doc, lambda d: d["event"].update(workspace_id=d["event"]["workspace_id"] + 1))),
        key(edited(doc, lambda d: d["event"].update(type=other_type))),
    }
    assert len(keys) == 3


def test_two_sends_of_a_sequence_to_one_lead_are_two_events() -> None:
    first = fixture_doc("email_sent")

    def step_two(d: dict[str, Any]) -> None:
        d["data"]["scheduled_email"].update(id=d["data"]["scheduled_email"]["id"] + 1, sequence_step_order=3)
        d["data"]["campaign_event"]["id"] += 1

    assert key(edited(first, step_two)) != key(first)
    # the scheduled email names the send: another campaign_event id for the same scheduled email is a re-render
    assert key(edited(first, lambda d: d["data"]["campaign_event"].update(id=1))) == key(first)


def test_replied_and_interested_for_one_reply_are_two_events() -> None:
    replied = fixture_doc("lead_replied")
    interested = edited(replied, lambda d: d["event"].update(type="LEAD_INTERESTED", name="Lead Interested"))
    assert key(replied) != key(interested)
    # and each is stable under its own retries
    assert key(rerendered(interested)) == key(interested)


@pytest.mark.parametrize("event_type", ["LEAD_REPLIED", "MANUAL_EMAIL_SENT", "UNTRACKED_REPLY_RECEIVED"])
def test_reply_events_are_named_by_the_reply(event_type: str) -> None:
    doc = edited(fixture_doc("lead_replied"), lambda d: d["event"].update(type=event_type))
    expected = key(doc)

    def rewrite(d: dict[str, Any]) -> None:
        d["data"]["reply"]["text_body"] = "edited text"
        d["data"]["lead"]["status"] = "interested"
        d["data"]["lead"]["custom_variables"] = {"city": "Elsewhere"}
        d["data"]["campaign"]["name"] = "Renamed campaign"
        d["data"]["new_field_from_bison"] = {"x": 1}

    assert key(edited(doc, rewrite)) == expected
    assert key(edited(doc, lambda d: d["data"]["reply"].update(id=str(d["data"]["reply"]["id"])))) == expected
    assert key(edited(doc, lambda d: d["data"]["reply"].update(id=d["data"]["reply"]["id"] + 1))) != expected
    # without reply.id, the uuid names it (compared case-insensitively, trimmed)
    no_id = edited(doc, lambda d: d["data"]["reply"].pop("id"))
    upper = edited(no_id, lambda d: d["data"]["reply"].update(uuid=f" {d['data']['reply']['uuid'].upper()} "))
    assert key(upper) == key(no_id)


def test_bounce_is_named_by_its_bounce_reply_then_the_send() -> None:
    doc = fixture_doc("email_bounced")
    assert key(edited(doc, lambda d: d["data"]["reply"].update(id=1))) != key(doc)
    no_reply = edited(doc, lambda d: d["data"].pop("reply"))
    assert key(edited(no_reply, lambda d: d["data"]["scheduled_email"].update(id=1))) != key(no_reply)
    assert key(rerendered(no_reply)) == key(no_reply)


def test_lead_interested_without_reply_is_named_by_the_lead() -> None:
    doc = delivery_doc("LEAD_INTERESTED", {"lead": {"id": 7, "email": "lead@example.com", "status": "interested"}})
    expected = key(doc)
    assert key(edited(doc, lambda d: d["data"]["lead"].update(status="active", emails_sent=9))) == expected
    assert key(edited(doc, lambda d: d["data"]["lead"].update(id=8))) != expected


def test_flat_tag_events_are_named_by_tag_and_taggable() -> None:
    doc = fixture_doc("tag_attached")
    expected = key(doc)
    assert key(edited(doc, lambda d: d["data"].update(tag_name="Renamed tag"))) == expected
    assert key(edited(doc, lambda d: d["data"].update(tag_id=18))) != expected
    assert key(edited(doc, lambda d: d["data"].update(taggable_id=1))) != expected
    removed = edited(doc, lambda d: d["event"].update(type="TAG_REMOVED"))
    assert key(removed) != expected


def test_without_ids_the_payload_names_it_minus_volatile_parts() -> None:
    doc = delivery_doc("EMAIL_SENT", {"lead": {"email": "a@example.com", "emails_sent": 1}, "note": "x"})
    expected = key(doc)
    assert key(edited(doc, lambda d: d["data"]["lead"].update(emails_sent=5, updated_at="2025-01-01"))) == expected
    assert key(edited(doc, lambda d: d["data"].update(note="y"))) != expected
    assert key(edited(doc, lambda d: d["data"]["lead"].update(email="b@example.com"))) != expected
    unknown = delivery_doc("CAMPAIGN_COMPLETED", {"campaign": {"id": 1, "updated_at": "a"}, "n": 1})
    assert key(edited(unknown, lambda d: d["data"]["campaign"].update(updated_at="b"))) == key(unknown)
    assert key(edited(unknown, lambda d: d["data"].update(n=2))) != key(unknown)


def test_unknown_type_label_is_sanitised_but_hashed_exactly() -> None:
    odd = key(delivery_doc("Weird:Type / With Spaces", {"x": 1}))
    assert odd.startswith("v2:unknown:bison.example.com:42:")
    assert odd != key(delivery_doc("weird:type / with spaces!", {"x": 1}))
    assert key(delivery_doc("WEIRD:TYPE / WITH SPACES", {"x": 1})) == odd


@pytest.mark.parametrize(
    ("name", "v1_key"),
    [
        (
            "legacy/lead_replied",
            "v1:lead_replied:bison.example.com:42:e257328c45c5d5368318cb3882a9eb48a0d1e788313c0fd8b4cccb72042fd7bb",
        ),
        (
            "legacy/email_sent",
            "v1:email_sent:bison.example.com:42:d1cdffc8f267bc329acdea9173972e6accc7bd0b0d116cf4367223f7c99a25ec",
        ),
        (
            "legacy/email_account_disconnected",
            "v1:email_account_disconnected:bison.example.com:42:"
            "9fead79e80282a6a75528aeef39fc97efd4fad589e8fa45ac7c7d9f9beb4fb86",
        ),
    ],
)
def test_the_v1_key_is_what_v1_gave(name: str, v1_key: str) -> None:
    """Keys recorded by the previous release (values computed by it) are recomputed exactly, so a retry of an old
    delivery is recognised as a repeat of the ledgered one."""
    delivery = decode_delivery(fixture_bytes(name), instance="configured.example.com")
    assert delivery.legacy_dedup_key == v1_key
    assert delivery.dedup_key.startswith("v2:") and delivery.dedup_key != v1_key


def test_the_v1_key_of_a_body_without_instance_url_uses_the_old_default() -> None:
    """v1 filed bodies without instance_url under BISONSYNC_DEFAULT_INSTANCE, whatever BISON_BASE_URL said; the
    value below was computed by the previous release for this body."""
    body = fixture_bytes("email_sent")
    delivery = decode_delivery(body, instance="bison.example.com", legacy_instance="default")
    assert delivery.legacy_dedup_key == (
        "v1:email_sent:default:42:ca349f1d176693da56cc5fddec990091b9bae1ea9f9f0ca35f595bfe5cf58f81"
    )
    assert delivery.instance == "bison.example.com"

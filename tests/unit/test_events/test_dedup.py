"""Dedup keys, rule by rule: retries share a key, distinct occurrences never do."""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable
from typing import Any

import pytest

from bisonsync.events import EVENT_TYPES, decode_delivery

from ._support import delivery_doc, fixture_bytes, fixture_doc, fixture_names, reserialise, to_bytes

KEY_FORMAT = re.compile(r"v1:[a-z0-9_]{1,64}:[a-z0-9.\[\]:_-]+:[1-9][0-9]*:[0-9a-f]{64}")
REPLY_KEYED = ("lead_replied", "manual_email_sent", "untracked_reply_received", "lead_interested")
PAYLOAD_KEYED = sorted(set(EVENT_TYPES) - set(REPLY_KEYED))


def key(doc: dict[str, Any], **kw: Any) -> str:
    return decode_delivery(to_bytes(doc), **kw).dedup_key


def edited(doc: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    copied = copy.deepcopy(doc)
    change(copied)
    return copied


@pytest.mark.parametrize("name", fixture_names())
def test_key_format_and_no_pii(name: str) -> None:
    dedup_key = decode_delivery(fixture_bytes(name)).dedup_key
    assert KEY_FORMAT.fullmatch(dedup_key), dedup_key
    assert "@" not in dedup_key
    assert "client" not in dedup_key.lower()


@pytest.mark.parametrize("name", fixture_names())
def test_retries_share_the_key_however_reserialised(name: str) -> None:
    body = fixture_bytes(name)
    expected = decode_delivery(body).dedup_key
    assert decode_delivery(bytes(body)).dedup_key == expected
    rng = random.Random(name)
    for _ in range(50):
        assert decode_delivery(reserialise(body, rng)).dedup_key == expected


def test_keys_of_the_corpus_are_all_different() -> None:
    keys = [decode_delivery(fixture_bytes(name)).dedup_key for name in fixture_names()]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("name", fixture_names())
def test_labels_do_not_count(name: str) -> None:
    doc = fixture_doc(name)
    expected = key(doc)

    def relabel(d: dict[str, Any]) -> None:
        d["event"]["workspace_name"] = "Renamed Client"
        d["event"]["name"] = "Another Label"
        d["event"]["type"] = f"  {d['event']['type'].upper()} "

    assert key(edited(doc, relabel)) == expected
    assert key(edited(doc, lambda d: d["event"].pop("workspace_name"))) == expected


@pytest.mark.parametrize("name", fixture_names())
def test_tenant_and_type_always_count(name: str) -> None:
    doc = fixture_doc(name)
    keys = {
        key(doc),
        key(edited(doc, lambda d: d["event"].update(workspace_id=d["event"]["workspace_id"] + 1))),
        key(edited(doc, lambda d: d["event"].update(instance_url="https://other-bison.example.com"))),
        key(edited(doc, lambda d: d["event"].pop("instance_url"))),
    }
    assert len(keys) == 4


def test_the_instance_is_the_host_whichever_way_it_is_written() -> None:
    doc = fixture_doc("lead_replied")
    expected = key(doc)
    assert key(edited(doc, lambda d: d["event"].update(instance_url="HTTPS://Bison.Example.com:443/"))) == expected
    absent = edited(doc, lambda d: d["event"].pop("instance_url"))
    assert key(absent, default_instance="bison.example.com") == expected


def test_same_ids_under_different_types_give_different_keys() -> None:
    data = {
        "lead": {"id": 1, "email": "lead@example.com"},
        "reply": {"id": 2, "uuid": "u-2"},
        "campaign": {"id": 3},
        "sender_email": {"id": 4, "email": "box@example.com"},
        "tag": {"id": 5},
    }
    keys = {key(delivery_doc(event_type, data)) for event_type in EVENT_TYPES}
    keys.add(key(delivery_doc("not_in_the_catalogue", data)))
    assert len(keys) == len(EVENT_TYPES) + 1


ID_PATHS: list[tuple[str, ...]] = [
    ("lead", "id"),
    ("reply", "id"),
    ("reply", "uuid"),
    ("campaign", "id"),
    ("sender_email", "id"),
]


def _bump(value: Any) -> Any:
    return value + 1000 if isinstance(value, int) else f"{value}-other"


@pytest.mark.parametrize("name", fixture_names())
def test_any_one_id_differing_gives_a_different_key(name: str) -> None:
    doc = fixture_doc(name)
    expected = key(doc)
    changed = 0
    for path in [*ID_PATHS, ("tag", "id")]:
        parent = doc.get("data", {}).get(path[0])
        if not isinstance(parent, dict) or path[1] not in parent:
            continue

        def change(d: dict[str, Any], path: tuple[str, ...] = path) -> None:
            d["data"][path[0]][path[1]] = _bump(d["data"][path[0]][path[1]])

        assert key(edited(doc, change)) != expected, path
        changed += 1
    assert changed or name == "unknown_type"


@pytest.mark.parametrize("event_type", REPLY_KEYED)
def test_reply_events_are_keyed_by_ids_not_by_text(event_type: str) -> None:
    doc = edited(fixture_doc("lead_replied"), lambda d: d["event"].update(type=event_type))
    expected = key(doc)

    def rewrite(d: dict[str, Any]) -> None:
        d["data"]["reply"]["text_body"] = "edited text"
        d["data"]["reply"]["interested"] = True
        d["data"]["lead"]["status"] = "interested"
        d["data"]["lead"]["custom_variables"] = []
        d["data"]["campaign"]["name"] = "Renamed campaign"
        d["data"]["new_field_from_bison"] = {"x": 1}

    assert key(edited(doc, rewrite)) == expected
    # the uuid is compared case-insensitively and trimmed
    upper = edited(doc, lambda d: d["data"]["reply"].update(uuid=f" {d['data']['reply']['uuid'].upper()} "))
    assert key(upper) == expected
    # a numeric string id is the same id
    assert key(edited(doc, lambda d: d["data"]["lead"].update(id=str(d["data"]["lead"]["id"])))) == expected


def test_reply_uuid_and_id_each_anchor_alone() -> None:
    base = {"lead": {"id": 1}, "reply": {"id": 10, "uuid": "u-10"}}
    both = key(delivery_doc("lead_replied", base))
    only_uuid = key(delivery_doc("lead_replied", {"lead": {"id": 1}, "reply": {"uuid": "u-10"}}))
    only_id = key(delivery_doc("lead_replied", {"lead": {"id": 1}, "reply": {"id": 10}}))
    assert len({both, only_uuid, only_id}) == 3


def test_lead_interested_without_reply_is_keyed_by_lead() -> None:
    doc = delivery_doc("lead_interested", {"lead": {"id": 7, "email": "lead@example.com", "status": "interested"}})
    expected = key(doc)
    assert key(edited(doc, lambda d: d["data"]["lead"].update(status="active", first_name="Pat"))) == expected
    assert key(edited(doc, lambda d: d["data"]["lead"].update(id=8))) != expected
    with_reply = edited(doc, lambda d: d["data"].update(reply={"uuid": "u-1"}))
    assert key(with_reply) != expected


@pytest.mark.parametrize("event_type", ["manual_email_sent", "untracked_reply_received"])
def test_reply_events_without_an_anchor_fall_back_to_the_payload(event_type: str) -> None:
    doc = delivery_doc(event_type, {"lead": {"id": 7}, "reply": {"email_subject": "Hi"}})
    expected = key(doc)
    assert key(edited(doc, lambda d: d["data"]["reply"].update(email_subject="Hello"))) != expected
    assert decode_delivery(reserialise(to_bytes(doc), random.Random(3))).dedup_key == expected


def test_lead_interested_with_only_an_email_falls_back_to_the_payload() -> None:
    doc = delivery_doc("lead_interested", {"lead": {"email": "lead@example.com", "status": "interested"}})
    expected = key(doc)
    assert key(edited(doc, lambda d: d["data"]["lead"].update(status="active"))) != expected


@pytest.mark.parametrize("event_type", PAYLOAD_KEYED)
def test_payload_keyed_types_count_every_field(event_type: str) -> None:
    doc = delivery_doc(
        event_type,
        {"lead": {"id": 1, "email": "a@example.com"}, "sender_email": {"id": 2, "email": "b@example.com"}, "n": 1},
    )
    expected = key(doc)
    variants = [
        edited(doc, lambda d: d["data"].update(n=2)),
        edited(doc, lambda d: d["data"].update(sent_at="2025-10-14T14:05:12Z")),
        edited(doc, lambda d: d["data"]["lead"].update(email="c@example.com")),
        edited(doc, lambda d: d["data"]["sender_email"].update(status="Disconnected")),
        edited(doc, lambda d: d["data"].pop("n")),
    ]
    keys = {key(v) for v in variants}
    assert expected not in keys and len(keys) == len(variants)


def test_identical_payloads_of_a_payload_keyed_type_are_one_event() -> None:
    """The documented trade-off: without any distinguishing field two sends look like one retry."""
    doc = delivery_doc("email_sent", {"lead": {"id": 1}, "campaign": {"id": 2}, "sender_email": {"id": 3}})
    assert key(doc) == key(copy.deepcopy(doc))


def test_unknown_type_label_is_sanitised_but_hashed_exactly() -> None:
    odd = key(delivery_doc("Weird:Type / With Spaces", {"x": 1}))
    assert odd.startswith("v1:unknown:bison.example.com:42:")
    other = key(delivery_doc("weird:type / with spaces!", {"x": 1}))
    assert odd != other
    assert key(delivery_doc("WEIRD:TYPE / WITH SPACES", {"x": 1})) == odd

"""The fixture corpus: one payload per event type in the shapes real instances send (upper-case types,
`campaign_event`, full `scheduled_email`, real `reply` fields, lower-case mailbox status, flat tag events, no
`instance_url`), each decoding to its typed model; plus the earlier corpus as a legacy-shape regression set."""

from __future__ import annotations

import json

import msgspec
import pytest

from bisonsync.events import (
    EVENT_TYPES,
    Delivery,
    EmailAccountDisconnected,
    EmailBounced,
    EmailSent,
    LeadInterested,
    LeadReplied,
    ManualEmailSent,
    TagAttached,
    UnknownEvent,
    decode_delivery,
)

from ._support import fixture_bytes, fixture_doc, fixture_names, legacy_names

TYPE_FIXTURES = sorted(EVENT_TYPES)
EXTRA_FIXTURES = {
    "lead_replied_generic_host": "lead_replied",
    "lead_replied_own_host": "lead_replied",
    "unknown_type": "campaign_completed",
}
INSTANCE = "bison.example.com"


def decode_fixture(name: str) -> Delivery:
    return decode_delivery(fixture_bytes(name), instance=INSTANCE)


def test_catalogue_has_the_17_types_and_the_corpus_covers_each() -> None:
    assert len(EVENT_TYPES) == 17
    assert set(fixture_names()) == set(TYPE_FIXTURES) | set(EXTRA_FIXTURES)


@pytest.mark.parametrize("name", TYPE_FIXTURES)
def test_each_type_fixture_decodes_to_its_model(name: str) -> None:
    doc = fixture_doc(name)
    assert doc["event"]["type"] == name.upper()  # the wire spelling
    assert "instance_url" not in doc["event"]  # as in Email Bison's own sample payloads
    delivery = decode_fixture(name)
    assert delivery.known
    assert delivery.event_type == name
    assert type(delivery.data) is EVENT_TYPES[name]
    assert delivery.instance == INSTANCE
    assert delivery.workspace_id == 42


@pytest.mark.parametrize("name", fixture_names())
def test_payload_json_is_the_whole_document(name: str) -> None:
    assert json.loads(decode_fixture(name).payload_json) == fixture_doc(name)


def test_lead_replied_fixture_fields() -> None:
    data = decode_fixture("lead_replied").data
    assert isinstance(data, LeadReplied)
    assert data.lead.id == 3135490
    assert data.lead.email == "pat.doe@example.com"
    assert data.lead.custom_variables[0].name == "phone number"
    assert data.lead.custom_variables[0].value == "555-0100"
    assert data.reply.uuid == "6f1c2e8a-1111-2222-3333-444455556666"
    assert data.reply.id == 888888
    assert data.reply.plain_text == "Yes please send me a quote"  # no body_plain in real replies
    assert (data.reply.type, data.reply.folder) == ("Tracked Reply", "Inbox")
    assert data.reply.received_at is not None and data.reply.received_at.year == 2025
    assert data.scheduled_email is not None and data.scheduled_email.id == 90817263
    assert data.campaign_event is not None and (data.campaign_event.id, data.campaign_event.type) == (
        5550002,
        "replied",
    )
    assert data.sender_email is not None and data.sender_email.id == 222


def test_custom_variables_as_a_keyed_object() -> None:
    delivery = decode_fixture("lead_interested")
    assert isinstance(fixture_doc("lead_interested")["data"]["lead"]["custom_variables"], dict)
    assert isinstance(delivery.data, LeadInterested)
    pairs = {(v.name, v.value) for v in delivery.data.lead.custom_variables}
    assert pairs == {("phone number", "555-0100"), ("city", "Springfield"), ("zip", "68000")}


def test_account_event_fixture_keeps_the_lower_case_status() -> None:
    delivery = decode_fixture("email_account_disconnected")
    assert isinstance(delivery.data, EmailAccountDisconnected)
    assert delivery.data.sender_email.email == "rep@mail.client-a.example.com"
    assert delivery.data.sender_email.status == "disconnected"
    assert delivery.data.sender_email.type == "google_workspace_oauth"


def test_bounce_carries_its_message_as_a_reply() -> None:
    data = decode_fixture("email_bounced").data
    assert isinstance(data, EmailBounced)
    assert data.reply is not None and (data.reply.type, data.reply.folder) == ("Bounced", "Bounced")


def test_manual_email_sent_recipients() -> None:
    data = decode_fixture("manual_email_sent").data
    assert isinstance(data, ManualEmailSent)
    assert data.reply is not None
    assert [(r.address, r.name) for r in data.reply.to] == [("pat.doe@example.com", "Pat Doe")]


def test_flat_tag_fixture() -> None:
    data = decode_fixture("tag_attached").data
    assert isinstance(data, TagAttached)
    assert (data.tag_id, data.tag_name, data.taggable_id, data.taggable_type) == (
        17,
        "Hot lead",
        3135490,
        "App\\Models\\Lead",
    )
    assert data.tag is None


def test_unknown_fields_survive_in_payload_json() -> None:
    delivery = decode_fixture("email_sent")
    assert isinstance(delivery.data, EmailSent)
    stored = json.loads(delivery.payload_json)
    assert stored["data"]["scheduled_email"]["raw_message_id"] == "<a1b2c3@mail.client-a.example.com>"
    assert stored["data"]["sender_email"]["total_leads_contacted"] == 640


def test_unknown_type_is_kept_raw() -> None:
    delivery = decode_fixture("unknown_type")
    assert not delivery.known
    assert delivery.event_type == "campaign_completed"
    assert isinstance(delivery.data, UnknownEvent)
    expected = fixture_doc("unknown_type")["data"]
    assert delivery.data.value == expected
    assert msgspec.json.decode(delivery.data.raw) == expected
    assert delivery.dedup_key.startswith("v2:campaign_completed:bison.example.com:42:")


@pytest.mark.parametrize("name", legacy_names())
def test_legacy_shapes_still_decode(name: str) -> None:
    """The predecessor's shapes (lower-case types, nested tag, capitalised status, array custom variables)."""
    delivery = decode_delivery(fixture_bytes(name), instance=INSTANCE)
    assert delivery.instance == INSTANCE
    assert json.loads(delivery.payload_json) == fixture_doc(name)
    expected = name.removeprefix("legacy/").removesuffix("_uppercase")
    assert delivery.known == (expected in EVENT_TYPES)
    if delivery.known:
        assert delivery.event_type == expected

"""The fixture corpus: one realistic payload per event type, each decoding to its typed model."""

from __future__ import annotations

import json

import msgspec
import pytest

from bisonsync.events import (
    EVENT_TYPES,
    Delivery,
    EmailAccountDisconnected,
    EmailSent,
    LeadInterested,
    LeadReplied,
    ManualEmailSent,
    TagAttached,
    UnknownEvent,
    decode_delivery,
)

from ._support import fixture_bytes, fixture_doc, fixture_names

TYPE_FIXTURES = sorted(EVENT_TYPES)
EXTRA_FIXTURES = {"lead_interested_uppercase": "lead_interested", "unknown_type": "campaign_completed"}


def decode_fixture(name: str) -> Delivery:
    return decode_delivery(fixture_bytes(name))


def test_catalogue_has_the_17_types_and_the_corpus_covers_each() -> None:
    assert len(EVENT_TYPES) == 17
    assert set(fixture_names()) == set(TYPE_FIXTURES) | set(EXTRA_FIXTURES)


@pytest.mark.parametrize("name", TYPE_FIXTURES)
def test_each_type_fixture_decodes_to_its_model(name: str) -> None:
    delivery = decode_fixture(name)
    assert delivery.known
    assert delivery.event_type == name
    assert type(delivery.data) is EVENT_TYPES[name]
    assert delivery.data.event_type == name
    assert delivery.instance == "bison.example.com"
    assert delivery.workspace_id in (42, 57)


@pytest.mark.parametrize("name", fixture_names())
def test_payload_json_is_the_whole_document(name: str) -> None:
    delivery = decode_fixture(name)
    assert json.loads(delivery.payload_json) == fixture_doc(name)


def test_lead_replied_fixture_fields() -> None:
    data = decode_fixture("lead_replied").data
    assert isinstance(data, LeadReplied)
    assert data.lead.id == 3135490
    assert data.lead.email == "pat.doe@example.com"
    assert data.lead.title is None
    assert data.lead.custom_variables[0].name == "phone number"
    assert data.lead.custom_variables[0].value == "555-0100"
    assert data.reply.uuid == "6f1c2e8a-1111-2222-3333-444455556666"
    assert data.reply.id == 888888
    assert data.reply.plain_text == "Yes please send me a quote"
    assert data.reply.received_at is not None and data.reply.received_at.year == 2025
    assert data.campaign is not None and data.campaign.name == "Q4 Home Insurance"
    assert data.sender_email is not None and data.sender_email.id == 222


def test_lead_interested_fixture_trims_workspace_name() -> None:
    delivery = decode_fixture("lead_interested")
    assert fixture_doc("lead_interested")["event"]["workspace_name"] == "Client A "
    assert delivery.workspace_name == "Client A"
    assert delivery.meta.workspace_name == "Client A"
    assert isinstance(delivery.data, LeadInterested)
    assert delivery.data.lead.interested is True


def test_uppercase_type_is_the_same_event() -> None:
    delivery = decode_fixture("lead_interested_uppercase")
    assert fixture_doc("lead_interested_uppercase")["event"]["type"] == "LEAD_INTERESTED"
    assert delivery.event_type == "lead_interested"
    assert delivery.meta.type == "lead_interested"
    assert isinstance(delivery.data, LeadInterested)
    assert delivery.workspace_name == "Client B"
    assert delivery.data.lead.last_name == "Álvarez"


def test_account_event_fixture() -> None:
    delivery = decode_fixture("email_account_disconnected")
    assert isinstance(delivery.data, EmailAccountDisconnected)
    assert delivery.data.sender_email.email == "rep@mail.client-a.example.com"
    assert delivery.data.sender_email.status == "Disconnected"
    assert delivery.workspace_name == "Client A"


def test_manual_email_sent_recipients() -> None:
    data = decode_fixture("manual_email_sent").data
    assert isinstance(data, ManualEmailSent)
    assert data.reply is not None
    assert [(r.address, r.name) for r in data.reply.to] == [("pat.doe@example.com", "Pat")]
    assert data.reply.received_at is None


def test_tag_fixture() -> None:
    data = decode_fixture("tag_attached").data
    assert isinstance(data, TagAttached)
    assert data.tag is not None and (data.tag.id, data.tag.name, data.tag.default) == (77, "Warming", False)


def test_unknown_fields_survive_in_payload_json() -> None:
    delivery = decode_fixture("email_sent")
    assert isinstance(delivery.data, EmailSent)
    assert not hasattr(delivery.data, "scheduled_email")
    stored = json.loads(delivery.payload_json)
    assert stored["data"]["scheduled_email"]["id"] == 90817263
    account = json.loads(decode_fixture("email_account_added").payload_json)
    assert account["data"]["sender_email"]["tags"][1]["name"] == "Zapmail"


def test_unknown_type_is_kept_raw() -> None:
    delivery = decode_fixture("unknown_type")
    assert not delivery.known
    assert delivery.event_type == "campaign_completed"
    assert isinstance(delivery.data, UnknownEvent)
    assert delivery.data.event_type == "campaign_completed"
    expected = fixture_doc("unknown_type")["data"]
    assert delivery.data.value == expected
    assert msgspec.json.decode(delivery.data.raw) == expected
    assert delivery.dedup_key.startswith("v1:campaign_completed:bison.example.com:42:")

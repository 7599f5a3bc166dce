"""Decoding rules beyond the corpus: normalisation, leniency, optional parts, the instance host."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bisonsync.events import (
    EmailAccountAdded,
    EmailSent,
    LeadFirstContacted,
    LeadInterested,
    Reply,
    UnknownEvent,
    WarmupDisabledCausingBounces,
    decode_delivery,
    instance_host,
)

from ._support import delivery_doc, to_bytes

LEAD = {"lead": {"id": 7, "email": "lead@example.com"}}


@pytest.mark.parametrize(
    "raw_type", ["lead_interested", "LEAD_INTERESTED", "Lead_Interested", "  lead_interested\n", "\tLEAD_interested "]
)
def test_type_is_case_insensitive_and_trimmed(raw_type: str) -> None:
    delivery = decode_delivery(to_bytes(delivery_doc(raw_type, LEAD)))
    assert delivery.event_type == "lead_interested"
    assert delivery.known
    assert isinstance(delivery.data, LeadInterested)


def test_unknown_type_is_lower_cased_and_kept_raw_whatever_its_data() -> None:
    for data in ({"x": [1, 2]}, [1, "two"], "text", 3, None):
        delivery = decode_delivery(to_bytes(delivery_doc("  Campaign_Paused ", data)))
        assert delivery.event_type == "campaign_paused"
        assert not delivery.known
        assert isinstance(delivery.data, UnknownEvent)
        assert delivery.data.value == data
        assert bytes(delivery.data.raw) == (json.dumps(data).encode() if data is not None else b"null")


def test_labels_are_trimmed_and_blank_labels_become_none() -> None:
    doc = delivery_doc("email_sent", {}, workspace_name="  Client A \t", name=" Email Sent ")
    meta = decode_delivery(to_bytes(doc)).meta
    assert (meta.workspace_name, meta.name, meta.instance_url) == (
        "Client A",
        "Email Sent",
        "https://bison.example.com",
    )
    blank = decode_delivery(to_bytes(delivery_doc("email_sent", {}, workspace_name="   ", name="")))
    assert blank.workspace_name is None
    assert blank.meta.name is None
    absent = decode_delivery(to_bytes(delivery_doc("email_sent", {}, workspace_name=None, name=None)))
    assert absent.workspace_name is None


def test_payload_json_keeps_original_values_and_unknown_fields() -> None:
    doc = delivery_doc(
        "LEAD_INTERESTED",
        {"lead": {"id": "7", "email": "lead@example.com", "lead_score": 0.75}, "extra": {"nested": [True, None]}},
        workspace_name="Client A ",
    )
    doc["event"]["delivery_attempt"] = 2
    doc["top_level_extra"] = "kept"
    delivery = decode_delivery(to_bytes(doc))
    assert json.loads(delivery.payload_json) == doc
    # canonical: sorted keys, no whitespace, UTF-8 (the original values, not the normalised ones)
    assert delivery.payload_json == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://bison.example.com", "bison.example.com"),
        ("https://Bison.Example.COM:8443/api/", "bison.example.com"),
        ("http://bison.example.com.", "bison.example.com"),
        ("  https://user:secret@bison.example.com/x?y=1  ", "bison.example.com"),
        ("bison.example.com", "bison.example.com"),
        ("bison.example.com:443/path", "bison.example.com"),
        ("https://bücher.example", "xn--bcher-kva.example"),
        ("http://[::1]:8080/", "[::1]"),
        ("https://10.0.0.7", "10.0.0.7"),
    ],
)
def test_instance_is_the_normalised_host(url: str, host: str) -> None:
    assert instance_host(url) == host
    assert decode_delivery(to_bytes(delivery_doc("email_sent", {})), instance=url).instance == host


@pytest.mark.parametrize("url", ["", "   ", "https://", "http://a b/", "https://exa$mple.com", "http://[::1"])
def test_instance_host_rejects_what_is_not_a_host(url: str) -> None:
    with pytest.raises(ValueError, match="not a URL or host name"):
        instance_host(url)


def test_the_instance_is_the_callers_whatever_instance_url_says() -> None:
    """Real deliveries omit instance_url, carry the vendor's generic host, or a white-label host: the instance is
    the configured one; instance_url is kept (trimmed) as information only."""
    for instance_url in (None, "", "  ", "https://app.emailbison.com", "https://mail.white-label.example", "junk"):
        body = to_bytes(delivery_doc("email_sent", {}, instance_url=instance_url))
        assert decode_delivery(body).instance == "default"
        assert decode_delivery(body, instance="https://Bison.Example.com/").instance == "bison.example.com"
        expected_url = (instance_url or "").strip() or None
        assert decode_delivery(body).meta.instance_url == expected_url


def test_numeric_strings_are_accepted_for_ids() -> None:
    data: dict[str, Any] = {
        "lead": {"id": "7", "email": "lead@example.com"},
        "reply": {"id": "888", "uuid": "u-1"},
        "campaign": {"id": "111"},
        "sender_email": {"id": "222"},
    }
    delivery = decode_delivery(to_bytes(delivery_doc("lead_interested", data, workspace_id="42")))
    assert delivery.workspace_id == 42
    assert isinstance(delivery.data, LeadInterested)
    assert delivery.data.lead.id == 7
    assert delivery.data.reply is not None and delivery.data.reply.id == 888
    assert delivery.data.campaign is not None and delivery.data.campaign.id == 111
    assert delivery.data.sender_email is not None and delivery.data.sender_email.id == 222


def test_sloppy_but_harmless_values_are_tolerated() -> None:
    data = {
        "lead": {
            "id": 7,
            "email": "lead@example.com",
            "interested": 1,
            "custom_variables": [{"name": "zip", "value": 68000}, {"name": "notes", "value": None}, {"name": "x"}],
        },
        "reply": {"uuid": "u-1", "interested": "0", "automated_reply": "false", "to": None},
    }
    delivery = decode_delivery(to_bytes(delivery_doc("lead_interested", data)))
    assert isinstance(delivery.data, LeadInterested)
    lead = delivery.data.lead
    assert lead.interested is True
    assert [v.value for v in lead.custom_variables] == [68000, None, None]
    assert delivery.data.reply is not None
    assert delivery.data.reply.interested is False
    assert delivery.data.reply.automated_reply is False
    assert delivery.data.reply.to == ()


def test_null_arrays_read_as_empty() -> None:
    data = {"lead": {"id": 7, "custom_variables": None}, "reply": {"uuid": "u-1", "to": None}}
    delivery = decode_delivery(to_bytes(delivery_doc("lead_interested", data)))
    assert isinstance(delivery.data, LeadInterested)
    assert delivery.data.lead.custom_variables == ()
    assert delivery.data.reply is not None and delivery.data.reply.to == ()
    assert isinstance(delivery.data.lead.custom_variables, tuple)


@pytest.mark.parametrize("data", [None, {}])
def test_types_that_need_no_data_accept_none(data: Any) -> None:
    for event_type, cls in (
        ("email_sent", EmailSent),
        ("lead_first_contacted", LeadFirstContacted),
        ("warmup_disabled_causing_bounces", WarmupDisabledCausingBounces),
    ):
        doc = delivery_doc(event_type, data)
        delivery = decode_delivery(to_bytes(doc))
        assert type(delivery.data) is cls
        assert delivery.data == cls()
    explicit_null = decode_delivery(b'{"event":{"type":"email_sent","workspace_id":1},"data":null}')
    assert isinstance(explicit_null.data, EmailSent)


def test_required_parts_with_only_one_identity_field_are_enough() -> None:
    by_email = decode_delivery(to_bytes(delivery_doc("lead_interested", {"lead": {"email": "lead@example.com"}})))
    assert isinstance(by_email.data, LeadInterested) and by_email.data.lead.id is None
    by_id = decode_delivery(to_bytes(delivery_doc("email_account_added", {"sender_email": {"id": 5}})))
    assert isinstance(by_id.data, EmailAccountAdded) and by_id.data.sender_email.email is None
    reply_by_id = decode_delivery(to_bytes(delivery_doc("lead_replied", {"lead": {"id": 1}, "reply": {"id": 9}})))
    assert reply_by_id.known


def test_reply_helpers() -> None:
    assert Reply(text_body="", body_plain="plain", text="t").plain_text == "plain"
    assert Reply(text="t").plain_text == "t"
    assert Reply().plain_text is None
    assert Reply(date_received="2025-10-14T01:12:13Z").received_at is not None
    assert Reply(date_received="2025-10-14 01:12:13").received_at is not None
    assert Reply(date_received="yesterday").received_at is None


def test_models_are_frozen() -> None:
    delivery = decode_delivery(to_bytes(delivery_doc("lead_interested", LEAD)))
    assert isinstance(delivery.data, LeadInterested)
    with pytest.raises(AttributeError):
        delivery.data.lead.email = "other@example.com"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        delivery.dedup_key = "x"  # type: ignore[misc]


def test_repr_does_not_dump_the_payload() -> None:
    delivery = decode_delivery(to_bytes(delivery_doc("lead_interested", LEAD)))
    text = repr(delivery)
    assert "lead_interested" in text and delivery.dedup_key in text
    assert "lead@example.com" not in text

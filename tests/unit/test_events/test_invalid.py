"""Every way a delivery is rejected: one exception type, a message that says what is wrong and where."""

from __future__ import annotations

import json

import pytest

from bisonsync.events import InvalidDelivery, LeadReplied, decode_delivery

E = '"event":{"type":"lead_interested","workspace_id":42}'

CASES: list[tuple[str, bytes, str]] = [
    # malformed JSON
    ("empty body", b"", "invalid JSON: empty body"),
    ("whitespace body", b" \n ", "invalid JSON: empty body"),
    ("truncated", b'{"event":{"type":"x"', "invalid JSON at byte 20: unexpected end of input"),
    ("bad character", b'{"event":{"type":x}}', "invalid JSON at byte 17: invalid character"),
    ("trailing garbage", b'{"event":{"type":"x","workspace_id":1}} x', "invalid JSON at byte 41: trailing characters"),
    (
        "broken inside data",
        b'{"event":{"type":"x","workspace_id":1},"data":{"a":[1,}}',
        "invalid JSON at byte 54: invalid character",
    ),
    (
        "not UTF-8",
        b'{"event":{"type":"x","workspace_id":1},"data":"\xff"}',
        "invalid JSON: a string is not valid UTF-8",
    ),
    # not an object
    ("array body", b"[]", "body: expected object, got array"),
    ("string body", b'"lead_interested"', "body: expected object, got str"),
    ("null body", b"null", "body: expected object, got null"),
    # envelope
    ("missing event", b'{"data":{}}', "`event`: required field missing"),
    ("event not an object", b'{"event":"lead_interested"}', "`event`: expected object, got str"),
    ("missing type", b'{"event":{"workspace_id":42}}', "`event.type`: required field missing"),
    ("type not a string", b'{"event":{"type":5,"workspace_id":42}}', "`event.type`: expected str, got int"),
    ("blank type", b'{"event":{"type":"  ","workspace_id":42}}', "`event.type`: must not be empty"),
    ("missing workspace_id", b'{"event":{"type":"email_sent"}}', "`event.workspace_id`: required field missing"),
    (
        "workspace_id not numeric",
        b'{"event":{"type":"email_sent","workspace_id":"Client A"}}',
        "`event.workspace_id`: expected int, got str",
    ),
    (
        "workspace_id null",
        b'{"event":{"type":"email_sent","workspace_id":null}}',
        "`event.workspace_id`: expected int, got null",
    ),
    (
        "workspace_id zero",
        b'{"event":{"type":"email_sent","workspace_id":0}}',
        "`event.workspace_id`: expected int >= 1",
    ),
    (
        "workspace_id fractional",
        b'{"event":{"type":"email_sent","workspace_id":4.2}}',
        "`event.workspace_id`: expected int, got float",
    ),
    (
        "workspace_name not a string",
        b'{"event":{"type":"email_sent","workspace_id":1,"workspace_name":7}}',
        "`event.workspace_name`: expected str | null, got int",
    ),
    # data of known types
    ("data not an object", b"{" + E.encode() + b',"data":[1]}', "`data`: expected object, got array"),
    ("lead missing", b"{" + E.encode() + b',"data":{}}', "`data.lead`: required for lead_interested"),
    ("data missing", b"{" + E.encode() + b"}", "`data.lead`: required for lead_interested"),
    ("data null", b"{" + E.encode() + b',"data":null}', "`data.lead`: required for lead_interested"),
    ("lead null", b"{" + E.encode() + b',"data":{"lead":null}}', "`data.lead`: required for lead_interested"),
    (
        "lead without id or email",
        b"{" + E.encode() + b',"data":{"lead":{"first_name":"Pat","email":" "}}}',
        "`data.lead`: needs `id` or `email` for lead_interested",
    ),
    (
        "lead not an object",
        b"{" + E.encode() + b',"data":{"lead":"lead@example.com"}}',
        "`data.lead`: expected object, got str",
    ),
    (
        "lead id not numeric",
        b"{" + E.encode() + b',"data":{"lead":{"id":"abc"}}}',
        "`data.lead.id`: expected int | null, got str",
    ),
    ("lead id zero", b"{" + E.encode() + b',"data":{"lead":{"id":0}}}', "`data.lead.id`: expected int >= 1"),
    (
        "reply missing for lead_replied",
        b'{"event":{"type":"lead_replied","workspace_id":1},"data":{"lead":{"id":1}}}',
        "`data.reply`: required for lead_replied",
    ),
    (
        "reply without uuid or id",
        b'{"event":{"type":"lead_replied","workspace_id":1},"data":{"lead":{"id":1},"reply":{"uuid":""}}}',
        "`data.reply`: needs `uuid` or `id` for lead_replied",
    ),
    (
        "sender_email missing",
        b'{"event":{"type":"email_account_disconnected","workspace_id":1},"data":{"lead":{"id":1}}}',
        "`data.sender_email`: required for email_account_disconnected",
    ),
    (
        "sender_email without id or email",
        b'{"event":{"type":"Email_Account_Reconnected","workspace_id":1},"data":{"sender_email":{"name":"Rep"}}}',
        "`data.sender_email`: needs `id` or `email` for email_account_reconnected",
    ),
]


@pytest.mark.parametrize(("body", "message"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_invalid_delivery_message(body: bytes, message: str) -> None:
    with pytest.raises(InvalidDelivery) as caught:
        decode_delivery(body)
    assert str(caught.value).startswith(message), str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_messages_never_echo_payload_values() -> None:
    body = (
        b'{"event":{"type":"lead_interested","workspace_id":"secret-ish"},"data":{"lead":{"email":"pat@example.com"}}}'
    )
    with pytest.raises(InvalidDelivery) as caught:
        decode_delivery(body)
    assert "secret-ish" not in str(caught.value)
    body = b'{"event":{"type":"lead_interested","workspace_id":1},"data":{"lead":{"id":"pat@example.com"}}}'
    with pytest.raises(InvalidDelivery) as caught:
        decode_delivery(body)
    assert "pat@example.com" not in str(caught.value)


def test_unknown_types_are_never_invalid_whatever_their_data() -> None:
    body = b'{"event":{"type":"brand_new_event","workspace_id":1},"data":{"lead":null,"sender_email":"x"}}'
    assert not decode_delivery(body).known


def test_a_bad_instance_is_a_caller_error_not_an_invalid_delivery() -> None:
    body = b'{"event":{"type":"email_sent","workspace_id":1}}'
    with pytest.raises(ValueError, match="not a URL or host name") as caught:
        decode_delivery(body, instance="not a host")
    assert not isinstance(caught.value, InvalidDelivery)


def test_an_instance_url_without_a_host_is_information_not_an_error() -> None:
    body = b'{"event":{"type":"email_sent","workspace_id":1,"instance_url":"https://"}}'
    assert decode_delivery(body, instance="bison.example.com").instance == "bison.example.com"


@pytest.mark.parametrize(
    "data",
    [
        b'{"campaign":{"id":true},"lead":{"id":1}}',
        b'{"scheduled_email":{"id":"not-a-number","sent_at":5},"campaign_event":[],"lead":{"id":1}}',
        b'{"sender_email":"rep@example.com","tag":7,"lead":{"id":1}}',
    ],
)
def test_a_part_a_type_does_not_require_in_an_unexpected_shape_is_left_out_not_refused(data: bytes) -> None:
    """Real payloads grow and vary: an optional part we cannot type is dropped from the typed data (the payload
    keeps it), never a 4xx that would lose the event after Email Bison's retries."""
    body = b'{"event":{"type":"EMAIL_SENT","workspace_id":1},"data":' + data + b"}"
    delivery = decode_delivery(body)
    assert delivery.known and delivery.event_type == "email_sent"
    assert json.loads(delivery.payload_json)["data"] == json.loads(data)
    lead_replied = b'{"event":{"type":"LEAD_REPLIED","workspace_id":1},"data":{"lead":{"id":1},"reply":{"id":2},'
    assert decode_delivery(lead_replied + b'"campaign":{"id":"x"}}}').known
    # a required part in a bad shape is still an error
    with pytest.raises(InvalidDelivery, match=r"data\.lead\.id"):
        decode_delivery(
            b'{"event":{"type":"LEAD_REPLIED","workspace_id":1},"data":{"lead":{"id":"x"},"reply":{"id":2}}}'
        )


def test_a_non_identity_field_of_a_required_part_in_an_unexpected_shape_is_left_out() -> None:
    lead = b'"lead":{"id":1,"custom_variables":[{"name":"zip"},"x"],"first_name":["Pat"]}'
    reply = b'"reply":{"id":2,"uuid":12345,"to":"pat@example.com","interested":"maybe"}'
    body = b'{"event":{"type":"LEAD_REPLIED","workspace_id":1},"data":{' + lead + b"," + reply + b"}}"
    delivery = decode_delivery(body)
    data = delivery.data
    assert isinstance(data, LeadReplied)
    assert (data.lead.id, data.lead.custom_variables, data.lead.first_name) == (1, (), None)
    assert (data.reply.id, data.reply.uuid, data.reply.to, data.reply.interested) == (2, "12345", (), None)
    assert json.loads(delivery.payload_json)["data"]["reply"]["to"] == "pat@example.com"  # kept as sent

"""Phoenix channel frames, in both serializers the real Realtime server offers.

- vsn 1.0.0 (realtime-py): JSON objects `{"event","topic","payload","ref","join_ref"}`; the server's frames carry
  `topic, event, payload, ref` (`Phoenix.Socket.V1.JSONSerializer` emits no `join_ref`).
- vsn 2.0.0 (realtime-js default): JSON arrays `[join_ref, ref, topic, event, payload]`. Binary frames are only
  used for user broadcasts, which this emulator does not serve.

Payloads are pre-encoded JSON strings so a change's `data` is encoded once and spliced into every channel's frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

VSN_1 = "1.0.0"
VSN_2 = "2.0.0"
SUPPORTED_VSN = (VSN_1, VSN_2)
PHOENIX_TOPIC = "phoenix"

_encoder = msgspec.json.Encoder()


class FrameError(ValueError):
    """A client frame that is not a Phoenix message."""


@dataclass(frozen=True, slots=True)
class ClientFrame:
    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: dict[str, object]


def _ref(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    raise FrameError("ref must be a string")


def decode_frame(text: str | bytes) -> ClientFrame:
    """Parse a client frame in either serializer (the shape tells which)."""
    try:
        raw: object = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise FrameError(f"invalid JSON: {exc}") from exc
    if isinstance(raw, list):
        if len(raw) != 5:
            raise FrameError("a vsn 2.0.0 frame has 5 elements")
        join_ref, ref, topic, event, payload = raw
    elif isinstance(raw, dict):
        join_ref, ref = raw.get("join_ref"), raw.get("ref")
        topic, event, payload = raw.get("topic"), raw.get("event"), raw.get("payload")
    else:
        raise FrameError("a frame is a JSON object or array")
    if not isinstance(topic, str) or not isinstance(event, str):
        raise FrameError("topic and event must be strings")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise FrameError("payload must be an object")
    return ClientFrame(_ref(join_ref), _ref(ref), topic, event, payload)


def encode_json(value: object) -> str:
    return _encoder.encode(value).decode()


def encode_frame(vsn: str, *, topic: str, event: str, payload_json: str, ref: str | None, join_ref: str | None) -> str:
    """One server frame with an already encoded payload."""
    if vsn == VSN_2:
        return f"[{encode_json(join_ref)},{encode_json(ref)},{encode_json(topic)},{encode_json(event)},{payload_json}]"
    return (
        f'{{"event":{encode_json(event)},"topic":{encode_json(topic)},"payload":{payload_json},'
        f'"ref":{encode_json(ref)}}}'
    )


def reply_payload(status: str, response: object) -> str:
    return encode_json({"status": status, "response": response})

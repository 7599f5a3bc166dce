"""Decoding one webhook delivery: envelope first (with `data` left raw), then `data` by the normalised type.

Cost per delivery: one typed decode of the body (the envelope, with `data` skipped as `msgspec.Raw`, then the
`data` slice with the type's prebuilt decoder), one untyped decode of the body into canonical builtins for the
lossless ledger copy, and one canonical encode of it (plus one of `data` for types keyed by payload).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import msgspec

from bisonsync.events.canonical import decode_canonical, encode_canonical, storable_text
from bisonsync.events.dedup import dedup_key, legacy_dedup_key
from bisonsync.events.models import (
    EVENT_TYPES,
    EventData,
    EventMeta,
    KnownEventData,
    Lead,
    Reply,
    SenderEmail,
    UnknownEvent,
)

#: the identity fields of the parts a type can require: a bad value there is an error, never dropped
_IDENTITY_FIELDS: dict[str, tuple[str, ...]] = {
    "lead": Lead.identity_fields,
    "reply": Reply.identity_fields,
    "sender_email": SenderEmail.identity_fields,
}


class InvalidDelivery(ValueError):
    """A webhook body we cannot accept; the message says what is wrong and where (e.g. "`data.lead`: required for
    lead_interested"). It never contains payload values, so it is safe to log and to return to the sender."""


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One decoded webhook delivery."""

    #: The envelope's `event` with the type lower-cased and `name`, `workspace_name`, `instance_url` trimmed
    #: (a blank value becomes None).
    meta: EventMeta
    #: The typed `data` for one of the 17 known types, else an `UnknownEvent`.
    data: EventData
    #: The Email Bison instance the delivery belongs to: the caller's (from configuration, the webhook URL or the
    #: token), never the payload's `event.instance_url` (kept on `meta` as information only).
    instance: str
    #: See `bisonsync.events.dedup`; unique per event occurrence, equal for its retries and re-renderings.
    dedup_key: str
    #: The key scheme v1 gave this delivery (`bisonsync.events.dedup.legacy_dedup_key`), to recognise retries of
    #: deliveries recorded before v2.
    legacy_dedup_key: str
    #: The whole body re-encoded canonically (as `canonical_json` does): every field kept, unknown ones too, with the
    #: values as sent (type, names and ids not normalised; text in NFC).
    payload_json: bytes

    @property
    def event_type(self) -> str:
        """The lower-cased, trimmed `event.type`."""
        return self.meta.type

    @property
    def known(self) -> bool:
        """Whether the type is one of the 17 in the catalogue."""
        return not isinstance(self.data, UnknownEvent)

    @property
    def workspace_id(self) -> int:
        return self.meta.workspace_id

    @property
    def workspace_name(self) -> str | None:
        return self.meta.workspace_name

    def __repr__(self) -> str:
        # Never the payload: it holds names, addresses and message text.
        return (
            f"Delivery(event_type={self.event_type!r}, instance={self.instance!r}, "
            f"workspace_id={self.workspace_id}, dedup_key={self.dedup_key!r})"
        )


class _Envelope(msgspec.Struct, forbid_unknown_fields=False):
    event: EventMeta
    data: msgspec.Raw = msgspec.Raw(b"null")


# Lax mode (strict=False): numeric strings decode into int fields ("42" -> 42), "true"/"1"/1 into bool fields.
_ENVELOPE_DECODER = msgspec.json.Decoder(_Envelope, strict=False)
_DATA_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    event_type: msgspec.json.Decoder(cls, strict=False) for event_type, cls in EVENT_TYPES.items()
}


def decode_delivery(body: bytes, *, instance: str = "default", legacy_instance: str | None = None) -> Delivery:
    """Decode, validate and key one webhook body.

    `instance` is the Email Bison instance the delivery belongs to (a host or URL, normalised by `instance_host`):
    the caller knows it from configuration, the webhook URL or the token. `event.instance_url` never decides it:
    real deliveries omit it or carry the vendor's generic host. Unknown event types are not an error. Raises
    `InvalidDelivery` for malformed JSON, a body that is not an object, a missing or invalid `event`, fields of the
    wrong type, and a known type whose required sub-objects are missing; raises a plain `ValueError` when
    `instance` is not a host. `legacy_instance` is what scheme v1 assumed for a body without `instance_url` (the
    earlier BISONSYNC_DEFAULT_INSTANCE; default: `instance`), for `Delivery.legacy_dedup_key`.
    """
    host = instance_host(instance)
    legacy_default = instance_host(legacy_instance) if legacy_instance is not None else host
    try:
        envelope = _ENVELOPE_DECODER.decode(body)
        document = decode_canonical(body)
    except msgspec.ValidationError as exc:
        raise InvalidDelivery(_describe_validation_error(exc, "")) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidDelivery(_describe_json_error(exc, body)) from None
    except RecursionError:
        raise InvalidDelivery(f"body: nested deeper than {MAX_NESTING} levels") from None
    # counting brackets is cheap; only a body with many of them is walked
    if body.count(b"{") + body.count(b"[") > MAX_NESTING and _nested_deeper_than(document, MAX_NESTING):
        raise InvalidDelivery(f"body: nested deeper than {MAX_NESTING} levels")

    meta = _normalise_meta(envelope.event)
    data_value = document.get("data")
    data = _decode_data(meta.type, envelope.data, data_value)
    return Delivery(
        meta=meta,
        data=data,
        instance=host,
        dedup_key=dedup_key(event_type=meta.type, instance=host, workspace_id=meta.workspace_id, data_value=data_value),
        legacy_dedup_key=legacy_dedup_key(
            event_type=meta.type,
            instance=_legacy_instance(meta.instance_url, legacy_default),
            workspace_id=meta.workspace_id,
            data=data,
            data_value=data_value,
        ),
        payload_json=encode_canonical(document),
    )


def _legacy_instance(instance_url: str | None, default: str) -> str:
    """The instance scheme v1 keyed by: the host of `event.instance_url` when it had a valid one, else the default."""
    if instance_url is None:
        return default
    try:
        return instance_host(instance_url)
    except ValueError:
        return default


#: Deepest JSON nesting accepted (Email Bison's payloads nest 4 levels). Without a bound, a 2 KB body of nested
#: arrays exhausts Python's recursion limit in the decoder or in a store's JSON encoder: a 500 instead of a 400.
MAX_NESTING = 64


def _nested_deeper_than(document: Any, limit: int) -> bool:
    """Whether `document` (decoded JSON) nests objects/arrays more than `limit` levels deep (iterative walk)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


_HOSTNAME = re.compile(r"[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?)*")


@lru_cache(maxsize=1024)
def instance_host(url: str) -> str:
    """The instance key of an Email Bison URL or host: its lower-case host, without scheme, credentials, port, path
    or trailing dot; international names in IDNA form, IPv6 literals in brackets.
    `https://Bison.Example.com:443/api` -> `bison.example.com`. Raises ValueError when there is no valid host."""
    text = url.strip()
    try:
        host = urlsplit(text if "://" in text else f"//{text}").hostname
    except ValueError:
        host = None
    if host and ":" in host:
        try:
            return f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            host = None
    host = (host or "").rstrip(".")
    if host and not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            host = ""
    if not _HOSTNAME.fullmatch(host):
        raise ValueError(f"not a URL or host name: {url!r}")
    return host


#: Longest workspace name kept (longer ones are cut): names are labels, and an indexed label must stay far below
#: PostgreSQL's btree row limit (~2.7 KB) whatever a body sends.
MAX_NAME_CHARS = 200


def _normalise_meta(meta: EventMeta) -> EventMeta:
    event_type = storable_text(meta.type).strip().lower()
    if not event_type:
        raise InvalidDelivery("`event.type`: must not be empty")
    name = _trimmed(meta.workspace_name)
    if name is not None:
        # NFC: the same name typed on another system (NFD) must not look like a rename
        name = unicodedata.normalize("NFC", name)[:MAX_NAME_CHARS].strip()
    return msgspec.structs.replace(
        meta,
        type=event_type,
        name=_trimmed(meta.name),
        instance_url=_trimmed(meta.instance_url),
        workspace_name=name,
    )


def _trimmed(text: str | None) -> str | None:
    return (storable_text(text).strip() or None) if text is not None else None


def _decode_data(event_type: str, raw: msgspec.Raw, value: Any) -> EventData:
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        return UnknownEvent(event_type=event_type, raw=raw, value=value)
    try:
        # absent or null `data` reads as {}: fine for types that need nothing, a "required" error for the others
        data: KnownEventData = _DATA_DECODERS[event_type].decode(b"{}" if value is None else raw)
    except msgspec.ValidationError as exc:
        data = _decode_without_bad_parts(cls, value, exc)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # pragma: no cover - the envelope decode saw it first
        raise InvalidDelivery(f"invalid JSON in `data`: {exc}") from None
    for name in cls.required:
        _require_identity(getattr(data, name), name, event_type)
    return data


def _decode_without_bad_parts(cls: type[KnownEventData], value: Any, exc: msgspec.ValidationError) -> Any:
    """A value we cannot type must not cost the delivery when the handler can do without it: a part the type does
    not require (`campaign.id: true`, a `scheduled_email` of another shape) is left out of the typed `data`, and so
    is a field of a required part that is not one of its identity fields (`reply.to` as a string). The payload keeps
    everything; the database reads what it needs from there. A missing required part, or a required part whose
    identity field (`lead.id`, `reply.uuid`, ...) has a bad value, is an error."""
    if not isinstance(value, dict):
        raise InvalidDelivery(_describe_validation_error(exc, "data", cls)) from None
    remaining = dict(value)
    for _ in range(64):
        located = _LOCATED.fullmatch(str(exc))
        segments = re.findall(r"[^.\[\]]+", (located["path"] if located else None) or "")
        part = segments[0] if segments else ""
        if part not in remaining:
            break
        if part not in cls.required:
            del remaining[part]
        else:
            sub, field = remaining[part], segments[1] if len(segments) > 1 else ""
            if not isinstance(sub, dict) or field not in sub or field in _IDENTITY_FIELDS.get(part, ()):
                break
            remaining[part] = {k: v for k, v in sub.items() if k != field}
        try:
            return msgspec.convert(remaining, cls, strict=False)
        except msgspec.ValidationError as again:
            exc = again
    raise InvalidDelivery(_describe_validation_error(exc, "data", cls)) from None


def _require_identity(sub: Any, name: str, event_type: str) -> None:
    fields: tuple[str, ...] = sub.identity_fields
    for field in fields:
        value = getattr(sub, field)
        if value is not None and (not isinstance(value, str) or value.strip()):
            return
    wanted = " or ".join(f"`{field}`" for field in fields)
    raise InvalidDelivery(f"`data.{name}`: needs {wanted} for {event_type}")


_LOCATED = re.compile(r"(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?", re.DOTALL)
_MISSING_FIELD = re.compile(r"Object missing required field `(?P<field>[^`]+)`")
_JSON_MALFORMED = re.compile(r"JSON is malformed: (?P<reason>.*) \(byte (?P<offset>\d+)\)")


def _describe_validation_error(
    exc: msgspec.ValidationError, prefix: str, cls: type[KnownEventData] | None = None
) -> str:
    """msgspec's "Expected `int`, got `str` - at `$.event.workspace_id`" as "`event.workspace_id`: expected int,
    got str"; `prefix` names where the decoded bytes sit in the body ("data" for the second stage)."""
    located = _LOCATED.fullmatch(str(exc))
    assert located is not None  # the pattern matches any text
    message, path = located["message"], located["path"] or ""
    location = prefix + path
    missing = _MISSING_FIELD.fullmatch(message)
    if missing:
        location = f"{location}.{missing['field']}"
        detail = "required field missing"
    else:
        detail = message.replace("`", "")
        detail = detail[:1].lower() + detail[1:]
    location = location.lstrip(".")
    absent = missing is not None or detail.endswith("got null")
    if cls is not None and absent and location.removeprefix("data.") in cls.required:
        return f"`{location}`: required for {cls.event_type}"
    if not location:
        return f"body: {detail}"
    return f"`{location}`: {detail}"


def _describe_json_error(exc: Exception, body: bytes) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "invalid JSON: a string is not valid UTF-8"
    if not body.strip():
        return "invalid JSON: empty body"
    text = str(exc)
    malformed = _JSON_MALFORMED.fullmatch(text)
    if malformed:
        return f"invalid JSON at byte {malformed['offset']}: {malformed['reason']}"
    if text == "Input data was truncated":
        return f"invalid JSON at byte {len(body)}: unexpected end of input"
    return f"invalid JSON: {text}"

"""Canonical JSON: one byte string per JSON value, whatever key order, whitespace or escaping it arrived with.

Canonical form: object keys sorted, no whitespace, UTF-8, every string (keys too) in Unicode NFC, and floats with an
integral value below 2**53 written as integers (as RFC 8785 does), so `1.0` and `1` read alike. U+0000 becomes U+FFFD:
PostgreSQL's text and jsonb cannot hold it, so a payload carrying one could otherwise never be stored.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import msgspec

_EXACT_INT_LIMIT = 2**53


def _integral_as_int(value: float) -> int | float:
    return int(value) if value.is_integer() and abs(value) < _EXACT_INT_LIMIT else value


def _number(literal: str) -> int | float:
    return _integral_as_int(float(literal))


_ENCODER = msgspec.json.Encoder(order="sorted")
_DECODER = msgspec.json.Decoder(float_hook=_number)


def canonical_json(obj: object) -> bytes:
    """Encode `obj` canonically (see the module docstring). Structs and other values msgspec can encode are
    converted to builtins first. Two JSON documents that decode to equal values, up to NFC and 1.0 == 1, give the
    same bytes, so a hash of the result identifies a payload however it was serialised."""
    return _ENCODER.encode(normalize_json_value(obj))


def normalize_json_value(value: Any) -> Any:
    """`value` as JSON builtins with NFC strings and integral floats as ints (the input is not modified)."""
    if isinstance(value, str):
        value = storable_text(value)
        # ASCII text is always NFC; is_normalized is a fast scan that avoids a copy in the common case
        if value.isascii() or unicodedata.is_normalized("NFC", value):
            return value
        return unicodedata.normalize("NFC", value)
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float):
        return _integral_as_int(value)
    if isinstance(value, dict):
        # keys that differ only in normalisation merge (the last wins), as they would in any NFC-aware reader
        return {normalize_json_value(k): normalize_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalize_json_value(v) for v in value]
    return normalize_json_value(msgspec.to_builtins(value))


def storable_text(text: str) -> str:
    """`text` with U+0000 (JSON `\\u0000`) replaced by U+FFFD, the one character PostgreSQL text cannot store."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def decode_canonical(body: bytes) -> Any:
    """Decode JSON `body` straight into the normalised builtins `canonical_json` would produce (raises what
    `msgspec.json.decode` raises). Integral floats are handled while parsing; strings are walked only when the body
    holds non-ASCII text or \\u escapes, since ASCII text is always NFC."""
    document = _DECODER.decode(body)
    if body.isascii() and b"\\u" not in body:
        return document
    return normalize_json_value(document)


def encode_canonical(normalized: Any) -> bytes:
    """Encode a value that is already normalised (from `decode_canonical` or `normalize_json_value`)."""
    return _ENCODER.encode(normalized)

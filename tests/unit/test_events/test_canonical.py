"""canonical_json: equal JSON values give equal bytes."""

from __future__ import annotations

import json
import random
import unicodedata

import msgspec

from bisonsync.events import Campaign, canonical_json

from ._support import fixture_bytes, fixture_names, reserialise


def test_sorted_keys_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": {"d": [1, {"z": None, "y": True}], "c": "é"}}) == (
        '{"a":{"c":"é","d":[1,{"y":true,"z":null}]},"b":1}'.encode()
    )


def test_strings_and_keys_are_nfc() -> None:
    composed = "José Álvarez"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert canonical_json({decomposed: decomposed}) == canonical_json({composed: composed})
    assert canonical_json([decomposed]) == json.dumps([composed], ensure_ascii=False, separators=(",", ":")).encode()


def test_integral_floats_are_integers() -> None:
    assert canonical_json({"a": 1.0, "b": [2.0, 2.5], "c": -0.0, "d": 1e300}) == b'{"a":1,"b":[2,2.5],"c":0,"d":1e300}'
    assert canonical_json(True) == b"true"


def test_tuples_and_structs_become_json() -> None:
    assert canonical_json((1, "x")) == b'[1,"x"]'
    assert canonical_json(Campaign(id=1, name="Q4")) == b'{"id":1,"name":"Q4"}'
    assert canonical_json({"campaign": Campaign(id=2, name="Ä")}) == canonical_json(
        {"campaign": {"name": "Ä", "id": 2}}
    )


def test_input_is_not_modified() -> None:
    value = {"b": [1.0, unicodedata.normalize("NFD", "é")]}
    snapshot = json.dumps(value)
    canonical_json(value)
    assert json.dumps(value) == snapshot


def test_every_fixture_reserialised_gives_the_same_bytes() -> None:
    rng = random.Random(1)
    for name in fixture_names():
        body = fixture_bytes(name)
        expected = canonical_json(msgspec.json.decode(body))
        for _ in range(20):
            assert canonical_json(msgspec.json.decode(reserialise(body, rng))) == expected

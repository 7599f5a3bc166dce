"""Dedup keys over thousands of random deliveries: a key is shared exactly when the occurrence is the same."""

from __future__ import annotations

import copy
import random
from typing import Any

from bisonsync.events import decode_delivery

from ._generators import expected_identity, random_doc
from ._support import reserialise, to_bytes


def _retry_of(doc: dict[str, Any], rng: random.Random) -> bytes:
    """The same occurrence as Email Bison might deliver it again: other labels, other spelling of the type."""
    again = copy.deepcopy(doc)
    event = again["event"]
    event["workspace_name"] = rng.choice(["Client A", "Renamed", "  "])
    event["name"] = rng.choice(["Label", "Other label"])
    event["type"] = rng.choice([event["type"].upper(), event["type"].strip().lower()])
    return reserialise(to_bytes(again), rng)


def test_keys_are_shared_exactly_by_equal_occurrences() -> None:
    rng = random.Random(20251014)
    key_of: dict[tuple[Any, ...], str] = {}
    identity_of: dict[str, tuple[Any, ...]] = {}
    seen: list[dict[str, Any]] = []
    retries = 0
    for _ in range(6000):
        if seen and rng.random() < 0.25:
            doc = rng.choice(seen)
            body = _retry_of(doc, rng)
            retries += 1
        else:
            doc = random_doc(rng)
            seen.append(doc)
            body = to_bytes(doc)
        identity = expected_identity(doc)
        dedup_key = decode_delivery(body).dedup_key
        assert key_of.setdefault(identity, dedup_key) == dedup_key, f"one occurrence, two keys: {identity}"
        assert identity_of.setdefault(dedup_key, identity) == identity, f"two occurrences, one key: {dedup_key}"
    # not vacuous: many distinct occurrences, and both explicit retries and chance repeats were exercised
    assert len(key_of) > 2500
    assert retries > 1000
    assert len(seen) - len(key_of) > 100

"""Property tests of dedup keys with Hypothesis (skipped where Hypothesis is not installed; the seeded random test in
test_dedup_random.py covers the same ground without it)."""

from __future__ import annotations

import random
from typing import Any

import pytest

pytest.importorskip("hypothesis")

from hypothesis import given, settings
from hypothesis import strategies as st

from bisonsync.events import decode_delivery

from ._generators import (
    CAMPAIGN_EVENT_IDS,
    CAMPAIGN_IDS,
    COUNTERS,
    INSTANCE_URLS,
    LEAD_EMAILS,
    LEAD_IDS,
    REPLY_IDS,
    REPLY_UUIDS,
    SCHEDULED_IDS,
    SENDER_EMAILS,
    SENDER_IDS,
    STATUSES,
    TAG_IDS,
    TAGGABLE_IDS,
    TEXTS,
    TYPES,
    WORKSPACE_IDS,
    WORKSPACE_NAMES,
    expected_identity,
    make_doc,
)
from ._support import reserialise, to_bytes


def _sub(**domains: list[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={name: st.sampled_from(values) for name, values in domains.items()})


_data = st.fixed_dictionaries(
    {},
    optional={
        "lead": _sub(id=LEAD_IDS, email=LEAD_EMAILS, status=STATUSES),
        "reply": _sub(id=REPLY_IDS, uuid=REPLY_UUIDS, text_body=TEXTS),
        "campaign": _sub(id=CAMPAIGN_IDS, name=TEXTS),
        "sender_email": _sub(id=SENDER_IDS, email=SENDER_EMAILS, status=STATUSES),
        "tag": _sub(id=[7, 8], name=TEXTS),
        "n": st.integers(0, 2),
        "scheduled_email": _sub(id=SCHEDULED_IDS, opens=COUNTERS),
        "campaign_event": _sub(id=CAMPAIGN_EVENT_IDS),
        "tag_id": st.sampled_from(TAG_IDS),
        "taggable_id": st.sampled_from(TAGGABLE_IDS),
    },
)
docs = st.builds(
    make_doc,
    st.sampled_from(TYPES),
    type_spelling=st.integers(0, 2),
    workspace_id=st.sampled_from(WORKSPACE_IDS),
    instance_url=st.sampled_from(INSTANCE_URLS),
    workspace_name=st.sampled_from(WORKSPACE_NAMES),
    data=_data,
)
PROPERTY = settings(max_examples=400, database=None, deadline=None)


def _key(doc: dict[str, Any]) -> str:
    return decode_delivery(to_bytes(doc)).dedup_key


@PROPERTY
@given(a=docs, b=docs)
def test_same_key_exactly_when_same_occurrence(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert (_key(a) == _key(b)) == (expected_identity(a) == expected_identity(b))


@PROPERTY
@given(doc=docs, seed=st.integers(0, 2**32 - 1), name=st.sampled_from(WORKSPACE_NAMES))
def test_a_retry_has_the_same_key(doc: dict[str, Any], seed: int, name: str | None) -> None:
    expected = _key(doc)
    doc["event"]["workspace_name"] = name
    assert decode_delivery(reserialise(to_bytes(doc), random.Random(seed))).dedup_key == expected


@PROPERTY
@given(
    doc=docs,
    part=st.sampled_from(["lead", "reply", "campaign", "sender_email", "tag", "scheduled_email", "campaign_event"]),
)
def test_changing_one_id_changes_the_key_when_it_names_the_occurrence(doc: dict[str, Any], part: str) -> None:
    """Single-id edits, which random pairs rarely produce: the key changes exactly when the oracle's identity
    does (an id outside the type's basis does not name the occurrence)."""
    sub = doc["data"].get(part)
    if not isinstance(sub, dict):
        return
    field = "uuid" if part == "reply" and str(sub.get("uuid") or "").strip() else "id"
    if sub.get(field) is None:
        return
    before_key, before_identity = _key(doc), expected_identity(doc)
    sub[field] = f"{sub[field]}-other" if field == "uuid" else int(sub[field]) + 100
    assert (_key(doc) != before_key) == (expected_identity(doc) != before_identity)

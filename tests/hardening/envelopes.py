"""Hypothesis strategies for Email Bison webhook requests: plausible envelopes of all 17 types and unknown ones,
then the ways a body goes wrong (wrong types, missing and extra fields, huge strings, deep nesting, any Unicode
including U+0000, not JSON at all), sent with a right, wrong or missing token.

Small value domains for ids make retries and collisions (same dedup key, other body) frequent; every envelope
that can be accepted lands on `host` (its instance URL is a spelling of `host`, or absent with `host` the
service's default instance), so the test can count exactly what accepted bodies did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from bisonsync.events import EVENT_TYPES

TYPES = sorted(EVENT_TYPES)
#: field names the decoder types: an extra field must not reuse one (its value would be typed, not extra)
KNOWN_KEYS = frozenset(
    {
        "event",
        "data",
        "type",
        "workspace_id",
        "instance_url",
        "lead",
        "reply",
        "sender_email",
        "campaign",
        "tag",
        "name",
        "workspace_name",
    }
)
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
#: any text, control characters and U+0000 included; surrogates cannot travel in UTF-8 JSON
TEXT = st.text(st.characters(codec="utf-8"), max_size=60)
WRONG_TYPES = st.one_of(
    st.lists(JSON_SCALARS, max_size=2),
    st.dictionaries(st.text(max_size=4), JSON_SCALARS, max_size=2),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
    st.booleans(),
    st.text(max_size=8).filter(lambda s: not s.strip().isdigit()),
    st.integers(max_value=0),
    st.integers(min_value=2**63),
)


@dataclass(frozen=True)
class Request:
    path: str
    body: bytes
    #: how the token travels: query | header | missing | wrong | workspace (a per-workspace token)
    token: str
    label: str

    def __repr__(self) -> str:
        return f"Request({self.label}, {self.path}, token={self.token}, {len(self.body)} bytes: {self.body[:300]!r})"


def _spell_type(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:  # unknown to us: stored as ignored, replayable
        return draw(st.text(min_size=1, max_size=30).filter(lambda s: bool(s.strip())))
    name = draw(st.sampled_from(TYPES))
    return draw(st.sampled_from([name, name.upper(), f" {name.title()} ", name.capitalize()]))


@st.composite
def _lead(draw: st.DrawFn, ids: st.SearchStrategy[int]) -> dict[str, Any]:
    lead: dict[str, Any] = {"id": draw(ids)}
    if draw(st.booleans()):
        lead["email"] = draw(st.sampled_from(["pat@example.com", "Sam@Example.com", " kim@example.com "]))
    for name in draw(st.sets(st.sampled_from(["first_name", "last_name", "company", "title", "status"]))):
        lead[name] = draw(TEXT)
    if draw(st.booleans()):
        lead["custom_variables"] = draw(
            st.lists(
                st.fixed_dictionaries(
                    {"name": st.sampled_from(["phone", "City", "zip", "x"]), "value": st.one_of(TEXT, st.integers())}
                ),
                max_size=3,
            )
        )
    return lead


@st.composite
def _data(draw: st.DrawFn, event_type: str) -> dict[str, Any]:
    small = st.integers(1, 4)
    data: dict[str, Any] = {}
    if draw(st.integers(0, 3)) or event_type in (
        "lead_replied",
        "lead_interested",
        "lead_unsubscribed",
        "email_bounced",
    ):
        data["lead"] = draw(_lead(small))
    if draw(st.booleans()) or event_type == "lead_replied":
        data["reply"] = {
            "id": draw(small),
            "uuid": draw(st.sampled_from(["u-1", "U-1", "u-2"])),
            "text_body": draw(TEXT),
            "date_received": draw(st.sampled_from(["2026-11-29T10:00:00Z", "not a date", "2026-11-29 10:00:00"])),
        }
    if draw(st.booleans()):
        data["campaign"] = {"id": draw(small), "name": draw(TEXT)}
    if draw(st.booleans()) or event_type.startswith("email_account"):
        data["sender_email"] = {
            "id": draw(small),
            "email": draw(st.sampled_from(["box@example.com", "BOX2@x.io"])),
            "status": draw(st.sampled_from(["Connected", "Disconnected", "Failed", "odd"])),
        }
    return data


@st.composite
def envelopes(draw: st.DrawFn, host: str, bison_ids: list[int]) -> dict[str, Any]:
    """A plausible delivery (it may still be refused: e.g. a lead with neither id nor email after mutation)."""
    spelled = _spell_type(draw)
    workspace_id = draw(st.sampled_from(bison_ids))
    event: dict[str, Any] = {"type": spelled, "workspace_id": draw(st.sampled_from([workspace_id, str(workspace_id)]))}
    instance = draw(
        st.sampled_from(
            [
                None,
                "",
                "  ",
                host,
                host.upper(),
                f"https://{host}",
                f"http://{host}:8443/api/",
                f" https://{host.upper()}/ ",
                f"{host}.",
            ]
        )
    )
    if instance is not None:
        event["instance_url"] = instance
    for name in draw(st.sets(st.sampled_from(["name", "workspace_name"]))):
        event[name] = draw(st.one_of(st.none(), TEXT))
    data = draw(_data(spelled.strip().lower()))
    doc: dict[str, Any] = {"event": event, "data": data}
    # extra fields anywhere: Email Bison's payloads grow
    extra_keys = st.text(max_size=12).filter(lambda k: k not in KNOWN_KEYS)
    for target in draw(st.sets(st.sampled_from(["top", "event", "data"]))):
        where = {"top": doc, "event": event, "data": data}[target]
        where.update(draw(st.dictionaries(extra_keys, JSON_VALUES, max_size=3)))
    return doc


def _paths(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every (container, key) of the document, to mutate one."""
    found: list[tuple[Any, ...]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                found.append((value, key))
                walk(child)

    walk(doc)
    return found


@st.composite
def broken(draw: st.DrawFn, doc: dict[str, Any]) -> bytes:
    """`doc` made wrong in one way, encoded."""
    how = draw(st.sampled_from(["wrong_type", "missing", "huge_string", "deep", "not_object", "not_json", "unicode"]))
    doc = json.loads(json.dumps(doc))
    if how in ("wrong_type", "missing", "huge_string", "unicode"):
        container, key = draw(st.sampled_from(_paths(doc)))
        if how == "wrong_type":
            container[key] = draw(WRONG_TYPES)
        elif how == "missing":
            del container[key]
        elif how == "huge_string":
            # repeated, so hypothesis need not generate 300 KB; around and above the 256 KiB limit
            container[key] = draw(st.characters(codec="utf-8")) * draw(st.integers(1_000, 300_000))
        else:
            container[key] = draw(st.text(st.characters(codec="utf-8"), min_size=1, max_size=200))
    elif how == "deep":
        # written as text: json.dumps itself cannot nest a few thousand levels
        depth = draw(st.integers(10, 3_000))
        opening = "".join("[" if level % 2 else '{"k":' for level in range(depth))
        closing = "".join("]" if level % 2 else "}" for level in reversed(range(depth)))
        doc["data"] = {**doc["data"], "deep": "__deep__"}
        nested = opening + json.dumps(draw(JSON_SCALARS)) + closing
        return json.dumps(doc).replace('"__deep__"', nested, 1).encode()
    elif how == "not_object":
        return json.dumps(draw(st.one_of(JSON_SCALARS, st.lists(JSON_VALUES, max_size=3)))).encode()
    else:
        text = json.dumps(doc).encode()
        return draw(
            st.sampled_from(
                [
                    b"",
                    b"{",
                    text[: max(1, len(text) // 2)],
                    b"\xff\xfe" + text,
                    b"null",
                    b"[]",
                    text.replace(b'"', b"'", 1),
                ]
            )
        )
    return json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()


@st.composite
def requests(draw: st.DrawFn, host: str, bison_ids: list[int], paths: list[str]) -> Request:
    path = draw(st.sampled_from(paths))
    doc = draw(envelopes(host, bison_ids))
    if path.endswith("bison-interested-webhook") and draw(st.booleans()):
        doc["event"]["type"] = "lead_interested"  # the only type that route takes
        doc["data"].setdefault("lead", {"id": 1})
    if draw(st.booleans()):
        body, label = draw(broken(doc)), "broken"
    else:
        body, label = json.dumps(doc, ensure_ascii=draw(st.booleans())).encode(), "envelope"
    token = draw(st.sampled_from(["query", "header", "query", "workspace", "missing", "wrong"]))
    return Request(path, body, token, label)

"""Helpers for the event tests: the fixture corpus, envelopes, and re-serialisation the way a retry might look."""

from __future__ import annotations

import json
import random
import unicodedata
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks"
HOST = "https://bison.example.com"


def fixture_names() -> list[str]:
    """The corpus in the shapes real instances send (upper-case types, campaign_event, scheduled_email, ...)."""
    return sorted(path.stem for path in FIXTURES.glob("*.json"))


def legacy_names() -> list[str]:
    """The earlier corpus (the predecessor's shapes: lower-case types, nested tags), as `legacy/<name>`: a
    regression set, decoded and keyed like any delivery."""
    return sorted(f"legacy/{path.stem}" for path in (FIXTURES / "legacy").glob("*.json"))


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def fixture_doc(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(fixture_bytes(name))
    return doc


def delivery_doc(
    event_type: str,
    data: Any = None,
    *,
    workspace_id: Any = 42,
    workspace_name: Any = "Client A",
    instance_url: Any = HOST,
    name: Any = "Some Event",
) -> dict[str, Any]:
    """An envelope around `data` (omitted when None)."""
    event: dict[str, Any] = {"type": event_type, "workspace_id": workspace_id}
    for key, value in (("name", name), ("workspace_name", workspace_name), ("instance_url", instance_url)):
        if value is not None:
            event[key] = value
    doc: dict[str, Any] = {"event": event}
    if data is not None:
        doc["data"] = data
    return doc


def to_bytes(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def _shuffled(value: Any, rng: random.Random, nfd: bool, floats: bool) -> Any:
    if isinstance(value, dict):
        items = [(_shuffled(k, rng, nfd, floats), _shuffled(v, rng, nfd, floats)) for k, v in value.items()]
        rng.shuffle(items)
        return dict(items)
    if isinstance(value, list):
        return [_shuffled(v, rng, nfd, floats) for v in value]
    if isinstance(value, str) and nfd:
        return unicodedata.normalize("NFD", value)
    if isinstance(value, int) and not isinstance(value, bool) and floats:
        return float(value)
    return value


def reserialise(body: bytes, rng: random.Random) -> bytes:
    """The same JSON value written differently: keys shuffled, other whitespace, maybe \\u escapes, maybe NFD text,
    maybe integral floats (`1.0`). What a proxy, a replay tool or a different encoder could produce."""
    value = _shuffled(json.loads(body), rng, nfd=rng.random() < 0.3, floats=rng.random() < 0.2)
    indent = rng.choice([None, 0, 2, "\t"])
    separators = rng.choice([(",", ":"), (", ", ": "), (" ,", " : ")]) if indent is None else None
    text = json.dumps(value, indent=indent, separators=separators, ensure_ascii=rng.random() < 0.5)
    if rng.random() < 0.5:
        text = f" \n{text}\r\n "
    return text.encode()

"""The request headers PostgREST negotiates on: `Prefer`, `Accept`, `Content-Type` and the schema profiles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from devstack.rest.errors import (
    invalid_preferences,
    media_type_error,
    unacceptable_schema,
    unsupported_content_type,
)

_PREFERENCE_VALUES = {
    "return": {"minimal", "representation", "headers-only"},
    "count": {"exact", "planned", "estimated"},
    "resolution": {"merge-duplicates", "ignore-duplicates"},
    "missing": {"default", "null"},
    "handling": {"strict", "lenient"},
    "tx": {"commit", "rollback"},
    "params": {"single-object"},
}


@dataclass
class Preferences:
    return_: str | None = None
    count: str | None = None
    resolution: str | None = None
    missing: str | None = None
    handling: str | None = None
    tx: str | None = None
    params: str | None = None
    timezone: str | None = None
    max_affected: int | None = None
    applied: list[str] = field(default_factory=list)

    @property
    def representation(self) -> bool:
        return self.return_ == "representation"

    @property
    def counting(self) -> bool:
        return self.count is not None

    @property
    def missing_default(self) -> bool:
        return self.missing == "default"


def parse_prefer(values: Sequence[str]) -> Preferences:
    prefs = Preferences()
    invalid: list[str] = []
    for raw in ",".join(values).split(","):
        item = raw.strip()
        if not item:
            continue
        key, _, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if key in _PREFERENCE_VALUES and value in _PREFERENCE_VALUES[key]:
            setattr(prefs, "return_" if key == "return" else key, value)
        elif key == "timezone" and value:
            prefs.timezone = value
        elif key == "max-affected" and value.isdigit():
            prefs.max_affected = int(value)
        else:
            invalid.append(item)
            continue
        prefs.applied.append(f"{key}={value}")
    if prefs.handling == "strict" and invalid:
        raise invalid_preferences(invalid)
    return prefs


@dataclass(frozen=True, slots=True)
class Accept:
    #: `Accept: application/vnd.pgrst.object+json` (`.single()`)
    singular: bool = False
    #: `;nulls=stripped`
    strip_nulls: bool = False
    #: `Accept: text/csv`
    csv: bool = False

    @property
    def content_type(self) -> str:
        if self.csv:
            return "text/csv; charset=utf-8"
        base = "application/vnd.pgrst.object+json" if self.singular else "application/json"
        return f"{base}; charset=utf-8"


_PLURAL = {
    "*/*", "application/*", "application/json", "application/vnd.pgrst.array+json", "application/vnd.pgrst.array"
}  # fmt: skip
_SINGULAR = {"application/vnd.pgrst.object+json", "application/vnd.pgrst.object"}


def parse_accept(header: str | None) -> Accept:
    """The first media type we can produce wins (q-values are not ranked, as in PostgREST's common use)."""
    if not header or not header.strip():
        return Accept()
    offered: list[str] = []
    for part in header.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        media = media.lower()
        if not media:
            continue
        offered.append(media)
        stripped = any(p.replace(" ", "").lower() == "nulls=stripped" for p in params)
        if media == "text/csv":
            return Accept(csv=True)
        if media in _SINGULAR:
            return Accept(singular=True, strip_nulls=stripped)
        if media in _PLURAL:
            return Accept(strip_nulls=stripped and media.startswith("application/vnd.pgrst"))
    raise media_type_error(offered)


def check_json_content_type(header: str | None) -> None:
    """Bodies are JSON; a missing Content-Type is taken as JSON, as PostgREST does."""
    if not header:
        return
    media = header.split(";")[0].strip().lower()
    if media in ("application/json", "*/*") or (media.startswith("application/") and media.endswith("+json")):
        return
    raise unsupported_content_type(header)


def pick_schema(method: str, accept_profile: str | None, content_profile: str | None, exposed: Sequence[str]) -> str:
    """`Accept-Profile` for GET/HEAD, `Content-Profile` for the others; the first exposed schema by default."""
    profile = accept_profile if method in ("GET", "HEAD") else content_profile
    if profile is None or profile == "":
        return exposed[0]
    if profile not in exposed:
        raise unacceptable_schema(profile, exposed)
    return profile

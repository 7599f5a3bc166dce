"""Provider and reseller from Email Bison mailbox tags: trimmed, case-insensitive, configurable, raw tag kept.

Fixes the predecessor's rules (spec §5.1, §6.16): its provider match was exact and case-sensitive with no trim
("Microsoft " never matched) and its reseller match was a broad substring test ("Inbox Warmup" became a
reseller). Here a tag matches a rule when its normalised name equals one of the rule's aliases, or, for
resellers, contains the alias as a whole word.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PROVIDERS: dict[str, tuple[str, ...]] = {
    "Google": ("google", "google workspace", "gsuite", "g suite"),
    "Gmail": ("gmail",),
    "Microsoft": ("microsoft", "microsoft 365", "office 365", "o365", "m365"),
    "Outlook": ("outlook", "hotmail"),
    "Yahoo": ("yahoo",),
    "iCloud": ("icloud",),
    "AOL": ("aol",),
}
DEFAULT_RESELLERS: dict[str, tuple[str, ...]] = {
    "CheapInboxes": ("cheapinboxes", "cheap inboxes"),
    "Zapmail": ("zapmail",),
    "ScaledMail": ("scaledmail", "scaled mail"),
    "Mailr": ("mailr",),
    "Inboxology": ("inboxology",),
    "Mailforge": ("mailforge",),
}


def normalise_tag(name: str) -> str:
    """NFKC, trimmed, inner whitespace collapsed, case-folded."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", name)).strip().casefold()


@dataclass(frozen=True, slots=True)
class Classification:
    provider: str | None
    provider_tag: str | None
    reseller: str | None
    reseller_tag: str | None


@dataclass(frozen=True)
class TagRules:
    providers: Mapping[str, Sequence[str]] = field(default_factory=lambda: DEFAULT_PROVIDERS)
    resellers: Mapping[str, Sequence[str]] = field(default_factory=lambda: DEFAULT_RESELLERS)

    def __post_init__(self) -> None:
        provider_index = {normalise_tag(a): label for label, aliases in self.providers.items() for a in aliases}
        reseller_patterns = [
            (re.compile(rf"(?<![a-z0-9]){re.escape(normalise_tag(a))}(?![a-z0-9])"), label)
            for label, aliases in self.resellers.items()
            for a in aliases
        ]
        object.__setattr__(self, "_provider_index", provider_index)
        object.__setattr__(self, "_reseller_patterns", reseller_patterns)

    @classmethod
    def from_file(cls, path: Path) -> TagRules:
        """JSON `{"providers": {"Label": ["alias", ...]}, "resellers": {...}}`; missing keys keep the defaults."""
        doc: dict[str, Any] = json.loads(path.read_text())
        return cls(
            providers={k: tuple(v) for k, v in doc.get("providers", DEFAULT_PROVIDERS).items()},
            resellers={k: tuple(v) for k, v in doc.get("resellers", DEFAULT_RESELLERS).items()},
        )

    def classify(self, tag_names: Iterable[str]) -> Classification:
        """First provider tag and first reseller tag, in the tags' order."""
        provider = provider_tag = reseller = reseller_tag = None
        index: dict[str, str] = self._provider_index  # type: ignore[attr-defined]
        patterns: list[tuple[re.Pattern[str], str]] = self._reseller_patterns  # type: ignore[attr-defined]
        for raw in tag_names:
            norm = normalise_tag(raw)
            if not norm:
                continue
            if provider is None and norm in index:
                provider, provider_tag = index[norm], raw
                continue
            if reseller is None:
                for pattern, label in patterns:
                    if pattern.search(norm):
                        reseller, reseller_tag = label, raw
                        break
            if provider is not None and reseller is not None:
                break
        return Classification(provider, provider_tag, reseller, reseller_tag)


def tag_names(tags: Any) -> list[str]:
    """Names from Email Bison's `tags` array of `{id, name, default}`; anything else yields nothing."""
    if not isinstance(tags, list):
        return []
    return [t["name"] for t in tags if isinstance(t, dict) and isinstance(t.get("name"), str)]


def domain_of(email: str) -> str | None:
    _, at, domain = email.rpartition("@")
    return domain.strip().lower() or None if at else None

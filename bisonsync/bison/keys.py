"""API keys and their two kinds. A key's text never reaches a log or an error message: only its last 4 characters.

- A super-admin (instance) key sees every workspace, but the workspace its calls act on is server-side state
  attached to the token (`switch-workspace`), so its calls for different workspaces must never overlap.
- A workspace key is scoped to one workspace; it cannot switch, and calls with it run freely in parallel.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class KeyKind(enum.StrEnum):
    SUPER_ADMIN = "super_admin"
    WORKSPACE = "workspace"


@dataclass(frozen=True, slots=True)
class ApiKey:
    token: str = field(repr=False)
    kind: KeyKind
    #: the workspace a workspace key is scoped to
    team_id: int | None = None

    def __post_init__(self) -> None:
        if not self.token or self.token != self.token.strip():
            raise ValueError("an Email Bison API key must be non-empty and carry no surrounding whitespace")
        if self.kind is KeyKind.WORKSPACE and self.team_id is None:
            raise ValueError("a workspace key needs the team_id it is scoped to")

    @property
    def suffix(self) -> str:
        """What may be logged: `…` and the last 4 characters."""
        return "…" + self.token[-4:]

    @property
    def label(self) -> str:
        scope = f":{self.team_id}" if self.team_id is not None else ""
        return f"{self.kind.value}{scope}{self.suffix}"

    def __repr__(self) -> str:
        return f"ApiKey({self.label})"

    __str__ = __repr__

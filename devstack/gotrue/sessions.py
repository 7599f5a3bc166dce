"""GoTrue's sessions and refresh tokens, kept in the gateway's memory (they do not survive a gateway restart).

Rotation as GoTrue does it: a refresh token is good for one exchange; presenting it again within the reuse
interval (a second tab racing the first) returns the session's current token instead of failing; presenting it
later is treated as theft and revokes the whole session (`refresh_token_already_used`).
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

#: GoTrue's default `GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL` (seconds)
REUSE_INTERVAL_S = 10.0


class RefreshError(Exception):
    """The refresh token cannot be exchanged; `code` is GoTrue's error_code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class Session:
    id: str
    user_id: str
    created_at: float
    #: the one refresh token that can be exchanged now
    current_token: str
    #: the token `current_token` replaced, and when: reused within REUSE_INTERVAL_S it yields `current_token`
    previous_token: str | None = None
    rotated_at: float = 0.0
    revoked_tokens: set[str] = field(default_factory=set)


class SessionStore:
    """Sessions by id and every refresh token ever issued (until its session ends) by value."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._sessions: dict[str, Session] = {}
        self._by_token: dict[str, str] = {}
        self._now = clock

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, user_id: str) -> Session:
        token = self._new_token()
        session = Session(id=str(uuid.uuid4()), user_id=user_id, created_at=self._now(), current_token=token)
        self._sessions[session.id] = session
        self._by_token[token] = session.id
        return session

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def rotate(self, refresh_token: str) -> Session:
        """Exchange `refresh_token`; the session's `current_token` afterwards is the one to hand out."""
        session_id = self._by_token.get(refresh_token)
        session = self._sessions.get(session_id) if session_id else None
        if session is None:
            raise RefreshError("refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
        if refresh_token == session.current_token:
            new = self._new_token()
            session.previous_token, session.rotated_at = refresh_token, self._now()
            session.revoked_tokens.add(refresh_token)
            session.current_token = new
            self._by_token[new] = session.id
            return session
        if refresh_token == session.previous_token and self._now() - session.rotated_at <= REUSE_INTERVAL_S:
            return session
        self.revoke(session.id)
        raise RefreshError("refresh_token_already_used", "Invalid Refresh Token: Already Used")

    def revoke(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return
        for token in (*session.revoked_tokens, session.current_token):
            self._by_token.pop(token, None)

    def revoke_user(self, user_id: str, *, keep: str | None = None) -> int:
        """End every session of `user_id` except `keep`; returns how many ended."""
        doomed = [s.id for s in self._sessions.values() if s.user_id == user_id and s.id != keep]
        for session_id in doomed:
            self.revoke(session_id)
        return len(doomed)

    @staticmethod
    def _new_token() -> str:
        return secrets.token_urlsafe(16)

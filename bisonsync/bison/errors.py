"""Typed failures of the Email Bison client: every error the client raises is a `BisonError`."""

from __future__ import annotations


class BisonError(Exception):
    """Base class. `status_code` is the last HTTP status seen (None for transport failures)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        method: str | None = None,
        path: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.method = method
        self.path = path
        self.attempts = attempts

    def __str__(self) -> str:
        where = f"{self.method} {self.path}: " if self.method and self.path else ""
        tries = f" (after {self.attempts} attempts)" if self.attempts > 1 else ""
        return f"{where}{self.message}{tries}"


class BisonAuthError(BisonError):
    """401 or 403: the key is unknown, revoked, or not allowed to do this (e.g. a workspace key switching)."""


class BisonNotFound(BisonError):
    """404."""


class BisonRequestError(BisonError):
    """Any other 4xx (e.g. 422 validation errors). Never retried."""


class BisonRateLimited(BisonError):
    """429 and the retry budget ran out. `retry_after` is the server's last hint in seconds, if it sent one."""

    retry_after: float | None = None


class BisonServerError(BisonError):
    """5xx and the retry budget ran out (or the request was not safe to retry)."""


class BisonTimeout(BisonError):
    """No complete answer within the per-attempt timeout, on every attempt."""


class BisonConnectionError(BisonError):
    """The connection failed (refused, reset, closed mid-response) on every attempt."""


class BisonProtocolError(BisonError):
    """The answer is not what the API promises: invalid or truncated JSON, a wrong shape, a pagination loop."""


class PaginationCapExceeded(BisonError):
    """A listing still had pages left after `max_pages` pages; the result would be incomplete."""

    max_pages: int = 0
    next_url: str | None = None

"""Retry policy: what is retried, how long to wait, when to give up.

- 429: wait `Retry-After` (seconds or an HTTP date), capped at `retry_after_cap_s`; without the header, back off.
- 5xx, timeouts, connection errors: jittered exponential backoff, only for requests that are safe to repeat
  (GET/PUT/DELETE and the idempotent switch). A non-idempotent POST is retried only when it certainly never
  reached the server (connect errors) or was refused with 429.
- Other 4xx: never retried.
- Budget: at most `max_attempts` attempts and `max_elapsed_s` seconds in total, whichever comes first; a wait that
  would overrun the budget is not started.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    max_elapsed_s: float = 60.0
    retry_after_cap_s: float = 30.0
    #: one attempt (connect + send + the whole response) may take at most this long
    attempt_timeout_s: float = 30.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Wait before attempt `attempt + 1`: equal jitter over base * 2^(attempt-1), capped."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** max(0, attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)

    def retry_after(self, header: str | None, now: datetime | None = None) -> float | None:
        """The server's `Retry-After` in seconds, capped; None when absent or unreadable."""
        seconds = parse_retry_after(header, now)
        return None if seconds is None else min(seconds, self.retry_after_cap_s)


def parse_retry_after(header: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After: 7` or `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT` -> seconds from now (never negative)."""
    if header is None:
        return None
    value = header.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())

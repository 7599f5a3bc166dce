"""The one retry policy: how long to wait between attempts, when to give up. Used by the Email Bison client, the
sync runs' store calls, Slack delivery and the alert queue's resends, each with its own numbers.

For the Email Bison client:

- 429: wait `Retry-After` (seconds or an HTTP date), capped at `retry_after_cap_s`; without the header, back off.
- 5xx, timeouts, connection errors: jittered exponential backoff, only for requests that are safe to repeat
  (GET/PUT/DELETE and the idempotent switch). A non-idempotent POST is retried only when it certainly never
  reached the server (connect errors) or was refused with 429.
- Other 4xx: never retried.
- Budget: at most `max_attempts` attempts and `max_elapsed_s` seconds in total, whichever comes first; a wait that
  would overrun the budget is not started.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("bisonsync.retry")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    max_elapsed_s: float = 60.0
    retry_after_cap_s: float = 30.0
    #: one attempt (connect + send + the whole response) may take at most this long
    attempt_timeout_s: float = 30.0

    def ceiling(self, attempt: int) -> float:
        """The un-jittered wait after `attempt` failed attempts: base * 2^(attempt-1), capped."""
        return float(min(self.backoff_max_s, self.backoff_base_s * 2.0 ** max(0, attempt - 1)))

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Wait before attempt `attempt + 1`: equal jitter over `ceiling(attempt)`."""
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + (rng or _RNG).uniform(0, ceiling / 2)

    def wait(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float | None:
        """Wait before attempt `attempt + 1`, honouring a server's Retry-After; None: give up (no attempts left, or
        the server asks for longer than `retry_after_cap_s`)."""
        if attempt >= self.max_attempts:
            return None
        if retry_after is not None and retry_after > self.retry_after_cap_s:
            return None
        return max(self.backoff(attempt, rng), retry_after or 0.0)

    def retry_after(self, header: str | None, now: datetime | None = None) -> float | None:
        """The server's `Retry-After` in seconds, capped; None when absent or unreadable."""
        seconds = parse_retry_after(header, now)
        return None if seconds is None else min(seconds, self.retry_after_cap_s)


_RNG = random.Random()


async def retry_call(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    retry_on: tuple[type[BaseException], ...],
    what: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run `call` (idempotent) until it succeeds, retrying the `retry_on` errors with the policy's backoff."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except retry_on as exc:
            delay = policy.wait(attempt)
            if delay is None:
                raise
            log.warning("%s failed (%s), retry %d/%d in %.2fs", what, exc, attempt, policy.max_attempts - 1, delay)
            await sleep(delay)


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

"""Fault injection knobs of the simulator, settable from Python (`sim.faults.x = ...`, `sim.set_faults(...)`) and
over HTTP (`POST /_sim/faults` with a JSON object of the fields to change).

Rate-based faults draw from the simulator's seeded RNG, so a given request sequence fails the same way each run.
"""

from __future__ import annotations

import msgspec


class Target(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which requests a page fault hits. None matches anything; `times` (None: unlimited) counts down per hit."""

    path: str = "/api/sender-emails"
    workspace_id: int | None = None
    page: int | None = None
    times: int | None = None

    def matches(self, path: str, workspace_id: int | None, page: int | None) -> bool:
        return (
            path == self.path
            and (self.workspace_id is None or self.workspace_id == workspace_id)
            and (self.page is None or self.page == page)
        )


class Faults(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: added to every /api request before it is handled
    latency_ms: float = 0.0
    #: plus a uniform random 0..jitter_ms
    jitter_ms: float = 0.0
    #: share of /api requests answered 429
    rate_429: float = 0.0
    #: the next K /api requests are answered 429
    next_429: int = 0
    #: the Retry-After header of those 429s: seconds ("2") or an HTTP date; "" sends none
    retry_after: str = "1"
    #: share of /api requests answered 500
    rate_500: float = 0.0
    #: the next K /api requests are answered 500 (a burst)
    next_500: int = 0
    #: pages served with `links.next` null although pages remain (meta still tells the truth)
    null_next: list[Target] = msgspec.field(default_factory=list)
    #: pages served with no items although `links.next` points further
    empty_page: list[Target] = msgspec.field(default_factory=list)
    #: pages answered as a bare `{"data": [...]}` (the page's items, no `links`, no `meta`), as in the API
    #: reference's own example: a listing that cannot be proven complete
    bare_data: list[Target] = msgspec.field(default_factory=list)
    #: pages whose JSON body is cut in the middle (status 200, consistent Content-Length)
    broken_json: list[Target] = msgspec.field(default_factory=list)
    #: requests that hang (no answer) for `hang_s` seconds, or until `sim.release_hangs()`
    hang: list[Target] = msgspec.field(default_factory=list)
    hang_s: float = 30.0

    def take(self, targets: list[Target], path: str, workspace_id: int | None, page: int | None) -> bool:
        """Whether a request hits one of `targets`; consumes one use of the target it hits."""
        for i, target in enumerate(targets):
            if target.matches(path, workspace_id, page):
                if target.times is not None:
                    target.times -= 1
                    if target.times <= 0:
                        del targets[i]
                return True
        return False

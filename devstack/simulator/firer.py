"""`WebhookFirer`: POSTs realistic Email Bison webhooks of all 17 types at a steady rate, with Bison's habits.

- A share of deliveries are retries of an earlier delivery, arriving a few deliveries later: some the same bytes,
  some re-rendered from the instance's state at retry time (same ids, moved counters and `updated_at`, as a real
  retry rendered later); a share are swapped with their neighbour (out-of-order arrival).
- Types are UPPER_SNAKE_CASE as on the wire (`upper_case_share` < 1 sends some in the predecessor's snake_case);
  `instance_url` is the instance's own URL, omitted, or the vendor's generic host.
- Always bounded in count and in time, and only ever to a loopback address.
- Keeps the ground truth: per workspace, how many *distinct* events of each type were fired (and how many got a
  2xx at least once), so a test can compare a receiver's counters with it. The events are also recorded in the
  simulated instance, so `GET /api/workspaces/v1.1/stats` agrees with what was fired.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlencode

import httpx
import msgspec

from bisonsync.bison.models import EVENT_TYPES
from devstack.simulator.asgi import is_loopback_url
from devstack.simulator.events import DEFAULT_WEIGHTS, Event, EventFactory, InstanceUrlMode
from devstack.simulator.state import SimulatedBison

MAX_COUNT = 10_000_000
MAX_DURATION_S = 6 * 3600.0
TOKEN_HEADER = "X-Bisonsync-Token"


@dataclass
class GroundTruth:
    #: workspace id -> event type -> distinct events delivered at least once
    fired: dict[int, Counter[str]] = field(default_factory=dict)
    #: workspace id -> event type -> distinct events answered 2xx at least once
    accepted: dict[int, Counter[str]] = field(default_factory=dict)
    #: workspace id -> ids of the leads that replied (what stats calls unique_replies_per_contact)
    replied_leads: dict[int, set[int]] = field(default_factory=dict)
    deliveries: int = 0
    #: retries (deliveries of an event already delivered), and how many of them were re-rendered
    duplicates: int = 0
    rerendered: int = 0
    reordered: int = 0
    #: deliveries answered non-2xx, or not answered at all (see `errors`)
    failures: int = 0
    errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    @property
    def distinct(self) -> int:
        return sum(sum(c.values()) for c in self.fired.values())

    def total(self, event_type: str) -> int:
        return sum(c[event_type] for c in self.fired.values())


@dataclass
class _Fired:
    event: Event
    #: the body of its first delivery
    body: bytes
    #: the type as this event travels (UPPER_SNAKE_CASE, or the legacy snake_case)
    wire_type: str = ""
    delivered: bool = False
    accepted: bool = False

    def rerender(self) -> bytes:
        """The body drawn again from the instance's current state (same ids, current counters)."""
        body = self.event.render()
        body["event"]["type"] = self.wire_type or body["event"]["type"]
        return msgspec.json.encode(body)


@dataclass
class _Delivery:
    fired: _Fired
    duplicate: bool = False
    reordered: bool = False
    #: what is sent: the first rendering, or a re-rendering for a retry
    body: bytes = b""
    rerendered: bool = False

    def __post_init__(self) -> None:
        if not self.body:
            self.body = self.fired.body


class WebhookFirer:
    def __init__(
        self,
        target_url: str,
        sim: SimulatedBison,
        *,
        rate_per_s: float = 50.0,
        duration_s: float | None = None,
        count: int | None = None,
        duplicate_share: float = 0.05,
        reorder_share: float = 0.02,
        token: str | Mapping[int, str] | None = None,
        token_mode: Literal["query", "header"] = "query",
        seed: int = 0,
        weights: Mapping[str, float] | None = None,
        workspace_ids: Sequence[int] | None = None,
        instance_url: InstanceUrlMode | str | None = None,
        upper_case_share: float = 1.0,
        rerender_share: float = 0.5,
        object_variables_share: float = 0.0,
        concurrency: int = 8,
        request_timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Fire at `target_url` (loopback only) for `duration_s` seconds or `count` deliveries, whichever ends first.

        `token` goes into `?token=` or the `X-Bisonsync-Token` header (`token_mode`); a mapping gives each
        workspace its own. `transport` lets tests deliver in-process (e.g. `httpx.ASGITransport`).
        `instance_url`: "own" (default: the simulator's URL), "omit", "generic" (the vendor's canned host), or a
        URL. `upper_case_share`: share of events sent with UPPER_SNAKE_CASE types (1.0, as real instances; the
        rest in the predecessor's snake_case). `rerender_share`: share of retries re-rendered with moved counters
        (the rest are byte-for-byte re-sends). `object_variables_share`: share of bodies whose
        `lead.custom_variables` is a keyed object.
        """
        if not is_loopback_url(target_url):
            raise ValueError(f"the firer only posts to loopback addresses, not {target_url!r}")
        if duration_s is None and count is None:
            raise ValueError("bound the firer: give duration_s, count, or both")
        if rate_per_s <= 0 or concurrency < 1:
            raise ValueError("rate_per_s must be positive and concurrency at least 1")
        if not (0 <= duplicate_share < 0.5 and 0 <= reorder_share < 0.5):
            raise ValueError("duplicate_share and reorder_share must be in [0, 0.5)")
        if not all(0 <= x <= 1 for x in (upper_case_share, rerender_share, object_variables_share)):
            raise ValueError("upper_case_share, rerender_share and object_variables_share must be in [0, 1]")
        unknown = set(weights or ()) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"unknown event types in weights: {sorted(unknown)}")
        self.target_url = target_url
        self.sim = sim
        self.rate_per_s = rate_per_s
        self.count = min(count if count is not None else math.ceil(rate_per_s * (duration_s or 0)), MAX_COUNT)
        self.duration_s = min(duration_s if duration_s is not None else self.count / rate_per_s * 2 + 5, MAX_DURATION_S)
        self.duplicate_share = duplicate_share
        self.reorder_share = reorder_share
        self.token = token
        self.token_mode = token_mode
        self.weights = dict(weights or DEFAULT_WEIGHTS)
        self.workspace_ids = list(workspace_ids) if workspace_ids is not None else None
        self.upper_case_share = upper_case_share
        self.rerender_share = rerender_share
        self.concurrency = concurrency
        self.request_timeout_s = request_timeout_s
        self.transport = transport
        self.rng = random.Random(f"bison-firer:{seed}")
        self.factory = EventFactory(
            sim,
            random.Random(f"bison-firer:{seed}:events"),
            instance_url=instance_url,
            object_variables_share=object_variables_share,
        )
        self.truth = GroundTruth()
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """End the run early (deliveries already sent still complete)."""
        self._stop.set()

    # -- what to send -----------------------------------------------------------------------------------------

    def _pick_team(self) -> int:
        candidates = self.workspace_ids or list(self.sim.teams)
        weights = [len(self.sim.team_mailboxes.get(t, ())) for t in candidates]
        if not any(weights):
            raise RuntimeError("no workspace with mailboxes to fire events for")
        return self.rng.choices(candidates, weights=weights)[0]

    def _new_event(self) -> Event:
        types, weights = list(self.weights), list(self.weights.values())
        for _ in range(50):
            event = self.factory.make(self.rng.choices(types, weights=weights)[0], self._pick_team())
            if event is not None:
                return event
        raise RuntimeError("could not make an event: the simulated workspaces have no mailboxes left")

    def _fired(self) -> _Fired:
        event = self._new_event()
        if self.upper_case_share < 1 and self.rng.random() >= self.upper_case_share:
            event.body["event"]["type"] = event.type  # the predecessor's snake_case
            return _Fired(event, msgspec.json.encode(event.body), wire_type=event.type)
        return _Fired(event, event.raw, wire_type=event.body["event"]["type"])

    def _with_duplicates(self) -> Iterator[_Delivery]:
        # Per-original chance q so that re-sends are `duplicate_share` of all deliveries: q / (1 + q) = share.
        q = self.duplicate_share / (1 - self.duplicate_share)
        pending: list[tuple[int, _Delivery]] = []
        index = 0
        while True:
            due = next((p for p in pending if p[0] <= index), None)
            if due is not None:
                pending.remove(due)
                retry = due[1]
                if self.rerender_share and self.rng.random() < self.rerender_share:
                    retry.body, retry.rerendered = retry.fired.rerender(), True
                yield retry
            else:
                fired = self._fired()
                if self.rng.random() < q:
                    pending.append((index + self.rng.randint(1, 5), _Delivery(fired, duplicate=True)))
                yield _Delivery(fired)
            index += 1

    def deliveries(self) -> Iterator[_Delivery]:
        """The endless delivery sequence: originals, re-sends, and adjacent swaps."""
        stream = self._with_duplicates()
        for delivery in stream:
            if self.rng.random() < self.reorder_share / 2:  # a swap moves two deliveries
                following = next(stream)
                following.reordered = delivery.reordered = True
                yield following
            yield delivery

    # -- sending ----------------------------------------------------------------------------------------------

    def _request(self, delivery: _Delivery) -> tuple[str, dict[str, str]]:
        headers = {"Content-Type": "application/json", "User-Agent": "EmailBison-Webhooks (bisonsync simulator)"}
        token = self.token
        if isinstance(token, Mapping):
            token = token.get(delivery.fired.event.team_id)
        url = self.target_url
        if token is not None:
            if self.token_mode == "header":
                headers[TOKEN_HEADER] = token
            else:
                url += ("&" if "?" in url else "?") + urlencode({"token": token})
        return url, headers

    async def _post(self, http: httpx.AsyncClient, delivery: _Delivery, slots: asyncio.Semaphore) -> None:
        truth, fired = self.truth, delivery.fired
        try:
            url, headers = self._request(delivery)
            resp = await http.post(url, content=delivery.body, headers=headers)
        except httpx.HTTPError:
            truth.failures += 1
            truth.errors += 1
            return
        finally:
            slots.release()
        truth.statuses[resp.status_code] += 1
        if not resp.is_success:
            truth.failures += 1
        elif not fired.accepted:
            fired.accepted = True
            truth.accepted.setdefault(fired.event.team_id, Counter())[fired.event.type] += 1

    def _record(self, delivery: _Delivery) -> None:
        truth, fired = self.truth, delivery.fired
        truth.deliveries += 1
        truth.duplicates += delivery.duplicate
        truth.rerendered += delivery.rerendered
        truth.reordered += delivery.reordered
        if not fired.delivered:  # the first time this event goes out, it has happened
            fired.delivered = True
            event = fired.event
            event.apply()
            truth.fired.setdefault(event.team_id, Counter())[event.type] += 1
            if event.type == "lead_replied":
                truth.replied_leads.setdefault(event.team_id, set()).add(event.body["data"]["lead"]["id"])

    async def run(self) -> GroundTruth:
        """Fire until `count` deliveries, `duration_s` seconds, or `stop()`; return the ground truth."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + self.duration_s
        slots = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(transport=self.transport, timeout=self.request_timeout_s, limits=limits) as http:
            for index, delivery in enumerate(self.deliveries()):
                if index >= self.count or self._stop.is_set():
                    break
                due = start + index / self.rate_per_s
                if due >= deadline:
                    break
                wait = due - loop.time()
                if wait > 0.001:
                    await asyncio.sleep(wait)
                await slots.acquire()
                if loop.time() >= deadline or self._stop.is_set():
                    slots.release()
                    break
                self._record(delivery)
                task = asyncio.create_task(self._post(http, delivery, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
        self.truth.elapsed_s = loop.time() - start
        return self.truth

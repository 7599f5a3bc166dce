"""Property: whatever a sender POSTs, the service never answers 5xx, a refused body changes nothing, and every
accepted body is in the ledger exactly once (a retry of it is a duplicate that changes nothing), with its payload.

Hypothesis generates requests (tests/hardening/envelopes.py): plausible envelopes of every type and broken ones,
with the global token, a per-workspace token, a wrong one or none, to all three webhook routes. Each goes through
the real app over each store. Around every request the test reads, as postgres, the state of the run's own
instance: KPI counter sums, lead, mailbox and workspace counts, and the new ledger rows. The production decoder is
the oracle for what must be accepted (it decides keys and payloads; the property is that the HTTP and database
layers honour its verdict).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from litestar.testing import AsyncTestClient

from bisonsync.events import InvalidDelivery, decode_delivery
from bisonsync.ingest import hash_token
from bisonsync.settings import Settings
from bisonsync.store import Store
from service.app import TOKEN_HEADER, create_app
from tests.conftest import StackHandle
from tests.hardening.envelopes import Request, requests
from tests.service.conftest import make_store

TOKEN = "fuzz-global-" + uuid.uuid4().hex
MAX_BODY = 256 * 1024
LEGACY = "/functions/v1/bison-interested-webhook"
PATHS = ["/webhooks/bison", "/functions/v1/universal-bison-webhook", LEGACY]
#: the counter each type adds 1 to when applied (docs/schema.md §3)
METRIC_OF = {
    "email_sent": "emails_sent",
    "lead_replied": "replies",
    "lead_interested": "interested",
    "email_bounced": "bounced",
    "lead_unsubscribed": "unsubscribed",
}
METRICS = ("emails_sent", "replies", "interested", "bounced", "unsubscribed")
#: examples per store (BISONSYNC_FUZZ_EXAMPLES raises it and lets hypothesis explore instead of replaying)
EXAMPLES = {"postgres": 500, "supabase": 250}
EXPLORE = os.environ.get("BISONSYNC_FUZZ_EXAMPLES")

pytestmark = pytest.mark.timeout(240)


@dataclass(frozen=True)
class State:
    counters: dict[str, int]
    leads: int
    mailboxes: int
    workspaces: int


class World:
    """The app over one store, a postgres connection to read the truth, both on one private event loop (the
    test is synchronous for hypothesis; asyncio.Runner keeps the loop, so pools live across examples)."""

    def __init__(self, devstack: StackHandle, kind: str) -> None:
        self.devstack = devstack
        self.host = f"fz-{uuid.uuid4().hex[:10]}.bison.local"
        base = 100_000 + uuid.uuid4().int % 1_000_000_000
        self.bison_ids = [base, base + 1, base + 2]
        self.store: Store = make_store(kind, devstack)
        self.workspace_token = "fuzz-workspace-" + uuid.uuid4().hex
        self.runner = asyncio.Runner(loop_factory=asyncio.new_event_loop)
        self.client: AsyncTestClient[Any] | None = None
        self.db: asyncpg.Connection | None = None

    def run(self, coro: Any) -> Any:
        return self.runner.run(coro)

    async def open(self) -> None:
        app = create_app(
            Settings(webhook_token=TOKEN, webhook_max_bytes=MAX_BODY, default_instance=self.host),
            store=self.store,
            extra_lifespans=[],
        )  # no background jobs: only the webhook writes
        self.client = AsyncTestClient(app=app)
        await self.client.__aenter__()
        self.db = await asyncpg.connect(self.devstack.env.database_url)
        # bison_ids[0] has its own token (hashed); the others are reachable with the global token only
        ws = await self.db.fetchval(
            "select public.upsert_workspace($1, $2, 'Fuzz token workspace')", self.host, self.bison_ids[0]
        )
        await self.db.execute("select public.set_webhook_token($1, $2)", ws, hash_token(self.workspace_token))

    async def close(self) -> None:
        if self.client is not None:
            await self.client.__aexit__(None, None, None)
        if self.db is not None:
            await self.db.close()

    @property
    def conn(self) -> asyncpg.Connection:
        assert self.db is not None
        return self.db

    async def state(self) -> State:
        row = await self.conn.fetchrow(
            "select "
            + ", ".join(f"coalesce(sum(d.{m}), 0)::bigint as {m}" for m in METRICS)
            + " from public.client_metrics_daily d join public.workspaces w on w.id = d.workspace_id "
            "where w.instance = $1",
            self.host,
        )
        assert row is not None
        counts = await self.conn.fetchrow(
            "select (select count(*) from public.client_leads l join public.workspaces w on w.id = l.workspace_id "
            "        where w.instance = $1) as leads, "
            "(select count(*) from public.sender_emails_cache where instance = $1) as mailboxes, "
            "(select count(*) from public.workspaces where instance = $1) as workspaces",
            self.host,
        )
        assert counts is not None
        return State({m: row[m] for m in METRICS}, counts["leads"], counts["mailboxes"], counts["workspaces"])

    async def last_id(self) -> int:
        return int(await self.conn.fetchval("select coalesce(max(id), 0) from public.webhook_deliveries"))

    async def new_rows(self, after: int) -> list[asyncpg.Record]:
        return list(
            await self.conn.fetch(
                "select id, dedup_key, duplicate_of, status, event_type, instance, payload::text as payload "
                "from public.webhook_deliveries where id > $1 and instance = $2 order by id",
                after,
                self.host,
            )
        )

    async def send(self, request: Request) -> tuple[int, dict[str, Any]]:
        assert self.client is not None
        params, headers = {}, {"content-type": "application/json"}
        if request.token == "query":
            params["token"] = TOKEN
        elif request.token == "header":
            headers[TOKEN_HEADER] = TOKEN
        elif request.token == "wrong":
            params["token"] = "wrong-" + uuid.uuid4().hex
        elif request.token == "workspace":
            headers[TOKEN_HEADER] = self.workspace_token
        response = await self.client.post(request.path, content=request.body, params=params, headers=headers)
        try:
            body = response.json()
        except ValueError:
            body = {}
        return response.status_code, body


def _numbers_as_decimals(text: str | bytes) -> Any:
    """JSON with every number a Decimal: jsonb keeps numbers exactly and prints them in full, so 1e300 comes
    back as 1 followed by 300 zeros; compare values, not spellings."""
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


async def check_one(world: World, request: Request) -> bool:
    """Send `request` (and, when accepted, a retry of it); assert the property. False: not sent, because the
    body names another instance (a mutation may do that) and would land outside what this test counts."""
    try:
        delivery = decode_delivery(request.body, instance=world.host)
    except InvalidDelivery:
        delivery = None
    if delivery is not None and delivery.instance != world.host:
        return False
    known_first = None
    if delivery is not None:
        known_first = await world.conn.fetchval(
            "select id from public.webhook_deliveries where dedup_key = $1", delivery.dedup_key
        )
    before, after_id = await world.state(), await world.last_id()
    status, body = await world.send(request)
    after, rows = await world.state(), await world.new_rows(after_id)
    assert status < 500, f"{status} {body}"

    # what the request deserves, in the order the service decides: size, token (before any parsing), body, the
    # workspace a per-workspace token pins, route
    if len(request.body) > MAX_BODY:
        expected = 413
    elif request.token in ("missing", "wrong"):
        expected = 401
    elif delivery is None:
        expected = 400
    elif request.token == "workspace" and delivery.workspace_id != world.bison_ids[0]:
        expected = 401
    elif request.path == LEGACY and delivery.event_type != "lead_interested":
        expected = 400
    else:
        expected = 200
    assert status == expected, f"expected {expected}, got {status} {body}"

    if status != 200:
        assert after == before, f"a refused body ({status}) changed state: {before} -> {after}"
        assert not rows, rows  # a refusal writes nothing, not even a rejected row
        return True

    assert delivery is not None
    assert len(rows) == 1, f"an accepted body must add exactly one ledger row, got {rows}"
    row = rows[0]
    outcome = body.get("status")
    assert row["status"] == outcome, (row, body)
    if request.path != LEGACY:
        assert body["delivery_id"] == row["id"]
    if known_first is None:
        assert outcome in ("applied", "ignored"), body
        assert row["dedup_key"] == delivery.dedup_key
        assert _numbers_as_decimals(row["payload"]) == _numbers_as_decimals(delivery.payload_json)
        metric = METRIC_OF.get(delivery.event_type) if outcome == "applied" else None
        expected_counters = {m: before.counters[m] + (1 if m == metric else 0) for m in METRICS}
        assert after.counters == expected_counters, (delivery.event_type, outcome, before, after)
    else:
        assert outcome == "duplicate" and row["duplicate_of"] == known_first, (row, body, known_first)
        assert after.counters == before.counters

    # the sender retries: a duplicate, and nothing changes
    retry_from = await world.last_id()
    status, body = await world.send(request)
    retried = await world.new_rows(retry_from)
    assert status == 200 and body.get("status") == "duplicate", (status, body)
    assert [(r["status"], r["duplicate_of"]) for r in retried] == [("duplicate", known_first or row["id"])]
    assert await world.state() == after
    return True


@pytest.fixture(params=["postgres", "supabase"])
def world(request: pytest.FixtureRequest, devstack: StackHandle) -> Iterator[World]:
    w = World(devstack, request.param)
    w.run(w.open())
    try:
        yield w
    finally:
        w.run(w.close())
        w.runner.close()


def test_any_request_is_answered_honestly_and_counted_once(world: World, request: pytest.FixtureRequest) -> None:
    kind = request.node.callspec.params["world"]

    @settings(
        max_examples=int(EXPLORE) if EXPLORE else EXAMPLES[kind],
        deadline=None,
        derandomize=not EXPLORE,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )
    @given(req=requests(world.host, world.bison_ids, PATHS))
    def run(req: Request) -> None:
        assume(world.run(check_one(world, req)))

    run()


@pytest.mark.parametrize(
    ("case", "body"),
    [
        (
            "nul in data",
            b'{"event":{"type":"lead_replied","workspace_id":%d},'
            b'"data":{"lead":{"id":1,"email":"a\\u0000b@example.com"},"reply":{"uuid":"r\\u0000"}}}',
        ),
        ("nul in workspace name", b'{"event":{"type":"email_sent","workspace_id":%d,"workspace_name":"A\\u0000"}}'),
        ("nul in type", b'{"event":{"type":"email\\u0000sent","workspace_id":%d}}'),
        (
            "nested 100 levels",
            b'{"event":{"type":"x","workspace_id":%d},"data":{"a":' + b"[" * 100 + b"]" * 100 + b"}}",
        ),
        (
            "nested 5000 levels",
            b'{"event":{"type":"x","workspace_id":%d},"data":{"a":' + b"[" * 5000 + b"]" * 5000 + b"}}",
        ),
        (
            "at the size limit",
            b'{"event":{"type":"email_sent","workspace_id":%d},"data":{"x":"'
            + b"\xc3\xa9" * ((MAX_BODY - 80) // 2)
            + b'"}}',
        ),
        ("one byte over", b'{"event":{"type":"email_sent","workspace_id":%d},"data":{"x":"' + b"a" * MAX_BODY + b'"}}'),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_regressions_found_by_fuzzing(world: World, case: str, body: bytes) -> None:
    """U+0000 used to be refused by PostgreSQL (22P05: the event lost with a 400); 1000 nested arrays used to
    exhaust Python's recursion (500, from a 2 KB body, for any token)."""
    request = Request(PATHS[0], body.replace(b"%d", str(world.bison_ids[1]).encode()), "query", case)
    assert world.run(check_one(world, request))


def test_labels_keep_their_letters(world: World) -> None:
    """Instance hosts, workspace names, lead e-mails and dedup keys are stored as sent (trimmed of whitespace only).
    Found by the OpenAPI fuzz: clean_label() trimmed the letter v (`E'\\v'` is no escape in PostgreSQL), so "x.dev"
    was filed as tenant "x.de" (another instance's tenant), "vince@" as "ince@", and every dedup key lost its "v"."""
    host = f"vv-{uuid.uuid4().hex[:8]}.dev"
    doc = {
        "event": {
            "type": "lead_replied",
            "workspace_id": world.bison_ids[2],
            "workspace_name": "Kiev",
            "instance_url": f"https://{host}",
        },
        "data": {"lead": {"email": "vince@example.com", "last_name": "Ivanov"}, "reply": {"uuid": "v-1"}},
    }
    status, body = world.run(world.send(Request(PATHS[0], json.dumps(doc).encode(), "query", "labels")))
    assert status == 200, body
    row = world.run(
        world.conn.fetchrow(
            "select w.instance, w.name, l.lead_email, l.last_name from public.client_leads l "
            "join public.workspaces w on w.id = l.workspace_id where l.id = $1::uuid",
            body["lead_id"],
        )
    )
    assert row is not None
    key = world.run(
        world.conn.fetchval("select dedup_key from public.webhook_deliveries where id = $1", body["delivery_id"])
    )
    # the instance is the configured one (the body's instance_url is information only)
    assert (dict(row), key[:3]) == (
        {"instance": world.host, "name": "Kiev", "lead_email": "vince@example.com", "last_name": "Ivanov"},
        "v2:",
    )


def test_payload_round_trip_keeps_every_field(world: World) -> None:
    """Unknown fields, Unicode and big numbers survive into the ledger (the replayable copy)."""
    doc = {
        "event": {"type": "Campaign_Completed", "workspace_id": str(world.bison_ids[1]), "extra": [1, {"é": None}]},
        "data": {"n": 12345678901234567890, "f": 1.5e300, "s": "\u00e9\u0301 \U0001f600", "nested": {"a": [True]}},
    }
    assert world.run(check_one(world, Request(PATHS[1], json.dumps(doc).encode(), "header", "round trip")))
    stored = world.run(
        world.conn.fetchval(
            "select payload::text from public.webhook_deliveries "
            "where instance = $1 and event_type = 'campaign_completed'"
            " and payload is not null order by id desc limit 1",
            world.host,
        )
    )
    assert _numbers_as_decimals(stored) == _numbers_as_decimals(msgspec.json.encode(doc))

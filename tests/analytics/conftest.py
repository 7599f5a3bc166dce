"""Fixtures for analytics, reconciliation, alerts and webhook administration: stores, a fake Slack, workspaces
on an instance no other test uses, mailboxes written straight into the cache."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from bisonsync.alerts import AlertConfig, AlertWorker
from bisonsync.bison import BisonClient, RetryPolicy
from bisonsync.settings import Settings
from bisonsync.store import PostgresStore, Store, SupabaseStore
from bisonsync.store import api as store_api
from devstack.simulator import SimulatedBison, create_simulator_app
from tests.conftest import StackHandle

GLOBAL_SLACK = "https://slack.test/hooks/global-0001"
FAST_RETRY = RetryPolicy(
    max_attempts=3, backoff_base_s=0.005, backoff_max_s=0.02, max_elapsed_s=5.0, attempt_timeout_s=5.0
)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = PostgresStore(database_url, max_size=5)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(params=["postgres", "supabase"])
async def any_store(request: pytest.FixtureRequest, devstack: StackHandle) -> AsyncIterator[Store]:
    """The same test over the direct path and over supabase-py + the gateway."""
    s: Store
    if request.param == "postgres":
        s = PostgresStore(devstack.env.database_url, max_size=5)
    else:
        s = SupabaseStore(devstack.env.supabase_url, devstack.env.service_role_key)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def instance(unique_ws: int) -> str:
    """An instance host no other test uses (provider snapshots and workspaces are keyed by instance)."""
    return f"analytics-{unique_ws}.bison.test"


WorkspaceMaker = Callable[..., Awaitable[str]]


@pytest.fixture
def make_workspace(store: Store, instance: str, unique_ws: int) -> WorkspaceMaker:
    counter = iter(range(1000))

    async def make(name: str | None = None, timezone: str = "UTC", bison_id: int | None = None) -> str:
        n = next(counter)
        bid = bison_id if bison_id is not None else unique_ws + n
        return await store_api.upsert_workspace(store, instance, bid, name or f"Client {bid}", timezone)

    return make


MailboxMaker = Callable[..., Awaitable[uuid.UUID]]


@pytest.fixture
def make_mailbox(db: asyncpg.Connection) -> MailboxMaker:
    """A cached mailbox as the poller would write it (no status history row)."""
    ids = iter(range(1, 1_000_000))

    async def make(
        workspace_id: str,
        *,
        status: str = "Connected",
        provider: str | None = "Google",
        sent: int = 0,
        unique_replied: int = 0,
        email: str | None = None,
    ) -> uuid.UUID:
        sender_id = next(ids)
        mailbox: uuid.UUID = await db.fetchval(
            """insert into public.sender_emails_cache
                 (workspace_id, bison_sender_id, email_address, status, status_observed_at, status_source,
                  email_provider, emails_sent_count, unique_replied_count, total_replied_count, last_synced_at)
               values ($1, $2, $3, $4, now() - interval '1 day', 'poll', $5, $6, $7, $7, now())
               returning id""",
            uuid.UUID(workspace_id),
            sender_id,
            email or f"rep{sender_id}@{workspace_id[:8]}.example",
            status,
            provider,
            sent,
            unique_replied,
        )
        return mailbox

    return make


async def set_status(
    db: asyncpg.Connection, mailbox: uuid.UUID, status: str, source: str = "webhook", at: datetime | None = None
) -> dict[str, Any]:
    result = await db.fetchval(
        "select public.apply_mailbox_status($1, $2, $3, coalesce($4, now()))::text", mailbox, status, source, at
    )
    decoded: dict[str, Any] = msgspec.json.decode(result)
    return decoded


# -- fake Slack -------------------------------------------------------------------------------------------------


@dataclass
class Post:
    url: str
    body: dict[str, Any]


@dataclass
class FakeSlack:
    """Slack incoming webhooks as an httpx transport: records every POST; `fail(n, status)` fails the next n."""

    posts: list[Post] = field(default_factory=list)
    attempts: int = 0
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    down_status: int | None = None

    def fail(self, n: int, status: int = 503, headers: dict[str, str] | None = None) -> None:
        self.failures += [(status, headers or {})] * n

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        if self.down_status is not None:
            return httpx.Response(self.down_status, text="down")
        if self.failures:
            status, headers = self.failures.pop(0)
            return httpx.Response(status, headers=headers, text="rate_limited" if status == 429 else "error")
        self.posts.append(Post(str(request.url), msgspec.json.decode(request.content)))
        return httpx.Response(200, text="ok")

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler))

    def texts(self) -> list[str]:
        return [str(p.body.get("text")) for p in self.posts]


@pytest.fixture
def slack() -> FakeSlack:
    return FakeSlack()


def fast_config(**overrides: Any) -> AlertConfig:
    base: dict[str, Any] = {
        "batch_delay_s": 0.2,
        "retry_interval_s": 0.2,
        "send_backoff_s": 0.001,
        "resend_backoff_s": 60.0,
    }
    base.update(overrides)
    return AlertConfig(**base)


WorkerMaker = Callable[..., AlertWorker]


@pytest.fixture
async def make_worker(store: Store, slack: FakeSlack) -> AsyncIterator[WorkerMaker]:
    workers: list[AlertWorker] = []
    clients: list[httpx.AsyncClient] = []

    def make(
        *,
        environ: dict[str, str] | None = None,
        slack_url: str | None = GLOBAL_SLACK,
        on: Store | None = None,
        **overrides: Any,
    ) -> AlertWorker:
        client = slack.client()
        clients.append(client)
        worker = AlertWorker(
            on or store,
            Settings(slack_webhook_url=slack_url),
            client,
            config=fast_config(**overrides),
            environ=environ or {},
        )
        workers.append(worker)
        return worker

    yield make
    for w in workers:
        await w.stop()
    for c in clients:
        await c.aclose()


# -- simulated Email Bison --------------------------------------------------------------------------------------


@pytest.fixture
def sim(instance: str) -> SimulatedBison:
    return SimulatedBison(workspaces=4, mailboxes=40, seed=11, instance_url=f"https://{instance}")


@pytest.fixture
async def bison(sim: SimulatedBison) -> AsyncIterator[BisonClient]:
    transport = httpx.ASGITransport(app=create_simulator_app(sim))
    client = BisonClient("http://bison.test", sim.super_admin_key, transport=transport, retry=FAST_RETRY)
    try:
        yield client
    finally:
        await client.aclose()

"""Shared by the sync and key tests (their conftests import the fixtures): the simulator in-process recording its
requests, stores on the devstack, a unique instance per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from bisonsync.bison import BisonClient, RetryPolicy
from bisonsync.store import PostgresStore, Store, SupabaseStore
from devstack.simulator import SimulatedBison, create_simulator_app
from tests.conftest import StackHandle

BASE_URL = "http://bison.test"
#: quick retries: failure paths take milliseconds
FAST_RETRY = RetryPolicy(
    max_attempts=6,
    backoff_base_s=0.002,
    backoff_max_s=0.02,
    max_elapsed_s=20.0,
    retry_after_cap_s=1.0,
    attempt_timeout_s=5.0,
)

ResponseHook = Callable[[httpx.Request, httpx.Response], Awaitable[None]]


class RecordingTransport(httpx.AsyncBaseTransport):
    """The simulator app in-process, recording every request; `hook` runs after each answer (before the client
    sees it), so a test can act "while" a page is in flight."""

    def __init__(self, sim: SimulatedBison) -> None:
        self.inner = httpx.ASGITransport(app=create_simulator_app(sim))
        self.requests: list[httpx.Request] = []
        self.hook: ResponseHook | None = None
        self.rewrite: Callable[[httpx.Request, dict[str, Any]], dict[str, Any]] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = await self.inner.handle_async_request(request)
        if self.rewrite is not None and request.url.path == "/api/sender-emails":
            body = await response.aread()
            if response.status_code == 200:
                import json

                doc = self.rewrite(request, json.loads(body))
                response = httpx.Response(200, json=doc)
        if self.hook is not None:
            await self.hook(request, response)
        return response

    def page_requests(self) -> list[tuple[str, int]]:
        """(bearer token, page) of every GET /api/sender-emails so far."""
        out = []
        for r in self.requests:
            if r.url.path == "/api/sender-emails":
                token = r.headers.get("authorization", "").removeprefix("Bearer ")
                out.append((token, int(r.url.params.get("page", "1"))))
        return out


ClientFactory = Callable[..., BisonClient]


@pytest.fixture
def instance() -> str:
    """A tenant instance no other test uses (the simulator's own ids repeat across tests)."""
    return f"sim-{uuid.uuid4().hex[:12]}.local"


def make_store(kind: str, devstack: StackHandle) -> Store:
    if kind == "postgres":
        return PostgresStore(devstack.env.database_url, max_size=20)
    return SupabaseStore(devstack.env.supabase_url, devstack.env.service_role_key)


@pytest.fixture
async def pg_store(devstack: StackHandle) -> AsyncIterator[Store]:
    store = make_store("postgres", devstack)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(params=["postgres", "supabase"])
async def any_store(request: pytest.FixtureRequest, devstack: StackHandle) -> AsyncIterator[Store]:
    store = make_store(request.param, devstack)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., tuple[BisonClient, RecordingTransport]]]:
    """`make(sim, api_key="super", **kw)` -> (client, transport) on the in-process simulator."""
    clients: list[BisonClient] = []

    def make(sim: SimulatedBison, api_key: str | None = "super", **kw: Any) -> tuple[BisonClient, RecordingTransport]:
        transport = RecordingTransport(sim)
        kw.setdefault("retry", FAST_RETRY)
        client = BisonClient(
            BASE_URL, sim.super_admin_key if api_key == "super" else api_key, transport=transport, **kw
        )
        clients.append(client)
        return client, transport

    yield make
    for client in clients:
        await client.aclose()

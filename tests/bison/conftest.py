"""Fixtures for the Email Bison client and simulator tests: everything in-process unless a test says otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from bisonsync.bison import BisonClient, RetryPolicy
from devstack.simulator import SimulatedBison, create_simulator_app
from devstack.simulator.asgi import Receive, Scope, Send

BASE_URL = "http://bison.test"
#: quick retries so failure paths take milliseconds
FAST_RETRY = RetryPolicy(
    max_attempts=4,
    backoff_base_s=0.005,
    backoff_max_s=0.02,
    max_elapsed_s=10.0,
    retry_after_cap_s=2.0,
    attempt_timeout_s=5.0,
)

ClientFactory = Callable[..., BisonClient]


@pytest.fixture
def sim() -> SimulatedBison:
    return SimulatedBison(workspaces=8, mailboxes=400, seed=7)


@pytest.fixture
async def make_client(sim: SimulatedBison) -> AsyncIterator[ClientFactory]:
    """Build clients on the in-process simulator; `api_key` defaults to the super-admin key."""
    clients: list[BisonClient] = []
    transport = httpx.ASGITransport(app=create_simulator_app(sim))

    def make(api_key: str | None = "super", **kw: Any) -> BisonClient:
        kw.setdefault("retry", FAST_RETRY)
        client = BisonClient(
            BASE_URL, sim.super_admin_key if api_key == "super" else api_key, transport=transport, **kw
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def client(make_client: ClientFactory) -> BisonClient:
    return make_client()


@dataclass
class Delivery:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver as an ASGI app: records every delivery, answers `status(delivery)`."""

    status: Callable[[Delivery], int] = lambda d: 200
    deliveries: list[Delivery] = field(default_factory=list)
    on_delivery: Callable[[Delivery], Awaitable[None]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        delivery = Delivery(
            path=scope["path"],
            query=parse_qs(scope["query_string"].decode()),
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=b"".join(chunks),
        )
        self.deliveries.append(delivery)
        if self.on_delivery is not None:
            await self.on_delivery(delivery)
        await send({"type": "http.response.start", "status": self.status(delivery), "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()

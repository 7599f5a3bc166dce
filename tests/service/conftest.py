"""Service fixtures: the app over each store (asyncpg direct, supabase-py through the gateway)."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from bisonsync.settings import Settings
from bisonsync.store import PostgresStore, Store, SupabaseStore
from service.app import create_app
from tests.conftest import StackHandle

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
TOKEN = "test-global-webhook-token"


def load_fixture(name: str, workspace_id: int) -> dict[str, Any]:
    """A corpus payload re-homed to `workspace_id` so tests never share counters or dedup keys."""
    doc: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    doc = copy.deepcopy(doc)
    doc["event"]["workspace_id"] = workspace_id
    return doc


def make_store(kind: str, devstack: StackHandle) -> Store:
    if kind == "postgres":
        return PostgresStore(devstack.env.database_url, max_size=20)
    return SupabaseStore(devstack.env.supabase_url, devstack.env.service_role_key)


@pytest.fixture(params=["postgres", "supabase"])
def store(request: pytest.FixtureRequest, devstack: StackHandle) -> Store:
    """An unopened store: the app opens and closes it on its own loop (AsyncTestClient runs it in a portal)."""
    return make_store(request.param, devstack)


def settings_for(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "webhook_token": TOKEN,
        "webhook_max_bytes": 256 * 1024,
        "jobs_enabled": False,
        "default_instance": "bison.example.com",  # the configured instance (no BISON_BASE_URL in tests)
    }
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
async def client(store: Store) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(settings_for(), store=store)
    async with AsyncTestClient(app=app) as c:
        yield c

"""Shared fixtures: one devstack (PostgreSQL + gateway) per test session on free ports, stopped at the end.

Set BISONSYNC_TEST_SUPABASE_URL, BISONSYNC_TEST_ANON_KEY, BISONSYNC_TEST_SERVICE_ROLE_KEY,
BISONSYNC_TEST_DATABASE_URL (and optionally BISONSYNC_TEST_JWT_SECRET) to run the suite against another stack,
e.g. a real `supabase start`, instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from devstack.cluster import DURABLE_ENV
from devstack.keys import DEFAULT_JWT_SECRET, mint_user_token
from devstack.ports import free_port
from devstack.stack import DevStack, StackEnv

# Throwaway test clusters skip crash safety for speed; the explicit opt-out the devstack requires (it is durable
# by default). Set BISONSYNC_DEVSTACK_DURABLE=1 to run the suite on durable clusters.
os.environ.setdefault(DURABLE_ENV, "0")

# Tests that start processes or stacks of their own, drive browsers, npm or the simulator over sockets, or fuzz:
# minutes in all. Marked `slow` here (one list, not a decorator in each file) so `make test-fast` skips them.
SLOW_PATHS = (
    "tests/test_make_run.py",
    "tests/browser/",
    "tests/faults/",
    "tests/hardening/",
    "tests/service/test_outage.py",
    "tests/bison/test_socket.py",
    "tests/bison/test_firer.py",
    "tests/bison/test_workspaces.py",
    "tests/sync/test_cli.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use the devstack (directly or through another fixture) are marked `stack`, those under
    SLOW_PATHS `slow`, so `make test-fast` (`-m "not stack and not slow"`) runs the unit tests alone, in seconds."""
    root = Path(str(config.rootpath))
    for item in items:
        if "devstack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stack)
        rel = Path(str(item.path)).relative_to(root).as_posix()
        if rel.startswith(SLOW_PATHS):
            item.add_marker(pytest.mark.slow)


@dataclass
class StackHandle:
    env: StackEnv
    #: None when the suite targets an external stack (then nothing can be restarted)
    stack: DevStack | None

    def user_token(self, sub: str, **kw: object) -> str:
        return mint_user_token(sub, secret=self.env.jwt_secret, **kw)  # type: ignore[arg-type]


def _external_env() -> StackEnv | None:
    url = os.environ.get("BISONSYNC_TEST_SUPABASE_URL")
    if not url:
        return None
    return StackEnv(
        supabase_url=url,
        anon_key=os.environ["BISONSYNC_TEST_ANON_KEY"],
        service_role_key=os.environ["BISONSYNC_TEST_SERVICE_ROLE_KEY"],
        database_url=os.environ["BISONSYNC_TEST_DATABASE_URL"],
        jwt_secret=os.environ.get("BISONSYNC_TEST_JWT_SECRET", DEFAULT_JWT_SECRET),
    )


@contextlib.contextmanager
def private_stack() -> Iterator[DevStack]:
    """A whole devstack (bootstrapped, migrated, no seed, gateway up) on free ports in a temp dir; removed after."""
    # Not under pytest's 0700 tmp dir: the cluster runs as the `postgres` user when the suite runs as root.
    root = Path(tempfile.mkdtemp(prefix="bisonsync-devstack-"))
    root.chmod(0o755)
    stack = DevStack(root=root, api_port=free_port(), db_port=free_port(), seed_file=None)
    try:
        asyncio.run(stack.prepare_database(seed=False))
        stack.start_gateway()
        yield stack
    finally:
        stack.down()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def devstack() -> Iterator[StackHandle]:
    external = _external_env()
    if external is not None:
        yield StackHandle(env=external, stack=None)
        return
    with private_stack() as stack:
        yield StackHandle(env=stack.env(), stack=stack)


@pytest.fixture(scope="session")
def database_url(devstack: StackHandle) -> str:
    return devstack.env.database_url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection as `postgres` (the migration owner, like the Supabase dashboard's SQL editor)."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def unique_ws() -> int:
    """A Bison workspace id no other test uses, so tests sharing one database never see each other's rows."""
    return 100_000 + uuid.uuid4().int % 1_000_000_000

"""Migration fixtures: fresh databases in the devstack cluster with the Supabase bootstrap and nothing of ours."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import StackHandle
from tests.hardening.conftest import bootstrapped_database


@pytest.fixture
async def empty_database(devstack: StackHandle) -> AsyncIterator[str]:
    """DSN (as `postgres`, like `supabase db push`) of a new database: Supabase-shaped, none of our migrations."""
    stack = devstack.stack
    if stack is None:
        pytest.skip("needs the local devstack (creates databases as the bootstrap superuser)")
    async with bootstrapped_database(stack, "migrations") as dsn:
        yield dsn

"""Migration fixtures: fresh databases in the devstack cluster with the Supabase bootstrap and nothing of ours."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from devstack.cluster import SUPERUSER
from devstack.stack import bootstrap_sql
from tests.conftest import StackHandle


@pytest.fixture
async def empty_database(devstack: StackHandle) -> AsyncIterator[str]:
    """DSN (as `postgres`, like `supabase db push`) of a new database: Supabase-shaped, none of our migrations."""
    stack = devstack.stack
    if stack is None:
        pytest.skip("needs the local devstack (creates databases as the bootstrap superuser)")
    name = f"migrations_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(stack.cluster.dsn(SUPERUSER))
    try:
        await admin.execute(f'create database "{name}" owner postgres')
    finally:
        await admin.close()
    try:
        boot = await asyncpg.connect(stack.cluster.dsn(SUPERUSER, name))
        try:
            await boot.execute(bootstrap_sql())
        finally:
            await boot.close()
        yield stack.cluster.dsn("postgres", name)
    finally:
        admin = await asyncpg.connect(stack.cluster.dsn(SUPERUSER))
        try:
            await admin.execute(f'drop database if exists "{name}" with (force)')
        finally:
            await admin.close()

"""Hardening fixtures: a database built from the migrations alone, for tests that must not see (or leave) the
rows and scratch objects the rest of the suite writes into the shared session database."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bisonsync import migrations as migrate
from devstack.cluster import SUPERUSER
from devstack.stack import DevStack, bootstrap_sql
from tests.conftest import StackHandle


@pytest.fixture(scope="session")
async def migrated_database(devstack: StackHandle) -> AsyncIterator[str]:
    """DSN (as `postgres`) of a fresh database in the devstack cluster: Supabase bootstrap + every migration in
    `supabase/migrations` as it is on disk now, no seed, no test data, no scratch tables. Dropped at the end.

    Against an external stack (no cluster to create databases in) this is the session database itself."""
    stack = devstack.stack
    if stack is None:
        yield devstack.env.database_url
        return
    async with fresh_database(stack) as dsn:
        yield dsn


@contextlib.asynccontextmanager
async def bootstrapped_database(stack: DevStack, prefix: str) -> AsyncIterator[str]:
    """DSN (as `postgres`, like `supabase db push`) of a new database in the devstack cluster: the Supabase
    bootstrap and nothing of ours; dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
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


@contextlib.asynccontextmanager
async def fresh_database(stack: DevStack, prefix: str = "hardening") -> AsyncIterator[str]:
    """A new database in the devstack cluster: Supabase bootstrap + every migration, no seed; dropped after."""
    async with bootstrapped_database(stack, prefix) as dsn:
        await migrate.migrate(dsn, stack.migrations_dir)
        yield dsn

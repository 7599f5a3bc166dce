"""REST emulator: DDL is picked up by the very next request, without waiting for the schema cache to expire."""

from __future__ import annotations

import asyncpg

from tests.conftest import StackHandle
from tests.devstack.test_rest_support import client, unique


async def test_new_column_is_usable_at_once(devstack: StackHandle, db: asyncpg.Connection) -> None:
    t = unique()
    await db.execute(f"create table public.{t} (id int primary key, a text); grant all on public.{t} to anon")
    try:
        sb = await client(devstack.env)
        assert (await sb.table(t).select("*").execute()).data == []  # now cached
        await db.execute(f"alter table public.{t} add column b int")
        res = await sb.table(t).insert({"id": 1, "a": "x", "b": 2}).execute()
        assert res.data == [{"id": 1, "a": "x", "b": 2}]
        assert (await sb.table(t).select("b").eq("b", 2).execute()).data == [{"b": 2}]
    finally:
        await db.execute(f"drop table public.{t}")


async def test_recreated_table_with_other_types_is_seen_at_once(devstack: StackHandle, db: asyncpg.Connection) -> None:
    t = unique()
    await db.execute(f"create table public.{t} (id int primary key); grant all on public.{t} to anon")
    try:
        sb = await client(devstack.env)
        await sb.table(t).insert({"id": 1}).execute()
        assert (await sb.table(t).select("id").eq("id", 1).execute()).data == [{"id": 1}]
        await db.execute(
            f"drop table public.{t}; create table public.{t} (id text primary key); grant all on public.{t} to anon;"
            f"insert into public.{t} values ('abc')"
        )
        assert (await sb.table(t).select("id").eq("id", "abc").execute()).data == [{"id": "abc"}]
    finally:
        await db.execute(f"drop table if exists public.{t}")


async def test_replaced_function_is_seen_at_once(devstack: StackHandle, db: asyncpg.Connection) -> None:
    f = unique("rest_fn")
    await db.execute(f"create function public.{f}(a int) returns int language sql as $$ select a $$")
    try:
        sb = await client(devstack.env)
        assert (await sb.rpc(f, {"a": 1}).execute()).data == 1
        await db.execute(
            f"drop function public.{f}(int); "
            f"create function public.{f}(b text) returns text language sql as $$ select 'new:' || b $$"
        )
        assert (await sb.rpc(f, {"b": "x"}).execute()).data == "new:x"
        assert (await sb.rpc(f, {"b": "y"}, get=True).execute()).data == "new:y"
    finally:
        await db.execute(f"drop function if exists public.{f}(text); drop function if exists public.{f}(int)")

"""REST emulator, reads: select lists, filters, order, ranges, counts, singular responses, profiles."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from postgrest.exceptions import APIError

from tests.conftest import StackHandle
from tests.devstack.test_rest_support import client, raw, unique

ROWS = [
    # id, name, n, score, tags, data, note
    (1, "alpha", 10, "1.50", ["x", "y"], '{"k": "v", "deep": {"z": 1}}', None),
    (2, "Beta", 20, "2.25", ["y"], '{"k": "w"}', "b"),
    (3, "gamma", None, "0.10", [], None, "c"),
    (4, "delta", 20, "9.99", None, '{"k": "v"}', None),
    (5, "a,b(c)", 5, "5", ["z"], "[]", "e"),
]


@pytest.fixture(scope="module")
async def table(devstack: StackHandle) -> AsyncIterator[str]:
    name = unique()
    conn = await asyncpg.connect(devstack.env.database_url)
    try:
        await conn.execute(
            f"""
            create table public.{name} (
              id bigint primary key, name text not null, n int, score numeric, tags text[], data jsonb,
              note text, created_at timestamptz not null default '2026-01-02T03:04:05Z'
            );
            grant select on public.{name} to anon, authenticated, service_role;
            create table public.{name}_many (id int primary key);
            insert into public.{name}_many select generate_series(1, 1005);
            grant select on public.{name}_many to anon, authenticated, service_role;
            """
        )
        await conn.executemany(
            f"insert into public.{name} (id, name, n, score, tags, data, note) "
            "values ($1, $2, $3, $4::numeric, $5, $6::jsonb, $7)",
            ROWS,
        )
        yield name
    finally:
        await conn.execute(f"drop table if exists public.{name}, public.{name}_many")
        await conn.close()


def ids(data: object) -> list[int]:
    assert isinstance(data, list)
    return [row["id"] for row in data]


async def test_select_star_returns_every_column_with_postgres_json_types(devstack: StackHandle, table: str) -> None:
    sb = await client(devstack.env)
    res = await sb.table(table).select("*").eq("id", 1).execute()
    assert res.data == [
        {
            "id": 1,
            "name": "alpha",
            "n": 10,
            "score": 1.50,
            "tags": ["x", "y"],
            "data": {"k": "v", "deep": {"z": 1}},
            "note": None,
            "created_at": "2026-01-02T03:04:05+00:00",
        }
    ]


async def test_select_columns_aliases_casts_and_json_paths(devstack: StackHandle, table: str) -> None:
    sb = await client(devstack.env)
    res = await sb.table(table).select("id,label:name,n::text,k:data->>k,data->deep->z").eq("id", 1).execute()
    assert res.data == [{"id": 1, "label": "alpha", "n": "10", "k": "v", "z": 1}]


async def test_comparison_filters(devstack: StackHandle, table: str) -> None:
    sb = await client(devstack.env)
    t = sb.table(table)
    assert ids((await t.select("id").eq("n", 20).order("id").execute()).data) == [2, 4]
    assert ids((await t.select("id").neq("n", 20).order("id").execute()).data) == [1, 5]
    assert ids((await t.select("id").gt("n", 10).order("id").execute()).data) == [2, 4]
    assert ids((await t.select("id").gte("n", 10).order("id").execute()).data) == [1, 2, 4]
    assert ids((await t.select("id").lt("n", 10).order("id").execute()).data) == [5]
    assert ids((await t.select("id").lte("score", "1.5").order("id").execute()).data) == [1, 3]
    assert ids((await t.select("id").eq("created_at", "2026-01-02T03:04:05+00:00").execute()).data) == [1, 2, 3, 4, 5]


async def test_in_is_like_ilike_and_their_negations(devstack: StackHandle, table: str) -> None:
    sb = await client(devstack.env)
    t = sb.table(table)
    assert ids((await t.select("id").in_("name", ["alpha", "a,b(c)", "nope"]).order("id").execute()).data) == [1, 5]
    assert ids((await t.select("id").in_("id", []).execute()).data) == []
    assert ids((await t.select("id").is_("n", None).execute()).data) == [3]
    assert ids((await t.select("id").not_.is_("note", None).order("id").execute()).data) == [2, 3, 5]
    assert ids((await t.select("id").like("name", "%ta").order("id").execute()).data) == [2, 4]
    assert ids((await t.select("id").like("name", "*amm*").execute()).data) == [3]
    assert ids((await t.select("id").ilike("name", "b%").execute()).data) == [2]
    assert ids((await t.select("id").not_.ilike("name", "%a").order("id").execute()).data) == [5]
    assert ids((await t.select("id").not_.in_("id", [1, 2, 3]).order("id").execute()).data) == [4, 5]
    assert ids((await t.select("id").not_.eq("n", 20).order("id").execute()).data) == [1, 5]


async def test_json_array_and_logic_filters(devstack: StackHandle, table: str) -> None:
    sb = await client(devstack.env)
    t = sb.table(table)
    assert ids((await t.select("id").eq("data->>k", "v").order("id").execute()).data) == [1, 4]
    assert ids((await t.select("id").contains("tags", ["y"]).order("id").execute()).data) == [1, 2]
    assert ids((await t.select("id").or_("n.is.null,id.eq.1").order("id").execute()).data) == [1, 3]
    res = await t.select("id").or_('and(n.eq.20,id.gt.2),name.eq."a,b(c)"').order("id").execute()
    assert ids(res.data) == [4, 5]
    res = await t.select("id").not_.or_("n.eq.20,n.is.null").order("id").execute()
    assert ids(res.data) == [1, 5]


async def test_order_by_several_columns_with_nulls_placement(devstack: StackHandle, table: str) -> None:
    sb = await client(devstack.env)
    t = sb.table(table)
    res = await t.select("id").order("n", desc=True, nullsfirst=True).order("id", desc=True).execute()
    assert ids(res.data) == [3, 4, 2, 1, 5]
    res = await t.select("id").order("n", nullsfirst=False).order("id").execute()
    assert ids(res.data) == [5, 1, 2, 4, 3]


async def test_limit_offset_and_range(devstack: StackHandle, table: str) -> None:
    sb = await client(devstack.env)
    t = sb.table(table)
    assert ids((await t.select("id").order("id").limit(2).execute()).data) == [1, 2]
    assert ids((await t.select("id").order("id").limit(2).offset(3).execute()).data) == [4, 5]
    assert ids((await t.select("id").order("id").range(1, 3).execute()).data) == [2, 3, 4]


async def test_count_exact_sets_content_range(devstack: StackHandle, table: str) -> None:
    sb = await client(devstack.env)
    res = await sb.table(table).select("id", count="exact").gte("n", 10).order("id").limit(2).execute()
    assert ids(res.data) == [1, 2] and res.count == 3
    head = await sb.table(table).select("*", count="exact", head=True).execute()
    assert head.count == 5
    no_count = await sb.table(table).select("id").execute()
    assert no_count.count is None

    r = await raw(
        devstack.env, "GET", f"/{table}", params={"select": "id", "limit": "2"}, headers={"Prefer": "count=exact"}
    )
    assert r.status_code == 206 and r.headers["content-range"] == "0-1/5"
    r = await raw(
        devstack.env, "GET", f"/{table}", params={"select": "id", "id": "gt.100"}, headers={"Prefer": "count=exact"}
    )
    assert r.status_code == 200 and r.headers["content-range"] == "*/0" and r.json() == []
    r = await raw(devstack.env, "GET", f"/{table}", params={"select": "id"})
    assert r.status_code == 200 and r.headers["content-range"] == "0-4/*"
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    r = await raw(devstack.env, "GET", f"/{table}", params={"offset": "9"}, headers={"Prefer": "count=exact"})
    assert r.status_code == 416 and r.json()["code"] == "PGRST103"


async def test_max_rows_caps_every_read_at_1000(devstack: StackHandle, table: str) -> None:
    sb = await client(devstack.env)
    res = await sb.table(f"{table}_many").select("id", count="exact").execute()
    assert len(res.data) == 1000 and res.count == 1005
    res = await sb.table(f"{table}_many").select("id").limit(5000).execute()
    assert len(res.data) == 1000


async def test_single_and_maybe_single(devstack: StackHandle, table: str) -> None:
    sb = await client(devstack.env)
    one = await sb.table(table).select("id,name").eq("id", 2).single().execute()
    assert one.data == {"id": 2, "name": "Beta"}
    with pytest.raises(APIError) as none:
        await sb.table(table).select("id").eq("id", 99).single().execute()
    assert none.value.code == "PGRST116" and none.value.details == "The result contains 0 rows"
    with pytest.raises(APIError) as many:
        await sb.table(table).select("id").eq("n", 20).single().execute()
    assert many.value.code == "PGRST116" and many.value.details == "The result contains 2 rows"
    assert await sb.table(table).select("id").eq("id", 99).maybe_single().execute() is None
    r = await raw(
        devstack.env,
        "GET",
        f"/{table}",
        params={"id": "eq.99"},
        headers={"Accept": "application/vnd.pgrst.object+json"},
    )
    assert r.status_code == 406


async def test_unknown_table_column_and_operator(devstack: StackHandle, table: str) -> None:
    sb = await client(devstack.env)
    with pytest.raises(APIError) as missing:
        await sb.table(table + "x").select("*").execute()
    assert missing.value.code == "PGRST205"
    assert missing.value.message == f"Could not find the table 'public.{table}x' in the schema cache"
    assert missing.value.hint == f"Perhaps you meant the table 'public.{table}'"
    with pytest.raises(APIError) as column:
        await sb.table(table).select("id,nam").execute()
    assert column.value.code == "42703" and column.value.message == f"column {table}.nam does not exist"
    with pytest.raises(APIError) as bad_value:
        await sb.table(table).select("id").eq("id", "abc").execute()
    assert bad_value.value.code == "22P02"
    r = await raw(devstack.env, "GET", f"/{table}", params={"id": "eqq.1", "name": "not.wat.x"})
    assert r.status_code == 400 and r.json()["code"] == "PGRST100"
    r = await raw(devstack.env, "GET", f"/{table}", params={"select": "id,other(*)"})
    assert r.status_code == 400 and r.json()["code"] == "PGRST200"


async def test_profiles_pick_the_schema_and_unexposed_ones_are_refused(devstack: StackHandle, table: str) -> None:
    sb = await client(devstack.env)
    with pytest.raises(APIError) as other:
        await sb.schema("graphql_public").table(table).select("*").execute()
    assert other.value.code == "PGRST205"
    with pytest.raises(APIError) as hidden:
        await sb.schema("auth").table("users").select("*").execute()
    assert hidden.value.code == "PGRST106"
    assert hidden.value.hint == "Only the following schemas are exposed: public, graphql_public"
    r = await raw(devstack.env, "GET", f"/{table}", params={"select": "id"}, headers={"Accept-Profile": "public"})
    assert r.status_code == 200 and r.headers["content-profile"] == "public"
    r = await raw(devstack.env, "GET", f"/{table}", headers={"Accept-Profile": "private"})
    assert r.status_code == 406 and r.json()["code"] == "PGRST106"


async def test_unsupported_media_type_is_406(devstack: StackHandle, table: str) -> None:
    r = await raw(devstack.env, "GET", f"/{table}", headers={"Accept": "application/xml"})
    assert r.status_code == 406 and r.json()["code"] == "PGRST107"


async def test_root_serves_an_openapi_description(devstack: StackHandle, table: str) -> None:
    r = await raw(devstack.env, "GET", "/")
    assert r.status_code == 200
    doc = r.json()
    assert doc["swagger"] == "2.0"
    assert f"/{table}" in doc["paths"]
    assert doc["definitions"][table]["properties"]["score"]["format"] == "numeric"


async def test_concurrent_requests_share_the_pool(devstack: StackHandle, table: str) -> None:
    sb = await client(devstack.env)
    results = await asyncio.gather(*(sb.table(table).select("id").eq("id", i % 5 + 1).execute() for i in range(60)))
    assert [r.data for r in results] == [[{"id": i % 5 + 1}] for i in range(60)]


async def test_odd_identifiers_and_types(devstack: StackHandle, db: asyncpg.Connection) -> None:
    t = f"Rest Odd {unique()}"
    mood = unique("rest_mood")
    await db.execute(
        f"""
        create type public.{mood} as enum ('sad', 'ok', 'happy');
        create table public."{t}" (
          "Id" uuid primary key, "Camel Case" text, state public.{mood}, code char(3), "we""ird" int
        );
        grant select, insert on public."{t}" to anon;
        """
    )
    try:
        sb = await client(devstack.env)
        a, b = str(uuid.uuid4()), str(uuid.uuid4())
        rows = [
            {"Id": a, "Camel Case": "x", "state": "happy", "code": "ab", 'we"ird': 1},
            {"Id": b, "Camel Case": "y", "state": "sad", "code": "abc", 'we"ird': 2},
        ]
        await sb.table(t).insert(rows).execute()
        assert (await sb.table(t).select('"Camel Case"').eq("state", "happy").execute()).data == [{"Camel Case": "x"}]
        res = await sb.table(t).select("Id").in_("Id", [a, str(uuid.uuid4())]).gt("state", "sad").execute()
        assert res.data == [{"Id": a}]
        assert (await sb.table(t).select("code").eq("code", "abc").execute()).data == [{"code": "abc"}]
        res = await sb.table(t).select('w:"we\\"ird"').eq('we"ird', 2).execute()
        assert res.data == [{"w": 2}]
    finally:
        await db.execute(f'drop table if exists public."{t}"; drop type if exists public.{mood}')

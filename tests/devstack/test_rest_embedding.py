"""REST emulator, resource embedding: to-one, to-many, one-to-one, many-to-many, hints, !inner/!left, aliases,
filters/order/limit on embedded resources, spreads, computed fields and relationships, aggregates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace

import asyncpg
import pytest
from postgrest.exceptions import APIError

from devstack.cluster import SUPERUSER
from tests.conftest import StackHandle
from tests.devstack.test_rest_support import client, raw, unique


@pytest.fixture(scope="module")
async def geo(devstack: StackHandle) -> AsyncIterator[SimpleNamespace]:
    p = unique("rest_emb")
    n = SimpleNamespace(
        country=f"{p}_country", city=f"{p}_city", capital=f"{p}_capital", lang=f"{p}_lang", spoken=f"{p}_spoken",
        person=f"{p}_person", label=f"{p}_label", big=f"{p}_big", fk_best=f"{p}_best_fk", fk_worst=f"{p}_worst_fk",
        cities_of=f"{p}_cities_of", view=f"{p}_big_cities", city_by_id=f"{p}_city_by_id",
    )  # fmt: skip
    conn = await asyncpg.connect(devstack.env.database_url)
    try:
        await conn.execute(
            f"""
            create table public.{n.country} (id int primary key, name text not null, population int);
            create table public.{n.city} (id int primary key, name text not null,
              country_id int not null references public.{n.country});
            create table public.{n.capital} (id int primary key, name text not null,
              country_id int not null unique references public.{n.country});
            create table public.{n.lang} (id int primary key, name text not null);
            create table public.{n.spoken} (country_id int references public.{n.country},
              lang_id int references public.{n.lang}, primary key (country_id, lang_id));
            create table public.{n.person} (id int primary key, name text,
              best_id int constraint {n.fk_best} references public.{n.person},
              worst_id int constraint {n.fk_worst} references public.{n.person});
            insert into public.{n.country} values (1, 'France', 68), (2, 'Spain', 48), (3, 'Iceland', null);
            insert into public.{n.city} values
              (1, 'Paris', 1), (2, 'Lyon', 1), (3, 'Nice', 1), (4, 'Madrid', 2), (5, 'Seville', 2);
            insert into public.{n.capital} values (1, 'Paris', 1), (2, 'Madrid', 2);
            insert into public.{n.lang} values (1, 'French'), (2, 'Spanish'), (3, 'Basque'), (4, 'Icelandic');
            insert into public.{n.spoken} values (1, 1), (2, 2), (2, 3), (3, 4);
            insert into public.{n.person} values (1, 'Ann', null, null), (2, 'Bob', 1, null), (3, 'Cy', 1, 2);
            create function public.{n.label}(c public.{n.country}) returns text language sql stable as
              $$ select c.name || ' (' || c.id || ')' $$;
            create function public.{n.big}(c public.{n.country}) returns setof public.{n.city}
              language sql stable as $$ select * from public.{n.city} where country_id = c.id and id % 2 = 1 $$;
            create function public.{n.cities_of}(cid int) returns setof public.{n.city} language sql stable as
              $$ select * from public.{n.city} where country_id = cid order by id $$;
            create function public.{n.city_by_id}(i int) returns public.{n.city} language sql stable as
              $$ select * from public.{n.city} where id = i $$;
            create view public.{n.view} as select id, name, country_id from public.{n.city} where id % 2 = 1;
            grant select on public.{n.view} to anon;
            grant select on public.{n.country}, public.{n.city}, public.{n.capital}, public.{n.lang},
              public.{n.spoken}, public.{n.person} to anon, authenticated, service_role;
            grant insert on public.{n.city} to anon;
            """
        )
        yield n
    finally:
        await conn.execute(
            f"drop view if exists public.{n.view}; drop table if exists public.{n.spoken}, public.{n.lang}, "
            f"public.{n.capital}, public.{n.city}, public.{n.person}, public.{n.country} cascade"
        )
        await conn.close()


async def select(env: StackHandle, table: str, columns: str, **params: str) -> list[dict[str, object]]:
    r = await raw(env.env, "GET", f"/{table}", params={"select": columns, **params})
    assert r.status_code == 200, r.text
    data = r.json()
    assert isinstance(data, list)
    return data


async def test_many_to_one_and_one_to_many(devstack: StackHandle, geo: SimpleNamespace) -> None:
    sb = await client(devstack.env)
    res = await sb.table(geo.city).select(f"name, {geo.country}(name)").eq("id", 4).execute()
    assert res.data == [{"name": "Madrid", geo.country: {"name": "Spain"}}]
    res = await sb.table(geo.country).select(f"name, {geo.city}(name)").order("id").execute()
    assert res.data == [
        {"name": "France", geo.city: [{"name": "Paris"}, {"name": "Lyon"}, {"name": "Nice"}]},
        {"name": "Spain", geo.city: [{"name": "Madrid"}, {"name": "Seville"}]},
        {"name": "Iceland", geo.city: []},
    ]


async def test_one_to_one_is_an_object_and_many_to_many_goes_through_the_junction(
    devstack: StackHandle, geo: SimpleNamespace
) -> None:
    rows = await select(devstack, geo.country, f"name,cap:{geo.capital}(name),{geo.lang}(name)", order="id")
    assert rows == [
        {"name": "France", "cap": {"name": "Paris"}, geo.lang: [{"name": "French"}]},
        {"name": "Spain", "cap": {"name": "Madrid"}, geo.lang: [{"name": "Spanish"}, {"name": "Basque"}]},
        {"name": "Iceland", "cap": None, geo.lang: [{"name": "Icelandic"}]},
    ]


async def test_inner_and_left_joins(devstack: StackHandle, geo: SimpleNamespace) -> None:
    inner = await select(devstack, geo.country, f"name,{geo.capital}!inner(name)", order="id")
    assert [r["name"] for r in inner] == ["France", "Spain"]
    left = await select(devstack, geo.country, f"name,{geo.capital}!left(name)", order="id")
    assert [r["name"] for r in left] == ["France", "Spain", "Iceland"]
    # a filter on an !inner embed filters the parents; without !inner it only filters the embedded rows
    only = await select(devstack, geo.country, f"name,{geo.city}!inner(name)", **{f"{geo.city}.name": "eq.Lyon"})
    assert only == [{"name": "France", geo.city: [{"name": "Lyon"}]}]
    every = await select(devstack, geo.country, f"name,{geo.city}(name)", **{f"{geo.city}.name": "eq.Lyon"})
    assert [len(r[geo.city]) for r in every] == [1, 0, 0]  # type: ignore[arg-type]
    # `embed=not.is.null` is the same as !inner; an empty embed filters without adding a key
    present = await select(devstack, geo.country, f"name,{geo.capital}()", **{geo.capital: "not.is.null"})
    assert present == [{"name": "France"}, {"name": "Spain"}]


async def test_order_limit_and_or_on_embedded_resources(devstack: StackHandle, geo: SimpleNamespace) -> None:
    rows = await select(
        devstack, geo.country, f"name,{geo.city}(name)", id="eq.1",
        **{f"{geo.city}.order": "name.desc", f"{geo.city}.limit": "2"},
    )  # fmt: skip
    assert rows == [{"name": "France", geo.city: [{"name": "Paris"}, {"name": "Nice"}]}]
    rows = await select(
        devstack, geo.country, f"id,{geo.city}(id)", id="eq.1", **{f"{geo.city}.or": "(id.eq.1,id.eq.3)"}
    )
    assert rows == [{"id": 1, geo.city: [{"id": 1}, {"id": 3}]}]
    # order by a column of a to-one embed
    rows = await select(devstack, geo.city, f"name,{geo.country}(name)", order=f"{geo.country}(name).desc,name")
    assert [r["name"] for r in rows] == ["Madrid", "Seville", "Lyon", "Nice", "Paris"]


async def test_hints_aliases_and_ambiguity(devstack: StackHandle, geo: SimpleNamespace) -> None:
    rows = await select(devstack, geo.person, f"name,best:{geo.fk_best}(name),worst:worst_id(name)", order="id")
    assert rows == [
        {"name": "Ann", "best": None, "worst": None},
        {"name": "Bob", "best": {"name": "Ann"}, "worst": None},
        {"name": "Cy", "best": {"name": "Ann"}, "worst": {"name": "Bob"}},
    ]
    fans = await select(devstack, geo.person, f"name,fans:{geo.person}!best_id(name)", id="eq.1")
    assert fans == [{"name": "Ann", "fans": [{"name": "Bob"}, {"name": "Cy"}]}]
    # a constraint name embeds from either side: one-to-many from the referenced table
    cities = await select(devstack, geo.country, f"name,c:{geo.city}_country_id_fkey(name)", id="eq.2")
    assert cities == [{"name": "Spain", "c": [{"name": "Madrid"}, {"name": "Seville"}]}]
    r = await raw(devstack.env, "GET", f"/{geo.person}", params={"select": f"name,{geo.person}(name)"})
    assert r.status_code == 300 and r.json()["code"] == "PGRST201"
    # as in PostgREST, a self-reference is hinted by its column, not by its constraint name
    r = await raw(devstack.env, "GET", f"/{geo.person}", params={"select": f"name,{geo.person}!{geo.fk_best}(name)"})
    assert r.status_code == 400 and r.json()["code"] == "PGRST200"
    r = await raw(devstack.env, "GET", f"/{geo.country}", params={"select": "name,nowhere(name)"})
    assert r.status_code == 400 and r.json()["code"] == "PGRST200"


async def test_spreads(devstack: StackHandle, geo: SimpleNamespace) -> None:
    rows = await select(devstack, geo.city, f"name,...{geo.country}(country:name)", id="in.(1,4)", order="id")
    assert rows == [{"name": "Paris", "country": "France"}, {"name": "Madrid", "country": "Spain"}]
    many = await select(devstack, geo.country, f"name,...{geo.city}(city:name)", id="eq.2")
    assert many == [{"name": "Spain", "city": ["Madrid", "Seville"]}]


async def test_computed_fields_and_computed_relationships(devstack: StackHandle, geo: SimpleNamespace) -> None:
    rows = await select(devstack, geo.country, f"id,{geo.label}", **{geo.label: "eq.Spain (2)"})
    assert rows == [{"id": 2, geo.label: "Spain (2)"}]
    rows = await select(devstack, geo.country, f"name,{geo.big}(name)", id="eq.1")
    assert rows == [{"name": "France", geo.big: [{"name": "Paris"}, {"name": "Nice"}]}]


async def test_function_results_embed_like_their_table(devstack: StackHandle, geo: SimpleNamespace) -> None:
    r = await raw(
        devstack.env, "POST", f"/rpc/{geo.cities_of}", json={"cid": 2},
        params={"select": f"name,{geo.country}(name,{geo.label})", "name": "like.S*"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json() == [{"name": "Seville", geo.country: {"name": "Spain", geo.label: "Spain (2)"}}]
    # one row (not SETOF): an object, and `null` when a filter removes it
    r = await raw(
        devstack.env, "POST", f"/rpc/{geo.city_by_id}", json={"i": 4}, params={"select": f"name,{geo.country}(name)"}
    )
    assert r.status_code == 200 and r.json() == {"name": "Madrid", geo.country: {"name": "Spain"}}
    r = await raw(devstack.env, "POST", f"/rpc/{geo.city_by_id}", json={"i": 4}, params={"name": "eq.nope"})
    assert r.status_code == 200 and r.json() is None
    r = await raw(devstack.env, "POST", f"/rpc/{geo.cities_of}", json={"cid": 2}, params={"name": "Madrid"})
    assert r.status_code == 400 and r.json()["code"] == "PGRST100"  # an unknown filter on POST RPC too


async def test_relationships_through_a_view_of_one_table(devstack: StackHandle, geo: SimpleNamespace) -> None:
    rows = await select(devstack, geo.view, f"name,{geo.country}(name)", order="id")
    assert rows == [
        {"name": "Paris", geo.country: {"name": "France"}},
        {"name": "Nice", geo.country: {"name": "France"}},
        {"name": "Seville", geo.country: {"name": "Spain"}},
    ]
    rows = await select(devstack, geo.country, f"name,{geo.view}(name)", id="eq.2")
    assert rows == [{"name": "Spain", geo.view: [{"name": "Seville"}]}]


async def test_insert_returns_the_embedded_resources(devstack: StackHandle, geo: SimpleNamespace) -> None:
    r = await raw(
        devstack.env, "POST", f"/{geo.city}", params={"select": f"name,{geo.country}(name)"},
        json={"id": 99, "name": "Akureyri", "country_id": 3},
        headers={"Prefer": "return=representation,tx=rollback"},
    )  # fmt: skip
    assert r.status_code == 201 and r.json() == [{"name": "Akureyri", geo.country: {"name": "Iceland"}}]


async def test_aggregates_need_pgrst_db_aggregates_enabled(devstack: StackHandle, geo: SimpleNamespace) -> None:
    r = await raw(devstack.env, "GET", f"/{geo.city}", params={"select": "count()"})
    assert r.status_code == 400 and r.json()["code"] == "PGRST123"
    if devstack.stack is None:
        pytest.skip("enabling aggregates needs the stack's superuser")
    admin = await asyncpg.connect(devstack.stack.cluster.dsn(SUPERUSER))
    try:
        await admin.execute("alter role authenticator set pgrst.db_aggregates_enabled to 'true'")
        for _ in range(80):  # the emulator re-reads the role setting within a few seconds
            r = await raw(devstack.env, "GET", f"/{geo.city}", params={"select": "country_id,count(),id.sum()"})
            if r.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert sorted(r.json(), key=lambda x: x["country_id"]) == [
            {"country_id": 1, "count": 3, "sum": 6},
            {"country_id": 2, "count": 2, "sum": 9},
        ]
        rows = await select(devstack, geo.country, f"name,{geo.city}(count)", id="eq.1")
        assert rows == [{"name": "France", geo.city: [{"count": 3}]}]
    finally:
        await admin.execute("alter role authenticator reset pgrst.db_aggregates_enabled")
        await admin.close()


async def test_embedding_through_supabase_py_errors_are_api_errors(devstack: StackHandle, geo: SimpleNamespace) -> None:
    sb = await client(devstack.env)
    with pytest.raises(APIError) as err:
        await sb.table(geo.country).select("name, missing_table(name)").execute()
    assert err.value.code == "PGRST200"


async def test_a_foreign_key_created_just_now_is_embeddable(devstack: StackHandle, geo: SimpleNamespace) -> None:
    await select(devstack, geo.country, f"name,{geo.city}(name)")  # the relationships are cached now
    a, b = unique("rest_new"), unique("rest_new")
    conn = await asyncpg.connect(devstack.env.database_url)
    try:
        await conn.execute(
            f"""
            create table public.{a} (id int primary key);
            create table public.{b} (id int primary key, a_id int references public.{a});
            insert into public.{a} values (1); insert into public.{b} values (7, 1);
            grant select on public.{a}, public.{b} to anon;
            """
        )
        assert await select(devstack, a, f"id,{b}(id)") == [{"id": 1, b: [{"id": 7}]}]
    finally:
        await conn.execute(f"drop table if exists public.{b}, public.{a}")
        await conn.close()

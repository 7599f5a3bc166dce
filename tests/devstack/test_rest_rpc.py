"""REST emulator, RPC: named arguments, overloads, result shapes, GET calls, errors raised in functions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import asyncpg
import pytest
from postgrest.exceptions import APIError

from tests.conftest import StackHandle
from tests.devstack.test_rest_support import client, raw, unique


@pytest.fixture(scope="module")
async def fns(devstack: StackHandle) -> AsyncIterator[SimpleNamespace]:
    p = unique("rest_fn")
    n = SimpleNamespace(
        add=f"{p}_add", over=f"{p}_over", echo=f"{p}_echo", row=f"{p}_row", rows=f"{p}_rows", tbl=f"{p}_tbl",
        nums=f"{p}_nums", void=f"{p}_void", fail=f"{p}_fail", pay=f"{p}_pay", bad=f"{p}_bad", amb=f"{p}_amb",
        t=f"{p}_t", custom=f"{p}_custom", arr=f"{p}_arr", none=f"{p}_none",
    )  # fmt: skip
    conn = await asyncpg.connect(devstack.env.database_url)
    try:
        await conn.execute(
            f"""
            create table public.{n.t} (id int primary key, label text, score int);
            insert into public.{n.t} values (1, 'one', 10), (2, 'two', 20), (3, 'three', null);
            grant select on public.{n.t} to anon, authenticated, service_role;

            create function public.{n.add}(a int, b int default 10) returns int
              language sql immutable as $$ select a + b $$;
            create function public.{n.over}(x int) returns text language sql as $$ select 'int:' || x $$;
            create function public.{n.over}(x int, y text) returns text language sql as $$ select 'pair:' || x || y $$;
            create function public.{n.over}(label text) returns text language sql as $$ select 'label:' || label $$;
            create function public.{n.echo}(json) returns json language sql as $$ select $1 $$;
            create function public.{n.row}(i int) returns public.{n.t} language sql stable as
              $$ select * from public.{n.t} where id = i $$;
            create function public.{n.rows}(min_id int default 0) returns setof public.{n.t} language sql stable as
              $$ select * from public.{n.t} where id >= min_id order by id $$;
            create function public.{n.tbl}() returns table(x int, y text) language sql as
              $$ values (1, 'a'), (2, 'b'), (3, 'c') $$;
            create function public.{n.nums}(upto int) returns setof int language sql as
              $$ select generate_series(1, upto) $$;
            create function public.{n.none}() returns text language sql as $$ select null::text $$;
            create function public.{n.void}() returns void language sql as $$ select $$;
            create function public.{n.arr}(ids int[], meta jsonb, at timestamptz) returns jsonb language sql as
              $$ select jsonb_build_object('n', cardinality(ids), 'meta', meta, 'year', extract(year from at)) $$;
            create function public.{n.fail}(msg text) returns int language plpgsql as
              $$ begin raise exception '%', msg using detail = 'some detail', hint = 'some hint'; end $$;
            create function public.{n.pay}() returns int language plpgsql as
              $$ begin raise sqlstate 'PT402' using message = 'Payment Required'; end $$;
            create function public.{n.bad}(v text) returns int language plpgsql as
              $$ begin raise exception using errcode = '22023', message = 'bad value: ' || v; end $$;
            create function public.{n.custom}() returns int language plpgsql as $$ begin
              raise sqlstate 'PGRST' using message = '{{"code":"X1","message":"teapot","details":"d","hint":"h"}}',
                                           detail = '{{"status":418,"headers":{{"X-Custom":"yes"}}}}';
            end $$;
            create function public.{n.amb}(a int) returns int language sql as $$ select 1 $$;
            create function public.{n.amb}(a text) returns int language sql as $$ select 2 $$;
            """
        )
        yield n
    finally:
        await conn.execute(
            f"drop table public.{n.t} cascade; "
            + "".join(
                f"drop function if exists public.{f} cascade; "
                for f in (n.add, n.echo, n.row, n.rows, n.tbl, n.nums, n.none, n.void, n.arr, n.fail, n.pay)
            )
            + f"drop function public.{n.bad}, public.{n.custom}, public.{n.over}(int), public.{n.over}(int, text), "
            + f"public.{n.over}(text), public.{n.amb}(int), public.{n.amb}(text);"
        )
        await conn.close()


async def test_named_arguments_and_defaults(devstack: StackHandle, fns: SimpleNamespace) -> None:
    sb = await client(devstack.env)
    assert (await sb.rpc(fns.add, {"a": 1, "b": 2}).execute()).data == 3
    assert (await sb.rpc(fns.add, {"a": 1}).execute()).data == 11
    assert (await sb.rpc(fns.add, {"a": 5}, get=True).execute()).data == 15
    assert (await sb.rpc(fns.none, {}).execute()).data is None


async def test_overloads_are_picked_by_argument_names(devstack: StackHandle, fns: SimpleNamespace) -> None:
    sb = await client(devstack.env)
    assert (await sb.rpc(fns.over, {"x": 4}).execute()).data == "int:4"
    assert (await sb.rpc(fns.over, {"x": 4, "y": "z"}).execute()).data == "pair:4z"
    assert (await sb.rpc(fns.over, {"label": "L"}).execute()).data == "label:L"
    with pytest.raises(APIError) as ambiguous:
        await sb.rpc(fns.amb, {"a": 1}).execute()
    assert ambiguous.value.code == "PGRST203"


async def test_single_unnamed_json_parameter_receives_the_whole_body(
    devstack: StackHandle, fns: SimpleNamespace
) -> None:
    sb = await client(devstack.env)
    body = {"anything": [1, 2, {"deep": True}], "n": 1.25}
    assert (await sb.rpc(fns.echo, body).execute()).data == body


async def test_result_shapes(devstack: StackHandle, fns: SimpleNamespace) -> None:
    sb = await client(devstack.env)
    assert (await sb.rpc(fns.row, {"i": 2}).execute()).data == {"id": 2, "label": "two", "score": 20}
    assert [r["id"] for r in (await sb.rpc(fns.rows, {"min_id": 2}).execute()).data] == [2, 3]
    assert (await sb.rpc(fns.tbl, {}).execute()).data == [{"x": 1, "y": "a"}, {"x": 2, "y": "b"}, {"x": 3, "y": "c"}]
    assert (await sb.rpc(fns.nums, {"upto": 3}).execute()).data == [1, 2, 3]
    void = await sb.rpc(fns.void, {}).execute()
    assert void.data == []
    r = await raw(devstack.env, "POST", f"/rpc/{fns.void}", json={})
    assert r.status_code == 204 and r.content == b""
    r = await raw(devstack.env, "POST", f"/rpc/{fns.add}", json={"a": 1})
    assert r.status_code == 200 and r.json() == 11


async def test_arrays_json_and_timestamps_as_arguments(devstack: StackHandle, fns: SimpleNamespace) -> None:
    sb = await client(devstack.env)
    args = {"ids": [1, 2, 3], "meta": {"k": [1]}, "at": "2031-05-06T07:08:09+00:00"}
    assert (await sb.rpc(fns.arr, args).execute()).data == {"n": 3, "meta": {"k": [1]}, "year": 2031}
    res = await sb.rpc(fns.arr, {"ids": [4, 5], "meta": {"a": 1}, "at": "2030-01-01T00:00:00Z"}, get=True).execute()
    assert res.data == {"n": 2, "meta": {"a": 1}, "year": 2030}


async def test_filters_order_limit_select_and_count_on_set_results(devstack: StackHandle, fns: SimpleNamespace) -> None:
    sb = await client(devstack.env)
    res = await sb.rpc(fns.rows, {}).select("id,label").gte("id", 2).order("id", desc=True).execute()
    assert res.data == [{"id": 3, "label": "three"}, {"id": 2, "label": "two"}]
    res = await sb.rpc(fns.tbl, {}, count="exact").limit(1).execute()
    assert res.data == [{"x": 1, "y": "a"}] and res.count == 3
    res = await sb.rpc(fns.rows, {"min_id": 1}, get=True).is_("score", None).execute()
    assert [r["id"] for r in res.data] == [3]
    single = await sb.rpc(fns.rows, {}).eq("id", 1).single().execute()
    assert single.data["label"] == "one"
    with pytest.raises(APIError) as many:
        await sb.rpc(fns.rows, {}).single().execute()
    assert many.value.code == "PGRST116"
    head = await sb.rpc(fns.tbl, {}, count="exact", head=True).execute()
    assert head.count == 3


async def test_unknown_function_or_arguments_are_pgrst202(devstack: StackHandle, fns: SimpleNamespace) -> None:
    sb = await client(devstack.env)
    with pytest.raises(APIError) as missing:
        await sb.rpc(fns.add + "x", {"a": 1}).execute()
    err = missing.value
    assert err.code == "PGRST202"
    assert err.message == f"Could not find the function public.{fns.add}x(a) in the schema cache"
    assert err.hint == f"Perhaps you meant to call the function public.{fns.add}"
    with pytest.raises(APIError) as wrong_args:
        await sb.rpc(fns.add, {"a": 1, "c": 2}).execute()
    assert wrong_args.value.code == "PGRST202"
    assert wrong_args.value.details == (
        f"Searched for the function public.{fns.add} with parameters a, c or with a single unnamed json/jsonb "
        "parameter, but no matches were found in the schema cache."
    )
    with pytest.raises(APIError) as missing_required:
        await sb.rpc(fns.add, {}).execute()
    assert missing_required.value.code == "PGRST202"
    r = await raw(devstack.env, "POST", f"/rpc/{fns.add}x", json={})
    assert r.status_code == 404


async def test_raised_errors_map_to_postgrest_statuses(devstack: StackHandle, fns: SimpleNamespace) -> None:
    sb = await client(devstack.env)
    with pytest.raises(APIError) as raised:
        await sb.rpc(fns.fail, {"msg": "nope"}).execute()
    assert (raised.value.code, raised.value.message, raised.value.details, raised.value.hint) == (
        "P0001",
        "nope",
        "some detail",
        "some hint",
    )
    with pytest.raises(APIError) as invalid:
        await sb.rpc(fns.bad, {"v": "x"}).execute()
    assert invalid.value.code == "22023" and invalid.value.message == "bad value: x"
    statuses = {
        fns.fail: ({"msg": "m"}, 400),
        fns.bad: ({"v": "x"}, 400),
        fns.pay: ({}, 402),
    }
    for fn, (args, status) in statuses.items():
        r = await raw(devstack.env, "POST", f"/rpc/{fn}", json=args)
        assert r.status_code == status, fn
    r = await raw(devstack.env, "POST", f"/rpc/{fns.custom}", json={})
    assert r.status_code == 418 and r.headers["x-custom"] == "yes"
    assert r.json() == {"code": "X1", "message": "teapot", "details": "d", "hint": "h"}


async def test_rpc_only_allows_get_head_and_post(devstack: StackHandle, fns: SimpleNamespace) -> None:
    r = await raw(devstack.env, "PATCH", f"/rpc/{fns.add}", json={"a": 1})
    assert r.status_code == 405 and r.json()["code"] == "PGRST101"

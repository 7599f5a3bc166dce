"""REST emulator parity with PostgREST: no silent wrong answers (unknown filters are errors), quantified
operators, upsert status codes, CSV, planned/estimated counts, exposed schemas from config.toml, unnamed-parameter
functions, defaults evaluated per row, and the API key on the OpenAPI root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import asyncpg
import pytest

from devstack.rest.config import RestSettings
from tests.conftest import StackHandle
from tests.devstack.test_rest_support import raw, unique


@pytest.fixture(scope="module")
async def objs(devstack: StackHandle) -> AsyncIterator[SimpleNamespace]:
    p = unique("rest_par")
    n = SimpleNamespace(
        t=f"{p}_t", seq=f"{p}_seq", txt=f"{p}_txt", js=f"{p}_js", intu=f"{p}_intu", hidden=f"_{p}_hidden",
        trig=f"{p}_trig", guard=f"{p}_guard",
    )  # fmt: skip
    conn = await asyncpg.connect(devstack.env.database_url)
    try:
        await conn.execute(
            f"""
            create table public.{n.t} (id int primary key, name text not null);
            insert into public.{n.t} values (1, 'Afghanistan'), (2, 'Albania'), (3, 'Algeria'), (4, 'Spain'),
              (5, 'a,b "q"');
            grant select, insert, update, delete on public.{n.t} to anon, authenticated, service_role;
            create table public.{n.seq} (id serial primary key, name text not null default 'none');
            grant select, insert on public.{n.seq} to anon;
            grant usage on sequence public.{n.seq}_id_seq to anon;
            create function public.{n.txt}(text) returns text language sql as $$ select 'got:' || $1 $$;
            create function public.{n.js}(json) returns json language sql as $$ select $1 $$;
            create function public.{n.intu}(int) returns int language sql as $$ select $1 $$;
            create function public.{n.hidden}() returns int language sql as $$ select 1 $$;
            create function public.{n.trig}() returns trigger language plpgsql as $$ begin return new; end $$;
            create function public.{n.guard}(ok boolean default false) returns void language plpgsql stable as $$
              begin if not ok then raise exception 'refused by the guard' using errcode = 'P0001'; end if; end $$;
            grant execute on function public.{n.guard}(boolean) to anon;
            """
        )
        yield n
    finally:
        await conn.execute(
            f"drop table if exists public.{n.t}, public.{n.seq}; drop function if exists public.{n.txt}(text), "
            f"public.{n.js}(json), public.{n.intu}(int), public.{n.hidden}(), public.{n.trig}(), "
            f"public.{n.guard}(boolean)"
        )
        await conn.close()


@pytest.mark.parametrize("value", ["equals.1", "Albania", "like(some).{A*}", "not.equals.1", "gt(both).{1}"])
async def test_unknown_operators_are_pgrst100_on_tables(
    devstack: StackHandle, objs: SimpleNamespace, value: str
) -> None:
    r = await raw(devstack.env, "GET", f"/{objs.t}", params={"name": value})
    assert r.status_code == 400 and r.json()["code"] == "PGRST100", r.text


async def test_a_delete_with_an_unknown_filter_deletes_nothing(devstack: StackHandle, objs: SimpleNamespace) -> None:
    r = await raw(devstack.env, "DELETE", f"/{objs.t}", params={"id": "eq.2", "name": "Albania"})
    assert r.status_code == 400 and r.json()["code"] == "PGRST100"
    r = await raw(devstack.env, "GET", f"/{objs.t}", params={"select": "id", "order": "id"})
    assert [row["id"] for row in r.json()] == [1, 2, 3, 4, 5]


async def test_quantified_operators(devstack: StackHandle, objs: SimpleNamespace) -> None:
    async def names(**params: str) -> list[str]:
        r = await raw(devstack.env, "GET", f"/{objs.t}", params={"select": "name", "order": "id", **params})
        assert r.status_code == 200, r.text
        return [row["name"] for row in r.json()]

    assert await names(name="like(all).{A*,*n}") == ["Afghanistan"]
    assert await names(name="like(any).{Al*,*ain}") == ["Albania", "Algeria", "Spain"]
    assert await names(name="ilike(all).{a*,*A}") == ["Albania", "Algeria"]
    assert await names(id="eq(any).{1,4}") == ["Afghanistan", "Spain"]
    assert await names(id="not.lt(all).{3,4}") == ["Algeria", "Spain", 'a,b "q"']
    assert await names(**{"or": "(id.gt(all).{3,4},name.eq(any).{Albania})"}) == ["Albania", 'a,b "q"']


async def test_upsert_that_only_updates_answers_200(devstack: StackHandle, objs: SimpleNamespace) -> None:
    merge = {"Prefer": "resolution=merge-duplicates,return=representation,tx=rollback"}
    r = await raw(devstack.env, "POST", f"/{objs.t}", json=[{"id": 1, "name": "X"}], headers=merge)
    assert r.status_code == 200 and r.json() == [{"id": 1, "name": "X"}]
    r = await raw(
        devstack.env, "POST", f"/{objs.t}", json=[{"id": 1, "name": "X"}, {"id": 9, "name": "Y"}], headers=merge
    )
    assert r.status_code == 201
    minimal = {"Prefer": "resolution=merge-duplicates,return=minimal,tx=rollback"}
    r = await raw(devstack.env, "POST", f"/{objs.t}", json={"id": 2, "name": "Z"}, headers=minimal)
    assert r.status_code == 200 and r.content == b""
    r = await raw(devstack.env, "POST", f"/{objs.t}", json={"id": 10, "name": "Z"}, headers=minimal)
    assert r.status_code == 201


async def test_csv_output(devstack: StackHandle, objs: SimpleNamespace) -> None:
    r = await raw(
        devstack.env, "GET", f"/{objs.t}", params={"select": "id,name", "id": "in.(2,5)", "order": "id"},
        headers={"Accept": "text/csv"},
    )  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text == 'id,name\n2,Albania\n5,"a,b ""q"""'
    r = await raw(devstack.env, "POST", f"/{objs.t}", json={"id": 7, "name": "n"}, headers={"Accept": "text/csv"})
    assert r.status_code == 406  # CSV is for reads only here


async def test_planned_and_estimated_counts(devstack: StackHandle, objs: SimpleNamespace) -> None:
    for count in ("planned", "estimated", "exact"):
        r = await raw(devstack.env, "GET", f"/{objs.t}", params={"limit": "1"}, headers={"Prefer": f"count={count}"})
        assert r.status_code in (200, 206), r.text
        total = r.headers["content-range"].split("/")[1]
        assert total.isdigit(), r.headers["content-range"]
        if count != "planned":  # small result: estimated is the exact count
            assert int(total) == 5


def test_exposed_schemas_come_from_config_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[api]\nschemas = ["public", "other"]\nextra_search_path = ["public"]\nmax_rows = 50\n')
    settings = RestSettings.from_config(cfg)
    assert settings.schemas == ("public", "other") and settings.max_rows == 50
    assert RestSettings.from_config(tmp_path / "missing.toml") == RestSettings()
    cfg.write_text("[api]\nschemas = []\n")
    with pytest.raises(ValueError):
        RestSettings.from_config(cfg)


async def test_unexposed_schema_is_pgrst106(devstack: StackHandle, objs: SimpleNamespace) -> None:
    r = await raw(devstack.env, "GET", f"/{objs.t}", headers={"Accept-Profile": "auth"})
    assert r.status_code == 406 and r.json()["code"] == "PGRST106"
    r = await raw(devstack.env, "POST", f"/{objs.t}", json={"id": 8, "name": "n"}, headers={"Content-Profile": "x"})
    assert r.status_code == 406 and r.json()["code"] == "PGRST106"


async def test_functions_with_one_unnamed_parameter(devstack: StackHandle, objs: SimpleNamespace) -> None:
    r = await raw(devstack.env, "POST", f"/rpc/{objs.js}", json={"a": [1, 2]})
    assert r.status_code == 200 and r.json() == {"a": [1, 2]}
    r = await raw(devstack.env, "POST", f"/rpc/{objs.txt}", json={"": "x"})
    assert r.status_code == 200 and r.json() == 'got:{"":"x"}'
    r = await raw(devstack.env, "POST", f"/rpc/{objs.txt}", content=b"plain", headers={"Content-Type": "text/plain"})
    assert r.status_code == 200 and r.json() == "got:plain"
    # an unnamed int parameter cannot be called through the API: not found, no SQL error leaks
    r = await raw(devstack.env, "POST", f"/rpc/{objs.intu}", json={"": 1})
    assert r.status_code == 404 and r.json()["code"] == "PGRST202"


async def test_stable_void_functions_run(devstack: StackHandle, objs: SimpleNamespace) -> None:
    """A STABLE function returning void runs like any other (read-only): its exception is the answer."""
    for r in (
        await raw(devstack.env, "POST", f"/rpc/{objs.guard}", json={}),
        await raw(devstack.env, "GET", f"/rpc/{objs.guard}"),
    ):
        assert r.status_code == 400 and r.json()["message"] == "refused by the guard", r.text
    r = await raw(devstack.env, "POST", f"/rpc/{objs.guard}", json={"ok": True})
    assert r.status_code == 204, r.text


async def test_missing_default_evaluates_defaults_for_every_row(devstack: StackHandle, objs: SimpleNamespace) -> None:
    r = await raw(
        devstack.env, "POST", f"/{objs.seq}", params={"columns": "id,name"},
        json=[{"id": 100}, {"name": "b"}],
        headers={"Prefer": "return=representation,missing=default"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    # the serial advanced for the first row too, as `insert ... default values` per row would
    assert r.json() == [{"id": 100, "name": "none"}, {"id": 2, "name": "b"}]


async def test_openapi_root_needs_a_key_and_hides_internals(devstack: StackHandle, objs: SimpleNamespace) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=devstack.env.supabase_url) as http:
        r = await http.get("/rest/v1/")
    assert r.status_code == 401
    assert objs.t not in r.text
    r = await raw(devstack.env, "GET", "/")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert f"/{objs.t}" in paths and f"/rpc/{objs.txt}" in paths
    assert f"/rpc/{objs.hidden}" not in paths and f"/rpc/{objs.trig}" not in paths
    assert not [p for p in paths if p.startswith("/rpc/_") or p.startswith("/_")]


async def test_range_header_selects_rows(devstack: StackHandle, objs: SimpleNamespace) -> None:
    async def ids(range_: str, **params: str) -> tuple[int, list[int], str]:
        r = await raw(
            devstack.env, "GET", f"/{objs.t}", params={"select": "id", "order": "id", **params},
            headers={"Range": range_, "Range-Unit": "items"},
        )  # fmt: skip
        body = r.json()
        return (
            r.status_code,
            [row["id"] for row in body] if isinstance(body, list) else [],
            r.headers.get("content-range", ""),
        )

    assert await ids("1-2") == (200, [2, 3], "1-2/*")
    assert await ids("3-") == (200, [4, 5], "3-4/*")
    assert (await ids("0-9", offset="1", limit="2"))[1] == [2, 3]  # intersected with offset/limit
    assert (await ids("3-1"))[0] == 416

"""REST emulator, who runs the query: JWT verification, roles, RLS, opaque keys, per-request settings, statuses."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace

import asyncpg
import httpx
import jwt
import pytest
from postgrest.exceptions import APIError
from postgrest.types import ReturnMethod

from devstack.keys import DEFAULT_PUBLISHABLE_KEY, DEFAULT_SECRET_KEY
from tests.conftest import StackHandle
from tests.devstack.test_rest_support import client, raw, unique

ALICE = str(uuid.uuid4())
BOB = str(uuid.uuid4())


@pytest.fixture(scope="module")
async def objs(devstack: StackHandle) -> AsyncIterator[SimpleNamespace]:
    p = unique()
    n = SimpleNamespace(
        notes=f"{p}_notes", secret=f"{p}_secret", whoami=f"{p}_whoami", ctx=f"{p}_ctx", inbox=f"{p}_inbox"
    )
    conn = await asyncpg.connect(devstack.env.database_url)
    try:
        await conn.execute(
            f"""
            create table public.{n.notes} (
              id bigint generated always as identity primary key,
              owner uuid not null default auth.uid(),
              body text not null
            );
            alter table public.{n.notes} enable row level security;
            revoke all on public.{n.notes} from anon, authenticated, service_role;
            grant select on public.{n.notes} to anon;
            grant select, insert, update, delete on public.{n.notes} to authenticated, service_role;
            create policy own_select on public.{n.notes} for select to authenticated using (owner = auth.uid());
            create policy own_insert on public.{n.notes} for insert to authenticated with check (owner = auth.uid());
            create policy own_update on public.{n.notes} for update to authenticated using (owner = auth.uid());
            insert into public.{n.notes} (owner, body) values ('{ALICE}', 'alice-1'), ('{ALICE}', 'alice-2'),
                                                              ('{BOB}', 'bob-1');

            create table public.{n.inbox} (id serial primary key, msg text);
            alter table public.{n.inbox} enable row level security;
            grant select, insert on public.{n.inbox} to authenticated;
            grant usage on sequence public.{n.inbox}_id_seq to authenticated;
            create policy drop_box on public.{n.inbox} for insert to authenticated with check (true);

            create table public.{n.secret} (id int);
            revoke all on public.{n.secret} from anon, authenticated, service_role;

            create function public.{n.whoami}() returns jsonb language sql stable as $$
              select jsonb_build_object(
                'user', current_user, 'uid', auth.uid(), 'role', auth.role(),
                'claims', current_setting('request.jwt.claims', true)::jsonb,
                'method', current_setting('request.method', true),
                'path', current_setting('request.path', true),
                'client', current_setting('request.headers', true)::jsonb ->> 'x-client-info',
                'custom', current_setting('request.headers', true)::jsonb ->> 'x-custom',
                'cookies', current_setting('request.cookies', true)::jsonb,
                'search_path', current_setting('search_path'),
                'read_only', current_setting('transaction_read_only'),
                'statement_timeout', current_setting('statement_timeout'),
                'isolation', current_setting('transaction_isolation'),
                'uuid', extensions.uuid_generate_v4() is not null and uuid_generate_v4() is not null
              )
            $$;
            create function public.{n.ctx}() returns text language sql volatile as
              $$ select current_setting('transaction_read_only') $$;
            """
        )
        yield n
    finally:
        await conn.execute(
            f"drop table public.{n.notes}, public.{n.secret}, public.{n.inbox}; "
            f"drop function public.{n.whoami}(), public.{n.ctx}()"
        )
        await conn.close()


async def bodies(sb: object, table: str) -> list[str]:
    res = await sb.table(table).select("body").order("id").execute()  # type: ignore[attr-defined]
    return [r["body"] for r in res.data]


async def test_rls_applies_per_role(devstack: StackHandle, objs: SimpleNamespace) -> None:
    env = devstack.env
    assert await bodies(await client(env), objs.notes) == []  # anon: granted, but no policy
    alice = await client(env, token=devstack.user_token(ALICE))
    assert await bodies(alice, objs.notes) == ["alice-1", "alice-2"]
    bob = await client(env, token=devstack.user_token(BOB))
    assert await bodies(bob, objs.notes) == ["bob-1"]
    service = await client(env, env.service_role_key)
    assert await bodies(service, objs.notes) == ["alice-1", "alice-2", "bob-1"]


async def test_opaque_keys_act_as_their_roles(devstack: StackHandle, objs: SimpleNamespace) -> None:
    secret = await client(devstack.env, DEFAULT_SECRET_KEY)
    assert await bodies(secret, objs.notes) == ["alice-1", "alice-2", "bob-1"]
    who = (await secret.rpc(objs.whoami, {}).execute()).data
    assert who["user"] == "service_role"
    publishable = await client(devstack.env, DEFAULT_PUBLISHABLE_KEY)
    assert await bodies(publishable, objs.notes) == []
    assert (await publishable.rpc(objs.whoami, {}).execute()).data["user"] == "anon"


async def test_writes_through_rls(devstack: StackHandle, objs: SimpleNamespace) -> None:
    alice = await client(devstack.env, token=devstack.user_token(ALICE))
    res = await alice.table(objs.notes).insert({"body": "alice-new"}).execute()
    assert res.data[0]["owner"] == ALICE
    with pytest.raises(APIError) as forged:
        await alice.table(objs.notes).insert({"body": "forged", "owner": BOB}).execute()
    assert forged.value.code == "42501"
    # RLS hides bob's rows from alice's update: nothing matches, nothing changes
    assert (await alice.table(objs.notes).update({"body": "hacked"}).eq("body", "bob-1").execute()).data == []
    # no delete policy: the row is invisible to DELETE
    assert (await alice.table(objs.notes).delete().eq("body", "alice-new").execute()).data == []
    assert "alice-new" in await bodies(alice, objs.notes)


async def test_returning_rows_needs_a_select_policy(devstack: StackHandle, objs: SimpleNamespace) -> None:
    alice = await client(devstack.env, token=devstack.user_token(ALICE))
    minimal = await alice.table(objs.inbox).insert({"msg": "hi"}, returning=ReturnMethod.minimal).execute()
    assert minimal.data == []
    with pytest.raises(APIError) as hidden:
        await alice.table(objs.inbox).insert({"msg": "hi"}).execute()
    assert hidden.value.code == "42501"
    assert (await alice.table(objs.inbox).select("*").execute()).data == []


async def test_insufficient_privilege_is_401_for_anon_and_403_for_users(
    devstack: StackHandle, objs: SimpleNamespace
) -> None:
    env = devstack.env
    r = await raw(env, "POST", f"/{objs.notes}", json={"body": "anon"})
    assert r.status_code == 401 and r.json()["code"] == "42501" and r.headers["www-authenticate"] == "Bearer"
    r = await raw(env, "POST", f"/{objs.notes}", json={"body": "x", "owner": BOB}, token=devstack.user_token(ALICE))
    assert r.status_code == 403 and r.json()["code"] == "42501"
    r = await raw(env, "GET", f"/{objs.secret}", token=devstack.user_token(ALICE))
    assert r.status_code == 403 and r.json()["message"] == f"permission denied for table {objs.secret}"
    r = await raw(env, "GET", f"/{objs.secret}")
    assert r.status_code == 401


async def test_bad_tokens_are_rejected_with_pgrst301(devstack: StackHandle, objs: SimpleNamespace) -> None:
    env = devstack.env
    forged = jwt.encode({"sub": ALICE, "role": "service_role", "exp": int(time.time()) + 60}, "x" * 40, "HS256")
    for token in (forged, "not-a-jwt"):
        sb = await client(env, token=token)
        with pytest.raises(APIError) as bad:
            await sb.table(objs.notes).select("*").execute()
        assert bad.value.code == "PGRST301"
        r = await raw(env, "GET", f"/{objs.notes}", token=token)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    expired = devstack.user_token(ALICE, ttl_seconds=-60)
    r = await raw(env, "GET", f"/{objs.notes}", token=expired)
    assert r.status_code == 401 and r.json()["code"] == "PGRST303" and r.json()["message"] == "JWT expired"


async def test_a_role_that_does_not_exist_is_401(devstack: StackHandle, objs: SimpleNamespace) -> None:
    token = devstack.user_token(ALICE, role="no_such_role")
    r = await raw(devstack.env, "GET", f"/{objs.notes}", token=token)
    assert r.status_code == 401 and r.json()["code"] == "22023"


async def test_request_settings_inside_the_transaction(devstack: StackHandle, objs: SimpleNamespace) -> None:
    alice = await client(devstack.env, token=devstack.user_token(ALICE))
    who = (await alice.rpc(objs.whoami, {}).execute()).data
    assert who["user"] == "authenticated" and who["uid"] == ALICE and who["role"] == "authenticated"
    assert who["claims"]["sub"] == ALICE and who["claims"]["aud"] == "authenticated"
    assert who["method"] == "POST" and who["path"] == f"/rpc/{objs.whoami}"
    assert who["client"].startswith("supabase-py/")
    assert who["search_path"] == '"public", "extensions"'
    assert who["read_only"] == "on"  # a STABLE function runs read-only, even via POST
    assert who["statement_timeout"] == "8s" and who["isolation"] == "read committed" and who["uuid"] is True
    r = await raw(devstack.env, "GET", f"/rpc/{objs.whoami}", headers={"X-Custom": "v", "Cookie": "a=1; b=two"})
    who = r.json()
    assert who["user"] == "anon" and who["uid"] is None and who["claims"]["role"] == "anon"
    assert who["method"] == "GET" and who["custom"] == "v" and who["cookies"] == {"a": "1", "b": "two"}
    assert who["statement_timeout"] == "3s"
    sb = await client(devstack.env)
    assert (await sb.rpc(objs.ctx, {}).execute()).data == "off"
    assert (await sb.rpc(objs.ctx, {}, get=True).execute()).data == "on"


async def test_deterministic_errors_on_get_are_never_503_nor_retried(
    devstack: StackHandle, objs: SimpleNamespace
) -> None:
    sent: list[str] = []

    async def count(request: httpx.Request) -> None:
        sent.append(request.url.path)

    async with httpx.AsyncClient(event_hooks={"request": [count]}) as http:
        sb = await client(devstack.env, http=http)
        failing = [
            sb.table(objs.notes + "_missing").select("*"),  # PGRST205
            sb.table(objs.notes).select("nope"),  # 42703
            sb.table(objs.notes).select("id").eq("id", "abc"),  # 22P02
            sb.table(objs.secret).select("*"),  # 42501
            sb.table(objs.notes).select("id").eq("id", 1).single(),  # PGRST116
            sb.rpc(objs.whoami + "_missing", {"a": 1}, get=True),  # PGRST202
        ]
        started = time.monotonic()
        for query in failing:
            with pytest.raises(APIError) as err:
                await query.execute()
            assert err.value.code not in ("503", "PGRST000", "PGRST001"), err.value
        assert len(sent) == len(failing), sent
        assert time.monotonic() - started < 5

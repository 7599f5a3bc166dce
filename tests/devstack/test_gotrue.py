"""The devstack's GoTrue subset, driven by the real supabase-py client (auth calls as supabase-js makes them too)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

from devstack.gotrue.sessions import REUSE_INTERVAL_S, RefreshError, SessionStore
from tests.conftest import StackHandle

PASSWORD = "correct horse battery"


def _email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.test"


async def _client(devstack: StackHandle, key: str | None = None) -> AsyncClient:
    options = AsyncClientOptions(auto_refresh_token=False, persist_session=False)
    return await acreate_client(devstack.env.supabase_url, key or devstack.env.anon_key, options=options)


@pytest.fixture
async def admin(devstack: StackHandle) -> AsyncIterator[httpx.AsyncClient]:
    key = devstack.env.service_role_key
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=devstack.env.supabase_url + "/auth/v1", headers=headers) as client:
        yield client


async def _create_user(admin: httpx.AsyncClient, email: str, *, confirm: bool = True) -> dict[str, Any]:
    resp = await admin.post("/admin/users", json={"email": email, "password": PASSWORD, "email_confirm": confirm})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


# -- sign-in ----------------------------------------------------------------------------------------------------


async def test_password_sign_in_returns_a_session(devstack: StackHandle, admin: httpx.AsyncClient) -> None:
    email = _email()
    created = await _create_user(admin, email.upper())  # GoTrue stores emails lower-cased
    assert created["email"] == email and created["aud"] == "authenticated"
    assert created["app_metadata"]["provider"] == "email"

    client = await _client(devstack)
    res = await client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert res.session is not None and res.user is not None
    assert res.user.id == created["id"] and res.user.email == email
    assert res.session.token_type == "bearer" and res.session.expires_in == 3600
    assert res.session.refresh_token

    claims = jwt.decode(
        res.session.access_token, devstack.env.jwt_secret, algorithms=["HS256"], audience="authenticated"
    )
    assert claims["sub"] == created["id"] and claims["role"] == "authenticated" and claims["email"] == email
    assert claims["session_id"] and claims["exp"] > claims["iat"]
    assert jwt.get_unverified_header(res.session.access_token)["alg"] == "HS256"

    me = await client.auth.get_user()
    assert me is not None and me.user.id == created["id"]


async def test_wrong_password_and_unknown_email_look_alike(devstack: StackHandle, admin: httpx.AsyncClient) -> None:
    email = _email()
    await _create_user(admin, email)
    client = await _client(devstack)
    for creds in ({"email": email, "password": "wrong password"}, {"email": _email(), "password": PASSWORD}):
        with pytest.raises(AuthApiError) as err:
            await client.auth.sign_in_with_password(creds)  # type: ignore[arg-type]
        assert err.value.status == 400
        assert err.value.code == "invalid_credentials"
        assert err.value.message == "Invalid login credentials"


async def test_unconfirmed_email_cannot_sign_in(devstack: StackHandle, admin: httpx.AsyncClient) -> None:
    email = _email()
    await _create_user(admin, email, confirm=False)
    client = await _client(devstack)
    with pytest.raises(AuthApiError) as err:
        await client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert err.value.code == "email_not_confirmed"


async def test_requests_without_a_stack_key_are_refused(devstack: StackHandle) -> None:
    async with httpx.AsyncClient(base_url=devstack.env.supabase_url) as http:
        resp = await http.post("/auth/v1/token?grant_type=password", json={"email": _email(), "password": PASSWORD})
        assert resp.status_code == 401
        forged = jwt.encode({"role": "service_role", "exp": 4_000_000_000}, "not-the-stack-secret-" * 3)
        resp = await http.post(
            "/auth/v1/admin/users", json={"email": _email(), "password": PASSWORD}, headers={"apikey": forged}
        )
        assert resp.status_code == 401


async def test_the_session_token_is_what_postgrest_applies_rls_with(
    devstack: StackHandle, admin: httpx.AsyncClient, db: Any, unique_ws: int
) -> None:
    instance = f"gotrue-{unique_ws}.bison.test"
    mine = await db.fetchval("select public.upsert_workspace($1, $2, 'Mine', null)", instance, unique_ws)
    await db.fetchval("select public.upsert_workspace($1, $2, 'Not mine', null)", instance, unique_ws + 1)
    email = _email()
    created = await _create_user(admin, email)
    await db.execute(
        "insert into public.workspace_members (user_id, workspace_id) values ($1, $2)", uuid.UUID(created["id"]), mine
    )
    client = await _client(devstack)
    await client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    rows = (await client.table("workspaces").select("id,name").eq("instance", instance).execute()).data
    assert rows == [{"id": str(mine), "name": "Mine"}]


# -- refresh and sign-out ---------------------------------------------------------------------------------------


async def test_refresh_rotates_the_token_and_keeps_the_session(devstack: StackHandle, admin: httpx.AsyncClient) -> None:
    email = _email()
    await _create_user(admin, email)
    client = await _client(devstack)
    first = await client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert first.session is not None
    refreshed = await client.auth.refresh_session()
    assert refreshed.session is not None
    assert refreshed.session.refresh_token != first.session.refresh_token
    old = jwt.decode(first.session.access_token, options={"verify_signature": False})
    new = jwt.decode(refreshed.session.access_token, options={"verify_signature": False})
    assert old["session_id"] == new["session_id"] and old["sub"] == new["sub"]

    # A second tab racing the first: the just-rotated token still yields the session's current token.
    async with httpx.AsyncClient(base_url=devstack.env.supabase_url + "/auth/v1") as http:
        again = await http.post(
            "/token?grant_type=refresh_token",
            json={"refresh_token": first.session.refresh_token},
            headers={"apikey": devstack.env.anon_key},
        )
        assert again.status_code == 200, again.text
        assert again.json()["refresh_token"] == refreshed.session.refresh_token

        bogus = await http.post(
            "/token?grant_type=refresh_token",
            json={"refresh_token": "not-a-token"},
            headers={"apikey": devstack.env.anon_key, "X-Supabase-Api-Version": "2024-01-01"},
        )
        assert bogus.status_code == 400
        assert bogus.json() == {
            "code": "refresh_token_not_found",
            "msg": "Invalid Refresh Token: Refresh Token Not Found",
        }


async def test_sign_out_ends_the_session(devstack: StackHandle, admin: httpx.AsyncClient) -> None:
    email = _email()
    await _create_user(admin, email)
    client = await _client(devstack)
    res = await client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert res.session is not None
    access, refresh = res.session.access_token, res.session.refresh_token
    await client.auth.sign_out()
    async with httpx.AsyncClient(base_url=devstack.env.supabase_url + "/auth/v1") as http:
        headers = {"apikey": devstack.env.anon_key, "X-Supabase-Api-Version": "2024-01-01"}
        user = await http.get("/user", headers={**headers, "Authorization": f"Bearer {access}"})
        assert user.status_code == 403 and user.json()["code"] == "session_not_found"
        again = await http.post("/token?grant_type=refresh_token", json={"refresh_token": refresh}, headers=headers)
        assert again.status_code == 400 and again.json()["code"] == "refresh_token_not_found"


async def test_get_user_rejects_the_anon_key_and_forged_tokens(devstack: StackHandle) -> None:
    async with httpx.AsyncClient(base_url=devstack.env.supabase_url + "/auth/v1") as http:
        anon = devstack.env.anon_key
        resp = await http.get("/user", headers={"apikey": anon, "Authorization": f"Bearer {anon}"})
        assert resp.status_code == 403 and resp.json()["error_code"] == "bad_jwt"
        forged = jwt.encode({"sub": str(uuid.uuid4()), "role": "authenticated", "exp": 4_000_000_000}, "x" * 40)
        resp = await http.get("/user", headers={"apikey": anon, "Authorization": f"Bearer {forged}"})
        assert resp.status_code == 403


# -- admin API --------------------------------------------------------------------------------------------------


async def test_admin_api_via_supabase_py(devstack: StackHandle) -> None:
    service = await _client(devstack, devstack.env.service_role_key)
    email = _email()
    created = await service.auth.admin.create_user(
        {"email": email, "password": PASSWORD, "email_confirm": True, "user_metadata": {"name": "Ada"}}
    )
    assert created.user.email == email and created.user.user_metadata == {"name": "Ada"}
    assert created.user.email_confirmed_at is not None

    fetched = await service.auth.admin.get_user_by_id(created.user.id)
    assert fetched.user.id == created.user.id

    with pytest.raises(AuthApiError) as err:
        await service.auth.admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True})
    assert err.value.status == 422 and err.value.code == "email_exists"

    with pytest.raises(AuthWeakPasswordError) as weak:
        await service.auth.admin.create_user({"email": _email(), "password": "short", "email_confirm": True})
    assert weak.value.status == 422 and weak.value.reasons == ["length"]

    await service.auth.admin.delete_user(created.user.id)
    with pytest.raises(AuthApiError) as err:
        await service.auth.admin.get_user_by_id(created.user.id)
    assert err.value.status == 404


async def test_admin_api_refuses_the_anon_key(devstack: StackHandle) -> None:
    anon = await _client(devstack)
    with pytest.raises(AuthApiError) as err:
        await anon.auth.admin.create_user({"email": _email(), "password": PASSWORD, "email_confirm": True})
    assert err.value.status == 403 and err.value.code == "not_admin"


async def test_password_is_stored_as_bcrypt(db: Any, admin: httpx.AsyncClient) -> None:
    email = _email()
    created = await _create_user(admin, email)
    stored = await db.fetchval("select encrypted_password from auth.users where id = $1", uuid.UUID(created["id"]))
    assert stored.startswith("$2a$10$") and PASSWORD not in stored


# -- session store (no stack) -----------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_refresh_token_reuse_after_the_interval_revokes_the_session() -> None:
    clock = _Clock()
    store = SessionStore(clock=clock)
    session = store.create("user-1")
    first = session.current_token
    second = store.rotate(first).current_token
    clock.now += REUSE_INTERVAL_S / 2
    assert store.rotate(first).current_token == second  # racing tab
    clock.now += REUSE_INTERVAL_S
    with pytest.raises(RefreshError) as err:
        store.rotate(first)
    assert err.value.code == "refresh_token_already_used"
    with pytest.raises(RefreshError):  # the whole session went with it
        store.rotate(second)
    assert len(store) == 0


def test_revoke_user_keeps_the_named_session() -> None:
    store = SessionStore()
    a, b = store.create("u"), store.create("u")
    other = store.create("v")
    assert store.revoke_user("u", keep=b.id) == 1
    assert store.get(a.id) is None and store.get(b.id) is not None and store.get(other.id) is not None


# -- signup (auto-confirm, as `supabase start` configures GoTrue) ---------------------------------------------
async def test_signup_auto_confirms_and_returns_a_session(devstack: StackHandle) -> None:
    client = await _client(devstack)
    email = _email()
    signed = await client.auth.sign_up({"email": email, "password": PASSWORD, "options": {"data": {"name": "Ada"}}})
    assert signed.session is not None and signed.user is not None
    assert signed.user.email == email and signed.user.email_confirmed_at is not None
    assert signed.user.user_metadata == {"name": "Ada"}
    claims = jwt.decode(
        signed.session.access_token, devstack.env.jwt_secret, algorithms=["HS256"], audience="authenticated"
    )
    assert claims["sub"] == signed.user.id and claims["role"] == "authenticated"
    again = await (await _client(devstack)).auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert again.user is not None and again.user.id == signed.user.id


async def test_signup_errors(devstack: StackHandle) -> None:
    client = await _client(devstack)
    email = _email()
    await client.auth.sign_up({"email": email, "password": PASSWORD})
    with pytest.raises(AuthApiError) as dup:
        await client.auth.sign_up({"email": email.upper(), "password": PASSWORD})
    assert dup.value.status == 422 and dup.value.code == "user_already_exists"
    with pytest.raises(AuthWeakPasswordError):
        await client.auth.sign_up({"email": _email(), "password": "123"})
    async with httpx.AsyncClient(base_url=devstack.env.supabase_url + "/auth/v1") as raw:
        no_key = await raw.post("/signup", json={"email": _email(), "password": PASSWORD})
        assert no_key.status_code == 401
        headers = {"apikey": devstack.env.anon_key}
        bad = await raw.post("/signup", json={"email": "not-an-email", "password": PASSWORD}, headers=headers)
        assert bad.status_code == 400 and bad.json()["error_code"] == "validation_failed"
        missing = await raw.post("/signup", json={"email": _email()}, headers=headers)
        assert missing.status_code == 422

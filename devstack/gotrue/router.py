"""The GoTrue endpoints supabase-js v2 and supabase-py call for email + password sign-in, plus the admin user API.

Served under `/auth/v1` by the devstack gateway. Requests need an `apikey` (or `Authorization`) that is one of the
stack's keys, as Kong requires on `supabase start`; admin routes need a service_role token.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
from litestar import Request, Response, Router, delete, get, post
from litestar.datastructures import State

from devstack.auth import TokenError, http_bearer, verify
from devstack.gotrue.sessions import RefreshError, Session, SessionStore
from devstack.gotrue.users import AuthUser, DuplicateEmail, UserRepository
from devstack.keys import StackKeys, mint_user_token

if TYPE_CHECKING:
    from devstack.gateway import GatewayState

API_VERSION_HEADER = "x-supabase-api-version"
API_VERSION = "2024-01-01"
ADMIN_ROLES = frozenset({"service_role", "supabase_admin"})
MIN_PASSWORD_LENGTH = 6
DEFAULT_JWT_EXPIRY = 3600

AnyRequest = Request[Any, Any, State]


class AuthError(Exception):
    """An error GoTrue would answer with; rendered by `_error_response`."""

    def __init__(self, status: int, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}


def _error_response(request: AnyRequest, exc: AuthError) -> Response[Any]:
    """GoTrue's two error shapes: the 2024-01-01 one when the client asks for it (supabase-js and supabase-py
    do), else the legacy one with a numeric `code`."""
    if request.headers.get(API_VERSION_HEADER, "") >= API_VERSION:
        body: dict[str, Any] = {"code": exc.code, "msg": exc.message}
    else:
        body = {"code": exc.status, "error_code": exc.code, "msg": exc.message}
    body.update(exc.extra)
    return Response(body, status_code=exc.status, headers={API_VERSION_HEADER: API_VERSION})


def _ok(body: Any, status: int = 200) -> Response[Any]:
    return Response(body, status_code=status, headers={API_VERSION_HEADER: API_VERSION})


def _gateway(request: AnyRequest) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


def _json_body(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except ValueError as exc:
        raise AuthError(400, "bad_json", "Could not parse request body as JSON") from exc
    if not isinstance(data, dict):
        raise AuthError(400, "bad_json", "Request body must be a JSON object")
    return data


def _str_field(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) and value != "" else None


def _dict_field(data: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        value = data.get(name)
        if isinstance(value, dict):
            return value
    return {}


class GoTrue:
    """The state behind the routes: sessions in memory, users in the database, tokens signed with the stack secret."""

    def __init__(self, *, jwt_expiry: int = DEFAULT_JWT_EXPIRY) -> None:
        self.jwt_expiry = jwt_expiry
        self.sessions = SessionStore()
        #: when each user last signed in (GoTrue keeps this in auth.users; the devstack table has no column)
        self.last_sign_in: dict[str, datetime] = {}

    # -- request checks ------------------------------------------------------------------------------------
    @staticmethod
    def api_key_claims(request: AnyRequest, keys: StackKeys) -> dict[str, Any]:
        """Kong's key check: the `apikey` header (else the bearer token) must be a key this stack signed."""
        apikey = request.headers.get("apikey")
        token = keys.translate(apikey) if apikey else http_bearer(request.headers, keys)
        if token is None:
            raise AuthError(401, "no_authorization", "No API key found in request")
        try:
            return verify(token, keys)
        except TokenError as exc:
            raise AuthError(401, "bad_jwt", f"Invalid API key: {exc}") from exc

    @staticmethod
    def user_claims(request: AnyRequest, keys: StackKeys) -> dict[str, Any]:
        """The signed-in user's claims from `Authorization: Bearer <access token>`."""
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            raise AuthError(401, "no_authorization", "This endpoint requires a Bearer token")
        try:
            claims = verify(auth[7:].strip(), keys, require=("exp",))
        except TokenError as exc:
            raise AuthError(403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {exc}") from exc
        if not claims.get("sub"):
            raise AuthError(403, "bad_jwt", "invalid claim: missing sub claim")
        return claims

    def require_admin(self, request: AnyRequest, keys: StackKeys) -> None:
        claims = self.api_key_claims(request, keys)
        if claims.get("role") not in ADMIN_ROLES:
            raise AuthError(403, "not_admin", "User not allowed")

    # -- sessions -----------------------------------------------------------------------------------------
    def session_body(self, user: AuthUser, session: Session, keys: StackKeys, issuer: str) -> dict[str, Any]:
        now = int(time.time())
        last = self.last_sign_in.get(user.id)
        access_token = mint_user_token(
            user.id,
            role=user.role,
            secret=keys.jwt_secret,
            ttl_seconds=self.jwt_expiry,
            extra={
                "iss": issuer,
                "aud": user.aud,
                "email": user.email or "",
                "phone": "",
                "app_metadata": user.app_metadata,
                "user_metadata": user.user_metadata,
                "aal": "aal1",
                "amr": [{"method": "password", "timestamp": int(session.created_at)}],
                "session_id": session.id,
                "is_anonymous": user.is_anonymous,
            },
        )
        return {
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": self.jwt_expiry,
            "expires_at": now + self.jwt_expiry,
            "refresh_token": session.current_token,
            "user": user.to_json(last_sign_in_at=last),
        }

    async def password_grant(self, users: UserRepository, data: dict[str, Any]) -> tuple[AuthUser, Session]:
        email, password = _str_field(data, "email"), _str_field(data, "password")
        if _str_field(data, "phone"):
            raise AuthError(400, "phone_provider_disabled", "Phone logins are not supported by the devstack")
        if email is None or password is None:
            raise AuthError(400, "validation_failed", "missing email or phone")
        user = await users.authenticate(email, password)
        if user is None:
            raise AuthError(400, "invalid_credentials", "Invalid login credentials")
        if not user.confirmed:
            raise AuthError(400, "email_not_confirmed", "Email not confirmed")
        self.last_sign_in[user.id] = datetime.now(UTC)
        return user, self.sessions.create(user.id)

    async def refresh_grant(self, users: UserRepository, data: dict[str, Any]) -> tuple[AuthUser, Session]:
        token = _str_field(data, "refresh_token")
        if token is None:
            raise AuthError(400, "validation_failed", "Refresh Token is required")
        try:
            session = self.sessions.rotate(token)
        except RefreshError as exc:
            raise AuthError(400, exc.code, exc.message) from exc
        user = await users.get(session.user_id)
        if user is None:
            self.sessions.revoke(session.id)
            raise AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
        return user, session


def _issuer(request: AnyRequest) -> str:
    return f"{request.base_url}".rstrip("/") + "/auth/v1"


def build_auth_router(*, jwt_expiry: int = DEFAULT_JWT_EXPIRY) -> Router:
    """`/auth/v1`: signup (auto-confirmed), password and refresh_token grants, user, logout, admin users. State
    lives in the returned router's closure (one per gateway app)."""
    gotrue = GoTrue(jwt_expiry=jwt_expiry)

    def users_of(request: AnyRequest) -> tuple[UserRepository, StackKeys]:
        gw = _gateway(request)
        return UserRepository(gw.pool), gw.config.keys

    @get("/health", operation_id="authHealth")
    async def health() -> Response[Any]:
        return _ok({"version": "devstack", "name": "GoTrue", "description": "devstack GoTrue subset"})

    @post("/token", status_code=200, operation_id="authToken")
    async def token(request: AnyRequest, body: bytes) -> Response[Any]:
        users, keys = users_of(request)
        try:
            gotrue.api_key_claims(request, keys)
            data = _json_body(body)
            grant = request.query_params.get("grant_type", "")
            if grant == "password":
                user, session = await gotrue.password_grant(users, data)
            elif grant == "refresh_token":
                user, session = await gotrue.refresh_grant(users, data)
            else:
                raise AuthError(400, "unsupported_grant_type", f"unsupported_grant_type: {grant or '(none)'}")
        except AuthError as exc:
            return _error_response(request, exc)
        return _ok(gotrue.session_body(user, session, keys, _issuer(request)))

    @post("/signup", status_code=200, operation_id="authSignup")
    async def signup(request: AnyRequest, body: bytes) -> Response[Any]:
        """Email signup with auto-confirm (the local stack's `enable_confirmations = false`): the user is created
        confirmed and signed in at once, so the answer is a session, as `supabase start`'s GoTrue gives."""
        users, keys = users_of(request)
        try:
            gotrue.api_key_claims(request, keys)
            data = _json_body(body)
            if _str_field(data, "phone"):
                raise AuthError(400, "phone_provider_disabled", "Phone signups are not supported by the devstack")
            email = _str_field(data, "email")
            password = _str_field(data, "password")
            if email is None or "@" not in email:
                raise AuthError(400, "validation_failed", "Unable to validate email address: invalid format")
            if not password:
                raise AuthError(422, "validation_failed", "Signup requires a valid password")
            if len(password) < MIN_PASSWORD_LENGTH:
                raise AuthError(
                    422,
                    "weak_password",
                    f"Password should be at least {MIN_PASSWORD_LENGTH} characters.",
                    {"weak_password": {"reasons": ["length"]}},
                )
            options = _dict_field(data, "options")
            metadata = _dict_field(data, "data") or _dict_field(options, "data")
            try:
                created = await users.create(
                    email=email, password=password, email_confirm=True, user_metadata=metadata, app_metadata={}
                )
            except DuplicateEmail as exc:
                raise AuthError(422, "user_already_exists", "User already registered") from exc
            except asyncpg.PostgresError as exc:
                raise AuthError(500, "unexpected_failure", f"Database error saving new user: {exc}") from exc
        except AuthError as exc:
            return _error_response(request, exc)
        gotrue.last_sign_in[created.id] = datetime.now(UTC)
        session = gotrue.sessions.create(created.id)
        return _ok(gotrue.session_body(created, session, keys, _issuer(request)))

    @get("/user", operation_id="authUser")
    async def user(request: AnyRequest) -> Response[Any]:
        users, keys = users_of(request)
        try:
            gotrue.api_key_claims(request, keys)
            claims = gotrue.user_claims(request, keys)
            session_id = claims.get("session_id")
            if session_id and gotrue.sessions.get(str(session_id)) is None:
                raise AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist")
            found = await users.get(str(claims["sub"]))
            if found is None:
                raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
        except AuthError as exc:
            return _error_response(request, exc)
        return _ok(found.to_json(last_sign_in_at=gotrue.last_sign_in.get(found.id)))

    @post("/logout", status_code=200, operation_id="authLogout")  # 204 set on the Response (errors have bodies)
    async def logout(request: AnyRequest) -> Response[Any]:
        _, keys = users_of(request)
        try:
            gotrue.api_key_claims(request, keys)
            claims = gotrue.user_claims(request, keys)
            scope = request.query_params.get("scope", "global")
            if scope not in ("global", "local", "others"):
                raise AuthError(400, "validation_failed", "Unsupported logout scope")
        except AuthError as exc:
            return _error_response(request, exc)
        session_id = str(claims.get("session_id") or "")
        if scope == "local" and session_id:
            gotrue.sessions.revoke(session_id)
        elif scope == "others":
            gotrue.sessions.revoke_user(str(claims["sub"]), keep=session_id or None)
        else:
            gotrue.sessions.revoke_user(str(claims["sub"]))
        return Response(None, status_code=204, headers={API_VERSION_HEADER: API_VERSION})

    @post("/admin/users", status_code=200, operation_id="authAdminCreateUser")
    async def admin_create_user(request: AnyRequest, body: bytes) -> Response[Any]:
        users, keys = users_of(request)
        try:
            gotrue.require_admin(request, keys)
            data = _json_body(body)
            email = _str_field(data, "email")
            password = _str_field(data, "password")
            if email is None or "@" not in email:
                raise AuthError(400, "validation_failed", "Unable to validate email address: invalid format")
            if password is not None and len(password) < MIN_PASSWORD_LENGTH:
                raise AuthError(
                    422,
                    "weak_password",
                    f"Password should be at least {MIN_PASSWORD_LENGTH} characters.",
                    {"weak_password": {"reasons": ["length"]}},
                )
            role = _str_field(data, "role") or "authenticated"
            try:
                created = await users.create(
                    email=email,
                    password=password,
                    email_confirm=data.get("email_confirm") is True,
                    user_metadata=_dict_field(data, "user_metadata", "data"),
                    app_metadata=_dict_field(data, "app_metadata"),
                    role=role,
                )
            except DuplicateEmail as exc:
                raise AuthError(
                    422, "email_exists", "A user with this email address has already been registered"
                ) from exc
            except asyncpg.PostgresError as exc:
                raise AuthError(500, "unexpected_failure", f"Database error creating new user: {exc}") from exc
        except AuthError as exc:
            return _error_response(request, exc)
        return _ok(created.to_json())

    @get("/admin/users/{user_id:str}", operation_id="authAdminGetUser")
    async def admin_get_user(request: AnyRequest, user_id: str) -> Response[Any]:
        users, keys = users_of(request)
        try:
            gotrue.require_admin(request, keys)
            found = await users.get(user_id)
            if found is None:
                raise AuthError(404, "user_not_found", "User not found")
        except AuthError as exc:
            return _error_response(request, exc)
        return _ok(found.to_json(last_sign_in_at=gotrue.last_sign_in.get(found.id)))

    @delete("/admin/users/{user_id:str}", status_code=200, operation_id="authAdminDeleteUser")
    async def admin_delete_user(request: AnyRequest, user_id: str) -> Response[Any]:
        users, keys = users_of(request)
        try:
            gotrue.require_admin(request, keys)
            found = await users.get(user_id)
            if found is None or not await users.delete(user_id):
                raise AuthError(404, "user_not_found", "User not found")
        except AuthError as exc:
            return _error_response(request, exc)
        gotrue.sessions.revoke_user(user_id)
        gotrue.last_sign_in.pop(user_id, None)
        return _ok(found.to_json())

    return Router(
        path="/auth/v1",
        route_handlers=[health, token, signup, user, logout, admin_create_user, admin_get_user, admin_delete_user],
        include_in_schema=False,
    )

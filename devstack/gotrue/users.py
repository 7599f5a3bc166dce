"""Users in `auth.users`, as GoTrue keeps them: bcrypt passwords (pgcrypto `crypt` + `gen_salt('bf')`), emails
trimmed and lower-cased, app metadata carrying the provider.

The gateway's pool logs in as `authenticator`, which cannot touch `auth.users`; every statement here runs inside
a transaction after `set local role service_role` (the bootstrap grants it ALL on auth.users), so nothing outlives
the transaction and the pool's connections stay `authenticator`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

#: GoTrue's cost for bcrypt (`bcrypt.DefaultCost`)
BCRYPT_COST = 10
NIL_INSTANCE = "00000000-0000-0000-0000-000000000000"

_COLUMNS = (
    "id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, is_anonymous, "
    "created_at, updated_at"
)


class DuplicateEmail(Exception):
    """A user with this email address already exists."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def iso(ts: datetime | None) -> str | None:
    """GoTrue's timestamp format: RFC 3339 in UTC with a `Z`."""
    if ts is None:
        return None
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json_obj(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    value = json.loads(raw) if isinstance(raw, str | bytes) else raw
    return dict(value) if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class AuthUser:
    id: str
    aud: str
    role: str
    email: str | None
    email_confirmed_at: datetime | None
    app_metadata: dict[str, Any]
    user_metadata: dict[str, Any]
    is_anonymous: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> AuthUser:
        return cls(
            id=str(row["id"]),
            aud=row["aud"] or "authenticated",
            role=row["role"] or "authenticated",
            email=row["email"],
            email_confirmed_at=row["email_confirmed_at"],
            app_metadata=_json_obj(row["raw_app_meta_data"]),
            user_metadata=_json_obj(row["raw_user_meta_data"]),
            is_anonymous=bool(row["is_anonymous"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    @property
    def confirmed(self) -> bool:
        return self.email_confirmed_at is not None

    def to_json(self, *, last_sign_in_at: datetime | None = None) -> dict[str, Any]:
        """The user object GoTrue returns (the fields supabase-js and supabase-py read)."""
        identity_data = {
            "sub": self.id,
            "email": self.email,
            "email_verified": self.confirmed,
            "phone_verified": False,
        }
        identities = [
            {
                "identity_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"email:{self.id}")),
                "id": self.id,
                "user_id": self.id,
                "identity_data": identity_data,
                "provider": "email",
                "last_sign_in_at": iso(last_sign_in_at or self.created_at),
                "created_at": iso(self.created_at),
                "updated_at": iso(self.updated_at),
                "email": self.email,
            }
        ]
        return {
            "id": self.id,
            "aud": self.aud,
            "role": self.role,
            "email": self.email or "",
            "email_confirmed_at": iso(self.email_confirmed_at),
            "phone": "",
            "confirmed_at": iso(self.email_confirmed_at),
            "last_sign_in_at": iso(last_sign_in_at),
            "app_metadata": self.app_metadata,
            "user_metadata": self.user_metadata,
            "identities": identities,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "is_anonymous": self.is_anonymous,
        }


class UserRepository:
    """The few queries GoTrue's password flow and admin API need."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def _as_service_role(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy]:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("set local role service_role")
            yield conn

    async def create(
        self,
        *,
        email: str,
        password: str | None,
        email_confirm: bool,
        user_metadata: dict[str, Any],
        app_metadata: dict[str, Any],
        role: str = "authenticated",
    ) -> AuthUser:
        email = normalise_email(email)
        app_meta = {"provider": "email", "providers": ["email"], **app_metadata}
        async with self._as_service_role() as conn:
            # auth.users has no unique index on email in the devstack bootstrap: serialise creators per address.
            await conn.execute("select pg_advisory_xact_lock(hashtext('auth.users:' || $1))", email)
            if await conn.fetchval("select 1 from auth.users where lower(email) = $1", email):
                raise DuplicateEmail(email)
            row = await conn.fetchrow(
                f"""
                insert into auth.users (id, instance_id, aud, role, email, encrypted_password, email_confirmed_at,
                                        raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
                values ($1, $2, 'authenticated', $3, $4,
                        case when $5::text is null then null
                             else extensions.crypt($5::text, extensions.gen_salt('bf', {BCRYPT_COST})) end,
                        case when $6 then now() end, $7::jsonb, $8::jsonb, now(), now())
                returning {_COLUMNS}
                """,
                uuid.uuid4(),
                uuid.UUID(NIL_INSTANCE),
                role,
                email,
                password,
                email_confirm,
                json.dumps(app_meta),
                json.dumps(user_metadata),
            )
        assert row is not None
        return AuthUser.from_row(row)

    async def authenticate(self, email: str, password: str) -> AuthUser | None:
        """The user whose email and password match, else None (unknown email and wrong password look alike)."""
        async with self._as_service_role() as conn:
            row = await conn.fetchrow(
                f"""
                select {_COLUMNS},
                       coalesce(encrypted_password = extensions.crypt($2, encrypted_password), false) as password_ok
                  from auth.users
                 where lower(email) = $1
                 order by created_at
                 limit 1
                """,
                normalise_email(email),
                password,
            )
        if row is None or not row["password_ok"]:
            return None
        return AuthUser.from_row(row)

    async def get(self, user_id: str) -> AuthUser | None:
        try:
            key = uuid.UUID(user_id)
        except ValueError:
            return None
        async with self._as_service_role() as conn:
            row = await conn.fetchrow(f"select {_COLUMNS} from auth.users where id = $1", key)
        return AuthUser.from_row(row) if row is not None else None

    async def delete(self, user_id: str) -> bool:
        try:
            key = uuid.UUID(user_id)
        except ValueError:
            return False
        async with self._as_service_role() as conn:
            deleted = await conn.fetchval("delete from auth.users where id = $1 returning id", key)
        return deleted is not None

"""`SupabaseStore`: the hosted path, supabase-py (async) through `/rest/v1/rpc` and table upserts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

import httpx
import msgspec
from postgrest.exceptions import APIError
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from bisonsync.store.errors import StoreError, StoreUnavailable, classify_sqlstate

_UNAVAILABLE_HTTP = {"502", "503", "504", "520"}


def _wire(value: Any) -> Any:
    """A Python argument as PostgREST's JSON body carries it."""
    if isinstance(value, bytes):  # a JSON document: inline it
        return msgspec.json.decode(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def _translate(exc: BaseException) -> StoreError:
    if isinstance(exc, APIError):
        code = exc.code or ""
        if code in _UNAVAILABLE_HTTP or code.startswith("PGRST00"):
            return StoreUnavailable(f"gateway unavailable: {exc.message}", code)
        return classify_sqlstate(code, exc.message or str(exc))
    return StoreUnavailable(f"gateway unreachable: {type(exc).__name__}: {exc}")


class SupabaseStore:
    """supabase-py async client authenticated with the service_role key (or an `sb_secret_` key)."""

    def __init__(self, url: str, service_key: str, *, timeout: float = 10) -> None:
        self._url = url
        self._key = service_key
        self._timeout = timeout
        self._client: AsyncClient | None = None

    async def open(self) -> None:
        if self._client is None:
            self._client = await acreate_client(
                self._url,
                self._key,
                options=AsyncClientOptions(postgrest_client_timeout=self._timeout, auto_refresh_token=False),
            )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.postgrest.aclose()
            self._client = None

    async def _ensure(self) -> AsyncClient:
        if self._client is None:
            await self.open()
        assert self._client is not None
        return self._client

    async def ping(self) -> None:
        client = await self._ensure()
        try:
            await client.rpc("bisonsync_ping", {}).execute()  # database up and schema migrated
        except (APIError, httpx.HTTPError) as exc:
            raise _translate(exc) from exc

    async def rpc(self, function: str, args: Mapping[str, Any]) -> Any:
        client = await self._ensure()
        try:
            params = {k: _wire(v) for k, v in args.items()}
            response = await client.rpc(function, params).execute()
        except (APIError, httpx.HTTPError) as exc:
            raise _translate(exc) from exc
        return response.data

    async def rpc_rows(self, function: str, args: Mapping[str, Any]) -> list[dict[str, Any]]:
        data = await self.rpc(function, args)
        return list(data or [])

    async def upsert(self, table: str, rows: Sequence[Mapping[str, Any]], on_conflict: str) -> int:
        if not rows:
            return 0
        client = await self._ensure()
        try:
            response = await (
                client.table(table)
                .upsert([dict(r) for r in rows], on_conflict=on_conflict, returning="minimal")  # type: ignore[arg-type]
                .execute()
            )
        except (APIError, httpx.HTTPError) as exc:
            raise _translate(exc) from exc
        del response
        return len(rows)

    async def select(
        self, table: str, *, filters: Mapping[str, Any] | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        client = await self._ensure()
        query = client.table(table).select("*")
        for key, value in (filters or {}).items():
            query = query.eq(key, value)
        if limit is not None:
            query = query.limit(limit)
        try:
            response = await query.execute()
        except (APIError, httpx.HTTPError) as exc:
            raise _translate(exc) from exc
        rows: list[dict[str, Any]] = response.data  # type: ignore[assignment]
        return rows

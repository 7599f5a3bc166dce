"""The `Store` protocol: what the library needs from the database, whichever way it is reached.

Both implementations call the same SQL functions in `supabase/migrations`, so they cannot drift:
`PostgresStore` over asyncpg (direct or pooled connection string), `SupabaseStore` over supabase-py
(`/rest/v1/rpc` and table upserts). Every call is a single round trip and a single transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import msgspec


class IngestRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One webhook delivery, already authenticated and decoded, ready for `ingest_delivery`."""

    dedup_key: str
    instance: str
    bison_workspace_id: int
    workspace_name: str | None
    event_type: str
    payload_json: bytes
    received_at: datetime
    #: sha256 of a per-workspace token: re-checked in the ingest call (nothing is written when it does not match)
    token_hash: str | None = None
    #: keys an earlier dedup-key scheme gave this delivery (a retry of a delivery recorded under them repeats it)
    legacy_keys: tuple[str, ...] = ()
    #: milliseconds spent before the store call (the call adds its own time to the stored processing time)
    processing_ms: float | None = None


@runtime_checkable
class Store(Protocol):
    """Database operations used by the service, the jobs and the CLI."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        ...

    async def rpc(self, function: str, args: Mapping[str, Any]) -> Any:
        """Call a SQL function with named arguments; returns its JSON result as PostgREST would."""
        ...

    async def rpc_rows(self, function: str, args: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Call a set-returning SQL function; rows as dicts."""
        ...

    async def upsert(self, table: str, rows: Sequence[Mapping[str, Any]], on_conflict: str) -> int:
        """Insert or update rows (merge-duplicates on `on_conflict`); returns how many rows were written."""
        ...

    async def select(
        self, table: str, *, filters: Mapping[str, Any] | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Rows of a table or view with equality filters."""
        ...

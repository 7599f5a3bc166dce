"""Stores: one protocol, two interchangeable implementations over the same SQL functions."""

from __future__ import annotations

from bisonsync.settings import Settings
from bisonsync.store.base import IngestRequest, Store
from bisonsync.store.errors import StoreError, StoreInvalidInput, StoreUnavailable
from bisonsync.store.postgres_store import PostgresStore
from bisonsync.store.rows import IngestOutcome
from bisonsync.store.supabase_store import SupabaseStore

__all__ = [
    "IngestOutcome",
    "IngestRequest",
    "PostgresStore",
    "Store",
    "StoreError",
    "StoreInvalidInput",
    "StoreUnavailable",
    "SupabaseStore",
    "store_from_settings",
]


def store_from_settings(settings: Settings) -> Store:
    """DATABASE_URL set -> direct asyncpg; else SUPABASE_URL + service key -> supabase-py."""
    settings.require_store()
    if settings.database_url:
        return PostgresStore(settings.database_url, max_size=settings.db_pool_max)
    assert settings.supabase_url and settings.supabase_service_role_key
    return SupabaseStore(settings.supabase_url, settings.supabase_service_role_key)

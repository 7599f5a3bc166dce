"""Workspace keys in Supabase Vault, through the service_role-only SQL functions (the keys never touch a table
anon or authenticated can read; `workspace_credentials` holds the vault secret id and Bison's token id)."""

from __future__ import annotations

from bisonsync.store import Store, api
from bisonsync.store.rows import KeyStatus, StoredKey, StoreResult

__all__ = ["KeyStatus", "StoreResult", "StoredKey", "key_status", "mark_key", "store_key", "stored_keys"]


async def key_status(store: Store, instance: str) -> list[KeyStatus]:
    return await api.workspace_api_key_status(store, instance)


async def stored_keys(store: Store, instance: str) -> list[StoredKey]:
    """The decrypted keys of the instance's active workspaces (handle with care: never log `token`)."""
    return await api.workspace_api_keys(store, instance)


async def store_key(store: Store, workspace_id: str, token: str, token_id: str | None, *, replace: bool) -> StoreResult:
    return await api.store_workspace_api_key(store, workspace_id, token, token_id, replace=replace)


async def mark_key(store: Store, workspace_id: str, ok: bool, error: str | None = None) -> None:
    await api.mark_workspace_api_key(store, workspace_id, ok, error)

"""Workspace keys in Supabase Vault, through the service_role-only SQL functions (the keys never touch a table
anon or authenticated can read; `workspace_credentials` holds the vault secret id and Bison's token id)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bisonsync.store import Store


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """One active workspace and its stored key, without the key."""

    workspace_id: str
    bison_workspace_id: int
    name: str
    has_key: bool
    token_id: str | None
    provisioned_at: datetime | str | None
    failed_at: datetime | str | None
    error: str | None
    #: the env var NAME an operator registered for this workspace (bison_api_key_ref), if any
    env_ref: str | None

    @property
    def healthy(self) -> bool:
        return self.has_key and self.failed_at is None


@dataclass(frozen=True, slots=True)
class StoredKey:
    workspace_id: str
    bison_workspace_id: int
    token: str = field(repr=False)
    token_id: str | None
    failed: bool

    @property
    def suffix(self) -> str:
        return "…" + self.token[-4:]


@dataclass(frozen=True, slots=True)
class StoreResult:
    stored: bool
    secret_id: str
    previous_token_id: str | None


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


async def key_status(store: Store, instance: str) -> list[KeyStatus]:
    rows = await store.rpc_rows("workspace_api_key_status", {"p_instance": instance})
    return [
        KeyStatus(
            workspace_id=str(r["workspace_id"]),
            bison_workspace_id=int(r["bison_workspace_id"]),
            name=str(r["name"]),
            has_key=bool(r["has_key"]),
            token_id=_opt(r["token_id"]),
            provisioned_at=r["provisioned_at"],
            failed_at=r["failed_at"],
            error=_opt(r["error"]),
            env_ref=_opt(r["env_ref"]),
        )
        for r in rows
    ]


async def stored_keys(store: Store, instance: str) -> list[StoredKey]:
    """The decrypted keys of the instance's active workspaces (handle with care: never log `token`)."""
    rows = await store.rpc_rows("workspace_api_keys", {"p_instance": instance})
    return [
        StoredKey(
            workspace_id=str(r["workspace_id"]),
            bison_workspace_id=int(r["bison_workspace_id"]),
            token=str(r["token"]),
            token_id=_opt(r["token_id"]),
            failed=r["failed_at"] is not None,
        )
        for r in rows
    ]


async def store_key(store: Store, workspace_id: str, token: str, token_id: str | None, *, replace: bool) -> StoreResult:
    rows = await store.rpc_rows(
        "store_workspace_api_key",
        {"p_workspace_id": workspace_id, "p_token": token, "p_token_id": token_id, "p_replace": replace},
    )
    row = rows[0]
    return StoreResult(bool(row["stored"]), str(row["secret_id"]), _opt(row["previous_token_id"]))


async def mark_key(store: Store, workspace_id: str, ok: bool, error: str | None = None) -> None:
    await store.rpc("mark_workspace_api_key", {"p_workspace_id": workspace_id, "p_ok": ok, "p_error": error})

"""Workspace-scoped Email Bison keys, provisioned with the super-admin key and kept in Supabase Vault."""

from bisonsync.keys.provision import (
    KeyOutcome,
    ProvisionReport,
    VerifyOutcome,
    VerifyReport,
    provision_keys,
    provision_missing,
    verify_keys,
)
from bisonsync.keys.runtime import VaultKeys, key_fallback_counts, vault_keys_for
from bisonsync.keys.tokens import CreatedToken, create_api_token, list_api_tokens, revoke_api_token
from bisonsync.keys.vault import KeyStatus, StoredKey, key_status, mark_key, store_key, stored_keys

__all__ = [
    "CreatedToken",
    "KeyOutcome",
    "KeyStatus",
    "ProvisionReport",
    "StoredKey",
    "VaultKeys",
    "VerifyOutcome",
    "VerifyReport",
    "create_api_token",
    "key_fallback_counts",
    "key_status",
    "list_api_tokens",
    "mark_key",
    "provision_keys",
    "provision_missing",
    "revoke_api_token",
    "store_key",
    "stored_keys",
    "vault_keys_for",
    "verify_keys",
]

"""The poller's side: stored workspace keys put on the shared `BisonClient` each cycle, refused keys recorded.

A key Email Bison refuses mid-poll (revoked, expired) makes its session fall back to the super-admin key (see
`BisonClient`); here that is counted (`key_fallback_counts()`, exposed by the service as a Prometheus counter),
and the stored key is marked failed, so the next cycles use the super-admin key for that workspace without trying
it again, and the next `keys provision` (or the automatic job) replaces it.
"""

from __future__ import annotations

import logging
import weakref
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from bisonsync.bison import ApiKey, BisonClient, BisonError, KeyKind
from bisonsync.keys.vault import StoredKey, mark_key, stored_keys
from bisonsync.store import Store, StoreError

log = logging.getLogger("bisonsync.keys")

_FALLBACKS: Counter[str] = Counter()


def key_fallback_counts() -> dict[str, int]:
    """{instance: workspace keys refused and replaced by the super-admin key} since the process started."""
    return dict(_FALLBACKS)


@dataclass
class VaultKeys:
    """The stored keys of one instance on one client; one per client (`vault_keys_for`)."""

    client: BisonClient
    instance: str
    #: team id -> the stored key put on the client this cycle
    loaded: dict[int, StoredKey] = field(default_factory=dict)
    #: team id -> (refused token, reason), waiting to be recorded
    refused: dict[int, tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.client.on_key_refused(self._on_refused)

    def _on_refused(self, team_id: int, key: ApiKey, exc: BisonError) -> None:
        _FALLBACKS[self.instance] += 1
        self.refused[team_id] = (key.token, exc.message)

    async def load(self, store: Store, env_keys: Mapping[int, str] | None = None) -> int:
        """Put the healthy stored keys on the client (replacing rotated ones); workspaces with an env-var key
        (`env_keys`) keep it. Returns how many stored keys are in use."""
        env_keys = env_keys or {}
        keys = await stored_keys(store, self.instance)
        self.loaded = {}
        for key in keys:
            team = key.bison_workspace_id
            current = self._current(team)
            if team in env_keys:
                continue
            if key.failed:
                if current is not None and current.token == key.token:
                    self.client.remove_workspace_key(team)
                log.warning(
                    "workspace %d: stored key %s failed; using the super-admin key (run `bisonsync keys provision`)",
                    team,
                    key.suffix,
                )
                continue
            if current is None or current.token != key.token:
                self.client.add_workspace_key(team, key.token)
            self.loaded[team] = key
        return len(self.loaded)

    def _current(self, team_id: int) -> ApiKey | None:
        try:
            key = self.client.key_for(team_id)
        except ValueError:
            return None
        return key if key.kind is KeyKind.WORKSPACE else None

    async def flush(self, store: Store) -> int:
        """Record the refused stored keys as failed (only if the refused token is still the stored one)."""
        done = 0
        for team, (token, reason) in list(self.refused.items()):
            stored = self.loaded.get(team)
            del self.refused[team]
            if stored is None or stored.token != token:
                continue  # an env-var key, or the key was rotated meanwhile
            try:
                await mark_key(store, stored.workspace_id, False, reason)
                done += 1
            except StoreError as exc:
                log.warning("workspace %d: could not record the refused key: %s", team, exc)
        return done


_BY_CLIENT: weakref.WeakKeyDictionary[BisonClient, dict[str, VaultKeys]] = weakref.WeakKeyDictionary()


def vault_keys_for(client: BisonClient, instance: str) -> VaultKeys:
    per_instance = _BY_CLIENT.setdefault(client, {})
    keys = per_instance.get(instance)
    if keys is None:
        keys = per_instance[instance] = VaultKeys(client, instance)
    return keys

"""`keys provision` and `keys verify`: one workspace-scoped Email Bison key per active workspace, made with the
super-admin key and kept in Supabase Vault.

Provisioning is idempotent: a workspace whose stored key is healthy keeps it; only workspaces without a key (new
ones found by the registry sync) or whose key failed get a new one. `rotate=True` replaces every key and revokes
the old ones where Email Bison allows it (see `bisonsync.keys.tokens`). Workspaces an operator gave an env-var key
(`workspace_credentials.bison_api_key_ref`) are left alone: that key wins at poll time anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bisonsync.bison import ApiKey, BisonAuthError, BisonClient, BisonError, KeyKind
from bisonsync.keys.tokens import create_api_token, revoke_api_token
from bisonsync.keys.vault import KeyStatus, key_status, mark_key, store_key, stored_keys
from bisonsync.store import Store, StoreError

log = logging.getLogger("bisonsync.keys")

#: the call `keys verify` makes with each key: the reference's own example of an authenticated request
PROBE_PATH = "/api/users"


@dataclass(frozen=True, slots=True)
class KeyOutcome:
    bison_workspace_id: int
    name: str
    #: kept | created | rotated | replaced | env | failed
    action: str
    detail: str = ""
    #: for rotated/replaced keys: True revoked at Email Bison, False could not be revoked, None nothing to revoke
    revoked_previous: bool | None = None


@dataclass(frozen=True, slots=True)
class ProvisionReport:
    instance: str
    outcomes: list[KeyOutcome] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for o in self.outcomes if o.action == action)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0

    @property
    def unrevoked(self) -> list[KeyOutcome]:
        return [o for o in self.outcomes if o.revoked_previous is False]

    def summary(self) -> str:
        parts = [f"{self.count(a)} {a}" for a in ("created", "rotated", "replaced", "kept", "env", "failed")]
        text = f"{self.instance}: {len(self.outcomes)} workspaces: " + ", ".join(parts)
        if self.unrevoked:
            text += f"; {len(self.unrevoked)} old keys could not be revoked (delete them in Email Bison)"
        return text


@dataclass(frozen=True, slots=True)
class VerifyOutcome:
    bison_workspace_id: int
    name: str
    #: ok | refused | error | missing | env
    state: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class VerifyReport:
    instance: str
    outcomes: list[VerifyOutcome] = field(default_factory=list)

    @property
    def failing(self) -> list[VerifyOutcome]:
        return [o for o in self.outcomes if o.state in ("refused", "error", "missing")]

    @property
    def ok(self) -> bool:
        return not self.failing

    def summary(self) -> str:
        states = ("ok", "refused", "error", "missing", "env")
        counts = ", ".join(f"{sum(1 for o in self.outcomes if o.state == s)} {s}" for s in states)
        return f"{self.instance}: {len(self.outcomes)} workspaces: {counts}"


def default_token_name(instance: str, team_id: int, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%MZ")
    return f"bisonsync {instance} workspace {team_id} {stamp}"


def _require_super_admin(client: BisonClient) -> None:
    if client._super_key is None:
        raise ValueError("provisioning workspace keys needs the super-admin key (BISON_API_KEY)")


async def provision_keys(
    store: Store,
    client: BisonClient,
    instance: str,
    *,
    rotate: bool = False,
    concurrency: int = 4,
    token_name: Callable[[int], str] | None = None,
) -> ProvisionReport:
    """Give every active workspace of `instance` a stored workspace key (see the module docstring)."""
    _require_super_admin(client)
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    name_of = token_name or (lambda team_id: default_token_name(instance, team_id))
    slots = asyncio.Semaphore(concurrency)

    async def one(ws: KeyStatus) -> KeyOutcome:
        if ws.env_ref:
            return KeyOutcome(ws.bison_workspace_id, ws.name, "env", f"uses env var {ws.env_ref}")
        if ws.healthy and not rotate:
            return KeyOutcome(ws.bison_workspace_id, ws.name, "kept")
        async with slots:
            return await _provision_one(store, client, ws, name_of(ws.bison_workspace_id), rotate)

    workspaces = await key_status(store, instance)
    outcomes = list(await asyncio.gather(*(one(ws) for ws in workspaces)))
    report = ProvisionReport(instance, outcomes)
    log.info("workspace keys of %s", report.summary())
    return report


async def _provision_one(store: Store, client: BisonClient, ws: KeyStatus, name: str, rotate: bool) -> KeyOutcome:
    team = ws.bison_workspace_id
    try:
        created = await create_api_token(client, team, name)
    except BisonError as exc:
        return KeyOutcome(team, ws.name, "failed", f"creating the key: {exc}")
    try:
        result = await store_key(store, ws.workspace_id, created.token, created.token_id, replace=rotate)
    except StoreError as exc:
        cleaned = await _revoke(client, team, created.token_id)
        note = "" if cleaned else "; the new key could not be revoked (delete it in Email Bison)"
        return KeyOutcome(team, ws.name, "failed", f"storing the key in Vault: {exc}{note}")
    if not result.stored:  # another provisioner stored one meanwhile: ours is surplus
        await _revoke(client, team, created.token_id)
        return KeyOutcome(team, ws.name, "kept", "stored concurrently by another run")
    action = "rotated" if rotate and ws.has_key else ("replaced" if ws.has_key else "created")
    revoked: bool | None = None
    if ws.has_key:
        revoked = await _revoke(client, team, result.previous_token_id)
    log.info("workspace %d: key %s stored in Vault (%s)", team, created.suffix, action)
    return KeyOutcome(team, ws.name, action, revoked_previous=revoked)


async def _revoke(client: BisonClient, team_id: int, token_id: str | None) -> bool:
    if token_id is None:
        return False
    try:
        return await revoke_api_token(client, team_id, token_id)
    except BisonError as exc:
        log.warning("workspace %d: could not revoke token %s: %s", team_id, token_id, exc)
        return False


async def verify_keys(store: Store, client: BisonClient, instance: str, *, concurrency: int = 8) -> VerifyReport:
    """Call Email Bison once with every stored key; record (and report) the ones it refuses."""
    stored = {k.bison_workspace_id: k for k in await stored_keys(store, instance)}
    slots = asyncio.Semaphore(concurrency)

    async def one(ws: KeyStatus) -> VerifyOutcome:
        key = stored.get(ws.bison_workspace_id)
        if key is None:
            if ws.env_ref:
                return VerifyOutcome(ws.bison_workspace_id, ws.name, "env", f"uses env var {ws.env_ref}")
            return VerifyOutcome(ws.bison_workspace_id, ws.name, "missing", "no stored key: run `keys provision`")
        api_key = ApiKey(key.token, KeyKind.WORKSPACE, key.bison_workspace_id)
        async with slots:
            try:
                await client._send(api_key, "GET", PROBE_PATH)
            except BisonAuthError as exc:
                await mark_key(store, ws.workspace_id, False, exc.message)
                return VerifyOutcome(ws.bison_workspace_id, ws.name, "refused", f"key {api_key.suffix}: {exc.message}")
            except BisonError as exc:  # not the key's fault as far as we can tell: not recorded
                return VerifyOutcome(ws.bison_workspace_id, ws.name, "error", f"key {api_key.suffix}: {exc}")
        if key.failed:
            await mark_key(store, ws.workspace_id, True)
        return VerifyOutcome(ws.bison_workspace_id, ws.name, "ok", f"key {api_key.suffix}")

    workspaces = await key_status(store, instance)
    return VerifyReport(instance, list(await asyncio.gather(*(one(ws) for ws in workspaces))))


async def provision_missing(store: Store, client: BisonClient, instance: str) -> ProvisionReport:
    """The scheduler's entry point: keys for workspaces that have none (new ones) or whose key failed; never
    rotates. Safe on every replica: storing is first-wins per workspace, a surplus key is revoked."""
    report = await provision_keys(store, client, instance, rotate=False)
    made = report.count("created") + report.count("replaced")
    if made or not report.ok:
        level = logging.INFO if report.ok else logging.WARNING
        log.log(level, "automatic key provisioning: %s", report.summary())
    return report

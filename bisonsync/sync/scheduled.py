"""One sync cycle (workspace registry, then mailboxes) from `Settings`, for the CLI and the service scheduler."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from bisonsync.bison import BisonClient, BisonError
from bisonsync.keys.runtime import VaultKeys, vault_keys_for
from bisonsync.settings import Settings, SettingsError
from bisonsync.store import Store, StoreError
from bisonsync.sync.mailboxes import DEFAULT_LEASE_SECONDS, poll_mailboxes
from bisonsync.sync.report import PollReport, ProgressCallback
from bisonsync.sync.runs import resolve_workspace_keys, workspace_key_refs
from bisonsync.sync.workspaces import WorkspaceSyncReport, sync_workspaces

log = logging.getLogger("bisonsync.sync")


@dataclass(frozen=True, slots=True)
class SyncCycleReport:
    #: None when the registry could not be listed (the mailbox poll then runs over the registry as it is)
    workspaces: WorkspaceSyncReport | None
    mailboxes: PollReport
    workspaces_error: str | None = None


def check_bison_settings(settings: Settings) -> tuple[str, str]:
    """BISON_BASE_URL and BISON_API_KEY, or SettingsError."""
    if not settings.bison_base_url:
        raise SettingsError("BISON_BASE_URL is not set")
    if not settings.bison_api_key:
        raise SettingsError("BISON_API_KEY is not set")
    return settings.bison_base_url, settings.bison_api_key


def client_from_settings(settings: Settings) -> BisonClient:
    """A `BisonClient` for BISON_BASE_URL with BISON_API_KEY (workspace keys are added from the database)."""
    base_url, api_key = check_bison_settings(settings)
    return BisonClient(base_url, api_key, max_pages=settings.bison_max_pages)


async def run_sync_cycle(
    settings: Settings,
    store: Store,
    client: BisonClient,
    *,
    concurrency: int = 8,
    progress: ProgressCallback | None = None,
    holder: str | None = None,
    lease_seconds: int = DEFAULT_LEASE_SECONDS,
    environ: Mapping[str, str] | None = None,
) -> SyncCycleReport:
    """Register new and renamed workspaces, then poll every active workspace's mailboxes (with the workspace keys
    from the environment and from Vault; `environ` is where env-var key refs are looked up, os.environ by default)."""
    instance = settings.instance_label()
    registry: WorkspaceSyncReport | None = None
    registry_error: str | None = None
    try:
        registry = await sync_workspaces(store, client, instance)
        log.info("workspace registry of %s: %s", instance, registry.summary())
    except (BisonError, StoreError) as exc:
        registry_error = f"{type(exc).__name__}: {exc}"
        log.warning("could not sync the workspace registry of %s: %s", instance, registry_error)
    vault_keys = await use_vault_keys(store, client, instance, environ)
    try:
        report = await poll_mailboxes(
            store,
            client,
            instance=instance,
            concurrency=concurrency,
            progress=progress,
            holder=holder,
            lease_seconds=lease_seconds,
            environ=environ,
        )
    finally:
        if vault_keys is not None:
            await vault_keys.flush(store)
    return SyncCycleReport(workspaces=registry, mailboxes=report, workspaces_error=registry_error)


async def use_vault_keys(
    store: Store, client: BisonClient, instance: str, environ: Mapping[str, str] | None = None
) -> VaultKeys | None:
    """Put the workspace keys stored in Supabase Vault (`bisonsync keys provision`) on `client`, next to the env-var
    keys (which win for their workspaces). None, with a warning, when they cannot be read: the poll then runs on
    the env-var and super-admin keys."""
    vault_keys = vault_keys_for(client, instance)
    try:
        refs = await workspace_key_refs(store, instance)
        env_keys, _ = resolve_workspace_keys(refs, os.environ if environ is None else environ)
        used = await vault_keys.load(store, env_keys)
    except StoreError as exc:
        log.warning("could not read the workspace keys stored in Vault for %s: %s", instance, exc)
        return None
    if used:
        log.info("%s: %d workspace keys from Vault", instance, used)
    return vault_keys


async def run_scheduled_poll(settings: Settings, store: Store, client: BisonClient | None = None) -> None:
    """What the service scheduler calls every BISONSYNC_POLL_INTERVAL_S: one cycle, outcome logged.

    Single-flight across replicas (a replica finding the job held logs `skipped`). Pass the process's shared
    `client` when other jobs use the same super-admin key (its switch lock lives in the client). A partial or
    failed run is logged and recorded in `sync_runs`, not raised; configuration and store errors are raised.
    """
    own = client is None
    bison = client or client_from_settings(settings)
    try:
        cycle = await run_sync_cycle(settings, store, bison)
    finally:
        if own:
            await bison.aclose()
    report = cycle.mailboxes
    if report.ok:
        log.info("scheduled mailbox poll %s", report.summary())
    else:
        log.warning("scheduled mailbox poll %s", report.summary())

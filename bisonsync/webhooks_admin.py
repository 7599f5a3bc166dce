"""Register the service's webhook URL in every Email Bison workspace, for every event type, and check it.

`install_webhooks` (per workspace, idempotent):
- the event types come from `GET /api/webhook-events/event-types` (13 on current instances; compared
  case-insensitively), the workspaces from
  `GET /api/workspaces/v1.1`;
- a registration is OURS when its URL, without the query string, equals `--url` (scheme, host, port, path);
  an existing one is updated (PUT) to the full event set and our URL, never duplicated; extra registrations of
  our URL (which would make Email Bison deliver every event twice) are deleted;
- the token travels in the URL (`?token=...`: Email Bison cannot send custom headers). Per-workspace mode: a
  random token, of which only the sha256 hex is stored (`set_webhook_token`); it is shown once in the report and
  kept on later runs as long as the registered URL still carries a token matching the stored hash (so a re-run
  changes nothing); `rotate=True` forces a new one. Global mode puts `BISONSYNC_WEBHOOK_TOKEN` in every URL.

`verify_webhooks` reports per workspace: no registration, missing event types, duplicate registrations of our
URL, registrations of the predecessor's endpoints (`/functions/v1/universal-bison-webhook`,
`/functions/v1/bison-interested-webhook`) that deliver the same events again — they do not double count (the
ledger dedups them) but double the load and, with per-workspace tokens, may be refused — and, given a store,
whether the token in the URL is one the service accepts.

Tokens are secrets: reports carry them only in `WorkspaceInstall.token` (the new token, once); every URL in a
report is redacted (`token=...abcd`).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Sequence
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from bisonsync.bison import BisonClient, BisonError, Webhook, WorkspaceSession, event_type_key
from bisonsync.events.decode import instance_host
from bisonsync.ingest import hash_token
from bisonsync.store import Store, StoreError, api

log = logging.getLogger("bisonsync.webhooks")

DEFAULT_NAME = "bisonsync"
LEGACY_PATHS = ("/functions/v1/universal-bison-webhook", "/functions/v1/bison-interested-webhook")
TOKEN_PARAM = "token"

Action = Literal["created", "updated", "unchanged", "error"]


def new_token() -> str:
    return secrets.token_urlsafe(32)


def base_url(url: str) -> str:
    """`url` without query and fragment, scheme and host lower-cased, no trailing slash: what identifies ours."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def url_token(url: str) -> str | None:
    for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if key == TOKEN_PARAM and value:
            return value
    return None


def with_token(url: str, token: str | None) -> str:
    """`url` with its `token` query parameter set to `token` (other parameters kept)."""
    parts = urlsplit(url.strip())
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != TOKEN_PARAM]
    if token is not None:
        query.append((TOKEN_PARAM, token))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def redact_url(url: str) -> str:
    """The URL as reports and logs may show it: a token reduced to its last 4 characters."""
    token = url_token(url)
    if token is None:
        return url
    parts = urlsplit(url)
    query = [
        (k, ("..." + v[-4:]) if k == TOKEN_PARAM else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, safe="."), parts.fragment))


def is_ours(hook: Webhook, ours: str) -> bool:
    try:
        return base_url(hook.url) == ours
    except ValueError:
        return False


def is_legacy(hook: Webhook) -> bool:
    path = urlsplit(hook.url).path.rstrip("/")
    return path.endswith(LEGACY_PATHS)


class Registration(msgspec.Struct, kw_only=True, frozen=True):
    id: int
    name: str
    #: redacted
    url: str
    events: list[str]


def _registration(hook: Webhook) -> Registration:
    return Registration(id=hook.id, name=hook.name, url=redact_url(hook.url), events=list(hook.events))


class WorkspaceInstall(msgspec.Struct, kw_only=True, frozen=True):
    bison_workspace_id: int
    name: str
    action: Action
    workspace_id: str | None = None
    webhook_id: int | None = None
    events_added: list[str] = msgspec.field(default_factory=list)
    duplicates_removed: list[int] = msgspec.field(default_factory=list)
    #: the NEW per-workspace token (shown once; only its sha256 is stored); None when unchanged or global
    token: str | None = None
    token_mode: Literal["workspace", "global"] = "workspace"
    legacy: list[Registration] = msgspec.field(default_factory=list)
    error: str | None = None


class InstallReport(msgspec.Struct, kw_only=True, frozen=True):
    url: str
    instance: str
    event_types: list[str]
    workspaces: list[WorkspaceInstall]

    @property
    def ok(self) -> bool:
        return all(w.error is None for w in self.workspaces)


class WorkspaceVerify(msgspec.Struct, kw_only=True, frozen=True):
    bison_workspace_id: int
    name: str
    registered: bool
    webhook_ids: list[int] = msgspec.field(default_factory=list)
    missing_events: list[str] = msgspec.field(default_factory=list)
    #: extra registrations of our URL (Email Bison would deliver each event once per registration)
    duplicate_ids: list[int] = msgspec.field(default_factory=list)
    #: registrations of the predecessor's endpoints (double delivery; the ledger keeps counts right)
    legacy: list[Registration] = msgspec.field(default_factory=list)
    #: True/False when checked against the database; None when not checked
    token_ok: bool | None = None
    problems: list[str] = msgspec.field(default_factory=list)
    warnings: list[str] = msgspec.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class VerifyReport(msgspec.Struct, kw_only=True, frozen=True):
    url: str
    event_types: list[str]
    workspaces: list[WorkspaceVerify]

    @property
    def ok(self) -> bool:
        return all(w.ok for w in self.workspaces)


async def _event_types(client: BisonClient) -> list[str]:
    types = [t.id for t in await client.event_types()]
    if not types:
        raise BisonError("Email Bison listed no webhook event types")
    return list(dict.fromkeys(types))


def _select(teams: Sequence[int], only: Sequence[int] | None) -> list[int]:
    return [t for t in teams if only is None or t in set(only)]


async def _install_one(
    session: WorkspaceSession,
    store: Store,
    *,
    ours: str,
    url: str,
    name: str,
    instance: str,
    team_id: int,
    team_name: str,
    events: list[str],
    global_token: str | None,
    rotate: bool,
) -> WorkspaceInstall:
    hooks = await session.list_webhooks()
    mine = sorted((h for h in hooks if is_ours(h, ours)), key=lambda h: h.id)
    legacy = [_registration(h) for h in hooks if is_legacy(h) and not is_ours(h, ours)]
    workspace_id = await api.upsert_workspace(store, instance, team_id, team_name)
    keep = mine[0] if mine else None

    token: str | None = None
    previous: str | None = None
    if global_token is not None:
        target_url = with_token(url, global_token)
    else:
        current = url_token(keep.url) if keep is not None else None
        previous = await api.webhook_token_hash(store, workspace_id)
        # keep the registered token while it is the one the service accepts: a re-run changes nothing
        valid = current is not None and previous is not None and hmac.compare_digest(hash_token(current), previous)
        if valid and not rotate and current is not None:
            target_url = with_token(url, current)
        else:
            token = new_token()
            await api.set_webhook_token(store, workspace_id, hash_token(token))
            target_url = with_token(url, token)

    base = WorkspaceInstall(
        bison_workspace_id=team_id,
        name=team_name,
        action="unchanged",
        workspace_id=workspace_id,
        token=token,
        token_mode="global" if global_token is not None else "workspace",
        legacy=legacy,
    )
    try:
        return await _apply_registration(session, base, mine, name, target_url, events)
    except BisonError:
        if token is not None:  # Email Bison still has the old URL: put the token it carries back
            try:
                await api.set_webhook_token(store, workspace_id, previous)
            except StoreError as exc:
                log.error("workspace %d: could not restore the previous webhook token: %s", team_id, exc)
        raise


async def _apply_registration(
    session: WorkspaceSession,
    base: WorkspaceInstall,
    mine: list[Webhook],
    name: str,
    target_url: str,
    events: list[str],
) -> WorkspaceInstall:
    team_id = base.bison_workspace_id
    if not mine:
        hook = await session.create_webhook(name, target_url, events)
        log.info("workspace %d: registered %s for %d events", team_id, redact_url(target_url), len(events))
        return msgspec.structs.replace(base, action="created", webhook_id=hook.id, events_added=list(events))

    keep = mine[0]
    removed = []
    for extra in mine[1:]:
        await session.delete_webhook(extra.id)
        removed.append(extra.id)
    have = {event_type_key(e) for e in keep.events}  # an instance may spell them EMAIL_SENT or email_sent
    added = [e for e in events if event_type_key(e) not in have]
    if added or keep.url != target_url:
        await session.update_webhook(keep.id, name=keep.name or name, url=target_url, events=events)
        action: Action = "updated"
    else:
        action = "updated" if removed else "unchanged"
    if action != "unchanged":
        log.info(
            "workspace %d: webhook %d %s (+%d events, %d duplicates removed)",
            team_id,
            keep.id,
            action,
            len(added),
            len(removed),
        )
    return msgspec.structs.replace(
        base, action=action, webhook_id=keep.id, events_added=added, duplicates_removed=removed
    )


async def install_webhooks(
    client: BisonClient,
    store: Store,
    url: str,
    *,
    instance: str | None = None,
    global_token: str | None = None,
    rotate: bool = False,
    name: str = DEFAULT_NAME,
    bison_workspace_ids: Sequence[int] | None = None,
) -> InstallReport:
    """Register `url` for every event type in every workspace (or `bison_workspace_ids`). `global_token`: use it
    in every URL instead of per-workspace tokens. `instance`: the instance key deliveries will carry (the host of
    Email Bison's `event.instance_url`; default: the host of the client's base URL)."""
    ours = base_url(url)
    clean = with_token(url, None)
    inst = instance_host(instance or str(client.base_url))
    events = await _event_types(client)
    teams = {w.id: w.clean_name for w in await client.list_workspaces()}
    results: list[WorkspaceInstall] = []
    for team_id in _select(sorted(teams), bison_workspace_ids):
        try:
            async with client.workspace(team_id) as session:
                results.append(
                    await _install_one(
                        session,
                        store,
                        ours=ours,
                        url=clean,
                        name=name,
                        instance=inst,
                        team_id=team_id,
                        team_name=teams[team_id],
                        events=events,
                        global_token=global_token,
                        rotate=rotate,
                    )
                )
        except (BisonError, StoreError) as exc:
            log.warning("workspace %d: webhook install failed: %s", team_id, exc)
            results.append(
                WorkspaceInstall(bison_workspace_id=team_id, name=teams[team_id], action="error", error=str(exc))
            )
    return InstallReport(url=ours, instance=inst, event_types=events, workspaces=results)


async def _token_ok(
    store: Store, instance: str, team_id: int, token: str | None, global_token: str | None
) -> tuple[bool, str | None]:
    if token is None:
        return False, "our registration carries no ?token=: every delivery would be refused (401)"
    if global_token and hmac.compare_digest(token.encode(), global_token.encode()):
        return True, None
    rows = await api.workspaces(store, instance, bison_workspace_id=team_id)
    if not rows:
        return False, f"workspace is not registered in the database for instance {instance}"
    stored = await api.webhook_token_hash(store, rows[0].id)
    if stored is None or not hmac.compare_digest(hash_token(token), stored):
        return False, "the token in the registered URL is not this workspace's token (deliveries get 401)"
    return True, None


async def verify_webhooks(
    client: BisonClient,
    url: str,
    *,
    store: Store | None = None,
    instance: str | None = None,
    global_token: str | None = None,
    bison_workspace_ids: Sequence[int] | None = None,
) -> VerifyReport:
    """Report, per workspace, what is missing or doubled (see the module docstring). Read-only."""
    ours = base_url(url)
    inst = instance_host(instance or str(client.base_url))
    events = await _event_types(client)
    teams = {w.id: w.clean_name for w in await client.list_workspaces()}
    results: list[WorkspaceVerify] = []
    for team_id in _select(sorted(teams), bison_workspace_ids):
        try:
            async with client.workspace(team_id) as session:
                hooks = await session.list_webhooks()
        except BisonError as exc:
            results.append(
                WorkspaceVerify(
                    bison_workspace_id=team_id,
                    name=teams[team_id],
                    registered=False,
                    problems=[f"could not list webhooks: {exc}"],
                )
            )
            continue
        mine = sorted((h for h in hooks if is_ours(h, ours)), key=lambda h: h.id)
        covered = {event_type_key(e) for h in mine for e in h.events}
        missing = [e for e in events if event_type_key(e) not in covered]
        legacy = [_registration(h) for h in hooks if is_legacy(h) and not is_ours(h, ours)]
        problems: list[str] = []
        warnings: list[str] = []
        if not mine:
            problems.append("no registration of our URL")
        elif missing:
            problems.append(f"{len(missing)} event types not registered: {', '.join(missing)}")
        if len(mine) > 1:
            problems.append(f"{len(mine)} registrations of our URL: every event is delivered {len(mine)} times")
        for reg in legacy:
            overlap = sorted({event_type_key(e) for e in reg.events} & covered)
            warnings.append(
                f"predecessor registration {reg.id} ({urlsplit(reg.url).path}) also delivers {len(reg.events)} "
                f"event types ({len(overlap)} of ours): double delivery, not double counting (the ledger dedups)"
            )
        token_ok: bool | None = None
        if store is not None and mine:
            checks = [await _token_ok(store, inst, team_id, url_token(h.url), global_token) for h in mine]
            token_ok = all(ok for ok, _ in checks)
            problems += sorted({why for ok, why in checks if not ok and why})
        results.append(
            WorkspaceVerify(
                bison_workspace_id=team_id,
                name=teams[team_id],
                registered=bool(mine),
                webhook_ids=[h.id for h in mine],
                missing_events=missing,
                duplicate_ids=[h.id for h in mine[1:]],
                legacy=legacy,
                token_ok=token_ok,
                problems=problems,
                warnings=warnings,
            )
        )
    return VerifyReport(url=ours, event_types=events, workspaces=results)


def report_json(report: InstallReport | VerifyReport) -> bytes:
    return msgspec.json.format(msgspec.json.encode(report), indent=2)


__all__ = [
    "InstallReport",
    "Registration",
    "VerifyReport",
    "WorkspaceInstall",
    "WorkspaceVerify",
    "base_url",
    "hash_token",
    "install_webhooks",
    "redact_url",
    "report_json",
    "verify_webhooks",
    "with_token",
]

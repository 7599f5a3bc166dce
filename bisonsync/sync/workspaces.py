"""The workspace registry from `GET /api/workspaces/v1.1`: new workspaces appear, renames are tracked by id.

Workspaces are keyed by (instance, Bison team id); names are labels, trimmed (`upsert_workspace` keeps replaced
names in `workspace_name_history`). The parent team (`main: true`) is registered like any other: it is a real
workspace with its own mailboxes and webhooks (spec §3.5: parent-workspace webhooks may fire), and ingest would
create it from its first delivery anyway. Pass `include_main=False` to leave it out.

Workspaces Bison no longer lists are reported (`missing`), never deactivated here: a key that sees fewer
workspaces (a workspace-scoped key sees only its own) must not switch the others off. Deactivate them by setting
`workspaces.active = false`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from bisonsync.bison import BisonClient, Workspace
from bisonsync.events import instance_host
from bisonsync.store import Store, api

log = logging.getLogger("bisonsync.sync")


@dataclass(frozen=True, slots=True)
class RegisteredWorkspace:
    workspace_id: str
    bison_workspace_id: int
    name: str
    main: bool
    created: bool
    #: the previous name when this sync renamed the workspace
    renamed_from: str | None = None


@dataclass(frozen=True, slots=True)
class WorkspaceSyncReport:
    instance: str
    workspaces: list[RegisteredWorkspace] = field(default_factory=list)
    #: Bison ids registered (and active) for this instance that Bison did not list
    missing: list[int] = field(default_factory=list)

    @property
    def created(self) -> list[RegisteredWorkspace]:
        return [w for w in self.workspaces if w.created]

    @property
    def renamed(self) -> list[RegisteredWorkspace]:
        return [w for w in self.workspaces if w.renamed_from is not None]

    def summary(self) -> str:
        text = f"{len(self.workspaces)} workspaces ({len(self.created)} new, {len(self.renamed)} renamed)"
        if self.missing:
            text += f"; not listed by Email Bison any more: {', '.join(map(str, self.missing))}"
        return text


def _label(ws: Workspace) -> str:
    return ws.clean_name or f"Workspace {ws.id}"


async def sync_workspaces(
    store: Store, client: BisonClient, instance: str, *, include_main: bool = True
) -> WorkspaceSyncReport:
    """Register every workspace the client's key can list under `instance` (normalised like BISON_BASE_URL's host)."""
    host = instance_host(instance)
    listed = await client.list_workspaces()
    before = {r.bison_workspace_id: r for r in await api.workspaces(store, host)}
    registered: list[RegisteredWorkspace] = []
    for ws in sorted(listed, key=lambda w: w.id):
        if ws.main and not include_main:
            continue
        name = _label(ws)
        workspace_id = await api.upsert_workspace(store, host, ws.id, name)
        old = before.get(ws.id)
        renamed_from = old.name if old is not None and old.name != name else None
        if renamed_from is not None:
            log.info("workspace %d renamed: %r -> %r", ws.id, renamed_from, name)
        registered.append(
            RegisteredWorkspace(
                workspace_id=workspace_id,
                bison_workspace_id=ws.id,
                name=name,
                main=ws.main,
                created=old is None,
                renamed_from=renamed_from,
            )
        )
    listed_ids = {ws.id for ws in listed}
    missing = sorted(i for i, r in before.items() if r.active and i not in listed_ids)
    if missing:
        log.warning("%s: workspaces registered but not listed by Email Bison: %s", host, missing)
    return WorkspaceSyncReport(instance=host, workspaces=registered, missing=missing)

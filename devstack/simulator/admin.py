"""`/_sim/*`: the simulator's own control endpoints (no auth, never faulted, not counted).

GET    /_sim/state                       workspaces, mailbox counts, faults, counters
GET    /_sim/keys                        the super-admin key and every workspace key
GET    /_sim/faults                      current fault knobs
POST   /_sim/faults                      change some knobs: {"latency_ms": 5, "next_500": 3, "hang": [{"page": 2}]}
DELETE /_sim/faults                      all knobs back to defaults
POST   /_sim/release-hangs               answer every hanging request now
GET    /_sim/counters                    request counters (per route, per status, in-flight maxima, switches)
POST   /_sim/counters/reset
GET    /_sim/ledger                      distinct events recorded per workspace and type (what stats reports)
POST   /_sim/mailboxes/{id}/status       {"status": "Disconnected"}
DELETE /_sim/mailboxes/{id}              remove it (from every workspace, or `?workspace_id=N` only)
POST   /_sim/workspaces/{id}/mailboxes   {"count": 3}: add mailboxes
POST   /_sim/workspaces/{id}/rename      {"name": "New Name "}
"""

from __future__ import annotations

from collections import Counter

import msgspec

from devstack.simulator.asgi import HttpError, Request, Response, Router, invalid, json_response
from devstack.simulator.state import SimulatedBison


def add_admin_routes(router: Router, sim: SimulatedBison) -> None:
    def team_id(request: Request) -> int:
        try:
            value = int(request.params["id"])
        except ValueError:
            value = -1
        if value not in sim.teams:
            raise HttpError(404, "No such workspace.")
        return value

    def mailbox_id(request: Request) -> int:
        try:
            value = int(request.params["id"])
        except ValueError:
            value = -1
        if value not in sim.mailboxes:
            raise HttpError(404, "No such mailbox.")
        return value

    async def state(request: Request) -> Response:
        body = {**sim.summary(), "faults": sim.faults, "counters": sim.counters.snapshot()}
        return json_response(200, body)

    async def keys(request: Request) -> Response:
        return json_response(200, {"super_admin": sim.super_admin_key, "workspaces": sim.workspace_keys})

    async def get_faults(request: Request) -> Response:
        return json_response(200, sim.faults)

    async def set_faults(request: Request) -> Response:
        try:
            return json_response(200, sim.set_faults(**request.json()))
        except (msgspec.ValidationError, TypeError) as exc:
            raise HttpError(422, f"invalid fault settings: {exc}") from exc

    async def reset_faults(request: Request) -> Response:
        sim.reset_faults()
        return json_response(200, sim.faults)

    async def release_hangs(request: Request) -> Response:
        sim.release_hangs()
        return json_response(200, {"released": True})

    async def counters(request: Request) -> Response:
        return json_response(200, sim.counters.snapshot())

    async def reset_counters(request: Request) -> Response:
        sim.reset_counters()
        return json_response(200, sim.counters.snapshot())

    async def ledger(request: Request) -> Response:
        totals: dict[int, Counter[str]] = {}
        for (team, _day), entry in sim.ledger.items():
            totals.setdefault(team, Counter()).update(entry.events)
        return json_response(200, {str(t): dict(c) for t, c in totals.items()})

    async def set_status(request: Request) -> Response:
        status = request.json().get("status")
        try:
            return json_response(200, sim.set_mailbox_status(mailbox_id(request), str(status)))
        except ValueError as exc:
            raise invalid("status", str(exc)) from exc

    async def remove_mailbox(request: Request) -> Response:
        only = request.arg("workspace_id")
        try:
            sim.remove_mailbox(mailbox_id(request), int(only) if only else None)
        except (KeyError, ValueError) as exc:
            raise HttpError(404, "That workspace does not list that mailbox.") from exc
        return json_response(200, {"removed": True})

    async def add_mailboxes(request: Request) -> Response:
        count = request.json().get("count", 1)
        if not isinstance(count, int) or not 1 <= count <= 10_000:
            raise invalid("count", "count must be an integer from 1 to 10000")
        return json_response(201, {"data": sim.add_mailboxes(team_id(request), count)})

    async def rename(request: Request) -> Response:
        name = request.json().get("name")
        if not isinstance(name, str) or not name.strip():
            raise invalid("name", "name must be a non-empty string")
        return json_response(200, {"data": sim.rename_workspace(team_id(request), name)})

    for method, template, handler in (
        ("GET", "/_sim/state", state),
        ("GET", "/_sim/keys", keys),
        ("GET", "/_sim/faults", get_faults),
        ("POST", "/_sim/faults", set_faults),
        ("DELETE", "/_sim/faults", reset_faults),
        ("POST", "/_sim/release-hangs", release_hangs),
        ("GET", "/_sim/counters", counters),
        ("POST", "/_sim/counters/reset", reset_counters),
        ("GET", "/_sim/ledger", ledger),
        ("POST", "/_sim/mailboxes/{id}/status", set_status),
        ("DELETE", "/_sim/mailboxes/{id}", remove_mailbox),
        ("POST", "/_sim/workspaces/{id}/mailboxes", add_mailboxes),
        ("POST", "/_sim/workspaces/{id}/rename", rename),
    ):
        router.add(method, template, handler)

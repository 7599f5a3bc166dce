"""The simulator's API tokens: creation (the endpoint Email Bison documents), plus listing and revocation at the
paths bisonsync assumes (not in Email Bison's published reference), and `GET /api/users` to check a key.

Semantics, like the real instance as far as it is documented: only the super-admin key may manage tokens, with no
workspace switch; a created token is an `api-user` key scoped to its workspace, usable at once, shown only in the
creation answer (`{"data": {"id", "name", "plain_text_token"}}`, Sanctum-shaped `{id}|{40 chars}`). The token
routes go through the app's normal pipeline, so latency, 429/500 bursts and hangs apply to them too.

Knobs (`tokens_of(sim)`): `management_endpoints = False` makes listing and revocation answer 404 (an instance without
them); `revoke_team(team_id)` revokes every workspace key of a team out of band (an admin deleting it in the UI),
also over HTTP as `POST /_sim/tokens/revoke {"team_id": N}`.

Hooked into the app by `add_token_routes(app)` (one call in `SimulatorApp.__init__`).
"""

from __future__ import annotations

import random
import string
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from devstack.simulator.asgi import HttpError, Request, Response, invalid, json_response
from devstack.simulator.data import iso
from devstack.simulator.state import Credential, SimulatedBison

if TYPE_CHECKING:
    from devstack.simulator.app import SimulatorApp


@dataclass
class TokenRecord:
    id: int
    team_id: int
    name: str
    token: str = field(repr=False)
    created_at: str


@dataclass
class SimulatedTokens:
    sim: SimulatedBison
    management_endpoints: bool = True
    tokens: dict[int, TokenRecord] = field(default_factory=dict)
    created: int = 0
    revoked: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(f"bison-sim:{self.sim.seed}:tokens")
        self._next_id = 10_000

    def create(self, team_id: int, name: str) -> TokenRecord:
        self._next_id += 1
        token = f"{self._next_id}|" + "".join(self._rng.choices(string.ascii_letters + string.digits, k=40))
        record = TokenRecord(self._next_id, team_id, name, token, iso(self.sim.now()))
        self.tokens[record.id] = record
        self.sim._credentials[token] = Credential(token, False, team_id, f"workspace:{team_id}")
        self.created += 1
        return record

    def revoke(self, token_id: int) -> bool:
        record = self.tokens.pop(token_id, None)
        if record is None:
            return False
        self.sim._credentials.pop(record.token, None)
        self.revoked += 1
        return True

    def revoke_team(self, team_id: int) -> int:
        """Revoke every workspace key of `team_id` (created here or seeded)."""
        gone = [t for t, c in self.sim._credentials.items() if not c.super_admin and c.team_id == team_id]
        for token in gone:
            del self.sim._credentials[token]
        for record in [r for r in self.tokens.values() if r.team_id == team_id]:
            del self.tokens[record.id]
        self.revoked += len(gone)
        return len(gone)


_REGISTRY: weakref.WeakKeyDictionary[SimulatedBison, SimulatedTokens] = weakref.WeakKeyDictionary()


def tokens_of(sim: SimulatedBison) -> SimulatedTokens:
    tokens = _REGISTRY.get(sim)
    if tokens is None:
        tokens = _REGISTRY[sim] = SimulatedTokens(sim)
    return tokens


def add_token_routes(app: SimulatorApp) -> None:
    sim = app.sim
    tokens = tokens_of(sim)

    def team_of(request: Request) -> int:
        if not app.cred(request).super_admin:
            raise HttpError(403, "This action is unauthorized.")
        try:
            team_id = int(request.params["team_id"])
        except ValueError:
            raise HttpError(404, "Not found.") from None
        if team_id not in sim.teams:
            raise HttpError(404, "No query results for model [App\\Models\\Team].")
        return team_id

    async def create(request: Request) -> Response:
        team_id = team_of(request)
        name = request.json().get("name")
        if not isinstance(name, str) or not name.strip():
            raise invalid("name", "The name field is required.")
        if len(name) > 255:
            raise invalid("name", "The name field must not be greater than 255 characters.")
        record = tokens.create(team_id, name.strip())
        return json_response(200, {"data": {"id": record.id, "name": record.name, "plain_text_token": record.token}})

    async def listing(request: Request) -> Response:
        team_id = team_of(request)
        if not tokens.management_endpoints:
            raise HttpError(404, "Not found.")
        items = [
            {"id": r.id, "name": r.name, "created_at": r.created_at}
            for r in tokens.tokens.values()
            if r.team_id == team_id
        ]
        return json_response(200, {"data": items})

    async def revoke(request: Request) -> Response:
        team_id = team_of(request)
        if not tokens.management_endpoints:
            raise HttpError(404, "Not found.")
        try:
            token_id = int(request.params["token_id"])
        except ValueError:
            raise HttpError(404, "Not found.") from None
        record = tokens.tokens.get(token_id)
        if record is None or record.team_id != team_id:
            raise HttpError(404, "Not found.")
        tokens.revoke(token_id)
        return json_response(200, {"data": {"success": True, "message": "The API token has been deleted."}})

    async def users(request: Request) -> Response:
        cred = app.cred(request)
        return json_response(
            200, {"data": {"id": 1, "name": "Simulated Owner", "email": "owner@bison.local", "team_id": cred.team_id}}
        )

    async def admin_revoke(request: Request) -> Response:
        team_id = request.json().get("team_id")
        if not isinstance(team_id, int):
            raise invalid("team_id", "team_id must be an integer")
        return json_response(200, {"revoked": tokens.revoke_team(team_id)})

    app.api.add("POST", "/api/workspaces/v1.1/{team_id}/api-tokens", create)
    app.api.add("GET", "/api/workspaces/v1.1/{team_id}/api-tokens", listing)
    app.api.add("DELETE", "/api/workspaces/v1.1/{team_id}/api-tokens/{token_id}", revoke)
    app.api.add("GET", "/api/users", users)
    app.admin.add("POST", "/_sim/tokens/revoke", admin_revoke)

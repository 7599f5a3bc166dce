"""Email Bison's API-token endpoints, as far as the published reference confirms them.

Confirmed (docs.emailbison.com, "Creating API Keys"): `POST /api/workspaces/v1.1/{workspace_id}/api-tokens` with a
JSON body `{"name": ...}`, authenticated with a super-admin key, no workspace switch needed; it creates an
`api-user` key scoped to that workspace. NOT documented: the shape of the answer, and any listing or revocation
endpoint. So:

- the answer is read defensively: the token text from `data.plain_text_token` / `plainTextToken` / `token` (or the
  same keys at top level), its id from `data.id` or the `{id}|` prefix Laravel Sanctum tokens carry; an answer
  without a token is a `BisonProtocolError` (nothing is stored);
- listing and revocation are tried at the REST-conventional paths (`GET .../api-tokens`,
  `DELETE .../api-tokens/{id}`); a 404 or 405 there means "not available" and is reported, never guessed around.
  The old key then stays valid at Email Bison until someone deletes it under Settings -> Developer API.

Creation is not idempotent at Email Bison, so it is never retried after the request may have been sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from bisonsync.bison import BisonClient, BisonError, BisonNotFound, BisonProtocolError, BisonRequestError


def tokens_path(team_id: int) -> str:
    return f"/api/workspaces/v1.1/{int(team_id)}/api-tokens"


@dataclass(frozen=True, slots=True)
class CreatedToken:
    token: str = field(repr=False)
    #: Email Bison's id of the token (to revoke it later), when the answer or the token itself tells it
    token_id: str | None
    team_id: int

    @property
    def suffix(self) -> str:
        return "…" + self.token[-4:]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token_id: str
    name: str


_TOKEN_FIELDS = ("plain_text_token", "plainTextToken", "token", "api_token", "key")


def _token_in(body: Any) -> tuple[str | None, str | None]:
    """(token, id) from an answer whose exact shape is not documented."""
    candidates = [body.get("data"), body] if isinstance(body, dict) else []
    for obj in candidates:
        if not isinstance(obj, dict):
            continue
        for name in _TOKEN_FIELDS:
            value = obj.get(name)
            if isinstance(value, str) and value.strip():
                raw_id = obj.get("id")
                if raw_id is None and isinstance(obj.get("accessToken"), dict):
                    raw_id = obj["accessToken"].get("id")
                return value.strip(), str(raw_id) if raw_id is not None else None
    return None, None


def _id_from_prefix(token: str) -> str | None:
    head, sep, _ = token.partition("|")
    return head if sep and head.isdigit() else None


async def create_api_token(client: BisonClient, team_id: int, name: str) -> CreatedToken:
    """Create a workspace-scoped (`api-user`) key for `team_id` with the client's super-admin key."""
    path = tokens_path(team_id)
    resp = await client._request("POST", path, json={"name": name}, idempotent=False, scoped=False)
    try:
        body = msgspec.json.decode(resp.content)
    except msgspec.DecodeError as exc:
        raise BisonProtocolError("the token answer is not JSON", method="POST", path=path) from exc
    token, token_id = _token_in(body)
    if token is None or any(c.isspace() for c in token):
        raise BisonProtocolError("the answer carries no API token", method="POST", path=path)
    return CreatedToken(token=token, token_id=token_id or _id_from_prefix(token), team_id=int(team_id))


async def list_api_tokens(client: BisonClient, team_id: int) -> list[TokenInfo] | None:
    """The workspace's tokens (never their text), or None when the instance offers no listing."""
    path = tokens_path(team_id)
    try:
        resp = await client._request("GET", path, scoped=False)
    except (BisonNotFound, BisonRequestError) as exc:
        if isinstance(exc, BisonNotFound) or exc.status_code == 405:
            return None
        raise
    try:
        body = msgspec.json.decode(resp.content)
    except msgspec.DecodeError as exc:
        raise BisonProtocolError("the token listing is not JSON", method="GET", path=path) from exc
    items = body.get("data") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise BisonProtocolError("the token listing has no list of tokens", method="GET", path=path)
    return [TokenInfo(str(t.get("id")), str(t.get("name", ""))) for t in items if isinstance(t, dict) and "id" in t]


async def revoke_api_token(client: BisonClient, team_id: int, token_id: str) -> bool:
    """Revoke one token; False when the instance has no such endpoint or no such token (404/405)."""
    path = f"{tokens_path(team_id)}/{token_id}"
    try:
        await client._request("DELETE", path, scoped=False)
    except BisonError as exc:
        if exc.status_code in (404, 405):
            return False
        raise
    return True

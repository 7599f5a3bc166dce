"""Realtime's REST broadcast API under `/realtime/v1/api/broadcast`, for sending without a joined channel.

- `POST /api/broadcast` `{"messages": [{"topic", "event", "payload", "private"}]}` (supabase-js `channel.send()`
  when the channel is not joined, and `httpSend`).
- `POST /api/broadcast/<topic>/events/<event>[?private=true]` with the JSON payload as the body (realtime-py
  `http_send`).

The token is the bearer token, else the `apikey` (the stack's `sb_` keys translated). Both answer 202 with no
body. Messages go straight to the joined channels of `(topic, private)`, as a client broadcast does; a private
message needs write permission for broadcasts from RLS on `realtime.messages` (else it is skipped, still 202).
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Request, Response, post
from litestar.datastructures import State

from devstack.auth import TokenError, http_bearer
from devstack.realtime.channel import check_token
from devstack.realtime.hub import RealtimeHub
from devstack.realtime.protocol import encode_json

AnyRequest = Request[Any, Any, State]


def _error(status: int, message: str) -> Response[Any]:
    return Response({"error": message}, status_code=status)


def _authenticate(request: AnyRequest) -> dict[str, object] | Response[Any]:
    """The caller's claims, or the 401 to answer (checked before the body is looked at)."""
    hub: RealtimeHub = request.app.state.gateway.realtime
    token = http_bearer(request.headers, hub.keys)
    if token is None:
        return _error(401, "No api key provided")
    try:
        return check_token(token, hub.keys)
    except TokenError as exc:
        return _error(401, str(exc))


async def _send(
    request: AnyRequest, claims: dict[str, object], messages: list[tuple[str, str, Any, bool]]
) -> Response[Any]:
    hub: RealtimeHub = request.app.state.gateway.realtime
    role, claims_json = str(claims["role"]), encode_json(claims)
    allowed: dict[str, bool] = {}
    for topic, event, payload, private in messages:
        if private:
            if topic not in allowed:
                permissions = await hub.authorize(topic, role, claims_json)
                allowed[topic] = permissions.can_write("broadcast")
            if not allowed[topic]:
                continue
        body = encode_json({"type": "broadcast", "event": event, "payload": payload})
        hub.topics.broadcast(None, (topic, private), body)
    return Response(None, status_code=202)


@post("/api/broadcast", name="realtime-broadcast-api", include_in_schema=False, status_code=202)
async def broadcast_api(request: AnyRequest, body: bytes) -> Response[Any]:
    claims = _authenticate(request)
    if isinstance(claims, Response):
        return claims
    try:
        data = json.loads(body or b"null")
    except ValueError:
        return _error(400, "Invalid JSON body")
    raw = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(raw, list) or not raw:
        return _error(422, "messages must be a non-empty list")
    messages: list[tuple[str, str, Any, bool]] = []
    for item in raw:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("topic"), str)
            or not isinstance(item.get("event"), str)
        ):
            return _error(422, "every message needs a string topic and event")
        topic = item["topic"].removeprefix("realtime:")
        messages.append((topic, item["event"], item.get("payload"), item.get("private") is True))
    return await _send(request, claims, messages)


@post(
    "/api/broadcast/{topic:str}/events/{event:str}",
    name="realtime-broadcast-event-api",
    include_in_schema=False,
    status_code=202,
)
async def broadcast_event_api(request: AnyRequest, topic: str, event: str, body: bytes) -> Response[Any]:
    claims = _authenticate(request)
    if isinstance(claims, Response):
        return claims
    if not request.headers.get("content-type", "").startswith("application/json"):
        return _error(415, "Only JSON payloads are supported by the devstack")
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        return _error(400, "Invalid JSON body")
    private = request.query_params.get("private") == "true"
    return await _send(request, claims, [(topic.removeprefix("realtime:"), event, payload, private)])

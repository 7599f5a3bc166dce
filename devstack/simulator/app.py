"""The simulator's ASGI app: the Email Bison API subset bisonsync uses (spec §3), with injectable faults.

Every /api request goes through the same pipeline: count it, wait the configured latency, authenticate the bearer
token, maybe answer 429 or 500, maybe hang, run the handler, maybe cut the body. The super-admin key's current
workspace is read when the handler runs (after the latency), like a real server reading its session state, so
unserialized switch + list sequences on one key really do mix workspaces here.
"""

from __future__ import annotations

import asyncio
import math
import random
from datetime import date
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec

from bisonsync.bison.models import EVENT_TYPES, SUBSCRIBABLE_EVENT_TYPES, event_type_key
from devstack.simulator.admin import add_admin_routes
from devstack.simulator.asgi import (
    ASGIApp,
    HttpError,
    Receive,
    Request,
    Response,
    Route,
    Router,
    Scope,
    Send,
    invalid,
    is_loopback_url,
    json_response,
    lifespan,
)
from devstack.simulator.events import EventFactory
from devstack.simulator.state import Credential, SimulatedBison, WebhookRecord
from devstack.simulator.tokens import add_token_routes


class SimulatorApp:
    def __init__(self, sim: SimulatedBison) -> None:
        self.sim = sim
        self.samples = EventFactory(sim, random.Random(f"bison-sim:{sim.seed}:samples"))
        self.api = Router()
        self.admin = Router()
        add_admin_routes(self.admin, sim)
        for method, template, handler in (
            ("GET", "/api/workspaces/v1.1", self.list_workspaces),
            ("GET", "/api/workspaces/v1.1/stats", self.stats),
            ("POST", "/api/workspaces/v1.1/switch-workspace", self.switch),
            ("POST", "/api/workspaces/switch-workspace", self.switch),  # deprecated v1 path, same behaviour
            ("GET", "/api/sender-emails", self.list_sender_emails),
            ("GET", "/api/sender-emails/{id}", self.get_sender_email),
            ("GET", "/api/webhook-url", self.list_webhooks),
            ("POST", "/api/webhook-url", self.create_webhook),
            ("GET", "/api/webhook-url/{id}", self.get_webhook),
            ("PUT", "/api/webhook-url/{id}", self.update_webhook),
            ("DELETE", "/api/webhook-url/{id}", self.delete_webhook),
            ("GET", "/api/webhook-events/event-types", self.event_types),
            ("GET", "/api/webhook-events/sample-payload", self.sample_payload),
            ("POST", "/api/webhook-events/test-event", self.test_event),
        ):
            self.api.add(method, template, handler)
        add_token_routes(self)  # API tokens and GET /api/users (devstack/simulator/tokens.py)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = await Request.read(scope, receive)
        if request.path.startswith("/_sim/"):
            await (await self._dispatch(self.admin, request)).send(send)
            return
        try:
            route, request.params = self.api.match(request.method, request.path)
        except HttpError as exc:
            await exc.response().send(send)
            return
        cred = self.sim.credential(request.bearer() or "")
        key = cred.label if cred else "anonymous"
        self.sim.counters.enter(route.name, key)
        status = 499  # nginx's "client closed request": the caller gave up (timeout) before we answered
        try:
            response = await self._api(request, route, cred)
            status = response.status
            await response.send(send)
        finally:
            self.sim.counters.leave(key, status)

    async def _dispatch(self, router: Router, request: Request) -> Response:
        try:
            route, request.params = router.match(request.method, request.path)
            return await route.handler(request)
        except HttpError as exc:
            return exc.response()

    async def _api(self, request: Request, route: Route, cred: Credential | None) -> Response:
        sim, faults = self.sim, self.sim.faults
        delay_ms = faults.latency_ms + (sim.rng.uniform(0, faults.jitter_ms) if faults.jitter_ms else 0.0)
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        if cred is None:
            return HttpError(401, "Unauthenticated.").response()
        if faults.next_429 > 0 or (faults.rate_429 and sim.rng.random() < faults.rate_429):
            faults.next_429 = max(0, faults.next_429 - 1)
            headers = [("Retry-After", faults.retry_after)] if faults.retry_after else []
            return json_response(429, {"message": "Too Many Attempts."}, headers)
        if faults.next_500 > 0 or (faults.rate_500 and sim.rng.random() < faults.rate_500):
            faults.next_500 = max(0, faults.next_500 - 1)
            return json_response(500, {"message": "Server Error"})
        team_id = cred.team_id
        page = request.int_arg("page", 1)
        if faults.take(faults.hang, request.path, team_id, page):
            await sim.hang()
        request.credential = cred
        try:
            response = await route.handler(request)
        except HttpError as exc:
            response = exc.response()
        if response.status == 200 and faults.take(faults.broken_json, request.path, team_id, page):
            response.body = response.body[: max(1, len(response.body) // 2)]
        return response

    @staticmethod
    def cred(request: Request) -> Credential:
        assert request.credential is not None, "API handlers run only after authentication"
        return request.credential

    def team(self, request: Request) -> int:
        """The workspace this request acts on: the key's own, or the super-admin key's current one."""
        return self.cred(request).team_id

    # -- pagination -------------------------------------------------------------------------------------------

    def page(self, request: Request, items: list[Any]) -> Response:
        """Laravel's paginator, 15 per page whatever `per_page` says, with the page faults applied."""
        sim, faults = self.sim, self.sim.faults
        size = sim.page_size
        page = max(1, request.int_arg("page", 1))
        total = len(items)
        last = max(1, math.ceil(total / size))
        chunk = items[(page - 1) * size : page * size]
        kept = [(k, v) for k, values in request.query.items() if k != "page" for v in values]

        def link(n: int) -> str:
            return f"{request.origin}{request.path}?{urlencode([*kept, ('page', n)])}"

        next_link = link(page + 1) if page < last else None
        team_id = self.team(request)
        if faults.take(faults.null_next, request.path, team_id, page):
            next_link = None
        if faults.take(faults.empty_page, request.path, team_id, page):
            chunk, next_link = [], link(page + 1)
        if faults.take(faults.bare_data, request.path, team_id, page):
            return json_response(200, {"data": chunk})
        first = (page - 1) * size + 1
        body = {
            "data": chunk,
            "links": {
                "first": link(1),
                "last": link(last),
                "prev": link(page - 1) if page > 1 else None,
                "next": next_link,
            },
            "meta": {
                "current_page": page,
                "from": first if chunk else None,
                "last_page": last,
                "path": f"{request.origin}{request.path}",
                "per_page": size,
                "to": first + len(chunk) - 1 if chunk else None,
                "total": total,
            },
        }
        return json_response(200, body)

    # -- workspaces -------------------------------------------------------------------------------------------

    async def list_workspaces(self, request: Request) -> Response:
        cred = self.cred(request)
        teams = list(self.sim.teams.values()) if cred.super_admin else [self.sim.teams[cred.team_id]]
        return json_response(200, {"data": teams})

    async def switch(self, request: Request) -> Response:
        body = request.json()
        if not self.cred(request).super_admin:
            raise HttpError(403, "This action is unauthorized.")
        team_id = body.get("team_id")
        if team_id is None:
            raise invalid("team_id", "The team id field is required.")
        if not isinstance(team_id, int) or team_id not in self.sim.teams:
            raise invalid("team_id", "The selected team id is invalid.")
        self.sim.switch(self.cred(request).token, team_id)
        # what real instances answer: the name only (no id to check the switch against)
        return json_response(200, {"data": {"name": self.sim.teams[team_id].name}})

    async def stats(self, request: Request) -> Response:
        dates = []
        for name in ("start_date", "end_date"):
            try:
                dates.append(date.fromisoformat(request.arg(name) or ""))
            except ValueError:
                raise invalid(name, f"The {name.replace('_', ' ')} field must be a valid date.") from None
        return json_response(200, {"data": self.sim.stats(self.team(request), dates[0], dates[1])})

    # -- mailboxes --------------------------------------------------------------------------------------------

    async def list_sender_emails(self, request: Request) -> Response:
        mailboxes = self.sim.mailboxes_of(self.team(request))
        search = (request.arg("search") or "").lower()
        if search:
            mailboxes = [m for m in mailboxes if search in m.email.lower() or search in m.name.lower()]
        return self.page(request, mailboxes)

    async def get_sender_email(self, request: Request) -> Response:
        mailbox_id = _int(request.params["id"])
        if mailbox_id not in self.sim.team_mailboxes[self.team(request)]:
            raise HttpError(404, "Sender email not found.")
        return json_response(200, {"data": self.sim.mailboxes[mailbox_id]})

    # -- webhooks ---------------------------------------------------------------------------------------------

    def _hook(self, request: Request) -> WebhookRecord:
        hook = self.sim.webhooks[self.team(request)].get(_int(request.params["id"]))
        if hook is None:
            raise HttpError(404, "Webhook not found.")
        return hook

    @staticmethod
    def _hook_fields(body: dict[str, Any]) -> tuple[str, str, list[str]]:
        name, url, events = body.get("name"), body.get("url"), body.get("events")
        if not isinstance(name, str) or not name.strip():
            raise invalid("name", "The name field is required.")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise invalid("url", "The url field must be a valid URL.")
        if not isinstance(events, list) or not events:
            raise invalid("events", "The events field is required.")
        if not all(isinstance(e, str) for e in events):
            raise invalid("events", "The events field must be a list of event types.")
        unknown = [e for e in events if event_type_key(e) not in SUBSCRIBABLE_EVENT_TYPES]
        if unknown:
            raise invalid("events", f"The selected events are invalid: {unknown}.")
        return name, url, list(dict.fromkeys(event_type_key(e) for e in events))

    async def list_webhooks(self, request: Request) -> Response:
        # a bare list, as real instances answer it (no links, no meta)
        return json_response(200, {"data": list(self.sim.webhooks[self.team(request)].values())})

    async def create_webhook(self, request: Request) -> Response:
        name, url, events = self._hook_fields(request.json())
        return json_response(201, {"data": self.sim.create_webhook(self.team(request), name, url, events)})

    async def get_webhook(self, request: Request) -> Response:
        return json_response(200, {"data": self._hook(request)})

    async def update_webhook(self, request: Request) -> Response:
        hook = self._hook(request)
        hook.name, hook.url, hook.events = self._hook_fields(request.json())
        hook.updated_at = self.sim.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return json_response(200, {"data": hook})

    async def delete_webhook(self, request: Request) -> Response:
        hook = self._hook(request)
        del self.sim.webhooks[self.team(request)][hook.id]
        return json_response(200, {"data": {"success": True, "message": "Webhook deleted."}})

    async def event_types(self, request: Request) -> Response:
        """The 13 subscribable types (a bare list)."""
        return json_response(200, {"data": [{"id": k, "name": EVENT_TYPES[k]} for k in SUBSCRIBABLE_EVENT_TYPES]})

    def _event_type(self, value: object) -> str:
        key = event_type_key(value) if isinstance(value, str) else ""
        if key not in EVENT_TYPES:
            raise invalid("event_type", "The selected event type is invalid.")
        return key

    async def sample_payload(self, request: Request) -> Response:
        event_type = self._event_type(request.arg("event_type"))
        return json_response(200, {"data": self.samples.sample(event_type, self.team(request))})

    async def test_event(self, request: Request) -> Response:
        body = request.json()
        event_type = self._event_type(body.get("event_type"))
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise invalid("url", "The url field must be a valid URL.")
        if self.sim.webhook_transport is None and not is_loopback_url(url):
            raise invalid("url", "The simulator only delivers to loopback addresses.")
        payload = msgspec.json.encode(self.samples.sample(event_type, self.team(request)))
        status: int | None = None
        try:
            async with httpx.AsyncClient(transport=self.sim.webhook_transport, timeout=5.0) as client:
                resp = await client.post(url, content=payload, headers={"Content-Type": "application/json"})
                status = resp.status_code
        except httpx.HTTPError:
            status = None
        self.sim.test_events.append((url, event_type, status))
        ok = status is not None and 200 <= status < 300
        message = "Test webhook event sent." if ok else "The test webhook event could not be delivered."
        return json_response(
            200, {"data": {"success": ok, "message": message, "payload": msgspec.json.decode(payload)}}
        )


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise HttpError(404, "Not found.") from None


def create_simulator_app(sim: SimulatedBison) -> ASGIApp:
    """The ASGI app serving `sim` (use with uvicorn, or in-process with `httpx.ASGITransport(app=...)`)."""
    return SimulatorApp(sim)

"""The Email Bison API calls, shared by `BisonClient` (default key) and `WorkspaceSession` (one workspace).

`Endpoints` says what each call sends and how its answer decodes; subclasses decide which key a request uses and
what it must hold while it runs (`_request`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import msgspec

from bisonsync.bison.errors import BisonProtocolError
from bisonsync.bison.models import (
    EventType,
    Item,
    Page,
    SenderEmail,
    TestEventResult,
    Webhook,
    Workspace,
    WorkspaceStats,
)
from bisonsync.bison.pagination import PageStep, paginate, walk_pages

if TYPE_CHECKING:
    from bisonsync.bison.client import BisonClient

T = TypeVar("T")

#: what Email Bison serves per page, whatever `per_page` asks for
PAGE_SIZE = 15

_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def decode(resp: httpx.Response, type_: type[T], method: str, path: str) -> T:
    """The body as `type_` (decoders built once per type); a `BisonProtocolError` when it is not one."""
    decoder = _DECODERS.get(type_)
    if decoder is None:
        decoder = _DECODERS[type_] = msgspec.json.Decoder(type_, strict=False)
    try:
        result: T = decoder.decode(resp.content)
    except msgspec.DecodeError as exc:
        raise BisonProtocolError(
            f"unexpected answer ({len(resp.content)} bytes): {exc}",
            status_code=resp.status_code,
            method=method,
            path=path,
        ) from exc
    return result


def api_url(base: httpx.URL, target: str | httpx.URL, params: Mapping[str, str | int] | None = None) -> httpx.URL:
    """`target` (an API path like "/api/sender-emails", or a full URL) with `params` merged into its query."""
    url = target if isinstance(target, httpx.URL) else base.copy_with(path=base.path.rstrip("/") + target)
    return url.copy_merge_params(dict(params)) if params else url


class Endpoints:
    """The API calls. Subclasses decide which key each request uses and what it must hold while it runs."""

    #: the client whose pool, base URL and page cap the calls use
    _owner: BisonClient

    async def _request(
        self,
        method: str,
        target: str | httpx.URL,
        *,
        params: Mapping[str, str | int] | None = None,
        json: object = None,
        idempotent: bool = True,
        scoped: bool = True,
    ) -> httpx.Response:
        raise NotImplementedError

    async def _get(
        self, path: str, type_: type[T], *, params: Mapping[str, str | int] | None = None, scoped: bool = True
    ) -> T:
        resp = await self._request("GET", path, params=params, scoped=scoped)
        return decode(resp, type_, "GET", path)

    async def _pages(
        self, path: str, page_type: type[Page[T]], params: Mapping[str, str | int] | None = None, *, scoped: bool = True
    ) -> AsyncIterator[Page[T]]:
        async def fetch(url: httpx.URL) -> Page[T]:
            resp = await self._request("GET", url, scoped=scoped)
            return decode(resp, page_type, "GET", path)

        base = self._owner.base_url
        first = api_url(base, path, params)
        async for page in paginate(fetch, first, base, max_pages=self._owner.max_pages):
            yield page

    async def _all(self, path: str, page_type: type[Page[T]], *, scoped: bool = True) -> list[T]:
        return [item async for page in self._pages(path, page_type, scoped=scoped) for item in page.data]

    # -- workspaces -------------------------------------------------------------------------------------------

    async def list_workspaces(self) -> list[Workspace]:
        """Every team the key can see (one for a workspace key). Names are raw; see `Workspace.clean_name`."""
        return await self._all("/api/workspaces/v1.1", Page[Workspace], scoped=False)

    async def workspace_stats(self, start: date, end: date) -> WorkspaceStats:
        """KPI totals of the current workspace over `start`..`end` (inclusive)."""
        params = {"start_date": start.isoformat(), "end_date": end.isoformat()}
        raw = await self._get("/api/workspaces/v1.1/stats", Item[dict[str, Any]], params=params)
        return WorkspaceStats.from_mapping(raw.data)

    # -- mailboxes --------------------------------------------------------------------------------------------

    async def iter_sender_email_pages(
        self, *, per_page: int = PAGE_SIZE, search: str | None = None
    ) -> AsyncIterator[Page[SenderEmail]]:
        """Every non-empty page of the current workspace's mailboxes, in order (15 per page whatever `per_page`)."""
        params: dict[str, str | int] = {"per_page": per_page, "page": 1}
        if search:
            params["search"] = search
        async for page in self._pages("/api/sender-emails", Page[SenderEmail], params):
            yield page

    async def sender_email_pages_from(
        self, start: httpx.URL, *, max_pages: int | None = None
    ) -> AsyncIterator[PageStep[SenderEmail]]:
        """The mailbox listing from any page on (a resume cursor), each step with its URL and the next one, the
        empty page that ends the listing included; same key, retries and page cap as every call."""

        async def fetch(url: httpx.URL) -> Page[SenderEmail]:
            resp = await self._request("GET", url)
            return decode(resp, Page[SenderEmail], "GET", "/api/sender-emails")

        cap = self._owner.max_pages if max_pages is None else max_pages
        async for step in walk_pages(fetch, start, self._owner.base_url, max_pages=cap):
            yield step

    async def list_sender_emails(self, *, per_page: int = PAGE_SIZE, search: str | None = None) -> list[SenderEmail]:
        """All mailboxes of the current workspace; raises rather than return a partial list."""
        return [m async for page in self.iter_sender_email_pages(per_page=per_page, search=search) for m in page.data]

    # -- webhooks ---------------------------------------------------------------------------------------------

    async def list_webhooks(self) -> list[Webhook]:
        """The current workspace's webhook registrations (ids are per workspace)."""
        return await self._all("/api/webhook-url", Page[Webhook])

    async def get_webhook(self, webhook_id: int) -> Webhook:
        return (await self._get(f"/api/webhook-url/{int(webhook_id)}", Item[Webhook])).data

    async def create_webhook(self, name: str, url: str, events: Sequence[str]) -> Webhook:
        """Register `url` for `events` in the current workspace. Not retried after it may have reached the server."""
        body = {"name": name, "url": url, "events": list(events)}
        resp = await self._request("POST", "/api/webhook-url", json=body, idempotent=False)
        return decode(resp, Item[Webhook], "POST", "/api/webhook-url").data

    async def update_webhook(
        self, webhook_id: int, *, name: str | None = None, url: str | None = None, events: Sequence[str] | None = None
    ) -> Webhook:
        """PUT replaces the registration; fields left None keep their current value (read first)."""
        path = f"/api/webhook-url/{int(webhook_id)}"
        if name is None or url is None or events is None:
            current = await self.get_webhook(webhook_id)
            name = current.name if name is None else name
            url = current.url if url is None else url
            events = current.events if events is None else events
        body = {"name": name, "url": url, "events": list(events)}
        return decode(await self._request("PUT", path, json=body), Item[Webhook], "PUT", path).data

    async def delete_webhook(self, webhook_id: int) -> None:
        await self._request("DELETE", f"/api/webhook-url/{int(webhook_id)}")

    async def event_types(self) -> list[EventType]:
        """The webhook event types the instance offers for subscription (13 on current Email Bison)."""
        return await self._all("/api/webhook-events/event-types", Page[EventType], scoped=False)

    async def sample_payload(self, event_type: str) -> dict[str, Any]:
        """Email Bison's sample body for `event_type` (the exact shape of events never seen in the wild)."""
        params = {"event_type": event_type}
        return (await self._get("/api/webhook-events/sample-payload", Item[dict[str, Any]], params=params)).data

    async def send_test_event(self, event_type: str, url: str) -> TestEventResult:
        """Ask Email Bison to POST a sample `event_type` delivery to `url`."""
        body = {"event_type": event_type, "url": url}
        path = "/api/webhook-events/test-event"
        resp = await self._request("POST", path, json=body, idempotent=False)
        return decode(resp, Item[TestEventResult], "POST", path).data

"""Pages of `GET /api/sender-emails` for the poller: resumable from a stored cursor, and rows for the database.

`iter_pages_from` uses the client's own walker (`sender_email_pages_from`: links.next rebased on our base URL,
meta fallback, loop detection, page cap), starting at any page (the resume cursor stored in
`sync_run_workspaces.next_page_url`) and including the empty page that ends a listing, so its `meta.total`
reaches the database (the sweep compares what was listed with meta.total).

`FetchedPage.unverified` says why a page cannot help prove the listing complete: no `meta` (the bare
`{"data": [...]}` of the API reference's own example), or a listing that ended before `meta.last_page`. The
database keeps the first such reason and then sweeps nothing for the workspace in that run.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec

from bisonsync.bison import PAGE_SIZE, Page, SenderEmail, WorkspaceSession, canonical_status
from bisonsync.bison.endpoints import api_url
from bisonsync.sync.classify import TagRules, domain_of

log = logging.getLogger("bisonsync.sync")

SENDER_EMAILS = "/api/sender-emails"
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class FetchedPage:
    url: httpx.URL
    page: Page[SenderEmail]
    #: the page after this one; None when this page ends the listing (last page, or empty)
    next_url: httpx.URL | None
    #: when the request was sent: the event time of the statuses it carries
    observed_at: datetime

    @property
    def listing_total(self) -> int | None:
        return self.page.meta.total if self.page.meta is not None else None

    @property
    def unverified(self) -> str | None:
        """Why this page leaves the listing unproven (None: it does not): no `meta` at all, or the listing ends
        here although `meta.last_page` says more pages exist."""
        meta = self.page.meta
        if meta is None:
            kind = "a bare {data} answer" if self.page.links is None else "links but no meta"
            return f"{kind} ({len(self.page.data)} items): the listing cannot be proven complete"
        if self.next_url is None and meta.current_page < meta.last_page:
            what = "an empty page" if not self.page.data else "a page without a next link"
            return f"the listing ended at page {meta.current_page} of {meta.last_page} ({what})"
        return None


def first_page_url(base: httpx.URL) -> httpx.URL:
    return api_url(base, SENDER_EMAILS, {"per_page": PAGE_SIZE, "page": 1})


def cursor_of(url: httpx.URL | None) -> str | None:
    """What the run record stores: path and query only (the host comes from BISON_BASE_URL when resuming)."""
    return url.raw_path.decode("ascii") if url is not None else None


def url_of(cursor: str, base: httpx.URL) -> httpx.URL:
    return base.copy_with(raw_path=cursor.encode("ascii"))


async def iter_pages_from(
    session: WorkspaceSession,
    start: httpx.URL,
    *,
    max_pages: int,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AsyncGenerator[FetchedPage, None]:
    """Every page from `start` to the end of the listing, the ending empty page included; at most `max_pages`.
    Each page carries the time its request was sent (the event time of the statuses it reports)."""
    steps = session.sender_email_pages_from(start, max_pages=max_pages)
    while True:
        observed_at = clock()
        try:
            step = await anext(steps)
        except StopAsyncIteration:
            return
        yield FetchedPage(url=step.url, page=step.page, next_url=step.next_url, observed_at=observed_at)


def normalise_status(raw: str | None) -> str | None:
    """Email Bison's status in its canonical spelling (`connected` -> `Connected`, `Pending Move` ->
    `pending_move`); an unknown status is kept as sent; None when there is none (then it is not applied)."""
    return canonical_status(raw)


def mailbox_row(mailbox: SenderEmail, rules: TagRules) -> dict[str, Any]:
    """One element of `sync_mailbox_page`'s p_rows: the mailbox as Bison sent it, plus its classification."""
    tags = msgspec.to_builtins(mailbox.tags)
    kind = rules.classify(t.name for t in mailbox.tags)
    status = normalise_status(mailbox.status)
    return {
        "id": mailbox.id,
        "email": mailbox.email,
        "name": mailbox.name,
        "status": status,
        "type": mailbox.type,
        "daily_limit": mailbox.daily_limit,
        "emails_sent_count": mailbox.emails_sent_count,
        "total_replied_count": mailbox.total_replied_count,
        "unique_replied_count": mailbox.unique_replied_count,
        "bounced_count": mailbox.bounced_count,
        "unsubscribed_count": mailbox.unsubscribed_count,
        "interested_leads_count": mailbox.interested_leads_count,
        "total_opened_count": mailbox.total_opened_count,
        "unique_opened_count": mailbox.unique_opened_count,
        "total_leads_contacted_count": mailbox.total_leads_contacted_count,
        "warmup_enabled": mailbox.warmup_enabled,
        "tags": tags,
        "email_provider": kind.provider,
        "provider_tag": kind.provider_tag,
        "reseller": kind.reseller,
        "reseller_tag": kind.reseller_tag,
        "domain": domain_of(mailbox.email),
    }


def rows_json(mailboxes: Iterable[SenderEmail], rules: TagRules) -> bytes:
    """p_rows as a JSON document (both stores pass bytes through as JSON)."""
    return _encode([mailbox_row(m, rules) for m in mailboxes])

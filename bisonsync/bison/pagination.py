"""Laravel pagination as Email Bison serves it, with its traps (spec §3.3, §6.11).

- `/api/sender-emails` gives 15 items per page whatever `per_page` says: never infer the end from a short page.
- Follow `links.next`; if it is null but `meta.current_page < meta.last_page`, build the next page from `meta`.
- Stop on an empty page.
- Cap the number of pages and fail loudly (`PaginationCapExceeded`) instead of returning a partial listing.
- Next links are rebased onto our own base URL: the server's idea of its address (Laravel's APP_URL) may differ
  from the one we reach it by, and the bearer token must never follow a link to another origin.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from bisonsync.bison.errors import BisonProtocolError, PaginationCapExceeded
from bisonsync.bison.models import Page
from bisonsync.settings import DEFAULT_MAX_PAGES

T = TypeVar("T")

log = logging.getLogger("bisonsync.bison")


def rebase(url: httpx.URL, base: httpx.URL) -> httpx.URL:
    """`url`'s path and query on `base`'s scheme, host and port."""
    return base.copy_with(raw_path=url.raw_path)


def next_page_url(page: Page[Any], current: httpx.URL, base: httpx.URL) -> httpx.URL | None:
    """Where the page after `page` (fetched from `current`) is, or None when `page` was the last."""
    if page.links is not None and page.links.next:
        try:
            return rebase(httpx.URL(page.links.next), base)
        except httpx.InvalidURL as exc:
            raise BisonProtocolError(f"unreadable links.next {page.links.next!r}: {exc}") from exc
    meta = page.meta
    if meta is not None and meta.current_page < meta.last_page:
        log.info(
            "links.next is null on page %d of %d of %s; building the next page from meta",
            meta.current_page,
            meta.last_page,
            current.path,
        )
        return current.copy_set_param("page", str(meta.current_page + 1))
    return None


@dataclass(frozen=True, slots=True)
class PageStep(Generic[T]):
    """One fetched page of a listing, where it came from and where the next one is (None: the listing ended)."""

    url: httpx.URL
    page: Page[T]
    next_url: httpx.URL | None


async def walk_pages(
    fetch: Callable[[httpx.URL], Awaitable[Page[T]]],
    first: httpx.URL,
    base: httpx.URL,
    *,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> AsyncIterator[PageStep[T]]:
    """Every page from `first` to the end of the listing, including the empty page that ends it (its `meta` still
    tells the listing's total); loop detection; `PaginationCapExceeded` past `max_pages` (with the next URL, so a
    caller can resume there)."""
    url: httpx.URL | None = first
    seen: set[str] = set()
    fetched = 0
    while url is not None:
        if fetched >= max_pages:
            cap = PaginationCapExceeded(
                f"still more pages after {max_pages} pages of {first.path}", method="GET", path=first.path
            )
            cap.max_pages = max_pages
            cap.next_url = url.raw_path.decode("ascii")
            raise cap
        key = str(url)
        if key in seen:
            raise BisonProtocolError(
                f"pagination loop: {url.raw_path.decode('ascii')} was served twice", method="GET", path=first.path
            )
        seen.add(key)
        page = await fetch(url)
        fetched += 1
        nxt = next_page_url(page, url, base) if page.data else None
        yield PageStep(url, page, nxt)
        url = nxt


async def paginate(
    fetch: Callable[[httpx.URL], Awaitable[Page[T]]],
    first: httpx.URL,
    base: httpx.URL,
    *,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> AsyncIterator[Page[T]]:
    """Yield every non-empty page, starting at `first`; raise `PaginationCapExceeded` past `max_pages`."""
    async for step in walk_pages(fetch, first, base, max_pages=max_pages):
        if step.page.data:
            yield step.page

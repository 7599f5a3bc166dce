"""Laravel pagination traps (spec §3.3, §6.11) against the simulator."""

from __future__ import annotations

import math

import httpx
import pytest

from bisonsync.bison import BisonClient, BisonProtocolError, Links, Meta, Page, PaginationCapExceeded
from bisonsync.bison.pagination import next_page_url, paginate
from devstack.simulator import SimulatedBison, Target

from .conftest import ClientFactory


def biggest(sim: SimulatedBison) -> int:
    return max(sim.team_mailboxes, key=lambda t: len(sim.team_mailboxes[t]))


async def test_fifteen_per_page_whatever_per_page_says(sim: SimulatedBison, client: BisonClient) -> None:
    team = biggest(sim)
    expected = sim.team_mailboxes[team]
    assert len(expected) > 45
    async with client.workspace(team) as ws:
        pages = [page async for page in ws.iter_sender_email_pages(per_page=100)]
    sizes = [len(p.data) for p in pages]
    assert all(size == 15 for size in sizes[:-1]) and 0 < sizes[-1] <= 15
    assert len(pages) == math.ceil(len(expected) / 15)
    assert all(p.meta is not None and p.meta.per_page == 15 for p in pages)
    assert [m.id for p in pages for m in p.data] == expected
    assert sim.counters.requests["GET /api/sender-emails"] == len(pages)


async def test_null_next_link_falls_back_to_meta(sim: SimulatedBison, client: BisonClient) -> None:
    team = biggest(sim)
    sim.faults.null_next = [Target(workspace_id=team, page=2, times=1)]
    async with client.workspace(team) as ws:
        mailboxes = await ws.list_sender_emails()
    assert [m.id for m in mailboxes] == sim.team_mailboxes[team]
    assert sim.faults.null_next == []  # the trap was served


async def test_empty_page_stops(sim: SimulatedBison, client: BisonClient) -> None:
    team = biggest(sim)
    sim.faults.empty_page = [Target(workspace_id=team, page=3)]
    async with client.workspace(team) as ws:
        mailboxes = await ws.list_sender_emails()
    assert [m.id for m in mailboxes] == sim.team_mailboxes[team][:30]
    assert sim.counters.requests["GET /api/sender-emails"] == 3


async def test_page_cap_raises(sim: SimulatedBison, make_client: ClientFactory) -> None:
    team = biggest(sim)
    client = make_client(max_pages=3)
    async with client.workspace(team) as ws:
        with pytest.raises(PaginationCapExceeded) as caught:
            await ws.list_sender_emails()
    assert caught.value.max_pages == 3
    assert caught.value.next_url is not None and "page=4" in caught.value.next_url
    assert sim.counters.requests["GET /api/sender-emails"] == 3


async def test_truncated_json_is_a_protocol_error_and_not_retried(sim: SimulatedBison, client: BisonClient) -> None:
    team = biggest(sim)
    sim.faults.broken_json = [Target(workspace_id=team, page=2)]
    async with client.workspace(team) as ws:
        with pytest.raises(BisonProtocolError, match="unexpected answer"):
            await ws.list_sender_emails()
    assert sim.counters.requests["GET /api/sender-emails"] == 2


async def test_search_and_other_params_survive_paging(sim: SimulatedBison, client: BisonClient) -> None:
    team = biggest(sim)
    domain = sim.mailboxes[sim.team_mailboxes[team][0]].email.split("@")[1]
    expected = [m.id for m in sim.mailboxes_of(team) if domain in m.email]
    async with client.workspace(team) as ws:
        found = await ws.list_sender_emails(search=domain)
    assert [m.id for m in found] == expected


def test_next_links_are_rebased_onto_our_base_url() -> None:
    base = httpx.URL("http://bison.test/")
    page: Page[int] = Page(data=[1], links=Links(next="https://elsewhere.example:8443/api/sender-emails?page=2"))
    nxt = next_page_url(page, base.join("/api/sender-emails?page=1"), base)
    assert str(nxt) == "http://bison.test/api/sender-emails?page=2"


def test_meta_fallback_keeps_the_query() -> None:
    base = httpx.URL("http://bison.test/")
    current = base.join("/api/sender-emails?per_page=100&page=2")
    page: Page[int] = Page(data=[1], links=Links(next=None), meta=Meta(current_page=2, last_page=5))
    assert str(next_page_url(page, current, base)) == "http://bison.test/api/sender-emails?per_page=100&page=3"
    last: Page[int] = Page(data=[1], links=Links(next=None), meta=Meta(current_page=5, last_page=5))
    assert next_page_url(last, current, base) is None


async def test_a_server_that_loops_is_caught() -> None:
    base = httpx.URL("http://bison.test/")

    async def fetch(url: httpx.URL) -> Page[int]:
        return Page(data=[1], links=Links(next="http://bison.test/api/x?page=1"))

    with pytest.raises(BisonProtocolError, match="pagination loop"):
        async for _ in paginate(fetch, base.join("/api/x?page=1"), base):
            pass

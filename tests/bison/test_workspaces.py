"""Key kinds: super-admin switching is serialized and never mixes workspaces; workspace keys run in parallel."""

from __future__ import annotations

import asyncio
from datetime import date

import httpx
import pytest

from bisonsync.bison import BisonAuthError, BisonClient, KeyKind, SenderEmail
from devstack.simulator import SimulatedBison, create_simulator_app

from .conftest import BASE_URL, FAST_RETRY


@pytest.fixture
def big_sim() -> SimulatedBison:
    sim = SimulatedBison(workspaces=24, mailboxes=2400, seed=3)
    sim.set_faults(latency_ms=0.5, jitter_ms=1.5)
    return sim


def client_for(sim: SimulatedBison, api_key: str | None = None, **kw: object) -> BisonClient:
    transport = httpx.ASGITransport(app=create_simulator_app(sim))
    return BisonClient(BASE_URL, api_key, transport=transport, retry=FAST_RETRY, **kw)  # type: ignore[arg-type]


async def test_super_admin_sessions_never_mix_under_concurrency(big_sim: SimulatedBison) -> None:
    sim = big_sim

    async def fetch(team: int) -> tuple[int, list[SenderEmail]]:
        async with client.workspace(team) as ws:
            assert not ws.parallel_safe and ws.key_kind is KeyKind.SUPER_ADMIN
            return team, await ws.list_sender_emails(per_page=100)

    async with client_for(sim, sim.super_admin_key) as client:
        results = await asyncio.gather(*(fetch(t) for t in sim.teams for _ in range(2)))
    for team, mailboxes in results:
        assert [m.id for m in mailboxes] == sim.team_mailboxes[team]
    assert sim.counters.switches == 2 * len(sim.teams)
    assert sim.counters.max_in_flight_by_key["super_admin"] == 1


async def test_unserialized_switching_does_mix(big_sim: SimulatedBison) -> None:
    """The control: what the predecessor did (switch, then list, in parallel) really corrupts the simulator."""
    sim = big_sim

    async def careless(team: int) -> bool:
        await client.switch_workspace(team)
        mailboxes = await client.list_sender_emails()
        return [m.id for m in mailboxes] == sim.team_mailboxes[team]

    async with client_for(sim, sim.super_admin_key) as client:
        correct = await asyncio.gather(*(careless(t) for t in sim.teams))
    assert not all(correct)


async def test_workspace_keys_run_in_parallel(big_sim: SimulatedBison) -> None:
    sim = big_sim
    sim.set_faults(latency_ms=15, jitter_ms=0)

    async def fetch(team: int) -> tuple[int, list[SenderEmail]]:
        async with client.workspace(team) as ws:
            assert ws.parallel_safe
            return team, await ws.list_sender_emails()

    async with client_for(sim, workspace_keys=sim.workspace_keys) as client:
        assert all(client.parallel_safe(t) for t in sim.teams)
        results = await asyncio.gather(*(fetch(t) for t in sim.teams))
    for team, mailboxes in results:
        assert [m.id for m in mailboxes] == sim.team_mailboxes[team]
    assert sim.counters.switches == 0
    assert sim.counters.max_in_flight >= len(sim.teams) // 2


async def test_mixed_keys_use_the_workspace_key_where_there_is_one(sim: SimulatedBison) -> None:
    teams = list(sim.teams)
    own = {teams[1]: sim.workspace_keys[teams[1]]}
    async with client_for(sim, sim.super_admin_key, workspace_keys=own) as client:
        assert client.parallel_safe(teams[1]) and not client.parallel_safe(teams[2])
        async with client.workspace(teams[1]) as ws:
            assert [m.id for m in await ws.list_sender_emails()] == sim.team_mailboxes[teams[1]]
        assert sim.counters.switches == 0
        async with client.workspace(teams[2]) as ws:
            assert [m.id for m in await ws.list_sender_emails()] == sim.team_mailboxes[teams[2]]
        assert sim.counters.switches == 1


async def test_a_workspace_key_cannot_switch(sim: SimulatedBison) -> None:
    team = list(sim.teams)[1]
    async with client_for(sim, workspace_keys={team: sim.workspace_keys[team]}) as client:
        with pytest.raises(BisonAuthError) as caught:
            await client.switch_workspace(sim.parent_id)
        assert caught.value.status_code == 403
        workspaces = await client.list_workspaces()
    assert [w.id for w in workspaces] == [team]


async def test_nested_sessions_and_calls_inside_a_session(sim: SimulatedBison, client: BisonClient) -> None:
    first, second = list(sim.teams)[1:3]
    async with asyncio.timeout(5), client.workspace(first) as ws:
        async with client.workspace(first) as same:
            assert same is ws
        with pytest.raises(RuntimeError, match="inside workspace"):
            async with client.workspace(second):
                pass
        # a call on the client inside the session neither deadlocks nor switches away
        assert [m.id for m in await client.list_sender_emails()] == sim.team_mailboxes[first]
    with pytest.raises(RuntimeError, match="after its `async with` block"):
        await ws.list_sender_emails()
    assert sim.counters.switches == 1


async def test_shared_mailboxes_show_up_in_both_workspaces(sim: SimulatedBison, client: BisonClient) -> None:
    shared = next(m for m in sorted(sim.mailboxes) if len(sim.teams_of(m)) == 2)
    for team in sim.teams_of(shared):
        async with client.workspace(team) as ws:
            assert shared in {m.id for m in await ws.list_sender_emails()}


async def test_messy_data_is_served_as_is(sim: SimulatedBison, client: BisonClient) -> None:
    workspaces = await client.list_workspaces()
    parents = [w for w in workspaces if w.main]
    assert len(parents) == 1 and all(w.parent_id == parents[0].id for w in workspaces if not w.main)
    assert any(w.name != w.clean_name for w in workspaces)  # trailing spaces survive the API
    big = SimulatedBison(workspaces=24, mailboxes=4000, seed=0)
    tags = {t.name for m in big.mailboxes.values() for t in m.tags}
    assert {"Google", "Microsoft", "Zapmail", "CheapInboxes", "Warming", "Inbox Warmup"} <= tags
    assert any(t != t.strip() for t in tags) and any("/" in t for t in tags)
    statuses = {m.status for m in big.mailboxes.values()}
    assert statuses == {"Connected", "Disconnected", "Failed", "Not connected"}
    counts = sorted(len(ids) for ids in big.team_mailboxes.values())
    median = counts[len(counts) // 2]
    assert counts[-1] > 3 * median and counts[0] * 3 < median  # very uneven
    again = SimulatedBison(workspaces=24, mailboxes=4000, seed=0)
    assert again.super_admin_key == big.super_admin_key and again.mailboxes == big.mailboxes


async def test_mutations_are_visible_through_the_api(sim: SimulatedBison, client: BisonClient) -> None:
    team = max(sim.team_mailboxes, key=lambda t: len(sim.team_mailboxes[t]))
    victim, other = sim.team_mailboxes[team][:2]
    transport = httpx.ASGITransport(app=create_simulator_app(sim))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as admin:
        assert (await admin.post(f"/_sim/mailboxes/{other}/status", json={"status": "Failed"})).status_code == 200
        assert (await admin.post(f"/_sim/mailboxes/{other}/status", json={"status": "failed"})).status_code == 422
        added = (await admin.post(f"/_sim/workspaces/{team}/mailboxes", json={"count": 2})).json()["data"]
        assert (await admin.delete(f"/_sim/mailboxes/{victim}")).status_code == 200
        assert (await admin.post(f"/_sim/workspaces/{team}/rename", json={"name": "Renamed Client "})).is_success
        assert (await admin.post("/_sim/faults", json={"latency_ms": 1, "next_500": 1})).json()["next_500"] == 1
        assert (await admin.post("/_sim/faults", json={"no_such_knob": 1})).status_code == 422
        keys = (await admin.get("/_sim/keys")).json()
    assert keys["super_admin"] == sim.super_admin_key
    async with client.workspace(team) as ws:
        mailboxes = {m.id: m for m in await ws.list_sender_emails()}
    assert victim not in mailboxes and mailboxes[other].status == "Failed"
    assert {a["id"] for a in added} <= set(mailboxes)
    assert next(w for w in await client.list_workspaces() if w.id == team).name == "Renamed Client "
    assert sim.counters.statuses[500] == 1  # the burst set over HTTP was served (and retried)


async def test_stats_need_dates(sim: SimulatedBison, client: BisonClient) -> None:
    stats = await client.workspace_stats(date(2025, 10, 1), date(2025, 10, 31))
    assert stats.emails_sent == 0 and stats.opened == 0

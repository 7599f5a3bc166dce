"""The token endpoints: what the simulator answers (same semantics and faults as the rest of the API) and how the
client reads answers whose shape Email Bison does not document."""

from __future__ import annotations

import httpx
import pytest

from bisonsync.bison import BisonAuthError, BisonClient, BisonNotFound, BisonProtocolError, BisonRequestError
from bisonsync.keys import create_api_token, list_api_tokens, revoke_api_token
from devstack.simulator import SimulatedBison
from devstack.simulator.tokens import tokens_of
from tests.simulated import BASE_URL, FAST_RETRY, RecordingTransport

pytestmark = pytest.mark.asyncio


def client_for(sim: SimulatedBison, key: str | None = None) -> BisonClient:
    return BisonClient(BASE_URL, key or sim.super_admin_key, transport=RecordingTransport(sim), retry=FAST_RETRY)


async def test_create_list_revoke_round_trip() -> None:
    sim = SimulatedBison(workspaces=3, mailboxes=10, seed=181)
    team = next(iter(sim.workspace_keys))
    async with client_for(sim) as client:
        created = await create_api_token(client, team, "bisonsync test")
        assert sim.credential(created.token) is not None and created.token_id == created.token.split("|")[0]
        listed = await list_api_tokens(client, team)
        assert listed is not None and [(t.token_id, t.name) for t in listed] == [(created.token_id, "bisonsync test")]
        assert created.token not in repr(created) and created.token not in repr(listed)
        assert created.token_id is not None
        assert await revoke_api_token(client, team, created.token_id)
        assert sim.credential(created.token) is None
        assert not await revoke_api_token(client, team, created.token_id)  # gone: 404
        assert sim.counters.switches == 0  # no workspace switch needed


async def test_only_the_super_admin_key_manages_tokens_and_input_is_checked() -> None:
    sim = SimulatedBison(workspaces=3, mailboxes=10, seed=182)
    team = next(iter(sim.workspace_keys))
    async with client_for(sim, sim.workspace_keys[team]) as ws_client:
        with pytest.raises(BisonAuthError):
            await create_api_token(ws_client, team, "nope")
    async with client_for(sim) as client:
        with pytest.raises(BisonNotFound):
            await create_api_token(client, 999_999, "unknown team")
        with pytest.raises(BisonRequestError, match="name"):
            await create_api_token(client, team, " ")
        other = next(t for t in sim.workspace_keys if t != team)
        created = await create_api_token(client, team, "mine")
        assert created.token_id is not None
        assert not await revoke_api_token(client, other, created.token_id)  # not that team's token
        assert sim.credential(created.token) is not None


async def test_token_routes_share_the_fault_pipeline() -> None:
    sim = SimulatedBison(workspaces=2, mailboxes=10, seed=183)
    team = next(iter(sim.workspace_keys))
    sim.set_faults(next_429=1, retry_after="0")
    async with client_for(sim) as client:
        created = await create_api_token(client, team, "after a 429")  # 429 is safe to retry, even for a POST
        assert sim.credential(created.token) is not None
        assert sim.counters.statuses[429] == 1


async def test_an_instance_without_listing_or_revocation_says_so() -> None:
    sim = SimulatedBison(workspaces=2, mailboxes=10, seed=184)
    team = next(iter(sim.workspace_keys))
    tokens_of(sim).management_endpoints = False
    async with client_for(sim) as client:
        created = await create_api_token(client, team, "x")
        assert await list_api_tokens(client, team) is None
        assert created.token_id is not None
        assert not await revoke_api_token(client, team, created.token_id)


@pytest.mark.parametrize(
    ("body", "token", "token_id"),
    [
        ({"data": {"id": 7, "name": "n", "plain_text_token": "7|abc"}}, "7|abc", "7"),
        ({"data": {"plainTextToken": "8|def", "accessToken": {"id": 8}}}, "8|def", "8"),
        ({"token": "9|ghi"}, "9|ghi", "9"),
        ({"data": {"token": "opaque-token"}}, "opaque-token", None),
    ],
)
async def test_answer_shapes_are_read_defensively(body: object, token: str, token_id: str | None) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    async with BisonClient(BASE_URL, "1|super", transport=transport, retry=FAST_RETRY) as client:
        created = await create_api_token(client, 5, "n")
    assert (created.token, created.token_id, created.team_id) == (token, token_id, 5)


@pytest.mark.parametrize("body", [{"data": {"id": 3, "name": "n"}}, {"data": {"token": "has space"}}, []])
async def test_an_answer_without_a_token_is_a_protocol_error(body: object) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    async with BisonClient(BASE_URL, "1|super", transport=transport, retry=FAST_RETRY) as client:
        with pytest.raises(BisonProtocolError, match="no API token"):
            await create_api_token(client, 5, "n")


async def test_token_creation_is_not_retried_after_a_server_error() -> None:
    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(502, json={"message": "Bad gateway"})

    async with BisonClient(BASE_URL, "1|super", transport=httpx.MockTransport(answer), retry=FAST_RETRY) as client:
        with pytest.raises(Exception, match="502"):
            await create_api_token(client, 5, "n")
    assert len(calls) == 1

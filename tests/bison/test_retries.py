"""Retry policy and typed errors against the simulator's fault knobs."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from bisonsync.bison import (
    BisonAuthError,
    BisonClient,
    BisonNotFound,
    BisonRateLimited,
    BisonServerError,
    BisonTimeout,
    RetryPolicy,
    parse_retry_after,
)
from devstack.simulator import SimulatedBison, Target

from .conftest import FAST_RETRY, ClientFactory

WORKSPACES = "GET /api/workspaces/v1.1"


class RecordedSleep:
    """A fake `sleep` that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_429_waits_retry_after_seconds(sim: SimulatedBison, client: BisonClient) -> None:
    sim.set_faults(next_429=1, retry_after="1")
    started = time.monotonic()
    workspaces = await client.list_workspaces()
    elapsed = time.monotonic() - started
    assert len(workspaces) == len(sim.teams)
    assert 0.95 <= elapsed < 2.5
    assert sim.counters.requests[WORKSPACES] == 2
    assert sim.counters.statuses[429] == 1


async def test_429_http_date_is_honoured_and_capped(sim: SimulatedBison, make_client: ClientFactory) -> None:
    sleep = RecordedSleep()
    client = make_client(sleep=sleep)
    sim.set_faults(next_429=1, retry_after=format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True))
    await client.list_workspaces()
    assert sleep.waits == [FAST_RETRY.retry_after_cap_s]


async def test_429_until_the_budget_runs_out(sim: SimulatedBison, make_client: ClientFactory) -> None:
    sleep = RecordedSleep()
    client = make_client(sleep=sleep, retry=RetryPolicy(max_attempts=3, retry_after_cap_s=5))
    sim.set_faults(next_429=10, retry_after="2")
    with pytest.raises(BisonRateLimited) as caught:
        await client.list_workspaces()
    assert caught.value.retry_after == 2.0
    assert caught.value.attempts == 3 and caught.value.status_code == 429
    assert sleep.waits == [2.0, 2.0]


async def test_a_wait_longer_than_the_time_budget_is_not_started(
    sim: SimulatedBison, make_client: ClientFactory
) -> None:
    sleep = RecordedSleep()
    client = make_client(sleep=sleep, retry=RetryPolicy(max_elapsed_s=3, retry_after_cap_s=60))
    sim.set_faults(next_429=1, retry_after="10")
    with pytest.raises(BisonRateLimited) as caught:
        await client.list_workspaces()
    assert caught.value.attempts == 1 and caught.value.retry_after == 10.0
    assert sleep.waits == []


async def test_500_burst_is_retried_with_backoff(sim: SimulatedBison, make_client: ClientFactory) -> None:
    sleep = RecordedSleep()
    policy = RetryPolicy(max_attempts=5, backoff_base_s=0.5, backoff_max_s=8)
    client = make_client(sleep=sleep, retry=policy)
    sim.set_faults(next_500=3)
    await client.list_workspaces()
    assert sim.counters.requests[WORKSPACES] == 4
    # equal jitter: attempt n waits between half and all of base * 2^(n-1)
    assert [0.25 <= sleep.waits[0] <= 0.5, 0.5 <= sleep.waits[1] <= 1.0, 1.0 <= sleep.waits[2] <= 2.0] == [True] * 3


async def test_persistent_500_gives_server_error_after_the_cap(sim: SimulatedBison, client: BisonClient) -> None:
    sim.set_faults(rate_500=1.0)
    with pytest.raises(BisonServerError) as caught:
        await client.list_workspaces()
    assert caught.value.attempts == FAST_RETRY.max_attempts
    assert sim.counters.requests[WORKSPACES] == FAST_RETRY.max_attempts


async def test_401_is_not_retried(sim: SimulatedBison, make_client: ClientFactory) -> None:
    client = make_client(sim.super_admin_key[::-1])
    with pytest.raises(BisonAuthError) as caught:
        await client.list_workspaces()
    assert caught.value.status_code == 401 and caught.value.attempts == 1
    assert sim.counters.requests[WORKSPACES] == 1


async def test_404_is_not_found(sim: SimulatedBison, client: BisonClient) -> None:
    with pytest.raises(BisonNotFound):
        await client.get_webhook(424242)
    assert sim.counters.requests["GET /api/webhook-url/{id}"] == 1


async def test_a_create_is_not_repeated_after_a_500_but_is_after_a_429(
    sim: SimulatedBison, client: BisonClient
) -> None:
    sim.set_faults(next_500=1)
    with pytest.raises(BisonServerError) as caught:
        await client.create_webhook("hook", "http://127.0.0.1:9/h", ["email_sent"])
    assert caught.value.attempts == 1
    sim.set_faults(next_429=1, retry_after="0")
    hook = await client.create_webhook("hook", "http://127.0.0.1:9/h", ["email_sent"])
    assert [h.id for h in await client.list_webhooks()] == [hook.id]
    assert sim.counters.requests["POST /api/webhook-url"] == 3


async def test_a_hang_becomes_bison_timeout(sim: SimulatedBison, make_client: ClientFactory) -> None:
    client = make_client(retry=RetryPolicy(max_attempts=2, backoff_base_s=0.01, attempt_timeout_s=0.2))
    sim.set_faults(hang=[Target(path="/api/workspaces/v1.1")], hang_s=10)
    started = time.monotonic()
    with pytest.raises(BisonTimeout) as caught:
        await client.list_workspaces()
    assert time.monotonic() - started < 2
    assert caught.value.attempts == 2
    assert sim.counters.in_flight == 0 and sim.counters.statuses[499] == 2
    sim.reset_faults()
    assert len(await client.list_workspaces()) == len(sim.teams)


async def test_the_key_never_reaches_logs_or_errors(
    sim: SimulatedBison, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client()
    sim.set_faults(next_500=1)
    async with client.workspace(sim.parent_id) as ws:
        await ws.list_sender_emails()
    bad = make_client(sim.super_admin_key + "x")
    with pytest.raises(BisonAuthError) as caught:
        await bad.list_workspaces()
    secret = sim.super_admin_key
    assert "retry 1/3" in caplog.text and secret[-4:] in caplog.text
    for text in (caplog.text, str(caught.value), repr(client), repr(bad)):
        assert secret not in text
        assert secret.split("|")[1][:8] not in text


def test_parse_retry_after() -> None:
    now = datetime(2025, 10, 14, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after("1.5", now) == 1.5
    assert parse_retry_after("-4", now) == 0.0
    assert parse_retry_after("Tue, 14 Oct 2025 12:00:07 GMT", now) == 7.0
    assert parse_retry_after("Tue, 14 Oct 2025 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("nan", now) is None
    assert parse_retry_after(None, now) is None

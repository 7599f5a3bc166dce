"""Scaling out (issue 12 item 8): two `bisonsync serve` replicas with their jobs on, behind a round-robin proxy,
plus one extra `bisonsync poll` process, against the devstack and the Email Bison simulator.

A mixed burst (all event types, a fifth of the deliveries exact re-sends, often concurrent with their original)
goes through the proxy; one replica is SIGKILLed mid-burst; the sender retries what failed, as Email Bison does (up
to 5 times). Then:

- every delivery was answered 2xx in the end, and the counters are exact: each distinct event counted once;
- the mailbox poll ran one run at a time although three processes kept trying (runs never overlap);
- no alert went to Slack twice (the Slack stand-in counts what it got against `alert_log`).

Everything talks to 127.0.0.1 only and is bounded in count and time. The test prints what it measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from itertools import islice, pairwise
from pathlib import Path

import asyncpg
import httpx
import pytest

from bisonsync.events import decode_delivery
from bisonsync.sync.mailboxes import mailbox_job
from devstack.ports import free_port
from devstack.simulator import SimulatedBison, SimulatorServer, WebhookFirer
from devstack.simulator.events import DEFAULT_WEIGHTS
from tests.conftest import StackHandle
from tests.hardening.conftest import fresh_database

pytestmark = pytest.mark.slow

TOKEN = "replica-test-webhook-token"
INSTANCE_URL = "https://replicas.bison.test"
HOST = "replicas.bison.test"
DELIVERIES = 1500
KILL_AFTER = 0.4  # share of the burst answered before replica A is SIGKILLed
RETRIES = 5  # Email Bison retries a failed delivery up to 5 times
#: event type -> the client_metrics_daily counter its first delivery increments
METRIC_OF = {
    "email_sent": "emails_sent",
    "lead_replied": "replies",
    "lead_interested": "interested",
    "email_bounced": "bounced",
    "lead_unsubscribed": "unsubscribed",
}


# -- the burst: the ONE place that builds bodies (adapt here when the accepted shapes change) -----------------------


@dataclass
class Burst:
    bodies: list[bytes]
    types: list[str]
    #: per delivery, the number of its event (equal numbers: the same event, by the decoder's dedup key)
    events: list[int]
    duplicates: int

    def expected(self) -> tuple[int, Counter[str]]:
        """Distinct events, and how much each counter grows for them."""
        first: dict[int, str] = {}
        for event, type_ in zip(self.events, self.types, strict=True):
            first.setdefault(event, type_)
        metrics = Counter(METRIC_OF[t] for t in first.values() if t in METRIC_OF)
        return len(first), metrics


def make_burst(sim: SimulatedBison, count: int, seed: int = 12) -> Burst:
    """The simulator's own delivery sequence (all 17 types, re-sends of the same bytes a few deliveries later,
    swapped neighbours), with a duplicate share of 20 % and more mailbox disconnections than the default mix.
    Events are applied to the simulated instance on first delivery, so the poll sees the mailboxes the webhooks
    talk about (disconnections included)."""
    # more account events than the default mix, so the alert scans have mailbox disconnections to report
    weights = {**DEFAULT_WEIGHTS, "email_account_disconnected": 0.05, "email_account_reconnected": 0.02}
    firer = WebhookFirer(
        "http://127.0.0.1:9/", sim, count=count, rate_per_s=1000, seed=seed, duplicate_share=0.2, weights=weights
    )
    bodies, types, events, duplicates = [], [], [], 0
    numbering: dict[str, int] = {}
    for delivery in islice(firer.deliveries(), count):
        fired = delivery.fired
        if not fired.delivered:
            fired.delivered = True
            fired.event.apply()
        bodies.append(fired.body)
        types.append(fired.event.type)
        key = decode_delivery(fired.body).dedup_key
        events.append(numbering.setdefault(key, len(numbering)))
        duplicates += delivery.duplicate
    return Burst(bodies, types, events, duplicates)


# -- a round-robin TCP proxy (what a load balancer does) ------------------------------------------------------------


class RoundRobin:
    """Each new connection goes to the next backend; a backend that refuses the connection is skipped (a load
    balancer's health check), a connection cut by a dying backend is cut for the client too."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.turn = 0
        self.connections: Counter[int] = Counter()
        #: connections per backend that ended without a byte of answer
        self.unanswered: Counter[int] = Counter()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        first = self.turn
        self.turn += 1
        for k in range(len(self.ports)):
            port = self.ports[(first + k) % len(self.ports)]
            try:
                upstream = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            self.connections[port] += 1
            break
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream
        _, answered = await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True)
        if answered == 0:
            self.unanswered[port] += 1


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    """Copy until EOF; the number of bytes copied."""
    copied = 0
    try:
        while data := await reader.read(65536):
            copied += len(data)
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass
    finally:
        if reader.at_eof() or reader.exception() is not None:
            writer.close()
    return copied


# -- a Slack stand-in ---------------------------------------------------------------------------------------------


@dataclass
class SlackSink:
    texts: list[str] = field(default_factory=list)
    server: asyncio.Server | None = None
    url: str = ""

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/services/T0REPLICA/B0REPLICA/sink"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                body = await reader.readexactly(length)
                self.texts.append(str(json.loads(body).get("text", "")))
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        writer.close()

    def alerts_posted(self) -> int:
        """Alerts named by the messages: a batch says "N alerts: ...", a single alert is its title."""
        total = 0
        for text in self.texts:
            match = re.match(r"\S+ (\d+) alerts: ", text)
            total += int(match.group(1)) if match else 1
        return total


# -- processes ------------------------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    proc: asyncio.subprocess.Process
    log: Path


async def _spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Proc:
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bisonsync.cli", *args, env=env, stdout=out, stderr=out
        )
    return Proc(name, proc, log)


async def _ready(port: int, proc: Proc) -> None:
    async with httpx.AsyncClient() as http, asyncio.timeout(30):
        while True:
            if proc.proc.returncode is not None:
                raise AssertionError(f"{proc.name} exited: {proc.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)


async def _stop(p: Proc) -> None:
    if p.proc.returncode is None:
        p.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(15):
                await p.proc.wait()
        except TimeoutError:
            p.proc.kill()
            await p.proc.wait()


# -- the sender (Email Bison's retries) -------------------------------------------------------------------------------


@dataclass
class Sent:
    final: dict[int, int | str] = field(default_factory=dict)
    attempts: Counter[int | str] = field(default_factory=Counter)
    #: outcomes of the attempts made before replica A was killed (nothing may fail then)
    before_kill: Counter[int | str] = field(default_factory=Counter)
    killed: bool = False
    retried: int = 0
    done: int = 0


async def deliver(url: str, bodies: list[bytes], sent: Sent, concurrency: int = 16) -> None:
    """POST every body; a delivery not answered 2xx is retried up to RETRIES times with a short backoff. A new
    connection per request, as webhook senders do, so the proxy spreads requests round-robin."""
    slots = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=10, limits=limits) as http:

        async def one(i: int, body: bytes) -> None:
            async with slots:
                outcome: int | str = "not sent"
                for attempt in range(1 + RETRIES):
                    if attempt:
                        sent.retried += 1
                        await asyncio.sleep(min(0.2 * 2 ** (attempt - 1), 2.0))
                    try:
                        r = await http.post(
                            url, content=body, params={"token": TOKEN}, headers={"content-type": "application/json"}
                        )
                        outcome = r.status_code
                    except httpx.HTTPError as exc:
                        outcome = type(exc).__name__
                    sent.attempts[outcome] += 1
                    if not sent.killed:
                        sent.before_kill[outcome] += 1
                    if isinstance(outcome, int) and outcome < 300:
                        break
                sent.final[i] = outcome
                sent.done += 1

        await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))


# -- the test -------------------------------------------------------------------------------------------------------


@pytest.fixture
async def replica_database(devstack: StackHandle) -> AsyncIterator[str]:
    """A database of its own: the replicas' jobs (alerts, polls) see nothing other tests wrote."""
    if devstack.stack is None:
        pytest.skip("needs the local devstack (creates a database)")
    async with fresh_database(devstack.stack, prefix="replicas") as dsn:
        yield dsn


async def test_two_replicas_and_a_poller_under_a_burst_with_a_replica_killed(
    replica_database: str, tmp_path: Path
) -> None:
    sim = SimulatedBison(workspaces=6, mailboxes=600, seed=12, instance_url=INSTANCE_URL)
    burst = make_burst(sim, DELIVERIES)
    distinct, metrics = burst.expected()
    slack = SlackSink()
    await slack.start()
    procs: list[Proc] = []
    proxy: RoundRobin | None = None
    async with SimulatorServer(sim) as bison:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "DATABASE_URL", "BISON"))}
        env.update(
            {
                "DATABASE_URL": replica_database,
                "BISONSYNC_WEBHOOK_TOKEN": TOKEN,
                "BISONSYNC_JOBS": "1",
                "BISON_BASE_URL": bison.base_url,
                "BISON_API_KEY": sim.super_admin_key,
                "BISON_INSTANCE": HOST,
                "BISONSYNC_POLL_INTERVAL_S": "1",
                "BISONSYNC_ALERT_CHECK_INTERVAL_S": "1",
                "SLACK_WEBHOOK_URL": slack.url,
            }
        )
        ports = [free_port(), free_port()]
        try:
            for name, port in zip(("replica-a", "replica-b"), ports, strict=True):
                procs.append(await _spawn(name, ["serve", "--port", str(port), "--log-level", "info"], env, tmp_path))
            for port, p in zip(ports, procs, strict=True):
                await _ready(port, p)
            procs.append(
                await _spawn(
                    "poller", ["poll", "--interval", "1", "--no-progress", "--log-level", "info"], env, tmp_path
                )
            )
            proxy = RoundRobin(ports)
            await proxy.start()
            await asyncio.sleep(2)  # let the jobs start: polls and alert scans run while the burst goes on

            sent = Sent()
            started = time.monotonic()
            sending = asyncio.create_task(deliver(f"http://127.0.0.1:{proxy.port}/webhooks/bison", burst.bodies, sent))
            async with asyncio.timeout(120):
                while sent.done < DELIVERIES * KILL_AFTER and not sending.done():  # noqa: ASYNC110 - a progress poll
                    await asyncio.sleep(0.01)
            procs[0].proc.kill()  # SIGKILL replica A: no shutdown, its requests in flight are cut
            sent.killed = True
            killed_at = sent.done
            await procs[0].proc.wait()
            async with asyncio.timeout(180):
                await sending
            burst_s = time.monotonic() - started

            # let the alert scans and Slack sends catch up with the burst
            conn = await asyncpg.connect(replica_database)
            try:
                await _settle_alerts(conn)
                await asyncio.sleep(3)  # at least one more poll attempt from each surviving process
                report = await _measure(conn, burst, sent, slack)
            finally:
                await conn.close()
        finally:
            for p in procs:
                await _stop(p)
            if proxy is not None:
                await proxy.stop()
            await slack.stop()

    print(
        f"\n{DELIVERIES} deliveries ({burst.duplicates} re-sends, {distinct} distinct events) through round-robin "
        f"to 2 replicas + 1 poller in {burst_s:.1f} s; replica A SIGKILLed after {killed_at} answers"
        f"\nproxy connections per replica: {dict(proxy.connections) if proxy else {}}, of which unanswered: "
        f"{dict(proxy.unanswered) if proxy else {}} (replica A is {ports[0]})"
        f"\nattempt outcomes: {dict(sent.attempts)} (before the kill: {dict(sent.before_kill)}); "
        f"retried requests: {sent.retried}"
        f"\n{report}"
    )
    # every delivery was accepted in the end (retries included)
    assert all(isinstance(c, int) and c < 300 for c in sent.final.values()), Counter(sent.final.values())
    assert sent.retried > 0, "the kill cut nothing: the test did not test a failover"
    assert set(sent.before_kill) == {200}, sent.before_kill  # the proxy and the replicas lose nothing by themselves
    # exact counters: each distinct event once, whatever the duplicates, the kill and the retries
    assert report.first_deliveries == distinct
    assert report.metrics == metrics
    # one poll run at a time, and more than one process did poll
    assert report.runs >= 2 and report.overlaps == 0, report
    assert report.holders >= 2, report
    # no alert went out twice
    assert report.alerts_recorded > 0, "no alert was raised: nothing to check duplicates on"
    assert report.alerts_posted == report.alerts_sent, report


async def _settle_alerts(conn: asyncpg.Connection, limit_s: float = 30) -> None:
    """Until every alert is sent or leased to the killed replica (that lease runs for minutes)."""
    deadline = time.monotonic() + limit_s
    stable_since, last = time.monotonic(), -1
    while time.monotonic() < deadline:
        row = await conn.fetchrow(
            "select count(*) filter (where sent_at is null and (claimed_until is null or claimed_until < now()))"
            " as waiting, count(*) as total from public.alert_log"
        )
        assert row is not None
        if int(row["total"]) != last:
            stable_since, last = time.monotonic(), int(row["total"])
        if row["waiting"] == 0 and row["total"] > 0 and time.monotonic() - stable_since > 3:
            return
        await asyncio.sleep(0.5)


@dataclass
class Report:
    first_deliveries: int
    ledger_rows: int
    metrics: Counter[str]
    runs: int
    overlaps: int
    holders: int
    run_statuses: dict[str, int]
    alerts_recorded: int
    alerts_sent: int
    alerts_leased_to_the_dead: int
    alerts_posted: int
    slack_messages: int
    conditions: str

    def __str__(self) -> str:
        return (
            f"ledger: {self.ledger_rows} rows, {self.first_deliveries} first deliveries; counters {dict(self.metrics)}"
            f"\npoll runs: {self.runs} ({self.run_statuses}) by {self.holders} holders, {self.overlaps} overlapping"
            f"\nalerts ({self.conditions}): {self.alerts_recorded} recorded, {self.alerts_sent} sent, "
            f"{self.alerts_leased_to_the_dead} leased to the killed replica; "
            f"Slack got {self.slack_messages} messages naming {self.alerts_posted}"
        )


async def _measure(conn: asyncpg.Connection, burst: Burst, sent: Sent, slack: SlackSink) -> Report:
    ledger = await conn.fetch(
        "select status, count(*) as n from public.webhook_deliveries where instance = $1 group by status", HOST
    )
    by_status = {str(r["status"]): int(r["n"]) for r in ledger}
    sums = await conn.fetchrow(
        "select "
        + ", ".join(f"coalesce(sum(m.{m}), 0)::bigint as {m}" for m in sorted(set(METRIC_OF.values())))
        + " from public.client_metrics_daily m join public.workspaces w on w.id = m.workspace_id"
        " where w.instance = $1",
        HOST,
    )
    assert sums is not None
    metrics = Counter({k: int(v) for k, v in dict(sums).items() if v})
    runs = await conn.fetch(
        "select status, holder, started_at, finished_at from public.sync_runs where job = $1 order by started_at",
        mailbox_job(HOST),
    )
    overlaps = 0
    for prev, nxt in pairwise(runs):
        if prev["finished_at"] is None or nxt["started_at"] < prev["finished_at"]:
            overlaps += 1
    holders = {str(r["holder"]).rsplit(":", 1)[0] for r in runs if r["holder"]}  # host:pid (one per process)
    alerts = await conn.fetchrow(
        "select count(*) as total, count(*) filter (where sent_at is not null) as sent,"
        " count(*) filter (where sent_at is null and claimed_until > now()) as leased,"
        " count(*) filter (where attempts > 1 and sent_at is not null) as resent,"
        " string_agg(distinct condition, ',') as conditions from public.alert_log"
    )
    assert alerts is not None
    return Report(
        first_deliveries=by_status.get("applied", 0) + by_status.get("ignored", 0),
        ledger_rows=sum(by_status.values()),
        metrics=metrics,
        runs=len(runs),
        overlaps=overlaps,
        holders=len(holders),
        run_statuses=dict(Counter(str(r["status"]) for r in runs)),
        alerts_recorded=int(alerts["total"]),
        alerts_sent=int(alerts["sent"]),
        alerts_leased_to_the_dead=int(alerts["leased"]),
        alerts_posted=slack.alerts_posted(),
        slack_messages=len(slack.texts),
        conditions=str(alerts["conditions"]),
    )

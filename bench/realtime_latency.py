"""Commit-to-callback latency of the devstack's Realtime emulator, with realtime-py subscribers.

Starts its own devstack (PostgreSQL + gateway) on free loopback ports in a temp dir, creates a published table, and
for 1, 10 and 50 subscribers (one supabase client and socket each) commits >= 1000 single-row transactions at a
steady rate, recording when each subscriber's callback sees each row. A fourth run uses an RLS table with a distinct
user per subscriber (10), which exercises the per-(role, claims) RLS checks. A last run measures Broadcast from the
database: a row trigger calls `realtime.broadcast_changes()` to a private topic guarded by an RLS policy on
`realtime.messages`, with 50 subscribers, each a distinct member user; its p50/p99 are printed as ratios of the
same run's 50-subscriber postgres_changes figures.

Baselines measured in the same run: the slot poll interval (the floor a polling design pays, ~interval/2 on average)
and a plain loopback websocket round trip. Prints raw numbers, ratios, and PASS/FAIL against p99 < 300 ms.

    .venv/bin/python bench/realtime_latency.py [--changes 1000] [--rate 100] [--subscribers 1,10,50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/realtime_latency.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import websockets
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from bench.common import cpu_seconds
from devstack.keys import mint_user_token
from devstack.ports import free_port
from devstack.stack import DevStack

P99_BUDGET_MS = 300.0
DEADLINE_S = 600.0  # the whole run, whatever happens


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


@dataclass
class CaseResult:
    name: str
    subscribers: int
    changes: int
    latencies_ms: list[float] = field(default_factory=list)
    lost: int = 0
    seconds: float = 0.0
    #: CPU seconds used during the run by this process (the subscribers) and by the gateway
    client_cpu: float = 0.0
    gateway_cpu: float = 0.0

    def line(self, poll_ms: float, ws_rtt_ms: float) -> str:
        p50, p99 = pct(self.latencies_ms, 50), pct(self.latencies_ms, 99)
        mx = max(self.latencies_ms, default=float("nan"))
        return (
            f"{self.name:<28} deliveries={len(self.latencies_ms):>6} lost={self.lost:<4} "
            f"p50={p50:7.1f}ms p90={pct(self.latencies_ms, 90):7.1f}ms p99={p99:7.1f}ms max={mx:7.1f}ms "
            f"mean={statistics.fmean(self.latencies_ms) if self.latencies_ms else float('nan'):7.1f}ms | "
            f"p50/poll={p50 / poll_ms:5.2f} p99/poll={p99 / poll_ms:5.2f} p50/ws_rtt={p50 / ws_rtt_ms:7.1f} | "
            f"cpu: clients {100 * self.client_cpu / self.seconds:3.0f}% "
            f"gateway {100 * self.gateway_cpu / self.seconds:3.0f}% | {'PASS' if self.passed else 'FAIL'}"
        )

    @property
    def passed(self) -> bool:
        return self.lost == 0 and bool(self.latencies_ms) and pct(self.latencies_ms, 99) < P99_BUDGET_MS


async def loopback_ws_rtt(rounds: int = 300) -> list[float]:
    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async with websockets.serve(echo, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with websockets.connect(f"ws://127.0.0.1:{port}") as ws:
            samples = []
            for i in range(rounds):
                start = time.perf_counter()
                await ws.send(f'{{"i":{i}}}')
                await ws.recv()
                samples.append((time.perf_counter() - start) * 1000)
    return samples


@dataclass
class Arrivals:
    """When each subscriber's callback saw each row id; `done` is set once `expected` deliveries arrived."""

    per_subscriber: list[dict[int, float]]
    expected: int = 0
    count: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, index: int, row_id: int) -> None:
        self.per_subscriber[index][row_id] = time.perf_counter()
        self.count += 1
        if self.expected and self.count >= self.expected:
            self.done.set()


async def subscribe_all(
    url: str,
    keys_and_tokens: list[tuple[str, str | None]],
    table: str,
    arrivals: Arrivals,
    broadcast_topic: str | None = None,
) -> list[AsyncClient]:
    """One client per subscriber: a postgres_changes binding on `table`, or a private channel on
    `broadcast_topic` (ready when joined; there is no database subscription to confirm)."""
    clients: list[AsyncClient] = []
    waiters: list[asyncio.Event] = []
    for index, (key, token) in enumerate(keys_and_tokens):
        client = await acreate_client(url, key, options=AsyncClientOptions(realtime={"max_retries": 3}))
        if token is not None:
            await client.realtime.set_auth(token)
        ready = asyncio.Event()

        def on_change(payload: dict[str, Any], index: int = index) -> None:
            arrivals.record(index, payload["data"]["record"]["id"])

        def on_system(payload: Any, ready: asyncio.Event = ready) -> None:
            if payload.message == "Subscribed to PostgreSQL":
                ready.set()

        if broadcast_topic is not None:

            def on_message(message: Any, index: int = index) -> None:
                arrivals.record(index, message["payload"]["record"]["id"])

            def on_state(state: Any, _err: Exception | None, ready: asyncio.Event = ready) -> None:
                if str(getattr(state, "value", state)) == "SUBSCRIBED":
                    ready.set()

            channel = client.channel(
                broadcast_topic,
                params={"config": {"private": True, "broadcast": {"ack": False, "self": False}, "presence": None}},
            )
            channel.on_broadcast("*", on_message)
            await channel.subscribe(on_state)
            clients.append(client)
            waiters.append(ready)
            continue
        channel = client.channel(f"bench-{index}")
        channel.on_postgres_changes("INSERT", on_change, schema="public", table=table)  # type: ignore[arg-type]
        channel.on_system(on_system)
        await channel.subscribe()
        clients.append(client)
        waiters.append(ready)
    await asyncio.wait_for(asyncio.gather(*(w.wait() for w in waiters)), 60)
    return clients


def process_cpu_seconds(pid: int | None) -> float:
    """utime + stime of another process, from /proc (0 where that is not available)."""
    return 0.0 if pid is None else cpu_seconds(pid)


async def run_case(
    name: str,
    url: str,
    db: asyncpg.Connection,
    table: str,
    subscribers: list[tuple[str, str | None]],
    changes: int,
    rate: float,
    first_id: int,
    row_sql: str,
    row_args: tuple[Any, ...],
    gateway_pid: int | None,
    broadcast_topic: str | None = None,
) -> CaseResult:
    arrivals = Arrivals([{} for _ in subscribers], expected=changes * len(subscribers))
    clients = await subscribe_all(url, subscribers, table, arrivals, broadcast_topic)
    committed: dict[int, float] = {}
    result = CaseResult(name, len(subscribers), changes)
    cpu_before, gateway_before = time.process_time(), process_cpu_seconds(gateway_pid)
    started = time.perf_counter()
    try:
        for n in range(changes):
            row_id = first_id + n
            await db.execute(row_sql, row_id, *row_args)
            committed[row_id] = time.perf_counter()
            delay = started + (n + 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrivals.done.wait(), 30)
        result.seconds = time.perf_counter() - started
        result.client_cpu = time.process_time() - cpu_before
        result.gateway_cpu = process_cpu_seconds(gateway_pid) - gateway_before
        for seen in arrivals.per_subscriber:
            result.lost += sum(1 for row_id in committed if row_id not in seen)
            result.latencies_ms.extend((seen[r] - committed[r]) * 1000 for r in committed if r in seen)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.realtime.remove_all_channels(), 5)
    return result


async def bench(
    stack: DevStack, changes: int, rate: float, counts: list[int], broadcast_subscribers: int
) -> list[CaseResult]:
    env = stack.env()
    gateway = stack.status()["gateway"]
    pid = gateway.get("pid") if isinstance(gateway, dict) else None
    gateway_pid = pid if isinstance(pid, int) else None
    db = await asyncpg.connect(env.database_url)
    plain, docs, members, cast = (
        f"bench_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("plain", "rls", "members", "cast")
    )
    topic = f"bench:{cast}"
    try:
        await db.execute(f"""
            create table public.{plain} (id bigint primary key, payload text, at timestamptz default now());
            create table public.{members} (group_id int, user_id uuid, primary key (group_id, user_id));
            create table public.{docs} (id bigint primary key, group_id int, payload text);
            alter table public.{docs} enable row level security;
            create policy members_read on public.{docs} for select using (exists (select 1 from public.{members} m
                where m.group_id = {docs}.group_id and m.user_id = auth.uid()));
            grant all on public.{plain}, public.{docs}, public.{members} to anon, authenticated, service_role;
            alter publication supabase_realtime add table public.{plain}, public.{docs};
        """)
        results = []
        next_id = 1
        for count in counts:
            subscribers: list[tuple[str, str | None]] = [(env.anon_key, None)] * count
            results.append(
                await run_case(
                    f"{count} subscriber(s)",
                    env.supabase_url,
                    db,
                    plain,
                    subscribers,
                    changes,
                    rate,
                    next_id,
                    f"insert into public.{plain} (id, payload) values ($1, $2)",
                    ("x" * 100,),
                    gateway_pid,
                )
            )
            next_id += changes
        users = [uuid.uuid4() for _ in range(10)]
        await db.executemany(f"insert into public.{members} values (1, $1)", [(u,) for u in users])
        rls_subscribers: list[tuple[str, str | None]] = [
            (env.anon_key, mint_user_token(str(u), secret=env.jwt_secret)) for u in users
        ]
        results.append(
            await run_case(
                "10 users, RLS table",
                env.supabase_url,
                db,
                docs,
                rls_subscribers,
                changes,
                rate,
                next_id,
                f"insert into public.{docs} (id, group_id, payload) values ($1, 1, $2)",
                ("x" * 100,),
                gateway_pid,
            )
        )
        if broadcast_subscribers > 0:
            # Broadcast from the database: a row trigger, a private topic, membership checked at join by RLS.
            await db.execute(f"""
                create table public.{cast} (id bigint primary key, group_id int, payload text);
                create function public.{cast}_send() returns trigger language plpgsql security definer as $$
                begin
                  perform realtime.broadcast_changes('{topic}', tg_op, tg_op, tg_table_name, tg_table_schema,
                                                     new, old);
                  return null;
                end $$;
                create trigger {cast}_send after insert on public.{cast}
                  for each row execute function public.{cast}_send();
                create policy {cast}_members on realtime.messages for select to authenticated using (
                  (select realtime.topic()) = '{topic}' and exists (select 1 from public.{members} m
                    where m.group_id = 1 and m.user_id = (select auth.uid())));
            """)
            cast_users = [uuid.uuid4() for _ in range(broadcast_subscribers)]
            await db.executemany(f"insert into public.{members} values (1, $1)", [(u,) for u in cast_users])
            cast_subscribers: list[tuple[str, str | None]] = [
                (env.anon_key, mint_user_token(str(u), secret=env.jwt_secret)) for u in cast_users
            ]
            results.append(
                await run_case(
                    f"broadcast, {broadcast_subscribers} members",
                    env.supabase_url,
                    db,
                    cast,
                    cast_subscribers,
                    changes,
                    rate,
                    next_id,
                    f"insert into public.{cast} (id, group_id, payload) values ($1, 1, $2)",
                    ("x" * 100,),
                    gateway_pid,
                    broadcast_topic=topic,
                )
            )
        return results
    finally:
        with contextlib.suppress(Exception):
            await db.execute(f"drop policy if exists {cast}_members on realtime.messages")
        with contextlib.suppress(Exception):
            await db.execute(f"drop table if exists public.{plain}, public.{docs}, public.{members}, public.{cast}")
            await db.execute(f"drop function if exists public.{cast}_send()")
        await db.close()


async def main_async(args: argparse.Namespace) -> int:
    poll_ms = int(os.environ.get("DEVSTACK_REALTIME_POLL_MS", "50"))
    rtt = await loopback_ws_rtt()
    ws_rtt_ms = pct(rtt, 50)
    print(
        f"baseline: slot poll interval {poll_ms} ms; loopback websocket round trip p50={ws_rtt_ms:.3f} ms "
        f"p99={pct(rtt, 99):.3f} ms ({len(rtt)} samples)"
    )
    root = Path(tempfile.mkdtemp(prefix="bisonsync-bench-"))
    root.chmod(0o755)  # the cluster runs as the `postgres` user when this runs as root
    stack = DevStack(root=root, api_port=free_port(), db_port=free_port(), seed_file=None)
    try:
        await stack.prepare_database(seed=False)
        await asyncio.to_thread(stack.start_gateway)
        counts = [int(c) for c in args.subscribers.split(",")]
        print(
            f"workload: {args.changes} single-row commits per run at {args.rate:g}/s; one client+socket per "
            "subscriber; latency = callback time - commit return time (same process, monotonic clock)"
        )
        results = await asyncio.wait_for(
            bench(stack, args.changes, args.rate, counts, args.broadcast_subscribers), DEADLINE_S
        )
    finally:
        await asyncio.to_thread(stack.down)
        shutil.rmtree(root, ignore_errors=True)
    for result in results:
        print(result.line(poll_ms, ws_rtt_ms))
    by_name = {r.name: r for r in results}
    cast = next((r for r in results if r.name.startswith("broadcast")), None)
    same = by_name.get(f"{cast.subscribers} subscriber(s)") if cast is not None else None
    if cast is not None and same is not None and cast.latencies_ms and same.latencies_ms:
        print(
            f"broadcast vs postgres_changes, {cast.subscribers} subscribers, same run: "
            f"p50 ratio {pct(cast.latencies_ms, 50) / pct(same.latencies_ms, 50):.2f}, "
            f"p99 ratio {pct(cast.latencies_ms, 99) / pct(same.latencies_ms, 99):.2f}, gateway cpu ratio "
            f"{(cast.gateway_cpu / cast.seconds) / max(same.gateway_cpu / same.seconds, 1e-9):.2f}"
        )
    ok = all(r.passed for r in results)
    print(f"{'PASS' if ok else 'FAIL'}: p99 < {P99_BUDGET_MS:.0f} ms for every run")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="commits per second")
    parser.add_argument("--subscribers", default="1,10,50")
    parser.add_argument(
        "--broadcast-subscribers",
        type=int,
        default=50,
        help="subscribers of the broadcast-from-database run (0: skip it)",
    )
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()

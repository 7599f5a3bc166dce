"""Sync benchmark: the mailbox poller (`bisonsync poll --once`) against the Email Bison simulator.

    .venv/bin/python bench/sync.py                   # everything (~2-2.5 min)
    .venv/bin/python bench/sync.py --quick           # smaller scaling sizes, no CLI run (~1.5 min)
    .venv/bin/python bench/sync.py --profile         # + py-spy of the poller during the largest scaling poll

What it does, on a private devstack (PostgreSQL on free loopback ports, in a temp dir; no gateway), with the
simulator in its own process (`bisonsync simulate` on a free loopback port, so its CPU is not charged to the
poller; requests counted by the simulator, read from `/_sim/counters`):

1. 24 workspaces, ~4,000 mailboxes, 50 ms latency on every request.
   a. Serial baseline (the predecessor's model): every page of every workspace fetched strictly one after another
      with the same client (`BisonClient`, workspace keys, no database).
   b. The poller with workspace-scoped keys registered (`workspace_credentials.bison_api_key_ref` = env var NAMES,
      values in this process's environment): `run_sync_cycle` (what `bisonsync poll --once` runs: workspace
      registry, then `poll_mailboxes`, concurrency 8) over `PostgresStore`, first poll (every mailbox inserted),
      then a repeat poll (nothing changed), then `bisonsync poll --once` itself as a subprocess (process start,
      imports and connection setup included).
   c. The poller with the super-admin key only (workspaces serialized behind switch-workspace), for contrast.
   d. The same super-admin-only setup after `bisonsync keys provision` (one workspace-scoped key per workspace
      created through the simulator's token endpoint and stored in the devstack's Supabase Vault): the poller
      picks the stored keys up and runs workspaces in parallel; target >= 5x the serial baseline, first poll.
      `--provisioned-only` runs just the serial baseline and this part.
   Ideal = pages / concurrency x latency. Pages within a workspace are sequential (each page's URL comes from the
   previous one), so the largest workspace's pages x latency (the critical path) is a lower bound too; the 2x
   target is judged against the larger of the two.
   The same bound caps the speedup over the serial baseline at pages / largest workspace's pages (printed, with its
   spread over simulator seeds 0-9: the 6x target is out of reach for some seeds whatever the poller does).
2. Scaling: 25k, 50k, 100k mailboxes over the same 24 workspaces, 2 ms per request, workspace keys: first polls at
   every size, then repeat polls; wall time and CPU (poller, PostgreSQL, simulator) per 1,000 mailboxes, and
   PostgreSQL's table/index statistics per run (index tuples read on sender_emails_cache per page: a plan that
   scans a whole workspace per page shows here); linear when the cost per mailbox at the largest size is within
   1.5x of the smallest. The client's page cap (500 pages = 7,500 mailboxes per workspace) is raised where a
   workspace needs more (at 100k, 3 of 24 do). Whatever would not fit the time budget (`--budget`, 170 s) is
   skipped and reported.

Every run files its data under its own instance label (`BISON_INSTANCE`), so first polls really start empty.
Prints raw figures and each target as `[PASS]`/`[FAIL]`; writes bench/results/sync-*.json and
bench/results/sync-latest.md (run_all copies it into docs/performance.md; `--update-doc` writes it directly).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/sync.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import httpx

from bench.common import (
    BIN,
    LOOPBACK,
    RESULTS_DIR,
    Stack,
    Target,
    cpu_seconds,
    install_signal_handlers,
    interrupts_deferred,
    machine_busy_seconds,
    machine_info,
    machine_line,
    markdown_table,
    print_targets,
    private_stack,
    ratio,
    table,
    tail,
    terminate,
    update_doc_section,
    write_results,
)
from bench.profiling import recording, summarize
from bisonsync.bison import DEFAULT_MAX_PAGES, BisonClient
from bisonsync.keys import provision_keys
from bisonsync.settings import Settings
from bisonsync.store import store_from_settings
from bisonsync.sync.pages import first_page_url
from bisonsync.sync.scheduled import run_sync_cycle
from bisonsync.sync.workspaces import sync_workspaces
from devstack.ports import free_port
from devstack.simulator.data import generate

BENCH = "sync"
SPEEDUP_TARGET = 6.0
PROVISIONED_TARGET = 5.0
IDEAL_FACTOR_TARGET = 2.0
LINEARITY_TARGET = 1.5
KEY_REF_PREFIX = "BISONSYNC_BENCH_SYNC_KEY"
INSTANCE_DOMAIN = "bench-sync.invalid"
SUMMARY_LINE = re.compile(
    r"mailboxes: (?P<status>\w+): (?P<done>\d+)/(?P<workspaces>\d+) workspaces, (?P<pages>\d+) pages, "
    r"(?P<seen>\d+) mailboxes \((?P<inserted>\d+) new, (?P<updated>\d+) changed.* in (?P<elapsed>[\d.]+)s"
)


# -- the simulator, in its own process -------------------------------------------------------------------------------


@dataclass
class Simulator:
    """`bisonsync simulate` on a free loopback port; controlled and read through its `/_sim/*` endpoints."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    latency_ms: float
    super_key: str = field(default="", repr=False)
    workspace_keys: dict[int, str] = field(default_factory=dict, repr=False)
    #: team id -> mailboxes its listing has (a shared mailbox is listed under two teams)
    sizes: dict[int, int] = field(default_factory=dict)
    page_size: int = 15

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def listed(self) -> int:
        return sum(self.sizes.values())

    def pages_of(self, team: int) -> int:
        """Requests the listing of `team` takes: one per page of 15, one (empty) page for an empty workspace."""
        return max(1, math.ceil(self.sizes[team] / self.page_size))

    @property
    def pages(self) -> list[int]:
        return [self.pages_of(t) for t in self.sizes]

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            resp = await http.request(method, path, json=body)
            resp.raise_for_status()
            return resp.json()

    async def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bisonsync simulate exited with {self.proc.returncode}:\n{tail(self.log_path)}")
            try:
                state = await self._call("GET", "/_sim/state")
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
                continue
            keys = await self._call("GET", "/_sim/keys")
            self.super_key = keys["super_admin"]
            self.workspace_keys = {int(k): v for k, v in keys["workspaces"].items()}
            self.sizes = {int(w["id"]): int(w["mailboxes"]) for w in state["workspaces"]}
            self.page_size = int(state["page_size"])
            return
        raise RuntimeError(f"bisonsync simulate not ready after {timeout_s}s:\n{tail(self.log_path)}")

    async def reset_counters(self) -> None:
        await self._call("POST", "/_sim/counters/reset")

    async def counters(self) -> dict[str, Any]:
        return dict(await self._call("GET", "/_sim/counters"))


@contextlib.asynccontextmanager
async def simulator(
    stack: Stack, workspaces: int, mailboxes: int, seed: int, latency_ms: float
) -> AsyncIterator[Simulator]:
    """Start `bisonsync simulate` (stopped by pid on exit, whatever happens; it also stops itself after 15 min)."""
    port = free_port()
    log_path = stack.root / f"simulate-{mailboxes}-{port}.log"
    command = [
        str(BIN / "bisonsync"),
        "simulate",
        "--workspaces",
        str(workspaces),
        "--mailboxes",
        str(mailboxes),
        "--seed",
        str(seed),
        "--port",
        str(port),
        "--latency-ms",
        f"{latency_ms:g}",
        "--keys-file",
        str(stack.root / f"simulator-keys-{port}.json"),
        "--run-seconds",
        "900",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BISON_", "BISONSYNC_"))}
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=stack.root, start_new_session=True
        )
    sim = Simulator(proc, port, log_path, latency_ms)
    try:
        await sim.wait_ready(120)
        yield sim
    finally:
        with interrupts_deferred():
            terminate(proc)


# -- CPU accounting --------------------------------------------------------------------------------------------------


def children_cpu_seconds() -> float:
    """CPU of our waited-for children (the `bisonsync poll --once` subprocess once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuClock:
    """CPU seconds used by groups of processes between two readings; `other` = the rest of the machine (other
    users' processes, and backends that exited in between)."""

    def __init__(self, groups: dict[str, Callable[[], float]]) -> None:
        self.groups = groups
        self._start: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        found = {name: read() for name, read in self.groups.items()}
        found["machine"] = machine_busy_seconds()
        return found

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> dict[str, float]:
        end = self._read()
        spent = {name: end[name] - self._start[name] for name in end}
        machine = spent.pop("machine")
        spent["other"] = max(0.0, machine - sum(spent.values()))
        return {name: round(value, 3) for name, value in spent.items()}


def postgres_cpu(stack: Stack) -> float:
    return sum(cpu_seconds(p) for p in stack.postgres_pids())


def cpu_clock(stack: Stack, sim: Simulator, poller: Callable[[], float] | None = None) -> CpuClock:
    own = os.getpid()
    return CpuClock(
        {
            "poller": poller or (lambda: cpu_seconds(own)),
            "postgres": lambda: postgres_cpu(stack),
            "simulator": lambda: cpu_seconds(sim.pid),
        }
    )


# -- runs ------------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One measured run: the serial baseline, or one poll."""

    label: str
    #: serial | first | repeat | cli
    kind: str
    #: workspace | super-admin
    keys: str
    mailboxes: int
    workspaces: int
    latency_ms: float
    concurrency: int
    wall_s: float
    status: str
    pages: int
    seen: int
    inserted: int = 0
    updated: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    switches: int = 0
    max_in_flight: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    #: the poll's own elapsed time as `PollReport.elapsed_s` (the CLI run: process start etc. are the difference)
    inner_s: float | None = None
    note: str = ""
    #: PostgreSQL's table statistics over the run (sync tables): scans, and autovacuum/autoanalyze runs finished
    db: dict[str, int] = field(default_factory=dict)

    @property
    def page_requests(self) -> int:
        return int(self.requests.get("GET /api/sender-emails", 0))

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def per_k(self, value: float) -> float:
        return 1000 * value / self.seen if self.seen else float("nan")


SYNC_TABLES = (
    "sender_emails_cache",
    "mailbox_status_history",
    "sync_run_mailboxes",
    "sync_run_workspaces",
    "sync_runs",
)


async def table_stats(stack: Stack) -> dict[str, int]:
    """Sums over the sync tables from pg_stat_user_tables (sequential scans, autovacuum runs), and the index tuples
    read on sender_emails_cache: a page of 15 needs ~15 index probes, so many more per page means a plan that
    scans a whole workspace's rows per page (see docs/performance.md, "Sync")."""
    conn = await asyncpg.connect(stack.dsn)
    try:
        row = await conn.fetchrow(
            "select sum(seq_scan)::bigint as seq_scan, sum(seq_tup_read)::bigint as seq_tup_read,"
            " sum(idx_scan)::bigint as idx_scan, sum(n_tup_ins + n_tup_upd + n_tup_del)::bigint as rows_written,"
            " sum(autovacuum_count + autoanalyze_count)::bigint as autovacuum_runs,"
            " (select sum(idx_tup_read)::bigint from pg_stat_user_indexes"
            "   where schemaname = 'public' and relname = 'sender_emails_cache') as cache_index_tuples"
            " from pg_stat_user_tables where schemaname = 'public' and relname = any($1::text[])",
            list(SYNC_TABLES),
        )
        return {k: int(v or 0) for k, v in dict(row or {}).items()}
    finally:
        await conn.close()


def register_refs(sim: Simulator, tag: str) -> dict[int, str]:
    """{team: env var NAME} for this run's workspace keys; the values go into our own environment (where the
    poller looks them up, as in production)."""
    refs = {}
    for team, key in sim.workspace_keys.items():
        ref = f"{KEY_REF_PREFIX}_{tag}_{team}"
        os.environ[ref] = key
        refs[team] = ref
    return refs


async def prepare_instance(stack: Stack, sim: Simulator, instance: str, refs: dict[int, str] | None) -> None:
    """Register the instance's workspaces (production workspaces are long-lived; creating one costs ~25-50 ms of
    database CPU, see the ingest section) and, when given, the NAMES of their workspace keys."""
    settings = Settings.from_env({"DATABASE_URL": stack.devstack.env().database_url})
    store = store_from_settings(settings)
    await store.open()
    try:
        async with BisonClient(sim.url, sim.super_key) as client:
            await sync_workspaces(store, client, instance)
    finally:
        await store.close()
    if not refs:
        return
    conn = await asyncpg.connect(stack.dsn)
    try:
        for team, ref in refs.items():
            await conn.execute(
                "insert into public.workspace_credentials (workspace_id, bison_api_key_ref)"
                " select id, $3 from public.workspaces where instance = $1 and bison_workspace_id = $2"
                " on conflict (workspace_id) do update set bison_api_key_ref = excluded.bison_api_key_ref",
                instance,
                team,
                ref,
            )
    finally:
        await conn.close()


async def provision_instance(stack: Stack, sim: Simulator, instance: str) -> tuple[float, str]:
    """`bisonsync keys provision` for the instance (registered already): (seconds, summary)."""
    settings = Settings.from_env({"DATABASE_URL": stack.devstack.env().database_url})
    store = store_from_settings(settings)
    await store.open()
    try:
        async with BisonClient(sim.url, sim.super_key) as client:
            started = time.perf_counter()
            report = await provision_keys(store, client, instance)
            took = time.perf_counter() - started
    finally:
        await store.close()
    if not report.ok:
        raise RuntimeError(f"keys provision failed: {report.summary()}")
    return took, report.summary()


async def serial_baseline(stack: Stack, sim: Simulator, label: str, cap: int) -> Run:
    """Every page of every workspace strictly one after another, with the same client (workspace keys: no switch
    requests), nothing written anywhere."""
    await sim.reset_counters()
    clock = cpu_clock(stack, sim)
    pages = seen = 0
    async with BisonClient(sim.url, sim.super_key, workspace_keys=sim.workspace_keys, max_pages=cap) as client:
        clock.start()
        started = time.perf_counter()
        for team in sorted(sim.sizes):
            async with client.workspace(team) as session:
                async for step in session.sender_email_pages_from(first_page_url(client.base_url), max_pages=cap):
                    pages += 1
                    seen += len(step.page.data)
        wall = time.perf_counter() - started
        cpu = clock.stop()
    counters = await sim.counters()
    return Run(
        label,
        "serial",
        "workspace",
        sim.listed,
        len(sim.sizes),
        sim.latency_ms,
        1,
        wall,
        "completed",
        pages,
        seen,
        requests=counters["requests"],
        statuses=counters["statuses"],
        switches=counters["switches"],
        max_in_flight=counters["max_in_flight"],
        cpu=cpu,
    )


def poll_settings(stack: Stack, sim: Simulator, instance: str) -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": stack.devstack.env().database_url,
            "BISON_BASE_URL": sim.url,
            "BISON_API_KEY": sim.super_key,
            "BISON_INSTANCE": instance,
        }
    )


async def poll(
    stack: Stack,
    sim: Simulator,
    instance: str,
    label: str,
    kind: str,
    keys: str,
    *,
    concurrency: int,
    cap: int,
    profile: Path | None = None,
) -> Run:
    """`run_sync_cycle` as `bisonsync poll --once` runs it (store opened first; a fresh client and pool)."""
    settings = poll_settings(stack, sim, instance)
    store = store_from_settings(settings)
    await store.open()
    client = BisonClient(sim.url, sim.super_key, max_pages=cap)  # = client_from_settings(settings) + the page cap
    try:
        await sim.reset_counters()
        db_before = await table_stats(stack)
        clock = cpu_clock(stack, sim)
        clock.start()
        started = time.perf_counter()
        with recording(os.getpid(), profile) if profile else contextlib.nullcontext():
            cycle = await run_sync_cycle(settings, store, client, concurrency=concurrency)
        wall = time.perf_counter() - started
        cpu = clock.stop()  # before the pool closes: its backends' CPU is read while they exist
    finally:
        await client.aclose()
        await store.close()  # the backends exit and flush their table statistics
    db = {k: v - db_before.get(k, 0) for k, v in (await table_stats(stack)).items()}
    counters = await sim.counters()
    report = cycle.mailboxes
    t = report.totals
    return Run(
        label,
        kind,
        keys,
        sim.listed,
        len(sim.sizes),
        sim.latency_ms,
        concurrency,
        wall,
        report.status,
        int(t.get("pages", 0)),
        int(t.get("mailboxes_seen", 0)),
        int(t.get("inserted", 0)),
        int(t.get("updated", 0)),
        counters["requests"],
        counters["statuses"],
        counters["switches"],
        counters["max_in_flight"],
        cpu,
        inner_s=report.elapsed_s,
        note="" if report.ok else report.summary(),
        db=db,
    )


async def cli_poll(
    stack: Stack, sim: Simulator, instance: str, refs: dict[int, str], label: str, *, concurrency: int
) -> Run:
    """`bisonsync poll --once` itself, as a subprocess (stopped by pid if anything goes wrong)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BISONSYNC_", "SUPABASE_", "DATABASE_", "BISON_"))}
    env.update({ref: os.environ[ref] for ref in refs.values()})
    env.update(
        {
            "DATABASE_URL": stack.devstack.env().database_url,
            "BISON_BASE_URL": sim.url,
            "BISON_API_KEY": sim.super_key,
            "BISON_INSTANCE": instance,
            "BISONSYNC_POLL_INTERVAL_S": "0",
        }
    )
    command = [
        str(BIN / "bisonsync"),
        "poll",
        "--once",
        "--no-progress",
        "--log-level",
        "warning",
        "--concurrency",
        str(concurrency),
    ]
    await sim.reset_counters()
    clock = cpu_clock(stack, sim, poller=children_cpu_seconds)
    clock.start()
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=stack.root, start_new_session=True
    )
    try:
        out, _ = await asyncio.to_thread(proc.communicate, timeout=120)
    finally:
        with interrupts_deferred():
            terminate(proc)  # no-op once it has exited
    wall = time.perf_counter() - started
    cpu = clock.stop()
    cpu.pop("postgres", None)  # its backends exited with it: their CPU landed in `other`
    counters = await sim.counters()
    text = out.decode(errors="replace")
    found = SUMMARY_LINE.search(text)
    if proc.returncode != 0 or found is None:
        return Run(
            label,
            "cli",
            "workspace",
            sim.listed,
            len(sim.sizes),
            sim.latency_ms,
            concurrency,
            wall,
            f"exit {proc.returncode}",
            0,
            0,
            requests=counters["requests"],
            cpu=cpu,
            note=text.strip().splitlines()[-1] if text.strip() else "",
        )
    return Run(
        label,
        "cli",
        "workspace",
        sim.listed,
        len(sim.sizes),
        sim.latency_ms,
        concurrency,
        wall,
        found["status"],
        int(found["pages"]),
        int(found["seen"]),
        int(found["inserted"]),
        int(found["updated"]),
        counters["requests"],
        counters["statuses"],
        counters["switches"],
        counters["max_in_flight"],
        cpu,
        inner_s=float(found["elapsed"]),
    )


# -- the bounds ------------------------------------------------------------------------------------------------------


def list_schedule(pages: Sequence[int], lanes: int) -> int:
    """Pages on the busiest lane when workspaces, in this order, each go to the first free of `lanes` lanes."""
    loads = [0] * max(1, lanes)
    for p in pages:
        loads[loads.index(min(loads))] += p
    return max(loads)


def lpt_makespan(pages: Sequence[int], lanes: int) -> int:
    """The same, biggest first (what the poller does once the cache knows the sizes)."""
    return list_schedule(sorted(pages, reverse=True), lanes)


def seed_ceilings(workspaces: int, mailboxes: int, seeds: Sequence[int]) -> dict[int, float]:
    """Per simulator seed: pages / the largest workspace's pages (how far parallel workspaces can go at most
    while pages within a workspace stay sequential)."""
    out = {}
    for seed in seeds:
        data = generate(workspaces, mailboxes, seed)
        pages = [max(1, math.ceil(len(ids) / 15)) for ids in data.team_mailboxes.values()]
        out[seed] = round(sum(pages) / max(pages), 2)
    return out


@dataclass
class Bounds:
    pages: int
    largest: int
    latency_ms: float
    concurrency: int

    @property
    def ideal_s(self) -> float:
        return self.pages / self.concurrency * self.latency_ms / 1000

    @property
    def critical_s(self) -> float:
        return self.largest * self.latency_ms / 1000

    @property
    def bound_s(self) -> float:
        return max(self.ideal_s, self.critical_s)


def bounds_of(sim: Simulator, concurrency: int) -> Bounds:
    return Bounds(sum(sim.pages), max(sim.pages), sim.latency_ms, concurrency)


# -- phases ----------------------------------------------------------------------------------------------------------


@dataclass
class Deadline:
    budget_s: float
    started: float = field(default_factory=time.monotonic)

    @property
    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.started)


def show(run: Run, serial: Run | None = None, bounds: Bounds | None = None) -> None:
    parts = [f"  {run.label:<42} {run.wall_s:7.2f}s  {run.status:<9} pages {run.pages:5d}  mailboxes {run.seen:6d}"]
    if serial is not None and run is not serial:
        parts.append(f"x{ratio(serial.wall_s, run.wall_s):.1f} vs serial")
    if bounds is not None and run.kind != "serial":
        parts.append(f"{run.wall_s / bounds.bound_s:.2f}x bound")
    parts.append(f"requests {run.total_requests} (switches {run.switches}, max in flight {run.max_in_flight})")
    parts.append("cpu " + " ".join(f"{k} {v:.2f}s" for k, v in run.cpu.items()))
    if run.db:
        parts.append("db " + " ".join(f"{k} {v}" for k, v in run.db.items()))
    if run.note:
        parts.append(f"[{run.note}]")
    print("  ".join(parts), flush=True)


@dataclass
class Phase1:
    sizes: dict[int, int]
    bounds: Bounds
    admin_bounds_s: float
    serial: Run
    polls: list[Run]
    lpt_pages: int
    #: the first poll knows no sizes: workspaces start in bison id order
    id_order_pages: int
    #: seed -> pages / largest workspace's pages (the speedup ceiling with sequential pages), same sizes
    seed_ceilings: dict[int, float] = field(default_factory=dict)


async def phase1(stack: Stack, opts: argparse.Namespace) -> Phase1:
    print(
        f"\n[1] {opts.workspaces} workspaces, {opts.mailboxes} mailboxes, {opts.latency_ms:g} ms per request, "
        f"concurrency {opts.concurrency}",
        flush=True,
    )
    async with simulator(stack, opts.workspaces, opts.mailboxes, opts.seed, opts.latency_ms) as sim:
        bounds = bounds_of(sim, opts.concurrency)
        lpt = lpt_makespan(sim.pages, opts.concurrency)
        print(
            f"  simulator pid {sim.pid}: {sim.listed} listed mailboxes, {bounds.pages} pages, largest workspace "
            f"{bounds.largest} pages; ideal {bounds.ideal_s:.2f}s, critical path {bounds.critical_s:.2f}s, "
            f"biggest-first on {opts.concurrency} lanes {lpt * opts.latency_ms / 1000:.2f}s",
            flush=True,
        )
        keyed = f"keys.{INSTANCE_DOMAIN}"
        admin = f"admin.{INSTANCE_DOMAIN}"
        vaulted = f"vault.{INSTANCE_DOMAIN}"
        refs = register_refs(sim, "P1")
        if not opts.provisioned_only:
            await prepare_instance(stack, sim, keyed, refs)
            await prepare_instance(stack, sim, admin, None)
        await prepare_instance(stack, sim, vaulted, None)
        cap = DEFAULT_MAX_PAGES
        serial = await serial_baseline(stack, sim, "serial baseline (one page at a time)", cap)
        show(serial)
        polls: list[Run] = []
        common = {"concurrency": opts.concurrency, "cap": cap}
        provision_s, provision_summary = await provision_instance(stack, sim, vaulted)
        print(f"  keys provision: {provision_summary} in {provision_s:.2f}s", flush=True)
        polls.append(
            await poll(
                stack,
                sim,
                vaulted,
                "poller, super-admin key only, after `keys provision`, first poll",
                "first",
                "provisioned",
                **common,
            )
        )
        polls[-1].note = polls[-1].note or f"keys provision took {provision_s:.2f}s before it"
        show(polls[-1], serial, bounds)
        if opts.provisioned_only:
            return Phase1(dict(sim.sizes), bounds, 0.0, serial, polls, lpt, 0, {})
        polls.append(
            await poll(stack, sim, keyed, "poller, workspace keys, first poll", "first", "workspace", **common)
        )
        show(polls[-1], serial, bounds)
        polls.append(
            await poll(stack, sim, keyed, "poller, workspace keys, repeat poll", "repeat", "workspace", **common)
        )
        show(polls[-1], serial, bounds)
        if not opts.no_cli:
            polls.append(
                await cli_poll(
                    stack,
                    sim,
                    keyed,
                    refs,
                    "`bisonsync poll --once` (subprocess), repeat",
                    concurrency=opts.concurrency,
                )
            )
            show(polls[-1], serial, bounds)
        polls.append(
            await poll(stack, sim, admin, "poller, super-admin key only, first poll", "first", "super-admin", **common)
        )
        show(polls[-1], serial, bounds)
        # every request one after another: the pages, one switch per workspace, the registry listing
        admin_floor = (bounds.pages + len(sim.sizes) + 1) * opts.latency_ms / 1000
        id_order = list_schedule([sim.pages_of(t) for t in sorted(sim.sizes)], opts.concurrency)
        return Phase1(
            dict(sim.sizes),
            bounds,
            admin_floor,
            serial,
            polls,
            lpt,
            id_order,
            await asyncio.to_thread(seed_ceilings, opts.workspaces, opts.mailboxes, range(10)),
        )


@dataclass
class ScaleStep:
    target_mailboxes: int
    listed: int
    pages: int
    largest: int
    cap: int
    latency_ms: float
    bounds: Bounds
    runs: list[Run] = field(default_factory=list)
    skipped: str = ""


async def phase2(stack: Stack, opts: argparse.Namespace, deadline: Deadline) -> list[ScaleStep]:
    """First polls at every size (smallest first), then repeat polls; whatever would overrun the budget is skipped
    and reported. The simulators stay up (idle) until the repeat polls are done."""
    print(
        f"\n[2] scaling: {', '.join(str(n) for n in opts.sizes)} mailboxes over {opts.workspaces} workspaces, "
        f"{opts.scale_latency_ms:g} ms per request, workspace keys, concurrency {opts.concurrency}; "
        f"{deadline.left:.0f}s of the budget left",
        flush=True,
    )
    steps: list[ScaleStep] = []
    live: dict[int, tuple[Simulator, str]] = {}
    per_k: float | None = None  # wall seconds per 1,000 mailboxes of the last first poll
    async with contextlib.AsyncExitStack() as sims:
        for size in opts.sizes:
            # simulator start (imports, ~20 us per mailbox of data), registration, then the poll
            needed = 5 + size * 3e-5 + (per_k * size / 1000 * 1.1 if per_k else 0)
            if deadline.left < needed:
                steps.append(
                    ScaleStep(
                        size,
                        0,
                        0,
                        0,
                        0,
                        opts.scale_latency_ms,
                        Bounds(0, 0, 0, 1),
                        skipped=f"skipped: ~{needed:.0f}s needed, {deadline.left:.0f}s left",
                    )
                )
                print(f"  {size}: {steps[-1].skipped}", flush=True)
                continue
            sim = await sims.enter_async_context(
                simulator(stack, opts.workspaces, size, opts.seed, opts.scale_latency_ms)
            )
            bounds = bounds_of(sim, opts.concurrency)
            cap = max(DEFAULT_MAX_PAGES, bounds.largest + 1)
            over = sum(1 for p in sim.pages if p > DEFAULT_MAX_PAGES)
            step = ScaleStep(size, sim.listed, bounds.pages, bounds.largest, cap, opts.scale_latency_ms, bounds)
            steps.append(step)
            print(
                f"  {size}: simulator pid {sim.pid}, {sim.listed} listed, {bounds.pages} pages, largest workspace "
                f"{bounds.largest} pages"
                + (
                    f" ({over} workspace(s) over the default cap of {DEFAULT_MAX_PAGES} pages: cap raised to {cap})"
                    if over
                    else ""
                ),
                flush=True,
            )
            instance = f"scale-{size}.{INSTANCE_DOMAIN}"
            await prepare_instance(stack, sim, instance, register_refs(sim, f"S{size}"))
            profile = RESULTS_DIR / "sync-profile.txt" if opts.profile and size == max(opts.sizes) else None
            first = await poll(
                stack,
                sim,
                instance,
                f"{size}: first poll",
                "first",
                "workspace",
                concurrency=opts.concurrency,
                cap=cap,
                profile=profile,
            )
            step.runs.append(first)
            show(first, None, bounds)
            per_k = 1000 * first.wall_s / max(1, sim.listed)
            live[size] = (sim, instance)
        if opts.no_repeat:
            return steps
        for step in steps:
            if step.target_mailboxes not in live:
                continue
            sim, instance = live[step.target_mailboxes]
            if deadline.left < step.runs[0].wall_s * 1.15 + 1:
                step.skipped = f"repeat poll skipped: {deadline.left:.0f}s of the budget left"
                print(f"  {step.target_mailboxes}: {step.skipped}", flush=True)
                continue
            repeat = await poll(
                stack,
                sim,
                instance,
                f"{step.target_mailboxes}: repeat poll",
                "repeat",
                "workspace",
                concurrency=opts.concurrency,
                cap=step.cap,
            )
            step.runs.append(repeat)
            show(repeat, None, step.bounds)
    return steps


# -- targets and output ----------------------------------------------------------------------------------------------


def targets(p1: Phase1 | None, steps: list[ScaleStep], opts: argparse.Namespace) -> list[Target]:
    out: list[Target] = [] if p1 is None else phase1_targets(p1, opts)
    if 2 in opts.phases:
        out += scaling_targets(steps, repeat=not opts.no_repeat)
    return out


def phase1_targets(p1: Phase1, opts: argparse.Namespace) -> list[Target]:
    out: list[Target] = []
    serial, b = p1.serial, p1.bounds
    ceiling = b.pages / b.largest
    spread = ""
    if p1.seed_ceilings:
        values = sorted(p1.seed_ceilings.values())
        spread = (
            f"; over seeds {min(p1.seed_ceilings)}-{max(p1.seed_ceilings)} the ceiling is "
            f"{values[0]:.1f}-{values[-1]:.1f}x"
        )
    for kind, what in (("repeat", "repeat poll = steady state"), ("first", "first poll = empty cache")):
        run = next((r for r in p1.polls if r.keys == "workspace" and r.kind == kind), None)
        if run is None:
            continue
        done = run.status == "completed"
        speedup = ratio(serial.wall_s, run.wall_s)
        out.append(
            Target(
                BENCH,
                f"poll --once >= {SPEEDUP_TARGET:g}x faster than the serial baseline ({what}; "
                f"{opts.workspaces} ws, ~{opts.mailboxes} mailboxes, {opts.latency_ms:g} ms/page, workspace keys)",
                done and speedup >= SPEEDUP_TARGET,
                f"x{speedup:.2f}: serial {serial.wall_s:.2f}s ({serial.pages} pages, "
                f"{1000 * serial.wall_s / max(1, serial.pages):.1f} ms each), poller {run.wall_s:.2f}s; ceiling with "
                f"sequential pages per workspace = pages / largest workspace's pages = {b.pages}/{b.largest} = "
                f"{ceiling:.1f}x{spread}" + ("" if done else f"; {run.status}: {run.note}"),
            )
        )
        out.append(
            Target(
                BENCH,
                f"poll --once within {IDEAL_FACTOR_TARGET:g}x of max(ideal, critical path) ({what})",
                done and run.wall_s <= IDEAL_FACTOR_TARGET * b.bound_s,
                f"{run.wall_s:.2f}s = {run.wall_s / b.bound_s:.2f}x of {b.bound_s:.2f}s: "
                f"ideal {b.pages}/{b.concurrency} "
                f"x {b.latency_ms:g} ms = {b.ideal_s:.2f}s, critical path {b.largest} x {b.latency_ms:g} ms = "
                f"{b.critical_s:.2f}s ({run.wall_s / b.ideal_s:.2f}x of the ideal alone)",
            )
        )
    keyed = [r for r in p1.polls if r.keys in ("workspace", "provisioned")]
    extra = [r for r in keyed if r.page_requests != serial.page_requests or set(r.statuses) - {"200"}]
    out.append(
        Target(
            BENCH,
            "every page fetched exactly once (page requests = the serial baseline's, all answered 200)",
            not extra,
            f"serial {serial.page_requests}; "
            + ", ".join(f"{r.kind} {r.page_requests} (+{r.total_requests - r.page_requests} other)" for r in keyed)
            + (f"; {extra[0].label}: statuses {extra[0].statuses}" if extra else ""),
        )
    )
    vaulted = next((r for r in p1.polls if r.keys == "provisioned"), None)
    if vaulted is not None:
        speedup = ratio(serial.wall_s, vaulted.wall_s)
        out.append(
            Target(
                BENCH,
                f"super-admin key only, after `keys provision`: >= {PROVISIONED_TARGET:g}x the serial baseline "
                "(first poll; workspace keys from Supabase Vault)",
                vaulted.status == "completed" and speedup >= PROVISIONED_TARGET and vaulted.switches == 0,
                f"x{speedup:.2f}: serial {serial.wall_s:.2f}s, poller {vaulted.wall_s:.2f}s, "
                f"{vaulted.switches} switches, "
                f"max {vaulted.max_in_flight} requests in flight; {vaulted.note}",
            )
        )
    admin = next((r for r in p1.polls if r.keys == "super-admin"), None)
    if admin is not None:
        out.append(
            Target(
                BENCH,
                "informational: super-admin key only (workspaces serialized behind switch-workspace; no target)",
                admin.status == "completed",
                f"{admin.wall_s:.2f}s = x{ratio(serial.wall_s, admin.wall_s):.2f} vs serial; {admin.total_requests} "
                f"requests ({admin.switches} switches); floor with every request in sequence {p1.admin_bounds_s:.2f}s",
            )
        )
    return out


def scaling_targets(steps: list[ScaleStep], *, repeat: bool = True) -> list[Target]:
    out: list[Target] = []
    done = [s for s in steps if s.runs]
    for kind in ("first", "repeat") if repeat else ("first",):
        points = [(s, r) for s in done for r in s.runs if r.kind == kind]
        if len(points) < 2:
            out.append(
                Target(
                    BENCH,
                    f"cost per mailbox grows linearly ({kind} poll)",
                    False,
                    f"only {len(points)} size(s) measured: "
                    + ("; ".join(f"{s.target_mailboxes}: {s.skipped}" for s in steps if s.skipped) or "too few sizes"),
                )
            )
            continue
        (s0, r0), (s1, r1) = points[0], points[-1]
        growth = ratio(r1.per_k(r1.wall_s), r0.per_k(r0.wall_s))
        ok = all(r.status == "completed" for _, r in points) and growth <= LINEARITY_TARGET
        out.append(
            Target(
                BENCH,
                f"cost per mailbox at {s1.target_mailboxes / 1000:g}k within {LINEARITY_TARGET:g}x of "
                f"{s0.target_mailboxes / 1000:g}k ({kind} poll)",
                ok,
                ", ".join(
                    f"{s.target_mailboxes / 1000:g}k {r.wall_s:.1f}s = {r.per_k(r.wall_s):.3f} s/1k" for s, r in points
                )
                + f"; x{growth:.2f}; PostgreSQL CPU per 1k mailboxes "
                + " -> ".join(f"{r.per_k(r.cpu.get('postgres', float('nan'))):.3f}s" for _, r in points)
                + ", sender_emails_cache index tuples read per page "
                + " -> ".join(f"{r.db.get('cache_index_tuples', 0) / max(1, r.pages):.0f}" for _, r in points)
                + ("" if ok or all(r.status == "completed" for _, r in points) else "; a poll did not complete"),
            )
        )
    return out


P1_HEADERS = [
    "run",
    "wall s",
    "poll s",
    "x serial",
    "x bound",
    "status",
    "page req",
    "other req",
    "switches",
    "max in flight",
    "poller CPU s",
    "PG CPU s",
    "sim CPU s",
    "oth CPU s",
]


def p1_rows(p1: Phase1) -> list[list[str]]:
    rows = []
    for r in [p1.serial, *p1.polls]:

        def cpu(name: str, run: Run = r) -> str:
            return f"{run.cpu[name]:.2f}" if name in run.cpu else "-"

        rows.append(
            [
                r.label,
                f"{r.wall_s:.2f}",
                "-" if r.inner_s is None else f"{r.inner_s:.2f}",
                f"{ratio(p1.serial.wall_s, r.wall_s):.1f}",
                "-" if r.kind == "serial" else f"{r.wall_s / p1.bounds.bound_s:.2f}",
                r.status,
                str(r.page_requests),
                str(r.total_requests - r.page_requests),
                str(r.switches),
                str(r.max_in_flight),
                cpu("poller"),
                cpu("postgres"),
                cpu("simulator"),
                cpu("other"),
            ]
        )
    return rows


P2_HEADERS = [
    "mailboxes",
    "pages",
    "largest ws pages",
    "poll",
    "wall s",
    "s / 1k mailboxes",
    "x smallest",
    "critical path s",
    "CPU floor s",
    "poller CPU s/1k",
    "PG CPU s/1k",
    "sim CPU s/1k",
    "oth CPU s/1k",
    "cache index tuples / page",
    "status",
]


def cpu_floor(run: Run) -> float:
    """Wall time the run's own CPU (poller + PostgreSQL + simulator) needs at least on this machine's cores."""
    return sum(run.cpu.get(k, 0.0) for k in ("poller", "postgres", "simulator")) / max(1, len(os.sched_getaffinity(0)))


def p2_rows(steps: list[ScaleStep]) -> list[list[str]]:
    rows = []
    base: dict[str, float] = {}
    for s in steps:
        if not s.runs:
            rows.append([f"{s.target_mailboxes}", *(["-"] * (len(P2_HEADERS) - 2)), s.skipped])
            continue
        for r in s.runs:
            per_k = r.per_k(r.wall_s)
            base.setdefault(r.kind, per_k)
            rows.append(
                [
                    f"{r.seen}",
                    str(r.pages),
                    str(s.largest),
                    r.kind,
                    f"{r.wall_s:.2f}",
                    f"{per_k:.3f}",
                    f"{ratio(per_k, base[r.kind]):.2f}",
                    f"{s.bounds.critical_s:.2f}",
                    f"{cpu_floor(r):.2f}",
                    *(
                        f"{r.per_k(r.cpu.get(k, float('nan'))):.3f}"
                        for k in ("poller", "postgres", "simulator", "other")
                    ),
                    f"{r.db.get('cache_index_tuples', 0) / max(1, r.pages):.0f}" if r.db else "-",
                    r.status,
                ]
            )
    return rows


def markdown(
    info: dict[str, Any],
    opts: argparse.Namespace,
    p1: Phase1 | None,
    steps: list[ScaleStep],
    found: list[Target],
    profile: str | None,
) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Latest run: {stamp}; machine: {info['nproc']} cores ({info['cpu_model']}); PostgreSQL, the simulator "
        "(its own process) and the poller on the same box. CPU columns: seconds of CPU from /proc during the "
        "run (`oth` = the rest of the machine: other users' processes).",
        "",
    ]
    if p1 is not None:
        b = p1.bounds
        lines += [
            f"`SimulatedBison({opts.workspaces}, {opts.mailboxes}, seed={opts.seed})` (the simulator's defaults): "
            f"{sum(p1.sizes.values())} listed mailboxes, {b.pages} pages of 15, largest workspace {b.largest} pages; "
            f"{opts.latency_ms:g} ms per request; concurrency {opts.concurrency}. Ideal = {b.pages}/{b.concurrency} x "
            f"{b.latency_ms:g} ms = {b.ideal_s:.2f} s; critical path = {b.largest} x {b.latency_ms:g} ms = "
            f"{b.critical_s:.2f} s (pages within a workspace are sequential: each page's URL comes from the one "
            f"before); `x bound` = wall / the larger of the two. Schedules at the nominal latency: biggest first on "
            f"{opts.concurrency} lanes (what the poller does once the cache knows each workspace's size) "
            f"{p1.lpt_pages * opts.latency_ms / 1000:.2f} s; in id order (a first poll into an empty cache knows no "
            f"sizes) {p1.id_order_pages * opts.latency_ms / 1000:.2f} s. Speedup ceiling over the serial baseline "
            f"(pages / largest workspace's pages): {b.pages / b.largest:.1f}x for this seed"
            + ("; seeds 0-9: " + ", ".join(f"{v:.1f}" for v in p1.seed_ceilings.values()) if p1.seed_ceilings else "")
            + ". `poll s` = `PollReport.elapsed_s` (mailboxes only; the rest of `wall` is the workspace "
            "registry sync, and for the subprocess the interpreter start and imports).",
            "",
            markdown_table(P1_HEADERS, p1_rows(p1)),
            "",
        ]
    if steps:
        caps = sorted({s.cap for s in steps if s.runs and s.cap > DEFAULT_MAX_PAGES})
        lines += [
            f"Scaling: {opts.workspaces} workspaces, {opts.scale_latency_ms:g} ms per request, workspace keys, "
            f"concurrency {opts.concurrency}; each size on a fresh instance (first poll = every mailbox inserted; "
            "repeat = nothing changed). `s / 1k` = wall seconds per 1,000 listed mailboxes."
            + (
                f" Page cap raised to {', '.join(map(str, caps))} (the client's default, {DEFAULT_MAX_PAGES} pages "
                f"= {DEFAULT_MAX_PAGES * 15:,} mailboxes per workspace, would fail the largest workspaces)."
                if caps
                else ""
            ),
            "",
            markdown_table(P2_HEADERS, p2_rows(steps), text_columns=0),
            "",
        ]
    lines += ["```", *(t.line for t in found), "```"]
    if profile:
        lines += [
            "",
            "py-spy of the poller (largest size, first poll, GIL-holding samples):",
            "",
            "```",
            *profile.splitlines()[:40],
            "```",
        ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspaces", type=int, default=24)
    p.add_argument("--mailboxes", type=int, default=4000, help="phase 1 mailboxes")
    p.add_argument("--latency-ms", type=float, default=50.0, help="phase 1 latency per request")
    p.add_argument("--concurrency", type=int, default=8, help="the poller's concurrency (its default: 8)")
    p.add_argument("--sizes", default="25000,50000,100000", help="scaling sizes (mailboxes), smallest first")
    p.add_argument("--scale-latency-ms", type=float, default=2.0, help="latency per request while scaling")
    p.add_argument("--seed", type=int, default=0, help="simulator seed (0: what `bisonsync simulate` serves)")
    p.add_argument("--phases", default="1,2", help="1: 4k mailboxes at 50 ms; 2: scaling")
    p.add_argument(
        "--budget",
        type=float,
        default=170.0,
        help="seconds for the whole benchmark (run_all allows 180): scaling sizes that would not fit are "
        "skipped and reported",
    )
    p.add_argument("--no-cli", action="store_true", help="skip the `bisonsync poll --once` subprocess run")
    p.add_argument(
        "--provisioned-only",
        action="store_true",
        help="phase 1: only the serial baseline and the super-admin poll after `keys provision`",
    )
    p.add_argument("--no-repeat", action="store_true", help="scaling: first polls only")
    p.add_argument("--profile", action="store_true", help="py-spy the poller during the largest first poll")
    p.add_argument("--quick", action="store_true", help="scaling sizes 12.5k, 25k, 50k; no CLI run")
    p.add_argument("--update-doc", action="store_true", help="also write the section in docs/performance.md")
    opts = p.parse_args(argv)
    if opts.quick:
        opts.sizes, opts.no_cli = "12500,25000,50000", True
    opts.sizes = sorted(int(s) for s in opts.sizes.split(",") if s.strip())
    opts.phases = {int(x) for x in opts.phases.split(",") if x.strip()}
    return opts


async def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    info = machine_info()
    deadline = Deadline(opts.budget)
    print(f"sync benchmark on {machine_line(info)}", flush=True)
    refs_before = {k for k in os.environ if k.startswith(KEY_REF_PREFIX)}
    profile_path = RESULTS_DIR / "sync-profile.txt"
    if opts.profile:
        profile_path.unlink(missing_ok=True)  # never summarise an earlier run's samples
    try:
        async with private_stack(with_gateway=False) as stack:
            print(f"devstack up after {opts.budget - deadline.left:.0f}s", flush=True)
            p1 = await phase1(stack, opts) if 1 in opts.phases else None
            steps = await phase2(stack, opts, deadline) if 2 in opts.phases else []
    finally:
        for key in [k for k in os.environ if k.startswith(KEY_REF_PREFIX) and k not in refs_before]:
            del os.environ[key]
    profile = None
    if opts.profile and profile_path.exists():
        profile = summarize(profile_path)
    if p1 is not None:
        print("\nPhase 1 (x bound = wall / max(ideal, critical path)):")
        print(table(P1_HEADERS, p1_rows(p1)))
    if steps:
        print("\nPhase 2 (scaling):")
        print(table(P2_HEADERS, p2_rows(steps)))
    if profile:
        print(f"\npy-spy of the poller, largest first poll (GIL-holding samples):\n{profile}")
    found = targets(p1, steps, opts)
    print_targets(found)
    print(f"\nsync benchmark took {opts.budget - deadline.left:.0f}s", flush=True)
    md = markdown(info, opts, p1, steps, found, profile)
    data = {
        "bench": BENCH,
        "machine": info,
        "options": dict(vars(opts)),
        "phase1": None
        if p1 is None
        else {
            "sizes": p1.sizes,
            "bounds": {**asdict(p1.bounds), "ideal_s": p1.bounds.ideal_s, "critical_s": p1.bounds.critical_s},
            "lpt_pages": p1.lpt_pages,
            "admin_floor_s": p1.admin_bounds_s,
            "serial": asdict(p1.serial),
            "polls": [asdict(r) for r in p1.polls],
        },
        "scaling": [asdict(s) for s in steps],
        "targets": [asdict(t) for t in found],
        "profile": profile,
    }
    path = write_results(BENCH, data, md)
    print(f"raw results: {path}")
    if opts.update_doc:
        update_doc_section(BENCH, md)
    return 0


if __name__ == "__main__":
    install_signal_handlers()
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        print("\ninterrupted: stopped the simulator, the poller and the devstack", file=sys.stderr)
        sys.exit(130)

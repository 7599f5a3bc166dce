"""Ingest benchmark: Email Bison webhooks through `bisonsync serve` into PostgreSQL, for each store.

    .venv/bin/python bench/ingest.py                 # everything (~3-4 min)
    .venv/bin/python bench/ingest.py --quick         # shorter runs (~1.5 min)
    .venv/bin/python bench/ingest.py --stores postgres --rates 200 --profile   # + py-spy of the saturation run

What it does, on a private devstack (PostgreSQL + gateway on free loopback ports, in a temp dir):

1. Pre-generates a realistic delivery mix with the Email Bison simulator (`WebhookFirer.deliveries()`: all 17
   types, ~5 % byte-identical re-sends a few deliveries later, ~2 % swapped neighbours), without sending anything.
2. Baseline, the database's own limit: `ingest_delivery(...)` called directly over asyncpg with the same
   concurrency as the saturation run, on the same bodies (decoded and keyed before the clock starts).
3. For each store (`postgres`: asyncpg direct; `supabase`: supabase-py through the gateway's PostgREST emulator),
   starts `bisonsync serve` as a subprocess (its RSS and CPU read from /proc) and runs an open-loop load at fixed
   offered rates (latency from each request's scheduled time, so a stalled server cannot hide its queue), then a
   closed-loop saturation run.
4. Every run uses its own instance (`?instance=<run>.bench.invalid` in the webhook URL; the service is started with
   `BISONSYNC_WEBHOOK_INSTANCES=*.bench.invalid`), so it has its own workspaces and dedup keys (the ledger of an
   earlier run cannot make a later one look faster). After each run it checks exactly-once: the sum
   of `client_metrics_daily` per counter equals the number of distinct counted events answered 2xx, the ledger
   holds one row per delivery, and one first delivery (`applied`/`ignored`) per distinct dedup key.

Prints the raw figures, ratios against the baseline, and each target with PASS/FAIL; writes
bench/results/ingest-*.json and bench/results/ingest-latest.md (run_all copies it into docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/ingest.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from bench.common import (
    RESULTS_DIR,
    CpuMeter,
    RssSampler,
    Service,
    Stack,
    Target,
    fmt_ms,
    install_signal_handlers,
    machine_info,
    machine_line,
    markdown_table,
    percentile,
    print_targets,
    private_stack,
    ratio,
    rss_kb,
    running_service,
    table,
    update_doc_section,
    write_results,
)
from bench.loadgen import Connection, LoadResult, closed_loop, open_loop
from bench.profiling import recording, summarize
from bisonsync.events import decode_delivery
from devstack.simulator import SimulatedBison, WebhookFirer

BENCH = "ingest"
TOKEN = "bench-webhook-token"
TEMPLATE_HOST = "bench.invalid"
#: event type -> the client_metrics_daily counter its first delivery increments (docs/schema.md §3)
METRIC_OF = {
    "email_sent": "emails_sent",
    "lead_replied": "replies",
    "lead_interested": "interested",
    "email_bounced": "bounced",
    "lead_unsubscribed": "unsubscribed",
}
METRICS = ("emails_sent", "replies", "interested", "bounced", "unsubscribed")
SATURATION_SHARE_TARGET = 0.5
P99_TARGET_MS = 25.0
P99_TARGET_RATE = 200.0
INGEST_SQL = (
    'select public."ingest_delivery"("p_dedup_key" => $1, "p_instance" => $2, "p_bison_workspace_id" => $3, '
    '"p_workspace_name" => $4, "p_event_type" => $5, "p_payload" => $6, "p_received_at" => $7) as result'
)


# -- the delivery mix ----------------------------------------------------------------------------------------------


@dataclass
class Corpus:
    """Pre-generated deliveries; each run sends them to its own instance (the webhook URL names it)."""

    bodies: list[bytes]
    types: list[str]
    #: per delivery, the number of its dedup key (equal numbers = same event by the dedup rules)
    key_ids: list[int]
    duplicates: int
    #: Email Bison workspace id -> name, as the bodies carry them
    workspaces: dict[int, str]

    @classmethod
    def generate(cls, count: int, seed: int) -> Corpus:
        sim = SimulatedBison(workspaces=24, mailboxes=4000, seed=seed, instance_url=f"https://{TEMPLATE_HOST}")
        # The firer's own sequence (originals, ~5 % re-sends, swaps), iterated without sending anything.
        firer = WebhookFirer("http://127.0.0.1:9/", sim, count=count, rate_per_s=1000, seed=seed)
        bodies, types, key_ids, dups = [], [], [], 0
        numbering: dict[str, int] = {}
        workspaces: dict[int, str] = {}
        for delivery in islice(firer.deliveries(), count):
            body = delivery.body
            decoded = decode_delivery(body)
            key = decoded.dedup_key
            workspaces[decoded.workspace_id] = decoded.workspace_name or f"Workspace {decoded.workspace_id}"
            bodies.append(body)
            types.append(delivery.fired.event.type)
            key_ids.append(numbering.setdefault(key, len(numbering)))
            dups += delivery.duplicate
        return cls(bodies, types, key_ids, dups, workspaces)

    def for_run(self, tag: str) -> tuple[str, list[bytes]]:
        """The run's instance `<tag>.bench.invalid` (new workspaces and new dedup keys for this run) and the bodies
        (the instance is named by the webhook URL, never by a body)."""
        return f"{tag}.{TEMPLATE_HOST}", self.bodies

    async def register_workspaces(self, conn: asyncpg.Connection, host: str) -> None:
        """Create the run's workspaces before the clock starts. Production workspaces are long-lived; creating one
        costs ~25-50 ms of database CPU (the time zone check reads pg_timezone_names), which would otherwise land
        on the first second of every run (see docs/performance.md, "cold start")."""
        for workspace_id, name in sorted(self.workspaces.items()):
            await conn.fetchval("select public.upsert_workspace($1, $2, $3)", host, workspace_id, name)

    def expected(self, indices: Sequence[int]) -> tuple[int, Counter[str]]:
        """Distinct events among `indices`, and how much each counter should grow for them."""
        seen: set[int] = set()
        metrics: Counter[str] = Counter()
        for i in indices:
            if self.key_ids[i] in seen:
                continue
            seen.add(self.key_ids[i])
            metric = METRIC_OF.get(self.types[i])
            if metric:
                metrics[metric] += 1
        return len(seen), metrics


# -- exactly-once check --------------------------------------------------------------------------------------------


@dataclass
class Check:
    passed: bool
    ledger_rows: int
    first_deliveries: int
    lost: int
    double_counted: int
    detail: str


async def check_exactly_once(conn: asyncpg.Connection, corpus: Corpus, host: str, result: LoadResult) -> Check:
    """Compare the database with what was answered. Requests without an answer may or may not have committed, so
    they widen the accepted range instead of failing the check."""
    ok, unknown = result.ok, result.no_answer
    low_distinct, low = corpus.expected(ok)
    high_distinct, high = corpus.expected(ok + unknown)
    rows = await conn.fetch(
        "select status, count(*) as n from public.webhook_deliveries where instance = $1 group by status", host
    )
    by_status = {r["status"]: int(r["n"]) for r in rows}
    sums = await conn.fetchrow(
        "select "
        + ", ".join(f"coalesce(sum(m.{m}), 0)::bigint as {m}" for m in METRICS)
        + " from public.client_metrics_daily m join public.workspaces w on w.id = m.workspace_id"
        " where w.instance = $1",
        host,
    )
    ledger = sum(by_status.values())
    first = by_status.get("applied", 0) + by_status.get("ignored", 0)
    problems = []
    lost = double = 0
    for metric in METRICS:
        got = int(sums[metric]) if sums else 0
        if got < low[metric]:
            lost += low[metric] - got
            problems.append(f"{metric} {got} < {low[metric]}")
        elif got > high[metric]:
            double += got - high[metric]
            problems.append(f"{metric} {got} > {high[metric]}")
    if not len(ok) <= ledger <= len(ok) + len(unknown):
        problems.append(f"ledger rows {ledger} for {len(ok)} answered 2xx (+{len(unknown)} unanswered)")
    if not low_distinct <= first <= high_distinct:
        problems.append(f"{first} first deliveries for {low_distinct} distinct events")
    for status in ("failed", "rejected"):
        if by_status.get(status):
            problems.append(f"{by_status[status]} {status}")
    detail = (
        "; ".join(problems)
        if problems
        else (f"{ledger} ledger rows = deliveries, {first} first = distinct events, counters = distinct counted events")
    )
    return Check(not problems, ledger, first, lost, double, detail)


# -- runs ----------------------------------------------------------------------------------------------------------


@dataclass
class Segment:
    """One measured stretch of load on one instance host, checked on its own."""

    result: LoadResult
    cpu_pct: dict[str, float]
    rss_peak_kb: int
    check: Check


@dataclass
class RunReport:
    store: str
    label: str
    mode: str
    offered: float
    concurrency: int
    sent: int
    ok: int
    errors: int
    shed: int
    seconds: float
    throughput: float
    p50: float
    p95: float
    p99: float
    max: float
    rss_peak_mb: float
    #: CPU of each process group, in percent of one core, averaged over the segments
    cpu_pct: dict[str, float]
    #: CPU microseconds per 2xx delivery of the service and of PostgreSQL
    service_us: float
    postgres_us: float
    check: Check
    statuses: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, store: str, label: str, segments: Sequence[Segment]) -> RunReport:
        lat = [x for seg in segments for x in seg.result.ok_latencies()]
        seconds = sum(seg.result.elapsed_s for seg in segments)
        ok = sum(len(seg.result.ok) for seg in segments)
        names = list(segments[0].cpu_pct)
        cpu = {n: round(sum(seg.cpu_pct[n] * seg.result.elapsed_s for seg in segments) / seconds, 1) for n in names}
        statuses: Counter[int] = Counter()
        for seg in segments:
            statuses.update(seg.result.statuses.values())
        bad = [seg.check for seg in segments if not seg.check.passed]
        check = Check(
            passed=not bad,
            ledger_rows=sum(seg.check.ledger_rows for seg in segments),
            first_deliveries=sum(seg.check.first_deliveries for seg in segments),
            lost=sum(seg.check.lost for seg in segments),
            double_counted=sum(seg.check.double_counted for seg in segments),
            detail=bad[0].detail
            if bad
            else segments[0].check.detail
            if len(segments) == 1
            else f"{len(segments)} segments, each: ledger rows = deliveries, first = distinct events, "
            "counters = distinct",
        )

        def per_delivery(group: str) -> float:
            return round(cpu.get(group, 0.0) / 100 * seconds / ok * 1e6, 0) if ok else float("nan")

        first = segments[0].result
        return cls(
            store=store,
            label=label,
            mode=first.mode,
            offered=first.offered_rate,
            concurrency=first.concurrency,
            sent=sum(seg.result.sent for seg in segments),
            ok=ok,
            errors=sum(seg.result.http_errors + len(seg.result.no_answer) for seg in segments),
            shed=sum(seg.result.shed for seg in segments),
            seconds=round(seconds, 2),
            throughput=round(ok / seconds, 1) if seconds else 0.0,
            p50=percentile(lat, 50),
            p95=percentile(lat, 95),
            p99=percentile(lat, 99),
            max=max(lat, default=float("nan")),
            rss_peak_mb=round(max(seg.rss_peak_kb for seg in segments) / 1024, 1),
            cpu_pct=cpu,
            service_us=per_delivery("service"),
            postgres_us=per_delivery("postgres"),
            check=check,
            statuses=dict(statuses),
        )

    def row(self, baseline: float) -> list[str]:
        cpu = " ".join(f"{k[:3]}={v:.0f}" for k, v in self.cpu_pct.items())
        return [
            self.store,
            self.label,
            f"{self.offered:.0f}" if self.offered else "-",
            str(self.sent),
            str(self.ok),
            str(self.errors),
            str(self.shed),
            f"{self.throughput:.0f}",
            f"{ratio(self.throughput, baseline):.2f}",
            fmt_ms(self.p50),
            fmt_ms(self.p95),
            fmt_ms(self.p99),
            fmt_ms(self.max),
            f"{self.rss_peak_mb:.0f}" if self.rss_peak_mb else "-",
            f"{self.service_us:.0f}" if self.service_us == self.service_us and self.service_us else "-",
            f"{self.postgres_us:.0f}",
            cpu,
            "PASS" if self.check.passed else "FAIL",
        ]


HEADERS = [
    "store",
    "run",
    "offered/s",
    "sent",
    "2xx",
    "errors",
    "shed",
    "sustained/s",
    "x raw SQL",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
    "RSS MB",
    "svc CPU us/dlv",
    "PG CPU us/dlv",
    "CPU % of a core",
    "exactly-once",
]


def cpu_meter(stack: Stack, service: Service | None) -> CpuMeter:
    groups: dict[str, Any] = {
        "postgres": stack.postgres_pids,
        "gateway": stack.gateway_pids,
        "bench": lambda: [os.getpid()],
    }
    if service is not None:
        groups = {"service": lambda: [service.pid], **groups}
    return CpuMeter(groups)


class RawSql:
    """The baseline: `ingest_delivery` straight over asyncpg on `concurrency` warm connections, back to back."""

    def __init__(self, stack: Stack, corpus: Corpus, check_conn: asyncpg.Connection, concurrency: int) -> None:
        self.stack, self.corpus, self.check_conn, self.concurrency = stack, corpus, check_conn, concurrency
        self.conns: list[asyncpg.Connection] = []

    async def __aenter__(self) -> RawSql:
        self.conns = [await asyncpg.connect(self.stack.dsn) for _ in range(self.concurrency)]
        host, bodies = self.corpus.for_run("raw-warmup")
        await self.corpus.register_workspaces(self.check_conn, host)
        warm = [_ingest_args(b, host) for b in bodies[: 40 * self.concurrency]]
        # plans are cached per backend: warm every connection on another instance first
        n = self.concurrency
        await asyncio.gather(
            *(_call_loop(c, warm, iter(range(i, len(warm), n)), None, 1e18) for i, c in enumerate(self.conns))
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conn in self.conns:
            await conn.close()

    async def segment(self, tag: str, duration_s: float) -> Segment:
        host, bodies = self.corpus.for_run(tag)
        await self.corpus.register_workspaces(self.check_conn, host)
        args = [_ingest_args(b, host) for b in bodies]  # decoded and keyed before the clock starts
        result = LoadResult("closed", 0.0, self.concurrency)
        meter = cpu_meter(self.stack, None)
        meter.start()
        result.started = time.perf_counter()
        cursor = iter(range(len(args)))
        await asyncio.gather(*(_call_loop(c, args, cursor, result, result.started + duration_s) for c in self.conns))
        result.ended = time.perf_counter()
        cpu = meter.stop()
        return Segment(result, cpu, 0, await check_exactly_once(self.check_conn, self.corpus, host, result))


def _ingest_args(body: bytes, host: str) -> tuple[Any, ...]:
    d = decode_delivery(body, instance=host)
    return (d.dedup_key, d.instance, d.workspace_id, d.workspace_name, d.event_type, d.payload_json.decode())


async def _call_loop(
    conn: asyncpg.Connection, args: Sequence[tuple[Any, ...]], indices: Any, result: LoadResult | None, deadline: float
) -> None:
    for index in indices:
        if time.perf_counter() >= deadline:
            break
        sent = time.perf_counter()
        try:
            await conn.fetchval(INGEST_SQL, *args[index], datetime.now(UTC))
            status = 200
        except asyncpg.PostgresError:
            status = 500
        if result is not None:
            result.statuses[index] = status
            result.latencies_ms[index] = (time.perf_counter() - sent) * 1000


class ServiceLoad:
    """Load on one running `bisonsync serve`."""

    def __init__(
        self, stack: Stack, service: Service, corpus: Corpus, check_conn: asyncpg.Connection, opts: argparse.Namespace
    ) -> None:
        self.stack, self.service, self.corpus, self.check_conn, self.opts = stack, service, corpus, check_conn, opts

    def connect_to(self, host: str) -> Callable[[], Connection]:
        """Connections posting to the webhook URL of instance `host`."""
        path = f"/webhooks/bison?instance={host}"
        return lambda: Connection(self.service.port, path, {"X-Bisonsync-Token": TOKEN}, self.opts.timeout)

    async def warm_up(self, tag: str) -> None:
        host, bodies = self.corpus.for_run(tag)
        await self.corpus.register_workspaces(self.check_conn, host)
        await closed_loop(self.connect_to(host), bodies, self.opts.concurrency, self.opts.warmup)

    async def segment(self, tag: str, rate: float | None, duration_s: float, profile: Path | None = None) -> Segment:
        host, bodies = self.corpus.for_run(tag)
        await self.corpus.register_workspaces(self.check_conn, host)
        meter = cpu_meter(self.stack, self.service)
        meter.start()
        with (
            RssSampler(self.service.pid) as rss,
            recording(self.service.pid, profile) if profile else contextlib.nullcontext(),
        ):
            if rate is None:
                result = await closed_loop(self.connect_to(host), bodies, self.opts.concurrency, duration_s)
            else:
                result = await open_loop(
                    self.connect_to(host), bodies, rate, duration_s, self.opts.connections, self.opts.drain
                )
        cpu = meter.stop()
        return Segment(result, cpu, rss.peak_kb, await check_exactly_once(self.check_conn, self.corpus, host, result))


@dataclass
class StoreRuns:
    reports: list[RunReport]
    idle_rss_kb: int
    profile: str | None = None


def show(report_: RunReport, baseline: float = 0.0) -> None:
    print(table(HEADERS, [report_.row(baseline)]).splitlines()[-1], flush=True)


async def run_store(
    stack: Stack,
    store: str,
    corpus: Corpus,
    check_conn: asyncpg.Connection,
    raw: RawSql,
    raw_segments: list[Segment],
    opts: argparse.Namespace,
) -> StoreRuns:
    """All runs of one store against one `bisonsync serve`. The saturation run alternates with raw SQL segments
    (A/B/A/B...) when `raw_segments` should be filled, so both see the same neighbours on a shared machine."""
    reports: list[RunReport] = []
    profile_text: str | None = None
    service_env = {"BISONSYNC_WEBHOOK_INSTANCES": f"*.{TEMPLATE_HOST}", **opts.service_env}
    async with running_service(stack, store, TOKEN, log_level=opts.log_level, extra_env=service_env) as service:
        load = ServiceLoad(stack, service, corpus, check_conn, opts)
        await load.warm_up(f"{store}-warmup")
        idle_rss = rss_kb(service.pid)
        print(f"\n[{store}] bisonsync serve pid {service.pid}, RSS after warm-up {idle_rss / 1024:.0f} MB", flush=True)
        print(table(HEADERS, []).splitlines()[0], flush=True)
        for rate in opts.rates:
            duration = opts.p99_duration if rate == P99_TARGET_RATE else opts.duration
            segment = await load.segment(f"{store}-r{rate:g}", rate, duration)
            reports.append(RunReport.of(store, f"{rate:g}/s open", [segment]))
            show(reports[-1])
            await asyncio.sleep(opts.pause)
        sat: list[Segment] = []
        profile_path = RESULTS_DIR / f"ingest-profile-{store}.txt" if opts.profile else None
        each = opts.saturation / opts.rounds
        for round_ in range(opts.rounds):
            if store == "postgres":
                raw_segments.append(await raw.segment(f"raw-{round_}", each))
            sat.append(await load.segment(f"{store}-sat-{round_}", None, each, profile_path if round_ == 0 else None))
        if profile_path is not None and profile_path.exists():
            profile_text = summarize(profile_path)
        reports.append(RunReport.of(store, f"saturation x{opts.concurrency}", sat))
        show(reports[-1])
    return StoreRuns(reports, idle_rss, profile_text)


# -- targets and output --------------------------------------------------------------------------------------------


def targets(baseline: RunReport, runs: list[RunReport], stores: Sequence[str]) -> list[Target]:
    out = []
    sat = {r.store: r for r in runs if r.mode == "closed"}
    if "postgres" in sat:
        share = ratio(sat["postgres"].throughput, baseline.throughput)
        out.append(
            Target(
                BENCH,
                f"direct-Postgres saturation >= {SATURATION_SHARE_TARGET:.0%} of raw SQL throughput",
                share >= SATURATION_SHARE_TARGET,
                f"{share:.3f} ({sat['postgres'].throughput:.0f}/s vs {baseline.throughput:.0f}/s, "
                f"both x{baseline.concurrency} concurrent)",
            )
        )
    for store in stores:
        at_rate = [r for r in runs if r.store == store and r.mode == "open" and r.offered == P99_TARGET_RATE]
        for r in at_rate:
            passed = r.p99 < P99_TARGET_MS and r.errors == 0 and r.shed == 0
            out.append(
                Target(
                    BENCH,
                    f"p99 < {P99_TARGET_MS:g} ms at {P99_TARGET_RATE:g}/s [{store}]",
                    passed,
                    f"p99 {r.p99:.1f} ms (p50 {r.p50:.1f}, p95 {r.p95:.1f}), {r.ok}/{r.sent} 2xx, "
                    f"{r.errors} errors, sustained {r.throughput:.0f}/s",
                )
            )
        store_runs = [r for r in runs if r.store == store]
        if store_runs:
            bad = [r for r in store_runs if not r.check.passed]
            lost = sum(r.check.lost for r in store_runs)
            double = sum(r.check.double_counted for r in store_runs)
            out.append(
                Target(
                    BENCH,
                    f"zero lost or double-counted deliveries at every rate [{store}]",
                    not bad,
                    f"{len(store_runs)} runs checked, lost {lost}, double-counted {double}"
                    + (f"; {bad[0].label}: {bad[0].check.detail}" if bad else ""),
                )
            )
    out.append(Target(BENCH, "baseline run exactly-once (raw SQL)", baseline.check.passed, baseline.check.detail))
    return out


def markdown(
    info: dict[str, Any],
    opts: argparse.Namespace,
    corpus: Corpus,
    baseline: RunReport,
    runs: list[RunReport],
    idle_rss: dict[str, int],
    found: list[Target],
) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Latest run: {stamp}; machine: {info['nproc']} cores ({info['cpu_model']}), PostgreSQL on the same box; "
        f"{len(corpus.bodies)} pre-generated deliveries ({corpus.duplicates} re-sends); open-loop runs "
        f"{opts.duration:g} s ({opts.p99_duration:g} s at {P99_TARGET_RATE:g}/s) over {opts.connections} "
        f"connections; saturation (closed loop) and raw SQL x{opts.concurrency}, {opts.saturation:g} s each in "
        f"{opts.rounds} alternating rounds; service log level `{opts.log_level}`. CPU columns: microseconds of CPU "
        "per 2xx delivery in the service process and in PostgreSQL (all backends), from /proc; `oth` = the rest "
        "of the machine (other users' processes).",
        "",
        markdown_table(
            HEADERS, [baseline.row(baseline.throughput)] + [r.row(baseline.throughput) for r in runs], text_columns=2
        ),
        "",
        "Idle RSS of `bisonsync serve` after warm-up: "
        + ", ".join(f"{store} {kb / 1024:.0f} MB" for store, kb in idle_rss.items())
        + ".",
        "",
        "```",
        *(t.line for t in found),
        "```",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stores", default="postgres,supabase", help="comma-separated: postgres, supabase")
    p.add_argument("--rates", default="100,200,500,1000", help="offered rates (deliveries/s) for the open loop")
    p.add_argument("--duration", type=float, default=6.0, help="seconds per open-loop rate")
    p.add_argument("--p99-duration", type=float, default=10.0, help=f"seconds at {P99_TARGET_RATE:g}/s (p99 target)")
    p.add_argument(
        "--saturation",
        type=float,
        default=9.0,
        help="seconds of closed-loop saturation per store (and of raw SQL), split into --rounds",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="saturation rounds, alternating raw SQL and the service so both share the same noise",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="closed-loop workers, baseline connections (the service's pool holds 10)",
    )
    p.add_argument("--connections", type=int, default=64, help="open-loop connections (the in-flight cap)")
    p.add_argument("--drain", type=float, default=4.0, help="seconds after the schedule before the rest is shed")
    p.add_argument("--warmup", type=float, default=2.0, help="closed-loop warm-up seconds per store")
    p.add_argument("--pause", type=float, default=1.0, help="seconds between runs")
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, seconds")
    p.add_argument("--deliveries", type=int, default=24000, help="pre-generated deliveries (bounds every run)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="bisonsync serve's log level (info = production default: one access-log line per request)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the service during the first saturation round of each store (slows that round)",
    )
    p.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for bisonsync serve (experiments, e.g. PYTHONPATH=...)",
    )
    p.add_argument("--quick", action="store_true", help="shorter runs (~half the time)")
    p.add_argument("--update-doc", action="store_true", help="also write the section in docs/performance.md")
    opts = p.parse_args(argv)
    opts.stores = [s.strip() for s in opts.stores.split(",") if s.strip()]
    opts.rates = [float(r) for r in opts.rates.split(",") if r.strip()]
    opts.service_env = dict(item.split("=", 1) for item in opts.service_env)
    if opts.quick:
        opts.duration, opts.p99_duration, opts.saturation, opts.warmup, opts.drain = 3.0, 6.0, 6.0, 1.0, 3.0
    unknown = set(opts.stores) - {"postgres", "supabase"}
    if unknown:
        p.error(f"unknown stores: {sorted(unknown)}")
    return opts


async def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    info = machine_info()
    print(f"ingest benchmark on {machine_line(info)}", flush=True)
    started = time.perf_counter()
    corpus = await asyncio.to_thread(Corpus.generate, opts.deliveries, opts.seed)
    mix = Counter(corpus.types)
    print(
        f"{len(corpus.bodies)} deliveries pre-generated ({corpus.duplicates} re-sends, "
        f"{len(set(corpus.key_ids))} distinct events, {len(corpus.workspaces)} workspaces); mix: "
        + ", ".join(f"{t} {100 * n / len(corpus.types):.1f}%" for t, n in mix.most_common(6))
        + ", ...",
        flush=True,
    )
    runs: list[RunReport] = []
    idle: dict[str, int] = {}
    profiles: dict[str, str] = {}
    raw_segments: list[Segment] = []
    async with private_stack(with_gateway="supabase" in opts.stores) as stack:
        check_conn = await asyncpg.connect(stack.dsn)
        try:
            print(f"devstack up after {time.perf_counter() - started:.0f}s", flush=True)
            async with RawSql(stack, corpus, check_conn, opts.concurrency) as raw:
                for store in opts.stores:
                    store_runs = await run_store(stack, store, corpus, check_conn, raw, raw_segments, opts)
                    runs += store_runs.reports
                    idle[store] = store_runs.idle_rss_kb
                    if store_runs.profile:
                        profiles[store] = store_runs.profile
                if not raw_segments:
                    for round_ in range(opts.rounds):
                        raw_segments.append(await raw.segment(f"raw-{round_}", opts.saturation / opts.rounds))
        finally:
            await check_conn.close()
    baseline = RunReport.of("raw SQL", f"asyncpg x{opts.concurrency}", raw_segments)
    print("\nAll runs (x raw SQL = sustained deliveries/s over the raw SQL throughput measured in the same run):")
    print(table(HEADERS, [baseline.row(baseline.throughput)] + [r.row(baseline.throughput) for r in runs]))
    for store, text in profiles.items():
        print(f"\npy-spy, bisonsync serve [{store}], first saturation round (GIL-holding samples):\n{text}")
    found = targets(baseline, runs, opts.stores)
    print_targets(found)
    print(f"\ningest benchmark took {time.perf_counter() - started:.0f}s", flush=True)
    md = markdown(info, opts, corpus, baseline, runs, idle, found)
    data = {
        "bench": BENCH,
        "machine": info,
        "options": dict(vars(opts)),
        "baseline": asdict(baseline),
        "runs": [asdict(r) for r in runs],
        "idle_rss_kb": idle,
        "targets": [asdict(t) for t in found],
        "profiles": profiles,
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
        print("\ninterrupted: stopped the service and the devstack", file=sys.stderr)
        sys.exit(130)

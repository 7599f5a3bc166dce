"""Soak (`make soak`): the simulator fires a realistic webhook mix at `bisonsync serve` for N minutes at a steady
rate while the service polls the simulator every minute; then counters must equal the simulator's ground truth,
the service's RSS must not grow without bound, and no database connection or replication slot may leak.

Loopback only, bounded in time; not part of `make test`. Results go to bench/results/ and docs/reliability.md
(between `<!-- soak:begin -->` and `<!-- soak:end -->`).

    .venv/bin/python bench/soak.py --minutes 10 --rate 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/soak.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from bench.common import (
    ROOT,
    Target,
    install_signal_handlers,
    machine_info,
    machine_line,
    markdown_table,
    print_targets,
    private_stack,
    rss_kb,
    running_service,
    write_results,
)
from devstack.simulator import SimulatedBison, SimulatorServer, WebhookFirer

TOKEN = "soak-webhook-token"
INSTANCE_URL = "https://soak.bison.local"
COUNTED = {
    "email_sent": "emails_sent",
    "lead_replied": "replies",
    "lead_interested": "interested",
    "email_bounced": "bounced",
    "lead_unsubscribed": "unsubscribed",
}
DOC = ROOT / "docs" / "reliability.md"


async def db_gauges(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        connections = await conn.fetchval(
            "select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()"
        )
        slots = await conn.fetchval("select count(*) from pg_replication_slots")
        return {"connections": int(connections), "slots": int(slots)}
    finally:
        await conn.close()


async def counters(dsn: str) -> dict[int, Counter[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "select w.bison_workspace_id as ws, sum(d.emails_sent) as emails_sent, sum(d.replies) as replies,"
            " sum(d.interested) as interested, sum(d.bounced) as bounced, sum(d.unsubscribed) as unsubscribed"
            " from public.client_metrics_daily d join public.workspaces w on w.id = d.workspace_id"
            " where w.instance = 'soak.bison.local' group by 1"
        )
    finally:
        await conn.close()
    return {int(r["ws"]): Counter({m: int(r[m] or 0) for m in COUNTED.values()}) for r in rows}


async def soak(minutes: float, rate: float, workspaces: int, mailboxes: int) -> list[Target]:
    sim = SimulatedBison(workspaces=workspaces, mailboxes=mailboxes, seed=11, instance_url=INSTANCE_URL)
    samples: list[dict[str, Any]] = []
    async with private_stack() as stack, SimulatorServer(sim) as bison:
        extra = {
            "BISON_BASE_URL": bison.base_url,
            "BISON_API_KEY": sim.super_admin_key,
            "BISON_INSTANCE": INSTANCE_URL,
            "BISONSYNC_POLL_INTERVAL_S": "60",
        }
        async with running_service(stack, "postgres", TOKEN, log_level="warning", extra_env=extra) as service:
            before = await db_gauges(stack.dsn)
            firer = WebhookFirer(
                f"{service.url}/webhooks/bison",
                sim,
                rate_per_s=rate,
                duration_s=minutes * 60,
                token=TOKEN,
                duplicate_share=0.05,
                reorder_share=0.02,
                seed=5,
                concurrency=8,
            )
            started = time.monotonic()
            firing = asyncio.create_task(firer.run())
            while not firing.done():
                gauges = await db_gauges(stack.dsn)
                samples.append({"t": round(time.monotonic() - started), "rss_kb": rss_kb(service.pid), **gauges})
                print(
                    f"  t={samples[-1]['t']:>4}s  rss={samples[-1]['rss_kb'] / 1024:.0f} MB  "
                    f"connections={gauges['connections']}  slots={gauges['slots']}",
                    flush=True,
                )
                await asyncio.wait({firing}, timeout=10)
            truth = firing.result()
            await asyncio.sleep(2)  # in-flight deliveries land
            got = await counters(stack.dsn)
            conn = await asyncpg.connect(stack.dsn)
            try:
                polls = await conn.fetch("select status, count(*) from public.sync_runs group by 1")
            finally:
                await conn.close()
            after = await db_gauges(stack.dsn)
            end_rss = rss_kb(service.pid)
    # ground truth: distinct events of the counted types the service accepted
    mismatches = []
    for ws, per_type in truth.accepted.items():
        expected = Counter({metric: per_type.get(t, 0) for t, metric in COUNTED.items()})
        actual = got.get(ws, Counter())
        if +expected != +actual:
            mismatches.append((ws, dict(expected), dict(actual)))
    steady = [s["rss_kb"] for s in samples if s["t"] >= minutes * 60 * 0.3] or [end_rss]
    growth_mb = (max(steady) - min(steady)) / 1024
    poll_counts = {r["status"]: int(r["count"]) for r in polls}
    total_counted = sum(sum(c.values()) for c in got.values())
    targets = [
        Target(
            "soak",
            "counters equal ground truth",
            not mismatches and truth.failures == 0,
            f"{total_counted} counted events in {len(truth.accepted)} workspaces, {truth.deliveries} deliveries "
            f"({truth.duplicates} duplicates, {truth.reordered} reordered), {truth.failures} failed, "
            f"{len(mismatches)} mismatching workspaces",
        ),
        Target(
            "soak",
            "RSS bounded",
            growth_mb < 30,
            f"steady-state RSS spread {growth_mb:.1f} MB (start {samples[0]['rss_kb'] / 1024:.0f} MB, "
            f"end {end_rss / 1024:.0f} MB)"
            if samples
            else "no samples",
        ),
        Target(
            "soak",
            "no connection leak",
            after["connections"] <= before["connections"] + 12,
            f"client connections {before['connections']} -> {after['connections']}",
        ),
        Target(
            "soak", "no slot leak", after["slots"] == before["slots"], f"slots {before['slots']} -> {after['slots']}"
        ),
        Target(
            "soak",
            "polls ran",
            poll_counts.get("completed", 0) >= max(1, int(minutes) - 1),
            f"sync runs by status: {poll_counts}",
        ),
    ]
    print_targets(targets)
    info = machine_info()
    md = "\n".join(
        [
            f"Latest run: {minutes:g} min at {rate:g} webhooks/s, {workspaces} workspaces, {mailboxes} mailboxes, "
            f"polls every 60 s. {machine_line(info)}",
            "",
            markdown_table(
                ["target", "result", "detail"],
                [[t.name, "PASS" if t.passed else "FAIL", t.detail] for t in targets],
                text_columns=3,
            ),
            "",
            markdown_table(
                ["t (s)", "service RSS (MB)", "client connections", "slots"],
                [
                    [str(s["t"]), f"{s['rss_kb'] / 1024:.0f}", str(s["connections"]), str(s["slots"])]
                    for s in samples[:: max(1, len(samples) // 12)]
                ],
                text_columns=0,
            ),
        ]
    )
    write_results(
        "soak",
        {
            "targets": [t.__dict__ for t in targets],
            "samples": samples,
            "truth_deliveries": truth.deliveries,
            "mismatches": mismatches,
            "machine": info,
        },
        md,
    )
    text = DOC.read_text()
    begin, end = "<!-- soak:begin -->", "<!-- soak:end -->"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), f"{begin}\n{md}\n{end}", text, flags=re.S)
        DOC.write_text(text)
    return targets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=20, help="webhooks per second")
    parser.add_argument("--workspaces", type=int, default=24)
    parser.add_argument("--mailboxes", type=int, default=2000)
    args = parser.parse_args()
    install_signal_handlers()
    os.chdir(ROOT)
    targets = asyncio.run(soak(args.minutes, args.rate, args.workspaces, args.mailboxes))
    return 0 if all(t.passed for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Where the service's CPU goes, layer by layer: CPU microseconds per delivery, measured as CPU time (not wall time),
so a noisy neighbour on a shared machine moves these numbers far less than it moves throughput.

    .venv/bin/python bench/ingest_layers.py [--deliveries 4000]

Layers (1-4 each include the one above; 5 stands alone):

1. `decode_delivery`: msgspec decode, validation, canonical JSON, dedup key.
2. `WebhookIngestor.handle` with a store that answers at once: + token check, request, verdict.
3. The Litestar app called as ASGI in-process, same store: + routing, middleware, metrics, access log.
4. `bisonsync serve` over loopback HTTP with that store (bench/null_service.py, a subprocess; its CPU from /proc):
   + uvicorn's HTTP/1.1 parser and the event loop's socket work.
5. `PostgresStore` ingest calls against a private PostgreSQL (client CPU only, 8 concurrent).

Layer 4 + layer 5 is roughly what `bisonsync serve` spends per delivery on the direct-Postgres path. The baseline
here is layer 1: everything above it is overhead around the part that has to happen.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BIN,
    ROOT,
    Target,
    cpu_seconds,
    install_signal_handlers,
    machine_info,
    machine_line,
    markdown_table,
    print_targets,
    private_stack,
    table,
    terminate,
    update_doc_section,
    write_results,
)
from bench.ingest import TOKEN, Corpus
from bench.loadgen import Connection, closed_loop
from bench.null_service import NullStore
from bisonsync.events import decode_delivery
from bisonsync.ingest import WebhookIngestor
from bisonsync.logs import setup_logging
from bisonsync.settings import Settings
from bisonsync.store import IngestRequest, PostgresStore
from bisonsync.store import api as store_api
from devstack.ports import free_port

BENCH = "ingest_layers"
STORE_CONCURRENCY = 8


def per_delivery_us(cpu_s: float, count: int) -> float:
    return round(cpu_s / count * 1e6, 1)


def measure_sync(fn: Callable[[], object], count: int) -> float:
    started = time.process_time()
    fn()
    return per_delivery_us(time.process_time() - started, count)


async def measure_async(fn: Callable[[], Awaitable[object]], count: int) -> float:
    started = time.process_time()
    await fn()
    return per_delivery_us(time.process_time() - started, count)


def asgi_scope(length: int) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhooks/bison",
        "raw_path": b"/webhooks/bison",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"x-bisonsync-token", TOKEN.encode()),
            (b"content-length", str(length).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def asgi_layer(bodies: Sequence[bytes], log_level: str) -> float:
    """The app in-process, lifespan started, each body sent as one ASGI request (logging as `serve` sets it up,
    into /dev/null)."""
    from service.app import create_app

    setup_logging(log_level)
    with open(os.devnull, "w") as sink:
        logging.getLogger().handlers[0].setStream(sink)  # type: ignore[attr-defined]
        app = create_app(
            Settings(webhook_token=TOKEN, database_url="postgresql://unused@127.0.0.1/unused"), store=NullStore()
        )
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        started = asyncio.Event()

        async def life_send(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                started.set()

        inbox.put_nowait({"type": "lifespan.startup"})
        lifespan_scope: Any = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        life = asyncio.create_task(app(lifespan_scope, inbox.get, life_send))  # type: ignore[arg-type]
        await started.wait()

        async def run() -> None:
            for body in bodies:
                messages = [{"type": "http.request", "body": body, "more_body": False}]
                out: list[dict[str, Any]] = []

                async def receive(messages: list[dict[str, Any]] = messages) -> dict[str, Any]:
                    return messages.pop() if messages else {"type": "http.disconnect"}

                async def send(message: dict[str, Any], out: list[dict[str, Any]] = out) -> None:
                    out.append(message)

                await app(asgi_scope(len(body)), receive, send)  # type: ignore[arg-type]
                if out[0]["status"] != 200:
                    raise RuntimeError(f"ASGI app answered {out[0]['status']}")

        try:
            return await measure_async(run, len(bodies))
        finally:
            inbox.put_nowait({"type": "lifespan.shutdown"})
            await life
            logging.getLogger().handlers.clear()


async def http_layer(bodies: Sequence[bytes], log_level: str, concurrency: int) -> tuple[float, float]:
    """bench/null_service.py as a subprocess, loaded closed-loop; its CPU per delivery and its throughput."""
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "python"), str(ROOT / "bench" / "null_service.py"), "--port", str(port), "--log-level", log_level],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        start_new_session=True,
    )
    try:

        def connect() -> Connection:
            return Connection(port, "/webhooks/bison", {"X-Bisonsync-Token": TOKEN}, 10)

        for _ in range(100):
            try:
                probe = connect()
                await probe.open()
                await probe.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        await closed_loop(connect, bodies[:500], concurrency, 2)  # warm-up
        before = cpu_seconds(proc.pid)
        result = await closed_loop(connect, bodies, concurrency, 30)
        used = cpu_seconds(proc.pid) - before
        if len(result.ok) != len(bodies):
            raise RuntimeError(f"null service answered {len(result.ok)}/{len(bodies)} with 2xx")
        return per_delivery_us(used, len(bodies)), len(bodies) / result.elapsed_s
    finally:
        terminate(proc)


async def store_layer(corpus: Corpus) -> float:
    """Client CPU of `api.ingest` over `PostgresStore`, STORE_CONCURRENCY calls in flight (PostgreSQL's own CPU is
    not counted: that is the database's share, measured by bench/ingest.py)."""
    async with private_stack(with_gateway=False) as stack:
        store = PostgresStore(stack.dsn)
        await store.open()
        try:

            def requests(tag: str) -> list[IngestRequest]:
                _, bodies = corpus.for_run(tag)
                out = []
                for body in bodies:
                    d = decode_delivery(body)
                    out.append(
                        IngestRequest(
                            dedup_key=d.dedup_key,
                            instance=d.instance,
                            bison_workspace_id=d.workspace_id,
                            workspace_name=d.workspace_name,
                            event_type=d.event_type,
                            payload_json=d.payload_json,
                            received_at=datetime.now(UTC),
                        )
                    )
                return out

            async def drive(reqs: list[IngestRequest]) -> None:
                cursor = iter(reqs)

                async def worker() -> None:
                    for req in cursor:
                        await store_api.ingest(store, req)

                await asyncio.gather(*(worker() for _ in range(STORE_CONCURRENCY)))

            warm = requests("layers-warmup")[:400]
            await drive(warm)
            reqs = requests("layers")
            return await measure_async(lambda: drive(reqs), len(reqs))
        finally:
            await store.close()


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--update-doc", action="store_true", help="also write the section in docs/performance.md")
    opts = parser.parse_args(argv)
    info = machine_info()
    print(f"ingest layers (CPU per delivery) on {machine_line(info)}", flush=True)
    corpus = Corpus.generate(opts.deliveries, opts.seed)
    _, bodies = corpus.for_run("layers")
    ingestor = WebhookIngestor(NullStore(), global_token=TOKEN)

    async def handle_all() -> None:
        for body in bodies:
            await ingestor.handle(body, TOKEN)

    measure_sync(lambda: [decode_delivery(b) for b in bodies[:500]], 500)  # warm caches
    rows: list[tuple[str, float]] = []
    rows.append(("1 decode_delivery", measure_sync(lambda: [decode_delivery(b) for b in bodies], len(bodies))))
    rows.append(("2 + WebhookIngestor.handle (instant store)", await measure_async(handle_all, len(bodies))))
    rows.append(("3 + Litestar app in-process, log level info", await asgi_layer(bodies, "info")))
    rows.append(("3b + Litestar app in-process, log level warning", await asgi_layer(bodies, "warning")))
    http_us, http_rate = await http_layer(bodies, "info", 8)
    rows.append(("4 + uvicorn over loopback (null_service, info)", http_us))
    store_us = await store_layer(corpus)
    rows.append(("5 PostgresStore ingest call, client side", store_us))
    decode_us = rows[0][1]
    headers = ["layer", "CPU us/delivery", "x decode"]
    body_rows = [[name, f"{us:.1f}", f"{us / decode_us:.1f}"] for name, us in rows]
    print()
    print(table(headers, body_rows))
    service_estimate = http_us + store_us
    print(
        f"\nserve on the direct path ~ layer 4 + layer 5 = {service_estimate:.0f} us CPU/delivery "
        f"(~{1e6 / service_estimate:.0f} deliveries/s per core); null service throughput x8: {http_rate:.0f}/s"
    )
    found = [
        Target(
            BENCH,
            "informational: CPU per delivery of the Python path (no target)",
            True,
            f"~{service_estimate:.0f} us/delivery on the direct path (HTTP+app {http_us:.0f}, "
            f"store client {store_us:.0f}, decode {decode_us:.0f})",
        )
    ]
    print_targets(found)
    md = "\n".join(
        [
            f"Latest run: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}, {info['nproc']} cores ({info['cpu_model']}), "
            f"{len(bodies)} deliveries of the simulator mix; CPU time, not wall time.",
            "",
            markdown_table(headers, body_rows),
            "",
            f"Direct path estimate (layer 4 + layer 5): {service_estimate:.0f} us of service CPU per delivery, "
            f"~{1e6 / service_estimate:.0f} deliveries/s for one core.",
        ]
    )
    write_results(BENCH, {"bench": BENCH, "machine": info, "layers_us": dict(rows), "null_service_rate": http_rate}, md)
    if opts.update_doc:
        update_doc_section(BENCH, md)
    return 0


if __name__ == "__main__":
    install_signal_handlers()
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)

"""Shared benchmark plumbing: a private devstack, `bisonsync serve` as a subprocess, /proc probes, percentiles,
PASS/FAIL lines, raw JSON results and the docs/performance.md sections.

Everything binds and talks to 127.0.0.1 only. Every process started here is stopped by pid in a `finally` (also on
Ctrl-C and SIGTERM, which `install_signal_handlers` turns into `KeyboardInterrupt`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ first on sys.path, not the project
    sys.path.insert(0, str(ROOT))

from devstack.ports import free_port  # noqa: E402
from devstack.stack import DevStack  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
DOC_PATH = ROOT / "docs" / "performance.md"
BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# -- signals ----------------------------------------------------------------------------------------------------


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Cleanup that a second Ctrl-C must not cut short (a half-stopped cluster keeps its port and memory)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def install_signal_handlers() -> None:
    """SIGTERM (and SIGHUP) behave like Ctrl-C, so every `finally` that stops a process runs."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)


# -- small helpers -----------------------------------------------------------------------------------------------


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of `values`; NaN when empty."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), -(-len(ordered) * q // 100)))  # ceil(n * q / 100), clamped to 1..n
    return ordered[int(rank) - 1]


def fmt_ms(value: float) -> str:
    return "-" if value != value else f"{value:.1f}"  # NaN -> "-"


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


@dataclass(frozen=True)
class Target:
    """One acceptance target: printed as `[PASS] bench: name: detail` (run_all collects these lines)."""

    bench: str
    name: str
    passed: bool
    detail: str

    @property
    def line(self) -> str:
        return f"[{'PASS' if self.passed else 'FAIL'}] {self.bench}: {self.name}: {self.detail}"


def print_targets(targets: Iterable[Target]) -> None:
    print("\nTargets:")
    for target in targets:
        print(target.line, flush=True)


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain fixed-width table for the terminal."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def markdown_table(headers: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    """A markdown table: the first `text_columns` columns left-aligned, the rest (numbers) right-aligned."""
    align = [":---" if i < text_columns else "---:" for i in range(len(headers))]
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


# -- the machine -------------------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = float("nan")
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:", 1)[1].split()[0])
        mem_gib = round(kb / 1024 / 1024, 1)
    pg_version = "unknown"
    with contextlib.suppress(Exception):
        from devstack.cluster import find_pg_bindir

        pg_version = subprocess.run(
            [str(find_pg_bindir() / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "mem_gib": mem_gib,
        "python": platform.python_version(),
        "postgres": pg_version,
        "kernel": platform.release(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def machine_line(info: Mapping[str, Any]) -> str:
    return (
        f"{info['nproc']} cores ({info['cpu_model']}), {info['mem_gib']} GiB, Python {info['python']}, "
        f"{info['postgres']}, load average at start {info['loadavg_at_start'][0]}"
    )


# -- /proc probes ------------------------------------------------------------------------------------------------


def rss_kb(pid: int) -> int:
    """Resident set size of `pid` in KiB (0 when it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB
    except (OSError, ValueError, IndexError):
        return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` in seconds (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return 0.0


def children_of(ppid: int) -> list[int]:
    """Direct children of `ppid` (e.g. the backends of a postmaster)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == ppid:
            found.append(int(entry.name))
    return found


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (from /proc/stat)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / CLK_TCK


class CpuMeter:
    """CPU used by groups of processes between `start()` and `stop()`, in percent of one core, plus `other`: the
    rest of the machine (other users' processes; a noisy run shows here). A group's pids are listed anew at each
    reading (PostgreSQL backends come and go), so CPU of a process that exited in between counts as `other`."""

    def __init__(self, groups: Mapping[str, Any]) -> None:
        #: name -> callable returning the pids to sum
        self.groups = dict(groups)
        self._start: dict[str, float] = {}
        self._wall = 0.0
        self.result: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        found = {name: sum(cpu_seconds(p) for p in pids()) for name, pids in self.groups.items()}
        found["other"] = machine_busy_seconds() - sum(found.values())
        return found

    def start(self) -> None:
        self._start = self._read()
        self._wall = time.perf_counter()

    def stop(self) -> dict[str, float]:
        end = self._read()
        wall = time.perf_counter() - self._wall
        #: share of one core, in percent
        self.result = {name: round(100 * (end[name] - self._start.get(name, 0.0)) / wall, 1) for name in end}
        return self.result


class RssSampler:
    """Samples a process's RSS in the background; `peak_kb` is the largest value seen."""

    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak_kb = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.peak_kb = max(self.peak_kb, rss_kb(self.pid))
            await asyncio.sleep(self.interval_s)

    def __enter__(self) -> RssSampler:
        self.peak_kb = rss_kb(self.pid)
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self.peak_kb = max(self.peak_kb, rss_kb(self.pid))


# -- processes ---------------------------------------------------------------------------------------------------


def terminate(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Stop one process we started, by its pid: SIGTERM, then SIGKILL after `timeout`."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(5)


@dataclass
class Stack:
    """A private devstack on free loopback ports in a temp dir."""

    devstack: DevStack
    root: Path

    @property
    def dsn(self) -> str:
        return self.devstack.cluster.dsn("postgres")

    def postgres_pids(self) -> list[int]:
        """The postmaster and its children (backends, walwriter, ...)."""
        try:
            postmaster = int((self.devstack.cluster.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return [postmaster, *children_of(postmaster)]

    def gateway_pids(self) -> list[int]:
        pid = self.devstack._gateway_pid()
        return [pid] if pid else []


@contextlib.asynccontextmanager
async def private_stack(with_gateway: bool = True) -> AsyncIterator[Stack]:
    """PostgreSQL (+ the gateway) bootstrapped and migrated, no seed; stopped and removed on exit, whatever happens."""
    # Not under a 0700 dir: the cluster runs as the `postgres` user when we are root (see tests/conftest.py).
    root = Path(tempfile.mkdtemp(prefix="bisonsync-bench-"))
    root.chmod(0o755)
    stack = DevStack(root=root, api_port=free_port(), db_port=free_port(), seed_file=None)
    try:
        await stack.prepare_database(seed=False)
        if with_gateway:
            await asyncio.to_thread(stack.start_gateway)
        yield Stack(stack, root)
    finally:
        with interrupts_deferred():
            try:
                stack.down()
            finally:
                shutil.rmtree(root, ignore_errors=True)


@dataclass
class Service:
    """`bisonsync serve` (uvicorn, one process) in a subprocess on a free loopback port."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    env: dict[str, str] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


def service_env(stack: Stack, store: str, token: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment that points `bisonsync serve` at one store of the private stack (nothing inherited that
    could point it elsewhere)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BISONSYNC_", "SUPABASE_", "DATABASE_", "BISON_"))}
    stack_env = stack.devstack.env()
    if store == "postgres":
        env["DATABASE_URL"] = stack_env.database_url
    elif store == "supabase":
        env["SUPABASE_URL"] = stack_env.supabase_url
        env["SUPABASE_SERVICE_ROLE_KEY"] = stack_env.service_role_key
    else:
        raise ValueError(f"unknown store {store!r}")
    env["BISONSYNC_WEBHOOK_TOKEN"] = token
    env["BISONSYNC_POLL_INTERVAL_S"] = "0"  # no scheduled jobs competing for the CPU during a run
    env.update(extra or {})
    return env


@contextlib.asynccontextmanager
async def running_service(
    stack: Stack,
    store: str,
    token: str,
    *,
    log_level: str = "info",
    extra_env: Mapping[str, str] | None = None,
    ready_timeout_s: float = 60,
) -> AsyncIterator[Service]:
    """Start `bisonsync serve` for `store`, wait until /readyz answers 200, stop it (by pid) on exit."""
    port = free_port()
    log_path = stack.root / f"serve-{store}-{port}.log"
    env = service_env(stack, store, token, extra_env)
    command = [str(BIN / "bisonsync"), "serve", "--host", LOOPBACK, "--port", str(port), "--log-level", log_level]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
        )
    service = Service(proc, port, log_path, env)
    try:
        await wait_ready(service, ready_timeout_s)
        yield service
    finally:
        with interrupts_deferred():
            terminate(proc)


async def wait_ready(service: Service, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if service.proc.poll() is not None:
                raise RuntimeError(f"bisonsync serve exited with {service.proc.returncode}:\n{tail(service.log_path)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{service.url}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"bisonsync serve not ready after {timeout_s}s:\n{tail(service.log_path)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# -- results -----------------------------------------------------------------------------------------------------


def write_results(name: str, data: Mapping[str, Any], markdown: str | None = None) -> Path:
    """Raw results to bench/results/<name>-<UTC stamp>.json and <name>-latest.json (gitignored); the markdown
    summary, when given, to <name>-latest.md (run_all puts it into docs/performance.md)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(text + "\n")
    (RESULTS_DIR / f"{name}-latest.json").write_text(text + "\n")
    if markdown is not None:
        (RESULTS_DIR / f"{name}-latest.md").write_text(markdown.rstrip() + "\n")
    return path


_SECTION = "<!-- {name}:{edge} -->"


def replace_doc_section(text: str, name: str, body: str) -> str:
    """`text` with the part between `<!-- name:begin -->` and `<!-- name:end -->` replaced by `body` (the markers
    are appended at the end when missing)."""
    begin, end = _SECTION.format(name=name, edge="begin"), _SECTION.format(name=name, edge="end")
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return text.rstrip() + "\n\n" + block + "\n"


def update_doc_section(name: str, body: str, path: Path = DOC_PATH) -> None:
    text = path.read_text() if path.exists() else "# Performance\n"
    path.write_text(replace_doc_section(text, name, body))


@contextlib.contextmanager
def timed(label: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        print(f"  ({label}: {time.perf_counter() - started:.1f}s)", flush=True)

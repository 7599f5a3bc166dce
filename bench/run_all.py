"""Every benchmark in sequence (`make bench`), each as its own subprocess; a PASS/FAIL summary at the end, and each
benchmark's section of docs/performance.md rewritten between its markers (`<!-- name:begin -->` ... `<!-- name:end
-->`).

    .venv/bin/python bench/run_all.py [--only ingest,realtime_latency] [--no-doc] [--budget 570]

Benchmarks report; they do not fail the build: the exit status is 0 whatever the targets say (130 on Ctrl-C).
A benchmark that is missing is skipped (some are written by others); one that overruns its share of the time
budget is stopped by pid and reported as FAIL.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    DOC_PATH,
    RESULTS_DIR,
    ROOT,
    install_signal_handlers,
    machine_info,
    machine_line,
    replace_doc_section,
)

#: (name, script, args, cap in seconds); run in this order
BENCHES: list[tuple[str, str, list[str], float]] = [
    ("ingest", "bench/ingest.py", [], 330),
    ("ingest_layers", "bench/ingest_layers.py", [], 90),
    ("realtime_latency", "bench/realtime_latency.py", [], 240),
    ("sync", "bench/sync.py", [], 180),
]
OWN_TARGET = re.compile(r"^\[(PASS|FAIL)\]")
ANY_TARGET = re.compile(r"\b(PASS|FAIL)\b")
TAIL_LINES = 30


@dataclass
class BenchRun:
    name: str
    script: str
    status: str = "skipped"  # skipped | ok | exited N | timed out | interrupted
    seconds: float = 0.0
    targets: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(1 for t in self.targets if "FAIL" in t) + (self.status not in ("ok", "skipped"))


def target_lines(lines: list[str]) -> list[str]:
    """`[PASS] ...`/`[FAIL] ...` lines (our convention); failing that, any line with a PASS/FAIL word."""
    own = [line for line in lines if OWN_TARGET.match(line)]
    return own or [line.strip() for line in lines if ANY_TARGET.search(line)]


def run_one(name: str, script: str, args: list[str], budget_s: float) -> BenchRun:
    run = BenchRun(name, script)
    path = ROOT / script
    if not path.exists():
        print(f"\n=== {name}: {script} not found, skipped", flush=True)
        return run
    print(f"\n=== {name}: {script} (up to {budget_s:.0f}s)", flush=True)
    lines: list[str] = []
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-u", str(path), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        proc.wait(budget_s)
        run.status = "ok" if proc.returncode == 0 else f"exited {proc.returncode}"
    except subprocess.TimeoutExpired:
        run.status = "timed out"
        stop(proc)
    except KeyboardInterrupt:
        # the child got the same Ctrl-C (same process group) and is stopping its processes: let it finish
        run.status = "interrupted"
        stop(proc, grace_s=60, signal_first=False)
        raise
    finally:
        reader.join(5)
        run.seconds = round(time.monotonic() - started, 1)
        run.targets = target_lines(lines)
        run.tail = lines[-TAIL_LINES:]
    if run.status == "timed out":
        run.targets.append(f"[FAIL] {name}: finished within its {budget_s:.0f}s share of the budget: timed out")
    return run


def stop(proc: subprocess.Popen[str], grace_s: float = 20, signal_first: bool = True) -> None:
    """SIGINT (so the benchmark's own cleanup runs; skipped when it already got one), then SIGTERM, then SIGKILL;
    by pid only."""
    steps: list[tuple[signal.Signals | None, float]] = [
        (signal.SIGINT if signal_first else None, grace_s),
        (signal.SIGTERM, 10),
        (signal.SIGKILL, 5),
    ]
    for sig, wait_s in steps:
        if proc.poll() is not None:
            return
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired, KeyboardInterrupt):
            proc.wait(wait_s)


def section_for(run: BenchRun, started_at: float) -> str | None:
    """The benchmark's own markdown summary if it wrote one in this run, else its targets and output tail."""
    if run.status == "skipped":
        return None
    md = RESULTS_DIR / f"{run.name}-latest.md"
    if run.status == "ok" and md.exists() and md.stat().st_mtime >= started_at:
        return md.read_text()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [f"Latest run: {stamp} ({run.status}, {run.seconds:.0f}s). Output tail:", "", "```", *run.tail, "```"]
    return "\n".join(body)


def summary_markdown(runs: list[BenchRun], info: dict[str, object], total_s: float) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"`make bench` on {stamp}: {machine_line(info)}; {total_s:.0f}s in all.",
        "",
        "| benchmark | status | seconds | targets |",
        "|---|---|---:|---|",
    ]
    for run in runs:
        passed = sum(1 for t in run.targets if "PASS" in t and "FAIL" not in t)
        failed = sum(1 for t in run.targets if "FAIL" in t)
        lines.append(f"| `{run.script}` | {run.status} | {run.seconds:.0f} | {passed} PASS, {failed} FAIL |")
    lines += ["", "```", *(t for run in runs for t in run.targets), "```"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated benchmark names (default: all)")
    parser.add_argument("--budget", type=float, default=570, help="seconds for everything (default 9.5 min)")
    parser.add_argument("--no-doc", action="store_true", help="do not touch docs/performance.md")
    opts = parser.parse_args(argv)
    only = {n.strip() for n in opts.only.split(",") if n.strip()}
    info = machine_info()
    print(f"make bench on {machine_line(info)}", flush=True)
    started, started_at = time.monotonic(), time.time()
    runs: list[BenchRun] = []
    interrupted = False
    try:
        for name, script, args, cap in BENCHES:
            if only and name not in only:
                continue
            left = opts.budget - (time.monotonic() - started)
            if left < 20 and (ROOT / script).exists():
                runs.append(
                    BenchRun(
                        name,
                        script,
                        "timed out",
                        0.0,
                        [f"[FAIL] {name}: not started, the {opts.budget:.0f}s budget is spent"],
                    )
                )
                continue
            runs.append(run_one(name, script, args, min(cap, left)))
    except KeyboardInterrupt:
        interrupted = True
    total = time.monotonic() - started
    print("\n" + "=" * 100 + f"\nBenchmark summary ({total:.0f}s, {machine_line(info)}):")
    for run in runs:
        print(f"\n{run.name} ({run.script}): {run.status}, {run.seconds:.0f}s")
        for line in run.targets:
            print(f"  {line}")
    failed = sum(run.failed for run in runs)
    print(f"\n{'all targets PASS' if not failed else f'{failed} target(s) FAIL'} (benchmarks report; exit status 0)")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "run_all-latest.json").write_text(
        json.dumps({"machine": info, "seconds": round(total, 1), "runs": [asdict(r) for r in runs]}, indent=2) + "\n"
    )
    if not opts.no_doc and not interrupted:
        text = DOC_PATH.read_text() if DOC_PATH.exists() else "# Performance\n"
        text = replace_doc_section(text, "summary", summary_markdown(runs, info, total))
        for run in runs:
            body = section_for(run, started_at)
            if body is not None:
                text = replace_doc_section(text, run.name, body)
        DOC_PATH.write_text(text)
        print(f"updated {DOC_PATH.relative_to(ROOT)}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    install_signal_handlers()  # SIGTERM/SIGHUP behave like Ctrl-C: the running benchmark is stopped by pid
    sys.exit(main())

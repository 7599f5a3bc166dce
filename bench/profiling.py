"""py-spy around a benchmark phase: sample a process we started, then summarise where its time went.

py-spy is not a project dependency: `.venv/bin/pip install py-spy` (the benchmarks run without it and say so).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bench.common import BIN, terminate


def py_spy() -> str | None:
    found = BIN / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def recording(pid: int, out: Path, rate_hz: int = 250) -> Iterator[Path | None]:
    """Sample `pid` while the block runs (collapsed stacks; only while a thread holds the GIL, so time blocked in a
    syscall or preempted inside one, e.g. a loopback `send` waking the peer on a busy 2-core box, is left out and
    the samples approximate Python CPU time); yields the output path, or None when py-spy is not installed."""
    exe = py_spy()
    if exe is None:
        print("  (py-spy not installed: .venv/bin/pip install py-spy; profiling skipped)")
        yield None
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--rate", str(rate_hz), "--format", "raw", "--output", str(out), "--gil"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield out
    finally:
        # SIGINT makes py-spy write its output and exit; SIGTERM/SIGKILL only if it hangs
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(2)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            terminate(proc)


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "handle (bisonsync/ingest.py:61)"; keep function and file, drop the line
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rstrip(")")
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{name} ({file})" if file else name


def summarize(collapsed: Path, top: int = 25) -> str:
    """The `top` functions by inclusive and by self share of samples, from py-spy's collapsed output."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame_name(f) for f in stack.split(";")]
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "inclusive %  function"]
    lines += [f"{100 * n / total:10.1f}  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "self %      function"]
    lines += [f"{100 * n / total:10.1f}  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)

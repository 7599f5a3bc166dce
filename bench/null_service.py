"""`bisonsync serve` with the database replaced by a store that answers at once: what the HTTP stack, Litestar,
the ingest policy, metrics and logging cost per delivery, with no database in the picture.

Started by bench/ingest_layers.py as a subprocess, exactly as `bisonsync serve` runs (same logging setup, same
uvicorn options); not for use outside the benchmarks.

    .venv/bin/python bench/null_service.py --port 8765 [--log-level info]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bisonsync.logs import setup_logging
from bisonsync.settings import Settings

APPLIED = {
    "status": "applied",
    "delivery_id": 1,
    "workspace_id": "00000000-0000-4000-8000-000000000001",
    "event_type": "email_sent",
    "effects": [{"kind": "metric", "metric": "emails_sent", "day": "2026-11-29", "value": 1}],
}


class NullStore:
    """Answers every call at once: `ingest_delivery` is always `applied`."""

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def rpc(self, function: str, args: Mapping[str, Any]) -> Any:
        return APPLIED if function == "ingest_delivery" else None

    async def rpc_rows(self, function: str, args: Mapping[str, Any]) -> list[dict[str, Any]]:
        return []

    async def upsert(self, table: str, rows: Sequence[Mapping[str, Any]], on_conflict: str) -> int:
        return len(rows)

    async def select(
        self, table: str, *, filters: Mapping[str, Any] | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        return []


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    from service.app import create_app

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default="bench-webhook-token")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    setup_logging(args.log_level)  # as `bisonsync serve` does
    settings = Settings(
        webhook_token=args.token, database_url="postgresql://unused@127.0.0.1/unused", poll_interval_s=0
    )
    app = create_app(settings, store=NullStore())
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level=args.log_level, access_log=False, lifespan="on")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`bisonsync serve`: the Litestar service (webhooks, health, metrics, scheduled jobs)."""

from __future__ import annotations

import argparse
from typing import Any

from bisonsync.logs import setup_logging
from bisonsync.settings import Settings


def register(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the webhook service (default 127.0.0.1:8000)")
    serve.add_argument("--host", default=None, help="bind address (default $BISONSYNC_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default $BISONSYNC_PORT or 8000)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from service.app import create_app
    from service.server import serve

    setup_logging(args.log_level)
    settings = Settings.from_env()
    settings.require_store()
    host = args.host or settings.host
    port = args.port or settings.port
    app = create_app(settings)
    print(f"bisonsync serving on http://{host}:{port}  (webhook: POST /webhooks/bison?token=...)", flush=True)
    # slow clients are cut off (header/body deadlines, connection cap); aborted uploads logged as aborted
    serve(app, settings, host=host, port=port, log_level=args.log_level)
    return 0

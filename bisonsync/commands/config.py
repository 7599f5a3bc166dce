"""`bisonsync config`: the settings reference, and the values in effect (secrets masked)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from bisonsync.settings import SETTINGS, configuration_markdown


def register(sub: Any) -> None:
    cfg = sub.add_parser("config", help="show the settings in effect (secrets masked) or the reference")
    cfg.add_argument("--markdown", action="store_true", help="print the configuration reference as Markdown")
    cfg.set_defaults(handler=_config)


def _mask(value: str) -> str:
    return "****" + value[-4:] if len(value) > 8 else "****"


def _config(args: argparse.Namespace) -> int:
    if args.markdown:
        print(configuration_markdown(), end="")
        return 0
    for spec in SETTINGS:
        raw = os.environ.get(spec.env)
        shown = (_mask(raw) if spec.secret else raw) if raw else f"(default: {spec.default})"
        print(f"{spec.env}={shown}")
    return 0
